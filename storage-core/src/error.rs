//! The one error type of this crate.

use core::fmt;
use std::path::PathBuf;

/// A boxed error from a lower layer (rkyv, key decoding, a user's abort reason).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result with this crate's [`enum@Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything that can go wrong in `storage`.
///
/// Variants that concern a table name it; [`std::error::Error::source`] chains
/// to the redb or rkyv error underneath. A write transaction whose closure
/// returns an error commits nothing. An operation that fails inside a
/// transaction leaves it as it was before that operation, or, if it failed
/// after changing part of it, marks it so that it cannot commit
/// ([`Error::Incomplete`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database file is locked by another [`Storage`](crate::Storage) (in this
    /// or another process).
    #[error("database {} is already open elsewhere (locked); close the other handle or share one `Storage`", .path.display())]
    AlreadyOpen {
        /// The file that was being opened.
        path: PathBuf,
    },

    /// The file exists but is not a redb database.
    #[error("{} is not a redb database", .path.display())]
    NotADatabase {
        /// The file that was being opened.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: redb::DatabaseError,
    },

    /// The database could not be opened for another reason (permissions, I/O,
    /// a failed integrity check, an old file format).
    #[error("cannot open database {}", .path.display())]
    Open {
        /// The file that was being opened.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: redb::DatabaseError,
    },

    /// Bytes stored under a key are not a valid record of the expected type,
    /// or the key bytes themselves do not decode: the file was damaged, or
    /// written by something else.
    #[error("table `{table}`: corrupt {part} under key {}", Hex(.key))]
    Corrupt {
        /// The table holding the bad entry.
        table: String,
        /// The raw key bytes of the bad entry.
        key: Vec<u8>,
        /// What is bad: `"value"`, `"key"`, or `"index entry"` (an index
        /// entry naming a record that is not there).
        part: &'static str,
        /// Why validation rejected it.
        #[source]
        source: BoxError,
    },

    /// A value could not be serialized.
    #[error("table `{table}`: cannot serialize value")]
    Encode {
        /// The table being written.
        table: String,
        /// What rkyv reported.
        #[source]
        source: BoxError,
    },

    /// A key or value is larger than redb can store.
    #[error("table `{table}`: entry of {len} bytes exceeds redb's size limit")]
    TooLarge {
        /// The table being written.
        table: String,
        /// The size that was refused.
        len: usize,
    },

    /// The record type bound to a table does not match the schema the table
    /// was written with.
    #[error(
        "table `{table}`: the record type has changed since the table was written\n  stored:   {stored}\n  expected: {expected}\nbump `#[stored(version = ..)]` and migrate, or bind the new type to a new table"
    )]
    SchemaMismatch {
        /// The table whose schema differs.
        table: String,
        /// The schema description stored in the database.
        stored: String,
        /// The schema description of the record type in this program.
        expected: String,
    },

    /// A write would give a unique index a second record with the same value.
    /// Nothing of that write was applied.
    #[error(
        "table `{table}`: unique index `{index}` already has value {} (the record with key {}); nothing was written",
        Hex(.value),
        Hex(.existing_key)
    )]
    UniqueViolation {
        /// The record table.
        table: String,
        /// The index.
        index: String,
        /// The indexed value, key-encoded.
        value: Vec<u8>,
        /// The key of the record that holds the value.
        existing_key: Vec<u8>,
    },

    /// An index was queried that is not built for the current record type
    /// yet (it was added to the struct since the table was last written).
    #[error(
        "table `{table}`: index `{index}` is not built yet; write to the table once or call `Storage::rebuild_indexes`"
    )]
    IndexNotBuilt {
        /// The record table.
        table: String,
        /// The index.
        index: String,
    },

    /// A table name that cannot be used.
    #[error("invalid table name `{table}`: {reason}")]
    InvalidTableName {
        /// The name that was refused.
        table: String,
        /// Why.
        reason: &'static str,
    },

    /// A table was opened a second time in one write transaction while the
    /// first handle is still alive.
    #[error(
        "table `{table}` is already open in this write transaction; reuse the open handle or drop it first"
    )]
    TableInUse {
        /// The table.
        table: String,
    },

    /// A write inside the transaction failed after it had changed part of
    /// what it had to change (a record's index entries, a rebuilt index). The
    /// transaction cannot commit and was rolled back, even though the closure
    /// handled that write's error and returned `Ok`.
    #[error(
        "table `{table}`: a write failed part-way, so the transaction was rolled back instead of committed"
    )]
    Incomplete {
        /// The table of the failed write.
        table: String,
    },

    /// A write transaction was started on a thread that is already inside a
    /// write transaction of the same [`Storage`](crate::Storage), which would deadlock.
    #[error(
        "nested write transaction on the same storage would deadlock; use the open transaction instead"
    )]
    NestedWrite,

    /// The write closure panicked. The transaction was rolled back.
    #[error("write transaction panicked and was rolled back (tables touched: {}): {message}", .tables.join(", "))]
    Panicked {
        /// Tables the transaction had opened before the panic.
        tables: Vec<String>,
        /// The panic message.
        message: String,
    },

    /// The write closure aborted the transaction with a reason of its own
    /// (see [`Error::abort`]). The transaction was rolled back.
    #[error("transaction aborted: {0}")]
    Aborted(#[source] BoxError),

    /// redb failed.
    #[error("storage engine error{}", TableContext(.table))]
    Backend {
        /// The table being accessed, when the error concerns one.
        table: Option<String>,
        /// What redb reported.
        #[source]
        source: redb::Error,
    },
}

impl Error {
    /// An error to return from a write closure to roll the transaction back
    /// with a reason of your own. Get the reason back with
    /// [`Error::abort_reason`].
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// let storage = storage::Storage::in_memory()?;
    /// let result: storage::Result<()> = storage.write(|tx| {
    ///     tx.table::<&str, u64>("balances").put("alice", &10)?;
    ///     Err(storage::Error::abort("insufficient funds"))
    /// });
    /// assert_eq!(result.unwrap_err().to_string(), "transaction aborted: insufficient funds");
    /// assert!(storage.table::<&str, u64>("balances").is_empty()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn abort(reason: impl Into<BoxError>) -> Self {
        Error::Aborted(reason.into())
    }

    /// The reason given to [`Error::abort`], if this is an abort.
    pub fn abort_reason(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Error::Aborted(reason) => Some(reason.as_ref()),
            _ => None,
        }
    }

    /// The table this error concerns, if it concerns one.
    pub fn table(&self) -> Option<&str> {
        match self {
            Error::Corrupt { table, .. }
            | Error::Encode { table, .. }
            | Error::TooLarge { table, .. }
            | Error::SchemaMismatch { table, .. }
            | Error::InvalidTableName { table, .. }
            | Error::UniqueViolation { table, .. }
            | Error::IndexNotBuilt { table, .. }
            | Error::Incomplete { table }
            | Error::TableInUse { table } => Some(table),
            Error::Backend { table, .. } => table.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn backend(table: Option<&str>, source: impl Into<redb::Error>) -> Self {
        let source = source.into();
        let table = table.map(str::to_owned);
        match source {
            redb::Error::TableAlreadyOpen(name, _) => Error::TableInUse { table: name },
            redb::Error::ValueTooLarge(len) => Error::TooLarge {
                table: table.unwrap_or_default(),
                len,
            },
            source => Error::Backend { table, source },
        }
    }

    pub(crate) fn corrupt(
        table: &str,
        key: &[u8],
        part: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Corrupt {
            table: table.to_owned(),
            key: key.to_vec(),
            part,
            source: source.into(),
        }
    }
}

struct TableContext<'a>(&'a Option<String>);

impl fmt::Display for TableContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(table) => write!(f, " on table `{table}`"),
            None => Ok(()),
        }
    }
}

/// Formats bytes as hex, shortened past 32 bytes.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        f.write_str("0x")?;
        for byte in self.0.iter().take(SHOWN) {
            write!(f, "{byte:02x}")?;
        }
        if self.0.len() > SHOWN {
            write!(f, "… ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_shortens_long_keys() {
        assert_eq!(Hex(&[0, 0xab]).to_string(), "0x00ab");
        let long = Hex(&[1; 40]).to_string();
        assert!(long.ends_with("… (40 bytes)"), "{long}");
    }

    #[test]
    fn corrupt_names_table_and_key() {
        let error = Error::corrupt("users", &[0, 1], "value", "bad");
        assert_eq!(
            error.to_string(),
            "table `users`: corrupt value under key 0x0001"
        );
        assert_eq!(error.table(), Some("users"));
        assert_eq!(
            std::error::Error::source(&error).map(|s| s.to_string()),
            Some("bad".into())
        );
    }
}
