//! Looking into a database without the program that wrote it: record tables
//! described by their stored schema rows, keys decoded by the types of the
//! key fields, records decoded to JSON from the stored layout alone, and the
//! integrity check over every record table. What `storage-inspect` runs on.

use core::ops::{Bound, ControlFlow};

use crate::backend::{AnyTable, Direction, ReadTable as _};
use crate::decode::{self, Value};
use crate::error::{Error, Result};
use crate::key::KeyBuf;
use crate::layout::{Field, Layout};
use crate::ops::{IndexReport, VerifyReport};
use crate::schema::{StoredIndex, StoredRow, index_table};
use crate::storage::Storage;
use crate::txn::ReadTransaction;

/// A record table, as its stored schema row describes it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordTable {
    /// The table.
    pub table: String,
    /// The record type's path, as the program that wrote it named it.
    pub record: String,
    /// Its schema version.
    pub version: u32,
    /// The key fields, in key order.
    pub key: Vec<String>,
    /// The secondary indexes.
    pub indexes: Vec<IndexInfo>,
    /// The archived layout of a record.
    pub layout: Layout,
    /// The table keeps a durable change log.
    pub keeps_changes: bool,
    /// The schema row as stored (JSON).
    pub row: serde_json::Value,
}

/// One index of a [`RecordTable`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexInfo {
    /// Its name.
    pub name: String,
    /// At most one record per value.
    pub unique: bool,
    /// The indexed fields (none for an index computed by a method).
    pub fields: Vec<String>,
    /// One entry per element of the field (`#[index(each)]`).
    pub each: bool,
    /// The method of the record computing the values, if one does.
    pub method: Option<String>,
    /// Its entries are complete (queries use it).
    pub built: bool,
}

/// One entry, decoded: the key, and the record (or why it would not decode).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Dumped {
    /// The key: a number, a string, bytes, or an array of the parts of a
    /// composite key.
    pub key: serde_json::Value,
    /// The record as JSON; for a table without a schema, the value's bytes
    /// in hex; or what was wrong with it.
    pub value: core::result::Result<serde_json::Value, String>,
}

/// Which entries [`Storage::dump`] visits: keys as text, parsed by the key
/// fields' types (`42`, `alice`, `true`, or a JSON array for a composite
/// key: `[42, "x"]`; for a table without a schema, the key's text or
/// `0x`-prefixed hex).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpRange {
    /// From this key on (included).
    pub from: Option<String>,
    /// Up to this key (excluded).
    pub to: Option<String>,
    /// Only keys starting with this (a composite key's leading parts, the
    /// start of a string key).
    pub prefix: Option<String>,
    /// At most this many entries.
    pub limit: Option<usize>,
}

impl DumpRange {
    /// Every entry.
    pub fn all() -> Self {
        Self::default()
    }

    /// From `key` on.
    pub fn from(mut self, key: impl Into<String>) -> Self {
        self.from = Some(key.into());
        self
    }

    /// Up to `key`, excluded.
    pub fn to(mut self, key: impl Into<String>) -> Self {
        self.to = Some(key.into());
        self
    }

    /// Keys starting with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// At most `n` entries.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
}

/// How the keys of a table read and write, from its schema row.
struct KeyCodec<'a> {
    parts: Vec<&'a Layout>,
}

fn field<'a>(layout: &'a Layout, name: &str) -> Option<&'a Layout> {
    match layout {
        Layout::Struct { fields, .. } => fields
            .iter()
            .find(|f: &&Field| f.name == name)
            .map(|f| &f.layout),
        _ => None,
    }
}

fn bad_key(table: &str, text: &str, why: impl Into<String>) -> Error {
    Error::BadKey {
        table: table.to_owned(),
        key: text.chars().take(200).collect(),
        reason: why.into(),
    }
}

/// Big-endian fixed-width integer bytes, `signed` with the sign bit flipped.
fn int_bytes(value: i128, unsigned: u128, width: usize, signed: bool, out: &mut KeyBuf) {
    let bytes = if signed {
        let flipped = (value as u128) ^ (1u128 << (width * 8 - 1));
        flipped.to_be_bytes()
    } else {
        unsigned.to_be_bytes()
    };
    out.extend_from_slice(&bytes[16 - width..]);
}

/// The width in bytes and signedness of an integer key layout.
fn int_shape(layout: &Layout) -> Option<(usize, bool)> {
    Some(match layout {
        Layout::U8 => (1, false),
        Layout::U16 => (2, false),
        Layout::U32 => (4, false),
        Layout::U64 | Layout::Usize => (8, false),
        Layout::U128 => (16, false),
        Layout::I8 => (1, true),
        Layout::I16 => (2, true),
        Layout::I32 => (4, true),
        Layout::I64 | Layout::Isize => (8, true),
        Layout::I128 => (16, true),
        _ => return None,
    })
}

fn is_bytes(layout: &Layout) -> bool {
    matches!(layout, Layout::List { item } | Layout::Slice { item } if **item == Layout::U8)
}

/// Appends `bytes` escaped and terminated, as a key part.
fn escaped(bytes: &[u8], out: &mut KeyBuf) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Encodes `value` of `layout` as a key (`part`: in a composite key or an
/// index value, where strings and bytes are escaped); `None` if it cannot
/// be a key.
fn encode(value: &Value, layout: &Layout, part: bool, out: &mut KeyBuf) -> Option<()> {
    if let Some((width, signed)) = int_shape(layout) {
        let (v, u) = match value {
            Value::Unsigned(u) => (i128::from(*u), u128::from(*u)),
            Value::Signed(i) => (i128::from(*i), *i as u128),
            Value::U128(u) => (*u as i128, *u),
            Value::I128(i) => (*i, *i as u128),
            _ => return None,
        };
        int_bytes(v, u, width, signed, out);
        return Some(());
    }
    match (layout, value) {
        (Layout::Bool, Value::Bool(b)) => out.push(u8::from(*b)),
        (Layout::Text | Layout::Str, Value::Text(s)) => {
            if part {
                escaped(s.as_bytes(), out);
            } else {
                out.extend_from_slice(s.as_bytes());
            }
        }
        (Layout::Array { item, .. }, Value::Bytes(b)) if **item == Layout::U8 => {
            out.extend_from_slice(b);
        }
        (l, Value::Bytes(b)) if is_bytes(l) => {
            if part {
                escaped(b, out);
            } else {
                out.extend_from_slice(b);
            }
        }
        _ => return None,
    }
    Some(())
}

/// Reads one key part of `layout` from the front of `input` (`whole`: the
/// only part of a single-field key, running to the end).
fn read_part(input: &mut &[u8], layout: &Layout, whole: bool) -> Option<Value> {
    let take = |input: &mut &[u8], n: usize| -> Option<Vec<u8>> {
        let (head, rest) = input.split_at_checked(n)?;
        *input = rest;
        Some(head.to_vec())
    };
    if let Some((width, signed)) = int_shape(layout) {
        let bytes = take(input, width)?;
        let mut padded = [0u8; 16];
        padded[16 - width..].copy_from_slice(&bytes);
        let raw = u128::from_be_bytes(padded);
        return Some(if signed {
            let v = raw ^ (1u128 << (width * 8 - 1));
            // Sign-extend from `width` bytes.
            let shift = 128 - width * 8;
            let v = ((v << shift) as i128) >> shift;
            match i64::try_from(v) {
                Ok(v) => Value::Signed(v),
                Err(_) => Value::I128(v),
            }
        } else {
            match u64::try_from(raw) {
                Ok(v) => Value::Unsigned(v),
                Err(_) => Value::U128(raw),
            }
        });
    }
    let unescape = |input: &mut &[u8]| -> Option<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let (&b, rest) = input.split_first()?;
            *input = rest;
            if b != 0 {
                out.push(b);
                continue;
            }
            let (&next, rest) = input.split_first()?;
            *input = rest;
            match next {
                0xFF => out.push(0),
                0 => return Some(out),
                _ => return None,
            }
        }
    };
    let bytes = match layout {
        Layout::Bool => {
            let b = take(input, 1)?;
            return match b[0] {
                0 => Some(Value::Bool(false)),
                1 => Some(Value::Bool(true)),
                _ => None,
            };
        }
        Layout::Array { item, len } if **item == Layout::U8 => {
            return take(input, *len).map(Value::Bytes);
        }
        Layout::Text | Layout::Str | Layout::List { .. } | Layout::Slice { .. } if whole => {
            let all = input.to_vec();
            *input = &[];
            all
        }
        Layout::Text | Layout::Str | Layout::List { .. } | Layout::Slice { .. } => unescape(input)?,
        _ => return None,
    };
    match layout {
        Layout::Text | Layout::Str => String::from_utf8(bytes).ok().map(Value::Text),
        _ if is_bytes(layout) => Some(Value::Bytes(bytes)),
        _ => None,
    }
}

/// Parses the text of one key part of `layout`, or a JSON value of it.
fn parse_part(text: &str, json: Option<&serde_json::Value>, layout: &Layout) -> Option<Value> {
    if let Some((_, signed)) = int_shape(layout) {
        let text = match json {
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return None,
            None => text.trim().to_owned(),
        };
        return if signed {
            text.parse::<i128>().ok().map(|v| match i64::try_from(v) {
                Ok(v) => Value::Signed(v),
                Err(_) => Value::I128(v),
            })
        } else {
            text.parse::<u128>().ok().map(|v| match u64::try_from(v) {
                Ok(v) => Value::Unsigned(v),
                Err(_) => Value::U128(v),
            })
        };
    }
    match layout {
        Layout::Bool => match json.and_then(serde_json::Value::as_bool) {
            Some(b) => Some(Value::Bool(b)),
            None => text.trim().parse().ok().map(Value::Bool),
        },
        Layout::Text | Layout::Str => Some(Value::Text(match json {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return None,
            None => text.to_owned(),
        })),
        l if is_bytes(l) || matches!(l, Layout::Array { item, .. } if **item == Layout::U8) => {
            match json {
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .map(Value::Bytes),
                Some(serde_json::Value::String(s)) => hex(s).map(Value::Bytes),
                Some(_) => None,
                None => hex(text)
                    .or_else(|| Some(text.as_bytes().to_vec()))
                    .map(Value::Bytes),
            }
        }
        _ => None,
    }
}

/// `0x`-prefixed hex as bytes.
fn hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.strip_prefix("0x")?;
    if !digits.len().is_multiple_of(2) || !digits.is_ascii() {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
        .collect()
}

impl<'a> KeyCodec<'a> {
    fn of(row: &'a StoredRow) -> Option<Self> {
        if let Some(key) = &row.key_layout {
            return Some(KeyCodec { parts: vec![key] });
        }
        let parts = row
            .key
            .iter()
            .map(|name| field(&row.layout, name))
            .collect::<Option<Vec<_>>>()?;
        Some(KeyCodec { parts })
    }

    fn composite(&self) -> bool {
        self.parts.len() > 1
    }

    /// The key `bytes` as JSON.
    fn show(&self, bytes: &[u8]) -> Option<serde_json::Value> {
        let mut input = bytes;
        let mut values = Vec::new();
        for layout in &self.parts {
            values.push(decode::to_json(&read_part(
                &mut input,
                layout,
                !self.composite(),
            )?));
        }
        if !input.is_empty() {
            return None;
        }
        Some(if self.composite() {
            serde_json::Value::Array(values)
        } else {
            values.pop()?
        })
    }

    /// Parses key text into the key's bytes; `prefix` takes leading parts
    /// (and, for a single string key, the start of one).
    fn parse(&self, table: &str, text: &str, prefix: bool) -> Result<Vec<u8>> {
        let mut out = KeyBuf::new();
        if !self.composite() {
            let layout = self.parts[0];
            let json = serde_json::from_str::<serde_json::Value>(text).ok();
            let json = json.filter(|j| !j.is_number() || int_shape(layout).is_some());
            let value = parse_part(text, json.as_ref(), layout)
                .ok_or_else(|| bad_key(table, text, format!("not a key of layout `{layout}`")))?;
            encode(&value, layout, false, &mut out)
                .ok_or_else(|| bad_key(table, text, "not a key"))?;
            return Ok(out.as_slice().to_vec());
        }
        let json: serde_json::Value = serde_json::from_str(&tuple_as_array(text)).map_err(|_| {
            bad_key(
                table,
                text,
                "a composite key is a JSON array of its parts, e.g. [42, \"x\"], or a tuple: (42, \"x\")",
            )
        })?;
        let items = match json {
            serde_json::Value::Array(items) => items,
            one if prefix => vec![one],
            _ => {
                return Err(bad_key(
                    table,
                    text,
                    "a composite key is a JSON array of its parts",
                ));
            }
        };
        if items.len() > self.parts.len() || (!prefix && items.len() != self.parts.len()) {
            return Err(bad_key(
                table,
                text,
                format!("the key has {} parts", self.parts.len()),
            ));
        }
        for (item, layout) in items.iter().zip(&self.parts) {
            let value = parse_part(text, Some(item), layout)
                .ok_or_else(|| bad_key(table, text, format!("`{item}` is not a `{layout}`")))?;
            encode(&value, layout, true, &mut out)
                .ok_or_else(|| bad_key(table, text, "not a key"))?;
        }
        Ok(out.as_slice().to_vec())
    }
}

/// Rust's tuple form of a composite key, `(42, "x")` or `(42,)`, as the JSON
/// array `[42, "x"]`; other text as it is.
fn tuple_as_array(text: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = text.trim();
    match trimmed.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        Some(inner) => {
            let inner = inner.trim_end();
            let inner = inner.strip_suffix(',').unwrap_or(inner);
            format!("[{inner}]").into()
        }
        None => text.into(),
    }
}

/// Key text of a table without a schema: `0x`-hex, or the text's bytes.
fn raw_key(text: &str) -> Vec<u8> {
    hex(text).unwrap_or_else(|| text.as_bytes().to_vec())
}

/// A key of a table without a schema, shown: its text if it is UTF-8 text,
/// else hex.
fn show_raw(bytes: &[u8]) -> serde_json::Value {
    match core::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => text.into(),
        _ => crate::error::Hex(bytes).to_string().into(),
    }
}

/// The record `bytes` of a table described by `row`, as JSON.
fn record_json(row: &StoredRow, bytes: &[u8]) -> core::result::Result<serde_json::Value, String> {
    decode::decode(&row.layout, bytes)
        .map(|v| decode::to_json(&v))
        .map_err(|e| e.to_string())
}

fn record_table(name: &str, row: &StoredRow) -> RecordTable {
    RecordTable {
        table: name.to_owned(),
        record: row.record.clone(),
        version: row.version,
        key: row.key.clone(),
        indexes: row
            .indexes
            .iter()
            .map(|i| IndexInfo {
                name: i.name.clone(),
                unique: i.unique,
                fields: i.fields.clone(),
                each: i.each,
                method: i.method.clone(),
                built: i.built,
            })
            .collect(),
        layout: row.layout.clone(),
        keeps_changes: row.changes,
        row: serde_json::from_slice(&row.encode()).unwrap_or(serde_json::Value::Null),
    }
}

/// The values of an index of a decoded record, as index key bytes, sorted
/// and without repeats: none when the record has none (an `Option` field
/// that is `None`), one per element for an `each` index. `None` when the
/// fields cannot be an index.
fn index_values(row: &StoredRow, record: &Value, index: &StoredIndex) -> Option<Vec<Vec<u8>>> {
    let Value::Struct(values) = record else {
        return None;
    };
    let mut parts: Vec<(&Layout, &Value)> = Vec::new();
    for name in &index.fields {
        let mut layout = field(&row.layout, name)?;
        let mut value = &values.iter().find(|(n, _)| n == name)?.1;
        if let (Layout::Optional { some }, Value::Optional(inner)) = (layout, value) {
            match inner {
                Some(inner) => {
                    layout = some;
                    value = inner;
                }
                None => return Some(Vec::new()),
            }
        }
        parts.push((layout, value));
    }
    let mut out = Vec::new();
    match parts.as_slice() {
        [(Layout::List { item }, Value::List(elements))] if index.each => {
            for element in elements {
                let mut buf = KeyBuf::new();
                encode(element, item, true, &mut buf)?;
                out.push(buf.as_slice().to_vec());
            }
        }
        [(Layout::List { item }, Value::Bytes(bytes))] if index.each => {
            for byte in bytes {
                let mut buf = KeyBuf::new();
                encode(&Value::Unsigned(u64::from(*byte)), item, true, &mut buf)?;
                out.push(buf.as_slice().to_vec());
            }
        }
        _ if index.each => return None,
        parts => {
            let mut buf = KeyBuf::new();
            for (layout, value) in parts {
                encode(value, layout, true, &mut buf)?;
            }
            out.push(buf.as_slice().to_vec());
        }
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

impl Storage {
    /// The record tables, from the stored schema rows, in name order.
    pub fn record_tables(&self) -> Result<Vec<RecordTable>> {
        self.read(|tx| {
            let mut out = Vec::new();
            for name in tx.raw().tables()? {
                if let Some(row) = tx.row(&name)? {
                    out.push(record_table(&name, &row));
                }
            }
            Ok(out)
        })
    }

    /// The record table `table`, if it is one.
    pub fn record_table(&self, table: &str) -> Result<Option<RecordTable>> {
        self.read(|tx| Ok(tx.row(table)?.map(|row| record_table(table, &row))))
    }

    /// Calls `f` with the entries of `table` in `range`, decoded without the
    /// program's types: keys by the key fields' types, records to JSON from
    /// the stored layout (a table without a schema: keys as text or hex,
    /// values in hex). A record that does not decode is handed over as an
    /// `Err` and the dump goes on. `f` returns `false` to stop. Returns the
    /// entries visited.
    pub fn dump(
        &self,
        table: &str,
        range: &DumpRange,
        mut f: impl FnMut(Dumped) -> bool,
    ) -> Result<u64> {
        self.read(|tx| {
            let row = tx.row(table)?;
            let codec = row.as_deref().map(KeyCodec::of);
            let codec = match codec {
                Some(Some(codec)) => Some(codec),
                Some(None) => return Err(unreadable_key(table)),
                None => None,
            };
            let parse = |text: &str, prefix: bool| match &codec {
                Some(codec) => codec.parse(table, text, prefix),
                None => Ok(raw_key(text)),
            };
            let (mut lo, mut hi) = (Bound::Unbounded, Bound::Unbounded);
            if let Some(prefix) = &range.prefix {
                let mut bytes = parse(prefix, true)?;
                if let Some(codec) = &codec
                    && !codec.composite()
                    && matches!(codec.parts[0], Layout::Text | Layout::Str)
                {
                    // A single string key: the start of the string.
                    bytes = prefix.as_bytes().to_vec();
                }
                hi = crate::key::prefix_successor(&bytes).map_or(Bound::Unbounded, Bound::Excluded);
                lo = Bound::Included(bytes);
            }
            if let Some(from) = &range.from {
                lo = Bound::Included(parse(from, false)?);
            }
            if let Some(to) = &range.to {
                hi = Bound::Excluded(parse(to, false)?);
            }
            let Some(main) = tx.raw().table(table)? else {
                return Ok(0);
            };
            let limit = range.limit.unwrap_or(usize::MAX);
            let mut visited = 0u64;
            let range = (
                crate::index::as_slice_bound(&lo),
                crate::index::as_slice_bound(&hi),
            );
            main.scan(range, Direction::Forward, |key, bytes| {
                if visited as usize >= limit {
                    return Ok(ControlFlow::Break(()));
                }
                visited += 1;
                let dumped = match (&row, &codec) {
                    (Some(row), Some(codec)) => Dumped {
                        key: codec
                            .show(key)
                            .unwrap_or_else(|| crate::error::Hex(key).to_string().into()),
                        value: record_json(row, bytes),
                    },
                    _ => Dumped {
                        key: show_raw(key),
                        value: Ok(crate::error::Hex(bytes).to_string().into()),
                    },
                };
                Ok(if f(dumped) {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                })
            })?;
            Ok(visited)
        })
    }

    /// The entry under the key `key` (text, as [`DumpRange`] takes it) of
    /// `table`, decoded.
    pub fn get_json(&self, table: &str, key: &str) -> Result<Option<Dumped>> {
        self.read(|tx| {
            let row = tx.row(table)?;
            let bytes = match row.as_deref() {
                Some(row) => KeyCodec::of(row)
                    .ok_or_else(|| unreadable_key(table))?
                    .parse(table, key, false)?,
                None => raw_key(key),
            };
            let Some(main) = tx.raw().table(table)? else {
                return Ok(None);
            };
            main.get(&bytes, |value| match row.as_deref() {
                Some(row) => Dumped {
                    key: KeyCodec::of(row)
                        .and_then(|c| c.show(&bytes))
                        .unwrap_or(serde_json::Value::Null),
                    value: record_json(row, value),
                },
                None => Dumped {
                    key: show_raw(&bytes),
                    value: Ok(crate::error::Hex(value).to_string().into()),
                },
            })
        })
    }

    /// [`verify`](Storage::verify) over every record table, without the
    /// record types: each record decoded from its stored layout, each built
    /// index compared entry by entry with the values computed from the
    /// records. `progress` is called with (table, records done, records in
    /// the table) as it goes.
    pub fn check(&self, mut progress: impl FnMut(&str, u64, u64)) -> Result<Vec<VerifyReport>> {
        self.read(|tx| {
            let mut reports = Vec::new();
            for name in tx.raw().tables()? {
                let Some(row) = tx.row(&name)? else { continue };
                reports.push(check_table(tx, &name, &row, &mut progress)?);
            }
            Ok(reports)
        })
    }
}

fn unreadable_key(table: &str) -> Error {
    Error::corrupt(
        crate::schema::SCHEMA_TABLE,
        table.as_bytes(),
        format!("{table:?}"),
        "schema row",
        "its key fields are not fields of its layout",
    )
}

/// The structural check of one record table.
fn check_table(
    tx: &ReadTransaction<'_>,
    name: &str,
    row: &StoredRow,
    progress: &mut impl FnMut(&str, u64, u64),
) -> Result<VerifyReport> {
    let mut report = VerifyReport {
        table: name.to_owned(),
        indexes: row
            .indexes
            .iter()
            .map(|i| IndexReport {
                index: i.name.clone(),
                built: i.built,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let Some(main) = tx.raw().table(name)? else {
        return Ok(report);
    };
    let codec = KeyCodec::of(row).ok_or_else(|| unreadable_key(name))?;
    let show = |key: &[u8]| {
        codec
            .show(key)
            .map_or_else(|| crate::error::Hex(key).to_string(), |j| j.to_string())
    };
    let total = main.len()?;
    // Every built index's expected entries: entry -> record key.
    let mut expected: Vec<std::collections::BTreeMap<Vec<u8>, Vec<u8>>> =
        vec![Default::default(); row.indexes.len()];
    let mut keys = std::collections::BTreeSet::new();
    let all = (Bound::Unbounded, Bound::Unbounded);
    main.scan(all, Direction::Forward, |key, bytes| {
        report.records += 1;
        keys.insert(key.to_vec());
        if report.records.is_multiple_of(1024) {
            progress(name, report.records, total);
        }
        let record = match decode::decode(&row.layout, bytes) {
            Ok(record) => record,
            Err(_) => {
                report.corrupt.push(show(key), None);
                return Ok(ControlFlow::Continue(()));
            }
        };
        for (i, index) in row.indexes.iter().enumerate().filter(|(_, i)| i.built) {
            if index.method.is_some() {
                // Computed by the application's code: not recomputed here.
                continue;
            }
            let Some(values) = index_values(row, &record, index) else {
                return Err(Error::corrupt(
                    crate::schema::SCHEMA_TABLE,
                    name.as_bytes(),
                    format!("{name:?}"),
                    "schema row",
                    format!(
                        "index `{}` names fields that cannot be an index",
                        index.name
                    ),
                ));
            };
            for value in values {
                let mut entry = value.clone();
                if !index.unique {
                    entry.extend_from_slice(key);
                }
                if let Some(first) = expected[i].insert(entry, key.to_vec()) {
                    // Two records with one unique value: the data is not unique.
                    let shown = decode::to_json(&Value::Bytes(value)).to_string();
                    report.indexes[i].duplicates.push(show(&first), Some(shown));
                }
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    progress(name, report.records, total);
    for (i, index) in row.indexes.iter().enumerate().filter(|(_, i)| i.built) {
        let findings = &mut report.indexes[i];
        let mut seen = std::collections::BTreeSet::new();
        let computed = index.method.is_some();
        if let Some(table) = tx.raw().table(&index_table(name, &index.name))? {
            compare_index(
                &table,
                (!computed).then_some(&expected[i]),
                &keys,
                &mut seen,
                findings,
                &show,
            )?;
        }
        for (entry, owner) in &expected[i] {
            if !seen.contains(entry) {
                findings.missing.push(show(owner), None);
            }
        }
    }
    Ok(report)
}

/// Compares the entries of an index table with the expected ones; with
/// none expected (an index computed by the application's code), checks
/// only that each names a record.
fn compare_index(
    table: &AnyTable<'_>,
    expected: Option<&std::collections::BTreeMap<Vec<u8>, Vec<u8>>>,
    keys: &std::collections::BTreeSet<Vec<u8>>,
    seen: &mut std::collections::BTreeSet<Vec<u8>>,
    findings: &mut IndexReport,
    show: &impl Fn(&[u8]) -> String,
) -> Result<()> {
    let all = (Bound::Unbounded, Bound::Unbounded);
    table.scan(all, Direction::Forward, |entry, owner| {
        findings.entries += 1;
        let Some(expected) = expected else {
            if !keys.contains(owner) {
                findings.dangling.push(show(owner), None);
            }
            return Ok(ControlFlow::Continue(()));
        };
        match expected.get(entry) {
            Some(right) if right.as_slice() == owner => {
                seen.insert(entry.to_vec());
            }
            // An entry for a value some record holds, naming another record.
            Some(_) => findings.mismatched.push(show(owner), None),
            None if keys.contains(owner) => findings.mismatched.push(show(owner), None),
            None => findings.dangling.push(show(owner), None),
        }
        Ok(ControlFlow::Continue(()))
    })
}
