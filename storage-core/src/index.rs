//! Secondary indexes: their upkeep inside write transactions, their builds,
//! and lookups through them, checked against the records they return.
//!
//! Each index of a record table lives in a table of its own (named by
//! [`index_table`](crate::schema::index_table)), written in the same
//! transaction as the record. Index values are stored in the key-part
//! encoding of [`crate::key`], so they sort like the values themselves:
//!
//! - a unique index maps `value` to the record's key;
//! - any other index maps `value ++ record key` to the record's key, so equal
//!   values come back in key order.
//!
//! A record is written in three steps, in this order: compute its old and new
//! index entries; check every unique index, so that a clash fails before
//! anything changed; then replace the entries that differ and store the record.
//!
//! Index answers are never trusted: every record a lookup returns is
//! validated and its index value computed again from it; an entry that
//! disagrees with its record, or names none, is [`Error::Corrupt`].

use core::ops::{Bound, ControlFlow, RangeBounds};

use rkyv::rancor::BoxedError;
use smallvec::SmallVec;

use crate::backend::{AnyTable, Direction, ReadTable, WriteTable};
use crate::error::{Error, Result};
use crate::key::{self, FromKeyBytes, IntoKeyBytes, KeyBuf, prefix_successor};
use crate::record::StoredRecord;
use crate::schema::{Conflict, IndexDef, Schema};
use crate::value::{self, Buffers};

/// What the index machinery knows of a record type, whatever the handle's
/// value type: the schema, how to get index values out of stored bytes, and
/// how to show keys and values in errors.
#[derive(Clone, Copy)]
pub(crate) struct RecordMeta {
    pub(crate) schema: &'static Schema,
    stored_index_values: fn(&[u8], usize, &mut IndexValues) -> Result<(), BoxedError>,
    pub(crate) show_key: fn(&[u8]) -> String,
    pub(crate) show_value: fn(usize, &[u8]) -> String,
}

impl RecordMeta {
    /// The values of index `index` of the stored record `bytes` into `out`;
    /// none if the bytes do not validate.
    pub(crate) fn stored_values(&self, bytes: &[u8], index: usize, out: &mut IndexValues) {
        if (self.stored_index_values)(bytes, index, out).is_err() {
            out.clear();
        }
    }
}

/// What a handle knows of its record type `V`: [`RecordMeta`], and how to
/// get index values and the key out of a `V`.
pub(crate) struct RecordInfo<V> {
    pub(crate) meta: RecordMeta,
    index_values: fn(&V, usize, &mut IndexValues),
    /// The encoded key of a record, to check `put(key, record)`.
    pub(crate) own_key: fn(&V) -> KeyBuf,
}

impl<V> Clone for RecordInfo<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for RecordInfo<V> {}

impl<V> core::ops::Deref for RecordInfo<V> {
    type Target = RecordMeta;

    fn deref(&self) -> &RecordMeta {
        &self.meta
    }
}

impl<R: StoredRecord> RecordInfo<R> {
    pub(crate) fn of() -> Self {
        RecordInfo {
            meta: RecordMeta {
                schema: R::SCHEMA,
                stored_index_values: stored_index_values::<R>,
                show_key: key::show::<R::Key>,
                show_value: R::show_index_value,
            },
            index_values: |record, index, out| {
                record.index_values(index, out);
                out.normalize();
            },
            own_key: |record| {
                let mut out = KeyBuf::new();
                out.extend_from_slice(record.key_ref().into_key_bytes().as_ref());
                out
            },
        }
    }
}

/// Index values of a stored record: validates the bytes, then reads the archive.
fn stored_index_values<R: StoredRecord>(
    bytes: &[u8],
    index: usize,
    out: &mut IndexValues,
) -> Result<(), BoxedError> {
    value::read::<R, _>(bytes, |archived| archived_values::<R>(archived, index, out))
}

/// The values of index `index` of an archived record, normalized.
fn archived_values<R: StoredRecord>(archived: &R::Archived, index: usize, out: &mut IndexValues) {
    out.clear();
    R::archived_index_values(archived, index, out);
    out.normalize();
}

/// The encoded values a record has for one index, in the key-part encoding:
/// none (an `Option` field that is `None`), one, or for an
/// `#[index(each)]` index one per distinct element. Written by the code
/// `#[derive(StoredRecord)]` generates.
#[derive(Clone, Default)]
pub struct IndexValues {
    bytes: KeyBuf,
    /// Where each value ends in `bytes`.
    ends: SmallVec<[u32; 2]>,
    /// Sorted without repeats (by [`normalize`](Self::normalize)).
    sorted: bool,
}

impl IndexValues {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one value, which `write` appends to the buffer it is given.
    pub fn push(&mut self, write: impl FnOnce(&mut KeyBuf)) {
        self.sorted = false;
        write(&mut self.bytes);
        // Index values are keys: far below 4 GiB (redb's limit is 3 GiB).
        self.ends
            .push(u32::try_from(self.bytes.as_slice().len()).unwrap_or(u32::MAX));
    }

    /// The values, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let bytes = self.bytes.as_slice();
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let value = &bytes[start..end as usize];
            start = end as usize;
            value
        })
    }

    /// How many values.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The first value, the only one of an index that is not `each`.
    pub fn first(&self) -> Option<&[u8]> {
        self.iter().next()
    }

    /// Value number `i`.
    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes.as_slice()[start..self.ends[i] as usize]
    }

    /// Whether `value` is one of the values: a binary search once they are
    /// sorted, so that comparing two records' long `each` lists stays
    /// `n log n`.
    pub fn contains(&self, value: &[u8]) -> bool {
        if !self.sorted {
            return self.iter().any(|v| v == value);
        }
        let (mut lo, mut hi) = (0, self.ends.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(value) {
                core::cmp::Ordering::Less => lo = mid + 1,
                core::cmp::Ordering::Greater => hi = mid,
                core::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    fn clear(&mut self) {
        self.bytes = KeyBuf::new();
        self.ends.clear();
        self.sorted = false;
    }

    /// Sorts the values and drops repeats: a record has one entry per
    /// distinct value.
    fn normalize(&mut self) {
        if self.ends.len() >= 2 {
            let mut values: Vec<Vec<u8>> = self.iter().map(<[u8]>::to_vec).collect();
            values.sort_unstable();
            values.dedup();
            self.clear();
            for value in values {
                self.push(|out| out.extend_from_slice(&value));
            }
        }
        self.sorted = true;
    }
}

impl PartialEq for IndexValues {
    fn eq(&self, other: &Self) -> bool {
        self.ends == other.ends && self.bytes == other.bytes
    }
}

impl Eq for IndexValues {}

impl core::fmt::Debug for IndexValues {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|v| crate::error::Hex(v).to_string()))
            .finish()
    }
}

/// One set of values per index (empty when the index is not kept).
pub(crate) type Entries = SmallVec<[IndexValues; 4]>;

/// The index entries of what is stored under a key now.
// A short-lived local of the write path: boxing the entries would allocate
// on every write.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Stored {
    /// Nothing is stored under the key.
    Nothing,
    /// A record with these entries.
    Entries(Entries),
    /// A record whose bytes do not validate, so its entries are unknown:
    /// whatever points at its key is removed.
    Damaged,
}

/// The index table key of a record with index value `value` and key `key`.
fn entry_key(index: &IndexDef, value: &[u8], key: &[u8]) -> KeyBuf {
    let mut entry = KeyBuf::new();
    entry.extend_from_slice(value);
    if !index.unique {
        entry.extend_from_slice(key);
    }
    entry
}

/// Whether bit `i` of `mask` is set.
pub(crate) fn has(mask: u64, i: usize) -> bool {
    i < 64 && mask & (1 << i) != 0
}

impl<V> RecordInfo<V> {
    /// Index entries of `value`, for the indexes in `kept`.
    pub(crate) fn entries(&self, value: &V, kept: u64) -> Entries {
        (0..self.schema.indexes.len())
            .map(|index| {
                let mut out = IndexValues::new();
                if has(kept, index) {
                    (self.index_values)(value, index, &mut out);
                }
                out
            })
            .collect()
    }
}

impl RecordMeta {
    /// Index entries of the record in `bytes`, for the indexes in `kept`; an
    /// error if the bytes do not validate.
    fn entries_of_bytes(&self, bytes: &[u8], kept: u64) -> Result<Entries, BoxedError> {
        let mut entries = Entries::new();
        for index in 0..self.schema.indexes.len() {
            let mut values = IndexValues::new();
            if has(kept, index) {
                (self.stored_index_values)(bytes, index, &mut values)?;
            }
            entries.push(values);
        }
        Ok(entries)
    }

    /// The index entries of what `main` holds under `key` now.
    pub(crate) fn stored(&self, main: &AnyTable<'_>, key: &[u8], kept: u64) -> Result<Stored> {
        Ok(
            match main.get(key, |bytes| self.entries_of_bytes(bytes, kept))? {
                None => Stored::Nothing,
                Some(Ok(entries)) => Stored::Entries(entries),
                Some(Err(_)) => Stored::Damaged,
            },
        )
    }

    /// Whether the record under `owner` in `main` has `value` for `index`.
    fn holds(&self, main: &AnyTable<'_>, owner: &[u8], index: usize, value: &[u8]) -> Result<bool> {
        let mut out = IndexValues::new();
        let found = main.get(owner, |bytes| {
            (self.stored_index_values)(bytes, index, &mut out)
        })?;
        Ok(matches!(found, Some(Ok(()))) && out.contains(value))
    }

    /// Refuses `new` if a unique index in `kept` holds one of its values for
    /// a record other than `key` (that really has it). Changes nothing.
    pub(crate) fn check_unique(
        &self,
        main: &AnyTable<'_>,
        indexes: &[AnyTable<'_>],
        key: &[u8],
        old: &Stored,
        new: &Entries,
    ) -> Result<()> {
        for (i, def) in self.schema.indexes.iter().enumerate() {
            let Some(value) = new[i].first().filter(|_| def.unique) else {
                continue;
            };
            if matches!(old, Stored::Entries(old) if old[i].contains(value)) {
                continue;
            }
            let owner = indexes[i].get(value, <[u8]>::to_vec)?;
            let Some(owner) = owner.filter(|owner| owner != key) else {
                continue;
            };
            // An entry whose record does not hold the value is stale: the
            // write takes it over instead of being refused.
            if self.holds(main, &owner, i, value)? {
                return Err(Error::UniqueViolation {
                    table: self.schema.table.to_owned(),
                    index: def.name.to_owned(),
                    value: (self.show_value)(i, value),
                    existing: (self.show_key)(&owner),
                });
            }
        }
        Ok(())
    }

    /// Replaces the index entries of the record under `key`: those of `old`
    /// become `new` (`None` when deleting), for the indexes in `kept`. Run
    /// [`check_unique`](Self::check_unique) first: an error here leaves the
    /// indexes part-way.
    pub(crate) fn apply(
        &self,
        indexes: &[AnyTable<'_>],
        key: &[u8],
        old: &Stored,
        new: Option<&Entries>,
        kept: u64,
    ) -> Result<()> {
        let none = IndexValues::new();
        for (i, def) in self.schema.indexes.iter().enumerate() {
            if !has(kept, i) {
                continue;
            }
            let new = new.map_or(&none, |new| &new[i]);
            let old = match old {
                Stored::Entries(old) => &old[i],
                Stored::Damaged => {
                    for entry in entries_pointing_at(&indexes[i], key)? {
                        indexes[i].remove(&entry, |_| ())?;
                    }
                    &none
                }
                Stored::Nothing => &none,
            };
            if old == new {
                continue;
            }
            let table = &indexes[i];
            for value in old.iter().filter(|value| !new.contains(value)) {
                remove_entry(table, def, value, key)?;
            }
            for value in new.iter().filter(|value| !old.contains(value)) {
                table.insert(entry_key(def, value, key).as_slice(), key)?;
            }
        }
        Ok(())
    }

    /// Fills the indexes in `build` (whose tables are empty) from the records
    /// of `main`. Returns the indexes built, and for each unique index that
    /// could not be, the first two records found holding one value; such an
    /// index is left out (its table holds a part of its entries, which
    /// nothing reads). Records whose bytes do not validate are left out of
    /// the indexes: reading them gives [`Error::Corrupt`] anyway.
    pub(crate) fn build(
        &self,
        main: &AnyTable<'_>,
        indexes: &[AnyTable<'_>],
        build: u64,
    ) -> Result<(u64, Vec<(usize, Conflict)>)> {
        let mut built = build;
        let mut conflicts: Vec<(usize, Conflict)> = Vec::new();
        main.scan(
            (Bound::Unbounded, Bound::Unbounded),
            Direction::Forward,
            |key, bytes| {
                let Ok(entries) = self.entries_of_bytes(bytes, built) else {
                    return Ok(ControlFlow::Continue(()));
                };
                for (i, def) in self.schema.indexes.iter().enumerate() {
                    let table = &indexes[i];
                    for value in entries[i].iter() {
                        if def.unique
                            && let Some(owner) = table.get(value, <[u8]>::to_vec)?
                        {
                            built &= !(1 << i);
                            conflicts.push((
                                i,
                                Conflict {
                                    value: (self.show_value)(i, value),
                                    keys: [(self.show_key)(&owner), (self.show_key)(key)],
                                },
                            ));
                            continue;
                        }
                        table.insert(entry_key(def, value, key).as_slice(), key)?;
                    }
                }
                Ok(if built == 0 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        )?;
        Ok((built, conflicts))
    }
}

/// Removes the entry of `value` for the record `key`; a unique entry only if
/// it points at `key` (another record may own the value by now).
fn remove_entry(table: &AnyTable<'_>, def: &IndexDef, value: &[u8], key: &[u8]) -> Result<()> {
    if def.unique {
        let ours = table.get(value, |owner| owner == key)?.unwrap_or(false);
        if !ours {
            return Ok(());
        }
    }
    table.remove(entry_key(def, value, key).as_slice(), |_| ())
}

/// The keys of the entries of an index table that point at the record `key`.
fn entries_pointing_at(table: &AnyTable<'_>, key: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut found = Vec::new();
    table.scan(
        (Bound::Unbounded, Bound::Unbounded),
        Direction::Forward,
        |entry, owner| {
            if owner == key {
                found.push(entry.to_vec());
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(found)
}

/// A corrupt entry of index `def` of `R`'s table.
fn corrupt_entry<R: StoredRecord>(
    def: &IndexDef,
    index: usize,
    entry: &[u8],
    why: &'static str,
) -> Error {
    let table = crate::schema::index_table(R::SCHEMA.table, def.name);
    Error::corrupt(
        &table,
        entry,
        R::show_index_entry(index, entry),
        "index entry",
        why,
    )
}

/// The record under `owner` of an entry `entry` of index `index`, checked to
/// hold the entry's value; `f` runs on it.
fn verified<R: StoredRecord, T>(
    main: &AnyTable<'_>,
    buffers: &Buffers,
    index: usize,
    entry: &[u8],
    owner: &[u8],
    f: impl FnOnce(&R::Archived) -> T,
) -> Result<T> {
    let def = &R::SCHEMA.indexes[index];
    let found = main.get(owner, |bytes| {
        let mut buf = buffers.take();
        let archived = value::check::<R>(value::aligned(bytes, &mut buf)).map_err(|e| {
            Error::corrupt(
                R::SCHEMA.table,
                owner,
                key::show::<R::Key>(owner),
                "value",
                e,
            )
        })?;
        let mut computed = IndexValues::new();
        archived_values::<R>(archived, index, &mut computed);
        if !is_entry_of(def, entry, owner, &computed) {
            return Err(corrupt_entry::<R>(
                def,
                index,
                entry,
                "the record it names does not hold its value",
            ));
        }
        Ok(f(archived))
    })?;
    found.unwrap_or_else(|| {
        Err(corrupt_entry::<R>(
            def,
            index,
            entry,
            "it names a record that does not exist",
        ))
    })
}

/// The record whose value of the unique index `index` is `value`, through `f`.
pub(crate) fn get_by_index<R: StoredRecord, T>(
    main: Option<&AnyTable<'_>>,
    index_table: Option<&AnyTable<'_>>,
    buffers: &Buffers,
    index: usize,
    value: &[u8],
    f: impl FnOnce(&R::Archived) -> T,
) -> Result<Option<T>> {
    let (Some(main), Some(index_table)) = (main, index_table) else {
        return Ok(None);
    };
    index_table
        .get(value, |owner| {
            verified::<R, T>(main, buffers, index, value, owner, f)
        })?
        .transpose()
}

/// Records whose entries of index `index` lie in `bounds`, in index order,
/// through `f`. The first corrupt entry fails the query: an answer missing
/// a record would be a wrong answer.
pub(crate) fn find_by_index<R: StoredRecord, T>(
    main: Option<&AnyTable<'_>>,
    index_table: Option<&AnyTable<'_>>,
    buffers: &Buffers,
    index: usize,
    (start, end): (Bound<Vec<u8>>, Bound<Vec<u8>>),
    mut f: impl FnMut(&R::Key, &R::Archived) -> Option<T>,
) -> Result<Vec<T>> {
    let (Some(main), Some(index_table)) = (main, index_table) else {
        return Ok(Vec::new());
    };
    let def = &R::SCHEMA.indexes[index];
    let mut out = Vec::new();
    let range = (as_slice_bound(&start), as_slice_bound(&end));
    index_table.scan(range, Direction::Forward, |entry, owner| {
        let decoded = R::Key::from_key_bytes(owner).map_err(|e| {
            let table = crate::schema::index_table(R::SCHEMA.table, def.name);
            Error::corrupt(
                &table,
                entry,
                R::show_index_entry(index, entry),
                "index entry",
                e,
            )
        })?;
        if let Some(t) = verified::<R, _>(main, buffers, index, entry, owner, |v| f(&decoded, v))? {
            out.push(t);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(out)
}

/// The scrub of [`Storage::verify`](crate::Storage::verify): records
/// against the built indexes in `kept`, then every entry against its record.
pub(crate) fn verify<R: StoredRecord>(
    main: Option<&AnyTable<'_>>,
    indexes: &[Option<AnyTable<'_>>],
    kept: u64,
) -> Result<crate::ops::VerifyReport> {
    let schema = R::SCHEMA;
    let mut report = crate::ops::VerifyReport {
        table: schema.table.to_owned(),
        indexes: schema
            .indexes
            .iter()
            .enumerate()
            .map(|(i, def)| crate::ops::IndexReport {
                index: def.name.to_owned(),
                built: has(kept, i),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let Some(main) = main else { return Ok(report) };
    let meta = RecordInfo::<R>::of().meta;
    let all = (Bound::Unbounded, Bound::Unbounded);
    let shown = |bytes: &[u8]| key::show::<R::Key>(bytes);
    main.scan(all, Direction::Forward, |key, bytes| {
        report.records += 1;
        let mut buf = value::Buf::pooled();
        let Ok(archived) = value::check::<R>(value::aligned(bytes, &mut buf)) else {
            report.corrupt.push(shown(key), None);
            return Ok(ControlFlow::Continue(()));
        };
        let mut values = IndexValues::new();
        for (i, def) in schema.indexes.iter().enumerate() {
            let Some(Some(table)) = indexes.get(i).filter(|_| has(kept, i)) else {
                continue;
            };
            archived_values::<R>(archived, i, &mut values);
            for value in values.iter() {
                let entry = entry_key(def, value, key);
                let owner = table.get(entry.as_slice(), <[u8]>::to_vec)?;
                let findings = &mut report.indexes[i];
                match owner {
                    Some(owner) if owner == key => {}
                    // A unique entry for the value, naming another record
                    // that also holds it: the data holds the value twice.
                    Some(other) if def.unique && meta.holds(main, &other, i, value)? => {
                        findings
                            .duplicates
                            .push(shown(key), Some(R::show_index_value(i, value)));
                    }
                    _ => findings
                        .missing
                        .push(shown(key), Some(R::show_index_value(i, value))),
                }
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    for (i, def) in schema.indexes.iter().enumerate() {
        let Some(Some(table)) = indexes.get(i).filter(|_| has(kept, i)) else {
            continue;
        };
        let findings = &mut report.indexes[i];
        table.scan(
            (Bound::Unbounded, Bound::Unbounded),
            Direction::Forward,
            |entry, owner| {
                findings.entries += 1;
                let computed = main.get(owner, |bytes| {
                    let mut values = IndexValues::new();
                    value::read::<R, _>(bytes, |archived| {
                        archived_values::<R>(archived, i, &mut values)
                    })
                    .map(|()| values)
                })?;
                match computed {
                    None => findings
                        .dangling
                        .push(shown(owner), Some(entry_value::<R>(def, i, entry, owner))),
                    Some(Ok(values)) if is_entry_of(def, entry, owner, &values) => {}
                    // A damaged record is reported as corrupt already.
                    Some(Err(_)) => {}
                    Some(Ok(_)) => findings
                        .mismatched
                        .push(shown(owner), Some(entry_value::<R>(def, i, entry, owner))),
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
    }
    Ok(report)
}

/// The value an entry of index `def` holds, shown.
fn entry_value<R: StoredRecord>(
    def: &IndexDef,
    index: usize,
    entry: &[u8],
    owner: &[u8],
) -> String {
    R::show_index_value(index, entry_value_bytes(def, entry, owner).unwrap_or(entry))
}

/// The value part of an entry of index `def` naming the record `owner`;
/// `None` if a non-unique entry does not end in its owner's key (it is
/// then no entry of that record).
fn entry_value_bytes<'e>(def: &IndexDef, entry: &'e [u8], owner: &[u8]) -> Option<&'e [u8]> {
    if def.unique {
        Some(entry)
    } else {
        entry.strip_suffix(owner)
    }
}

/// Whether `entry` of index `def`, naming `owner`, is one of `values`.
fn is_entry_of(def: &IndexDef, entry: &[u8], owner: &[u8], values: &IndexValues) -> bool {
    entry_value_bytes(def, entry, owner).is_some_and(|value| values.contains(value))
}

pub(crate) fn as_slice_bound(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(bytes) => Bound::Included(bytes),
        Bound::Excluded(bytes) => Bound::Excluded(bytes),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Byte bounds, over an index table, of the entries whose values lie in `bounds`.
pub fn value_bounds<Q: IntoKeyBytes>(
    bounds: impl RangeBounds<Q>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let part = |value: &Q| {
        let mut out = KeyBuf::new();
        value.write_key_part(&mut out);
        out.as_slice().to_vec()
    };
    // Every entry of value `v` starts with `part(v)`, and no other value's
    // encoding starts with it; entries of larger values start at or after
    // its successor.
    let before =
        |value: &Q| prefix_successor(&part(value)).map_or(Bound::Unbounded, Bound::Excluded);
    let start = match bounds.start_bound() {
        Bound::Included(value) => Bound::Included(part(value)),
        Bound::Excluded(value) => {
            let part = part(value);
            match prefix_successor(&part) {
                Some(next) => Bound::Included(next),
                // Nothing sorts after an all-0xFF value: an empty range.
                None => return (Bound::Excluded(part.clone()), Bound::Included(part)),
            }
        }
        Bound::Unbounded => Bound::Unbounded,
    };
    let end = match bounds.end_bound() {
        Bound::Included(value) => before(value),
        Bound::Excluded(value) => Bound::Excluded(part(value)),
        Bound::Unbounded => Bound::Unbounded,
    };
    (start, end)
}

/// Byte bounds, over an index table of a string index, of the entries
/// whose value starts with the text `prefix`.
pub fn str_prefix_bounds(prefix: &str) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let mut part = KeyBuf::new();
    prefix.write_key_part(&mut part);
    // The part without its two-byte terminator: every string starting with
    // `prefix` is encoded starting with it (escaping is byte by byte).
    let start = part.as_slice()[..part.as_slice().len() - 2].to_vec();
    let end = prefix_successor(&start).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(start), end)
}

/// Byte bounds of the entries whose values start with `prefix` (equal to it,
/// for a whole value; sharing the leading parts, for a tuple prefix).
pub fn prefix_bounds<Q: IntoKeyBytes>(prefix: Q) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let mut part = KeyBuf::new();
    prefix.write_key_part(&mut part);
    let end = prefix_successor(part.as_slice()).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(part.as_slice().to_vec()), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(value: u32) -> Vec<u8> {
        let mut out = KeyBuf::new();
        value.write_key_part(&mut out);
        out.as_slice().to_vec()
    }

    #[test]
    fn index_values_are_a_sorted_set_searched_by_halves() {
        let mut values = IndexValues::new();
        for v in [5u32, 1, 9, 5, 3] {
            values.push(|out| v.write_key_part(out));
        }
        assert!(values.contains(&part(9)), "found before sorting too");
        values.normalize();
        let all: Vec<Vec<u8>> = values.iter().map(<[u8]>::to_vec).collect();
        assert_eq!(all, [part(1), part(3), part(5), part(9)]);
        for v in 0..11 {
            assert_eq!(values.contains(&part(v)), [1, 3, 5, 9].contains(&v), "{v}");
        }
    }

    #[test]
    fn value_bounds_cover_whole_values() {
        let (start, end) = value_bounds(5u32..7);
        assert_eq!(start, Bound::Included(part(5)));
        assert_eq!(end, Bound::Excluded(part(7)));
        let (start, end) = value_bounds((Bound::Excluded(5u32), Bound::Included(7u32)));
        assert_eq!(
            start,
            Bound::Included(part(6)),
            "entries of 5 end before 6 starts"
        );
        assert_eq!(end, Bound::Excluded(part(8)));
    }

    #[test]
    fn nothing_is_after_the_largest_value() {
        let (start, end) = value_bounds((Bound::Excluded(u32::MAX), Bound::Unbounded));
        let max = part(u32::MAX);
        assert_eq!(
            (start, end),
            (Bound::Excluded(max.clone()), Bound::Included(max))
        );
    }
}
