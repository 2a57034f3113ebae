//! Schema metadata: which record type a table belongs to, its layout, and
//! which of its indexes are built.
//!
//! rkyv archives are not self-describing, so reading a table with a struct
//! whose layout changed would misread the bytes. Every record type carries a
//! [`Schema`] (made by `#[derive(StoredRecord)]`). The first write
//! transaction that opens a table through a record type stores a row for it
//! in the reserved table `__storage_schema`: the record type, its layout and
//! its indexes, each marked built or not. Every later open compares the
//! layout and refuses a different one with [`Error::SchemaMismatch`].
//!
//! Decisions are made from the transaction's own view: a read transaction
//! reads the row from its snapshot, a write transaction from itself. A
//! process that is the only writer of its store (redb) keeps the rows it has
//! seen in a [`SchemaCache`] guarded by a generation counter, so that a
//! snapshot uses a cached row only when no schema change was committed or
//! under way between the snapshot and the moment the row was cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use core::cell::{Cell, RefCell};

use crate::error::{Error, Hex, Result};
use crate::layout::{Layout, first_difference};

/// The reserved table holding one schema row per record table.
pub const SCHEMA_TABLE: &str = "__storage_schema";

/// The version of the stored row format this release writes and reads.
const FORMAT: u32 = 1;

/// A record type's schema: its table, version, key, layout and indexes.
///
/// Made by `#[derive(StoredRecord)]`; see [`StoredRecord::SCHEMA`](crate::StoredRecord::SCHEMA).
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// The table the record type is stored in.
    pub table: &'static str,
    /// The record type's path, e.g. `app::model::User`.
    pub record: &'static str,
    /// The schema version, `#[stored(version = ..)]`.
    pub version: u32,
    /// The names of the `#[key]` fields, in key order.
    pub key: &'static [&'static str],
    /// The secondary indexes, each in a table of its own.
    pub indexes: &'static [IndexDef],
    /// The archived layout of the record, described once.
    pub layout: fn() -> &'static Layout,
    /// The layout of the key, for a key computed by a method
    /// (`#[stored(key(by = ..))]`); `None` when the key is fields of the
    /// record (their layouts are in [`layout`](Self::layout)).
    pub key_layout: Option<fn() -> &'static Layout>,
    /// The schema of the record type this one migrates from
    /// (`#[stored(migrate_from = ..)]`).
    pub previous: Option<&'static Schema>,
    /// Its changes are kept in a durable log (`#[stored(changes)]`).
    pub changes: bool,
}

/// One secondary index of a record type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    /// The index name: the field name, or the name given in `#[index(..)]`.
    pub name: &'static str,
    /// At most one record per value.
    pub unique: bool,
    /// The indexed fields, in order; empty for an index computed by a
    /// method.
    pub fields: &'static [&'static str],
    /// `#[index(each)]`: one entry per distinct element of the field (a
    /// `Vec`), not one for the whole value.
    pub each: bool,
    /// `#[stored(index(by = method -> Type))]`: the values are what this
    /// method of the record returns.
    pub method: Option<&'static str>,
}

/// The name of the table that holds index `index` of the record table
/// `table`: `__index:{table}:{index}`.
///
/// Index names are identifiers (letters, digits, `_`), so the last `:`
/// always separates the table from the index, and no index of one table can
/// be taken for an index of another even when table names contain `:`.
pub fn index_table(table: &str, index: &str) -> String {
    format!("__index:{table}:{index}")
}

/// Whether `name` can be an index name: letters, digits and `_`.
pub(crate) fn is_index_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a table name: not empty, and not in the reserved `__` namespace.
pub(crate) fn check_name(table: &str) -> Result<()> {
    let reason = if table.is_empty() {
        "table names must not be empty"
    } else if table.chars().any(char::is_control) {
        "table names must not contain control characters"
    } else if table.starts_with("__") {
        "names starting with `__` are reserved for storage's own tables"
    } else {
        return Ok(());
    };
    // A long name is shown by its start: the error is for people.
    const SHOWN: usize = 100;
    let table = match table.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}… ({} bytes)", &table[..end], table.len()),
        None => table.to_owned(),
    };
    Err(Error::InvalidTableName { table, reason })
}

/// The schema row of a record table, as stored in [`SCHEMA_TABLE`] (JSON;
/// the README's "Stored schema format" documents it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredRow {
    format: u32,
    /// The record type's path.
    pub(crate) record: String,
    /// Its schema version.
    pub(crate) version: u32,
    /// The names of its key fields, in key order.
    pub(crate) key: Vec<String>,
    /// The rkyv format the records are archived in.
    pub(crate) rkyv: String,
    /// The archived layout of a record.
    pub(crate) layout: Layout,
    /// The layout of a key computed by a method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_layout: Option<Layout>,
    /// Its indexes, with their state.
    pub(crate) indexes: Vec<StoredIndex>,
    /// The table keeps a durable change log: whatever record type writes it.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub(crate) changes: bool,
    /// A schema found to match this row: the next comparison is one load.
    #[serde(skip)]
    matched: Memo,
}

/// Whether records written by `a` read as `b`: the same type, or the same
/// version, key and layout.
pub(crate) fn compatible(a: &'static Schema, b: &'static Schema) -> bool {
    core::ptr::eq(a, b)
        || (a.version == b.version
            && a.key == b.key
            && same_key_layout(a.key_layout.map(|l| l()), b.key_layout.map(|l| l()))
            && first_difference((a.layout)(), (b.layout)()).is_none())
}

/// Whether two computed keys (or two keys of fields) are laid out alike.
fn same_key_layout(a: Option<&Layout>, b: Option<&Layout>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => first_difference(a, b).is_none(),
        _ => false,
    }
}

/// The address of a [`Schema`] known to match a row.
#[derive(Debug, Default)]
struct Memo(AtomicUsize);

impl Clone for Memo {
    fn clone(&self) -> Self {
        Memo(AtomicUsize::new(self.0.load(Ordering::Relaxed)))
    }
}

impl PartialEq for Memo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// One index in a [`StoredRow`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredIndex {
    pub(crate) name: String,
    pub(crate) unique: bool,
    pub(crate) fields: Vec<String>,
    /// One entry per element (`#[index(each)]`).
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub(crate) each: bool,
    /// The method computing its values, for an index computed by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) method: Option<String>,
    /// Its entries are complete and exact.
    pub(crate) built: bool,
    /// Why it could not be built: two records holding one unique value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) conflict: Option<Conflict>,
}

impl StoredIndex {
    /// Whether this is the index `def`: same name, uniqueness, fields, fan-out
    /// and method.
    pub(crate) fn is(&self, def: &IndexDef) -> bool {
        self.name == def.name
            && self.unique == def.unique
            && self.fields.iter().eq(def.fields)
            && self.each == def.each
            && self.method.as_deref() == def.method
    }
}

/// Two records holding one value of a unique index.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Conflict {
    pub(crate) value: String,
    pub(crate) keys: [String; 2],
}

/// The rkyv format this build archives in: rkyv's global features change
/// the byte order and the width of `usize` for the whole program.
pub(crate) fn rkyv_format() -> &'static str {
    static FORMAT_NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FORMAT_NAME.get_or_init(|| {
        let one = rkyv::to_bytes::<rkyv::rancor::Failure>(&1u32);
        let order = match one.as_deref() {
            Ok([1, ..]) => "little-endian",
            Ok(_) => "big-endian",
            Err(_) => "unknown byte order",
        };
        format!(
            "rkyv 0.8, {order}, usize {} bits",
            size_of::<rkyv::Archived<usize>>() * 8
        )
    })
}

impl StoredRow {
    /// The row of `schema` with index `i` built where `built` has bit `i`,
    /// and the conflicts of those that could not be.
    pub(crate) fn new(schema: &Schema, built: u64, conflicts: &[(usize, Conflict)]) -> Self {
        let indexes = schema
            .indexes
            .iter()
            .enumerate()
            .map(|(i, def)| StoredIndex {
                name: def.name.to_owned(),
                unique: def.unique,
                fields: def.fields.iter().map(|f| (*f).to_owned()).collect(),
                each: def.each,
                method: def.method.map(str::to_owned),
                built: built & (1 << i) != 0,
                conflict: conflicts
                    .iter()
                    .find(|(at, _)| *at == i)
                    .map(|(_, c)| c.clone()),
            })
            .collect();
        StoredRow {
            format: FORMAT,
            record: schema.record.to_owned(),
            version: schema.version,
            key: schema.key.iter().map(|k| (*k).to_owned()).collect(),
            rkyv: rkyv_format().to_owned(),
            layout: (schema.layout)().clone(),
            key_layout: schema.key_layout.map(|l| l().clone()),
            indexes,
            changes: schema.changes,
            matched: Memo::default(),
        }
    }

    /// The row `schema` stores with nothing built: for describing it in errors.
    pub(crate) fn of(schema: &Schema) -> Self {
        StoredRow::new(schema, 0, &[])
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        // Serializing strings, numbers, vectors and enums cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads the row stored for `table`; refuses one that is not in this
    /// release's format or names an index that is not an identifier.
    pub(crate) fn decode(table: &str, bytes: &[u8]) -> Result<Self> {
        let corrupt = |why: String| {
            Error::corrupt(
                SCHEMA_TABLE,
                table.as_bytes(),
                format!("{table:?}"),
                "schema",
                why,
            )
        };
        let row: StoredRow = match serde_json::from_slice(bytes) {
            Ok(row) => row,
            Err(e) => {
                if bytes.starts_with(table.as_bytes()) && bytes.get(table.len()) == Some(&b' ') {
                    return Err(Error::UnsupportedFormat {
                        table: table.to_owned(),
                        found: "the text format of storage 0.1".to_owned(),
                    });
                }
                if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes)
                    && let Some(format) = value.get("format").and_then(|f| f.as_u64())
                    && format != u64::from(FORMAT)
                {
                    return Err(Error::UnsupportedFormat {
                        table: table.to_owned(),
                        found: format!("schema row format {format}"),
                    });
                }
                let shown: String = match core::str::from_utf8(bytes) {
                    Ok(text) => format!("{:?}", text.chars().take(200).collect::<String>()),
                    Err(_) => Hex(&bytes[..bytes.len().min(64)]).to_string(),
                };
                return Err(corrupt(format!("not a schema row ({e}): {shown}")));
            }
        };
        if row.format != FORMAT {
            return Err(Error::UnsupportedFormat {
                table: table.to_owned(),
                found: format!("schema row format {}", row.format),
            });
        }
        if let Some(bad) = row.indexes.iter().find(|i| !is_index_name(&i.name)) {
            return Err(corrupt(format!(
                "index name {:?} is not an identifier, so it names no index of this table",
                bad.name
            )));
        }
        Ok(row)
    }

    /// Whether the records of this row are `schema`'s: same version, layout
    /// (names of types aside), key fields and rkyv format. The version
    /// counts even where the layout is the same: a migration between two
    /// versions may change what the values mean.
    pub(crate) fn holds(&self, schema: &'static Schema) -> bool {
        let address = schema as *const Schema as usize;
        if self.matched.0.load(Ordering::Relaxed) == address {
            return true;
        }
        let same = self.version == schema.version
            && self.rkyv == rkyv_format()
            && self.key.iter().eq(schema.key)
            && same_key_layout(self.key_layout.as_ref(), schema.key_layout.map(|l| l()))
            && first_difference(&self.layout, (schema.layout)()).is_none();
        if same {
            self.matched.0.store(address, Ordering::Relaxed);
        }
        same
    }

    /// The row shown for an error: record type, version and layout.
    fn shown(&self) -> String {
        format!(
            "version {} of `{}`, key ({}): {}",
            self.version,
            self.record,
            self.key.join(", "),
            self.layout
        )
    }
}

/// `schema` shown for an error like [`StoredRow::shown`].
fn shown(schema: &Schema) -> String {
    format!(
        "version {} of `{}`, key ({}): {}",
        schema.version,
        schema.record,
        schema.key.join(", "),
        (schema.layout)()
    )
}

/// The schemas `schema` migrates from, nearest first.
pub(crate) fn chain(schema: &'static Schema) -> impl Iterator<Item = &'static Schema> {
    core::iter::successors(schema.previous, |s| s.previous)
}

/// The error for a table whose row does not hold `schema`'s records.
pub(crate) fn mismatch(schema: &'static Schema, row: &StoredRow) -> Error {
    let difference = if row.version != schema.version {
        match first_difference(&row.layout, (schema.layout)()) {
            Some(layout) => format!(
                "in the version: {} stored, {} here; and {layout}",
                row.version, schema.version
            ),
            None => format!(
                "in the version: {} stored, {} here (the layout is the same)",
                row.version, schema.version
            ),
        }
    } else if row.rkyv != rkyv_format() {
        format!(
            "in the rkyv format: `{}` stored, `{}` here",
            row.rkyv,
            rkyv_format()
        )
    } else if !row.key.iter().eq(schema.key) {
        format!(
            "in the key: ({}) stored, ({}) here",
            row.key.join(", "),
            schema.key.join(", ")
        )
    } else if !same_key_layout(row.key_layout.as_ref(), schema.key_layout.map(|l| l())) {
        let shown =
            |l: Option<&Layout>| l.map_or_else(|| "its fields".to_owned(), Layout::to_string);
        format!(
            "in the type of the computed key: {} stored, {} here",
            shown(row.key_layout.as_ref()),
            shown(schema.key_layout.map(|l| l()))
        )
    } else {
        first_difference(&row.layout, (schema.layout)())
            .unwrap_or_else(|| "in the names of the types".to_owned())
    };
    let short = schema.record.rsplit("::").next().unwrap_or(schema.record);
    let hint = match chain(schema).find(|older| row.holds(older)) {
        Some(older) => format!(
            "the table holds version {} (`{}`), which `{short}` migrates from: call `storage.migrate::<{short}>()`",
            older.version, older.record
        ),
        None => format!(
            "to change the layout, keep the old struct, bump `#[stored(version = {}, migrate_from = ..)]` and call `storage.migrate::<{short}>()`, or bind the new type to a new table",
            schema.version.max(row.version) + 1
        ),
    };
    Error::SchemaMismatch {
        table: schema.table.to_owned(),
        details: Box::new(crate::error::SchemaDifference {
            stored: row.shown(),
            expected: shown(schema),
            difference,
            hint,
        }),
    }
}

/// What a record type finds in its table's stored row.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plan {
    /// Bit `i`: index `i` of the record type is built and current.
    pub(crate) built: u64,
    /// Indexes of the record type that the row lists as not built, with
    /// the conflict that stopped them.
    pub(crate) pending: Vec<(usize, Option<Conflict>)>,
    /// Bit `i`: index `i` of the record type is not in the row at all (or
    /// with another definition).
    pub(crate) missing: u64,
    /// Stored indexes the record type does not have (identifiers).
    pub(crate) stale: Vec<String>,
}

impl Plan {
    /// Nothing to change: every index built, none stale.
    pub(crate) fn is_current(&self, schema: &Schema) -> bool {
        self.built == all_indexes(schema) && self.stale.is_empty()
    }
}

/// Bit `i` set for every index `i` of `schema`.
pub(crate) fn all_indexes(schema: &Schema) -> u64 {
    match schema.indexes.len() {
        0 => 0,
        n if n >= 64 => u64::MAX,
        n => (1 << n) - 1,
    }
}

/// Compares `schema` with the stored `row`: a different layout is
/// [`Error::SchemaMismatch`]; otherwise which indexes are built.
pub(crate) fn plan(schema: &'static Schema, row: Option<&StoredRow>) -> Result<Plan> {
    let Some(row) = row else {
        return Ok(Plan {
            missing: all_indexes(schema),
            ..Plan::default()
        });
    };
    if !row.holds(schema) {
        return Err(mismatch(schema, row));
    }
    let mut plan = Plan::default();
    for (i, def) in schema.indexes.iter().enumerate() {
        match row.indexes.iter().find(|s| s.is(def)) {
            Some(s) if s.built => plan.built |= 1 << i,
            Some(s) => plan.pending.push((i, s.conflict.clone())),
            None => plan.missing |= 1 << i,
        }
    }
    plan.stale = row
        .indexes
        .iter()
        .filter(|s| !schema.indexes.iter().any(|def| s.is(def)))
        .map(|s| s.name.clone())
        .collect();
    Ok(plan)
}

/// A stored row, or its absence, shared between transactions and the cache.
pub(crate) type Row = Option<Arc<StoredRow>>;

/// The rows one transaction has seen or stored, for the tables it opened in
/// the order it opened them.
#[derive(Default)]
pub(crate) struct Catalog {
    rows: RefCell<Vec<(Box<str>, Row)>>,
    /// Tables whose rows this transaction stored.
    changed: RefCell<Vec<String>>,
    /// Counts the rows this transaction stored and the index tables it
    /// deleted, so that handles notice a change made through another one.
    version: Cell<u64>,
    /// Savepoints open, and what each `stored` under them replaced, so that
    /// a rollback of the engine's writes is a rollback of the rows too.
    depth: Cell<usize>,
    journal: RefCell<Vec<Replaced>>,
}

/// What [`Catalog::stored`] replaced: the table's entry in `rows` (`None`
/// if it had none) and whether it was in `changed`.
struct Replaced {
    table: Box<str>,
    row: Option<Row>,
    changed: bool,
}

impl Catalog {
    /// The row of `table`: as seen before, else `load`ed.
    pub(crate) fn row(&self, table: &str, load: impl FnOnce() -> Result<Row>) -> Result<Row> {
        if let Some((_, row)) = self.rows.borrow().iter().find(|(t, _)| &**t == table) {
            return Ok(row.clone());
        }
        let row = load()?;
        self.set(table, row.clone());
        Ok(row)
    }

    fn set(&self, table: &str, row: Row) {
        let mut rows = self.rows.borrow_mut();
        match rows.iter_mut().find(|(t, _)| &**t == table) {
            Some((_, slot)) => *slot = row,
            None => rows.push((table.into(), row)),
        }
    }

    /// The tables seen, in the order they were first opened.
    pub(crate) fn tables(&self) -> Vec<String> {
        self.rows
            .borrow()
            .iter()
            .map(|(t, _)| t.to_string())
            .collect()
    }

    /// Records that this transaction stored `row` for `table`.
    pub(crate) fn stored(&self, table: &str, row: Row) {
        let mut changed = self.changed.borrow_mut();
        let was_changed = changed.iter().any(|t| t == table);
        if self.depth.get() > 0 {
            let previous = self
                .rows
                .borrow()
                .iter()
                .find(|(t, _)| &**t == table)
                .map(|(_, row)| row.clone());
            self.journal.borrow_mut().push(Replaced {
                table: table.into(),
                row: previous,
                changed: was_changed,
            });
        }
        self.set(table, row);
        if !was_changed {
            changed.push(table.to_owned());
        }
        self.bump();
    }

    /// Opens a savepoint; returns its mark for [`end`](Self::end).
    pub(crate) fn mark(&self) -> usize {
        self.depth.set(self.depth.get() + 1);
        self.journal.borrow().len()
    }

    /// Savepoints open.
    pub(crate) fn depth(&self) -> usize {
        self.depth.get()
    }

    /// Ends the savepoint `mark`: keeps what was stored since, or puts back
    /// what it replaced.
    pub(crate) fn end(&self, mark: usize, keep: bool) {
        let mut journal = self.journal.borrow_mut();
        if !keep {
            let at = mark.min(journal.len());
            let undone = journal.split_off(at);
            let mut rows = self.rows.borrow_mut();
            let mut changed = self.changed.borrow_mut();
            for replaced in undone.into_iter().rev() {
                let at = rows.iter().position(|(t, _)| *t == replaced.table);
                match (at, replaced.row) {
                    (Some(at), Some(row)) => rows[at].1 = row,
                    (Some(at), None) => drop(rows.remove(at)),
                    (None, Some(row)) => rows.push((replaced.table.clone(), row)),
                    (None, None) => {}
                }
                if !replaced.changed {
                    changed.retain(|t| **t != *replaced.table);
                }
            }
            self.bump();
        }
        self.depth.set(self.depth.get().saturating_sub(1));
        if self.depth.get() == 0 {
            journal.clear();
        }
    }

    /// Records a change handles must notice (an index table deleted).
    pub(crate) fn bump(&self) {
        self.version.set(self.version.get() + 1);
    }

    pub(crate) fn version(&self) -> u64 {
        self.version.get()
    }

    /// The rows this transaction stored, for the cache once it commits.
    pub(crate) fn changes(&self) -> Vec<(String, Row)> {
        let rows = self.rows.borrow();
        let row = |table: &str| {
            rows.iter()
                .find(|(t, _)| &**t == table)
                .and_then(|(_, row)| row.clone())
        };
        self.changed
            .borrow()
            .iter()
            .map(|table| (table.clone(), row(table)))
            .collect()
    }
}

/// Stored rows this process has seen, for a store it alone writes to.
///
/// `generation` is even while no schema change is being committed, odd while
/// one is. A read transaction notes the generation before and after its
/// snapshot is taken; only if both are the same even number may it use (and
/// fill) the cache, and only while the cache is still at that generation.
#[derive(Debug, Default)]
pub(crate) struct SchemaCache {
    inner: RwLock<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    generation: u64,
    rows: HashMap<String, Row>,
    /// The engine's count of writes from outside the layer the rows match.
    foreign: u64,
}

impl SchemaCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, CacheInner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, CacheInner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets every row if the engine was written from outside the layer
    /// (`foreign` is the engine's count of such writes) since they were seen.
    pub(crate) fn sync(&self, foreign: u64) {
        if self.read().foreign == foreign {
            return;
        }
        let mut inner = self.write();
        if inner.foreign != foreign {
            inner.rows.clear();
            inner.foreign = foreign;
            inner.generation += 2;
        }
    }

    /// The current generation.
    pub(crate) fn generation(&self) -> u64 {
        self.read().generation
    }

    /// The cached row of `table`, if the cache is at `generation` (even).
    pub(crate) fn get(&self, table: &str, generation: u64) -> Option<Row> {
        let inner = self.read();
        if inner.generation != generation || !generation.is_multiple_of(2) {
            return None;
        }
        inner.rows.get(table).cloned()
    }

    /// Caches `row` for `table` if the cache is still at `generation` (even).
    pub(crate) fn insert(&self, table: &str, row: Row, generation: u64) {
        let mut inner = self.write();
        if inner.generation == generation && generation.is_multiple_of(2) {
            inner.rows.insert(table.to_owned(), row);
        }
    }

    /// Before committing a schema change: snapshots taken from now on do not
    /// use the cache.
    pub(crate) fn begin_change(&self) {
        let mut inner = self.write();
        if inner.generation.is_multiple_of(2) {
            inner.generation += 1;
        }
    }

    /// After the commit (or its failure): the stored rows cached, or
    /// forgotten when the commit failed, and the generation even again.
    pub(crate) fn end_change(&self, rows: Vec<(String, Row)>, committed: bool) {
        let mut inner = self.write();
        for (table, row) in rows {
            if committed {
                inner.rows.insert(table, row);
            } else {
                inner.rows.remove(&table);
            }
        }
        inner.generation += if inner.generation.is_multiple_of(2) {
            2
        } else {
            1
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Describer, Field};

    const INDEXES: &[IndexDef] = &[IndexDef {
        name: "email",
        unique: true,
        fields: &["email"],
        each: false,
        method: None,
    }];

    fn users() -> &'static Layout {
        static LAYOUT: std::sync::OnceLock<Layout> = std::sync::OnceLock::new();
        LAYOUT.get_or_init(|| Layout::Struct {
            name: "User".into(),
            fields: vec![
                Field::new("id", Layout::U64),
                Field::new("email", Describer::layout_of::<String>()),
            ],
            size: 16,
            align: 8,
        })
    }

    fn other() -> &'static Layout {
        static LAYOUT: std::sync::OnceLock<Layout> = std::sync::OnceLock::new();
        LAYOUT.get_or_init(|| Layout::Struct {
            name: "User".into(),
            fields: vec![
                Field::new("id", Layout::U64),
                Field::new("email", Layout::U32),
            ],
            size: 16,
            align: 8,
        })
    }

    static WITH_INDEX: Schema = Schema {
        table: "users",
        record: "app::User",
        version: 1,
        key: &["id"],
        indexes: INDEXES,
        layout: users,
        key_layout: None,
        previous: None,
        changes: false,
    };
    static WITHOUT: Schema = Schema {
        indexes: &[],
        ..WITH_INDEX
    };
    static CHANGED: Schema = Schema {
        version: 2,
        layout: other,
        key_layout: None,
        previous: Some(&WITH_INDEX),
        changes: false,
        ..WITH_INDEX
    };

    fn row(schema: &Schema, built: u64) -> StoredRow {
        let row = StoredRow::new(schema, built, &[]);
        StoredRow::decode(schema.table, &row.encode()).unwrap()
    }

    #[test]
    fn plans_compare_layout_then_indexes() {
        let current = plan(&WITH_INDEX, Some(&row(&WITH_INDEX, 1))).unwrap();
        assert!(current.is_current(&WITH_INDEX));
        let pending = plan(&WITH_INDEX, Some(&row(&WITH_INDEX, 0))).unwrap();
        assert_eq!(pending.pending, [(0, None)]);
        let stale = plan(&WITHOUT, Some(&row(&WITH_INDEX, 1))).unwrap();
        assert_eq!(stale.stale, ["email"]);
        let missing = plan(&WITH_INDEX, Some(&row(&WITHOUT, 0))).unwrap();
        assert_eq!(missing.missing, 1);
        let err = plan(&CHANGED, Some(&row(&WITH_INDEX, 1))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("at `email`: `String` stored, `u32` here"),
            "{text}"
        );
        assert!(text.contains("storage.migrate::<User>()"), "{text}");
    }

    #[test]
    fn rows_naming_foreign_indexes_are_refused() {
        let mut tampered = StoredRow::new(&WITH_INDEX, 1, &[]);
        tampered.indexes[0].name = "x:email".into();
        let err = StoredRow::decode("users", &tampered.encode()).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt { part: "schema", .. }),
            "{err}"
        );
        let old = b"users v1 key(id) fields(id: u64)";
        assert!(matches!(
            StoredRow::decode("users", old),
            Err(Error::UnsupportedFormat { .. })
        ));
        let future = br#"{"format": 9}"#;
        assert!(matches!(
            StoredRow::decode("users", future),
            Err(Error::UnsupportedFormat { .. })
        ));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("users").is_ok());
        assert!(matches!(
            check_name(""),
            Err(Error::InvalidTableName { .. })
        ));
        let err = check_name("__mine").unwrap_err();
        assert_eq!(err.table(), Some("__mine"));
        assert!(err.to_string().contains("reserved"), "{err}");
        assert!(check_name(&index_table("users", "email")).is_err());
    }

    #[test]
    fn the_cache_is_used_only_at_its_generation() {
        let cache = SchemaCache::default();
        let g = cache.generation();
        cache.insert("users", None, g);
        assert_eq!(cache.get("users", g), Some(None));
        cache.begin_change();
        assert_eq!(cache.get("users", g), None, "a change is under way");
        cache.insert("other", None, g);
        cache.end_change(
            vec![("users".into(), Some(Arc::new(row(&WITH_INDEX, 1))))],
            true,
        );
        let now = cache.generation();
        assert_eq!(now % 2, 0);
        assert!(cache.get("users", now).is_some_and(|r| r.is_some()));
        assert_eq!(cache.get("other", now), None);
    }
}
