//! Typed table handles: [`ReadTable`] in any transaction, [`WriteTable`]
//! (a `ReadTable` that also writes) in write transactions, and [`Table`] on
//! a [`Storage`](crate::Storage), each call in a transaction of its own.
//!
//! - `read.rs`: the read path, written once for both transaction kinds;
//! - `write.rs`: the write path, [`WriteTable`] and [`WriteBatch`];
//! - `handle.rs`: [`Table`].

use core::fmt;
use core::ops::{Bound, Deref};
use std::sync::Arc;

use crate::backend::AnyTable;
use crate::index::RecordMeta;
use crate::key::KeyBuf;
use crate::record::StoredRecord;
use crate::txn::{ReadTransaction, WriteTransaction};

mod handle;
mod read;
mod write;

pub use self::handle::Table;
pub use self::read::{Cursor, Page, ReadTable};
pub use self::write::{WriteBatch, WriteTable};

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

/// The transaction a handle reads (and maybe writes) in.
#[derive(Clone, Copy)]
pub(crate) enum Txn<'tx> {
    Read(&'tx ReadTransaction<'tx>),
    Write(&'tx WriteTransaction<'tx>),
}

impl<'tx> Txn<'tx> {
    /// Counts the schema changes made in the transaction so far: a handle
    /// opened at another count opens again.
    fn version(self) -> u64 {
        match self {
            Txn::Read(_) => 0,
            Txn::Write(tx) => tx.catalog_version(),
        }
    }

    /// Opens `name` (for the record type `meta`): checks the name and the
    /// schema, and, in a write transaction, brings the indexes up to date.
    fn open(self, name: &str, meta: Option<&RecordMeta>) -> crate::Result<Opened<'tx>> {
        match self {
            Txn::Read(tx) => tx.open(name, meta),
            Txn::Write(tx) => tx.open(name, meta),
        }
    }

    /// The error for a query on an index that is not built.
    fn unbuilt(self, table: &str, index: &crate::schema::IndexDef) -> crate::Error {
        match self {
            Txn::Read(tx) => tx.unbuilt(table, index),
            Txn::Write(tx) => tx.unbuilt(table, index),
        }
    }

    /// Opens the table of index `index` of `meta`'s record type.
    fn index_table(self, meta: &RecordMeta, index: usize) -> crate::Result<Option<AnyTable<'tx>>> {
        match self {
            Txn::Read(tx) => tx.index_table(meta, index),
            Txn::Write(tx) => tx.index_table(meta, index).map(Some),
        }
    }
}

/// A table as a handle found it when it opened it.
#[derive(Clone)]
pub(crate) struct Opened<'tx> {
    /// The engine's table; `None` if it does not exist (in a read transaction).
    pub(crate) table: Option<AnyTable<'tx>>,
    /// Bit `i`: index `i` of the record type is built, kept and queryable.
    pub(crate) kept: u64,
    /// For a handle by name: the record type the table belongs to, whose
    /// writes alone are allowed.
    pub(crate) owner: Option<Arc<str>>,
    /// [`Txn::version`] when it was opened.
    pub(crate) version: u64,
}

/// Encodes a range of keys as owned byte bounds.
pub(crate) fn encode_bounds<Q: crate::key::IntoKeyBytes>(
    bounds: &impl core::ops::RangeBounds<Q>,
) -> (Bound<KeyBuf>, Bound<KeyBuf>) {
    let encode = |bound: Bound<&Q>| match bound {
        Bound::Included(key) => Bound::Included(KeyBuf::from(key.into_key_bytes().as_ref())),
        Bound::Excluded(key) => Bound::Excluded(KeyBuf::from(key.into_key_bytes().as_ref())),
        Bound::Unbounded => Bound::Unbounded,
    };
    (encode(bounds.start_bound()), encode(bounds.end_bound()))
}

/// The byte bounds of every key starting with `prefix`.
pub(crate) fn prefix_range(prefix: &[u8]) -> (Bound<KeyBuf>, Bound<KeyBuf>) {
    let mut end = KeyBuf::from(prefix);
    let end = if end.increment() {
        Bound::Excluded(end)
    } else {
        Bound::Unbounded
    };
    (Bound::Included(KeyBuf::from(prefix)), end)
}
