//! Model-based test of the integrity promises: random sequences over every
//! public write path — record inserts, replacements, deletes and batches
//! through `Table` and in transactions, `put` with right and wrong keys,
//! by-name writes, three record types with different index sets on one
//! table, aborted and panicking transactions, index rebuilds, reopening,
//! read snapshots held across all of that, and readers in other threads —
//! checked against a `BTreeMap` after every step:
//!
//! - the records are exactly the model's;
//! - every index query that answers answers exactly, in this snapshot;
//! - every index the scrub calls built is exact, and no built unique index
//!   holds a value twice;
//! - every refusal is justified (a unique clash exists, a key was wrong, a
//!   by-name write hit an owned table);
//! - a snapshot answers as of its own time.
//!
//! `STORAGE_MODEL_OPS` sets the steps (1,500 by default) and
//! `STORAGE_MODEL_SEED` replays a run; the seed is printed first.

mod common;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::Rng;
use storage::{Durability, Error, ReadTransaction, Storage, WriteTransaction};

// Three index sets on one layout: none, a unique and a non-unique index,
// and a non-unique index on what the second has unique.
pub mod plain {
    #[derive(
        Debug, Clone, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
    )]
    #[stored(table = "people")]
    pub struct Person {
        #[key]
        pub id: u16,
        pub email: String,
        pub country: String,
        pub n: u32,
        pub tags: Vec<String>,
    }
}

pub mod unique {
    #[derive(
        Debug, Clone, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
    )]
    #[stored(table = "people")]
    pub struct Person {
        #[key]
        pub id: u16,
        #[index(unique)]
        pub email: String,
        #[index]
        pub country: String,
        pub n: u32,
        pub tags: Vec<String>,
    }
}

pub mod multi {
    #[derive(
        Debug, Clone, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
    )]
    #[stored(table = "people", index(by = bucket -> u32))]
    pub struct Person {
        #[key]
        pub id: u16,
        #[index]
        pub email: String,
        pub country: String,
        pub n: u32,
        #[index(each)]
        pub tags: Vec<String>,
    }

    impl Person {
        /// A computed index: `n` in seven buckets.
        pub fn bucket(&self) -> u32 {
            self.n % super::BUCKETS
        }
    }
}

const BUCKETS: u32 = 7;
const TAGS: [&str; 4] = ["a", "b", "bc", "c"];

use multi::PersonIndexes as _;
use unique::PersonIndexes as _;

#[derive(Debug, Clone, PartialEq)]
struct Rec {
    email: String,
    country: String,
    n: u32,
    tags: Vec<String>,
}

type Model = BTreeMap<u16, Rec>;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Plain,
    Unique,
    Multi,
}

const KINDS: [Kind; 3] = [Kind::Plain, Kind::Unique, Kind::Multi];

macro_rules! person {
    ($module:ident, $id:expr, $rec:expr) => {
        $module::Person {
            id: $id,
            email: $rec.email.clone(),
            country: $rec.country.clone(),
            n: $rec.n,
            tags: $rec.tags.clone(),
        }
    };
}

fn rec(rng: &mut Rng) -> (u16, Rec) {
    (
        rng.below(24) as u16,
        Rec {
            email: format!("{}@x", rng.below(30)),
            country: ["NZ", "FR", "DE"][rng.below(3) as usize].to_owned(),
            n: rng.below(1_000) as u32,
            // Zero to three tags, repeats allowed.
            tags: (0..rng.below(4))
                .map(|_| TAGS[rng.below(TAGS.len() as u64) as usize].to_owned())
                .collect(),
        },
    )
}

/// The panics this test provokes inside write closures are caught and
/// returned as errors; their messages would only clutter the output.
fn quiet_provoked_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&PROVOKED) {
                default(info);
            }
        }));
    });
}

const PROVOKED: &str = "a panic in the closure";

fn settings(name: &str) -> (u64, u64) {
    quiet_provoked_panics();
    let seed = std::env::var("STORAGE_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let ops = std::env::var("STORAGE_MODEL_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_500);
    eprintln!("{name}: {ops} steps, replay with STORAGE_MODEL_SEED={seed}");
    (seed, ops)
}

/// What the test knows besides the records.
struct World {
    model: Model,
    /// A record type's write has committed: by-name writes are refused.
    owned: bool,
    stats: Stats,
}

#[derive(Default, Debug)]
struct Stats {
    steps: u64,
    writes: u64,
    refused: u64,
    aborted: u64,
    snapshots: u64,
    /// Panics caught inside a write closure, the transaction going on.
    caught: u64,
}

/// Whether the refusal `err` of writing `(id, rec)` is justified by `model`.
fn justified(err: &Error, model: &Model, id: u16, rec: &Rec, owned: bool) -> bool {
    match err.root() {
        Error::UniqueViolation {
            index,
            value,
            existing,
            ..
        } => {
            let holder: u16 = existing.parse().unwrap_or(u16::MAX);
            index == "email"
                && *value == format!("{:?}", rec.email)
                && holder != id
                && model.get(&holder).is_some_and(|r| r.email == rec.email)
        }
        Error::TableOwned { .. } => owned,
        _ => false,
    }
}

/// One write through a record type in a transaction, applied to `model`
/// when it succeeds. Returns whether the table was opened for writing
/// through a record type.
fn write_op(
    tx: &WriteTransaction<'_>,
    rng: &mut Rng,
    model: &mut Model,
    owned: bool,
    stats: &mut Stats,
    nested: bool,
) -> bool {
    let kind = KINDS[rng.below(3) as usize];
    let (id, r) = rec(rng);
    macro_rules! on {
        ($module:ident) => {{
            let mut table = tx.records::<$module::Person>();
            match rng.below(if nested { 6 } else { 8 }) {
                0 | 1 => match table.insert(&person!($module, id, r)) {
                    Ok(()) => {
                        model.insert(id, r);
                        stats.writes += 1;
                    }
                    Err(e) => {
                        assert!(
                            justified(&e, model, id, &r, owned),
                            "refused insert of {id} {r:?}: {e}"
                        );
                        stats.refused += 1;
                    }
                },
                2 => {
                    let existed = table.delete(id).expect("delete");
                    assert_eq!(existed, model.remove(&id).is_some(), "delete {id}");
                }
                3 => {
                    // A batch: all items or none.
                    let items: Vec<(u16, Rec)> = (0..1 + rng.below(3)).map(|_| rec(rng)).collect();
                    let people: Vec<_> = items
                        .iter()
                        .map(|(id, r)| person!($module, *id, r))
                        .collect();
                    let mut next = model.clone();
                    match table.insert_batch(&people) {
                        Ok(()) => {
                            next.extend(items);
                            *model = next;
                            stats.writes += 1;
                        }
                        Err(e) => {
                            let item = match &e {
                                Error::Batch { item, .. } => *item,
                                other => panic!("a batch fails as a batch: {other}"),
                            };
                            for (id, r) in &items[..item - 1] {
                                next.insert(*id, r.clone());
                            }
                            let (id, r) = &items[item - 1];
                            assert!(
                                justified(&e, &next, *id, r, owned),
                                "refused batch item {item}: {e}"
                            );
                            stats.refused += 1;
                        }
                    }
                }
                4 => {
                    // `put` under the record's own key, or under another one.
                    let key = if rng.chance(30) {
                        id.wrapping_add(1) % 24
                    } else {
                        id
                    };
                    match table.put(key, &person!($module, id, r)) {
                        Ok(()) => {
                            assert_eq!(key, id, "put under a wrong key was accepted");
                            model.insert(id, r);
                        }
                        Err(Error::KeyMismatch { .. }) => assert_ne!(key, id),
                        Err(e) => assert!(justified(&e, model, id, &r, owned), "refused put: {e}"),
                    }
                }
                6 | 7 => {
                    // A batch whose iterator writes through any record type
                    // while the batch runs (or panics, the panic caught):
                    // those writes are the batch's, kept or undone with it.
                    let items: Vec<(u16, Rec)> = (0..1 + rng.below(3)).map(|_| rec(rng)).collect();
                    let seeds: Vec<u64> = items.iter().map(|_| rng.next()).collect();
                    let panic_at = rng
                        .chance(30)
                        .then(|| rng.below(items.len() as u64) as usize);
                    let inner = std::cell::RefCell::new((model.clone(), Stats::default()));
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        table.insert_batch(items.iter().enumerate().map(|(i, (id, r))| {
                            let (at, stats) = &mut *inner.borrow_mut();
                            if i > 0 {
                                let (id, r) = &items[i - 1];
                                at.insert(*id, r.clone());
                            }
                            if panic_at == Some(i) {
                                std::panic::panic_any(PROVOKED);
                            }
                            write_op(tx, &mut Rng(seeds[i]), at, owned, stats, true);
                            person!($module, *id, r)
                        }))
                    }));
                    let (mut at, inner_stats) = inner.into_inner();
                    match result {
                        Ok(Ok(())) => {
                            let (id, r) = &items[items.len() - 1];
                            at.insert(*id, r.clone());
                            *model = at;
                            stats.writes += 1 + inner_stats.writes;
                        }
                        Ok(Err(e)) => {
                            let item = match &e {
                                Error::Batch { item, .. } => *item,
                                other => panic!("a batch fails as a batch: {other}"),
                            };
                            let (id, r) = &items[item - 1];
                            assert!(
                                justified(&e, &at, *id, r, owned),
                                "refused reentrant batch item {item}: {e}"
                            );
                            stats.refused += 1;
                        }
                        Err(payload) if payload.downcast_ref::<&str>() == Some(&PROVOKED) => {
                            stats.caught += 1;
                        }
                        Err(payload) => std::panic::resume_unwind(payload),
                    }
                }
                _ => {
                    // Read-your-writes through the index, when it answers.
                    let found = table.len().expect("len");
                    assert_eq!(found, model.len() as u64, "len inside the transaction");
                }
            }
        }};
    }
    match kind {
        Kind::Plain => on!(plain),
        Kind::Unique => on!(unique),
        Kind::Multi => on!(multi),
    }
    true
}

/// A by-name write into the table a record type owns: refused.
fn by_name_op(storage: &Storage, rng: &mut Rng, world: &mut World) {
    let (id, r) = rec(rng);
    let value = person!(plain, id, r);
    let result = match rng.below(5) {
        0 => storage.put("people", id, &value),
        1 => storage
            .table::<u16, plain::Person>("people")
            .put(id, &value),
        2 => storage.write_batch("people", |batch| batch.put(id, &value)),
        3 => storage.delete("people", id).map(drop),
        _ => storage
            .backend()
            .put_batch(
                "people",
                [(storage::IntoKeyBytes::into_key_bytes(&id), [0u8; 4])],
            )
            .map(drop),
    };
    match result {
        Err(e) if matches!(e.root(), Error::TableOwned { .. }) => world.stats.refused += 1,
        other => panic!("a by-name write into an owned table: {other:?}"),
    }
}

/// Checks everything a snapshot shows against `model`.
fn check_snapshot(tx: &ReadTransaction<'_>, model: &Model, context: &str) {
    let records: Vec<(u16, Rec)> = tx
        .records::<plain::Person>()
        .scan(|id, p| {
            Some((
                *id,
                Rec {
                    email: p.email().to_owned(),
                    country: p.country().to_owned(),
                    n: p.n(),
                    tags: p.tags().map(str::to_owned).collect(),
                },
            ))
        })
        .unwrap_or_else(|e| panic!("{context}: scan: {e}"));
    let expected: Vec<(u16, Rec)> = model.iter().map(|(k, v)| (*k, v.clone())).collect();
    assert_eq!(records, expected, "{context}: records");
    let mut emails: Vec<String> = model.values().map(|r| r.email.clone()).collect();
    emails.push("nobody@x".into());
    emails.sort();
    emails.dedup();
    let holders = |email: &str| -> Vec<u16> {
        model
            .iter()
            .filter(|(_, r)| r.email == email)
            .map(|(id, _)| *id)
            .collect()
    };
    let uniques = tx.records::<unique::Person>();
    let multis = tx.records::<multi::Person>();
    for email in &emails {
        let want = holders(email);
        match uniques.by_email(email.as_str(), |p| p.id()) {
            Ok(found) => {
                assert!(
                    want.len() <= 1,
                    "{context}: a built unique index over {want:?}"
                );
                assert_eq!(
                    found,
                    want.first().copied(),
                    "{context}: unique by_email({email})"
                );
            }
            Err(Error::IndexNotBuilt { .. }) => {}
            Err(Error::UniqueIndexConflict { keys, value, .. }) => {
                for key in keys.iter() {
                    let key: u16 = key.parse().expect("decoded key");
                    assert_eq!(
                        format!("{:?}", model[&key].email),
                        value,
                        "{context}: conflict"
                    );
                }
            }
            Err(e) => panic!("{context}: unique by_email({email}): {e}"),
        }
        match multis.by_email(email.as_str(), |id, _| Some(*id)) {
            Ok(found) => assert_eq!(found, want, "{context}: multi by_email({email})"),
            Err(Error::IndexNotBuilt { .. }) => {}
            Err(e) => panic!("{context}: multi by_email({email}): {e}"),
        }
    }
    for country in ["NZ", "FR", "DE"] {
        let want: Vec<u16> = model
            .iter()
            .filter(|(_, r)| r.country == country)
            .map(|(id, _)| *id)
            .collect();
        match uniques.by_country(country, |id, _| Some(*id)) {
            Ok(found) => assert_eq!(found, want, "{context}: by_country({country})"),
            Err(Error::IndexNotBuilt { .. }) => {}
            Err(e) => panic!("{context}: by_country({country}): {e}"),
        }
    }
    // The fan-out index: a record once per distinct tag.
    for tag in TAGS {
        let want: Vec<u16> = model
            .iter()
            .filter(|(_, r)| r.tags.iter().any(|t| t == tag))
            .map(|(id, _)| *id)
            .collect();
        match multis.by_tags(tag, |id, _| Some(*id)) {
            Ok(found) => assert_eq!(found, want, "{context}: by_tags({tag})"),
            Err(Error::IndexNotBuilt { .. }) => continue,
            Err(e) => panic!("{context}: by_tags({tag}): {e}"),
        }
        let counted = multis.count_by_tags(tag).expect("count_by_tags");
        assert_eq!(
            counted,
            want.len() as u64,
            "{context}: count_by_tags({tag})"
        );
    }
    // A range over it: once per (distinct tag in range, record), tag order.
    let mut want: Vec<(String, u16)> = Vec::new();
    for (id, r) in model {
        let mut tags: Vec<&String> = r
            .tags
            .iter()
            .filter(|t| t.as_str() >= "b" && t.as_str() < "c")
            .collect();
        tags.sort();
        tags.dedup();
        want.extend(tags.into_iter().map(|t| (t.clone(), *id)));
    }
    want.sort();
    match multis.by_tags_range("b".."c", |id, _| Some(*id)) {
        Ok(found) => assert_eq!(
            found,
            want.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
            "{context}: by_tags_range(b..c)"
        ),
        Err(Error::IndexNotBuilt { .. }) => {}
        Err(e) => panic!("{context}: by_tags_range: {e}"),
    }
    match multis.by_tags_prefix("b", |id, _| Some(*id)) {
        Ok(found) => assert_eq!(
            found,
            want.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
            "{context}: by_tags_prefix(b)"
        ),
        Err(Error::IndexNotBuilt { .. }) => {}
        Err(e) => panic!("{context}: by_tags_prefix: {e}"),
    }
    // The computed index.
    for bucket in 0..BUCKETS {
        let want: Vec<u16> = model
            .iter()
            .filter(|(_, r)| r.n % BUCKETS == bucket)
            .map(|(id, _)| *id)
            .collect();
        match multis.by_bucket(bucket, |id, _| Some(*id)) {
            Ok(found) => assert_eq!(found, want, "{context}: by_bucket({bucket})"),
            Err(Error::IndexNotBuilt { .. }) => {}
            Err(e) => panic!("{context}: by_bucket({bucket}): {e}"),
        }
    }
}

/// The scrub: every index it calls built is exact, and a built unique
/// index means the data holds no value twice.
fn check_scrub(storage: &Storage, model: &Model, context: &str) {
    let unique = storage
        .verify::<unique::Person>()
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    assert!(unique.is_clean(), "{context}: {unique}");
    if unique.indexes[0].built {
        let mut emails: Vec<&str> = model.values().map(|r| r.email.as_str()).collect();
        let all = emails.len();
        emails.sort();
        emails.dedup();
        assert_eq!(
            emails.len(),
            all,
            "{context}: a built unique index over duplicates"
        );
    }
    let multi = storage
        .verify::<multi::Person>()
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    assert!(multi.is_clean(), "{context}: {multi}");
}

/// One random step: a storage-level operation, a transaction, a by-name
/// write, a rebuild, or a snapshot held across further steps.
fn step(storage: &Storage, rng: &mut Rng, world: &mut World, depth: u32) {
    world.stats.steps += 1;
    match rng.below(10) {
        0..=3 => {
            // A transaction of a few writes that commits, fails or panics.
            let mut next = world.model.clone();
            let owned = world.owned;
            let ending = rng.below(10);
            let ops = 1 + rng.below(4);
            let seed = rng.next();
            let mut stats = Stats::default();
            let mut opened = false;
            let result = storage.write(|tx| {
                let mut rng = Rng(seed);
                next = world.model.clone();
                for _ in 0..ops {
                    opened |= write_op(tx, &mut rng, &mut next, owned, &mut stats, false);
                }
                match ending {
                    0 => Err(Error::abort("rolled back")),
                    1 => std::panic::panic_any(PROVOKED),
                    _ => Ok(()),
                }
            });
            world.stats.writes += stats.writes;
            world.stats.refused += stats.refused;
            world.stats.caught += stats.caught;
            match result {
                Ok(()) => {
                    world.model = next;
                    world.owned |= opened;
                }
                Err(Error::Aborted(_) | Error::Panicked { .. }) => world.stats.aborted += 1,
                Err(e) => panic!("transaction failed: {e}"),
            }
        }
        4 | 5 => {
            // A storage-level operation, through a random record type.
            let (id, r) = rec(rng);
            let kind = KINDS[rng.below(3) as usize];
            macro_rules! table_op {
                ($module:ident) => {{
                    let table = storage.records::<$module::Person>();
                    if rng.chance(70) {
                        match table.insert(&person!($module, id, r)) {
                            Ok(()) => {
                                world.model.insert(id, r);
                                world.owned = true;
                            }
                            Err(e) => {
                                assert!(justified(&e, &world.model, id, &r, world.owned), "{e}")
                            }
                        }
                    } else {
                        let existed = table.delete(id).expect("delete");
                        assert_eq!(existed, world.model.remove(&id).is_some());
                        world.owned = true;
                    }
                }};
            }
            match kind {
                Kind::Plain => table_op!(plain),
                Kind::Unique => table_op!(unique),
                Kind::Multi => table_op!(multi),
            }
        }
        6 if world.owned => by_name_op(storage, rng, world),
        7 => {
            // A storage-level query builds the index first; it is exact, or
            // the data holds its unique value twice.
            let email = format!("{}@x", rng.below(30));
            let want: Vec<u16> = world
                .model
                .iter()
                .filter(|(_, r)| r.email == email)
                .map(|(id, _)| *id)
                .collect();
            if rng.chance(50) {
                match storage
                    .records::<unique::Person>()
                    .by_email(email.as_str(), |p| p.id())
                {
                    Ok(found) => assert_eq!(found, want.first().copied()),
                    Err(Error::UniqueIndexConflict { .. }) => {
                        let mut emails: Vec<&str> =
                            world.model.values().map(|r| r.email.as_str()).collect();
                        let all = emails.len();
                        emails.sort();
                        emails.dedup();
                        assert!(emails.len() < all, "a conflict without duplicates");
                    }
                    Err(e) => panic!("query: {e}"),
                }
            } else {
                let found = storage
                    .records::<multi::Person>()
                    .by_email(email.as_str(), |id, _| Some(*id))
                    .expect("query");
                assert_eq!(found, want);
            }
            // A query builds (and so claims the table) only where there is
            // something to index; an empty table answers without a write.
        }
        8 => {
            let rebuilt = if rng.chance(50) {
                storage.rebuild_indexes::<unique::Person>()
            } else {
                storage.rebuild_indexes::<multi::Person>()
            };
            match rebuilt {
                Ok(()) | Err(Error::UniqueIndexConflict { .. }) => world.owned = true,
                Err(e) => panic!("rebuild: {e}"),
            }
        }
        _ if depth == 0 => {
            // A snapshot held across more steps answers as of its own time.
            world.stats.snapshots += 1;
            let before = world.model.clone();
            let more = 1 + rng.below(3);
            storage
                .read(|old| {
                    for _ in 0..more {
                        step(storage, rng, world, depth + 1);
                    }
                    check_snapshot(old, &before, "an old snapshot");
                    Ok(())
                })
                .unwrap();
        }
        _ => {}
    }
}

fn check(storage: &Storage, world: &World, context: &str) {
    storage
        .read(|tx| {
            check_snapshot(tx, &world.model, context);
            Ok(())
        })
        .unwrap();
    check_scrub(storage, &world.model, context);
}

#[test]
fn every_write_path_keeps_every_index_exact_with_readers_in_other_threads() {
    let (seed, ops) = settings("with readers in other threads");
    let storage = Storage::builder()
        .durability(Durability::None)
        .in_memory()
        .unwrap();
    let mut rng = Rng(seed);
    let mut world = World {
        model: Model::new(),
        owned: false,
        stats: Stats::default(),
    };
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (storage, done, reads) = (storage.clone(), done.clone(), reads.clone());
            std::thread::spawn(move || {
                // Each snapshot must agree with itself: its records are the
                // model its index answers are checked against.
                while !done.load(Ordering::Relaxed) {
                    storage
                        .read(|tx| {
                            let model: Model = tx
                                .records::<plain::Person>()
                                .scan(|id, p| {
                                    Some((
                                        *id,
                                        Rec {
                                            email: p.email().to_owned(),
                                            country: p.country().to_owned(),
                                            n: p.n(),
                                            tags: p.tags().map(str::to_owned).collect(),
                                        },
                                    ))
                                })?
                                .into_iter()
                                .collect();
                            check_snapshot(tx, &model, "a reader thread");
                            Ok(())
                        })
                        .unwrap();
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for i in 0..ops {
        let context = format!("step {i}, STORAGE_MODEL_SEED={seed}");
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            step(&storage, &mut rng, &mut world, 0);
            check(&storage, &world, &context);
        }));
        if let Err(panic) = result {
            done.store(true, Ordering::Relaxed);
            eprintln!("failed at {context}");
            std::panic::resume_unwind(panic);
        }
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().expect("reader");
    }
    eprintln!(
        "{:?}; {} snapshots checked by reader threads",
        world.stats,
        reads.load(Ordering::Relaxed)
    );
}

#[test]
fn every_write_path_keeps_every_index_exact_across_reopening() {
    let (seed, ops) = settings("across reopening");
    let (dir, path, storage) = common::temp_storage();
    let mut storage = Some(storage);
    let mut rng = Rng(seed ^ 0x5eed);
    let mut world = World {
        model: Model::new(),
        owned: false,
        stats: Stats::default(),
    };
    for i in 0..ops {
        let context = format!("step {i}, STORAGE_MODEL_SEED={seed}");
        if rng.chance(3) {
            // Close and open again: nothing process-wide survives.
            drop(storage.take());
            storage = Some(Storage::new(&path).unwrap());
        }
        let current = storage.as_ref().expect("open");
        step(current, &mut rng, &mut world, 0);
        check(current, &world, &context);
    }
    eprintln!("{:?}", world.stats);
    drop(dir);
}
