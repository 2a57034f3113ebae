//! The backend seam: the ordered, transactional byte-key store underneath.
//!
//! Everything above this module — tables, records, indexes, schemas, the
//! change feed — reaches storage only through the traits here:
//!
//! - [`Store`]: snapshot read transactions and atomic write transactions,
//!   each scoped to a closure, so that no engine object outlives its
//!   transaction (a leaked handle can never hold a writer lock);
//! - [`ReadTxn`] / [`WriteTxn`]: tables by name, created on first write,
//!   deleted and listed; savepoints inside a write transaction;
//! - [`ReadTable`] / [`WriteTable`]: one table of byte keys in byte order,
//!   with point reads, ranges in both directions visited in place, counts,
//!   inserts and removes that read their own writes.
//!
//! One file per engine: [`redb`](RedbBackend) is the embedded default, `etcd`
//! (cargo feature `etcd`) the distributed one. The typed layer holds an
//! engine through [`Engine`], an enum that forwards every call, so that the
//! embedded path costs no dynamic dispatch.

use core::ops::{Bound, ControlFlow};

use crate::error::Result;

#[cfg(feature = "etcd")]
pub(crate) mod etcd;
pub(crate) mod redb;

#[cfg(feature = "etcd")]
pub use self::etcd::{EtcdBackend, EtcdRead, EtcdReadTable, EtcdTable, EtcdWrite};
pub use self::redb::{RedbBackend, RedbRead, RedbReadTable, RedbTable, RedbWrite};

/// A scan's callback as a trait object, for engines that take one.
pub(crate) type Visit<'f> = dyn FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>> + 'f;

/// Byte bounds over the keys of a table.
pub type KeyRange<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The order a scan visits keys in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending byte order.
    Forward,
    /// Descending byte order.
    Backward,
}

/// When a committed write transaction is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every commit is flushed to disk (`fsync`) before it returns. The default.
    #[default]
    Immediate,
    /// Commits are not flushed. The database stays consistent, but a crash
    /// may lose commits made since the last `Immediate` one. Much faster for
    /// many small transactions. (A distributed engine's durability is its
    /// cluster's; it ignores this setting.)
    None,
}

/// An ordered, transactional store of byte keys and values in named tables.
///
/// # Contract
///
/// - [`read`](Self::read) runs its closure on a snapshot: every read in it
///   sees the store as of one moment, whatever commits meanwhile.
/// - [`write`](Self::write) runs its closure in a transaction that sees its
///   own writes and commits all of them atomically when the closure returns
///   `Ok`, or none when it returns `Err`. An engine with optimistic
///   concurrency may run the closure again (with a fresh transaction) when
///   a concurrent commit changed what it read; it does so a bounded number
///   of times, then returns [`Error::Conflict`](crate::Error::Conflict).
/// - Every object a transaction hands out is valid only inside its closure;
///   dropping, leaking or forgetting a table handle never blocks anything.
pub trait Store: Send + Sync + 'static {
    /// A snapshot read transaction.
    type Read<'t>: ReadTxn;
    /// A write transaction.
    type Write<'t>: WriteTxn;

    /// Runs `f` in a snapshot read transaction.
    fn read<R>(&self, f: impl FnOnce(&Self::Read<'_>) -> Result<R>) -> Result<R>;

    /// Runs `f` in a write transaction; commits what it wrote if it returns
    /// `Ok`, else rolls everything back and returns its error.
    fn write<R>(&self, f: impl FnMut(&Self::Write<'_>) -> Result<R>) -> Result<R>;

    /// Whether this process is the only one that can commit to the store
    /// while the handle lives (an embedded file, locked): then what this
    /// process knows of the last commit stays true until it commits again,
    /// and may be cached.
    fn is_exclusive(&self) -> bool;
}

/// A snapshot read transaction of a [`Store`].
pub trait ReadTxn {
    /// A handle on one table, cheap to clone.
    type Table<'t>: ReadTable + Clone
    where
        Self: 't;

    /// The table `name`, or `None` if it does not exist in this snapshot.
    fn table(&self, name: &str) -> Result<Option<Self::Table<'_>>>;

    /// The names of every table in this snapshot, in byte order.
    fn tables(&self) -> Result<Vec<String>>;
}

/// A write transaction of a [`Store`].
///
/// Savepoints nest: [`rollback_to`](Self::rollback_to) undoes every insert
/// and remove made since its savepoint, in any table, and
/// [`release`](Self::release) keeps them. While a savepoint is outstanding,
/// [`delete_table`](Self::delete_table) and
/// [`rename_table`](Self::rename_table) are refused (the layer empties a
/// table key by key instead, which a rollback undoes).
pub trait WriteTxn {
    /// A handle on one table, cheap to clone.
    type Table<'t>: WriteTable + Clone
    where
        Self: 't;

    /// The table `name`, created (empty) if it does not exist.
    fn table(&self, name: &str) -> Result<Self::Table<'_>>;

    /// Deletes the table `name` and everything in it; returns whether it
    /// existed. Handles on it stay usable and see it empty.
    fn delete_table(&self, name: &str) -> Result<bool>;

    /// Renames the table `from` to `to`, which must not exist. Handles on
    /// either name stay usable and see the tables under their new names.
    fn rename_table(&self, from: &str, to: &str) -> Result<()>;

    /// The names of every table, in byte order, including those this
    /// transaction created.
    fn tables(&self) -> Result<Vec<String>>;

    /// Starts recording what the transaction changes, so that it can be undone.
    fn savepoint(&self) -> Savepoint;

    /// Undoes every change made since `savepoint` (and ends it).
    fn rollback_to(&self, savepoint: Savepoint) -> Result<()>;

    /// Ends `savepoint`, keeping its changes.
    fn release(&self, savepoint: Savepoint);
}

/// A point in a write transaction's history; see [`WriteTxn::savepoint`].
#[derive(Debug)]
#[must_use = "a savepoint is ended by `rollback_to` or `release`"]
pub struct Savepoint(pub(crate) usize);

/// One table of a transaction: byte keys in byte order.
///
/// Keys and values handed to callbacks are borrowed from the store for the
/// duration of the call only.
pub trait ReadTable {
    /// The table's name.
    fn name(&self) -> &str;

    /// Runs `f` on the value under `key`, if there is one.
    fn get<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>>;

    /// Calls `f` with every key and value in `range`, in `direction` order,
    /// until `f` returns `Break` or an error (which is returned).
    fn scan(
        &self,
        range: KeyRange<'_>,
        direction: Direction,
        f: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
    ) -> Result<()>;

    /// The number of entries.
    fn len(&self) -> Result<u64>;

    /// Whether the table has no entries.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// A table of a write transaction: reads see the transaction's own writes.
pub trait WriteTable: ReadTable {
    /// Stores `value` under `key`, replacing what was there.
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Stores `value` under `key` and runs `f` on the value it replaced.
    fn replace<R>(&self, key: &[u8], value: &[u8], f: impl FnOnce(Option<&[u8]>) -> R)
    -> Result<R>;

    /// Removes `key` and runs `f` on the value it held.
    fn remove<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R>;
}

/// The engine behind a [`Storage`](crate::Storage): one of this crate's
/// [`Store`]s, forwarded to without dynamic dispatch.
#[derive(Debug)]
#[non_exhaustive]
pub enum Engine {
    /// The embedded redb engine.
    Redb(RedbBackend),
    /// The distributed etcd engine.
    #[cfg(feature = "etcd")]
    Etcd(EtcdBackend),
}

/// A read transaction of an [`Engine`].
#[derive(Clone, Copy)]
pub(crate) enum AnyRead<'a> {
    Redb(&'a RedbRead),
    #[cfg(feature = "etcd")]
    Etcd(&'a EtcdRead<'a>),
}

/// A write transaction of an [`Engine`].
#[derive(Clone, Copy)]
pub(crate) enum AnyWrite<'a> {
    Redb(RedbWrite<'a>),
    #[cfg(feature = "etcd")]
    Etcd(&'a EtcdWrite<'a>),
}

/// A table of a transaction of an [`Engine`], read or write.
#[derive(Clone)]
pub(crate) enum AnyTable<'a> {
    RedbRead(RedbReadTable),
    RedbWrite(RedbTable<'a>),
    #[cfg(feature = "etcd")]
    EtcdRead(EtcdReadTable<'a>),
    #[cfg(feature = "etcd")]
    EtcdWrite(EtcdTable<'a>),
}

impl Engine {
    /// The redb engine, if this is one.
    pub fn redb(&self) -> Option<&RedbBackend> {
        match self {
            Engine::Redb(redb) => Some(redb),
            #[cfg(feature = "etcd")]
            Engine::Etcd(_) => None,
        }
    }

    /// The etcd engine, if this is one.
    #[cfg(feature = "etcd")]
    pub fn etcd(&self) -> Option<&EtcdBackend> {
        match self {
            Engine::Etcd(etcd) => Some(etcd),
            Engine::Redb(_) => None,
        }
    }

    /// The durability write transactions commit with (an etcd cluster's is
    /// its own: reported as `Immediate`).
    pub fn durability(&self) -> Durability {
        match self {
            Engine::Redb(redb) => redb.durability(),
            #[cfg(feature = "etcd")]
            Engine::Etcd(_) => Durability::Immediate,
        }
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(AnyRead<'_>) -> Result<R>) -> Result<R> {
        match self {
            Engine::Redb(redb) => redb.read(|txn| f(AnyRead::Redb(txn))),
            #[cfg(feature = "etcd")]
            Engine::Etcd(etcd) => etcd.read(|txn| f(AnyRead::Etcd(txn))),
        }
    }

    pub(crate) fn write<R>(&self, mut f: impl FnMut(AnyWrite<'_>) -> Result<R>) -> Result<R> {
        match self {
            Engine::Redb(redb) => redb.write_owned(|txn| f(AnyWrite::Redb(*txn))),
            #[cfg(feature = "etcd")]
            Engine::Etcd(etcd) => etcd.write(|txn| f(AnyWrite::Etcd(txn))),
        }
    }

    pub(crate) fn redb_mut(&mut self) -> Option<&mut RedbBackend> {
        match self {
            Engine::Redb(redb) => Some(redb),
            #[cfg(feature = "etcd")]
            Engine::Etcd(_) => None,
        }
    }

    /// Counts the writes made to the engine from outside the layer, twice
    /// each (odd while one runs).
    pub(crate) fn foreign_writes(&self) -> u64 {
        match self {
            Engine::Redb(redb) => redb.foreign_writes(),
            #[cfg(feature = "etcd")]
            Engine::Etcd(_) => 0,
        }
    }

    pub(crate) fn is_exclusive(&self) -> bool {
        match self {
            Engine::Redb(redb) => redb.is_exclusive(),
            #[cfg(feature = "etcd")]
            Engine::Etcd(etcd) => etcd.is_exclusive(),
        }
    }
}

impl<'a> AnyRead<'a> {
    pub(crate) fn table(&self, name: &str) -> Result<Option<AnyTable<'a>>> {
        match self {
            AnyRead::Redb(txn) => Ok(txn.table(name)?.map(AnyTable::RedbRead)),
            #[cfg(feature = "etcd")]
            AnyRead::Etcd(txn) => Ok(txn.table(name)?.map(AnyTable::EtcdRead)),
        }
    }

    pub(crate) fn tables(&self) -> Result<Vec<String>> {
        match self {
            AnyRead::Redb(txn) => txn.tables(),
            #[cfg(feature = "etcd")]
            AnyRead::Etcd(txn) => txn.tables(),
        }
    }
}

impl<'a> AnyWrite<'a> {
    pub(crate) fn table(&self, name: &str) -> Result<AnyTable<'a>> {
        match self {
            AnyWrite::Redb(txn) => Ok(AnyTable::RedbWrite(txn.table(name)?)),
            #[cfg(feature = "etcd")]
            AnyWrite::Etcd(txn) => Ok(AnyTable::EtcdWrite(txn.table(name)?)),
        }
    }

    pub(crate) fn tables(&self) -> Result<Vec<String>> {
        match self {
            AnyWrite::Redb(txn) => txn.tables(),
            #[cfg(feature = "etcd")]
            AnyWrite::Etcd(txn) => txn.tables(),
        }
    }

    pub(crate) fn delete_table(&self, name: &str) -> Result<bool> {
        match self {
            AnyWrite::Redb(txn) => txn.delete_table(name),
            #[cfg(feature = "etcd")]
            AnyWrite::Etcd(txn) => txn.delete_table(name),
        }
    }

    pub(crate) fn rename_table(&self, from: &str, to: &str) -> Result<()> {
        match self {
            AnyWrite::Redb(txn) => txn.rename_table(from, to),
            #[cfg(feature = "etcd")]
            AnyWrite::Etcd(txn) => txn.rename_table(from, to),
        }
    }

    pub(crate) fn savepoint(&self) -> Savepoint {
        match self {
            AnyWrite::Redb(txn) => txn.savepoint(),
            #[cfg(feature = "etcd")]
            AnyWrite::Etcd(txn) => txn.savepoint(),
        }
    }

    pub(crate) fn rollback_to(&self, savepoint: Savepoint) -> Result<()> {
        match self {
            AnyWrite::Redb(txn) => txn.rollback_to(savepoint),
            #[cfg(feature = "etcd")]
            AnyWrite::Etcd(txn) => txn.rollback_to(savepoint),
        }
    }

    pub(crate) fn release(&self, savepoint: Savepoint) {
        match self {
            AnyWrite::Redb(txn) => txn.release(savepoint),
            #[cfg(feature = "etcd")]
            AnyWrite::Etcd(txn) => txn.release(savepoint),
        }
    }
}

/// Forwards a table call to the engine's table.
macro_rules! on_table {
    ($self:expr, $table:ident => $read:expr, write $wtable:ident => $write:expr) => {
        match $self {
            AnyTable::RedbRead($table) => $read,
            AnyTable::RedbWrite($wtable) => $write,
            #[cfg(feature = "etcd")]
            AnyTable::EtcdRead($table) => $read,
            #[cfg(feature = "etcd")]
            AnyTable::EtcdWrite($wtable) => $write,
        }
    };
    ($self:expr, $table:ident => $call:expr) => {
        on_table!($self, $table => $call, write $table => $call)
    };
}

/// Engines undo a savepoint from a log of entry writes, which cannot undo
/// deleting or renaming a table: with `open` savepoints open, refused.
pub(crate) fn refuse_under_savepoint(open: usize, name: &str) -> crate::Result<()> {
    if open > 0 {
        return Err(crate::Error::Backend {
            table: Some(name.to_owned()),
            source: "a table cannot be deleted or renamed while a savepoint is open".into(),
        });
    }
    Ok(())
}

/// A table of a read transaction cannot be written: the typed layer never
/// asks, so reaching this is a bug, reported as an error rather than a panic.
fn read_only(name: &str) -> crate::Error {
    crate::Error::Backend {
        table: Some(name.to_owned()),
        source: "write to a table of a read transaction".into(),
    }
}

impl ReadTable for AnyTable<'_> {
    #[inline]
    fn name(&self) -> &str {
        on_table!(self, t => t.name())
    }

    #[inline]
    fn get<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        on_table!(self, t => t.get(key, f))
    }

    #[inline]
    fn scan(
        &self,
        range: KeyRange<'_>,
        direction: Direction,
        f: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        on_table!(self, t => t.scan(range, direction, f))
    }

    #[inline]
    fn len(&self) -> Result<u64> {
        on_table!(self, t => t.len())
    }
}

impl WriteTable for AnyTable<'_> {
    #[inline]
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<()> {
        on_table!(self, t => Err(read_only(t.name())), write t => t.insert(key, value))
    }

    #[inline]
    fn replace<R>(
        &self,
        key: &[u8],
        value: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        on_table!(self, t => Err(read_only(t.name())), write t => t.replace(key, value, f))
    }

    #[inline]
    fn remove<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
        on_table!(self, t => Err(read_only(t.name())), write t => t.remove(key, f))
    }
}
