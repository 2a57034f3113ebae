//! [`StoredRecord`]: what `#[derive(StoredRecord)]` implements.

use crate::key::{AsKey, FromKeyBytes, KeyBuf};
use crate::schema::Schema;
use crate::value::StoredValue;

/// A record type with its own table, key, schema and secondary indexes.
///
/// Implement it with `#[derive(StoredRecord)]` rather than by hand: the derive
/// generates the table name, the key type from the `#[key]` fields, the key
/// extractor, the index extractors, accessors on the archived record and the
/// schema description, and rejects at compile time what can never work. Use
/// it through [`Storage::records`](crate::Storage::records) and the same method
/// on transactions.
pub trait StoredRecord: StoredValue {
    /// The owned key type: the `#[key]` field's type, or a tuple of the
    /// `#[key]` fields' types in field order.
    type Key: FromKeyBytes;

    /// A borrowed view of the key, encoded without copying the record's fields.
    type KeyRef<'a>: AsKey<Self::Key>
    where
        Self: 'a;

    /// The table name, layout description and index definitions.
    const SCHEMA: &'static Schema;

    /// The record's key, borrowed from its fields.
    fn key_ref(&self) -> Self::KeyRef<'_>;

    /// The record's key, owned.
    fn key(&self) -> Self::Key;

    /// Appends the key-part encoding of the value `self` has for index
    /// number `index` of [`Schema::indexes`]; returns `false` (writing
    /// nothing) when the record has no value for it (an `Option` field that
    /// is `None`).
    fn index_value(&self, index: usize, out: &mut KeyBuf) -> bool {
        let _ = (index, out);
        false
    }

    /// Like [`index_value`](Self::index_value), on the archived record.
    fn archived_index_value(archived: &Self::Archived, index: usize, out: &mut KeyBuf) -> bool {
        let _ = (archived, index, out);
        false
    }

    /// The encoded value `bytes` of index number `index`, shown decoded
    /// (`"a@x"`, `("NZ", 150)`) for error messages; hex if it does not decode.
    fn show_index_value(index: usize, bytes: &[u8]) -> String {
        let _ = index;
        crate::error::Hex(bytes).to_string()
    }
}
