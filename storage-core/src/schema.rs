//! Schema metadata: what record type a table was written with.
//!
//! rkyv archives are not self-describing, so reading a table with a struct
//! whose layout changed would misread the bytes. Every record type carries a
//! [`Schema`] (made by `#[derive(StoredRecord)]`) whose description names the
//! table, the version, the key fields and every field with its type. The first
//! write through a record type stores the description in the reserved table
//! `__storage_schema`; every later open compares it and refuses a different one
//! with [`Error::SchemaMismatch`]. The description itself is stored, not a hash,
//! so that a mismatch can show both sides and no hash algorithm is baked into
//! the file format.

use std::sync::RwLock;

use crate::backend::{RawRead, ReadTxn, WriteTxn};
use crate::error::{Error, Result};

/// The reserved table holding one schema description per record table.
pub const SCHEMA_TABLE: &str = "__storage_schema";

/// The layout of a record type, as stored with its table.
///
/// Made by `#[derive(StoredRecord)]`; see [`StoredRecord::SCHEMA`](crate::StoredRecord::SCHEMA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    /// The table the record type is stored in.
    pub table: &'static str,
    /// The layout: version, key fields, fields and their types, indexes.
    pub description: &'static str,
}

/// Checks a table name: not empty, and not in the reserved `__` namespace.
pub(crate) fn check_name(table: &str) -> Result<()> {
    let reason = if table.is_empty() {
        "table names must not be empty"
    } else if table.starts_with("__") {
        "names starting with `__` are reserved for storage's own tables"
    } else {
        return Ok(());
    };
    Err(Error::InvalidTableName {
        table: table.to_owned(),
        reason,
    })
}

fn compare(schema: &Schema, stored: &[u8]) -> Result<()> {
    if stored == schema.description.as_bytes() {
        return Ok(());
    }
    Err(Error::SchemaMismatch {
        table: schema.table.to_owned(),
        stored: String::from_utf8_lossy(stored).into_owned(),
        expected: schema.description.to_owned(),
    })
}

fn meta_error(e: crate::backend::BackendError) -> Error {
    Error::backend(Some(SCHEMA_TABLE), e)
}

/// Compares `schema` with the stored one. `Ok(true)` if they match, `Ok(false)`
/// if none is stored yet.
pub(crate) fn check_read(txn: &ReadTxn, schema: &Schema) -> Result<bool> {
    let Some(meta) = txn.open(SCHEMA_TABLE)? else {
        return Ok(false);
    };
    match meta.get(schema.table.as_bytes()).map_err(meta_error)? {
        Some(stored) => compare(schema, stored.bytes()).map(|()| true),
        None => Ok(false),
    }
}

/// Compares `schema` with the stored one, storing it if there is none yet.
pub(crate) fn check_write(txn: &WriteTxn<'_>, schema: &Schema) -> Result<()> {
    let mut meta = txn.open(SCHEMA_TABLE)?;
    if let Some(stored) = meta.get(schema.table.as_bytes()).map_err(meta_error)? {
        return compare(schema, stored.bytes());
    }
    meta.insert(schema.table.as_bytes(), schema.description.as_bytes())
        .map_err(meta_error)
}

/// Schemas this process has seen match the database, so later transactions
/// skip the metadata lookup. Only a committed store or a successful comparison
/// makes a schema trusted.
#[derive(Debug, Default)]
pub(crate) struct TrustedSchemas(RwLock<Vec<Schema>>);

impl TrustedSchemas {
    pub(crate) fn trusts(&self, schema: &Schema) -> bool {
        let trusted = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        trusted.contains(schema)
    }

    pub(crate) fn trust(&self, schema: &Schema) {
        let mut trusted = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !trusted.contains(schema) {
            trusted.push(*schema);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("users").is_ok());
        assert!(matches!(
            check_name(""),
            Err(Error::InvalidTableName { .. })
        ));
        let err = check_name("__mine").unwrap_err();
        assert_eq!(err.table(), Some("__mine"));
        assert!(err.to_string().contains("reserved"), "{err}");
    }
}
