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
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// `size_of` and `align_of` the archived record: a change in a nested
    /// type shows here even when the record's own fields read the same.
    pub archived_layout: (usize, usize),
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
    } else if table.chars().any(char::is_control) {
        "table names must not contain control characters"
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
    let mut out = layout_line(schema);
    for index in schema.indexes {
        out.push('\n');
        out.push_str(index.description);
    }
    out
}

/// The first stored line: the record's description, its archived size and
/// alignment, and the rkyv format this build writes (byte order and the
/// width of archived `usize`, which rkyv's global features change for the
/// whole program).
fn layout_line(schema: &Schema) -> String {
    let (size, align) = schema.archived_layout;
    format!(
        "{} archived({size}, {align}) format({})",
        schema.description,
        rkyv_format()
    )
}

fn rkyv_format() -> String {
    let one = rkyv::to_bytes::<rkyv::rancor::Failure>(&1u32);
    let order = match one.as_deref() {
        Ok([1, ..]) => "le",
        Ok(_) => "be",
        Err(_) => "unknown",
    };
    format!("{order}, usize{}", size_of::<rkyv::Archived<usize>>() * 8)
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
    let expected = layout_line(schema);
    if layout != expected {
        return Err(Error::SchemaMismatch {
            table: schema.table.to_owned(),
            stored: layout.to_owned(),
            expected,
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

/// Compares `schema` with the one stored in the write transaction.
pub(crate) fn check_write(txn: &WriteTxn<'_>, schema: &Schema) -> Result<SchemaState> {
    let meta = txn.open(SCHEMA_TABLE)?;
    match meta.get(schema.table.as_bytes()).map_err(meta_error)? {
        Some(stored) => compare(schema, stored.bytes()),
        None => Ok(SchemaState::Missing),
    }
}

/// Stores `schema` as the table's, once its indexes are built.
pub(crate) fn store(txn: &WriteTxn<'_>, schema: &Schema) -> Result<()> {
    let mut meta = txn.open(SCHEMA_TABLE)?;
    meta.insert(schema.table.as_bytes(), stored_form(schema).as_bytes())
        .map_err(meta_error)
}

/// Checks that the index tables of `schema` have the reserved names
/// `__index:{table}:{index}`, so that rebuilding them can only ever delete
/// index tables.
pub(crate) fn check_index_tables(schema: &Schema) -> Result<()> {
    for index in schema.indexes {
        if index.table != crate::index::index_table_name(schema.table, index.name) {
            return Err(Error::InvalidTableName {
                table: index.table.to_owned(),
                reason: "an index table must be named `__index:{table}:{index}`",
            });
        }
    }
    Ok(())
}

/// Schemas this process has seen match the database, so later transactions
/// skip the metadata lookup.
///
/// A write transaction trusts the schemas it checked or stored when it
/// commits, still holding the writer slot. A read transaction trusts a
/// schema it found current only if no schema was stored since its snapshot
/// was taken (the `generation` counts commits that stored one), so an old
/// snapshot cannot bring back a schema a later commit replaced.
#[derive(Debug, Default)]
pub(crate) struct TrustedSchemas {
    trusted: RwLock<Vec<Schema>>,
    generation: AtomicU64,
}

impl TrustedSchemas {
    pub(crate) fn trusts(&self, schema: &Schema) -> bool {
        let trusted = self
            .trusted
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        trusted.contains(schema)
    }

    /// How many commits have stored a schema.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Trusts `schema` if no schema was stored since `generation`.
    pub(crate) fn trust_since(&self, schema: &Schema, generation: u64) {
        let mut trusted = self
            .trusted
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.generation() == generation {
            trusted.retain(|other| other.table != schema.table);
            trusted.push(*schema);
        }
    }

    /// After a commit that stored `stored` (and checked `checked`): a new
    /// generation, and those schemas trusted.
    pub(crate) fn committed(&self, stored: &[&'static Schema], checked: &[&'static Schema]) {
        let mut trusted = self
            .trusted
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !stored.is_empty() {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        for schema in checked.iter().chain(stored) {
            trusted.retain(|other| other.table != schema.table);
            trusted.push(**schema);
        }
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
        archived_layout: (40, 8),
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
            compare(&WITH_INDEX, layout_line(&without).as_bytes()).unwrap(),
            SchemaState::IndexesChanged { stored: vec![] }
        );
        let resized = Schema {
            archived_layout: (48, 8),
            ..WITH_INDEX
        };
        assert!(matches!(
            compare(&resized, stored.as_bytes()),
            Err(Error::SchemaMismatch { .. })
        ));
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
