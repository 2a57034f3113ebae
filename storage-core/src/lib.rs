//! Typed, transactional tables on [redb] with validated zero-copy reads of
//! [rkyv] archives: the runtime of the `storage` crate.
//!
//! Values are stored as rkyv archives under order-preserving keys. Reads hand
//! a closure the archived value (`&Archived<V>`) straight from the database
//! page, validated first, and return what the closure returns; nothing is
//! deserialized. Writes go through transactions that commit everything or
//! nothing.
//!
//! ```
//! use storage::Storage;
//!
//! #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
//! struct User {
//!     name: String,
//!     active: bool,
//! }
//!
//! # fn main() -> storage::Result<()> {
//! let storage = Storage::in_memory()?;
//! let users = storage.table::<&str, User>("users");
//! users.put("alice", &User { name: "Alice".into(), active: true })?;
//! users.put("bob", &User { name: "Bob".into(), active: false })?;
//!
//! let name = users.get("alice", |user| user.name.to_string())?;
//! assert_eq!(name.as_deref(), Some("Alice"));
//!
//! let active = users.scan(|key, user| user.active.then(|| key.clone()))?;
//! assert_eq!(active, ["alice"]);
//! # Ok(())
//! # }
//! ```
//!
//! Most users depend on the `storage` facade crate, which re-exports this one
//! together with `#[derive(StoredRecord)]`.
//!
//! [redb]: https://docs.rs/redb
//! [rkyv]: https://docs.rs/rkyv

#![deny(missing_docs)]

#[cfg(feature = "tokio")]
mod asynch;
pub mod backend;
mod decode;
mod error;
mod feed;
mod index;
mod inspect;
mod key;
pub mod layout;
mod lock;
mod migrate;
mod ops;
mod range;
mod record;
mod schema;
mod storage;
mod table;
mod txn;
mod value;

#[cfg(feature = "tokio")]
pub use crate::asynch::{AsyncStorage, AsyncTable};
#[cfg(feature = "etcd")]
pub use crate::backend::EtcdBackend;
pub use crate::backend::{Durability, Engine, RedbBackend};
pub use crate::error::{BoxError, Error, Result, SchemaDifference};
#[cfg(feature = "tokio")]
pub use crate::feed::NoticeStream;
pub use crate::feed::{
    Change, ChangeKind, Changes, Commit, DEFAULT_CAPACITY, Follow, Image, Notice, Subscription,
};
pub use crate::index::IndexValues;
pub use crate::inspect::{DumpRange, Dumped, IndexInfo, RecordTable};
pub use crate::key::{AsKey, FromKeyBytes, IntoKeyBytes, KeyBuf, KeyError, KeyPrefix};
pub use crate::layout::{Layout, StoredType};
pub use crate::lock::{LockMode, LockOutcome, SchemaLockError, schema_lock, schema_lock_with};
pub use crate::migrate::MigrationReport;
pub use crate::ops::{
    BackupReport, CompactReport, Finding, Findings, IndexReport, Stats, TableKind, TableStats,
    VerifyReport,
};
pub use crate::range::{Entry, Range};
pub use crate::record::{KeepsChanges, StoredRecord};
pub use crate::schema::{IndexDef, SCHEMA_TABLE, Schema};
#[cfg(feature = "etcd")]
pub use crate::storage::EtcdBuilder;
pub use crate::storage::{Backend, Storage, StorageBuilder};
pub use crate::table::{Cursor, Page, ReadTable, Table, WriteBatch, WriteTable};
pub use crate::txn::{ReadTransaction, WriteTransaction};
pub use crate::value::{
    Archived, DiagnosticValidator, StoredValue, ValueDeserializer, ValueSerializer, ValueValidator,
    read_archived,
};

/// The rkyv version values are archived with.
pub use rkyv;

/// Paths used by code that `#[derive(StoredRecord)]` generates. Not a public
/// API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::index::{prefix_bounds, str_prefix_bounds, value_bounds};
    pub use crate::key::{show as show_key, show_entry, show_part};
    pub use crate::value::{deserialize_record, read_owned};
    pub use std::sync::OnceLock;
    pub use std::vec;

    /// Whether two strings are equal, in a const context.
    pub const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
    pub use crate::schema::index_table as index_table_name;
    pub use rkyv;
    pub use std::string::String;
    pub use std::vec::Vec;
}
