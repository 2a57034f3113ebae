//! [`Storage::migrate`]: bringing a table's records from the version stored
//! to the record type's, through the chain of `#[stored(migrate_from = ..)]`.
//!
//! A migration runs in one write transaction: every record is read with the
//! type of its stored version, converted through each `From` of the chain,
//! and written to a new table under the key the new type gives it; the old
//! table and its indexes go, the new table takes the old name, the new
//! type's indexes are built and its schema stored. All of it commits
//! together or none of it does.

use core::ops::{Bound, ControlFlow};

use crate::backend::{Direction, ReadTable as _, WriteTable as _};
use crate::error::{Error, Result};
use crate::index::RecordInfo;
use crate::key::{self, IntoKeyBytes};
use crate::record::StoredRecord;
use crate::schema::{self, index_table};
use crate::storage::Storage;
use crate::txn::WriteTransaction;
use crate::value::ValueDeserializer;

/// What [`Storage::migrate`] did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// The table.
    pub table: String,
    /// The version the records were stored with.
    pub from_version: u32,
    /// The version they are stored with now.
    pub to_version: u32,
    /// How many records were converted (0 when the table was current).
    pub records: u64,
}

/// How often a migration reports its progress, in records.
const PROGRESS_EVERY: u64 = 4096;

impl Storage {
    /// Brings the records of `R`'s table from whatever version of the
    /// `migrate_from` chain is stored to `R`, rebuilds the indexes and
    /// stores `R`'s schema, in one write transaction: all or nothing. A
    /// table already at `R`'s version, or never written, is left alone.
    ///
    /// Errors: [`Error::SchemaMismatch`] if the stored version is not in
    /// `R`'s chain, [`Error::Corrupt`] for a record that does not read with
    /// its stored type, [`Error::KeyExists`] if two old records convert to
    /// one key. No migration runs by itself when a table is opened: an
    /// older table gives [`Error::SchemaMismatch`] naming this method, so
    /// that a migration, which rewrites a whole table, happens where the
    /// application decides (at startup, typically).
    ///
    /// ```
    /// use storage::{Storage, StoredRecord};
    ///
    /// #[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    /// #[stored(table = "users")]
    /// struct UserV1 {
    ///     #[key]
    ///     id: u64,
    ///     name: String,
    /// }
    ///
    /// #[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    /// #[stored(table = "users", version = 2, migrate_from = UserV1)]
    /// struct User {
    ///     #[key]
    ///     id: u64,
    ///     name: String,
    ///     #[index]
    ///     active: bool,
    /// }
    ///
    /// impl From<UserV1> for User {
    ///     fn from(old: UserV1) -> Self {
    ///         User { id: old.id, name: old.name, active: true }
    ///     }
    /// }
    ///
    /// # fn main() -> storage::Result<()> {
    /// let storage = Storage::in_memory()?;
    /// storage.records::<UserV1>().insert(&UserV1 { id: 1, name: "Ann".into() })?;
    /// assert!(matches!(storage.records::<User>().len(), Err(storage::Error::SchemaMismatch { .. })));
    /// let report = storage.migrate::<User>()?;
    /// assert_eq!((report.from_version, report.to_version, report.records), (1, 2, 1));
    /// assert_eq!(storage.records::<User>().get(1, |u| u.active())?, Some(true));
    /// # Ok(())
    /// # }
    /// ```
    pub fn migrate<R: StoredRecord>(&self) -> Result<MigrationReport>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        self.migrate_with::<R>(|_, _| {})
    }

    /// Like [`migrate`](Self::migrate), calling `progress(done, total)` as
    /// records are converted (every 4,096 records, and at the end).
    pub fn migrate_with<R: StoredRecord>(
        &self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<MigrationReport>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        self.write(|tx| tx.migrate_with::<R>(&mut progress))
    }
}

impl WriteTransaction<'_> {
    /// [`Storage::migrate`] inside this transaction: several record types
    /// migrate together, all or nothing.
    pub fn migrate<R: StoredRecord>(&self) -> Result<MigrationReport>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        self.migrate_with::<R>(|_, _| {})
    }

    /// [`Storage::migrate_with`] inside this transaction.
    pub fn migrate_with<R: StoredRecord>(
        &self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<MigrationReport>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        let schema = R::SCHEMA;
        let name = schema.table;
        schema::check_name(name)?;
        let report = |from_version, records| MigrationReport {
            table: name.to_owned(),
            from_version,
            to_version: schema.version,
            records,
        };
        let Some(row) = self.row(name)? else {
            return Ok(report(schema.version, 0));
        };
        if row.holds(schema) {
            return Ok(report(schema.version, 0));
        }
        let older = schema::chain(schema)
            .find(|older| row.holds(older))
            .ok_or_else(|| schema::mismatch(schema, &row))?;
        let txn = self.raw();
        let source = txn.table(name)?;
        let total = source.len()?;
        let staging = format!("__migrate:{name}");
        let done = self.all_or_nothing(name, || {
            txn.delete_table(&staging)?;
            let target = txn.table(&staging)?;
            let mut done = 0u64;
            let all = (Bound::Unbounded, Bound::Unbounded);
            source.scan(all, Direction::Forward, |key, bytes| {
                let record = R::__upgrade(older.version, bytes)
                    .unwrap_or_else(|| {
                        Err(format!("version {} is not in the chain", older.version).into())
                    })
                    .map_err(|e| {
                        Error::corrupt(name, key, R::__show_key(older.version, key), "value", e)
                    })?;
                let key_ref = record.key_ref();
                let new_key = key_ref.into_key_bytes();
                let clash = self.serialized(name, &record, |bytes| {
                    target.replace(new_key.as_ref(), bytes, |old| old.is_some())
                })?;
                if clash {
                    return Err(Error::KeyExists {
                        table: name.to_owned(),
                        key: key::show::<R::Key>(new_key.as_ref()),
                    });
                }
                done += 1;
                if done.is_multiple_of(PROGRESS_EVERY) {
                    progress(done, total);
                }
                Ok(ControlFlow::Continue(()))
            })?;
            progress(done, total);
            for index in &row.indexes {
                txn.delete_table(&index_table(name, &index.name))?;
            }
            txn.delete_table(name)?;
            txn.rename_table(&staging, name)?;
            crate::feed::restart_log(&txn, name)?;
            self.forget_row(name);
            Ok(done)
        })?;
        // Opening the table with `R` builds its indexes and stores its row.
        self.open(name, Some(&RecordInfo::<R>::of().meta))?;
        Ok(report(older.version, done))
    }
}
