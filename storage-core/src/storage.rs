//! [`Storage`], the handle on one database, and its [`StorageBuilder`].

use core::ops::{Bound, ControlFlow};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, ThreadId};

use crate::backend::{
    Direction, Durability, Engine, ReadTable as _, RedbBackend, redb::OpenOptions,
};
use crate::error::{Error, Result};
use crate::feed::{Arena, Changes, Hub, Subscription};
use crate::index::RecordInfo;
use crate::key::IntoKeyBytes;
use crate::record::{KeepsChanges, StoredRecord};
use crate::schema::SchemaCache;
use crate::table::WriteBatch;
use crate::table::{Table, TableName};
use crate::txn::{Outcome, ReadTransaction, WriteTransaction};
use crate::value::StoredValue;

/// A database of typed tables: cheap to clone, shareable between threads.
///
/// Readers run concurrently with each other and with the one writer: every
/// [`read`](Self::read) sees a consistent snapshot, and every
/// [`write`](Self::write) commits all of its changes or none.
///
/// ```
/// # fn main() -> storage::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("app.redb");
/// let storage = storage::Storage::new(&path)?;
/// storage.put("users", "alice", &String::from("Alice Liddell"))?;
/// let name = storage.get::<String, _>("users", "alice", |name| name.to_uppercase())?;
/// assert_eq!(name.as_deref(), Some("ALICE LIDDELL"));
/// assert!(storage.delete("users", "alice")?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Storage {
    pub(crate) shared: Arc<Shared>,
}

/// What every clone of a [`Storage`] shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    /// Schema rows seen, for an engine this process alone writes to.
    pub(crate) schemas: SchemaCache,
    writers: Writers,
    /// Serialization buffer handed to each write transaction in turn.
    scratch: Mutex<Vec<u8>>,
    /// The change feed's subscriptions.
    pub(crate) hub: Arc<Hub>,
    /// A change buffer handed to each write transaction in turn, when no
    /// subscriber kept the last one.
    arena: Mutex<Arena>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Subscriptions end once they hand out what they hold.
        self.hub.close();
    }
}

/// One write transaction at a time in this process, and none nested.
#[derive(Debug, Default)]
struct Writers {
    /// The thread inside a write transaction.
    owner: Mutex<Option<ThreadId>>,
    /// Held for the length of a write transaction.
    turn: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct WriterGuard<'a> {
    writers: &'a Writers,
    _turn: MutexGuard<'a, ()>,
}

impl Writers {
    fn enter(&self) -> Result<WriterGuard<'_>> {
        let me = thread::current().id();
        if *lock(&self.owner) == Some(me) {
            return Err(Error::NestedWrite);
        }
        let turn = lock(&self.turn);
        *lock(&self.owner) = Some(me);
        Ok(WriterGuard {
            writers: self,
            _turn: turn,
        })
    }
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        *lock(&self.writers.owner) = None;
    }
}

impl Shared {
    /// The cache generation, if the engine is one this process alone writes.
    fn cache_generation(&self) -> Option<u64> {
        if !self.engine.is_exclusive() {
            return None;
        }
        let foreign = self.engine.foreign_writes();
        if !foreign.is_multiple_of(2) {
            return None;
        }
        self.schemas.sync(foreign);
        Some(self.schemas.generation())
    }

    pub(crate) fn take_scratch(&self) -> Vec<u8> {
        core::mem::take(&mut *lock(&self.scratch))
    }

    pub(crate) fn put_scratch(&self, scratch: Vec<u8>) {
        *lock(&self.scratch) = scratch;
    }

    /// The change buffer of the last transaction no subscriber holds, emptied.
    pub(crate) fn take_arena(&self) -> Arena {
        core::mem::take(&mut *lock(&self.arena))
    }
}

/// Options for opening a [`Storage`]; from [`Storage::builder`].
///
/// ```
/// # fn main() -> storage::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("app.redb");
/// use storage::{Durability, Storage};
///
/// let storage = Storage::builder()
///     .durability(Durability::None)
///     .check_integrity(false)
///     .open(&path)?;
/// # drop(storage);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct StorageBuilder {
    options: OpenOptions,
}

impl StorageBuilder {
    /// When commits reach the disk; [`Durability::Immediate`] by default.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.options.durability = durability;
        self
    }

    /// Verify the checksum of every page when the file is opened: on by default.
    ///
    /// With the check, a file damaged or altered behind redb's back fails to
    /// open with an error. Without it, redb trusts the file (it verifies
    /// checksums only when repairing after a crash), and damage surfaces later:
    /// as [`Error::Corrupt`] when a value fails validation, but, when redb's
    /// own page structure is hit, as a panic inside redb (64 of 1,000 files
    /// with random flipped bytes did that in `tests/corrupt_file.rs`, none
    /// with the check on).
    ///
    /// The check reads the whole file and commits once, so opening takes time
    /// proportional to the file's size: about 0.2 s for a 550 MB file in the
    /// page cache on the benchmark machine. Turn it off for large files you
    /// trust and open often.
    pub fn check_integrity(mut self, enabled: bool) -> Self {
        self.options.check_integrity = enabled;
        self
    }

    /// Bytes of memory redb may use to cache pages (redb's default: 1 GiB).
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.options.cache_size = Some(bytes);
        self
    }

    /// Opens the database file at `path`, creating it if it does not exist.
    ///
    /// Errors: [`Error::AlreadyOpen`] if another `Storage` holds the file,
    /// [`Error::NotADatabase`] if it is some other kind of file,
    /// [`Error::Open`] otherwise.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Storage> {
        let backend = RedbBackend::open(path.as_ref(), self.options)?;
        Ok(Storage::with_engine(Engine::Redb(backend)))
    }

    /// Opens the file without writing to it: every write gives
    /// [`Error::ReadOnly`], the file must exist, and a file another program
    /// has open for writing gives [`Error::AlreadyOpen`]. For looking into
    /// a database, as `storage-inspect` does.
    pub fn read_only(mut self) -> Self {
        self.options.read_only = true;
        self
    }

    /// A database held in memory, gone when the last clone is dropped.
    pub fn in_memory(self) -> Result<Storage> {
        let backend = RedbBackend::in_memory(self.options)?;
        Ok(Storage::with_engine(Engine::Redb(backend)))
    }

    /// A storage on an etcd cluster instead of a file (cargo feature
    /// `etcd`): the same records, indexes and schema checks, replicated by
    /// the cluster and shared by every process that opens it.
    ///
    /// `endpoints` are the cluster's client URLs (`http://host:2379`, or
    /// `host:2379`). See [`EtcdBuilder`] for the namespace, the timeout and
    /// how often a conflicting transaction runs again.
    #[cfg(feature = "etcd")]
    pub fn etcd<S: Into<String>>(self, endpoints: impl IntoIterator<Item = S>) -> EtcdBuilder {
        EtcdBuilder {
            options: crate::backend::etcd::EtcdOptions {
                endpoints: endpoints.into_iter().map(Into::into).collect(),
                namespace: "storage".to_owned(),
                timeout: std::time::Duration::from_secs(5),
                attempts: 10,
            },
        }
    }
}

/// Options for a [`Storage`] on etcd; from [`StorageBuilder::etcd`].
///
/// ```no_run
/// # fn main() -> storage::Result<()> {
/// let storage = storage::Storage::builder()
///     .etcd(["http://127.0.0.1:2379"])
///     .namespace("app")
///     .timeout(std::time::Duration::from_secs(2))
///     .open()?;
/// storage.put("greetings", "hello", &String::from("world"))?;
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "etcd")]
#[derive(Debug, Clone)]
#[must_use]
pub struct EtcdBuilder {
    options: crate::backend::etcd::EtcdOptions,
}

#[cfg(feature = "etcd")]
impl EtcdBuilder {
    /// The namespace every key of this storage lives under (`"storage"` by
    /// default): storages with other namespaces on one cluster never see
    /// each other's tables.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.options.namespace = namespace.into();
        self
    }

    /// How long a request may take, retries on other endpoints included,
    /// before [`Error::Unavailable`]: 5 s by default.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// How many times a write transaction runs when concurrent commits keep
    /// changing what it read, before [`Error::Conflict`]: 10 by default.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.options.attempts = attempts;
        self
    }

    /// Connects, and checks that the cluster answers within the timeout.
    pub fn open(self) -> Result<Storage> {
        let backend = crate::backend::EtcdBackend::open(&self.options)?;
        Ok(Storage::with_engine(Engine::Etcd(backend)))
    }
}

impl Storage {
    /// Opens the database file at `path` with default options, creating it if
    /// it does not exist. See [`StorageBuilder::open`].
    pub fn new(path: impl AsRef<Path>) -> Result<Self> {
        Self::builder().open(path)
    }

    /// A database held in memory, for tests and caches.
    pub fn in_memory() -> Result<Self> {
        Self::builder().in_memory()
    }

    /// Options for opening a database.
    pub fn builder() -> StorageBuilder {
        StorageBuilder {
            options: OpenOptions {
                durability: Durability::Immediate,
                check_integrity: true,
                cache_size: None,
                read_only: false,
            },
        }
    }

    fn with_engine(engine: Engine) -> Self {
        Self {
            shared: Arc::new(Shared {
                engine,
                schemas: SchemaCache::default(),
                writers: Writers::default(),
                scratch: Mutex::new(Vec::new()),
                hub: Arc::new(Hub::default()),
                arena: Mutex::new(Arena::default()),
            }),
        }
    }

    /// Rebuilds every secondary index of the record type `R` from its
    /// records, in one transaction. Indexes are built by themselves when the
    /// record type's indexes change; this is for repairs.
    pub fn rebuild_indexes<R: StoredRecord>(&self) -> Result<()> {
        self.records::<R>().rebuild_indexes()
    }

    /// Subscribes to the committed changes of the record type `R`: every
    /// change of its table, or, narrowed with
    /// [`keys`](Subscription::keys), [`key`](Subscription::key),
    /// [`prefix`](Subscription::prefix) or an index (the generated
    /// `{Record}Watch` trait), some of them. Changes arrive after their
    /// commit, in commit order, one [`Notice::Commit`](crate::Notice::Commit)
    /// per transaction with its changes in write order; never for a
    /// transaction that failed. A subscriber that falls behind by more than
    /// its [`capacity`](Subscription::capacity) gets
    /// [`Notice::Lagged`](crate::Notice::Lagged) instead of what it missed;
    /// writers never wait for it.
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// use storage::{ChangeKind, Notice};
    ///
    /// #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    /// #[stored(table = "users")]
    /// struct User {
    ///     #[key]
    ///     id: u64,
    ///     name: String,
    /// }
    ///
    /// let storage = storage::Storage::in_memory()?;
    /// let mut changes = storage.watch::<User>();
    /// storage.records::<User>().insert(&User { id: 1, name: "Ann".into() })?;
    /// storage.records::<User>().delete(1)?;
    /// let Some(Ok(Notice::Commit(insert))) = changes.next() else { panic!() };
    /// let change = &insert.changes()[0];
    /// assert_eq!((change.kind(), *change.key()), (ChangeKind::Insert, 1));
    /// assert_eq!(change.after().unwrap().get().name(), "Ann");
    /// let Some(Ok(Notice::Commit(delete))) = changes.next() else { panic!() };
    /// assert_eq!(delete.changes()[0].kind(), ChangeKind::Delete);
    /// # Ok(())
    /// # }
    /// ```
    pub fn watch<R: StoredRecord>(&self) -> Subscription<R> {
        Subscription::new(self.hub())
    }

    /// The durable change log of the record type `R`, which keeps one
    /// (`#[stored(changes)]`): every committed change, with its commit's
    /// sequence number, readable after a restart.
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    /// #[stored(table = "orders", changes)]
    /// struct Order {
    ///     #[key]
    ///     id: u64,
    ///     total: u32,
    /// }
    ///
    /// let storage = storage::Storage::in_memory()?;
    /// storage.records::<Order>().insert(&Order { id: 1, total: 250 })?;
    /// storage.records::<Order>().insert(&Order { id: 1, total: 300 })?;
    /// let log = storage.changes::<Order>();
    /// let commits = log.since(0, 100)?;
    /// assert_eq!(commits.len(), 2);
    /// assert_eq!(commits[1].seq(), Some(2));
    /// let update = &commits[1].changes()[0];
    /// assert_eq!(update.before().unwrap().get().total(), 250);
    /// // A consumer that handled commit 1 resumes after it.
    /// assert_eq!(log.since(1, 100)?.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn changes<R: KeepsChanges>(&self) -> Changes<R> {
        Changes::new(self.clone())
    }

    pub(crate) fn hub(&self) -> Arc<Hub> {
        self.shared.hub.clone()
    }

    /// The byte-level store underneath: the seed design's raw operations,
    /// and the engine itself.
    pub fn backend(&self) -> Backend<'_> {
        Backend { storage: self }
    }

    /// Runs `f` in a read transaction: a consistent snapshot of every table.
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// let storage = storage::Storage::in_memory()?;
    /// storage.write(|tx| {
    ///     tx.table::<u64, String>("a").put(1u64, &"one".to_string())?;
    ///     tx.table::<u64, String>("b").put(1u64, &"uno".to_string())?;
    ///     Ok(())
    /// })?;
    /// let both = storage.read(|tx| {
    ///     let a = tx.table::<u64, String>("a").get(1u64, |s| s.to_string())?;
    ///     let b = tx.table::<u64, String>("b").get(1u64, |s| s.to_string())?;
    ///     Ok((a, b))
    /// })?;
    /// assert_eq!(both, (Some("one".into()), Some("uno".into())));
    /// # Ok(())
    /// # }
    /// ```
    pub fn read<R>(&self, f: impl FnOnce(&ReadTransaction<'_>) -> Result<R>) -> Result<R> {
        let shared = &*self.shared;
        let before = shared.cache_generation();
        shared.engine.read(|txn| {
            // The cache describes this snapshot only if no schema change was
            // committed or under way while the snapshot was taken.
            let generation = before.filter(|g| g % 2 == 0 && shared.cache_generation() == Some(*g));
            let tx = ReadTransaction::new(shared, txn, generation);
            f(&tx)
        })
    }

    /// Runs `f` in a write transaction and commits what it wrote if it returns
    /// `Ok`.
    ///
    /// If `f` returns `Err`, or panics, nothing it wrote is kept: the database
    /// is exactly as before, and the error is returned. **A panic in `f` is
    /// caught and returned as [`Error::Panicked`]** (with the panic's message
    /// and the tables the transaction had opened), not resumed: state `f`
    /// captured may be half-updated, so treat that error as a bug report.
    ///
    /// `f` is `FnMut` because a distributed engine runs it again when a
    /// concurrent commit changed what it read (see [`Error::Conflict`]);
    /// with the embedded engine it runs exactly once. Keep effects outside
    /// the database (sending messages, counting) out of `f`, or make them
    /// idempotent.
    ///
    /// One write transaction runs at a time; others wait. Starting a write
    /// inside `f` on the same storage and thread is refused with
    /// [`Error::NestedWrite`] instead of deadlocking; `f` waiting for another
    /// thread that writes to the same storage does deadlock.
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// let storage = storage::Storage::in_memory()?;
    /// let accounts = storage.table::<&str, i64>("accounts");
    /// accounts.put_batch([("alice", 100), ("bob", 0)])?;
    /// storage.write(|tx| {
    ///     let mut accounts = tx.table::<&str, i64>("accounts");
    ///     let alice = accounts.get("alice", |b| b.to_native())?.unwrap_or(0);
    ///     accounts.put("alice", &(alice - 30))?;
    ///     accounts.put("bob", &30)?;
    ///     Ok(())
    /// })?;
    /// assert_eq!(accounts.get("bob", |b| b.to_native())?, Some(30));
    /// # Ok(())
    /// # }
    /// ```
    pub fn write<R>(&self, mut f: impl FnMut(&WriteTransaction<'_>) -> Result<R>) -> Result<R> {
        let shared = &*self.shared;
        let _writer = shared.writers.enter()?;
        let generation = shared.cache_generation();
        let mut outcome: Option<Outcome> = None;
        let result = shared.engine.write(|txn| {
            let tx = WriteTransaction::new(shared, txn, generation);
            // The transaction is rolled back on every path but `Ok`; nothing
            // the closure could leave half-done survives the unwind.
            let value = match catch_unwind(AssertUnwindSafe(|| f(&tx))) {
                Ok(Ok(value)) => value,
                Ok(Err(error)) => return Err(error),
                Err(payload) => return Err(tx.panicked(payload.as_ref())),
            };
            let done = tx.finish()?;
            if generation.is_some() && !done.rows.is_empty() {
                shared.schemas.begin_change();
            }
            outcome = Some(done);
            Ok(value)
        });
        if let Some(done) = outcome {
            if generation.is_some() && !done.rows.is_empty() {
                shared.schemas.end_change(done.rows, result.is_ok());
            }
            // Still this process's only writer: subscribers see commits in order.
            if result.is_ok() {
                shared.hub.publish(&done.changes);
                shared.hub.lagged(&done.uncollected);
            } else {
                // The commit was tried and failed: it may still have been
                // applied (an etcd answer that never came), so subscribers
                // are told they may have missed it.
                let missed: Vec<(&str, u64)> = done
                    .changes
                    .iter()
                    .map(|t| (&*t.table, t.changes.len() as u64))
                    .collect();
                shared.hub.lagged(&missed);
            }
            let arena = done.changes.first().map(|t| t.arena.clone());
            drop(done.changes);
            if let Some(arena) = arena.and_then(|a| Arc::try_unwrap(a).ok()) {
                *lock(&shared.arena) = arena.emptied();
            }
        }
        result
    }

    /// Stores `value` under `key` in `table`, in a transaction of its own.
    pub fn put<V: StoredValue>(
        &self,
        table: &str,
        key: impl IntoKeyBytes,
        value: &V,
    ) -> Result<()> {
        self.write_batch(table, |batch| batch.put(&key, value))
    }

    /// Runs `f` on the archived value under `key` in `table`; see
    /// [`ReadTable::get`](crate::ReadTable::get). Name the value type:
    /// `storage.get::<User, _>("users", 42u64, |u| ..)`.
    pub fn get<V: StoredValue, R>(
        &self,
        table: &str,
        key: impl IntoKeyBytes,
        f: impl FnOnce(&V::Archived) -> R,
    ) -> Result<Option<R>> {
        let key = key.into_key_bytes();
        self.read(|tx| tx.table::<&[u8], V>(table).get(key.as_ref(), f))
    }

    /// Removes `key` from `table`; returns whether it was there.
    pub fn delete(&self, table: &str, key: impl IntoKeyBytes) -> Result<bool> {
        self.write_batch(table, |batch| batch.delete(&key))
    }

    /// Runs `f` with a [`WriteBatch`] on `table` in one write transaction:
    /// everything it puts commits together, or nothing does (see [`write`](Self::write)).
    pub fn write_batch<R>(
        &self,
        table: &str,
        mut f: impl FnMut(&mut WriteBatch<'_>) -> Result<R>,
    ) -> Result<R> {
        self.write(|tx| f(&mut tx.batch(table)))
    }

    /// A typed handle on the table `name`, keys of type `K`, values of type `V`.
    ///
    /// `K` may be a borrowed form (`&str`, `&[u8]`): the handle takes any key
    /// that encodes the same way, and scans return the owned form (`String`).
    ///
    /// A handle by name knows nothing of record types: it reads any table,
    /// but refuses to write one that belongs to a `#[derive(StoredRecord)]`
    /// type ([`Error::TableOwned`]), whose indexes it would skip. Use
    /// [`records`](Self::records) for those tables.
    pub fn table<K: IntoKeyBytes, V: StoredValue>(&self, name: &str) -> Table<K, V> {
        Table::new(self.clone(), TableName::new(name), None)
    }

    /// A typed handle on the table of the `#[derive(StoredRecord)]` type `R`,
    /// keyed by its `#[key]` fields and checked against its schema.
    pub fn records<R: StoredRecord>(&self) -> Table<R::Key, R> {
        Table::new(self.clone(), TableName::of::<R>(), Some(RecordInfo::of()))
    }
}

/// The byte-level store of a [`Storage`], from [`Storage::backend`]: raw keys
/// and values, each operation in a transaction of its own.
///
/// Nothing is encoded or validated here, but the rules of the typed layer
/// hold: tables that belong to a record type, and storage's own `__` tables,
/// are refused for writes.
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
#[derive(Debug, Clone, Copy)]
pub struct Backend<'s> {
    storage: &'s Storage,
}

impl<'s> Backend<'s> {
    /// The engine underneath.
    pub fn engine(&self) -> &'s Engine {
        &self.storage.shared.engine
    }

    /// The redb engine, if the storage runs on redb.
    pub fn redb(&self) -> Option<&'s RedbBackend> {
        self.engine().redb()
    }

    /// The durability write transactions commit with.
    pub fn durability(&self) -> Durability {
        self.engine().durability()
    }

    /// Inserts every `(key, value)` pair into `table` in one transaction.
    pub fn put_batch<I, K, V>(&self, table: &str, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let items: Vec<(K, V)> = items.into_iter().collect();
        self.storage.write_batch(table, |batch| {
            for (key, value) in &items {
                batch.put_raw(key.as_ref(), value)?;
            }
            Ok(())
        })
    }

    /// Runs `f` on the value bytes under `key`, if there is one.
    pub fn get<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        self.storage.read(|tx| match tx.raw().table(table)? {
            Some(raw) => raw.get(key, f),
            None => Ok(None),
        })
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&self, table: &str, key: &[u8]) -> Result<bool> {
        self.storage.write_batch(table, |batch| batch.delete(key))
    }

    /// Calls `f` with every key and value of `table` in key order; stops at the
    /// first error `f` returns.
    pub fn scan(&self, table: &str, mut f: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        self.storage.read(|tx| {
            let Some(raw) = tx.raw().table(table)? else {
                return Ok(());
            };
            raw.scan(
                (Bound::Unbounded, Bound::Unbounded),
                Direction::Forward,
                |k, v| f(k, v).map(|()| ControlFlow::Continue(())),
            )
        })
    }
}
