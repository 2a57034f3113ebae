//! The backend seam: an ordered, transactional byte-key store.
//!
//! Everything above this module (tables, transactions, records) talks to the
//! store through the handful of types here: a read and a write transaction,
//! raw tables of `&[u8] -> &[u8]` opened in them, lookups, ordered ranges in
//! both directions, inserts, removes and commit. redb is the embedded
//! implementation; another ordered transactional store (a TiKV-like
//! distributed one) would replace this one module.
//!
//! [`RedbBackend`] also offers the seed design's byte-level operations
//! (`put_batch`, `get`, `delete`, `scan`), each in its own transaction.

use core::cell::RefCell;
use core::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::{self, ThreadId};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::error::{Error, Result};

type RawDefinition<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;

/// The largest serialization buffer kept between write transactions.
const MAX_KEPT_SCRATCH: usize = 1 << 20;

/// When a committed write transaction is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every commit is flushed to disk (`fsync`) before it returns. The default.
    #[default]
    Immediate,
    /// Commits are not flushed. The database stays consistent, but a crash
    /// may lose commits made since the last `Immediate` one. Much faster for
    /// many small transactions.
    None,
}

impl Durability {
    fn to_redb(self) -> redb::Durability {
        match self {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::None => redb::Durability::None,
        }
    }
}

/// How to open a database; see [`StorageBuilder`](crate::StorageBuilder).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenOptions {
    pub(crate) durability: Durability,
    pub(crate) check_integrity: bool,
    pub(crate) cache_size: Option<usize>,
}

/// The redb store behind a [`Storage`](crate::Storage): raw byte keys and values.
///
/// Reach it with [`Storage::backend`](crate::Storage::backend). Keys and values
/// here are plain bytes: nothing is encoded, validated or schema-checked, so
/// prefer the typed [`Table`](crate::Table) API. Each method runs in its own
/// transaction.
///
/// ```
/// # fn main() -> storage::Result<()> {
/// let storage = storage::Storage::in_memory()?;
/// let backend = storage.backend();
/// backend.put_batch("raw", [(&b"a"[..], &b"1"[..]), (b"b", b"2")])?;
/// assert_eq!(backend.get("raw", b"a", |v| v.to_vec())?, Some(b"1".to_vec()));
/// let mut keys = Vec::new();
/// backend.scan("raw", |k, _| Ok(keys.push(k.to_vec())))?;
/// assert_eq!(keys, [b"a", b"b"]);
/// assert!(backend.delete("raw", b"a")?);
/// # Ok(())
/// # }
/// ```
pub struct RedbBackend {
    db: redb::Database,
    durability: Durability,
    /// The thread running a write transaction, to refuse a nested one.
    writer: Mutex<Option<ThreadId>>,
    /// Serialization buffer handed to each write transaction in turn.
    scratch: Mutex<Vec<u8>>,
}

impl core::fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RedbBackend")
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

fn builder(options: &OpenOptions) -> redb::Builder {
    let mut builder = redb::Database::builder();
    builder.set_check_integrity_on_open(options.check_integrity);
    if let Some(bytes) = options.cache_size {
        builder.set_cache_size(bytes);
    }
    builder
}

fn open_error(path: &Path, source: redb::DatabaseError) -> Error {
    let path = path.to_path_buf();
    match source {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen { path },
        redb::DatabaseError::Storage(redb::StorageError::Io(ref io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            Error::NotADatabase { path, source }
        }
        source => Error::Open { path, source },
    }
}

impl RedbBackend {
    pub(crate) fn open(path: &Path, options: OpenOptions) -> Result<Self> {
        let db = builder(&options)
            .create(path)
            .map_err(|e| open_error(path, e))?;
        Ok(Self::with_db(db, options))
    }

    pub(crate) fn in_memory(options: OpenOptions) -> Result<Self> {
        let db = builder(&options)
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| open_error(&PathBuf::from(":memory:"), e))?;
        Ok(Self::with_db(db, options))
    }

    fn with_db(db: redb::Database, options: OpenOptions) -> Self {
        Self {
            db,
            durability: options.durability,
            writer: Mutex::new(None),
            scratch: Mutex::new(Vec::new()),
        }
    }

    /// The redb database itself, for what this crate does not wrap
    /// (compaction, savepoints, statistics).
    ///
    /// Writing to this crate's tables through it bypasses key encoding, value
    /// validation, schema checks and index upkeep: what is written there is
    /// read back as untrusted bytes like any other.
    pub fn database(&self) -> &redb::Database {
        &self.db
    }

    /// The durability write transactions commit with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    pub(crate) fn begin_read(&self) -> Result<ReadTxn> {
        let txn = self.db.begin_read().map_err(|e| Error::backend(None, e))?;
        Ok(ReadTxn(txn))
    }

    pub(crate) fn begin_write(&self) -> Result<WriteTxn<'_>> {
        let me = thread::current().id();
        if *lock(&self.writer) == Some(me) {
            return Err(Error::NestedWrite);
        }
        let mut txn = self.db.begin_write().map_err(|e| Error::backend(None, e))?;
        txn.set_durability(self.durability.to_redb())
            .map_err(|e| Error::backend(None, e))?;
        *lock(&self.writer) = Some(me);
        let scratch = core::mem::take(&mut *lock(&self.scratch));
        Ok(WriteTxn {
            txn,
            writer: WriterSlot {
                backend: self,
                scratch: RefCell::new(scratch),
            },
        })
    }

    /// Inserts every `(key, value)` pair into `table` in one transaction.
    pub fn put_batch<I, K, V>(&self, table: &str, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let txn = self.begin_write()?;
        {
            let mut raw = txn.open(table)?;
            for (key, value) in items {
                raw.insert(key.as_ref(), value.as_ref())
                    .map_err(|e| Error::backend(Some(table), e))?;
            }
        }
        txn.commit_then(|| ())
    }

    /// Runs `f` on the value bytes under `key`, if there is one.
    pub fn get<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let txn = self.begin_read()?;
        let Some(raw) = txn.open(table)? else {
            return Ok(None);
        };
        let value = raw.get(key).map_err(|e| Error::backend(Some(table), e))?;
        Ok(value.map(|value| f(value.bytes())))
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&self, table: &str, key: &[u8]) -> Result<bool> {
        let txn = self.begin_write()?;
        let existed = {
            let mut raw = txn.open(table)?;
            raw.remove(key)
                .map_err(|e| Error::backend(Some(table), e))?
        };
        txn.commit_then(|| ())?;
        Ok(existed)
    }

    /// Calls `f` with every key and value of `table` in key order; stops at the
    /// first error `f` returns.
    pub fn scan(&self, table: &str, mut f: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        let txn = self.begin_read()?;
        let Some(raw) = txn.open(table)? else {
            return Ok(());
        };
        for entry in raw
            .range(Bound::Unbounded, Bound::Unbounded)
            .map_err(|e| Error::backend(Some(table), e))?
        {
            let (key, value) = entry.map_err(|e| Error::backend(Some(table), e))?;
            f(key.bytes(), value.bytes())?;
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded values stay consistent even if a holder panicked.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An error from the store, before the table context is added.
pub(crate) type BackendError = redb::Error;

/// A read snapshot.
pub(crate) struct ReadTxn(redb::ReadTransaction);

impl ReadTxn {
    /// Opens `table`; `None` if it was never written (an empty table).
    pub(crate) fn open(&self, table: &str) -> Result<Option<RawTable>> {
        match self.0.open_table(RawDefinition::new(table)) {
            Ok(inner) => Ok(Some(RawTable(inner))),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(Error::backend(Some(table), e)),
        }
    }
}

/// A write transaction; rolled back on drop unless committed.
pub(crate) struct WriteTxn<'b> {
    txn: redb::WriteTransaction,
    writer: WriterSlot<'b>,
}

/// The backend's writer slot, held for as long as a write transaction lives.
struct WriterSlot<'b> {
    backend: &'b RedbBackend,
    /// Reused buffer values are serialized into.
    scratch: RefCell<Vec<u8>>,
}

impl WriteTxn<'_> {
    /// Opens `table`, creating it if needed.
    pub(crate) fn open(&self, table: &str) -> Result<RawTableMut<'_>> {
        self.txn
            .open_table(RawDefinition::new(table))
            .map(RawTableMut)
            .map_err(|e| Error::backend(Some(table), e))
    }

    /// Deletes `table` and everything in it; returns whether it existed.
    pub(crate) fn delete_table(&self, table: &str) -> Result<bool> {
        self.txn
            .delete_table(RawDefinition::new(table))
            .map_err(|e| Error::backend(Some(table), e))
    }

    /// The buffer values are serialized into, reused across transactions.
    pub(crate) fn scratch(&self) -> &RefCell<Vec<u8>> {
        &self.writer.scratch
    }

    /// Makes every change of this transaction visible (and durable, per the
    /// configured [`Durability`]).
    /// Commits, then runs `then` while still holding the writer slot.
    pub(crate) fn commit_then(self, then: impl FnOnce()) -> Result<()> {
        self.txn.commit().map_err(|e| Error::backend(None, e))?;
        then();
        Ok(())
    }
}

impl Drop for WriterSlot<'_> {
    fn drop(&mut self) {
        let mut writer = lock(&self.backend.writer);
        if *writer == Some(thread::current().id()) {
            *writer = None;
        }
        drop(writer);
        let scratch = core::mem::take(self.scratch.get_mut());
        // One huge record does not pin its buffer for the life of the storage.
        if scratch.capacity() <= MAX_KEPT_SCRATCH {
            *lock(&self.backend.scratch) = scratch;
        }
    }
}

/// Read access shared by tables opened for reading and for writing.
pub(crate) trait RawRead {
    fn get(&self, key: &[u8]) -> Result<Option<RawBytes<'_>>, BackendError>;
    fn range<'a>(
        &'a self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Result<RawRange<'a>, BackendError>;
    fn len(&self) -> Result<u64, BackendError>;
}

/// A table opened in a read transaction.
pub(crate) struct RawTable(redb::ReadOnlyTable<&'static [u8], &'static [u8]>);

/// A table opened in a write transaction.
pub(crate) struct RawTableMut<'tx>(redb::Table<'tx, &'static [u8], &'static [u8]>);

impl RawTableMut<'_> {
    #[inline]
    pub(crate) fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<(), BackendError> {
        self.0.insert(key, value)?;
        Ok(())
    }

    /// Removes `key`; returns whether it was there.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Result<bool, BackendError> {
        Ok(self.0.remove(key)?.is_some())
    }
}

macro_rules! raw_read {
    ($($table:ty),*) => {$(
        impl RawRead for $table {
            #[inline]
            fn get(&self, key: &[u8]) -> Result<Option<RawBytes<'_>>, BackendError> {
                Ok(ReadableTable::get(&self.0, key)?.map(RawBytes))
            }

            fn range<'a>(
                &'a self,
                start: Bound<&[u8]>,
                end: Bound<&[u8]>,
            ) -> Result<RawRange<'a>, BackendError> {
                Ok(RawRange(ReadableTable::range::<&[u8]>(&self.0, (start, end))?))
            }

            fn len(&self) -> Result<u64, BackendError> {
                Ok(ReadableTableMetadata::len(&self.0)?)
            }
        }
    )*};
}

raw_read!(RawTable, RawTableMut<'_>);

/// Bytes of a key or value, borrowed from the store.
pub(crate) struct RawBytes<'a>(redb::AccessGuard<'a, &'static [u8]>);

impl RawBytes<'_> {
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.value()
    }
}

/// Entries of a key range, in key order from either end.
pub(crate) struct RawRange<'a>(redb::Range<'a, &'static [u8], &'static [u8]>);

impl RawRange<'_> {
    /// Runs `f` on the key and value bytes of the next entry, in place.
    #[inline]
    pub(crate) fn next_with<R>(
        &mut self,
        f: impl FnOnce(&[u8], &[u8]) -> R,
    ) -> Option<Result<R, BackendError>> {
        Some(match self.0.next()? {
            Ok((key, value)) => Ok(f(key.value(), value.value())),
            Err(e) => Err(e.into()),
        })
    }

    /// Folds the key and value bytes of every remaining entry, in place.
    #[inline]
    pub(crate) fn try_fold_with<B>(
        self,
        init: B,
        mut f: impl FnMut(B, &[u8], &[u8]) -> Result<B>,
        on_error: impl Fn(BackendError) -> Error,
    ) -> Result<B> {
        let mut acc = init;
        for item in self.0 {
            let (key, value) = item.map_err(|e| on_error(e.into()))?;
            acc = f(acc, key.value(), value.value())?;
        }
        Ok(acc)
    }

    /// Runs `f` on the key and value bytes of the last entry, in place.
    #[inline]
    pub(crate) fn next_back_with<R>(
        &mut self,
        f: impl FnOnce(&[u8], &[u8]) -> R,
    ) -> Option<Result<R, BackendError>> {
        Some(match self.0.next_back()? {
            Ok((key, value)) => Ok(f(key.value(), value.value())),
            Err(e) => Err(e.into()),
        })
    }
}

impl<'a> Iterator for RawRange<'a> {
    type Item = Result<(RawBytes<'a>, RawBytes<'a>), BackendError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        Some(
            self.0
                .next()?
                .map(|(k, v)| (RawBytes(k), RawBytes(v)))
                .map_err(Into::into),
        )
    }
}
