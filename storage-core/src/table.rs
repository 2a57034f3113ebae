//! Typed table handles: [`Table`] on a [`Storage`], [`ReadTable`] and
//! [`WriteTable`] inside transactions, and the [`Range`] iterator.

use core::borrow::Borrow;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Bound, Deref, RangeBounds};
use std::cell::OnceCell;
use std::sync::Arc;

use crate::backend::{BackendError, RawBytes, RawRange, RawRead, RawTable, RawTableMut};
use crate::error::{Error, Result};
use crate::key::{AsKey, FromKeyBytes, IntoKeyBytes, KeyPrefix, prefix_successor};
use crate::record::StoredRecord;
use crate::schema::{self, Schema};
use crate::storage::Storage;
use crate::txn::{ReadTransaction, WriteTransaction};
use crate::value::{self, PooledBuf, StoredValue, ValueDeserializer};

/// A table name: borrowed for record types, shared for names given at run time.
#[derive(Clone)]
pub(crate) enum TableName {
    Static(&'static str),
    Shared(Arc<str>),
}

impl TableName {
    pub(crate) fn new(name: &str) -> Self {
        TableName::Shared(Arc::from(name))
    }

    pub(crate) fn of<R: StoredRecord>() -> Self {
        TableName::Static(R::SCHEMA.table)
    }
}

impl Deref for TableName {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            TableName::Static(name) => name,
            TableName::Shared(name) => name,
        }
    }
}

impl fmt::Debug for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Encodes a range of keys as byte bounds.
fn encode_bound<Q: IntoKeyBytes>(bound: Bound<&Q>) -> Bound<Q::Bytes<'_>> {
    match bound {
        Bound::Included(key) => Bound::Included(key.into_key_bytes()),
        Bound::Excluded(key) => Bound::Excluded(key.into_key_bytes()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn as_slice_bound<B: AsRef<[u8]>>(bound: &Bound<B>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(bytes) => Bound::Included(bytes.as_ref()),
        Bound::Excluded(bytes) => Bound::Excluded(bytes.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The reads every handle offers, over a table that may not exist yet.
struct Reader<'a, T> {
    name: &'a str,
    raw: Option<&'a T>,
}

impl<'a, T: RawRead> Reader<'a, T> {
    fn backend(&self) -> impl Fn(BackendError) -> Error + '_ {
        move |e| Error::backend(Some(self.name), e)
    }

    fn get<V: StoredValue, R>(
        &self,
        key: &[u8],
        f: impl FnOnce(&V::Archived) -> R,
    ) -> Result<Option<R>> {
        let Some(raw) = self.raw else { return Ok(None) };
        let Some(value) = raw.get(key).map_err(self.backend())? else {
            return Ok(None);
        };
        value::read::<V, R>(value.bytes(), f)
            .map(Some)
            .map_err(|e| Error::corrupt(self.name, key, "value", e))
    }

    fn get_owned<V>(&self, key: &[u8]) -> Result<Option<V>>
    where
        V: StoredValue,
        V::Archived: rkyv::Deserialize<V, ValueDeserializer>,
    {
        self.get::<V, _>(key, value::deserialize::<V>)?
            .transpose()
            .map_err(|e| Error::corrupt(self.name, key, "value", e))
    }

    /// # Safety
    ///
    /// See [`ReadTable::get_unchecked`].
    unsafe fn get_unchecked<V: StoredValue, R>(
        &self,
        key: &[u8],
        f: impl FnOnce(&V::Archived) -> R,
    ) -> Result<Option<R>> {
        let Some(raw) = self.raw else { return Ok(None) };
        let Some(value) = raw.get(key).map_err(self.backend())? else {
            return Ok(None);
        };
        // SAFETY: the caller vouches that the stored bytes are a valid archive of `V`.
        Ok(Some(unsafe {
            value::read_unchecked::<V, R>(value.bytes(), f)
        }))
    }

    fn contains_key(&self, key: &[u8]) -> Result<bool> {
        let Some(raw) = self.raw else {
            return Ok(false);
        };
        Ok(raw.get(key).map_err(self.backend())?.is_some())
    }

    fn len(&self) -> Result<u64> {
        let Some(raw) = self.raw else { return Ok(0) };
        raw.len().map_err(self.backend())
    }

    fn range<K, V>(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Result<Range<'a, K, V>> {
        let inner = match self.raw {
            Some(raw) => Some(raw.range(start, end).map_err(self.backend())?),
            None => None,
        };
        Ok(Range {
            name: self.name,
            inner,
            _types: PhantomData,
        })
    }

    fn keys<K, V, Q: IntoKeyBytes>(&self, bounds: impl RangeBounds<Q>) -> Result<Range<'a, K, V>> {
        let start = encode_bound(bounds.start_bound());
        let end = encode_bound(bounds.end_bound());
        self.range(as_slice_bound(&start), as_slice_bound(&end))
    }

    fn prefix<K, V>(&self, prefix: &[u8]) -> Result<Range<'a, K, V>> {
        let end = prefix_successor(prefix);
        let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.range(Bound::Included(prefix), end)
    }
}

/// Iterates `range`, keeping what `f` returns `Some` for; stops at the first error.
fn collect<K, V, R>(
    range: Range<'_, K, V>,
    mut f: impl FnMut(&K, &V::Archived) -> Option<R>,
) -> Result<Vec<R>>
where
    K: FromKeyBytes,
    V: StoredValue,
{
    let mut out = Vec::new();
    for entry in range {
        let entry = entry?;
        if let Some(r) = f(entry.key(), entry.value()) {
            out.push(r);
        }
    }
    Ok(out)
}

macro_rules! read_methods {
    ($($mut:ident)?) => {
        /// Runs `f` on the archived value under `key` and returns what it
        /// returns, or `None` if there is no such key.
        ///
        /// The value is validated first; bytes that are not a valid archive of
        /// `V` give [`Error::Corrupt`]. `f` gets a reference that lives only for
        /// the call: return owned data from it.
        pub fn get<R>(
            &$($mut)? self,
            key: impl AsKey<K::Key>,
            f: impl FnOnce(&V::Archived) -> R,
        ) -> Result<Option<R>> {
            self.reader()?.get::<V, R>(key.into_key_bytes().as_ref(), f)
        }

        /// The value under `key` deserialized into an owned `V`, for
        /// read-modify-write; `get` with a closure reads in place instead.
        pub fn get_owned(&$($mut)? self, key: impl AsKey<K::Key>) -> Result<Option<V>>
        where
            V::Archived: rkyv::Deserialize<V, ValueDeserializer>,
        {
            self.reader()?.get_owned(key.into_key_bytes().as_ref())
        }

        /// Like [`get`](Self::get), without validating the stored bytes.
        ///
        /// Saves the validation pass (tens of nanoseconds for a typical
        /// record); the aligned copy is still made when needed.
        ///
        /// # Safety
        ///
        /// The bytes under `key` must be a valid rkyv archive of `V`: written
        /// through this crate with this very type, and the file not altered
        /// since. Corrupt or foreign bytes are undefined behaviour here, where
        /// [`get`](Self::get) returns [`Error::Corrupt`].
        pub unsafe fn get_unchecked<R>(
            &$($mut)? self,
            key: impl AsKey<K::Key>,
            f: impl FnOnce(&V::Archived) -> R,
        ) -> Result<Option<R>> {
            let reader = self.reader()?;
            // SAFETY: forwarded from this function's contract.
            unsafe { reader.get_unchecked::<V, R>(key.into_key_bytes().as_ref(), f) }
        }

        /// Whether `key` is in the table.
        pub fn contains_key(&$($mut)? self, key: impl AsKey<K::Key>) -> Result<bool> {
            self.reader()?.contains_key(key.into_key_bytes().as_ref())
        }

        /// The number of entries.
        pub fn len(&$($mut)? self) -> Result<u64> {
            self.reader()?.len()
        }

        /// Whether the table has no entries.
        pub fn is_empty(&$($mut)? self) -> Result<bool> {
            Ok(self.len()? == 0)
        }

        /// Entries with keys in `bounds`, in key order; `.rev()` walks them
        /// backwards.
        pub fn range<Q: AsKey<K::Key>>(
            &$($mut)? self,
            bounds: impl RangeBounds<Q>,
        ) -> Result<Range<'_, K::Key, V>> {
            self.reader()?.keys(bounds)
        }

        /// Entries whose keys start with `prefix`, in key order: the leading
        /// parts of a composite key (`(customer_id,)` of `(u64, u64)` keys), or
        /// the start of a string key.
        pub fn prefix<P>(&$($mut)? self, prefix: impl AsKey<P>) -> Result<Range<'_, K::Key, V>>
        where
            P: KeyPrefix<K::Key>,
        {
            self.reader()?.prefix(prefix.into_key_bytes().as_ref())
        }

        /// Every entry, in key order.
        pub fn iter(&$($mut)? self) -> Result<Range<'_, K::Key, V>> {
            self.reader()?.range(Bound::Unbounded, Bound::Unbounded)
        }

        /// Runs `f` on every entry in key order and collects what it returns
        /// `Some` for.
        pub fn scan<R>(
            &$($mut)? self,
            f: impl FnMut(&K::Key, &V::Archived) -> Option<R>,
        ) -> Result<Vec<R>> {
            collect(self.iter()?, f)
        }
    };
}

/// A table handle inside a [`ReadTransaction`].
///
/// Made by [`ReadTransaction::table`] or [`ReadTransaction::records`]. All
/// reads see the transaction's snapshot.
pub struct ReadTable<'tx, K, V> {
    tx: &'tx ReadTransaction<'tx>,
    name: TableName,
    schema: Option<&'static Schema>,
    raw: OnceCell<Option<RawTable>>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'tx, K: IntoKeyBytes, V: StoredValue> ReadTable<'tx, K, V> {
    pub(crate) fn new(
        tx: &'tx ReadTransaction<'tx>,
        name: TableName,
        schema: Option<&'static Schema>,
    ) -> Self {
        Self {
            tx,
            name,
            schema,
            raw: OnceCell::new(),
            _types: PhantomData,
        }
    }

    fn reader(&self) -> Result<Reader<'_, RawTable>> {
        let raw = match self.raw.get() {
            Some(raw) => raw,
            None => {
                schema::check_name(&self.name)?;
                if let Some(schema) = self.schema {
                    self.tx.check_schema(schema)?;
                }
                let raw = self.tx.raw().open(&self.name)?;
                self.raw.get_or_init(|| raw)
            }
        };
        Ok(Reader {
            name: &self.name,
            raw: raw.as_ref(),
        })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    read_methods!();
}

/// The write side shared by [`WriteTable`] and [`WriteBatch`](crate::WriteBatch):
/// a table opened (lazily) in a write transaction.
pub(crate) struct Writer<'tx> {
    tx: &'tx WriteTransaction<'tx>,
    name: TableName,
    schema: Option<&'static Schema>,
    raw: Option<RawTableMut<'tx>>,
}

impl<'tx> Writer<'tx> {
    pub(crate) fn new(
        tx: &'tx WriteTransaction<'tx>,
        name: TableName,
        schema: Option<&'static Schema>,
    ) -> Self {
        Self {
            tx,
            name,
            schema,
            raw: None,
        }
    }

    pub(crate) fn tx(&self) -> &'tx WriteTransaction<'tx> {
        self.tx
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn raw(&mut self) -> Result<&mut RawTableMut<'tx>> {
        let raw = match self.raw.take() {
            Some(raw) => raw,
            None => {
                schema::check_name(&self.name)?;
                if let Some(schema) = self.schema {
                    self.tx.check_schema(schema)?;
                }
                self.tx.note_opened(&self.name);
                self.tx.raw().open(&self.name)?
            }
        };
        Ok(self.raw.insert(raw))
    }

    fn reader(&mut self) -> Result<Reader<'_, RawTableMut<'tx>>> {
        self.raw()?;
        Ok(Reader {
            name: &self.name,
            raw: self.raw.as_ref(),
        })
    }

    fn backend(&self) -> impl Fn(BackendError) -> Error + '_ {
        move |e| Error::backend(Some(&self.name), e)
    }

    pub(crate) fn put<V: StoredValue>(&mut self, key: &[u8], value: &V) -> Result<()> {
        let tx = self.tx;
        let mut scratch = tx.raw().scratch().try_borrow_mut();
        let mut fresh = Vec::new();
        // A serializer that re-enters the transaction gets a fresh buffer.
        let buf = match scratch.as_deref_mut() {
            Ok(buf) => buf,
            Err(_) => &mut fresh,
        };
        value::encode(value, buf).map_err(|e| Error::Encode {
            table: self.name.to_string(),
            source: e.into(),
        })?;
        self.put_bytes(key, buf)
    }

    pub(crate) fn put_bytes(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let raw = self.raw()?;
        raw.insert(key, value).map_err(self.backend())
    }

    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let raw = self.raw()?;
        raw.remove(key).map_err(self.backend())
    }
}

/// A table handle inside a [`WriteTransaction`]: reads see the transaction's
/// own writes.
///
/// Made by [`WriteTransaction::table`] or [`WriteTransaction::records`]. Every
/// method takes `&mut self` because the table is opened on first use; iterate
/// a range to the end (or drop it) before writing again.
pub struct WriteTable<'tx, K, V> {
    writer: Writer<'tx>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'tx, K: IntoKeyBytes, V: StoredValue> WriteTable<'tx, K, V> {
    pub(crate) fn new(writer: Writer<'tx>) -> Self {
        Self {
            writer,
            _types: PhantomData,
        }
    }

    fn reader(&mut self) -> Result<Reader<'_, RawTableMut<'tx>>> {
        self.writer.reader()
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        self.writer.name()
    }

    /// Serializes `value` and stores it under `key`, replacing any previous value.
    pub fn put(&mut self, key: impl AsKey<K::Key>, value: &V) -> Result<()> {
        self.writer.put(key.into_key_bytes().as_ref(), value)
    }

    /// Stores every `(key, value)` pair.
    pub fn put_batch<Q, B>(&mut self, items: impl IntoIterator<Item = (Q, B)>) -> Result<()>
    where
        Q: AsKey<K::Key>,
        B: Borrow<V>,
    {
        for (key, value) in items {
            self.put(key, value.borrow())?;
        }
        Ok(())
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&mut self, key: impl AsKey<K::Key>) -> Result<bool> {
        self.writer.delete(key.into_key_bytes().as_ref())
    }

    read_methods!(mut);
}

impl<'tx, R: StoredRecord> WriteTable<'tx, R::Key, R> {
    /// Stores `record` under the key its `#[key]` fields make, replacing any
    /// record with the same key.
    pub fn insert(&mut self, record: &R) -> Result<()> {
        self.writer
            .put(record.key_ref().into_key_bytes().as_ref(), record)
    }

    /// Stores every record of `records`.
    pub fn insert_batch<B: Borrow<R>>(
        &mut self,
        records: impl IntoIterator<Item = B>,
    ) -> Result<()> {
        for record in records {
            self.insert(record.borrow())?;
        }
        Ok(())
    }
}

/// An iterator over the entries of a key range, from
/// [`ReadTable::range`]/[`prefix`](ReadTable::prefix)/[`iter`](ReadTable::iter)
/// and the same on [`WriteTable`].
///
/// Yields entries in key order, or backwards with `.rev()`. A damaged entry
/// yields [`Error::Corrupt`] and iteration goes on with the next.
pub struct Range<'a, K, V> {
    name: &'a str,
    inner: Option<RawRange<'a>>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'a, K: FromKeyBytes, V: StoredValue> Range<'a, K, V> {
    fn entry(
        &self,
        item: Result<(RawBytes<'a>, RawBytes<'a>), BackendError>,
    ) -> Result<Entry<'a, K, V>> {
        let (key, value) = item.map_err(|e| Error::backend(Some(self.name), e))?;
        let decoded = K::from_key_bytes(key.bytes())
            .map_err(|e| Error::corrupt(self.name, key.bytes(), "key", e))?;
        Entry::new(decoded, value).map_err(|e| Error::corrupt(self.name, key.bytes(), "value", e))
    }
}

impl<'a, K: FromKeyBytes, V: StoredValue> Iterator for Range<'a, K, V> {
    type Item = Result<Entry<'a, K, V>>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.as_mut()?.next()?;
        Some(self.entry(item))
    }
}

impl<K: FromKeyBytes, V: StoredValue> DoubleEndedIterator for Range<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.inner.as_mut()?.next_back()?;
        Some(self.entry(item))
    }
}

/// One validated entry of a [`Range`]: a decoded key and the archived value.
pub struct Entry<'a, K, V> {
    key: K,
    value: ValueBytes<'a>,
    _value: PhantomData<fn() -> V>,
}

/// Where an entry's validated value bytes live.
enum ValueBytes<'a> {
    /// In the store's page, which happened to be aligned.
    InPlace(RawBytes<'a>),
    /// In an aligned copy.
    Copied(PooledBuf),
}

impl<'a, K, V: StoredValue> Entry<'a, K, V> {
    fn new(key: K, value: RawBytes<'a>) -> Result<Self, rkyv::rancor::BoxedError> {
        let mut buf = PooledBuf::take();
        let aligned = value::aligned(value.bytes(), &mut buf);
        value::check::<V>(aligned)?;
        let in_place = core::ptr::eq(aligned, value.bytes());
        Ok(Self {
            key,
            value: if in_place {
                ValueBytes::InPlace(value)
            } else {
                ValueBytes::Copied(buf)
            },
            _value: PhantomData,
        })
    }

    /// The decoded key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The decoded key, by value.
    pub fn into_key(self) -> K {
        self.key
    }

    /// The archived value.
    pub fn value(&self) -> &V::Archived {
        let bytes = match &self.value {
            ValueBytes::InPlace(raw) => raw.bytes(),
            ValueBytes::Copied(buf) => buf.as_slice(),
        };
        // SAFETY: `Entry::new` validated exactly these bytes with
        // `value::check::<V>` at this address, and they cannot have changed
        // since: the store's page is immutable while its guard is held (the
        // range borrows the table, so no write can happen meanwhile), and the
        // copy is owned by this entry and never written after validation.
        unsafe { rkyv::access_unchecked::<V::Archived>(bytes) }
    }
}

impl<K: fmt::Debug, V> fmt::Debug for Entry<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

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
    schema: Option<&'static Schema>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Self {
            storage: self.storage.clone(),
            name: self.name.clone(),
            schema: self.schema,
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
    pub(crate) fn new(storage: Storage, name: TableName, schema: Option<&'static Schema>) -> Self {
        Self {
            storage,
            name,
            schema,
            _types: PhantomData,
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn read<R>(&self, f: impl FnOnce(&mut ReadTable<'_, K, V>) -> Result<R>) -> Result<R> {
        self.storage.read(|tx| {
            let mut table = ReadTable::new(tx, self.name.clone(), self.schema);
            f(&mut table)
        })
    }

    fn write<R>(&self, f: impl FnOnce(&mut WriteTable<'_, K, V>) -> Result<R>) -> Result<R> {
        self.storage.write(|tx| {
            let mut table = WriteTable::new(Writer::new(tx, self.name.clone(), self.schema));
            f(&mut table)
        })
    }

    /// Stores `value` under `key` in a transaction of its own.
    pub fn put(&self, key: impl AsKey<K::Key>, value: &V) -> Result<()> {
        self.write(|table| table.put(key, value))
    }

    /// Stores every `(key, value)` pair in one transaction: all or none.
    pub fn put_batch<Q, B>(&self, items: impl IntoIterator<Item = (Q, B)>) -> Result<()>
    where
        Q: AsKey<K::Key>,
        B: Borrow<V>,
    {
        self.write(|table| table.put_batch(items))
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
        self.write(|table| table.delete(key))
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

    /// Like [`scan`](Self::scan), over the keys in `bounds`.
    pub fn range<Q: AsKey<K::Key>, R>(
        &self,
        bounds: impl RangeBounds<Q>,
        f: impl FnMut(&K::Key, &V::Archived) -> Option<R>,
    ) -> Result<Vec<R>> {
        self.read(|table| collect(table.range(bounds)?, f))
    }

    /// Like [`scan`](Self::scan), over the keys starting with `prefix`; see
    /// [`ReadTable::prefix`].
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

    /// Stores every record in one transaction: all or none.
    pub fn insert_batch<B: Borrow<R>>(&self, records: impl IntoIterator<Item = B>) -> Result<()> {
        self.write(|table| table.insert_batch(records))
    }
}
