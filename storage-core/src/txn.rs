//! Transactions: [`ReadTransaction`], [`WriteTransaction`] and [`WriteBatch`].

use core::cell::RefCell;
use std::any::Any;

use crate::backend::{ReadTxn, WriteTxn};
use crate::error::{Error, Result};
use crate::index::RecordInfo;
use crate::key::IntoKeyBytes;
use crate::record::StoredRecord;
use crate::schema::{self, Schema, SchemaState};
use crate::storage::Shared;
use crate::table::{ReadTable, TableName, WriteTable, Writer};
use crate::value::StoredValue;

/// A consistent read-only snapshot of the database, from
/// [`Storage::read`](crate::Storage::read).
///
/// Open any number of tables in it with [`table`](Self::table) or
/// [`records`](Self::records); every read sees the database as it was when the
/// transaction began, whatever writers commit meanwhile.
pub struct ReadTransaction<'s> {
    txn: ReadTxn,
    shared: &'s Shared,
    /// The schema generation before the snapshot was taken.
    generation: u64,
}

impl<'s> ReadTransaction<'s> {
    pub(crate) fn begin(shared: &'s Shared) -> Result<Self> {
        let generation = shared.schemas.generation();
        Ok(Self {
            txn: shared.backend.begin_read()?,
            shared,
            generation,
        })
    }

    pub(crate) fn raw(&self) -> &ReadTxn {
        &self.txn
    }

    pub(crate) fn check_schema(&self, schema: &'static Schema) -> Result<SchemaState> {
        if self.shared.schemas.trusts(schema) {
            return Ok(SchemaState::Current);
        }
        schema::check_index_tables(schema)?;
        let state = schema::check_read(&self.txn, schema)?;
        if state == SchemaState::Current {
            self.shared.schemas.trust_since(schema, self.generation);
        }
        Ok(state)
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
        ReadTable::new(self, TableName::new(name), None)
    }

    /// A handle on the table of the record type `R`, keyed by its `#[key]`
    /// fields. The stored schema is checked against `R` when the table is opened.
    pub fn records<R: StoredRecord>(&self) -> ReadTable<'_, R::Key, R> {
        ReadTable::new(self, TableName::of::<R>(), Some(RecordInfo::of()))
    }
}

/// An atomic write transaction, from [`Storage::write`](crate::Storage::write).
///
/// Open any number of tables in it with [`table`](Self::table),
/// [`records`](Self::records) or [`batch`](Self::batch). Everything written
/// commits together when the closure returns `Ok`, and nothing does if it
/// returns `Err` or panics. Reads in the transaction see its own writes.
pub struct WriteTransaction<'s> {
    txn: WriteTxn<'s>,
    shared: &'s Shared,
    /// Names of the tables opened so far, for error reports.
    touched: RefCell<Vec<String>>,
    /// Schemas found current in this transaction; trusted once it commits.
    checked: RefCell<Vec<&'static Schema>>,
    /// Schemas stored by this transaction; trusted once it commits.
    stored: RefCell<Vec<&'static Schema>>,
    /// The table a write failed on after changing part of the transaction:
    /// then the transaction must not commit.
    incomplete: RefCell<Option<String>>,
}

impl<'s> WriteTransaction<'s> {
    pub(crate) fn begin(shared: &'s Shared) -> Result<Self> {
        Ok(Self {
            txn: shared.backend.begin_write()?,
            shared,
            touched: RefCell::new(Vec::new()),
            checked: RefCell::new(Vec::new()),
            stored: RefCell::new(Vec::new()),
            incomplete: RefCell::new(None),
        })
    }

    pub(crate) fn raw(&self) -> &WriteTxn<'s> {
        &self.txn
    }

    pub(crate) fn note_opened(&self, table: &str) {
        let mut touched = self.touched.borrow_mut();
        if !touched.iter().any(|t| t == table) {
            touched.push(table.to_owned());
        }
    }

    /// Where the stored schema of `schema`'s table stands. Unless it is
    /// current, the caller builds the indexes and then calls
    /// [`store_schema`](Self::store_schema).
    pub(crate) fn check_schema(&self, schema: &'static Schema) -> Result<SchemaState> {
        if self.shared.schemas.trusts(schema) || self.stored.borrow().contains(&schema) {
            return Ok(SchemaState::Current);
        }
        schema::check_index_tables(schema)?;
        let state = schema::check_write(&self.txn, schema)?;
        if state == SchemaState::Current {
            self.checked.borrow_mut().push(schema);
        }
        Ok(state)
    }

    /// Stores `schema` as its table's, its indexes being built.
    pub(crate) fn store_schema(&self, schema: &'static Schema) -> Result<()> {
        schema::store(&self.txn, schema)?;
        self.stored.borrow_mut().push(schema);
        Ok(())
    }

    /// Marks the transaction as unable to commit: a write to `table` failed
    /// after changing part of what it had to change.
    pub(crate) fn mark_incomplete(&self, table: &str) {
        self.incomplete
            .borrow_mut()
            .get_or_insert_with(|| table.to_owned());
    }

    /// Runs `f`, which changes several things; if it fails, the transaction
    /// can no longer commit.
    pub(crate) fn all_or_nothing<T>(
        &self,
        table: &str,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let result = f();
        if result.is_err() {
            self.mark_incomplete(table);
        }
        result
    }

    pub(crate) fn commit(self) -> Result<()> {
        if let Some(table) = self.incomplete.into_inner() {
            return Err(Error::Incomplete { table });
        }
        let (checked, stored) = (self.checked.into_inner(), self.stored.into_inner());
        let schemas = &self.shared.schemas;
        // Trusted before the writer slot is released: no other writer can
        // store another schema in between.
        self.txn
            .commit_then(|| schemas.committed(&stored, &checked))
    }

    pub(crate) fn panicked(&self, payload: &(dyn Any + Send)) -> Error {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        Error::Panicked {
            tables: self.touched.borrow().clone(),
            message,
        }
    }

    /// A handle on the table `name`, with keys of type `K` and values of type
    /// `V`, opened (and created if needed) on first use.
    ///
    /// A table can be open in only one handle at a time: opening it again while
    /// an earlier handle is alive gives [`Error::TableInUse`]. Like
    /// [`Storage::table`](crate::Storage::table), a handle by name skips the
    /// schema check and index upkeep of record tables: use
    /// [`records`](Self::records) for those.
    pub fn table<K: IntoKeyBytes, V: StoredValue>(&self, name: &str) -> WriteTable<'_, K, V> {
        WriteTable::new(Writer::new(self, TableName::new(name), None))
    }

    /// A handle on the table of the record type `R`, keyed by its `#[key]`
    /// fields. The schema of `R` is stored with the table on first write and
    /// checked against it afterwards.
    pub fn records<R: StoredRecord>(&self) -> WriteTable<'_, R::Key, R> {
        WriteTable::new(Writer::new(
            self,
            TableName::of::<R>(),
            Some(RecordInfo::of()),
        ))
    }

    /// A [`WriteBatch`] on the table `name`: puts with any key and value types.
    pub fn batch(&self, name: &str) -> WriteBatch<'_> {
        WriteBatch {
            writer: Writer::new(self, TableName::new(name), None),
        }
    }
}

/// Writes to one table inside a write transaction, with any key and value
/// types per call: the seed design's batch.
///
/// Made by [`Storage::write_batch`](crate::Storage::write_batch) or
/// [`WriteTransaction::batch`]; other tables of the same transaction are
/// reached with [`table`](Self::table). Keys are encoded and values serialized
/// straight into the transaction: nothing is buffered, string keys are not
/// copied, and integer keys cost no allocation.
///
/// ```
/// # fn main() -> storage::Result<()> {
/// let storage = storage::Storage::in_memory()?;
/// storage.write_batch("users", |batch| {
///     batch.put("alice", &String::from("Alice"))?;
///     batch.put(42u64, &String::from("Answer"))?;
///     batch.table("audit").put(1u64, &String::from("added two users"))?;
///     Ok(())
/// })?;
/// assert_eq!(storage.get::<String, _>("users", 42u64, |s| s.to_string())?, Some("Answer".into()));
/// # Ok(())
/// # }
/// ```
pub struct WriteBatch<'tx> {
    writer: Writer<'tx, ()>,
}

impl<'tx> WriteBatch<'tx> {
    /// Serializes `value` and stores it under `key`, replacing any previous value.
    pub fn put<V: StoredValue>(&mut self, key: impl IntoKeyBytes, value: &V) -> Result<()> {
        self.writer.put(key.into_key_bytes().as_ref(), value)
    }

    /// Stores already-serialized bytes under `key`.
    ///
    /// The bytes are stored as they are; they are validated when read, so bytes
    /// that are not an rkyv archive of the type read back give
    /// [`Error::Corrupt`] then.
    pub fn put_raw(&mut self, key: impl IntoKeyBytes, value: impl AsRef<[u8]>) -> Result<()> {
        self.writer
            .put_bytes(key.into_key_bytes().as_ref(), value.as_ref())
    }

    /// Removes `key`; returns whether it was there.
    pub fn delete(&mut self, key: impl IntoKeyBytes) -> Result<bool> {
        self.writer.delete(key.into_key_bytes().as_ref())
    }

    /// A batch on another table of the same transaction.
    pub fn table(&self, name: &str) -> WriteBatch<'tx> {
        WriteBatch {
            writer: Writer::new(self.writer.tx(), TableName::new(name), None),
        }
    }

    /// The name of the table this batch writes.
    pub fn name(&self) -> &str {
        self.writer.name()
    }
}
