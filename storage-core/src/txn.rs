//! Transactions: [`ReadTransaction`] and [`WriteTransaction`], and what they
//! decide when a table is opened: its schema, and the state of its indexes.
//!
//! Every decision comes from the transaction's own view of the database: the
//! rows a read transaction's snapshot holds, the rows a write transaction
//! holds with its own writes. The process-wide [`SchemaCache`] is consulted
//! only where it is known to describe that very view.

use core::cell::RefCell;
use std::any::Any;
use std::sync::Arc;

use crate::backend::{
    AnyRead, AnyTable, AnyWrite, Direction, ReadTable as _, Savepoint, WriteTable as _,
};
use crate::error::{Error, Result};
use crate::feed::{self, Arena, TableChanges};
use crate::index::{RecordInfo, RecordMeta, has};
use crate::key::IntoKeyBytes;
use crate::record::StoredRecord;
use crate::schema::{
    self, Catalog, IndexDef, Plan, Row, SCHEMA_TABLE, StoredRow, all_indexes, index_table,
};
use crate::storage::Shared;
use crate::table::{Opened, ReadTable, TableName, Txn, WriteBatch, WriteTable};
use crate::value::{self, StoredValue};

/// Reads the row stored for `table` in the schema table `meta`.
fn load_row(meta: Option<&AnyTable<'_>>, table: &str) -> Result<Row> {
    let Some(meta) = meta else { return Ok(None) };
    let row = meta.get(table.as_bytes(), |bytes| StoredRow::decode(table, bytes))?;
    Ok(row.transpose()?.map(Arc::new))
}

/// A consistent read-only snapshot of the database, from
/// [`Storage::read`](crate::Storage::read).
///
/// Open any number of tables in it with [`table`](Self::table) or
/// [`records`](Self::records); every read sees the database as it was when the
/// transaction began, whatever writers commit meanwhile.
pub struct ReadTransaction<'t> {
    shared: &'t Shared,
    txn: AnyRead<'t>,
    catalog: Catalog,
    /// The cache generation this snapshot matches, if it matches one.
    generation: Option<u64>,
}

impl<'t> ReadTransaction<'t> {
    pub(crate) fn new(shared: &'t Shared, txn: AnyRead<'t>, generation: Option<u64>) -> Self {
        Self {
            shared,
            txn,
            catalog: Catalog::default(),
            generation,
        }
    }

    pub(crate) fn raw(&self) -> AnyRead<'t> {
        self.txn
    }

    /// The schema row of `table` in this snapshot.
    pub(crate) fn row(&self, table: &str) -> Result<Row> {
        let cache = &self.shared.schemas;
        // A cached row at this snapshot's generation is this snapshot's row
        // for as long as the transaction lives: no need to keep it here.
        if let Some(generation) = self.generation
            && let Some(row) = cache.get(table, generation)
        {
            return Ok(row);
        }
        self.catalog.row(table, || {
            let row = load_row(self.txn.table(SCHEMA_TABLE)?.as_ref(), table)?;
            if let Some(generation) = self.generation {
                cache.insert(table, row.clone(), generation);
            }
            Ok(row)
        })
    }

    pub(crate) fn open(&self, name: &str, meta: Option<&RecordMeta>) -> Result<Opened<'t>> {
        schema::check_name(name)?;
        let table = self.txn.table(name)?;
        let kept = match meta {
            None => 0,
            Some(meta) => {
                let row = self.row(name)?;
                let plan = schema::plan(meta.schema, row.as_deref())?;
                if row.is_some() {
                    plan.built
                } else {
                    // Nothing written through a record type yet: its indexes
                    // are complete only if there is nothing to index.
                    let empty = match &table {
                        Some(table) => table.len()? == 0,
                        None => true,
                    };
                    if empty { all_indexes(meta.schema) } else { 0 }
                }
            }
        };
        Ok(Opened {
            table,
            kept,
            owner: None,
            version: 0,
        })
    }

    pub(crate) fn index_table(
        &self,
        meta: &RecordMeta,
        index: usize,
    ) -> Result<Option<AnyTable<'t>>> {
        let def = &meta.schema.indexes[index];
        self.txn.table(&index_table(meta.schema.table, def.name))
    }

    /// A handle on the table `name`, with keys of type `K` and values of type `V`.
    ///
    /// The table is opened on first use; a table that was never written reads
    /// as empty.
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// let storage = storage::Storage::in_memory()?;
    /// storage.put("scores", "alice", &10u32)?;
    /// let total = storage.read(|tx| {
    ///     let scores = tx.table::<&str, u32>("scores");
    ///     let mut total = 0;
    ///     for entry in scores.iter()? {
    ///         total += entry?.value().to_native();
    ///     }
    ///     Ok(total)
    /// })?;
    /// assert_eq!(total, 10);
    /// # Ok(())
    /// # }
    /// ```
    pub fn table<K: IntoKeyBytes, V: StoredValue>(&self, name: &str) -> ReadTable<'_, K, V> {
        ReadTable::new(Txn::Read(self), TableName::new(name), None)
    }

    /// A handle on the table of the record type `R`, keyed by its `#[key]`
    /// fields. The stored schema is checked against `R` when the table is opened.
    pub fn records<R: StoredRecord>(&self) -> ReadTable<'_, R::Key, R> {
        ReadTable::new(
            Txn::Read(self),
            TableName::of::<R>(),
            Some(RecordInfo::of()),
        )
    }
}

/// An atomic write transaction, from [`Storage::write`](crate::Storage::write).
///
/// Open any number of tables in it with [`table`](Self::table),
/// [`records`](Self::records) or [`batch`](Self::batch). Everything written
/// commits together when the closure returns `Ok`, and nothing does if it
/// returns `Err` or panics. Reads in the transaction see its own writes.
pub struct WriteTransaction<'t> {
    shared: &'t Shared,
    txn: AnyWrite<'t>,
    catalog: Catalog,
    /// The cache generation, for a store this process alone writes.
    generation: Option<u64>,
    /// The table a write failed on after changing part of the transaction:
    /// then the transaction must not commit.
    incomplete: RefCell<Option<String>>,
    /// The buffer values are serialized into, reused across transactions.
    scratch: RefCell<Vec<u8>>,
    /// Record tables written here whose indexes are not all built: they are
    /// tried again before the commit.
    retry: RefCell<Vec<(String, RecordMeta)>>,
    /// The changes of record tables that are watched or keep a change log,
    /// in write order, with the record type of each.
    changes: RefCell<(Arena, Vec<RecordMeta>)>,
    /// Per record table written here, as decided at its first write (a
    /// transaction collects all its changes of a table or none).
    collecting: RefCell<Vec<Collecting>>,
}

/// Whether a transaction collects the changes of one record table.
struct Collecting {
    table: &'static str,
    /// The table keeps a durable log.
    logs: bool,
    /// Its changes are collected (for the log or for subscribers).
    collect: bool,
    /// Writes made without collecting: subscribers made meanwhile are
    /// told they missed them.
    uncollected: u64,
}

/// What a committed write transaction leaves for the process to know.
pub(crate) struct Outcome {
    /// The schema rows it stored.
    pub(crate) rows: Vec<(String, Row)>,
    /// The record changes for subscribers, per table.
    pub(crate) changes: Vec<TableChanges>,
    /// Tables written without collecting changes, and how many writes.
    pub(crate) uncollected: Vec<(&'static str, u64)>,
}

/// The largest serialization buffer kept between write transactions.
const MAX_KEPT_SCRATCH: usize = 1 << 20;

impl<'t> WriteTransaction<'t> {
    pub(crate) fn new(shared: &'t Shared, txn: AnyWrite<'t>, generation: Option<u64>) -> Self {
        Self {
            shared,
            txn,
            catalog: Catalog::default(),
            generation,
            incomplete: RefCell::new(None),
            scratch: RefCell::new(shared.take_scratch()),
            retry: RefCell::new(Vec::new()),
            changes: RefCell::new((shared.take_arena(), Vec::new())),
            collecting: RefCell::new(Vec::new()),
        }
    }

    /// Whether writes through the record type `meta` must note their
    /// changes: it keeps a change log, or this process watches its table.
    pub(crate) fn collects(&self, meta: &RecordMeta) -> bool {
        let table = meta.schema.table;
        let mut collecting = self.collecting.borrow_mut();
        if let Some(entry) = collecting.iter_mut().find(|c| c.table == table) {
            if !entry.collect {
                entry.uncollected += 1;
            }
            return entry.collect;
        }
        drop(collecting);
        let logs = meta.schema.changes
            || self
                .row(table)
                .ok()
                .flatten()
                .is_some_and(|row| row.changes);
        let collect = logs || self.shared.hub.watched(table);
        self.collecting.borrow_mut().push(Collecting {
            table,
            logs,
            collect,
            uncollected: u64::from(!collect),
        });
        collect
    }

    /// Notes a change of a record (undone with the savepoint it happened in).
    pub(crate) fn note_change(
        &self,
        meta: &RecordMeta,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) {
        if old.is_none() && new.is_none() {
            return;
        }
        let (arena, metas) = &mut *self.changes.borrow_mut();
        arena.push(Some(meta.schema), key, old, new);
        metas.push(*meta);
    }

    pub(crate) fn raw(&self) -> AnyWrite<'t> {
        self.txn
    }

    /// Forgets the stored row of `table`, deleted from the schema table, so
    /// that the next open stores a new one.
    pub(crate) fn forget_row(&self, table: &str) {
        self.catalog.stored(table, None);
    }

    pub(crate) fn catalog_version(&self) -> u64 {
        self.catalog.version()
    }

    /// The schema row of `table` as this transaction sees it.
    pub(crate) fn row(&self, table: &str) -> Result<Row> {
        self.catalog.row(table, || {
            let cache = &self.shared.schemas;
            if let Some(generation) = self.generation
                && let Some(row) = cache.get(table, generation)
            {
                return Ok(row);
            }
            let row = load_row(Some(&self.txn.table(SCHEMA_TABLE)?), table)?;
            if let Some(generation) = self.generation {
                cache.insert(table, row.clone(), generation);
            }
            Ok(row)
        })
    }

    /// Stores `row` as `table`'s.
    fn store_row(&self, table: &str, mut row: StoredRow) -> Result<()> {
        // A table that keeps a change log goes on keeping it.
        row.changes |= self.row(table)?.is_some_and(|old| old.changes);
        self.txn
            .table(SCHEMA_TABLE)?
            .insert(table.as_bytes(), &row.encode())?;
        self.catalog.stored(table, Some(Arc::new(row)));
        Ok(())
    }

    pub(crate) fn open(&self, name: &str, meta: Option<&RecordMeta>) -> Result<Opened<'t>> {
        schema::check_name(name)?;
        let table = self.txn.table(name)?;
        let Some(meta) = meta else {
            let owner = self.row(name)?.map(|row| Arc::from(row.record.as_str()));
            return Ok(Opened {
                table: Some(table),
                kept: 0,
                owner,
                version: self.catalog.version(),
            });
        };
        let row = self.row(name)?;
        let plan = schema::plan(meta.schema, row.as_deref())?;
        // A record type that keeps a change log marks its table as keeping one.
        let marked = !meta.schema.changes || row.as_deref().is_some_and(|r| r.changes);
        let kept = if row.is_some() && plan.is_current(meta.schema) && marked {
            plan.built
        } else {
            self.all_or_nothing(name, || {
                self.reconcile(name, meta, &table, row.is_some(), &plan)
            })?
        };
        Ok(Opened {
            table: Some(table),
            kept,
            owner: None,
            version: self.catalog.version(),
        })
    }

    pub(crate) fn index_table(&self, meta: &RecordMeta, index: usize) -> Result<AnyTable<'t>> {
        let def = &meta.schema.indexes[index];
        self.txn.table(&index_table(meta.schema.table, def.name))
    }

    fn index_tables(&self, meta: &RecordMeta) -> Result<Vec<AnyTable<'t>>> {
        (0..meta.schema.indexes.len())
            .map(|i| self.index_table(meta, i))
            .collect()
    }

    /// Empties the tables of the indexes in `mask`.
    fn clear_indexes(&self, meta: &RecordMeta, mask: u64) -> Result<()> {
        for (i, def) in meta.schema.indexes.iter().enumerate() {
            if has(mask, i) {
                self.empty_table(&index_table(meta.schema.table, def.name))?;
            }
        }
        Ok(())
    }

    /// Empties the table `name`: deletes it, or, under a savepoint (which
    /// cannot undo a deletion), removes its entries one by one, so that a
    /// rollback puts them back.
    fn empty_table(&self, name: &str) -> Result<()> {
        if self.catalog.depth() == 0 {
            self.txn.delete_table(name)?;
        } else {
            let table = self.txn.table(name)?;
            let mut keys = Vec::new();
            let all = (core::ops::Bound::Unbounded, core::ops::Bound::Unbounded);
            table.scan(all, Direction::Forward, |key, _| {
                keys.push(key.to_vec());
                Ok(core::ops::ControlFlow::Continue(()))
            })?;
            for key in keys {
                table.remove(&key, |_| ())?;
            }
        }
        self.catalog.bump();
        Ok(())
    }

    /// Brings the table's indexes to the record type's: drops the stored
    /// ones it does not have, builds the ones the row lacks, and stores the
    /// row. Returns the indexes built.
    fn reconcile(
        &self,
        name: &str,
        meta: &RecordMeta,
        table: &AnyTable<'t>,
        has_row: bool,
        plan: &Plan,
    ) -> Result<u64> {
        for stale in &plan.stale {
            // `StoredRow::decode` refused names that are not identifiers,
            // so this is an index table of this table and no other.
            self.empty_table(&index_table(name, stale))?;
        }
        let build = if has_row {
            plan.missing
        } else {
            all_indexes(meta.schema)
        };
        let mut conflicts: Vec<_> = plan
            .pending
            .iter()
            .filter_map(|(i, c)| Some((*i, c.clone()?)))
            .collect();
        let built = self.build(meta, table, build, &mut conflicts)?;
        let kept = plan.built | built;
        self.store_row(name, StoredRow::new(meta.schema, kept, &conflicts))?;
        Ok(kept)
    }

    /// Builds the indexes in `build` from scratch; adds the unique ones that
    /// cannot be built to `conflicts` (replacing what was there for them).
    fn build(
        &self,
        meta: &RecordMeta,
        table: &AnyTable<'t>,
        build: u64,
        conflicts: &mut Vec<(usize, schema::Conflict)>,
    ) -> Result<u64> {
        if build == 0 {
            return Ok(0);
        }
        self.clear_indexes(meta, build)?;
        let indexes = self.index_tables(meta)?;
        let (built, failed) = meta.build(table, &indexes, build)?;
        // What a failed build wrote is never read; it goes.
        let failed_mask = failed.iter().fold(0, |mask, (i, _)| mask | (1 << i));
        self.clear_indexes(meta, failed_mask)?;
        conflicts.retain(|(i, _)| !has(build, *i));
        conflicts.extend(failed);
        Ok(built)
    }

    /// Empties and rebuilds every index of `meta`'s record type.
    pub(crate) fn rebuild(&self, name: &str, meta: &RecordMeta) -> Result<()> {
        self.all_or_nothing(name, || {
            let table = self.txn.table(name)?;
            let mut conflicts = Vec::new();
            let built = self.build(meta, &table, all_indexes(meta.schema), &mut conflicts)?;
            self.store_row(name, StoredRow::new(meta.schema, built, &conflicts))?;
            Ok(())
        })?;
        match first_conflict(meta, &self.row(name)?, name) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Notes a write to a record table, so that indexes of it that are not
    /// built are tried again before the commit.
    pub(crate) fn note_written(&self, name: &str, opened: &Opened<'_>, meta: &RecordMeta) {
        if opened.kept == all_indexes(meta.schema) {
            return;
        }
        let mut retry = self.retry.borrow_mut();
        if !retry.iter().any(|(t, _)| t == name) {
            retry.push((name.to_owned(), *meta));
        }
    }

    /// The error for a query on an index that is not built.
    pub(crate) fn unbuilt(&self, table: &str, index: &IndexDef) -> Error {
        unbuilt(self.row(table), table, index)
    }

    /// Marks the transaction as unable to commit: a write to `table` failed
    /// after changing part of what it had to change.
    pub(crate) fn mark_incomplete(&self, table: &str) {
        self.incomplete
            .borrow_mut()
            .get_or_insert_with(|| table.to_owned());
    }

    /// Runs `f`, which changes tables in ways no savepoint undoes (it
    /// deletes or renames them): if it fails or panics, the transaction can
    /// no longer commit.
    pub(crate) fn all_or_nothing<T>(
        &self,
        table: &str,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        struct Unwinding<'a, 't>(&'a WriteTransaction<'t>, &'a str);
        impl Drop for Unwinding<'_, '_> {
            fn drop(&mut self) {
                self.0.mark_incomplete(self.1);
            }
        }
        let unwinding = Unwinding(self, table);
        let result = f();
        core::mem::forget(unwinding);
        if result.is_err() {
            self.mark_incomplete(table);
        }
        result
    }

    /// Runs `f` under a savepoint of its own: if it fails (or panics), what
    /// it wrote is undone, whatever savepoint it runs inside, and its error
    /// is returned.
    pub(crate) fn atomic<T>(&self, table: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let undo = self.undo_point(table);
        let result = f();
        undo.end(result.is_ok());
        result
    }

    /// A savepoint of the engine's tables and of the catalog's rows, for
    /// writes to `table`.
    pub(crate) fn undo_point<'a>(&'a self, table: &'a str) -> UndoPoint<'a, 't> {
        UndoPoint {
            tx: self,
            table,
            engine: Some(self.txn.savepoint()),
            catalog: self.catalog.mark(),
            changes: self.changes.borrow().0.len(),
        }
    }

    /// Serializes `value` into the transaction's reused buffer and hands the
    /// bytes to `then`.
    pub(crate) fn serialized<T: StoredValue, R>(
        &self,
        table: &str,
        value: &T,
        then: impl FnOnce(&[u8]) -> Result<R>,
    ) -> Result<R> {
        let mut scratch = self.scratch.try_borrow_mut();
        let mut fresh = Vec::new();
        // A serializer that re-enters the transaction gets a fresh buffer.
        let buf = match scratch.as_deref_mut() {
            Ok(buf) => buf,
            Err(_) => &mut fresh,
        };
        value::encode(value, buf).map_err(|e| Error::Encode {
            table: table.to_owned(),
            source: e.into(),
        })?;
        then(buf)
    }

    /// Before the commit: refuses to commit a transaction left part-way, and
    /// builds the indexes of written tables that could not be built before.
    pub(crate) fn finish(&self) -> Result<Outcome> {
        if let Some(table) = self.incomplete.borrow().clone() {
            return Err(Error::Incomplete { table });
        }
        let retry = core::mem::take(&mut *self.retry.borrow_mut());
        for (name, meta) in retry {
            let row = self.row(&name)?;
            if !row.as_deref().is_some_and(|row| row.holds(meta.schema)) {
                // Migrated since the write: the new type's open built its indexes.
                continue;
            }
            let plan = schema::plan(meta.schema, row.as_deref())?;
            let pending = plan.pending.iter().fold(0, |mask, (i, _)| mask | (1 << i));
            if pending == 0 {
                continue;
            }
            let mut conflicts = Vec::new();
            let table = self.txn.table(&name)?;
            let built = self.build(&meta, &table, pending, &mut conflicts)?;
            self.store_row(
                &name,
                StoredRow::new(meta.schema, plan.built | built, &conflicts),
            )?;
        }
        Ok(Outcome {
            rows: self.catalog.changes(),
            changes: self.log_changes()?,
            uncollected: self
                .collecting
                .borrow()
                .iter()
                .filter(|c| c.uncollected > 0)
                .map(|c| (c.table, c.uncollected))
                .collect(),
        })
    }

    /// The changes noted, per table in the order first written; those of
    /// tables that keep a change log are appended to it.
    fn log_changes(&self) -> Result<Vec<TableChanges>> {
        let (arena, metas) = core::mem::take(&mut *self.changes.borrow_mut());
        if metas.is_empty() {
            return Ok(Vec::new());
        }
        let arena = Arc::new(arena);
        // Per table, in the order first written: its record type and changes.
        let mut tables: Vec<(RecordMeta, Vec<u32>)> = Vec::new();
        for (i, meta) in metas.iter().enumerate() {
            let table = meta.schema.table;
            match tables.iter_mut().find(|(m, _)| m.schema.table == table) {
                Some((first, changes)) => {
                    if meta.schema.changes {
                        *first = *meta;
                    }
                    changes.push(i as u32);
                }
                None => tables.push((*meta, vec![i as u32])),
            }
        }
        tables
            .into_iter()
            .map(|(meta, changes)| {
                let table = meta.schema.table;
                let logs = self
                    .collecting
                    .borrow()
                    .iter()
                    .any(|c| c.table == table && c.logs);
                let seq = if logs {
                    // What the log keeps must read as the table's records
                    // now: not what an older version wrote before a
                    // migration in this transaction.
                    let row = self.row(table)?;
                    let current: Vec<u32> = changes
                        .iter()
                        .copied()
                        .filter(|c| {
                            let writer = metas[*c as usize].schema;
                            row.as_deref().is_some_and(|row| row.holds(writer))
                        })
                        .collect();
                    if current.is_empty() {
                        None
                    } else {
                        let name = feed::log_table(table);
                        let log = self.txn.table(&name)?;
                        Some(feed::append(&log, &name, &arena, &current)?)
                    }
                } else {
                    None
                };
                Ok(TableChanges {
                    table: Arc::from(meta.schema.table),
                    arena: arena.clone(),
                    changes: changes.into(),
                    seq,
                })
            })
            .collect()
    }

    pub(crate) fn panicked(&self, payload: &(dyn Any + Send)) -> Error {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        Error::Panicked {
            tables: self.catalog.tables(),
            message,
        }
    }

    /// A handle on the table `name`, with keys of type `K` and values of type
    /// `V`, opened (and created if needed) on first use.
    ///
    /// Like [`Storage::table`](crate::Storage::table), a handle by name
    /// refuses to write a table that belongs to a record type: use
    /// [`records`](Self::records) for those.
    pub fn table<K: IntoKeyBytes, V: StoredValue>(&self, name: &str) -> WriteTable<'_, K, V> {
        WriteTable::new(self, TableName::new(name), None)
    }

    /// A handle on the table of the record type `R`, keyed by its `#[key]`
    /// fields. The schema of `R` is stored with the table on first use and
    /// checked against it afterwards.
    pub fn records<R: StoredRecord>(&self) -> WriteTable<'_, R::Key, R> {
        WriteTable::new(self, TableName::of::<R>(), Some(RecordInfo::of()))
    }

    /// A [`WriteBatch`] on the table `name`: puts with any key and value types.
    pub fn batch(&self, name: &str) -> WriteBatch<'_> {
        WriteBatch::new(self, TableName::new(name))
    }
}

/// A savepoint of a [`WriteTransaction`], from
/// [`undo_point`](WriteTransaction::undo_point). [`end`](Self::end) keeps or
/// undoes what was written since; dropped without it (a panic unwinding
/// through the write), it undoes.
pub(crate) struct UndoPoint<'a, 't> {
    tx: &'a WriteTransaction<'t>,
    table: &'a str,
    engine: Option<Savepoint>,
    catalog: usize,
    /// The changes noted before it.
    changes: usize,
}

impl UndoPoint<'_, '_> {
    /// Keeps what was written since the savepoint if `keep`, else undoes it
    /// (and if that fails, the transaction cannot commit).
    pub(crate) fn end(mut self, keep: bool) {
        self.finish(keep);
    }

    fn finish(&mut self, keep: bool) {
        let Some(savepoint) = self.engine.take() else {
            return;
        };
        let tx = self.tx;
        if keep {
            tx.txn.release(savepoint);
        } else if tx.txn.rollback_to(savepoint).is_err() {
            tx.mark_incomplete(self.table);
        }
        if !keep {
            let (arena, metas) = &mut *tx.changes.borrow_mut();
            arena.truncate(self.changes);
            metas.truncate(self.changes);
        }
        tx.catalog.end(self.catalog, keep);
    }
}

impl Drop for UndoPoint<'_, '_> {
    fn drop(&mut self) {
        self.finish(false);
    }
}

impl Drop for WriteTransaction<'_> {
    fn drop(&mut self) {
        let scratch = core::mem::take(self.scratch.get_mut());
        // One huge record does not pin its buffer for the life of the storage.
        if scratch.capacity() <= MAX_KEPT_SCRATCH {
            self.shared.put_scratch(scratch);
        }
    }
}

impl ReadTransaction<'_> {
    /// The error for a query on an index that is not built.
    pub(crate) fn unbuilt(&self, table: &str, index: &IndexDef) -> Error {
        unbuilt(self.row(table), table, index)
    }
}

/// [`Error::UniqueIndexConflict`] if the row says why the index `index`
/// is not built, else [`Error::IndexNotBuilt`].
fn unbuilt(row: Result<Row>, table: &str, index: &IndexDef) -> Error {
    let row = match row {
        Ok(row) => row,
        Err(e) => return e,
    };
    let conflict = row
        .as_deref()
        .and_then(|row| row.indexes.iter().find(|i| i.is(index)))
        .and_then(|i| i.conflict.clone());
    let index = index.name;
    match conflict {
        Some(conflict) => Error::UniqueIndexConflict {
            table: table.to_owned(),
            index: index.to_owned(),
            value: conflict.value,
            keys: Box::new(conflict.keys),
        },
        None => Error::IndexNotBuilt {
            table: table.to_owned(),
            index: index.to_owned(),
        },
    }
}

/// The error of the first index of `meta` the row says could not be built.
fn first_conflict(meta: &RecordMeta, row: &Row, table: &str) -> Option<Error> {
    let stored = row.as_deref()?;
    let index = meta.schema.indexes.iter().find(|def| {
        stored
            .indexes
            .iter()
            .any(|i| i.is(def) && !i.built && i.conflict.is_some())
    })?;
    Some(unbuilt(Ok(row.clone()), table, index))
}
