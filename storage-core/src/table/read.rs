//! The read path: [`ReadTable`], the same in read and write transactions.

use core::cell::RefCell;
use core::marker::PhantomData;
use core::ops::{Bound, ControlFlow, RangeBounds};

use super::{Opened, TableName, Txn, encode_bounds, prefix_range};
use crate::backend::{AnyTable, Direction, ReadTable as _};
use crate::error::{Error, Result};
use crate::index::{self, RecordInfo, has};
use crate::key::{self, AsKey, FromKeyBytes, IntoKeyBytes, KeyBuf, KeyPrefix};
use crate::range::Range;
use crate::record::StoredRecord;
use crate::value::{self, Buffers, StoredValue, ValueDeserializer};

/// A table handle inside a transaction; reads see the transaction's
/// snapshot (and, in a write transaction, its own writes).
///
/// Made by [`ReadTransaction::table`](crate::ReadTransaction::table) or
/// [`ReadTransaction::records`](crate::ReadTransaction::records); a
/// [`WriteTable`](crate::WriteTable) is one too, with write methods added.
pub struct ReadTable<'tx, K, V> {
    pub(super) txn: Txn<'tx>,
    pub(super) name: TableName,
    pub(super) record: Option<RecordInfo<V>>,
    opened: RefCell<Option<Opened<'tx>>>,
    /// The record type's index tables, opened on first use.
    indexes: RefCell<Vec<Option<Option<AnyTable<'tx>>>>>,
    pub(super) buffers: Buffers,
    _types: PhantomData<fn() -> K>,
}

impl<'tx, K, V> ReadTable<'tx, K, V> {
    pub(crate) fn new(txn: Txn<'tx>, name: TableName, record: Option<RecordInfo<V>>) -> Self {
        Self {
            txn,
            name,
            record,
            opened: RefCell::new(None),
            indexes: RefCell::new(Vec::new()),
            buffers: Buffers::default(),
            _types: PhantomData,
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `f` on the table as opened: the first time (or after a schema
    /// change in the transaction through another handle) it is opened, the
    /// name and the schema checked, and in a write transaction the indexes
    /// brought up to date.
    pub(crate) fn with_opened<T>(&self, f: impl FnOnce(&Opened<'tx>) -> Result<T>) -> Result<T> {
        let version = self.txn.version();
        {
            let opened = self.opened.borrow();
            if let Some(opened) = opened.as_ref().filter(|o| o.version == version) {
                return f(opened);
            }
        }
        let fresh = self
            .txn
            .open(&self.name, self.record.as_ref().map(|r| &r.meta))?;
        let mut slot = self
            .opened
            .try_borrow_mut()
            .map_err(|_| Error::TableInUse {
                table: self.name.to_string(),
            })?;
        *slot = Some(fresh);
        drop(slot);
        match self.opened.borrow().as_ref() {
            Some(opened) => f(opened),
            None => Err(Error::TableInUse {
                table: self.name.to_string(),
            }),
        }
    }

    /// The table of index `index` of the record type.
    pub(crate) fn index_table(&self, index: usize) -> Result<Option<AnyTable<'tx>>> {
        let Some(record) = &self.record else {
            return Ok(None);
        };
        if let Some(Some(table)) = self.indexes.borrow().get(index) {
            return Ok(table.clone());
        }
        let table = self.txn.index_table(&record.meta, index)?;
        let mut indexes = self.indexes.borrow_mut();
        if indexes.len() <= index {
            indexes.resize(index + 1, None);
        }
        indexes[index] = Some(table.clone());
        Ok(table)
    }
}

impl<'tx, K: IntoKeyBytes, V: StoredValue> ReadTable<'tx, K, V> {
    /// Runs `f` on the archived value under `key` and returns what it
    /// returns, or `None` if there is no such key.
    ///
    /// The value is validated first; bytes that are not a valid archive of
    /// `V` give [`Error::Corrupt`]. `f` gets a reference that lives only for
    /// the call: return owned data from it.
    #[inline]
    pub fn get<R>(
        &self,
        key: impl AsKey<K::Key>,
        f: impl FnOnce(&V::Archived) -> R,
    ) -> Result<Option<R>> {
        self.get_bytes(key.into_key_bytes().as_ref(), f)
    }

    #[inline]
    fn get_bytes<R>(&self, key: &[u8], f: impl FnOnce(&V::Archived) -> R) -> Result<Option<R>> {
        self.with_opened(|opened| {
            let Some(table) = &opened.table else {
                return Ok(None);
            };
            read_value::<K::Key, V, R>(table, &self.buffers, key, f)
        })
    }

    /// The value under `key` deserialized into an owned `V`, for
    /// read-modify-write; `get` with a closure reads in place instead.
    pub fn get_owned(&self, key: impl AsKey<K::Key>) -> Result<Option<V>>
    where
        V::Archived: rkyv::Deserialize<V, ValueDeserializer>,
    {
        self.get_owned_bytes(key.into_key_bytes().as_ref())
    }

    pub(crate) fn get_owned_bytes(&self, key: &[u8]) -> Result<Option<V>>
    where
        V::Archived: rkyv::Deserialize<V, ValueDeserializer>,
    {
        self.get_bytes(key, value::deserialize::<V>)?
            .transpose()
            .map_err(|e| Error::corrupt(&self.name, key, key::show::<K::Key>(key), "value", e))
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
        &self,
        key: impl AsKey<K::Key>,
        f: impl FnOnce(&V::Archived) -> R,
    ) -> Result<Option<R>> {
        let key = key.into_key_bytes();
        self.with_opened(|opened| {
            let Some(table) = &opened.table else {
                return Ok(None);
            };
            // SAFETY: the caller vouches that the stored bytes are a valid archive of `V`.
            table.get(key.as_ref(), |bytes| unsafe {
                value::read_unchecked::<V, R>(bytes, f)
            })
        })
    }

    /// Whether `key` is in the table.
    pub fn contains_key(&self, key: impl AsKey<K::Key>) -> Result<bool> {
        self.contains_bytes(key.into_key_bytes().as_ref())
    }

    pub(crate) fn contains_bytes(&self, key: &[u8]) -> Result<bool> {
        self.with_opened(|opened| match &opened.table {
            Some(table) => Ok(table.get(key, |_| ())?.is_some()),
            None => Ok(false),
        })
    }

    /// The number of entries.
    pub fn len(&self) -> Result<u64> {
        self.with_opened(|opened| match &opened.table {
            Some(table) => table.len(),
            None => Ok(0),
        })
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Entries with keys in `bounds`, in key order; `.rev()` walks them
    /// backwards. (For the whole table use [`iter`](Self::iter): `..`
    /// alone does not tell the key type.)
    ///
    /// The range reads the table a page at a time as it is iterated; in a
    /// write transaction, writes made meanwhile show from the next page on.
    pub fn range<Q: AsKey<K::Key>>(
        &self,
        bounds: impl RangeBounds<Q>,
    ) -> Result<Range<'tx, K::Key, V>> {
        self.bytes_range(encode_bounds(&bounds))
    }

    /// Entries whose keys start with `prefix`, in key order: the leading
    /// parts of a composite key (`(customer_id,)` of `(u64, u64)` keys), or
    /// the start of a string key.
    pub fn prefix<P>(&self, prefix: impl AsKey<P>) -> Result<Range<'tx, K::Key, V>>
    where
        P: KeyPrefix<K::Key>,
    {
        self.bytes_range(prefix_range(prefix.into_key_bytes().as_ref()))
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> Result<Range<'tx, K::Key, V>> {
        self.bytes_range((Bound::Unbounded, Bound::Unbounded))
    }

    fn bytes_range(&self, bounds: (Bound<KeyBuf>, Bound<KeyBuf>)) -> Result<Range<'tx, K::Key, V>> {
        self.with_opened(|opened| {
            let range = Range::new(opened.table.clone(), bounds);
            Ok(match (self.txn, &self.record) {
                (Txn::Write(tx), Some(record)) => range.of_record(tx, record.schema),
                _ => range,
            })
        })
    }

    /// Folds every entry, in key order, into an accumulator; see
    /// [`Range::fold_entries`].
    pub fn fold<B>(&self, init: B, f: impl FnMut(B, &K::Key, &V::Archived) -> B) -> Result<B> {
        self.iter()?.fold_entries(init, f)
    }

    /// Runs `f` on every entry in key order and collects what it returns
    /// `Some` for.
    pub fn scan<R>(&self, f: impl FnMut(&K::Key, &V::Archived) -> Option<R>) -> Result<Vec<R>> {
        collect(self.iter()?, f)
    }

    /// One page of the table for a listing: up to `limit` entries after
    /// `after` (from the start if `None`), each through `f`, and the
    /// [`Cursor`] to ask for the next page with (`None` on the last page).
    /// A `limit` of 0 is taken as 1: a page that holds nothing could not
    /// say where the next one starts.
    /// A cursor is a position, not a snapshot: pages read in separate
    /// transactions see the writes made between them.
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// let storage = storage::Storage::in_memory()?;
    /// storage.table::<u32, u32>("n").put_batch((0..5u32).map(|i| (i, i)))?;
    /// let first = storage.table::<u32, u32>("n").page(None, 2, |k, _| *k)?;
    /// assert_eq!(first.items, [0, 1]);
    /// // The cursor travels as text, e.g. in a URL.
    /// let token = first.next.unwrap().to_string();
    /// let cursor: storage::Cursor = token.parse()?;
    /// let second = storage.table::<u32, u32>("n").page(Some(&cursor), 2, |k, _| *k)?;
    /// assert_eq!(second.items, [2, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn page<O>(
        &self,
        after: Option<&Cursor>,
        limit: usize,
        f: impl FnMut(&K::Key, &V::Archived) -> O,
    ) -> Result<Page<O>> {
        self.page_bytes((Bound::Unbounded, Bound::Unbounded), after, limit, f)
    }

    /// Like [`page`](Self::page), over the keys in `bounds`.
    pub fn page_range<Q: AsKey<K::Key>, O>(
        &self,
        bounds: impl RangeBounds<Q>,
        after: Option<&Cursor>,
        limit: usize,
        f: impl FnMut(&K::Key, &V::Archived) -> O,
    ) -> Result<Page<O>> {
        self.page_bytes(encode_bounds(&bounds), after, limit, f)
    }

    fn page_bytes<O>(
        &self,
        (lo, hi): (Bound<KeyBuf>, Bound<KeyBuf>),
        after: Option<&Cursor>,
        limit: usize,
        mut f: impl FnMut(&K::Key, &V::Archived) -> O,
    ) -> Result<Page<O>> {
        let limit = limit.max(1);
        let lo = match after {
            // After the cursor, or from the bound if the cursor lies before it.
            Some(cursor) => match &lo {
                Bound::Included(b) | Bound::Excluded(b) if b.as_slice() > cursor.0.as_slice() => lo,
                _ => Bound::Excluded(KeyBuf::from(cursor.0.as_slice())),
            },
            None => lo,
        };
        let mut items = Vec::new();
        let mut last: Option<KeyBuf> = None;
        let mut more = false;
        for entry in self.bytes_range((lo, hi))? {
            let entry = entry?;
            if items.len() == limit {
                more = true;
                break;
            }
            last = Some(KeyBuf::from(entry.key().into_key_bytes().as_ref()));
            items.push(f(entry.key(), entry.value()));
        }
        let next = match (more, last) {
            (true, Some(last)) => Some(Cursor(last.as_slice().to_vec())),
            _ => None,
        };
        Ok(Page { items, next })
    }
}

/// One page of a listing, from [`ReadTable::page`] or [`Table::page`](crate::Table::page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The entries of the page, in key order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Where a listing goes on: the encoded key of the last entry handed out.
/// Shown as hex with [`Display`](core::fmt::Display) and parsed back with
/// [`FromStr`](core::str::FromStr), for a URL or a JSON field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(Vec<u8>);

impl core::fmt::Display for Cursor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl core::str::FromStr for Cursor {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::BadCursor {
            cursor: text.chars().take(64).collect(),
        };
        // Hex digits only: `from_str_radix` alone would take a `+` sign.
        if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| bad()))
            .collect::<Result<Vec<u8>>>()?;
        Ok(Cursor(bytes))
    }
}

/// Validates the value under `key` of `table` as a `V` and runs `f` on it.
#[inline]
pub(crate) fn read_value<K: FromKeyBytes, V: StoredValue, R>(
    table: &AnyTable<'_>,
    buffers: &Buffers,
    key: &[u8],
    f: impl FnOnce(&V::Archived) -> R,
) -> Result<Option<R>> {
    table
        .get(key, |bytes| {
            let mut buf = buffers.take();
            let archived = value::check::<V>(value::aligned(bytes, &mut buf))
                .map_err(|e| Error::corrupt(table.name(), key, key::show::<K>(key), "value", e))?;
            Ok(f(archived))
        })?
        .transpose()
}

/// Iterates `range`, keeping what `f` returns `Some` for; stops at the first error.
pub(crate) fn collect<K, V, R>(
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

impl<'tx, R: StoredRecord> ReadTable<'tx, R::Key, R> {
    /// In a read transaction, the [`Error::UniqueIndexConflict`] the stored
    /// row of `R`'s very version records for the unique index `index`: no
    /// build can succeed until a write through `R` changes the table (and
    /// such writes try the build again themselves).
    pub(crate) fn known_conflict(&self, index: usize) -> Result<Option<Error>> {
        let (Txn::Read(tx), Some(def)) = (self.txn, R::SCHEMA.indexes.get(index)) else {
            return Ok(None);
        };
        let current = tx.row(&self.name)?.is_some_and(|row| row.holds(R::SCHEMA));
        Ok(match tx.unbuilt(&self.name, def) {
            conflict @ Error::UniqueIndexConflict { .. } if current => Some(conflict),
            _ => None,
        })
    }

    /// Runs `f` with the record table and the table of index `index`, if
    /// the index is built.
    fn with_index<T>(
        &self,
        index: usize,
        f: impl FnOnce(Option<&AnyTable<'tx>>, Option<&AnyTable<'tx>>) -> Result<T>,
    ) -> Result<T> {
        let Some(def) = R::SCHEMA.indexes.get(index) else {
            return Err(Error::IndexNotBuilt {
                table: self.name.to_string(),
                index: format!("#{index}"),
            });
        };
        self.with_opened(|opened| {
            if !has(opened.kept, index) {
                return Err(self.txn.unbuilt(&self.name, def));
            }
            let index_table = self.index_table(index)?;
            f(opened.table.as_ref(), index_table.as_ref())
        })
    }

    /// Lookup in the unique index number `index`; called by the methods
    /// `#[derive(StoredRecord)]` generates (`by_email`, ..).
    #[doc(hidden)]
    pub fn __get_by_index<O>(
        &self,
        index: usize,
        value: impl IntoKeyBytes,
        f: impl FnOnce(&R::Archived) -> O,
    ) -> Result<Option<O>> {
        let mut part = KeyBuf::new();
        value.write_key_part(&mut part);
        self.with_index(index, |main, table| {
            index::get_by_index::<R, O>(main, table, &self.buffers, index, part.as_slice(), f)
        })
    }

    /// The number of entries of index number `index` with values in
    /// `bounds`, counted without reading the records; called by the
    /// `count_by_..` methods `#[derive(StoredRecord)]` generates.
    #[doc(hidden)]
    pub fn __count_by_index(
        &self,
        index: usize,
        (start, end): (Bound<Vec<u8>>, Bound<Vec<u8>>),
    ) -> Result<u64> {
        self.with_index(index, |_, table| {
            let Some(table) = table else { return Ok(0) };
            let mut count = 0;
            let range = (index::as_slice_bound(&start), index::as_slice_bound(&end));
            table.scan(range, Direction::Forward, |_, _| {
                count += 1;
                Ok(ControlFlow::Continue(()))
            })?;
            Ok(count)
        })
    }

    /// Records by index number `index` with values in `bounds`; called by
    /// the methods `#[derive(StoredRecord)]` generates.
    #[doc(hidden)]
    pub fn __find_by_index<O>(
        &self,
        index: usize,
        bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        f: impl FnMut(&R::Key, &R::Archived) -> Option<O>,
    ) -> Result<Vec<O>> {
        self.with_index(index, |main, table| {
            index::find_by_index::<R, O>(main, table, &self.buffers, index, bounds, f)
        })
    }
}
