//! The write path: [`WriteTable`] and the seed design's [`WriteBatch`].
//!
//! Every write through a record type keeps its indexes exact: what can be
//! refused (a value that does not serialize, a unique clash) is found before
//! anything changes; a write that fails after changing some of its entries
//! (an engine error, a table in use) runs under a savepoint of its own and
//! is undone, whatever runs around it. A batch runs under a savepoint too:
//! if one of its items fails, or a panic unwinds through it, every item
//! before it is undone and the transaction is as it was before the batch.
//! Only when an undo itself fails is the transaction left unable to commit.

use core::borrow::Borrow;
use core::ops::Deref;

use super::{Opened, ReadTable, TableName, Txn};
use core::ops::{Bound, ControlFlow};

use crate::backend::{AnyTable, Direction, ReadTable as _, WriteTable as _};
use crate::error::{Error, Result};
use crate::index::{RecordInfo, Stored};
use crate::key::{AsKey, IntoKeyBytes, KeyBuf};
use crate::record::StoredRecord;
use crate::txn::WriteTransaction;
use crate::value::{self, StoredValue, ValueDeserializer};

/// A table handle inside a [`WriteTransaction`]: everything a
/// [`ReadTable`] does (reads see the transaction's own writes), and writes.
///
/// Made by [`WriteTransaction::table`] or [`WriteTransaction::records`].
/// Write methods take `&mut self`, so that an iterator over the table
/// borrowed from the same handle is finished before the next write.
pub struct WriteTable<'tx, K, V> {
    read: ReadTable<'tx, K, V>,
    tx: &'tx WriteTransaction<'tx>,
    /// The tables of every index of the record type, opened on first write.
    index_tables: core::cell::OnceCell<Vec<AnyTable<'tx>>>,
}

impl<'tx, K, V> Deref for WriteTable<'tx, K, V> {
    type Target = ReadTable<'tx, K, V>;

    fn deref(&self) -> &ReadTable<'tx, K, V> {
        &self.read
    }
}

impl<'tx, K, V> WriteTable<'tx, K, V> {
    pub(crate) fn new(
        tx: &'tx WriteTransaction<'tx>,
        name: TableName,
        record: Option<RecordInfo<V>>,
    ) -> Self {
        Self {
            read: ReadTable::new(Txn::Write(tx), name, record),
            tx,
            index_tables: core::cell::OnceCell::new(),
        }
    }

    /// Runs `f` under a savepoint: if it fails, everything it wrote is
    /// undone, and its error is returned.
    fn atomically<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        // Opened (and its indexes built) first: a build deletes tables, which
        // a savepoint does not undo.
        self.with_opened(|_| Ok(()))?;
        let tx = self.tx;
        let name = self.read.name.clone();
        let undo = tx.undo_point(&name);
        let result = f(self);
        undo.end(result.is_ok());
        result
    }

    /// Stores bytes under `key` of a table without a record type.
    fn put_raw(&self, opened: &Opened<'tx>, key: &[u8], bytes: &[u8]) -> Result<()> {
        owned_check(&self.name, opened)?;
        table(opened, &self.name)?.insert(key, bytes)
    }

    /// Removes `key` of a table without a record type.
    fn delete_raw(&self, opened: &Opened<'tx>, key: &[u8]) -> Result<bool> {
        owned_check(&self.name, opened)?;
        table(opened, &self.name)?.remove(key, |old| old.is_some())
    }

    /// Serializes `value` into the transaction's reused buffer and hands the
    /// bytes to `then`.
    fn serialized<T: StoredValue, R>(
        &self,
        value: &T,
        then: impl FnOnce(&[u8]) -> Result<R>,
    ) -> Result<R> {
        self.tx.serialized(&self.name, value, then)
    }
}

/// The engine table of an opened handle; a write transaction always has one.
fn table<'a, 'tx>(
    opened: &'a Opened<'tx>,
    name: &str,
) -> Result<&'a crate::backend::AnyTable<'tx>> {
    opened.table.as_ref().ok_or_else(|| Error::Backend {
        table: Some(name.to_owned()),
        source: "table not open in a write transaction".into(),
    })
}

/// Refuses a by-name write into a table that belongs to a record type.
fn owned_check(name: &str, opened: &Opened<'_>) -> Result<()> {
    match &opened.owner {
        Some(record) => Err(Error::TableOwned {
            table: name.to_owned(),
            record: record.to_string(),
        }),
        None => Ok(()),
    }
}

impl<'tx, K: IntoKeyBytes, V: StoredValue> WriteTable<'tx, K, V> {
    /// Serializes `value` and stores it under `key`, replacing any previous
    /// value (and keeping a record type's indexes in step).
    ///
    /// On a record table, prefer `insert`, which takes the key from the
    /// record; `put` refuses a key that is not the record's own
    /// ([`Error::KeyMismatch`]). On a table that belongs to a record type,
    /// a handle by name refuses every write ([`Error::TableOwned`]).
    pub fn put(&mut self, key: impl AsKey<K::Key>, value: &V) -> Result<()> {
        self.put_value(key.into_key_bytes().as_ref(), value)
    }

    fn put_value(&self, key: &[u8], value: &V) -> Result<()> {
        let Some(record) = self.record else {
            return self.with_opened(|opened| {
                self.serialized(value, |bytes| self.put_raw(opened, key, bytes))
            });
        };
        let own = (record.own_key)(value);
        if own.as_slice() != key {
            return Err(Error::KeyMismatch {
                table: self.name.to_string(),
                given: (record.show_key)(key),
                record: (record.show_key)(own.as_slice()),
            });
        }
        self.store_record(&record, key, value)
    }

    /// Stores a record under `key`, keeping its indexes in step.
    ///
    /// Everything that can be refused is checked before anything changes:
    /// the record is serialized and the unique indexes are consulted first.
    /// What can still fail after that (an engine error) is undone.
    fn store_record(&self, record: &RecordInfo<V>, key: &[u8], value: &V) -> Result<()> {
        self.with_opened(|opened| {
            let main = table(opened, &self.name)?;
            self.tx.note_written(&self.name, opened, &record.meta);
            let collect = self.tx.collects(&record.meta);
            // Stores the bytes, noting the change when it is collected.
            let store = |bytes: &[u8]| {
                if !collect {
                    return main.insert(key, bytes);
                }
                let old = main.replace(key, bytes, |old| old.map(<[u8]>::to_vec))?;
                self.tx
                    .note_change(&record.meta, key, old.as_deref(), Some(bytes));
                Ok(())
            };
            if opened.kept == 0 {
                return self.serialized(value, store);
            }
            self.serialized(value, |bytes| {
                let indexes = self.index_tables()?;
                let old = record.stored(main, key, opened.kept)?;
                let new = record.entries(value, opened.kept);
                record.check_unique(main, indexes, key, &old, &new)?;
                self.tx.atomic(&self.name, || {
                    record.apply(indexes, key, &old, Some(&new), opened.kept)?;
                    store(bytes)
                })
            })
        })
    }

    /// Removes the record under `key` and its index entries (all entries
    /// that point at it, if its bytes are damaged).
    fn delete_record(&self, record: &RecordInfo<V>, key: &[u8]) -> Result<bool> {
        self.with_opened(|opened| {
            let main = table(opened, &self.name)?;
            self.tx.note_written(&self.name, opened, &record.meta);
            let collect = self.tx.collects(&record.meta);
            // Removes the record, noting the change when it is collected.
            let remove = || {
                if !collect {
                    return main.remove(key, |old| old.is_some());
                }
                let old = main.remove(key, |old| old.map(<[u8]>::to_vec))?;
                self.tx.note_change(&record.meta, key, old.as_deref(), None);
                Ok(old.is_some())
            };
            if opened.kept == 0 {
                return remove();
            }
            let old = record.stored(main, key, opened.kept)?;
            if matches!(old, Stored::Nothing) {
                return Ok(false);
            }
            let indexes = self.index_tables()?;
            self.tx.atomic(&self.name, || {
                record.apply(indexes, key, &old, None, opened.kept)?;
                remove()
            })
        })
    }

    /// The tables of every index of the record type.
    fn index_tables(&self) -> Result<&[AnyTable<'tx>]> {
        if let Some(tables) = self.index_tables.get() {
            return Ok(tables);
        }
        let count = self.record.map_or(0, |r| r.schema.indexes.len());
        let tables = (0..count)
            .map(|i| {
                self.index_table(i)?.ok_or_else(|| Error::Backend {
                    table: Some(self.name.to_string()),
                    source: "index table not open in a write transaction".into(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.index_tables.get_or_init(|| tables))
    }

    /// Stores every `(key, value)` pair: all of them, or, if one fails,
    /// none ([`Error::Batch`] says which).
    pub fn put_batch<Q, B>(&mut self, items: impl IntoIterator<Item = (Q, B)>) -> Result<()>
    where
        Q: AsKey<K::Key>,
        B: Borrow<V>,
    {
        self.atomically(|this| {
            for (i, (key, value)) in items.into_iter().enumerate() {
                this.put(key, value.borrow())
                    .map_err(|e| batch_error(&this.read.name, i, e))?;
            }
            Ok(())
        })
    }

    /// Removes `key` (and a record's index entries); returns whether it was there.
    pub fn delete(&mut self, key: impl AsKey<K::Key>) -> Result<bool> {
        self.delete_bytes(key.into_key_bytes().as_ref())
    }

    fn delete_bytes(&self, key: &[u8]) -> Result<bool> {
        match self.record {
            Some(record) => self.delete_record(&record, key),
            None => self.with_opened(|opened| self.delete_raw(opened, key)),
        }
    }

    /// Removes every entry (and a record's index entries, which stay
    /// built); returns how many there were. All or nothing, like a batch.
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// let storage = storage::Storage::in_memory()?;
    /// storage.table::<u32, u32>("squares").put_batch((1..=3u32).map(|i| (i, i * i)))?;
    /// let removed = storage.write(|tx| tx.table::<u32, u32>("squares").clear())?;
    /// assert_eq!(removed, 3);
    /// assert!(storage.table::<u32, u32>("squares").is_empty()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn clear(&mut self) -> Result<u64> {
        let mut keys: Vec<KeyBuf> = Vec::new();
        self.with_opened(|opened| {
            let Some(table) = &opened.table else {
                return Ok(());
            };
            let all = (Bound::Unbounded, Bound::Unbounded);
            table.scan(all, Direction::Forward, |key, _| {
                keys.push(KeyBuf::from(key));
                Ok(ControlFlow::Continue(()))
            })
        })?;
        self.atomically(|this| {
            for key in &keys {
                this.delete_bytes(key.as_slice())?;
            }
            Ok(keys.len() as u64)
        })
    }
}

fn batch_error(table: &str, index: usize, error: Error) -> Error {
    Error::Batch {
        table: table.to_owned(),
        item: index + 1,
        source: Box::new(error),
    }
}

impl<'tx, R: StoredRecord> WriteTable<'tx, R::Key, R> {
    /// Stores `record` under the key its `#[key]` fields make, replacing any
    /// record with the same key, and updates its indexes.
    ///
    /// A value that a unique index already holds for another record gives
    /// [`Error::UniqueViolation`] and changes nothing.
    pub fn insert(&mut self, record: &R) -> Result<()> {
        let info = RecordInfo::<R>::of();
        self.store_record(&info, record.key_ref().into_key_bytes().as_ref(), record)
    }

    /// Stores `record` if no record has its key yet; otherwise
    /// [`Error::KeyExists`] and nothing changes.
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    /// #[stored(table = "users")]
    /// struct User { #[key] id: u64, name: String }
    ///
    /// let storage = storage::Storage::in_memory()?;
    /// let users = storage.records::<User>();
    /// users.insert_new(&User { id: 1, name: "Ann".into() })?;
    /// let again = users.insert_new(&User { id: 1, name: "Bo".into() });
    /// assert!(matches!(again, Err(storage::Error::KeyExists { .. })));
    /// assert_eq!(users.get(1, |u| u.name().to_owned())?.as_deref(), Some("Ann"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn insert_new(&mut self, record: &R) -> Result<()> {
        let key_ref = record.key_ref();
        let key = key_ref.into_key_bytes();
        if self.contains_bytes(key.as_ref())? {
            return Err(Error::KeyExists {
                table: self.read.name.to_string(),
                key: crate::key::show::<R::Key>(key.as_ref()),
            });
        }
        self.insert(record)
    }

    /// Stores `record`, replacing any record with its key, and returns the
    /// one it replaced. A replaced record whose bytes do not validate gives
    /// [`Error::Corrupt`] and nothing changes (`insert` overwrites it).
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// #[derive(Debug, PartialEq, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    /// #[stored(table = "counters")]
    /// struct Counter { #[key] name: String, n: u64 }
    ///
    /// let storage = storage::Storage::in_memory()?;
    /// let counters = storage.records::<Counter>();
    /// assert_eq!(counters.upsert(&Counter { name: "hits".into(), n: 1 })?, None);
    /// let old = counters.upsert(&Counter { name: "hits".into(), n: 2 })?;
    /// assert_eq!(old, Some(Counter { name: "hits".into(), n: 1 }));
    /// # Ok(())
    /// # }
    /// ```
    pub fn upsert(&mut self, record: &R) -> Result<Option<R>>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        let key_ref = record.key_ref();
        let key = key_ref.into_key_bytes();
        let old = self.get_owned_bytes(key.as_ref())?;
        self.insert(record)?;
        Ok(old)
    }

    /// Removes the record under `key` and returns it.
    pub fn take(&mut self, key: impl AsKey<R::Key>) -> Result<Option<R>>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        let key = key.into_key_bytes();
        let old = self.get_owned_bytes(key.as_ref())?;
        if old.is_some() {
            self.delete_bytes(key.as_ref())?;
        }
        Ok(old)
    }

    /// Removes every record and returns them, in key order.
    pub fn drain(&mut self) -> Result<Vec<R>>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        let mut records = Vec::new();
        for entry in self.iter()? {
            let entry = entry?;
            let key = entry.key().into_key_bytes();
            records.push(value::deserialize::<R>(entry.value()).map_err(|e| {
                Error::corrupt(
                    &self.read.name,
                    key.as_ref(),
                    crate::key::show::<R::Key>(key.as_ref()),
                    "value",
                    e,
                )
            })?);
        }
        self.clear()?;
        Ok(records)
    }

    /// Stores every record of `records`: all of them, or, if one fails (a
    /// unique clash, with the database or within the batch), none
    /// ([`Error::Batch`] says which).
    pub fn insert_batch<B: Borrow<R>>(
        &mut self,
        records: impl IntoIterator<Item = B>,
    ) -> Result<()> {
        self.atomically(|this| {
            for (i, record) in records.into_iter().enumerate() {
                this.insert(record.borrow())
                    .map_err(|e| batch_error(&this.read.name, i, e))?;
            }
            Ok(())
        })
    }

    /// Empties every index of the record type and builds it again from the
    /// records. Indexes are rebuilt by themselves when a table is first opened
    /// for writing with a record type whose indexes changed; this is for
    /// repairs. A unique index that cannot be built because two records
    /// hold one value gives [`Error::UniqueIndexConflict`] (the other
    /// indexes are rebuilt).
    pub fn rebuild_indexes(&mut self) -> Result<()> {
        self.with_opened(|_| Ok(()))?;
        self.tx
            .rebuild(&self.read.name, &RecordInfo::<R>::of().meta)
    }
}

/// Writes to one table inside a write transaction, with any key and value
/// types per call: the seed design's batch.
///
/// Made by [`Storage::write_batch`](crate::Storage::write_batch) or
/// [`WriteTransaction::batch`]; other tables of the same transaction are
/// reached with [`table`](Self::table). Keys are encoded and values serialized
/// straight into the transaction: nothing is buffered, string keys are not
/// copied, and integer keys cost no allocation. Like every handle by name,
/// it refuses to write a table that belongs to a record type.
///
/// ```
/// # fn main() -> storage::Result<()> {
/// let storage = storage::Storage::in_memory()?;
/// storage.write_batch("users", |batch| {
///     batch.put("alice", &String::from("Alice"))?;
///     batch.put(42u64, &String::from("Answer"))?;
///     batch.table("audit").put(1u64, &String::from("added two users"))?;
///     Ok(())
/// })?;
/// assert_eq!(storage.get::<String, _>("users", 42u64, |s| s.to_string())?, Some("Answer".into()));
/// # Ok(())
/// # }
/// ```
pub struct WriteBatch<'tx> {
    table: WriteTable<'tx, Vec<u8>, ()>,
}

impl<'tx> WriteBatch<'tx> {
    pub(crate) fn new(tx: &'tx WriteTransaction<'tx>, name: TableName) -> Self {
        Self {
            table: WriteTable::new(tx, name, None),
        }
    }

    /// Serializes `value` and stores it under `key`, replacing any previous value.
    pub fn put<V: StoredValue>(&mut self, key: impl IntoKeyBytes, value: &V) -> Result<()> {
        let key = key.into_key_bytes();
        let table = &self.table;
        table.with_opened(|opened| {
            table.serialized(value, |bytes| table.put_raw(opened, key.as_ref(), bytes))
        })
    }

    /// Stores already-serialized bytes under `key`.
    ///
    /// The bytes are stored as they are; they are validated when read, so bytes
    /// that are not an rkyv archive of the type read back give
    /// [`Error::Corrupt`] then.
    pub fn put_raw(&mut self, key: impl IntoKeyBytes, value: impl AsRef<[u8]>) -> Result<()> {
        let key = key.into_key_bytes();
        let table = &self.table;
        table.with_opened(|opened| table.put_raw(opened, key.as_ref(), value.as_ref()))
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&mut self, key: impl IntoKeyBytes) -> Result<bool> {
        let key = key.into_key_bytes();
        let table = &self.table;
        table.with_opened(|opened| table.delete_raw(opened, key.as_ref()))
    }

    /// A batch on another table of the same transaction.
    pub fn table(&self, name: &str) -> WriteBatch<'tx> {
        WriteBatch::new(self.table.tx, TableName::new(name))
    }

    /// The name of the table this batch writes.
    pub fn name(&self) -> &str {
        self.table.name()
    }
}
