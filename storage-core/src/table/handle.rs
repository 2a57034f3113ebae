//! [`Table`]: a table of a [`Storage`], every call in a transaction of its own.

use core::borrow::Borrow;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Bound, RangeBounds};

use super::read::collect;
use super::{Cursor, Page, ReadTable, TableName, Txn, WriteTable};
use crate::error::{Error, Result};
use crate::index::{RecordInfo, has};
use crate::key::{AsKey, IntoKeyBytes, KeyPrefix};
use crate::record::StoredRecord;
use crate::storage::Storage;
use crate::value::{StoredValue, ValueDeserializer};

/// A typed handle on one table of a [`Storage`]: a clone of the storage and
/// the table name.
///
/// Made by [`Storage::table`] (any key and value types) or
/// [`Storage::records`] (a `#[derive(StoredRecord)]` type, schema-checked).
/// Every method runs in a transaction of its own; to combine several
/// operations atomically use [`Storage::write`] or [`Storage::read`].
///
/// ```
/// # fn main() -> storage::Result<()> {
/// let storage = storage::Storage::in_memory()?;
/// let scores = storage.table::<&str, u32>("scores");
/// scores.put("alice", &3)?;
/// scores.put_batch([("bob", &5), ("carol", &8)])?;
/// assert_eq!(scores.get("bob", |s| s.to_native())?, Some(5));
/// let high = scores.scan(|name, score| (score.to_native() > 4).then(|| name.clone()))?;
/// assert_eq!(high, ["bob", "carol"]);
/// # Ok(())
/// # }
/// ```
pub struct Table<K, V> {
    storage: Storage,
    name: TableName,
    record: Option<RecordInfo<V>>,
    _types: PhantomData<fn() -> K>,
}

impl<K, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Self {
            storage: self.storage.clone(),
            name: self.name.clone(),
            record: self.record,
            _types: PhantomData,
        }
    }
}

impl<K, V> fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K: IntoKeyBytes, V: StoredValue> Table<K, V> {
    pub(crate) fn new(storage: Storage, name: TableName, record: Option<RecordInfo<V>>) -> Self {
        Self {
            storage,
            name,
            record,
            _types: PhantomData,
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn read<R>(&self, f: impl FnOnce(&ReadTable<'_, K, V>) -> Result<R>) -> Result<R> {
        self.storage.read(|tx| {
            let table = ReadTable::new(Txn::Read(tx), self.name.clone(), self.record);
            f(&table)
        })
    }

    fn write<R>(&self, mut f: impl FnMut(&mut WriteTable<'_, K, V>) -> Result<R>) -> Result<R> {
        self.storage.write(|tx| {
            let mut table = WriteTable::new(tx, self.name.clone(), self.record);
            f(&mut table)
        })
    }

    /// Stores `value` under `key` in a transaction of its own.
    pub fn put(&self, key: impl AsKey<K::Key>, value: &V) -> Result<()> {
        self.write(|table| table.put(&key, value))
    }

    /// Stores every `(key, value)` pair in one transaction: all or none.
    pub fn put_batch<Q, B>(&self, items: impl IntoIterator<Item = (Q, B)>) -> Result<()>
    where
        Q: AsKey<K::Key>,
        B: Borrow<V>,
    {
        let items: Vec<(Q, B)> = items.into_iter().collect();
        self.write(|table| table.put_batch(items.iter().map(|(k, v)| (k, v.borrow()))))
    }

    /// Runs `f` on the archived value under `key`; see [`ReadTable::get`].
    pub fn get<R>(
        &self,
        key: impl AsKey<K::Key>,
        f: impl FnOnce(&V::Archived) -> R,
    ) -> Result<Option<R>> {
        self.read(|table| table.get(key, f))
    }

    /// The value under `key` deserialized into an owned `V`; see
    /// [`ReadTable::get_owned`].
    pub fn get_owned(&self, key: impl AsKey<K::Key>) -> Result<Option<V>>
    where
        V::Archived: rkyv::Deserialize<V, ValueDeserializer>,
    {
        self.read(|table| table.get_owned(key))
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&self, key: impl AsKey<K::Key>) -> Result<bool> {
        self.write(|table| table.delete(&key))
    }

    /// Whether `key` is in the table.
    pub fn contains_key(&self, key: impl AsKey<K::Key>) -> Result<bool> {
        self.read(|table| table.contains_key(key))
    }

    /// The number of entries.
    pub fn len(&self) -> Result<u64> {
        self.read(|table| table.len())
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Runs `f` on every entry in key order and collects what it returns
    /// `Some` for.
    pub fn scan<R>(&self, f: impl FnMut(&K::Key, &V::Archived) -> Option<R>) -> Result<Vec<R>> {
        self.read(|table| table.scan(f))
    }

    /// Folds every entry, in key order, into an accumulator; see
    /// [`ReadTable::fold`].
    pub fn fold<B>(&self, init: B, f: impl FnMut(B, &K::Key, &V::Archived) -> B) -> Result<B> {
        self.read(|table| table.fold(init, f))
    }

    /// Like [`get`](Self::get), without validating the stored bytes; see
    /// [`ReadTable::get_unchecked`].
    ///
    /// # Safety
    ///
    /// The bytes under `key` must be a valid rkyv archive of `V`: written
    /// through this crate with this very type, and the file not altered since.
    pub unsafe fn get_unchecked<R>(
        &self,
        key: impl AsKey<K::Key>,
        f: impl FnOnce(&V::Archived) -> R,
    ) -> Result<Option<R>> {
        // SAFETY: the caller vouches for the bytes, as `ReadTable::get_unchecked` asks.
        self.read(|table| unsafe { table.get_unchecked(key, f) })
    }

    /// One page of a listing; see [`ReadTable::page`].
    pub fn page<O>(
        &self,
        after: Option<&Cursor>,
        limit: usize,
        f: impl FnMut(&K::Key, &V::Archived) -> O,
    ) -> Result<Page<O>> {
        self.read(|table| table.page(after, limit, f))
    }

    /// One page of the keys in `bounds`; see [`ReadTable::page_range`].
    pub fn page_range<Q: AsKey<K::Key>, O>(
        &self,
        bounds: impl RangeBounds<Q>,
        after: Option<&Cursor>,
        limit: usize,
        f: impl FnMut(&K::Key, &V::Archived) -> O,
    ) -> Result<Page<O>> {
        self.read(|table| table.page_range(bounds, after, limit, f))
    }

    /// Removes every entry in a transaction of its own; returns how many
    /// there were. See [`WriteTable::clear`].
    pub fn clear(&self) -> Result<u64> {
        self.write(|table| table.clear())
    }

    /// Like [`scan`](Self::scan), over the keys in `bounds`: entries are
    /// handed to `f` and collected, since a `Table` holds no transaction to
    /// iterate in (`ReadTable::range` returns the iterator itself). For the
    /// whole table, [`scan`](Self::scan) or [`fold`](Self::fold): `..` alone
    /// does not tell the key type.
    pub fn range<Q: AsKey<K::Key>, R>(
        &self,
        bounds: impl RangeBounds<Q>,
        f: impl FnMut(&K::Key, &V::Archived) -> Option<R>,
    ) -> Result<Vec<R>> {
        self.read(|table| collect(table.range(bounds)?, f))
    }

    /// Like [`scan`](Self::scan), over the keys starting with `prefix`; see
    /// [`ReadTable::prefix`]. The prefix is the leading parts of a composite
    /// key, `(42,)`, or the start of a string key; on a single integer key
    /// use [`get`](Self::get) or [`range`](Self::range).
    pub fn prefix<P, R>(
        &self,
        prefix: impl AsKey<P>,
        f: impl FnMut(&K::Key, &V::Archived) -> Option<R>,
    ) -> Result<Vec<R>>
    where
        P: KeyPrefix<K::Key>,
    {
        self.read(|table| collect(table.prefix(prefix)?, f))
    }
}

impl<R: StoredRecord> Table<R::Key, R> {
    /// Stores `record` under its key, in a transaction of its own.
    pub fn insert(&self, record: &R) -> Result<()> {
        self.write(|table| table.insert(record))
    }

    /// Stores `record` if no record has its key yet, else
    /// [`Error::KeyExists`]; see [`WriteTable::insert_new`].
    pub fn insert_new(&self, record: &R) -> Result<()> {
        self.write(|table| table.insert_new(record))
    }

    /// Stores `record` and returns the record it replaced; see
    /// [`WriteTable::upsert`].
    pub fn upsert(&self, record: &R) -> Result<Option<R>>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        self.write(|table| table.upsert(record))
    }

    /// Removes the record under `key` and returns it.
    pub fn take(&self, key: impl AsKey<R::Key>) -> Result<Option<R>>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        self.write(|table| table.take(&key))
    }

    /// Removes every record and returns them, in key order, in one transaction.
    pub fn drain(&self) -> Result<Vec<R>>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        self.write(|table| table.drain())
    }

    /// Stores every record in one transaction: all or none.
    pub fn insert_batch<B: Borrow<R>>(&self, records: impl IntoIterator<Item = B>) -> Result<()> {
        let records: Vec<B> = records.into_iter().collect();
        self.write(|table| table.insert_batch(records.iter().map(Borrow::borrow)))
    }

    /// Rebuilds every index of the record type in a transaction of its own;
    /// see [`WriteTable::rebuild_indexes`]. A unique index that two records
    /// hold one value of gives [`Error::UniqueIndexConflict`] after the
    /// other indexes were rebuilt and committed; it stays unbuilt (its
    /// queries give the same error) until a write removes the duplicate.
    pub fn rebuild_indexes(&self) -> Result<()> {
        let mut conflict = None;
        self.write(|table| {
            conflict = None;
            match table.rebuild_indexes() {
                Err(e @ Error::UniqueIndexConflict { .. }) => {
                    conflict = Some(e);
                    Ok(())
                }
                done => done,
            }
        })?;
        conflict.map_or(Ok(()), Err)
    }

    /// Runs an index query in a read transaction; if the index is not built
    /// yet (the record type's indexes changed), builds it in a write
    /// transaction of its own first.
    fn query<T>(
        &self,
        index: usize,
        mut run: impl FnMut(&ReadTable<'_, R::Key, R>) -> Result<T>,
    ) -> Result<T> {
        let ready =
            |table: &ReadTable<'_, R::Key, R>| table.with_opened(|o| Ok(has(o.kept, index)));
        let first = self.read(|table| match ready(table)? {
            true => run(table).map(Some),
            false => match table.known_conflict(index)? {
                Some(conflict) => Err(conflict),
                None => Ok(None),
            },
        })?;
        if let Some(done) = first {
            return Ok(done);
        }
        self.write(|table| table.with_opened(|_| Ok(())))?;
        self.read(|table| run(table))
    }

    /// Lookup in a unique index; see [`ReadTable::__get_by_index`].
    #[doc(hidden)]
    pub fn __get_by_index<O>(
        &self,
        index: usize,
        value: impl IntoKeyBytes,
        f: impl FnOnce(&R::Archived) -> O,
    ) -> Result<Option<O>> {
        let mut f = Some(f);
        self.query(index, |table| {
            let f = f.take().ok_or_else(|| Error::Backend {
                table: Some(self.name.to_string()),
                source: "index query ran twice".into(),
            })?;
            table.__get_by_index(index, &value, f)
        })
    }

    /// Index entries counted; see [`ReadTable::__count_by_index`].
    #[doc(hidden)]
    pub fn __count_by_index(
        &self,
        index: usize,
        bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>),
    ) -> Result<u64> {
        self.query(index, |table| table.__count_by_index(index, bounds.clone()))
    }

    /// Records by index; see [`ReadTable::__find_by_index`].
    #[doc(hidden)]
    pub fn __find_by_index<O>(
        &self,
        index: usize,
        bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        mut f: impl FnMut(&R::Key, &R::Archived) -> Option<O>,
    ) -> Result<Vec<O>> {
        self.query(index, |table| {
            table.__find_by_index(index, bounds.clone(), &mut f)
        })
    }
}
