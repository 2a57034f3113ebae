//! Looking after a database: [`Storage::verify`] and [`Storage::repair`],
//! the index scrub.

use core::fmt;

use crate::error::Result;
use crate::index::{self, RecordInfo};
use crate::record::StoredRecord;
use crate::storage::Storage;
use crate::table::{ReadTable, TableName, Txn};

/// What [`Storage::verify`] found in one record table and its indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The record table.
    pub table: String,
    /// Records in it.
    pub records: u64,
    /// Records whose bytes are not a valid archive of the record type.
    pub corrupt: Findings,
    /// One report per index of the record type.
    pub indexes: Vec<IndexReport>,
}

/// What [`Storage::verify`] found in one index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexReport {
    /// The index.
    pub index: String,
    /// Whether it is built. An index that is not built is not checked: its
    /// queries fail ([`Error::IndexNotBuilt`](crate::Error::IndexNotBuilt),
    /// [`Error::UniqueIndexConflict`](crate::Error::UniqueIndexConflict)).
    pub built: bool,
    /// Entries in its table.
    pub entries: u64,
    /// Entries naming a record that does not exist.
    pub dangling: Findings,
    /// Entries naming a record that does not hold their value.
    pub mismatched: Findings,
    /// Records with a value for the index and no entry for it.
    pub missing: Findings,
    /// Records holding a value of a unique index that another record's
    /// entry holds: the index is no longer unique in the data.
    pub duplicates: Findings,
}

/// Findings of one kind: how many, and the first of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// How many there are.
    pub count: u64,
    /// The first [`Findings::SHOWN`] of them.
    pub first: Vec<Finding>,
}

/// One bad record or index entry, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The record's key.
    pub key: String,
    /// The index value concerned, if any.
    pub value: Option<String>,
}

impl Findings {
    /// How many findings of one kind a report lists.
    pub const SHOWN: usize = 100;

    pub(crate) fn push(&mut self, key: String, value: Option<String>) {
        self.count += 1;
        if self.first.len() < Self::SHOWN {
            self.first.push(Finding { key, value });
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl IndexReport {
    /// Whether the index agrees with the records exactly.
    pub fn is_clean(&self) -> bool {
        self.dangling.is_empty()
            && self.mismatched.is_empty()
            && self.missing.is_empty()
            && self.duplicates.is_empty()
    }
}

impl VerifyReport {
    /// Whether every record validates and every built index is exact.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.indexes.iter().all(IndexReport::is_clean)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "record {} (value {value})", self.key),
            None => write!(f, "record {}", self.key),
        }
    }
}

fn list(f: &mut fmt::Formatter<'_>, what: &str, findings: &Findings) -> fmt::Result {
    if findings.is_empty() {
        return Ok(());
    }
    write!(f, "\n  {} {what}:", findings.count)?;
    for finding in &findings.first {
        write!(f, " {finding};")?;
    }
    if findings.count > findings.first.len() as u64 {
        write!(f, " ..")?;
    }
    Ok(())
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_clean() { "clean" } else { "PROBLEMS" };
        write!(
            f,
            "table `{}`: {} records, {verdict}",
            self.table, self.records
        )?;
        list(f, "corrupt records", &self.corrupt)?;
        for index in &self.indexes {
            let state = if index.built { "" } else { " (not built)" };
            write!(
                f,
                "\n index `{}`{state}: {} entries",
                index.index, index.entries
            )?;
            list(f, "dangling entries", &index.dangling)?;
            list(f, "mismatched entries", &index.mismatched)?;
            list(f, "missing entries", &index.missing)?;
            list(f, "duplicate values", &index.duplicates)?;
        }
        Ok(())
    }
}

impl Storage {
    /// Walks the records of `R` and every built index of it, in one
    /// snapshot, and reports what disagrees: records that do not validate,
    /// index entries naming no record or a record without their value,
    /// records missing from an index, and unique values held twice. Keys
    /// and values are shown decoded.
    ///
    /// Writes through this crate keep indexes exact; what this finds was
    /// done behind its back (a damaged file, another program writing redb).
    /// [`repair`](Self::repair) rebuilds the indexes.
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// # use storage::StoredRecord;
    /// #[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    /// struct User {
    ///     #[key]
    ///     id: u64,
    ///     #[index(unique)]
    ///     email: String,
    /// }
    /// let storage = storage::Storage::in_memory()?;
    /// storage.records::<User>().insert(&User { id: 1, email: "a@x".into() })?;
    /// let report = storage.verify::<User>()?;
    /// assert!(report.is_clean(), "{report}");
    /// assert_eq!(report.indexes[0].entries, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn verify<R: StoredRecord>(&self) -> Result<VerifyReport> {
        self.read(|tx| {
            let table = ReadTable::<R::Key, R>::new(
                Txn::Read(tx),
                TableName::of::<R>(),
                Some(RecordInfo::of()),
            );
            table.with_opened(|opened| {
                let mut indexes = Vec::new();
                for i in 0..R::SCHEMA.indexes.len() {
                    indexes.push(table.index_table(i)?);
                }
                index::verify::<R>(opened.table.as_ref(), &indexes, opened.kept)
            })
        })
    }

    /// Verifies `R`'s table like [`verify`](Self::verify), and if an index
    /// disagrees with the records, rebuilds every index of `R` (in a write
    /// transaction of its own). Returns what was found before the repair.
    /// Records that do not validate are reported, not changed. A unique index
    /// that two records hold one value of cannot be rebuilt: the other
    /// indexes are, and then [`Error::UniqueIndexConflict`](crate::Error::UniqueIndexConflict)
    /// names the records.
    pub fn repair<R: StoredRecord>(&self) -> Result<VerifyReport> {
        let report = self.verify::<R>()?;
        if report.indexes.iter().any(|i| !i.is_clean()) {
            self.rebuild_indexes::<R>()?;
        }
        Ok(report)
    }
}
