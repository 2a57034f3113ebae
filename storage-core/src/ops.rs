//! Looking after a database: [`Storage::verify`] and [`Storage::repair`]
//! (the index scrub), [`Storage::compact`], [`Storage::stats`] and
//! [`Storage::backup_to`].

use core::fmt;

use core::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};

use crate::backend::{Direction, ReadTable as _, WriteTable as _};
use crate::error::{Error, Result};
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

/// What [`Storage::compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactReport {
    /// Whether redb rewrote anything.
    pub compacted: bool,
    /// The file's size before, and after (`None` in memory).
    pub bytes_before: Option<u64>,
    /// The file's size after.
    pub bytes_after: Option<u64>,
}

impl CompactReport {
    /// The bytes the file shrank by.
    pub fn reclaimed(&self) -> u64 {
        match (self.bytes_before, self.bytes_after) {
            (Some(before), Some(after)) => before.saturating_sub(after),
            _ => 0,
        }
    }
}

/// What a table of the database is, from its name and the schema rows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableKind {
    /// The records of a record type.
    Records {
        /// The record type's path.
        record: String,
        /// Its schema version.
        version: u32,
    },
    /// A secondary index of a record table.
    Index {
        /// The record table.
        table: String,
        /// The index.
        index: String,
    },
    /// The durable change log of a record table.
    ChangeLog {
        /// The record table.
        table: String,
    },
    /// The schema rows.
    Schema,
    /// A migration's staging table, left by nothing that committed.
    Staging,
    /// A table written by name (`storage.table::<K, V>(name)`).
    Named,
}

/// One table in [`Stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableStats {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: TableKind,
    /// Its entries.
    pub entries: u64,
    /// The bytes of its keys.
    pub key_bytes: u64,
    /// The bytes of its values.
    pub value_bytes: u64,
}

/// What [`Storage::stats`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The file's size (`None` in memory and on etcd).
    pub file_bytes: Option<u64>,
    /// The bytes of the pages redb has allocated (redb, not read-only).
    pub allocated_bytes: Option<u64>,
    /// Of those, the bytes lost to fragmentation: what
    /// [`compact`](Storage::compact) can give back.
    pub fragmented_bytes: Option<u64>,
    /// Every table, in name order.
    pub tables: Vec<TableStats>,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.file_bytes {
            Some(file) => write!(f, "file {file} bytes")?,
            None => write!(f, "no file")?,
        }
        match (self.allocated_bytes, self.fragmented_bytes) {
            (Some(allocated), Some(fragmented)) => writeln!(
                f,
                ", {allocated} bytes allocated, {} free, {fragmented} fragmented",
                self.file_bytes
                    .unwrap_or(allocated)
                    .saturating_sub(allocated)
            )?,
            _ => writeln!(
                f,
                " (allocation not known: opened without the integrity check, or a write was running)"
            )?,
        }
        for t in &self.tables {
            writeln!(
                f,
                "{}: {} entries, {} key bytes, {} value bytes",
                t.name, t.entries, t.key_bytes, t.value_bytes
            )?;
        }
        Ok(())
    }
}

/// What [`Storage::backup_to`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// The backup file.
    pub path: PathBuf,
    /// The tables copied.
    pub tables: usize,
    /// The entries copied.
    pub entries: u64,
    /// The bytes of keys and values copied.
    pub bytes: u64,
}

/// What the table `name` is, given the schema rows.
pub(crate) fn kind(name: &str, record_of: impl Fn(&str) -> Option<(String, u32)>) -> TableKind {
    if name == crate::schema::SCHEMA_TABLE {
        return TableKind::Schema;
    }
    if let Some(rest) = name.strip_prefix("__index:")
        && let Some((table, index)) = rest.rsplit_once(':')
    {
        return TableKind::Index {
            table: table.to_owned(),
            index: index.to_owned(),
        };
    }
    if let Some(table) = name.strip_prefix("__changes:") {
        return TableKind::ChangeLog {
            table: table.to_owned(),
        };
    }
    if name.starts_with("__migrate:") {
        return TableKind::Staging;
    }
    match record_of(name) {
        Some((record, version)) => TableKind::Records { record, version },
        None => TableKind::Named,
    }
}

/// Entries copied to a backup per write transaction.
const BACKUP_BATCH: usize = 10_000;

impl Storage {
    /// Compacts the database file, giving back the space that deleted and
    /// replaced records left (redb's files only grow otherwise), and says
    /// by how much. Needs the storage to itself: while other handles of it
    /// are alive (clones, [`Table`](crate::Table)s,
    /// [`Changes`](crate::Changes), async handles), [`Error::Busy`] at once,
    /// never a wait; so does a transaction still open in redb.
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut storage = storage::Storage::new(dir.path().join("db.redb"))?;
    /// let blobs = storage.table::<u32, Vec<u8>>("blobs");
    /// blobs.put_batch((0..200u32).map(|i| (i, vec![7u8; 4096])))?;
    /// blobs.clear()?;
    /// drop(blobs);
    /// let report = storage.compact()?;
    /// assert!(report.reclaimed() > 0, "{report:?}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn compact(&mut self) -> Result<CompactReport> {
        let others = std::sync::Arc::strong_count(&self.shared) - 1;
        let shared = std::sync::Arc::get_mut(&mut self.shared).ok_or_else(|| Error::Busy {
            operation: "compact",
            reason: format!(
                "{others} other handle(s) of this storage are alive (clones, tables, change logs, async handles)"
            ),
        })?;
        let Some(redb) = shared.engine.redb_mut() else {
            return Err(Error::Busy {
                operation: "compact",
                reason: "an etcd cluster compacts itself (`etcdctl compact`, `etcdctl defrag`)"
                    .to_owned(),
            });
        };
        let size = |redb: &crate::backend::RedbBackend| {
            redb.path()
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
        };
        let bytes_before = size(redb);
        let compacted = redb.compact()?;
        let bytes_after = size(redb);
        Ok(CompactReport {
            compacted,
            bytes_before,
            bytes_after,
        })
    }

    /// Every table with its entries and the bytes of its keys and values
    /// (read in one snapshot), and the file's size, allocation and
    /// fragmentation.
    pub fn stats(&self) -> Result<Stats> {
        let redb = self.shared.engine.redb();
        let file_bytes = redb
            .and_then(|r| r.path())
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len());
        let allocation = match redb {
            Some(redb) => redb.allocation()?,
            None => None,
        };
        let tables = self.read(|tx| {
            let txn = tx.raw();
            let mut out = Vec::new();
            for name in txn.tables()? {
                let Some(table) = txn.table(&name)? else {
                    continue;
                };
                let (mut entries, mut key_bytes, mut value_bytes) = (0, 0, 0);
                let all = (Bound::Unbounded, Bound::Unbounded);
                table.scan(all, Direction::Forward, |key, value| {
                    entries += 1;
                    key_bytes += key.len() as u64;
                    value_bytes += value.len() as u64;
                    Ok(ControlFlow::Continue(()))
                })?;
                let kind = kind(&name, |table| {
                    let row = tx.row(table).ok().flatten()?;
                    Some((row.record.clone(), row.version))
                });
                out.push(TableStats {
                    name,
                    kind,
                    entries,
                    key_bytes,
                    value_bytes,
                });
            }
            Ok(out)
        })?;
        Ok(Stats {
            file_bytes,
            allocated_bytes: allocation.map(|(pages, size, _)| pages * size),
            fragmented_bytes: allocation.map(|(_, _, fragmented)| fragmented),
            tables,
        })
    }

    /// Copies the whole database, as of one snapshot, into a new redb file
    /// at `path`, while writers go on; the copy opens as a normal database
    /// (`Storage::new(path)`). A file already at `path` is never
    /// overwritten: [`Error::Open`]. From an etcd namespace, this is how to
    /// take it to a file.
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let storage = storage::Storage::in_memory()?;
    /// storage.put("notes", 1u32, &String::from("kept"))?;
    /// let report = storage.backup_to(dir.path().join("backup.redb"))?;
    /// assert_eq!(report.entries, 1);
    /// let copy = storage::Storage::new(&report.path)?;
    /// assert_eq!(copy.get::<String, _>("notes", 1u32, |s| s.to_string())?.as_deref(), Some("kept"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<BackupReport> {
        let path = path.as_ref().to_path_buf();
        // Created here, atomically: a file already there is never touched.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Open {
                    path,
                    source: "a file is already there; a backup never overwrites one".into(),
                });
            }
            Err(e) => {
                return Err(Error::Open {
                    path,
                    source: e.into(),
                });
            }
        }
        let options = crate::backend::redb::OpenOptions {
            durability: crate::backend::Durability::Immediate,
            check_integrity: true,
            cache_size: None,
            read_only: false,
        };
        let target = match crate::backend::RedbBackend::open(&path, options) {
            Ok(target) => target,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let copied = self.read(|tx| {
            let txn = tx.raw();
            let names = txn.tables()?;
            let (mut entries, mut bytes) = (0u64, 0u64);
            let mut chunk: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            let flush = |name: &str, chunk: &mut Vec<(Vec<u8>, Vec<u8>)>| {
                target.write_owned(|w| {
                    let table = crate::backend::WriteTxn::table(w, name)?;
                    for (key, value) in chunk.iter() {
                        table.insert(key, value)?;
                    }
                    Ok(())
                })?;
                chunk.clear();
                Ok::<(), Error>(())
            };
            for name in &names {
                let Some(table) = txn.table(name)? else {
                    continue;
                };
                // An empty table is copied too: it exists in the original.
                flush(name, &mut chunk)?;
                let all = (Bound::Unbounded, Bound::Unbounded);
                table.scan(all, Direction::Forward, |key, value| {
                    entries += 1;
                    bytes += (key.len() + value.len()) as u64;
                    chunk.push((key.to_vec(), value.to_vec()));
                    if chunk.len() >= BACKUP_BATCH {
                        flush(name, &mut chunk)?;
                    }
                    Ok(ControlFlow::Continue(()))
                })?;
                flush(name, &mut chunk)?;
            }
            Ok((names.len(), entries, bytes))
        });
        drop(target);
        match copied {
            Ok((tables, entries, bytes)) => Ok(BackupReport {
                path,
                tables,
                entries,
                bytes,
            }),
            Err(e) => {
                // A partial copy is no backup.
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }
}
