//! The one error type of this crate.

use core::fmt;
use std::path::PathBuf;

/// A boxed error from a lower layer (rkyv, key decoding, a user's abort reason).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result with this crate's [`enum@Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything that can go wrong in `storage`.
///
/// Variants that concern a table name it; keys and index values are shown
/// decoded (`42`, `"a@x"`) wherever the type is known, in hex otherwise.
/// [`std::error::Error::source`] chains to the engine or rkyv error
/// underneath. A write transaction whose closure returns an error commits
/// nothing. An operation that fails inside a transaction leaves it as it was
/// before that operation, or, if even that cannot be (an index build or a
/// migration that failed or panicked part-way), marks it so that it cannot
/// commit ([`Error::Incomplete`]).
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
        /// What the engine reported.
        #[source]
        source: BoxError,
    },

    /// The file is a database, but its integrity check failed on open: its
    /// pages are not what redb last wrote. Nothing was changed.
    #[error("the database file {} is damaged (its integrity check failed): restore it from a backup; `check_integrity(false)` opens it to read what is still readable, at the risk of a panic inside redb", .path.display())]
    Damaged {
        /// The file that was being opened.
        path: PathBuf,
        /// What the engine reported.
        #[source]
        source: BoxError,
    },

    /// The database could not be opened for another reason (permissions, I/O,
    /// an old file format).
    #[error("cannot open database {}", .path.display())]
    Open {
        /// The file that was being opened.
        path: PathBuf,
        /// What the engine reported.
        #[source]
        source: BoxError,
    },

    /// Bytes stored under a key are not a valid record of the expected type,
    /// the key bytes themselves do not decode, or an index entry disagrees
    /// with the record it names: the file was damaged, or written by
    /// something else.
    #[error("table `{table}`: corrupt {part} under key {shown}")]
    Corrupt {
        /// The table holding the bad entry (an index table for index entries).
        table: String,
        /// The raw key bytes of the bad entry.
        key: Vec<u8>,
        /// The key, decoded where it decodes, in hex otherwise.
        shown: String,
        /// What is bad: `"value"`, `"key"`, `"index entry"` or `"schema"`.
        part: &'static str,
        /// Why it was rejected.
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

    /// A key or value is larger than the engine can store.
    #[error("table `{table}`: entry of {len} bytes exceeds the engine's size limit")]
    TooLarge {
        /// The table being written.
        table: String,
        /// The size that was refused.
        len: usize,
    },

    /// The record type bound to a table does not match the schema the table
    /// was written with: its layout (down to nested types), its key fields
    /// or the rkyv format differ. Nothing is read or written.
    #[error(
        "table `{table}`: the record type's layout is not the one the table was written with; first difference {}\n  stored:   {}\n  expected: {}\n{}",
        .details.difference, .details.stored, .details.expected, .details.hint
    )]
    SchemaMismatch {
        /// The table whose schema differs.
        table: String,
        /// Both schemas, where they differ, and what to do.
        details: Box<SchemaDifference>,
    },

    /// The table's stored schema is in a format this release does not read.
    #[error(
        "table `{table}`: its schema is stored in {found}, which this release of storage cannot read; open it with the release that wrote it and copy the records out"
    )]
    UnsupportedFormat {
        /// The table.
        table: String,
        /// The format found.
        found: String,
    },

    /// A write would give a unique index a second record with the same value.
    /// Nothing of that write was applied.
    #[error(
        "table `{table}`: unique index `{index}` already holds {value} (the record with key {existing}); nothing was written"
    )]
    UniqueViolation {
        /// The record table.
        table: String,
        /// The index.
        index: String,
        /// The indexed value, decoded.
        value: String,
        /// The key of the record that holds the value, decoded.
        existing: String,
    },

    /// A unique index cannot be built because two stored records hold the
    /// same value: it was added to a record type whose table already has
    /// duplicates. Every other operation keeps working; delete or change one
    /// of the two records, and the next write transaction that writes the
    /// table builds the index.
    #[error(
        "table `{table}`: unique index `{index}` cannot be built: the records with keys {} and {} both hold {value}; delete or change one of them, and the next write to the table builds the index",
        .keys[0], .keys[1]
    )]
    UniqueIndexConflict {
        /// The record table.
        table: String,
        /// The index.
        index: String,
        /// The value held twice, decoded.
        value: String,
        /// The keys of two records holding it, decoded.
        keys: Box<[String; 2]>,
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

    /// A write by table name (or of raw bytes) into a table that belongs to a
    /// record type: such a write would skip the record type's indexes, so it
    /// is refused and nothing is written. Reads by name stay allowed.
    #[error(
        "table `{table}` holds records of `{record}` (its schema is stored): write it through `records::<{}>()`, which keeps its indexes; by-name writes are refused",
        short_name(.record)
    )]
    TableOwned {
        /// The table.
        table: String,
        /// The record type the table's stored schema names.
        record: String,
    },

    /// A table was used a second time in one transaction while the first use
    /// is still running (from inside a read closure of the same table).
    #[error(
        "table `{table}` is already in use in this transaction; finish the read that is running on it first"
    )]
    TableInUse {
        /// The table.
        table: String,
    },

    /// `put` on a record table with a key that is not the record's own key.
    #[error(
        "table `{table}`: `put` under key {given} of a record whose key is {record}; use `insert`, which takes the key from the record"
    )]
    KeyMismatch {
        /// The record table.
        table: String,
        /// The key given, decoded.
        given: String,
        /// The record's own key, decoded.
        record: String,
    },

    /// A key that must be new is already taken: two old records converted to
    /// one key in a migration.
    #[error("table `{table}`: key {key} is already there; nothing was written")]
    KeyExists {
        /// The table.
        table: String,
        /// The key, decoded.
        key: String,
    },

    /// Key text that is not a key of the table (`storage-inspect get`).
    #[error("table `{table}`: {key:?} is not a key: {reason}")]
    BadKey {
        /// The table.
        table: String,
        /// The text given (its start).
        key: String,
        /// Why.
        reason: String,
    },

    /// A write to a storage opened read-only
    /// ([`StorageBuilder::read_only`](crate::StorageBuilder::read_only)).
    #[error("the storage is open read-only: nothing was written")]
    ReadOnly,

    /// An operation that needs the storage to itself found it in use.
    #[error("cannot {operation} now: {reason}")]
    Busy {
        /// What was asked.
        operation: &'static str,
        /// What is in the way.
        reason: String,
    },

    /// A listing's cursor that is not one [`Cursor`](crate::Cursor)'s text.
    #[error("not a cursor: {cursor:?} (a cursor is the hex text `Page::next` shows)")]
    BadCursor {
        /// The text given (its start).
        cursor: String,
    },

    /// An item of a batch failed, so none of the batch was written (the rest
    /// of the transaction is as it was before the batch).
    #[error("table `{table}`: item {item} of the batch failed, so none of the batch was written")]
    Batch {
        /// The table of the batch.
        table: String,
        /// The position of the failed item, from 1.
        item: usize,
        /// Why that item failed.
        #[source]
        source: Box<Error>,
    },

    /// [`Changes::since`](crate::Changes::since) asked for changes after
    /// `after`, but the log was trimmed and keeps them from `first` on:
    /// the changes between are gone.
    #[error(
        "table `{table}`: the change log was trimmed: changes after {after} were asked for, the first kept is {first}"
    )]
    ChangesTrimmed {
        /// The record table.
        table: String,
        /// The position asked for.
        after: u64,
        /// The first sequence number kept.
        first: u64,
    },

    /// An operation inside the transaction failed (or panicked) after it had
    /// changed what a savepoint cannot undo (an index build, a migration), or
    /// undoing a failed write failed. The transaction cannot commit and was
    /// rolled back, even though the closure handled that error (or caught
    /// the panic) and returned `Ok`.
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

    /// A closure run in a transaction panicked: a write transaction was
    /// rolled back; a read (or a task of `AsyncStorage`, feature `tokio`)
    /// just ended.
    #[error("{}", panicked(.tables, .message))]
    Panicked {
        /// Tables the write transaction had opened before the panic; empty
        /// for a read.
        tables: Vec<String>,
        /// The panic message.
        message: String,
    },

    /// The write closure aborted the transaction with a reason of its own
    /// (see [`Error::abort`]). The transaction was rolled back.
    #[error("transaction aborted: {0}")]
    Aborted(#[source] BoxError),

    /// A distributed engine found, at every attempt, that another commit had
    /// changed what the transaction read; nothing was written.
    #[error(
        "transaction conflicted with concurrent commits {attempts} times in a row; nothing was written"
    )]
    Conflict {
        /// How many times the transaction ran.
        attempts: u32,
    },

    /// A distributed engine did not answer within its timeout, or has no
    /// quorum. Nothing was written — except that for a commit whose answer
    /// was lost (`outcome_unknown`), the commit may have been applied: read
    /// to find out before doing it again.
    #[error(
        "the cluster did not answer a {operation} within {timeout:?} (no endpoint reached, or no leader){}",
        if *.outcome_unknown { "; the commit may have been applied" } else { "; nothing was written" }
    )]
    Unavailable {
        /// What was asked: `"read"`, `"commit"`, `"status"`, ..
        operation: &'static str,
        /// How long it waited.
        timeout: std::time::Duration,
        /// A commit was sent and its answer lost.
        outcome_unknown: bool,
        /// The last error of the cluster, if one arrived.
        #[source]
        source: Option<BoxError>,
    },

    /// A request went over a limit of a distributed engine (etcd's
    /// `--max-txn-ops`, `--max-request-bytes` or `--quota-backend-bytes`).
    /// Nothing was written.
    #[error("the transaction exceeds the cluster's `{limit}` ({detail}); nothing was written")]
    LimitExceeded {
        /// The limit, by the name of the server's flag.
        limit: &'static str,
        /// What the server said.
        detail: String,
    },

    /// The storage engine failed.
    #[error("storage engine error{}", TableContext(.table))]
    Backend {
        /// The table being accessed, when the error concerns one.
        table: Option<String>,
        /// What the engine reported.
        #[source]
        source: BoxError,
    },
}

/// The two sides of an [`Error::SchemaMismatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaDifference {
    /// The stored schema: record type, version, key and layout.
    pub stored: String,
    /// The schema of the record type in this program.
    pub expected: String,
    /// Where the two first differ.
    pub difference: String,
    /// What to do: migrate, or bump the version.
    pub hint: String,
}

/// `User` of `app::models::User`.
fn short_name(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path)
}

/// The message of [`Error::Panicked`].
fn panicked(tables: &[String], message: &str) -> String {
    if tables.is_empty() {
        format!("a closure panicked, nothing was written: {message}")
    } else {
        format!(
            "write transaction panicked and was rolled back (tables touched: {}): {message}",
            tables.join(", ")
        )
    }
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

    /// The error underneath [`Error::Batch`] wrappers: what actually failed.
    pub fn root(&self) -> &Error {
        match self {
            Error::Batch { source, .. } => source.root(),
            other => other,
        }
    }

    /// The table this error concerns, if it concerns one.
    pub fn table(&self) -> Option<&str> {
        match self {
            Error::Corrupt { table, .. }
            | Error::Encode { table, .. }
            | Error::TooLarge { table, .. }
            | Error::SchemaMismatch { table, .. }
            | Error::UnsupportedFormat { table, .. }
            | Error::InvalidTableName { table, .. }
            | Error::UniqueViolation { table, .. }
            | Error::UniqueIndexConflict { table, .. }
            | Error::IndexNotBuilt { table, .. }
            | Error::TableOwned { table, .. }
            | Error::KeyMismatch { table, .. }
            | Error::KeyExists { table, .. }
            | Error::Batch { table, .. }
            | Error::Incomplete { table }
            | Error::ChangesTrimmed { table, .. }
            | Error::BadKey { table, .. }
            | Error::TableInUse { table } => Some(table),
            Error::Backend { table, .. } => table.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn corrupt(
        table: &str,
        key: &[u8],
        shown: String,
        part: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Corrupt {
            table: table.to_owned(),
            key: key.to_vec(),
            shown,
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
    fn errors_stay_small() {
        // Large enough errors trip clippy's `result_large_err` in users' code.
        assert!(size_of::<Error>() <= 104, "{}", size_of::<Error>());
    }

    #[test]
    fn hex_shortens_long_keys() {
        assert_eq!(Hex(&[0, 0xab]).to_string(), "0x00ab");
        let long = Hex(&[1; 40]).to_string();
        assert!(long.ends_with("… (40 bytes)"), "{long}");
    }

    #[test]
    fn corrupt_names_table_and_key() {
        let error = Error::corrupt("users", &[0, 1], Hex(&[0, 1]).to_string(), "value", "bad");
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
