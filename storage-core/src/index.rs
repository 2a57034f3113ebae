//! Secondary indexes: their tables, their upkeep inside write transactions,
//! and lookups through them.
//!
//! Each index of a record table lives in a redb table of its own,
//! `__index:{table}:{index}`, written in the same transaction as the record.
//! Index values are stored in the key-part encoding of [`crate::key`], so they
//! sort like the values themselves:
//!
//! - a unique index maps `value` to the record's key;
//! - any other index maps `value ++ record key` to the record's key, so equal
//!   values come back in key order.
//!
//! A record is written in three steps, in this order: compute its old and new
//! index entries; check every unique index, so that a clash fails before
//! anything changed; then replace the entries that differ and store the record.

use core::ops::{Bound, RangeBounds};

use rkyv::rancor::BoxedError;
use smallvec::SmallVec;

use crate::backend::{BackendError, RawRead, RawTableMut};
use crate::error::{Error, Result};
use crate::key::{IntoKeyBytes, KeyBuf, prefix_successor};
use crate::record::StoredRecord;
use crate::schema::{IndexDef, Schema};
use crate::value;

/// What a handle knows of its record type: the schema, and how to get index
/// values out of a record and out of stored bytes.
pub(crate) struct RecordInfo<V> {
    pub(crate) schema: &'static Schema,
    index_value: fn(&V, usize, &mut KeyBuf) -> bool,
    stored_index_value: fn(&[u8], usize, &mut KeyBuf) -> Result<bool, BoxedError>,
}

impl<V> Clone for RecordInfo<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for RecordInfo<V> {}

impl<R: StoredRecord> RecordInfo<R> {
    pub(crate) fn of() -> Self {
        RecordInfo {
            schema: R::SCHEMA,
            index_value: R::index_value,
            stored_index_value: stored_index_value::<R>,
        }
    }
}

/// Index values of a stored record: validates the bytes, then reads the archive.
fn stored_index_value<R: StoredRecord>(
    bytes: &[u8],
    index: usize,
    out: &mut KeyBuf,
) -> Result<bool, BoxedError> {
    value::read::<R, _>(bytes, |archived| {
        R::archived_index_value(archived, index, out)
    })
}

/// The name of the table holding `index` of `table`.
pub fn index_table_name(table: &str, index: &str) -> String {
    format!("__index:{table}:{index}")
}

/// One entry per index: the encoded value, or `None` when the record has none.
pub(crate) type Entries = SmallVec<[Option<KeyBuf>; 4]>;

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
fn entry_key(index: &IndexDef, value: &KeyBuf, key: &[u8]) -> KeyBuf {
    let mut entry = value.clone();
    if !index.unique {
        entry.extend_from_slice(key);
    }
    entry
}

/// Index tables of one record table opened in a write transaction.
pub(crate) struct IndexWriter<'tx> {
    tables: Vec<Option<RawTableMut<'tx>>>,
}

impl<'tx> IndexWriter<'tx> {
    pub(crate) fn new() -> Self {
        Self { tables: Vec::new() }
    }

    pub(crate) fn table(
        &mut self,
        index: usize,
        def: &IndexDef,
        open: &impl Fn(&str) -> Result<RawTableMut<'tx>>,
    ) -> Result<&mut RawTableMut<'tx>> {
        if self.tables.len() <= index {
            self.tables.resize_with(index + 1, || None);
        }
        let table = match self.tables[index].take() {
            Some(table) => table,
            None => open(def.table)?,
        };
        Ok(self.tables[index].insert(table))
    }

    /// Index table number `index`, if it was opened.
    pub(crate) fn get(&self, index: usize) -> Option<&RawTableMut<'tx>> {
        self.tables.get(index).and_then(Option::as_ref)
    }

    /// Closes every index table (so that they can be deleted).
    pub(crate) fn close(&mut self) {
        self.tables.clear();
    }

    /// Index entries of the record stored under `key`.
    pub(crate) fn stored<V>(
        record: &RecordInfo<V>,
        table: &str,
        main: Option<&impl RawRead>,
        key: &[u8],
    ) -> Result<Stored> {
        let Some(main) = main else {
            return Ok(Stored::Nothing);
        };
        let Some(stored) = main.get(key).map_err(|e| Error::backend(Some(table), e))? else {
            return Ok(Stored::Nothing);
        };
        Ok(match entries_of_bytes(record, stored.bytes()) {
            Ok(entries) => Stored::Entries(entries),
            Err(_) => Stored::Damaged,
        })
    }

    /// Index entries of `value`.
    pub(crate) fn entries<V>(record: &RecordInfo<V>, value: &V) -> Entries {
        (0..record.schema.indexes.len())
            .map(|index| {
                let mut out = KeyBuf::new();
                (record.index_value)(value, index, &mut out).then_some(out)
            })
            .collect()
    }

    /// Refuses `new` if a unique index holds one of its values for a record
    /// other than `key`. Changes nothing.
    pub(crate) fn check_unique(
        &mut self,
        schema: &Schema,
        key: &[u8],
        old: &Stored,
        new: &Entries,
        open: &impl Fn(&str) -> Result<RawTableMut<'tx>>,
    ) -> Result<()> {
        for (i, def) in schema.indexes.iter().enumerate() {
            let Some(value) = new[i].as_ref().filter(|_| def.unique) else {
                continue;
            };
            if matches!(old, Stored::Entries(old) if old[i].as_ref() == Some(value)) {
                continue;
            }
            let table = self.table(i, def, open)?;
            let owner = table
                .get(value.as_slice())
                .map_err(|e| Error::backend(Some(def.table), e))?;
            if let Some(owner) = owner.filter(|owner| owner.bytes() != key) {
                return Err(Error::UniqueViolation {
                    table: schema.table.to_owned(),
                    index: def.name.to_owned(),
                    value: value.as_slice().to_vec(),
                    existing_key: owner.bytes().to_vec(),
                });
            }
        }
        Ok(())
    }

    /// Replaces the index entries of the record under `key`: those of `old`
    /// become `new` (`None` when deleting). Run [`check_unique`](Self::check_unique)
    /// first: an error here leaves the indexes part-way.
    pub(crate) fn apply(
        &mut self,
        schema: &Schema,
        key: &[u8],
        old: &Stored,
        new: Option<&Entries>,
        open: &impl Fn(&str) -> Result<RawTableMut<'tx>>,
    ) -> Result<()> {
        for (i, def) in schema.indexes.iter().enumerate() {
            let new = new.and_then(|new| new[i].as_ref());
            if matches!(old, Stored::Entries(old) if old[i].as_ref() == new) {
                continue;
            }
            let table = self.table(i, def, open)?;
            let backend = |e| Error::backend(Some(def.table), e);
            match old {
                Stored::Entries(old) => {
                    if let Some(old) = &old[i] {
                        table
                            .remove(entry_key(def, old, key).as_slice())
                            .map_err(backend)?;
                    }
                }
                Stored::Damaged => {
                    for entry in entries_pointing_at(table, key).map_err(backend)? {
                        table.remove(&entry).map_err(backend)?;
                    }
                }
                Stored::Nothing => {}
            }
            if let Some(new) = new {
                table
                    .insert(entry_key(def, new, key).as_slice(), key)
                    .map_err(backend)?;
            }
        }
        Ok(())
    }

    /// Empties every index of the record and fills it again from the
    /// records in `main`; `stale` names indexes stored before that the
    /// record no longer has, whose tables are deleted. Records whose bytes do
    /// not validate are left out of the indexes (reading them gives
    /// [`Error::Corrupt`] anyway).
    pub(crate) fn rebuild<V>(
        &mut self,
        record: &RecordInfo<V>,
        main: &impl RawRead,
        stale: &[String],
        open: &impl Fn(&str) -> Result<RawTableMut<'tx>>,
        delete: &impl Fn(&str) -> Result<bool>,
    ) -> Result<()> {
        let schema = record.schema;
        self.close();
        for name in stale {
            if !schema.indexes.iter().any(|def| def.name == name) {
                delete(&index_table_name(schema.table, name))?;
            }
        }
        if schema.indexes.is_empty() {
            return Ok(());
        }
        for def in schema.indexes {
            delete(def.table)?;
        }
        let all = main
            .range(Bound::Unbounded, Bound::Unbounded)
            .map_err(|e| Error::backend(Some(schema.table), e))?;
        for entry in all {
            let (key, stored) = entry.map_err(|e| Error::backend(Some(schema.table), e))?;
            let Ok(entries) = entries_of_bytes(record, stored.bytes()) else {
                continue;
            };
            self.check_unique(schema, key.bytes(), &Stored::Nothing, &entries, open)?;
            self.apply(schema, key.bytes(), &Stored::Nothing, Some(&entries), open)?;
        }
        Ok(())
    }
}

/// Index entries of the record in `bytes`; an error if they do not validate.
fn entries_of_bytes<V>(record: &RecordInfo<V>, bytes: &[u8]) -> Result<Entries, BoxedError> {
    let mut entries = Entries::new();
    for index in 0..record.schema.indexes.len() {
        let mut value = KeyBuf::new();
        let present = (record.stored_index_value)(bytes, index, &mut value)?;
        entries.push(present.then_some(value));
    }
    Ok(entries)
}

/// The keys of the entries of an index table that point at the record `key`.
fn entries_pointing_at(table: &RawTableMut<'_>, key: &[u8]) -> Result<Vec<Vec<u8>>, BackendError> {
    let mut found = Vec::new();
    for entry in table.range(Bound::Unbounded, Bound::Unbounded)? {
        let (entry, owner) = entry?;
        if owner.bytes() == key {
            found.push(entry.bytes().to_vec());
        }
    }
    Ok(found)
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

    #[test]
    fn index_tables_are_reserved_names() {
        assert_eq!(index_table_name("users", "email"), "__index:users:email");
        assert!(crate::schema::check_name(&index_table_name("users", "email")).is_err());
    }
}
