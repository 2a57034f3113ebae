//! `#[derive(StoredRecord)]` for the `storage` crate.
