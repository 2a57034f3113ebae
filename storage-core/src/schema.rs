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
    /// The layout: table, version, key fields, fields and their types.
    pub description: &'static str,
    /// The secondary indexes, each in a table of its own.
    pub indexes: &'static [IndexDef],
}

/// One secondary index of a record type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    /// The index name: the field name, or the name given in `#[index(..)]`.
    pub name: &'static str,
    /// The redb table holding the index: `__index:{table}:{name}`.
    pub table: &'static str,
    /// At most one record per value.
    pub unique: bool,
    /// The definition as stored: name, uniqueness, fields and their types.
    pub description: &'static str,
}

/// Where a table's stored schema stands against a record type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SchemaState {
    /// Stored, and equal: layout and indexes.
    Current,
    /// Nothing stored yet.
    Missing,
    /// The same layout, other indexes (named here): they must be rebuilt.
    IndexesChanged { stored: Vec<String> },
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

/// What is stored for `schema`: the layout line, then one line per index.
fn stored_form(schema: &Schema) -> String {
    let mut out = schema.description.to_owned();
    for index in schema.indexes {
        out.push('\n');
        out.push_str(index.description);
    }
    out
}

/// The index name of a stored index line: `index {name} ..`.
fn index_name(line: &str) -> String {
    line.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

fn compare(schema: &Schema, stored: &[u8]) -> Result<SchemaState> {
    let stored = String::from_utf8_lossy(stored);
    let mut lines = stored.lines();
    let layout = lines.next().unwrap_or_default();
    if layout != schema.description {
        return Err(Error::SchemaMismatch {
            table: schema.table.to_owned(),
            stored: layout.to_owned(),
            expected: schema.description.to_owned(),
        });
    }
    let indexes: Vec<&str> = lines.collect();
    let current = indexes.len() == schema.indexes.len()
        && indexes
            .iter()
            .zip(schema.indexes)
            .all(|(stored, index)| *stored == index.description);
    Ok(if current {
        SchemaState::Current
    } else {
        SchemaState::IndexesChanged {
            stored: indexes.iter().map(|line| index_name(line)).collect(),
        }
    })
}

fn meta_error(e: crate::backend::BackendError) -> Error {
    Error::backend(Some(SCHEMA_TABLE), e)
}

/// Compares `schema` with the stored one.
pub(crate) fn check_read(txn: &ReadTxn, schema: &Schema) -> Result<SchemaState> {
    let Some(meta) = txn.open(SCHEMA_TABLE)? else {
        return Ok(SchemaState::Missing);
    };
    match meta.get(schema.table.as_bytes()).map_err(meta_error)? {
        Some(stored) => compare(schema, stored.bytes()),
        None => Ok(SchemaState::Missing),
    }
}

/// Compares `schema` with the stored one and stores it unless it is current.
/// The caller rebuilds the indexes when the answer is not `Current`.
pub(crate) fn check_write(txn: &WriteTxn<'_>, schema: &Schema) -> Result<SchemaState> {
    let mut meta = txn.open(SCHEMA_TABLE)?;
    let state = match meta.get(schema.table.as_bytes()).map_err(meta_error)? {
        Some(stored) => compare(schema, stored.bytes())?,
        None => SchemaState::Missing,
    };
    if state != SchemaState::Current {
        meta.insert(schema.table.as_bytes(), stored_form(schema).as_bytes())
            .map_err(meta_error)?;
    }
    Ok(state)
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

    /// Trusts `schema`, and no longer any other schema of its table: a table
    /// stores one.
    pub(crate) fn trust(&self, schema: &Schema) {
        let mut trusted = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        trusted.retain(|other| other.table != schema.table);
        trusted.push(*schema);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEXES: &[IndexDef] = &[IndexDef {
        name: "email",
        table: "__index:users:email",
        unique: true,
        description: "index email unique (email: String)",
    }];
    const WITH_INDEX: Schema = Schema {
        table: "users",
        description: "users v1 key(id) fields(id: u64, email: String)",
        indexes: INDEXES,
    };

    #[test]
    fn stored_schemas_compare_layout_then_indexes() {
        let stored = stored_form(&WITH_INDEX);
        assert_eq!(
            compare(&WITH_INDEX, stored.as_bytes()).unwrap(),
            SchemaState::Current
        );
        let without = Schema {
            indexes: &[],
            ..WITH_INDEX
        };
        assert_eq!(
            compare(&without, stored.as_bytes()).unwrap(),
            SchemaState::IndexesChanged {
                stored: vec!["email".into()]
            }
        );
        assert_eq!(
            compare(&WITH_INDEX, without.description.as_bytes()).unwrap(),
            SchemaState::IndexesChanged { stored: vec![] }
        );
        let other = Schema {
            description: "users v2 key(id) fields(id: u64)",
            ..WITH_INDEX
        };
        assert!(matches!(
            compare(&other, stored.as_bytes()),
            Err(Error::SchemaMismatch { .. })
        ));
    }

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
