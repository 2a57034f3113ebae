//! The embedded engine: [redb](https://docs.rs/redb), one file, one writer at
//! a time, readers on MVCC snapshots.
//!
//! Every table of a transaction is opened once and kept in the transaction's
//! own list of slots; handles refer to a slot, so that every redb table is
//! dropped before the transaction commits, whatever the caller did with its
//! handles (a redb table leaked with `mem::forget` would keep redb's writer
//! lock forever). redb's errors are mapped to [`Error`] here and only here.

use core::cell::RefCell;
use core::ops::{Bound, ControlFlow};
use std::path::Path;
use std::rc::Rc;

use ::redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};

use super::{
    Direction, Durability, KeyRange, ReadTable, ReadTxn, Savepoint, Store, Visit, WriteTable,
    WriteTxn,
};
use crate::error::{Error, Result};

mod overlay;

type Definition<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;
type RawReadTable = ::redb::ReadOnlyTable<&'static [u8], &'static [u8]>;
type RawTable<'t> = ::redb::Table<'t, &'static [u8], &'static [u8]>;
type RawEntry<'a> = ::redb::Result<(
    ::redb::AccessGuard<'a, &'static [u8]>,
    ::redb::AccessGuard<'a, &'static [u8]>,
)>;

/// How to open a redb database; see [`StorageBuilder`](crate::StorageBuilder).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenOptions {
    pub(crate) durability: Durability,
    pub(crate) check_integrity: bool,
    pub(crate) cache_size: Option<usize>,
    pub(crate) read_only: bool,
}

/// The redb engine behind a [`Storage`](crate::Storage) opened on a file or
/// in memory.
///
/// Reach it with `storage.backend().redb()`. Everything `storage` stores is
/// in it as plain redb tables of `&[u8]` keys and values.
///
/// Its [`Store`] implementation is the engine under the typed layer. **What
/// is written through [`Store::write`] directly is outside this crate's
/// guarantees**, like what is written through [`database`](Self::database):
/// it bypasses the owner rule, schema checks and index upkeep. The layer
/// notices such writes (it reloads the schema rows it had cached), reads
/// stay validated, and [`Storage::verify`](crate::Storage::verify) reports
/// what was broken. A write started inside another write on the same thread
/// returns [`Error::NestedWrite`] instead of waiting for itself.
pub struct RedbBackend {
    db: Db,
    /// The file, for a database that has one.
    path: Option<std::path::PathBuf>,
    durability: Durability,
    /// The undo log handed to each write transaction in turn, so that its
    /// buffers are reused.
    undo: std::sync::Mutex<Undo>,
    /// The thread inside a write transaction: redb's writer lock is not
    /// reentrant.
    writer: std::sync::Mutex<Option<std::thread::ThreadId>>,
    /// Counts the writes through [`Store::write`] from outside the layer,
    /// twice each (odd while one runs).
    foreign: std::sync::atomic::AtomicU64,
}

/// The redb database: opened for writing, or read-only.
enum Db {
    Writable(::redb::Database),
    ReadOnly(::redb::ReadOnlyDatabase),
    /// Read-only, checked (or recovered) on open: a database over the file
    /// whose writes stay in memory ([`overlay`]).
    Checked(::redb::Database),
}

impl Db {
    fn begin_read(
        &self,
    ) -> ::core::result::Result<::redb::ReadTransaction, ::redb::TransactionError> {
        match self {
            Db::Writable(db) | Db::Checked(db) => db.begin_read(),
            Db::ReadOnly(db) => db.begin_read(),
        }
    }
}

impl core::fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RedbBackend")
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

fn builder(options: &OpenOptions) -> ::redb::Builder {
    let mut builder = ::redb::Database::builder();
    builder.set_check_integrity_on_open(options.check_integrity);
    if let Some(bytes) = options.cache_size {
        builder.set_cache_size(bytes);
    }
    builder
}

fn open_error(path: &Path, source: ::redb::DatabaseError) -> Error {
    let path = path.to_path_buf();
    match source {
        ::redb::DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen { path },
        ::redb::DatabaseError::Storage(::redb::StorageError::Corrupted(_)) => Error::Damaged {
            path,
            source: source.into(),
        },
        ::redb::DatabaseError::Storage(::redb::StorageError::Io(ref io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            Error::NotADatabase {
                path,
                source: source.into(),
            }
        }
        source => Error::Open {
            path,
            source: source.into(),
        },
    }
}

/// Maps a redb error to [`Error`], in the context of `table`.
fn error(table: Option<&str>, source: impl Into<::redb::Error>) -> Error {
    let source = source.into();
    let table = table.map(str::to_owned);
    match source {
        ::redb::Error::TableAlreadyOpen(name, _) => Error::TableInUse { table: name },
        ::redb::Error::ValueTooLarge(len) => Error::TooLarge {
            table: table.unwrap_or_default(),
            len,
        },
        source => Error::Backend {
            table,
            source: source.into(),
        },
    }
}

impl RedbBackend {
    pub(crate) fn open(path: &Path, options: OpenOptions) -> Result<Self> {
        let db = if options.read_only {
            if !path.exists() {
                return Err(Error::Open {
                    path: path.to_path_buf(),
                    source: "no such file (a read-only open creates nothing)".into(),
                });
            }
            Self::open_read_only(path, &options)?
        } else {
            Db::Writable(
                builder(&options)
                    .create(path)
                    .map_err(|e| open_error(path, e))?,
            )
        };
        Ok(Self::with_db(db, Some(path.to_path_buf()), options))
    }

    /// A read-only open. redb's own checks nothing (a damaged file can
    /// panic inside it) and refuses a file a crashed writer left (it needs
    /// recovery); so, with the integrity check on (the default), the file
    /// is opened as a database whose writes stay in memory ([`overlay`]):
    /// checked and recovered as a writable open would, the file left as it
    /// is.
    fn open_read_only(path: &Path, options: &OpenOptions) -> Result<Db> {
        if !options.check_integrity {
            let db = builder(options)
                .open_read_only(path)
                .map_err(|e| open_error(path, e))?;
            return Ok(Db::ReadOnly(db));
        }
        let opened = std::fs::File::open(path).and_then(overlay::Overlay::new);
        let backend = opened.map_err(|e| Error::Open {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        // An empty file would become a database.
        if backend.file_len() == 0 {
            return Err(Error::NotADatabase {
                path: path.to_path_buf(),
                source: "the file is empty".into(),
            });
        }
        let db = builder(options)
            .create_with_backend(backend)
            .map_err(|e| open_error(path, e))?;
        Ok(Db::Checked(db))
    }

    pub(crate) fn in_memory(options: OpenOptions) -> Result<Self> {
        let db = builder(&options)
            .create_with_backend(::redb::backends::InMemoryBackend::new())
            .map_err(|e| open_error(Path::new(":memory:"), e))?;
        Ok(Self::with_db(Db::Writable(db), None, options))
    }

    fn with_db(db: Db, path: Option<std::path::PathBuf>, options: OpenOptions) -> Self {
        Self {
            db,
            path,
            durability: options.durability,
            undo: std::sync::Mutex::new(Undo::default()),
            writer: std::sync::Mutex::new(None),
            foreign: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Counts the writes through [`Store::write`] from outside the layer,
    /// twice each: odd while one runs.
    pub(crate) fn foreign_writes(&self) -> u64 {
        self.foreign.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A write transaction of the typed layer.
    pub(crate) fn write_owned<R>(
        &self,
        mut f: impl FnMut(&RedbWrite<'_>) -> Result<R>,
    ) -> Result<R> {
        let me = std::thread::current().id();
        if *lock(&self.writer) == Some(me) {
            return Err(Error::NestedWrite);
        }
        let Db::Writable(db) = &self.db else {
            return Err(Error::ReadOnly);
        };
        let mut txn = db.begin_write().map_err(|e| error(None, e))?;
        *lock(&self.writer) = Some(me);
        struct Leaving<'a>(
            &'a std::sync::Mutex<Option<std::thread::ThreadId>>,
            std::thread::ThreadId,
        );
        impl Drop for Leaving<'_> {
            fn drop(&mut self) {
                let mut writer = lock(self.0);
                // The next writer may have begun once redb let it.
                if *writer == Some(self.1) {
                    *writer = None;
                }
            }
        }
        let _leaving = Leaving(&self.writer, me);
        let durability = match self.durability {
            Durability::Immediate => ::redb::Durability::Immediate,
            Durability::None => ::redb::Durability::None,
        };
        txn.set_durability(durability).map_err(|e| error(None, e))?;
        let undo = core::mem::take(&mut *lock(&self.undo));
        let (result, mut undo) = {
            let state = Write {
                txn: &txn,
                slots: RefCell::new(Vec::new()),
                undo: RefCell::new(undo),
            };
            let result = f(&RedbWrite { state: &state });
            state.close();
            (result, state.undo.into_inner())
        };
        undo.reset();
        *lock(&self.undo) = undo;
        match result {
            Ok(value) => {
                txn.commit().map_err(|e| error(None, e))?;
                Ok(value)
            }
            Err(e) => {
                // The rollback's own failure is secondary to the closure's error.
                let _ = txn.abort();
                Err(e)
            }
        }
    }

    /// The redb database itself, for what this crate does not wrap
    /// (savepoints, redb's own statistics).
    ///
    /// **What is written through it is outside this crate's guarantees**, as
    /// if another program had edited the file: it bypasses key encoding,
    /// schema checks and index upkeep. Reads stay validated, index answers
    /// are checked against their records, and
    /// [`Storage::verify`](crate::Storage::verify) reports what was broken.
    ///
    /// `None` for a storage opened read-only.
    pub fn database(&self) -> Option<&::redb::Database> {
        match &self.db {
            Db::Writable(db) => Some(db),
            Db::ReadOnly(_) | Db::Checked(_) => None,
        }
    }

    /// The file, for a database that has one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Compacts the file; see [`Storage::compact`](crate::Storage::compact).
    pub(crate) fn compact(&mut self) -> Result<bool> {
        let Db::Writable(db) = &mut self.db else {
            return Err(Error::ReadOnly);
        };
        db.compact().map_err(|e| match e {
            ::redb::CompactionError::TransactionInProgress
            | ::redb::CompactionError::EphemeralSavepointExists
            | ::redb::CompactionError::PersistentSavepointExists => Error::Busy {
                operation: "compact",
                reason: e.to_string(),
            },
            other => error(None, other),
        })
    }

    /// The database's allocation figures: (allocated pages, page size,
    /// fragmented bytes), from a write transaction that commits nothing
    /// (in memory, for a checked read-only open). `None` when redb cannot
    /// tell them now: a read-only open without the integrity check, or
    /// while a write transaction runs (they are not waited for).
    pub(crate) fn allocation(&self) -> Result<Option<(u64, u64, u64)>> {
        let (Db::Writable(db) | Db::Checked(db)) = &self.db else {
            return Ok(None);
        };
        let txn = match db.try_begin_write() {
            Ok(txn) => txn,
            Err(::redb::TransactionError::WouldBlock) => return Ok(None),
            Err(e) => return Err(error(None, e)),
        };
        let stats = txn.stats().map_err(|e| error(None, e));
        let _ = txn.abort();
        let stats = stats?;
        Ok(Some((
            stats.allocated_pages(),
            stats.page_size() as u64,
            stats.fragmented_bytes(),
        )))
    }

    /// The durability write transactions commit with.
    pub fn durability(&self) -> Durability {
        self.durability
    }
}

impl Store for RedbBackend {
    type Read<'t> = RedbRead;
    type Write<'t> = RedbWrite<'t>;

    fn read<R>(&self, f: impl FnOnce(&RedbRead) -> Result<R>) -> Result<R> {
        let txn = self.db.begin_read().map_err(|e| error(None, e))?;
        let read = RedbRead {
            txn,
            slots: RefCell::new(Vec::new()),
        };
        let result = f(&read);
        read.close();
        result
    }

    fn write<R>(&self, f: impl FnMut(&RedbWrite<'_>) -> Result<R>) -> Result<R> {
        use std::sync::atomic::Ordering;
        struct Counted<'a>(&'a std::sync::atomic::AtomicU64);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.foreign.fetch_add(1, Ordering::AcqRel);
        let _counted = Counted(&self.foreign);
        self.write_owned(f)
    }

    fn is_exclusive(&self) -> bool {
        // redb locks the file: no other process commits while it is open.
        true
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The undo log is emptied before it is put back: a panic cannot leave it inconsistent.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A table kept by its transaction; handles share it.
struct Slot<T> {
    name: Rc<str>,
    table: RefCell<Option<T>>,
}

fn in_use(name: &str) -> Error {
    Error::TableInUse {
        table: name.to_owned(),
    }
}

fn closed(name: &str) -> Error {
    Error::Backend {
        table: Some(name.to_owned()),
        source: "table used after its transaction ended".into(),
    }
}

/// A redb read transaction: a snapshot.
pub struct RedbRead {
    txn: ::redb::ReadTransaction,
    slots: RefCell<Vec<Rc<Slot<RawReadTable>>>>,
}

impl RedbRead {
    /// Drops every table the transaction opened.
    fn close(&self) {
        for slot in self.slots.borrow().iter() {
            if let Ok(mut table) = slot.table.try_borrow_mut() {
                table.take();
            }
        }
    }
}

impl ReadTxn for RedbRead {
    type Table<'t> = RedbReadTable;

    fn table(&self, name: &str) -> Result<Option<RedbReadTable>> {
        if let Some(slot) = self.slots.borrow().iter().find(|s| &*s.name == name) {
            return Ok(Some(RedbReadTable(slot.clone())));
        }
        let table = match self.txn.open_table(Definition::new(name)) {
            Ok(table) => table,
            Err(::redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(error(Some(name), e)),
        };
        let slot = Rc::new(Slot {
            name: name.into(),
            table: RefCell::new(Some(table)),
        });
        self.slots.borrow_mut().push(slot.clone());
        Ok(Some(RedbReadTable(slot)))
    }

    fn tables(&self) -> Result<Vec<String>> {
        let tables = self.txn.list_tables().map_err(|e| error(None, e))?;
        let mut names: Vec<String> = tables.map(|t| t.name().to_owned()).collect();
        names.sort();
        Ok(names)
    }
}

/// A table of a redb read transaction.
#[derive(Clone)]
pub struct RedbReadTable(Rc<Slot<RawReadTable>>);

impl RedbReadTable {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&RawReadTable) -> Result<R>) -> Result<R> {
        let slot = &self.0;
        let table = slot.table.try_borrow().map_err(|_| in_use(&slot.name))?;
        f(table.as_ref().ok_or_else(|| closed(&slot.name))?)
    }
}

impl ReadTable for RedbReadTable {
    fn name(&self) -> &str {
        &self.0.name
    }

    #[inline]
    fn get<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        self.with(|table| get(table, &self.0.name, key, f))
    }

    #[inline]
    fn scan(
        &self,
        range: KeyRange<'_>,
        direction: Direction,
        f: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        self.with(|table| scan(table, &self.0.name, range, direction, f))
    }

    fn len(&self) -> Result<u64> {
        self.with(|table| table.len().map_err(|e| error(Some(&self.0.name), e)))
    }
}

#[inline]
fn get<R>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    name: &str,
    key: &[u8],
    f: impl FnOnce(&[u8]) -> R,
) -> Result<Option<R>> {
    let value = table.get(key).map_err(|e| error(Some(name), e))?;
    Ok(value.map(|value| f(value.value())))
}

#[inline]
fn scan(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    name: &str,
    range: KeyRange<'_>,
    direction: Direction,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
) -> Result<()> {
    // redb panics on a range whose start lies after its end; such a range is empty.
    if is_empty_range(range) {
        return Ok(());
    }
    let entries = table
        .range::<&[u8]>(range)
        .map_err(|e| error(Some(name), e))?;
    let mut visit = |entry: RawEntry<'_>| match entry {
        Ok((key, value)) => f(key.value(), value.value()),
        Err(e) => Err(error(Some(name), e)),
    };
    match direction {
        Direction::Forward => {
            for entry in entries {
                if visit(entry)?.is_break() {
                    break;
                }
            }
        }
        Direction::Backward => {
            for entry in entries.rev() {
                if visit(entry)?.is_break() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Whether no key can lie in `range`.
fn is_empty_range((start, end): KeyRange<'_>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e))
        | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
        _ => false,
    }
}

/// A redb write transaction: a handle on its state, which lives in
/// [`Store::write`]'s frame (behind a trait object, so that the handle is
/// covariant in its lifetime).
#[derive(Clone, Copy)]
pub struct RedbWrite<'a> {
    state: &'a (dyn WriteState + 'a),
}

/// The tables of a write transaction, by slot number; object-safe.
trait WriteState {
    fn open(&self, name: &str) -> Result<(usize, Rc<str>)>;
    fn delete_table(&self, name: &str) -> Result<bool>;
    fn rename_table(&self, from: &str, to: &str) -> Result<()>;
    fn tables(&self) -> Result<Vec<String>>;
    fn savepoint(&self) -> Savepoint;
    fn rollback_to(&self, savepoint: Savepoint) -> Result<()>;
    fn release(&self, savepoint: Savepoint);
    fn get(&self, slot: usize, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<bool>;
    fn scan(
        &self,
        slot: usize,
        range: KeyRange<'_>,
        direction: Direction,
        f: &mut Visit<'_>,
    ) -> Result<()>;
    fn len(&self, slot: usize) -> Result<u64>;
    fn replace(
        &self,
        slot: usize,
        key: &[u8],
        value: &[u8],
        f: &mut dyn FnMut(Option<&[u8]>),
    ) -> Result<()>;
    fn remove(&self, slot: usize, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<()>;
}

/// The state of a redb write transaction.
struct Write<'t> {
    txn: &'t ::redb::WriteTransaction,
    slots: RefCell<Vec<Rc<Slot<RawTable<'t>>>>>,
    undo: RefCell<Undo>,
}

/// What a write transaction changed since its oldest open savepoint.
#[derive(Default)]
struct Undo {
    /// Savepoints not yet ended.
    open: usize,
    /// One entry per change, oldest first.
    changes: Vec<Change>,
    /// The bytes of the changes' keys and old values, one after another.
    bytes: Vec<u8>,
}

/// One undoable change: `key` of the table in `slot` held `old` before.
struct Change {
    slot: usize,
    key: core::ops::Range<usize>,
    old: Option<core::ops::Range<usize>>,
}

impl Undo {
    fn push(&mut self, slot: usize, key: &[u8], old: Option<&[u8]>) {
        let mut keep = |bytes: &[u8]| {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(bytes);
            start..self.bytes.len()
        };
        let key = keep(key);
        let old = old.map(keep);
        self.changes.push(Change { slot, key, old });
    }

    /// Empties the log for the next transaction, keeping modest buffers.
    fn reset(&mut self) {
        const KEPT: usize = 1 << 20;
        self.open = 0;
        self.changes.clear();
        self.bytes.clear();
        if self.bytes.capacity() > KEPT {
            self.bytes = Vec::new();
        }
        if self.changes.capacity() > KEPT / 16 {
            self.changes = Vec::new();
        }
    }

    /// Ends a savepoint; the log is kept while an older one is open.
    fn end(&mut self) {
        self.open = self.open.saturating_sub(1);
        if self.open == 0 {
            self.changes.clear();
            self.bytes.clear();
        }
    }
}

impl<'t> Write<'t> {
    /// Drops every table the transaction opened, so that it can commit.
    fn close(&self) {
        for slot in self.slots.borrow().iter() {
            if let Ok(mut table) = slot.table.try_borrow_mut() {
                table.take();
            }
        }
    }

    fn open_raw(&self, name: &str) -> Result<RawTable<'t>> {
        self.txn
            .open_table(Definition::new(name))
            .map_err(|e| error(Some(name), e))
    }

    /// Runs `f` on the table in `slot`, opened again if it was deleted.
    fn with_table<R>(
        &self,
        slot: usize,
        f: impl FnOnce(&str, &mut RawTable<'t>) -> Result<R>,
    ) -> Result<R> {
        let slot = self.slot(slot)?;
        let mut table = slot
            .table
            .try_borrow_mut()
            .map_err(|_| in_use(&slot.name))?;
        if table.is_none() {
            *table = Some(self.open_raw(&slot.name)?);
        }
        match table.as_mut() {
            Some(table) => f(&slot.name, table),
            None => Err(closed(&slot.name)),
        }
    }

    /// Runs `f` on the table in `slot` for reading: several reads may run at
    /// once (a read inside another's callback).
    fn with_read<R>(
        &self,
        slot: usize,
        f: impl FnOnce(&str, &RawTable<'t>) -> Result<R>,
    ) -> Result<R> {
        let entry = self.slot(slot)?;
        {
            let table = entry.table.try_borrow().map_err(|_| in_use(&entry.name))?;
            if let Some(table) = table.as_ref() {
                return f(&entry.name, table);
            }
        }
        self.with_table(slot, |name, table| f(name, table))
    }

    fn slot(&self, slot: usize) -> Result<Rc<Slot<RawTable<'t>>>> {
        self.slots
            .borrow()
            .get(slot)
            .cloned()
            .ok_or_else(|| closed("?"))
    }

    /// A savepoint cannot undo deleting or renaming a table.
    fn refuse_under_savepoint(&self, name: &str) -> Result<()> {
        super::refuse_under_savepoint(self.undo.borrow().open, name)
    }

    /// Closes the kept table `name`, if it is kept: redb deletes and renames
    /// only tables that are not open. It is opened again on next use.
    fn close_slot(&self, name: &str) -> Result<()> {
        let kept = self
            .slots
            .borrow()
            .iter()
            .find(|s| &*s.name == name)
            .cloned();
        if let Some(slot) = kept {
            let mut table = slot.table.try_borrow_mut().map_err(|_| in_use(name))?;
            table.take();
        }
        Ok(())
    }

    fn record(&self, slot: usize, key: &[u8], old: Option<&[u8]>) {
        let mut undo = self.undo.borrow_mut();
        if undo.open > 0 {
            undo.push(slot, key, old);
        }
    }
}

impl WriteState for Write<'_> {
    fn open(&self, name: &str) -> Result<(usize, Rc<str>)> {
        let slots = self.slots.borrow();
        if let Some(index) = slots.iter().position(|s| &*s.name == name) {
            return Ok((index, slots[index].name.clone()));
        }
        drop(slots);
        let table = self.open_raw(name)?;
        let name: Rc<str> = name.into();
        let mut slots = self.slots.borrow_mut();
        slots.push(Rc::new(Slot {
            name: name.clone(),
            table: RefCell::new(Some(table)),
        }));
        Ok((slots.len() - 1, name))
    }

    fn delete_table(&self, name: &str) -> Result<bool> {
        self.refuse_under_savepoint(name)?;
        self.close_slot(name)?;
        self.txn
            .delete_table(Definition::new(name))
            .map_err(|e| error(Some(name), e))
    }

    fn rename_table(&self, from: &str, to: &str) -> Result<()> {
        self.refuse_under_savepoint(from)?;
        self.close_slot(from)?;
        self.close_slot(to)?;
        self.txn
            .rename_table(Definition::new(from), Definition::new(to))
            .map_err(|e| error(Some(from), e))
    }

    fn tables(&self) -> Result<Vec<String>> {
        let tables = self.txn.list_tables().map_err(|e| error(None, e))?;
        let mut names: Vec<String> = tables.map(|t| t.name().to_owned()).collect();
        names.sort();
        Ok(names)
    }

    fn savepoint(&self) -> Savepoint {
        let mut undo = self.undo.borrow_mut();
        undo.open += 1;
        Savepoint(undo.changes.len())
    }

    fn rollback_to(&self, savepoint: Savepoint) -> Result<()> {
        let (changes, bytes) = {
            let mut undo = self.undo.borrow_mut();
            let at = savepoint.0.min(undo.changes.len());
            let changes = undo.changes.split_off(at);
            let cut = changes.first().map_or(undo.bytes.len(), |c| c.key.start);
            let bytes = undo.bytes.split_off(cut);
            (changes, (cut, bytes))
        };
        let (base, bytes) = bytes;
        let at = |range: &core::ops::Range<usize>| &bytes[range.start - base..range.end - base];
        let mut result = Ok(());
        for change in changes.iter().rev() {
            let key = at(&change.key);
            let undone = self.with_table(change.slot, |name, table| {
                let done = match &change.old {
                    Some(old) => table.insert(key, at(old)).map(drop),
                    None => table.remove(key).map(drop),
                };
                done.map_err(|e| error(Some(name), e))
            });
            if let Err(e) = undone {
                result = Err(e);
                break;
            }
        }
        self.undo.borrow_mut().end();
        result
    }

    fn release(&self, _savepoint: Savepoint) {
        self.undo.borrow_mut().end();
    }

    fn get(&self, slot: usize, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<bool> {
        self.with_read(slot, |name, table| {
            let value = table.get(key).map_err(|e| error(Some(name), e))?;
            Ok(value.map(|value| f(value.value())).is_some())
        })
    }

    fn scan(
        &self,
        slot: usize,
        range: KeyRange<'_>,
        direction: Direction,
        f: &mut Visit<'_>,
    ) -> Result<()> {
        self.with_read(slot, |name, table| scan(table, name, range, direction, f))
    }

    fn len(&self, slot: usize) -> Result<u64> {
        self.with_read(slot, |name, table| {
            table.len().map_err(|e| error(Some(name), e))
        })
    }

    fn replace(
        &self,
        slot: usize,
        key: &[u8],
        value: &[u8],
        f: &mut dyn FnMut(Option<&[u8]>),
    ) -> Result<()> {
        self.with_table(slot, |name, table| {
            let old = table.insert(key, value).map_err(|e| error(Some(name), e))?;
            let old = old.as_ref().map(|old| old.value());
            self.record(slot, key, old);
            f(old);
            Ok(())
        })
    }

    fn remove(&self, slot: usize, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<()> {
        self.with_table(slot, |name, table| {
            let old = table.remove(key).map_err(|e| error(Some(name), e))?;
            let old = old.as_ref().map(|old| old.value());
            if old.is_some() {
                self.record(slot, key, old);
            }
            f(old);
            Ok(())
        })
    }
}

impl<'a> WriteTxn for RedbWrite<'a> {
    type Table<'b>
        = RedbTable<'a>
    where
        Self: 'b;

    fn table(&self, name: &str) -> Result<RedbTable<'a>> {
        let (slot, name) = self.state.open(name)?;
        Ok(RedbTable {
            state: self.state,
            slot,
            name,
        })
    }

    fn delete_table(&self, name: &str) -> Result<bool> {
        self.state.delete_table(name)
    }

    fn rename_table(&self, from: &str, to: &str) -> Result<()> {
        self.state.rename_table(from, to)
    }

    fn tables(&self) -> Result<Vec<String>> {
        self.state.tables()
    }

    fn savepoint(&self) -> Savepoint {
        self.state.savepoint()
    }

    fn rollback_to(&self, savepoint: Savepoint) -> Result<()> {
        self.state.rollback_to(savepoint)
    }

    fn release(&self, savepoint: Savepoint) {
        self.state.release(savepoint);
    }
}

/// A table of a redb write transaction.
#[derive(Clone)]
pub struct RedbTable<'a> {
    state: &'a (dyn WriteState + 'a),
    slot: usize,
    name: Rc<str>,
}

impl ReadTable for RedbTable<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    fn get<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let mut f = Some(f);
        let mut out = None;
        self.state.get(self.slot, key, &mut |bytes| {
            if let Some(f) = f.take() {
                out = Some(f(bytes));
            }
        })?;
        Ok(out)
    }

    #[inline]
    fn scan(
        &self,
        range: KeyRange<'_>,
        direction: Direction,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        self.state.scan(self.slot, range, direction, &mut f)
    }

    fn len(&self) -> Result<u64> {
        self.state.len(self.slot)
    }
}

impl WriteTable for RedbTable<'_> {
    #[inline]
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.state.replace(self.slot, key, value, &mut |_| ())
    }

    #[inline]
    fn replace<R>(
        &self,
        key: &[u8],
        value: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        let mut f = Some(f);
        let mut out = None;
        self.state.replace(self.slot, key, value, &mut |old| {
            if let Some(f) = f.take() {
                out = Some(f(old));
            }
        })?;
        out.ok_or_else(|| closed(&self.name))
    }

    #[inline]
    fn remove<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
        let mut f = Some(f);
        let mut out = None;
        self.state.remove(self.slot, key, &mut |old| {
            if let Some(f) = f.take() {
                out = Some(f(old));
            }
        })?;
        out.ok_or_else(|| closed(&self.name))
    }
}
