//! Typed, transactional tables on [redb] with validated zero-copy reads of
//! [rkyv] archives.
//!
//! This crate is the facade: it re-exports the runtime
//! ([`storage_core`](https://docs.rs/storage-core)) and, once enabled,
//! `#[derive(StoredRecord)]`. See the README for a tour.
//!
//! [redb]: https://docs.rs/redb
//! [rkyv]: https://docs.rs/rkyv

#![deny(missing_docs)]

pub use storage_core::*;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
