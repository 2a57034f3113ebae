//! Typed, transactional tables on [redb] with validated zero-copy reads of
//! [rkyv] archives.
//!
//! This crate is the facade: it re-exports the runtime (`storage-core`) and
//! `#[derive(StoredRecord)]` (`storage-derive`). The README has a tour.
//!
//! ```
//! use storage::{Storage, StoredRecord};
//!
//! #[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
//! #[stored(table = "users")]
//! struct User {
//!     #[key]
//!     id: u64,
//!     name: String,
//!     tags: Vec<String>,
//! }
//!
//! # fn main() -> storage::Result<()> {
//! let storage = Storage::in_memory()?;
//! let users = storage.records::<User>();
//! users.insert(&User { id: 42, name: "Ada".into(), tags: vec!["admin".into()] })?;
//!
//! // Generated accessors give native views of the archived record.
//! let (name, tags) = users
//!     .get(42, |u| (u.name().to_owned(), u.tags().collect::<Vec<_>>().join(",")))?
//!     .expect("stored");
//! assert_eq!((name.as_str(), tags.as_str()), ("Ada", "admin"));
//! # Ok(())
//! # }
//! ```
//!
//! [redb]: https://docs.rs/redb
//! [rkyv]: https://docs.rs/rkyv

#![deny(missing_docs)]

pub use storage_core::*;

/// Derives [`StoredRecord`](trait@StoredRecord): a table, a key and archived
/// accessors for a struct.
///
/// ```
/// # use storage::StoredRecord;
/// #[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
/// #[stored(table = "orders", version = 2)]
/// struct Order {
///     #[key]
///     customer: u64,
///     #[key]
///     number: u32,
///     total_cents: i64,
///     note: Option<String>,
/// }
/// // Generated: `type OrderKey = (u64, u32);`, `impl StoredRecord for Order`,
/// // and on `ArchivedOrder`: `customer() -> u64`, `number() -> u32`,
/// // `total_cents() -> i64`, `note() -> Option<&str>`.
/// let key: OrderKey = (7, 1);
/// # let _ = key;
/// ```
///
/// | attribute | where | meaning |
/// |---|---|---|
/// | `#[stored(table = "name")]` | struct | table name; default: the struct name in snake_case |
/// | `#[stored(version = N)]` | struct | schema version (default 1), part of the stored schema |
/// | `#[stored(crate = "path")]` | struct | path of this crate if renamed in `Cargo.toml` |
/// | `#[key]` | field | the key; several `#[key]` fields form one composite key in field order |
/// | `#[index]`, `#[index(unique)]`, `#[index(name = "..")]` | field | a secondary index on the field |
/// | `#[stored(index(fields(a, b), unique, name = ".."))]` | struct | a secondary index over several fields |
///
/// What it generates:
///
/// - `type {Name}Key`: the key field's type, or a tuple of the key fields' types;
/// - `impl StoredRecord for {Name}`: the table name, the key extractor
///   (`key()` owned, `key_ref()` borrowed) and the schema description that is
///   stored with the table and checked on every open;
/// - on rkyv's `Archived{Name}`, one method per field returning a native view:
///   integers, floats and `bool` by value, `&str` for `String`, a slice for
///   `Vec<u8>`, an iterator of views for other vectors, `Option<view>` for
///   options, and the archived value for anything else (nested records);
///   The view is chosen from how the field's type is spelled (`String`,
///   `Vec<..>`, `Option<..>`, `Box<..>`, integer names): a type alias or
///   another crate's type of the same name gets its archived form; a field
///   with its own `#[rkyv(..)]` attribute gets no accessor.
/// - with indexes, a trait `{Name}Indexes` with `by_{index}(value, f)` and
///   `by_{index}_range(bounds, f)` (and `by_{index}_prefix` for indexes over
///   several fields) on the record's `Table`, `ReadTable` and `WriteTable`.
///
/// What it refuses at compile time, each error at the offending tokens: no
/// `#[key]` field; a key that can never be one (floats, options, `Vec`s other
/// than `Vec<u8>`, maps and sets, references, any type that does not implement
/// [`FromKeyBytes`]); `#[key]` with arguments; enums, unions, tuple and unit
/// structs; generic structs; unknown `#[stored]` and `#[index]` arguments
/// (with a suggestion); duplicate arguments; empty or `__`-prefixed table
/// names; an index on a key field, on a type without an index encoding, or
/// with a name another index has; a struct without the rkyv derives.
pub use storage_derive::StoredRecord;

/// Derives [`StoredType`](trait@StoredType) for a struct or enum that records
/// hold: its archived layout, stored with the table of every record type
/// that contains it, so that a change inside it is caught.
///
/// ```
/// use storage::{StoredRecord, StoredType};
///
/// #[derive(StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
/// enum Status {
///     Active,
///     Banned { reason: String },
/// }
///
/// #[derive(StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
/// struct Address {
///     city: String,
///     zip: u32,
/// }
///
/// #[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
/// struct User {
///     #[key]
///     id: u64,
///     status: Status,
///     address: Address,
/// }
/// # let layout = storage::layout::Describer::layout_of::<User>().to_string();
/// # assert!(layout.contains("enum Status { Active, Banned { reason: String } }"), "{layout}");
/// ```
///
/// A field type without `StoredType` does not compile, with the error at
/// the field. Enum discriminants, if given, are integer literals (they are
/// the archived tags). `#[stored(crate = "..")]` names a renamed `storage`.
/// Records need no `StoredType` derive: `StoredRecord` implements it.
pub use storage_derive::StoredType;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
