//! The engines, each running every workload it can on a slice of the input.
//!
//! 1. `raw redb`: redb 4 with `&[u8]` tables, big-endian id keys, values
//!    serialized with `rkyv::to_bytes` in the loop; reads take the field from
//!    its fixed offset in the value bytes, with no validation and no copy.
//!    `raw redb, pre-serialized` inserts values serialized beforehand.
//! 2. `redb + hand rkyv`: what a careful user writes without us: a reused
//!    serializer buffer, `rkyv::access` on every value, copied into a reused
//!    aligned buffer when the slice is misaligned (always, with redb).
//! 3. `storage (seed API)`: `write_batch`, `Storage::put`, `Table`, `ReadTable`.
//! 4. `storage (derive)`: `records::<User>()` and the generated accessors.
//! 5. `native_db 0.8`: serde + bincode over redb 2.6, and `raw redb 2.6`
//!    with engine 1's code, to split native_db's gap into engine and layer.

use std::path::{Path, PathBuf};

use rkyv::rancor::Error as RkyvError;
use rkyv::util::AlignedVec;

use crate::data::{self, ArchivedOrder, ArchivedUser, Order, User, UserIdx1, UserIdx3, native};

/// Everything the workloads run on, made once and shared by every engine.
pub struct Input {
    pub users: Vec<User>,
    pub serialized: Vec<Vec<u8>>,
    pub native_users: Vec<native::User>,
    /// Records for the single durable commits (ids after `users`).
    pub extra: Vec<User>,
    pub native_extra: Vec<native::User>,
    pub read_ids: Vec<u64>,
    pub range_starts: Vec<u64>,
    pub range_len: u64,
    pub customers: Vec<u64>,
    pub delete_ids: Vec<u64>,
    pub users1: Vec<UserIdx1>,
    pub native_users1: Vec<native::UserIdx1>,
    pub users3: Vec<UserIdx3>,
    pub native_users3: Vec<native::UserIdx3>,
    pub emails: Vec<String>,
    pub day_ranges: Vec<(u32, u32)>,
}

/// What is being measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// `users[i]` in transactions of 1,000.
    BulkInsert,
    /// `extra[i]`, one durable transaction each.
    SingleCommits,
    /// `age` of `read_ids[i]`, validated.
    PointReads,
    /// `age` of `read_ids[i]`, without validation.
    PointReadsUnchecked,
    /// Count `active` over every record (the slice counts whole scans).
    FullScan,
    /// Count `active` over `range_len` ids from `range_starts[i]`.
    RangeScans,
    /// Sum the order totals of `customers[i]` by composite-key prefix.
    PrefixQueries,
    /// Delete `delete_ids[i]` in transactions of 1,000.
    Delete,
    /// `users1[i]` (one unique index) in transactions of 1,000.
    InsertIndex1,
    /// `users3[i]` (three indexes) in transactions of 1,000.
    InsertIndex3,
    /// Find the user with `emails[i]` by the unique index.
    UniqueLookup,
    /// Users with `signup_day` in `day_ranges[i]`, by the non-unique index.
    IndexRange,
}

/// Records per write transaction in bulk workloads.
pub const BATCH: usize = 1_000;

/// One engine. `run` returns a checksum of what it read (so that nothing is
/// optimized away, and engines can be cross-checked), or `None` for a
/// workload it does not offer.
pub trait Engine {
    fn name(&self) -> &'static str;
    /// Opens a fresh database for the write workloads in `dir`; returns its file.
    fn create(&mut self, dir: &Path) -> PathBuf;
    /// Closes the write databases.
    fn close(&mut self);
    fn run(&mut self, work: Work, input: &Input, part: std::ops::Range<usize>) -> Option<u64>;
}

fn batches<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    items.chunks(BATCH)
}

const USERS: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("users");
const ORDERS: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("orders");

/// Position of a field of the archived root in `bytes`: the root sits at the end.
fn field<T>(bytes: &[u8], offset: usize) -> usize {
    bytes.len() - size_of::<T>() + offset
}

fn age_at_offset(bytes: &[u8]) -> u64 {
    let at = field::<ArchivedUser>(bytes, std::mem::offset_of!(ArchivedUser, age));
    u64::from(u32::from_le_bytes(
        bytes[at..at + 4].try_into().expect("4 bytes"),
    ))
}

fn active_at_offset(bytes: &[u8]) -> bool {
    bytes[field::<ArchivedUser>(bytes, std::mem::offset_of!(ArchivedUser, active))] != 0
}

fn total_at_offset(bytes: &[u8]) -> u64 {
    let at = field::<ArchivedOrder>(bytes, std::mem::offset_of!(ArchivedOrder, total_cents));
    i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as u64
}

fn order_key(customer: u64, number: u32) -> [u8; 12] {
    let mut key = [0; 12];
    key[..8].copy_from_slice(&customer.to_be_bytes());
    key[8..].copy_from_slice(&number.to_be_bytes());
    key
}

/// The databases engines 1 to 4 read: one file, written once through
/// `storage`, read by each engine its own way.
pub struct Shared {
    pub storage: storage::Storage,
}

/// Engine 1, raw redb, for a given redb crate: the floor on redb 4 (with a
/// variant inserting pre-serialized values) and the same code on redb 2.6,
/// native_db's engine.
macro_rules! raw_engine {
    ($(#[$doc:meta])* $engine:ident, $redb:ident) => {
        $(#[$doc])*
        pub struct $engine<'s> {
            pub name: &'static str,
            pub file: &'static str,
            pub preserialized: bool,
            /// The database the read workloads read.
            pub read: &'s $redb::Database,
            pub db: Option<$redb::Database>,
        }

        impl Engine for $engine<'_> {
            fn name(&self) -> &'static str {
                self.name
            }

            fn create(&mut self, dir: &Path) -> PathBuf {
                let path = dir.join(self.file);
                self.db = Some($redb::Database::create(&path).expect("create"));
                path
            }

            fn close(&mut self) {
                self.db = None;
            }

            fn run(&mut self, work: Work, input: &Input, part: std::ops::Range<usize>) -> Option<u64> {
                #[allow(unused_imports)]
                use $redb::*;
                const USERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("users");
                const ORDERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("orders");
                let read = || self.read.begin_read().expect("read");
                match work {
                    Work::BulkInsert => {
                        let db = self.db.as_ref()?;
                        for (i, batch) in batches(&input.users[part.clone()]).enumerate() {
                            let txn = db.begin_write().expect("write");
                            {
                                let mut table = txn.open_table(USERS).expect("table");
                                for (j, user) in batch.iter().enumerate() {
                                    let key = user.id.to_be_bytes();
                                    if self.preserialized {
                                        let value = &input.serialized[part.start + i * BATCH + j];
                                        table.insert(&key[..], &value[..]).expect("insert");
                                    } else {
                                        let value = rkyv::to_bytes::<RkyvError>(user).expect("serialize");
                                        table.insert(&key[..], &value[..]).expect("insert");
                                    }
                                }
                            }
                            txn.commit().expect("commit");
                        }
                        Some(0)
                    }
                    _ if self.preserialized => None,
                    Work::SingleCommits => {
                        let db = self.db.as_ref()?;
                        for user in &input.extra[part] {
                            let txn = db.begin_write().expect("write");
                            {
                                let mut table = txn.open_table(USERS).expect("table");
                                let value = rkyv::to_bytes::<RkyvError>(user).expect("serialize");
                                table.insert(&user.id.to_be_bytes()[..], &value[..]).expect("insert");
                            }
                            txn.commit().expect("commit");
                        }
                        Some(0)
                    }
                    Work::PointReads => {
                        let txn = read();
                        let table = txn.open_table(USERS).expect("table");
                        let mut sum = 0;
                        for id in &input.read_ids[part] {
                            let value = table.get(&id.to_be_bytes()[..]).expect("get").expect("present");
                            sum += age_at_offset(value.value());
                        }
                        Some(sum)
                    }
                    Work::FullScan => {
                        let txn = read();
                        let table = txn.open_table(USERS).expect("table");
                        let mut active = 0;
                        for _ in part {
                            for entry in table.range::<&[u8]>(..).expect("range") {
                                active += u64::from(active_at_offset(entry.expect("entry").1.value()));
                            }
                        }
                        Some(active)
                    }
                    Work::RangeScans => {
                        let txn = read();
                        let table = txn.open_table(USERS).expect("table");
                        let mut active = 0;
                        for start in &input.range_starts[part] {
                            let (from, to) = (start.to_be_bytes(), (start + input.range_len).to_be_bytes());
                            for entry in table.range(&from[..]..&to[..]).expect("range") {
                                active += u64::from(active_at_offset(entry.expect("entry").1.value()));
                            }
                        }
                        Some(active)
                    }
                    Work::PrefixQueries => {
                        let txn = read();
                        let table = txn.open_table(ORDERS).expect("table");
                        let mut total = 0;
                        for customer in &input.customers[part] {
                            let (from, to) = (order_key(*customer, 0), order_key(customer + 1, 0));
                            for entry in table.range(&from[..]..&to[..]).expect("range") {
                                total += total_at_offset(entry.expect("entry").1.value());
                            }
                        }
                        Some(total)
                    }
                    Work::Delete => {
                        let db = self.db.as_ref()?;
                        for batch in batches(&input.delete_ids[part]) {
                            let txn = db.begin_write().expect("write");
                            {
                                let mut table = txn.open_table(USERS).expect("table");
                                for id in batch {
                                    table.remove(&id.to_be_bytes()[..]).expect("remove");
                                }
                            }
                            txn.commit().expect("commit");
                        }
                        Some(0)
                    }
                    _ => None,
                }
            }
        }
    };
}

raw_engine!(
    /// Engine 1 on redb 4: the floor.
    RawRedb,
    redb
);

raw_engine!(
    /// Engine 1's code on redb 2.6, native_db's engine.
    RawRedb2,
    redb2
);
/// Engine 2: redb 4 with a careful hand-written rkyv layer.
pub struct HandRkyv<'s> {
    pub shared: &'s Shared,
    pub db: Option<redb::Database>,
    /// Serialization buffer, reused.
    pub out: Vec<u8>,
    /// Aligned copy of a value being read, reused.
    pub aligned: AlignedVec,
}

impl HandRkyv<'_> {
    /// `bytes` at a 16-aligned address: in place if they are, else copied.
    fn align<'a>(aligned: &'a mut AlignedVec, bytes: &'a [u8]) -> &'a [u8] {
        if (bytes.as_ptr() as usize).is_multiple_of(16) {
            bytes
        } else {
            aligned.clear();
            aligned.extend_from_slice(bytes);
            aligned
        }
    }

    fn serialize(&mut self, user: &User) -> &[u8] {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.out = rkyv::api::high::to_bytes_in::<_, RkyvError>(user, out).expect("serialize");
        &self.out
    }
}

impl Engine for HandRkyv<'_> {
    fn name(&self) -> &'static str {
        "redb + hand rkyv"
    }

    fn create(&mut self, dir: &Path) -> PathBuf {
        let path = dir.join("hand.redb");
        self.db = Some(redb::Database::create(&path).expect("create"));
        path
    }

    fn close(&mut self) {
        self.db = None;
    }

    fn run(&mut self, work: Work, input: &Input, part: std::ops::Range<usize>) -> Option<u64> {
        use redb::ReadableDatabase;
        let shared = self.shared;
        let read = || {
            shared
                .storage
                .backend()
                .redb()
                .expect("a redb storage")
                .database()
                .expect("writable")
                .begin_read()
                .expect("read")
        };
        match work {
            Work::BulkInsert => {
                let db = self.db.take()?;
                for batch in batches(&input.users[part]) {
                    let txn = db.begin_write().expect("write");
                    {
                        let mut table = txn.open_table(USERS).expect("table");
                        for user in batch {
                            let value = self.serialize(user);
                            table
                                .insert(&user.id.to_be_bytes()[..], value)
                                .expect("insert");
                        }
                    }
                    txn.commit().expect("commit");
                }
                self.db = Some(db);
                Some(0)
            }
            Work::SingleCommits => {
                let db = self.db.take()?;
                for user in &input.extra[part] {
                    let txn = db.begin_write().expect("write");
                    {
                        let mut table = txn.open_table(USERS).expect("table");
                        let value = self.serialize(user);
                        table
                            .insert(&user.id.to_be_bytes()[..], value)
                            .expect("insert");
                    }
                    txn.commit().expect("commit");
                }
                self.db = Some(db);
                Some(0)
            }
            Work::PointReads | Work::PointReadsUnchecked => {
                let txn = read();
                let table = txn.open_table(USERS).expect("table");
                let mut sum = 0;
                for id in &input.read_ids[part] {
                    let value = table
                        .get(&id.to_be_bytes()[..])
                        .expect("get")
                        .expect("present");
                    let bytes = Self::align(&mut self.aligned, value.value());
                    let user = if work == Work::PointReads {
                        rkyv::access::<ArchivedUser, RkyvError>(bytes).expect("valid")
                    } else {
                        // SAFETY: the benchmark wrote these bytes as `User` archives
                        // and nothing else writes the file.
                        unsafe { rkyv::access_unchecked::<ArchivedUser>(bytes) }
                    };
                    sum += u64::from(user.age.to_native());
                }
                Some(sum)
            }
            Work::FullScan => {
                let txn = read();
                let table = txn.open_table(USERS).expect("table");
                let mut active = 0;
                for _ in part {
                    for entry in table.range::<&[u8]>(..).expect("range") {
                        let (_, value) = entry.expect("entry");
                        let bytes = Self::align(&mut self.aligned, value.value());
                        let user = rkyv::access::<ArchivedUser, RkyvError>(bytes).expect("valid");
                        active += u64::from(user.active);
                    }
                }
                Some(active)
            }
            Work::RangeScans => {
                let txn = read();
                let table = txn.open_table(USERS).expect("table");
                let mut active = 0;
                for start in &input.range_starts[part] {
                    let (from, to) = (start.to_be_bytes(), (start + input.range_len).to_be_bytes());
                    for entry in table.range(&from[..]..&to[..]).expect("range") {
                        let (_, value) = entry.expect("entry");
                        let bytes = Self::align(&mut self.aligned, value.value());
                        let user = rkyv::access::<ArchivedUser, RkyvError>(bytes).expect("valid");
                        active += u64::from(user.active);
                    }
                }
                Some(active)
            }
            Work::PrefixQueries => {
                let txn = read();
                let table = txn.open_table(ORDERS).expect("table");
                let mut total = 0;
                for customer in &input.customers[part] {
                    let (from, to) = (order_key(*customer, 0), order_key(customer + 1, 0));
                    for entry in table.range(&from[..]..&to[..]).expect("range") {
                        let (_, value) = entry.expect("entry");
                        let bytes = Self::align(&mut self.aligned, value.value());
                        let order = rkyv::access::<ArchivedOrder, RkyvError>(bytes).expect("valid");
                        total += order.total_cents.to_native() as u64;
                    }
                }
                Some(total)
            }
            Work::Delete => {
                let db = self.db.as_ref()?;
                for batch in batches(&input.delete_ids[part]) {
                    let txn = db.begin_write().expect("write");
                    {
                        let mut table = txn.open_table(USERS).expect("table");
                        for id in batch {
                            table.remove(&id.to_be_bytes()[..]).expect("remove");
                        }
                    }
                    txn.commit().expect("commit");
                }
                Some(0)
            }
            _ => None,
        }
    }
}

/// Engines 3 and 4: `storage` through the seed API or the derive.
pub struct Storage<'s> {
    pub shared: &'s Shared,
    pub derive: bool,
    pub db: Option<storage::Storage>,
}

impl Engine for Storage<'_> {
    fn name(&self) -> &'static str {
        if self.derive {
            "storage (derive)"
        } else {
            "storage (seed API)"
        }
    }

    fn create(&mut self, dir: &Path) -> PathBuf {
        let path = dir.join(if self.derive {
            "derive.redb"
        } else {
            "seed.redb"
        });
        self.db = Some(storage::Storage::new(&path).expect("create"));
        path
    }

    fn close(&mut self) {
        self.db = None;
    }

    fn run(&mut self, work: Work, input: &Input, part: std::ops::Range<usize>) -> Option<u64> {
        let shared = &self.shared.storage;
        let derive = self.derive;
        let result = match work {
            Work::BulkInsert => {
                let db = self.db.as_ref()?;
                for batch in batches(&input.users[part]) {
                    if derive {
                        db.records::<User>().insert_batch(batch)
                    } else {
                        db.write_batch("users", |b| batch.iter().try_for_each(|u| b.put(u.id, u)))
                    }
                    .expect("insert");
                }
                Ok(0)
            }
            Work::SingleCommits => {
                let db = self.db.as_ref()?;
                for user in &input.extra[part] {
                    if derive {
                        db.records::<User>().insert(user)
                    } else {
                        db.put("users", user.id, user)
                    }
                    .expect("insert");
                }
                Ok(0)
            }
            Work::PointReads => shared.read(|tx| {
                let mut sum = 0;
                if derive {
                    let users = tx.records::<User>();
                    for id in &input.read_ids[part] {
                        sum += u64::from(users.get(id, |u| u.age())?.expect("present"));
                    }
                } else {
                    let users = tx.table::<u64, User>("users");
                    for id in &input.read_ids[part] {
                        sum += u64::from(users.get(id, |u| u.age.to_native())?.expect("present"));
                    }
                }
                Ok(sum)
            }),
            Work::PointReadsUnchecked => shared.read(|tx| {
                let mut sum = 0;
                let users = tx.records::<User>();
                for id in &input.read_ids[part] {
                    // SAFETY: the benchmark wrote these bytes as `User`
                    // archives and nothing else writes the file.
                    let age = unsafe { users.get_unchecked(id, |u| u.age()) }?;
                    sum += u64::from(age.expect("present"));
                }
                Ok(sum)
            }),
            Work::FullScan => shared.read(|tx| {
                let mut active = 0;
                for _ in part {
                    active += if derive {
                        tx.records::<User>()
                            .fold(0, |n, _, u| n + u64::from(u.active()))?
                    } else {
                        tx.table::<u64, User>("users")
                            .fold(0, |n, _, u| n + u64::from(u.active))?
                    };
                }
                Ok(active)
            }),
            Work::RangeScans => shared.read(|tx| {
                let mut active = 0;
                let users = tx.records::<User>();
                for start in &input.range_starts[part] {
                    let range = users.range(*start..start + input.range_len)?;
                    active += range.fold_entries(0, |n, _, u| n + u64::from(u.active()))?;
                }
                Ok(active)
            }),
            Work::PrefixQueries => shared.read(|tx| {
                let mut total = 0;
                if derive {
                    let orders = tx.records::<Order>();
                    for customer in &input.customers[part] {
                        let orders = orders.prefix((*customer,))?;
                        total += orders.fold_entries(0, |t, _, o| t + o.total_cents() as u64)?;
                    }
                } else {
                    let orders = tx.table::<(u64, u32), Order>("orders");
                    for customer in &input.customers[part] {
                        let orders = orders.prefix((*customer,))?;
                        total += orders
                            .fold_entries(0, |t, _, o| t + o.total_cents.to_native() as u64)?;
                    }
                }
                Ok(total)
            }),
            Work::Delete => {
                let db = self.db.as_ref()?;
                for batch in batches(&input.delete_ids[part]) {
                    if derive {
                        db.write(|tx| {
                            let mut users = tx.records::<User>();
                            batch.iter().try_for_each(|id| users.delete(id).map(drop))
                        })
                    } else {
                        db.write_batch("users", |b| {
                            batch.iter().try_for_each(|id| b.delete(*id).map(drop))
                        })
                    }
                    .expect("delete");
                }
                Ok(0)
            }
            Work::InsertIndex1 | Work::InsertIndex3 if derive => {
                let db = self.db.as_ref()?;
                let rows = part.clone();
                for batch in (rows.start..rows.end).step_by(BATCH) {
                    let end = (batch + BATCH).min(rows.end);
                    if work == Work::InsertIndex1 {
                        db.records::<UserIdx1>()
                            .insert_batch(&input.users1[batch..end])
                    } else {
                        db.records::<UserIdx3>()
                            .insert_batch(&input.users3[batch..end])
                    }
                    .expect("insert");
                }
                Ok(0)
            }
            Work::UniqueLookup if derive => {
                use data::UserIdx3Indexes;
                let db = self.db.as_ref()?;
                db.read(|tx| {
                    let users = tx.records::<UserIdx3>();
                    let mut sum = 0;
                    for email in &input.emails[part] {
                        sum += u64::from(
                            users
                                .by_email(email.as_str(), |u| u.age())?
                                .expect("present"),
                        );
                    }
                    Ok(sum)
                })
            }
            Work::IndexRange if derive => {
                use data::UserIdx3Indexes;
                let db = self.db.as_ref()?;
                db.read(|tx| {
                    let users = tx.records::<UserIdx3>();
                    let mut sum = 0;
                    for (from, to) in &input.day_ranges[part] {
                        let found = users.by_signup_day_range(*from..*to, |_, u| Some(u.age()))?;
                        sum += found.iter().map(|a| u64::from(*a)).sum::<u64>();
                    }
                    Ok(sum)
                })
            }
            _ => return None,
        };
        Some(result.expect("storage"))
    }
}

/// native_db 0.8 (on redb 2.6).
pub struct NativeDb {
    pub read: native_db::Database<'static>,
    pub db: Option<native_db::Database<'static>>,
}

impl Engine for NativeDb {
    fn name(&self) -> &'static str {
        "native_db 0.8"
    }

    fn create(&mut self, dir: &Path) -> PathBuf {
        let path = dir.join("native.redb");
        self.db = Some(
            native_db::Builder::new()
                .create(native::models(), &path)
                .expect("create"),
        );
        path
    }

    fn close(&mut self) {
        self.db = None;
    }

    fn run(&mut self, work: Work, input: &Input, part: std::ops::Range<usize>) -> Option<u64> {
        fn insert_all<T: native_db::ToInput + Clone>(db: &native_db::Database<'_>, items: &[T]) {
            for batch in batches(items) {
                let rw = db.rw_transaction().expect("write");
                for item in batch {
                    rw.insert(item.clone()).expect("insert");
                }
                rw.commit().expect("commit");
            }
        }
        match work {
            Work::BulkInsert => insert_all(self.db.as_ref()?, &input.native_users[part]),
            Work::InsertIndex1 => insert_all(self.db.as_ref()?, &input.native_users1[part]),
            Work::InsertIndex3 => insert_all(self.db.as_ref()?, &input.native_users3[part]),
            Work::SingleCommits => {
                let db = self.db.as_ref()?;
                for user in &input.native_extra[part] {
                    let rw = db.rw_transaction().expect("write");
                    rw.insert(user.clone()).expect("insert");
                    rw.commit().expect("commit");
                }
            }
            Work::PointReads => {
                let r = self.read.r_transaction().expect("read");
                let mut sum = 0;
                for id in &input.read_ids[part] {
                    let user: native::User = r.get().primary(*id).expect("get").expect("present");
                    sum += u64::from(user.age);
                }
                return Some(sum);
            }
            Work::FullScan => {
                let r = self.read.r_transaction().expect("read");
                let mut active = 0;
                for _ in part {
                    let scan = r.scan().primary::<native::User>().expect("scan");
                    for user in scan.all().expect("all") {
                        active += u64::from(user.expect("user").active);
                    }
                }
                return Some(active);
            }
            Work::RangeScans => {
                let r = self.read.r_transaction().expect("read");
                let scan = r.scan().primary::<native::User>().expect("scan");
                let mut active = 0;
                for start in &input.range_starts[part] {
                    for user in scan.range(*start..start + input.range_len).expect("range") {
                        active += u64::from(user.expect("user").active);
                    }
                }
                return Some(active);
            }
            Work::PrefixQueries => {
                let r = self.read.r_transaction().expect("read");
                let scan = r.scan().primary::<native::Order>().expect("scan");
                let mut total = 0;
                for customer in &input.customers[part] {
                    // native_db checks key types: a prefix is a range of whole keys.
                    let orders = scan
                        .range((*customer, 0u32)..(customer + 1, 0u32))
                        .expect("prefix");
                    for order in orders {
                        total += order.expect("order").total_cents as u64;
                    }
                }
                return Some(total);
            }
            Work::Delete => {
                let db = self.db.as_ref()?;
                for batch in batches(&input.delete_ids[part]) {
                    let rw = db.rw_transaction().expect("write");
                    for id in batch {
                        // native_db removes whole records only.
                        let user: native::User =
                            rw.get().primary(*id).expect("get").expect("present");
                        rw.remove(user).expect("remove");
                    }
                    rw.commit().expect("commit");
                }
            }
            Work::UniqueLookup => {
                let r = self.db.as_ref()?.r_transaction().expect("read");
                let mut sum = 0;
                for email in &input.emails[part] {
                    let user: native::UserIdx3 = r
                        .get()
                        .secondary(native::UserIdx3Key::email, email.as_str())
                        .expect("get")
                        .expect("present");
                    sum += u64::from(user.age);
                }
                return Some(sum);
            }
            Work::IndexRange => {
                let r = self.db.as_ref()?.r_transaction().expect("read");
                let scan = r
                    .scan()
                    .secondary::<native::UserIdx3>(native::UserIdx3Key::signup_day)
                    .expect("scan");
                let mut sum = 0;
                for (from, to) in &input.day_ranges[part] {
                    for user in scan.range(*from..*to).expect("range") {
                        sum += u64::from(user.expect("user").age);
                    }
                }
                return Some(sum);
            }
            Work::PointReadsUnchecked => return None,
        }
        Some(0)
    }
}

/// Every engine, in report order, reading from `shared`, `native` and `raw2`.
pub fn all<'s>(
    shared: &'s Shared,
    native: native_db::Database<'static>,
    raw2: &'s redb2::Database,
) -> Vec<Box<dyn Engine + 's>> {
    let redb4 = shared
        .storage
        .backend()
        .redb()
        .expect("a redb storage")
        .database()
        .expect("writable");
    vec![
        Box::new(RawRedb {
            name: "raw redb",
            file: "raw.redb",
            preserialized: false,
            read: redb4,
            db: None,
        }),
        Box::new(RawRedb {
            name: "raw redb, pre-serialized",
            file: "raw-pre.redb",
            preserialized: true,
            read: redb4,
            db: None,
        }),
        Box::new(HandRkyv {
            shared,
            db: None,
            out: Vec::new(),
            aligned: AlignedVec::new(),
        }),
        Box::new(Storage {
            shared,
            derive: false,
            db: None,
        }),
        Box::new(Storage {
            shared,
            derive: true,
            db: None,
        }),
        Box::new(NativeDb {
            read: native,
            db: None,
        }),
        Box::new(RawRedb2 {
            name: "raw redb 2.6",
            file: "raw2.redb",
            preserialized: false,
            read: raw2,
            db: None,
        }),
    ]
}
