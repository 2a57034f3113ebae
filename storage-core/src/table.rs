//! Typed table handles: [`Table`] on a [`Storage`], [`ReadTable`] and
//! [`WriteTable`] inside transactions, and the [`Range`] iterator.

use core::borrow::Borrow;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Bound, Deref, RangeBounds};
use std::cell::OnceCell;
use std::sync::Arc;

use crate::backend::{BackendError, RawRead, RawTable, RawTableMut};
use crate::error::{Error, Result};
use crate::index::{IndexWriter, RecordInfo, Stored};
use crate::key::{AsKey, FromKeyBytes, IntoKeyBytes, KeyPrefix, prefix_successor};
use crate::range::Range;
use crate::record::StoredRecord;
use crate::schema::{self, IndexDef, SchemaState};
use crate::storage::Storage;
use crate::txn::{ReadTransaction, WriteTransaction};
use crate::value::{self, Buffers, StoredValue, ValueDeserializer};

/// A table's reader, with one of its record type's indexes and the index's table.
type WithIndex<'a, T> = (Reader<'a, T>, (&'a IndexDef, Option<&'a T>));

/// Byte bounds over a table's keys.
type ByteBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

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
    buffers: &'a Buffers,
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
        let mut buf = self.buffers.take();
        let archived = value::check::<V>(value::aligned(value.bytes(), &mut buf))
            .map_err(|e| Error::corrupt(self.name, key, "value", e))?;
        Ok(Some(f(archived)))
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
        Ok(Range::new(self.name, inner, self.buffers))
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

    /// The record an index entry points to: it must exist.
    fn indexed<V: StoredValue, R>(
        &self,
        def: &IndexDef,
        entry: &[u8],
        key: &[u8],
        f: impl FnOnce(&V::Archived) -> R,
    ) -> Result<R> {
        self.get::<V, R>(key, f)?.ok_or_else(|| {
            Error::corrupt(
                def.table,
                entry,
                "index entry",
                "it names a record that does not exist",
            )
        })
    }

    /// The record whose value in the unique index `index` is `value`.
    fn get_by_index<V: StoredValue, R, I: RawRead>(
        &self,
        (def, index): (&IndexDef, Option<&I>),
        value: &[u8],
        f: impl FnOnce(&V::Archived) -> R,
    ) -> Result<Option<R>> {
        let Some(index) = index else { return Ok(None) };
        let found = index
            .get(value)
            .map_err(|e| Error::backend(Some(def.table), e))?;
        found
            .map(|key| self.indexed::<V, R>(def, value, key.bytes(), f))
            .transpose()
    }

    /// Records whose index entries lie in `bounds`, in index order, through `f`.
    fn find_by_index<K: FromKeyBytes, V: StoredValue, R, I: RawRead>(
        &self,
        (def, index): (&IndexDef, Option<&I>),
        (start, end): ByteBounds,
        mut f: impl FnMut(&K, &V::Archived) -> Option<R>,
    ) -> Result<Vec<R>> {
        let Some(index) = index else {
            return Ok(Vec::new());
        };
        let backend = |e| Error::backend(Some(def.table), e);
        let mut out = Vec::new();
        for entry in index
            .range(as_slice_bound(&start), as_slice_bound(&end))
            .map_err(backend)?
        {
            let (entry, key) = entry.map_err(backend)?;
            let decoded = K::from_key_bytes(key.bytes())
                .map_err(|e| Error::corrupt(def.table, entry.bytes(), "index entry", e))?;
            if let Some(r) =
                self.indexed::<V, _>(def, entry.bytes(), key.bytes(), |v| f(&decoded, v))?
            {
                out.push(r);
            }
        }
        Ok(out)
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
    range.fold_entries(Vec::new(), |mut out, key, value| {
        out.extend(f(key, value));
        out
    })
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
        /// backwards. (For the whole table use [`iter`](Self::iter): `..`
        /// alone does not tell the key type.)
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

        /// Folds every entry, in key order, into an accumulator; see
        /// [`Range::fold_entries`].
        pub fn fold<B>(
            &$($mut)? self,
            init: B,
            f: impl FnMut(B, &K::Key, &V::Archived) -> B,
        ) -> Result<B> {
            self.iter()?.fold_entries(init, f)
        }

        /// Runs `f` on every entry in key order and collects what it returns
        /// `Some` for.
        pub fn scan<R>(
            &$($mut)? self,
            f: impl FnMut(&K::Key, &V::Archived) -> Option<R>,
        ) -> Result<Vec<R>> {
            collect(self.iter()?, f)
        }

        /// Lookup in the unique index number `index`; called by the methods
        /// `#[derive(StoredRecord)]` generates (`by_email`, ..).
        #[doc(hidden)]
        pub fn __get_by_index<R>(
            &$($mut)? self,
            index: usize,
            value: impl IntoKeyBytes,
            f: impl FnOnce(&V::Archived) -> R,
        ) -> Result<Option<R>> {
            let mut part = crate::key::KeyBuf::new();
            value.write_key_part(&mut part);
            let (reader, index) = self.index_reader(index)?;
            reader.get_by_index::<V, R, _>(index, part.as_slice(), f)
        }

        /// Records by index number `index` with values in `bounds`; called by
        /// the methods `#[derive(StoredRecord)]` generates.
        #[doc(hidden)]
        pub fn __find_by_index<R>(
            &$($mut)? self,
            index: usize,
            bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>),
            f: impl FnMut(&K::Key, &V::Archived) -> Option<R>,
        ) -> Result<Vec<R>> {
            let (reader, index) = self.index_reader(index)?;
            reader.find_by_index::<K::Key, V, R, _>(index, bounds, f)
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
    record: Option<RecordInfo<V>>,
    raw: OnceCell<Opened>,
    /// The record's index tables, opened on the first index query.
    indexes: OnceCell<Vec<Option<RawTable>>>,
    buffers: Buffers,
    _types: PhantomData<fn() -> K>,
}

/// A table opened for reading: `None` if it was never written.
struct Opened {
    table: Option<RawTable>,
    /// Whether the indexes match the record type (always, without a record type).
    indexes_ready: bool,
}

impl<'tx, K: IntoKeyBytes, V: StoredValue> ReadTable<'tx, K, V> {
    pub(crate) fn new(
        tx: &'tx ReadTransaction<'tx>,
        name: TableName,
        record: Option<RecordInfo<V>>,
    ) -> Self {
        Self {
            tx,
            name,
            record,
            raw: OnceCell::new(),
            indexes: OnceCell::new(),
            buffers: Buffers::default(),
            _types: PhantomData,
        }
    }

    fn opened(&self) -> Result<&Opened> {
        if let Some(opened) = self.raw.get() {
            return Ok(opened);
        }
        schema::check_name(&self.name)?;
        let state = match &self.record {
            Some(record) => self.tx.check_schema(record.schema)?,
            None => SchemaState::Current,
        };
        let table = self.tx.raw().open(&self.name)?;
        let indexes_ready = match state {
            SchemaState::Current => true,
            // Nothing written through the record type yet: its indexes are
            // complete only if there is nothing to index.
            SchemaState::Missing => match &table {
                Some(table) => {
                    table
                        .len()
                        .map_err(|e| Error::backend(Some(&self.name), e))?
                        == 0
                }
                None => true,
            },
            SchemaState::IndexesChanged { .. } => false,
        };
        Ok(self.raw.get_or_init(|| Opened {
            table,
            indexes_ready,
        }))
    }

    fn reader(&self) -> Result<Reader<'_, RawTable>> {
        let opened = self.opened()?;
        Ok(Reader {
            name: &self.name,
            raw: opened.table.as_ref(),
            buffers: &self.buffers,
        })
    }

    /// The table reader and index number `index` with its table.
    fn index_reader(&self, index: usize) -> Result<WithIndex<'_, RawTable>> {
        let def = index_def(&self.name, self.record.as_ref(), index)?;
        if !self.opened()?.indexes_ready {
            return Err(Error::IndexNotBuilt {
                table: self.name.to_string(),
                index: def.name.to_owned(),
            });
        }
        let tables = match self.indexes.get() {
            Some(tables) => tables,
            None => {
                let schema = self.record.as_ref().map(|r| r.schema);
                let defs = schema.map_or(&[][..], |s| s.indexes);
                let tables = defs
                    .iter()
                    .map(|def| self.tx.raw().open(def.table))
                    .collect::<Result<Vec<_>>>()?;
                self.indexes.get_or_init(|| tables)
            }
        };
        let table = tables.get(index).and_then(Option::as_ref);
        Ok((self.reader()?, (def, table)))
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    read_methods!();
}

/// The write side shared by [`WriteTable`] and [`WriteBatch`](crate::WriteBatch):
/// a table opened (lazily) in a write transaction, with its indexes.
pub(crate) struct Writer<'tx, V> {
    tx: &'tx WriteTransaction<'tx>,
    name: TableName,
    record: Option<RecordInfo<V>>,
    raw: Option<RawTableMut<'tx>>,
    indexes: IndexWriter<'tx>,
    buffers: Buffers,
}

impl<'tx, V> Writer<'tx, V> {
    pub(crate) fn new(
        tx: &'tx WriteTransaction<'tx>,
        name: TableName,
        record: Option<RecordInfo<V>>,
    ) -> Self {
        Self {
            tx,
            name,
            record,
            raw: None,
            indexes: IndexWriter::new(),
            buffers: Buffers::default(),
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
            None => self.open()?,
        };
        Ok(self.raw.insert(raw))
    }

    /// Opens the table: checks the name and the record schema, and rebuilds
    /// the indexes if the record type's differ from the stored ones.
    fn open(&mut self) -> Result<RawTableMut<'tx>> {
        schema::check_name(&self.name)?;
        self.tx.note_opened(&self.name);
        let raw = self.tx.raw().open(&self.name)?;
        if let Some(record) = self.record {
            match self.tx.check_schema(record.schema)? {
                SchemaState::Current => {}
                // Records written before through the table's name need indexing.
                SchemaState::Missing => self.rebuild(&record, &raw, &[])?,
                SchemaState::IndexesChanged { stored } => self.rebuild(&record, &raw, &stored)?,
            }
        }
        Ok(raw)
    }

    /// Builds the record type's indexes from the records, then stores its
    /// schema: a failure part-way leaves the transaction unable to commit.
    fn rebuild(
        &mut self,
        record: &RecordInfo<V>,
        raw: &RawTableMut<'tx>,
        stale: &[String],
    ) -> Result<()> {
        let (tx, indexes) = (self.tx, &mut self.indexes);
        let txn = tx.raw();
        tx.all_or_nothing(&self.name, || {
            indexes.rebuild(record, raw, stale, &|table| txn.open(table), &|table| {
                txn.delete_table(table)
            })?;
            tx.store_schema(record.schema)
        })
    }

    /// Drops and rebuilds every index of the record type from the records.
    pub(crate) fn rebuild_indexes(&mut self) -> Result<()> {
        let Some(record) = self.record else {
            return Ok(());
        };
        let raw = match self.raw.take() {
            Some(raw) => raw,
            None => self.open()?,
        };
        let rebuilt = self.rebuild(&record, &raw, &[]);
        self.raw = Some(raw);
        rebuilt
    }

    fn reader(&mut self) -> Result<Reader<'_, RawTableMut<'tx>>> {
        self.raw()?;
        Ok(Reader {
            name: &self.name,
            raw: self.raw.as_ref(),
            buffers: &self.buffers,
        })
    }

    /// The table reader and index number `index` with its table.
    fn index_reader(&mut self, index: usize) -> Result<WithIndex<'_, RawTableMut<'tx>>> {
        let def = index_def(&self.name, self.record.as_ref(), index)?;
        self.raw()?;
        let txn = self.tx.raw();
        self.indexes.table(index, def, &|table| txn.open(table))?;
        Ok((
            Reader {
                name: &self.name,
                raw: self.raw.as_ref(),
                buffers: &self.buffers,
            },
            (def, self.indexes.get(index)),
        ))
    }

    fn backend(&self) -> impl Fn(BackendError) -> Error + '_ {
        move |e| Error::backend(Some(&self.name), e)
    }

    /// Serializes `value` and stores it under `key`, without index upkeep.
    pub(crate) fn put<T: StoredValue>(&mut self, key: &[u8], value: &T) -> Result<()> {
        self.serialized(value, |this, bytes| this.put_bytes(key, bytes))
    }

    /// Serializes `value` into the transaction's reused buffer and hands the
    /// bytes to `then`.
    fn serialized<T: StoredValue, R>(
        &mut self,
        value: &T,
        then: impl FnOnce(&mut Self, &[u8]) -> Result<R>,
    ) -> Result<R> {
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
        then(self, buf)
    }

    pub(crate) fn put_bytes(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let raw = self.raw()?;
        raw.insert(key, value).map_err(self.backend())
    }

    /// Removes `key`, without index upkeep.
    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let raw = self.raw()?;
        raw.remove(key).map_err(self.backend())
    }

    /// The record type, if it has indexes to keep up.
    fn indexed(&self) -> Option<RecordInfo<V>> {
        self.record
            .filter(|record| !record.schema.indexes.is_empty())
    }

    /// Stores a record under `key`, keeping its indexes in step.
    ///
    /// Everything that can be refused is checked before anything changes:
    /// the record is serialized and the unique indexes are consulted first.
    /// What can still fail after that (an I/O error) leaves the transaction
    /// unable to commit.
    pub(crate) fn put_record(&mut self, key: &[u8], value: &V) -> Result<()>
    where
        V: StoredValue,
    {
        let Some(record) = self.indexed() else {
            return self.put(key, value);
        };
        self.serialized(value, |this, bytes| {
            this.raw()?;
            let old = IndexWriter::stored(&record, &this.name, this.raw.as_ref(), key)?;
            let new = IndexWriter::entries(&record, value);
            let tx = this.tx;
            let txn = tx.raw();
            let open = |table: &str| txn.open(table);
            this.indexes
                .check_unique(record.schema, key, &old, &new, &open)?;
            let name = this.name.clone();
            tx.all_or_nothing(&name, || {
                this.indexes
                    .apply(record.schema, key, &old, Some(&new), &open)?;
                this.put_bytes(key, bytes)
            })
        })
    }

    /// Removes the record under `key` and its index entries (all entries
    /// that point at it, if its bytes are damaged).
    pub(crate) fn delete_record(&mut self, key: &[u8]) -> Result<bool> {
        let Some(record) = self.indexed() else {
            return self.delete(key);
        };
        self.raw()?;
        let old = IndexWriter::stored(&record, &self.name, self.raw.as_ref(), key)?;
        if matches!(old, Stored::Nothing) {
            return Ok(false);
        }
        let tx = self.tx;
        let txn = tx.raw();
        let name = self.name.clone();
        tx.all_or_nothing(&name, || {
            self.indexes
                .apply(record.schema, key, &old, None, &|table| txn.open(table))?;
            self.delete(key)
        })
    }
}

/// Index number `index` of the record type.
fn index_def<V>(
    table: &str,
    record: Option<&RecordInfo<V>>,
    index: usize,
) -> Result<&'static IndexDef> {
    record
        .and_then(|record| record.schema.indexes.get(index))
        .ok_or_else(|| Error::IndexNotBuilt {
            table: table.to_owned(),
            index: format!("#{index}"),
        })
}

/// A table handle inside a [`WriteTransaction`]: reads see the transaction's
/// own writes.
///
/// Made by [`WriteTransaction::table`] or [`WriteTransaction::records`]. Every
/// method takes `&mut self` because the table is opened on first use; iterate
/// a range to the end (or drop it) before writing again.
pub struct WriteTable<'tx, K, V> {
    writer: Writer<'tx, V>,
    _types: PhantomData<fn() -> K>,
}

impl<'tx, K: IntoKeyBytes, V: StoredValue> WriteTable<'tx, K, V> {
    pub(crate) fn new(writer: Writer<'tx, V>) -> Self {
        Self {
            writer,
            _types: PhantomData,
        }
    }

    fn reader(&mut self) -> Result<Reader<'_, RawTableMut<'tx>>> {
        self.writer.reader()
    }

    fn index_reader(&mut self, index: usize) -> Result<WithIndex<'_, RawTableMut<'tx>>> {
        self.writer.index_reader(index)
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        self.writer.name()
    }

    /// Serializes `value` and stores it under `key`, replacing any previous
    /// value (and keeping a record type's indexes in step). On a record
    /// table, prefer `insert`, which takes the key from the record: `put`
    /// stores under the key it is given.
    pub fn put(&mut self, key: impl AsKey<K::Key>, value: &V) -> Result<()> {
        self.writer.put_record(key.into_key_bytes().as_ref(), value)
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

    /// Removes `key` (and a record's index entries); returns whether it was there.
    pub fn delete(&mut self, key: impl AsKey<K::Key>) -> Result<bool> {
        self.writer.delete_record(key.into_key_bytes().as_ref())
    }

    read_methods!(mut);
}

impl<'tx, R: StoredRecord> WriteTable<'tx, R::Key, R> {
    /// Stores `record` under the key its `#[key]` fields make, replacing any
    /// record with the same key, and updates its indexes.
    ///
    /// A value that a unique index already holds for another record gives
    /// [`Error::UniqueViolation`] and changes nothing.
    pub fn insert(&mut self, record: &R) -> Result<()> {
        self.writer
            .put_record(record.key_ref().into_key_bytes().as_ref(), record)
    }

    /// Empties every index of the record type and builds it again from the
    /// records. Indexes are rebuilt by themselves when a table is first opened
    /// for writing with a record type whose indexes changed; this is for
    /// repairs.
    pub fn rebuild_indexes(&mut self) -> Result<()> {
        self.writer.rebuild_indexes()
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

    fn read<R>(&self, f: impl FnOnce(&mut ReadTable<'_, K, V>) -> Result<R>) -> Result<R> {
        self.storage.read(|tx| {
            let mut table = ReadTable::new(tx, self.name.clone(), self.record);
            f(&mut table)
        })
    }

    fn write<R>(&self, f: impl FnOnce(&mut WriteTable<'_, K, V>) -> Result<R>) -> Result<R> {
        self.storage.write(|tx| {
            let mut table = WriteTable::new(Writer::new(tx, self.name.clone(), self.record));
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

impl<K: IntoKeyBytes, V: StoredValue> Table<K, V> {
    /// Before an index query: if the stored indexes are not those of the
    /// record type, build them in a write transaction of their own.
    fn ensure_indexes(&self) -> Result<()> {
        let Some(record) = self.record.filter(|r| !r.schema.indexes.is_empty()) else {
            return Ok(());
        };
        if self.storage.trusts(record.schema) {
            return Ok(());
        }
        let ready = self.read(|table| Ok(table.opened()?.indexes_ready))?;
        if !ready {
            self.write(|table| table.reader().map(drop))?;
        }
        Ok(())
    }

    /// Lookup in a unique index; see [`ReadTable::__get_by_index`].
    #[doc(hidden)]
    pub fn __get_by_index<R>(
        &self,
        index: usize,
        value: impl IntoKeyBytes,
        f: impl FnOnce(&V::Archived) -> R,
    ) -> Result<Option<R>> {
        self.ensure_indexes()?;
        self.read(|table| table.__get_by_index(index, value, f))
    }

    /// Records by index; see [`ReadTable::__find_by_index`].
    #[doc(hidden)]
    pub fn __find_by_index<R>(
        &self,
        index: usize,
        bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        f: impl FnMut(&K::Key, &V::Archived) -> Option<R>,
    ) -> Result<Vec<R>> {
        self.ensure_indexes()?;
        self.read(|table| table.__find_by_index(index, bounds, f))
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

    /// Rebuilds every index of the record type in a transaction of its own;
    /// see [`WriteTable::rebuild_indexes`].
    pub fn rebuild_indexes(&self) -> Result<()> {
        self.write(|table| table.rebuild_indexes())
    }
}
