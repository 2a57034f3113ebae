//! Declared migrations: a chain of record types, each `migrate_from` the one
//! before it, brought up to date by `Storage::migrate` in one transaction —
//! with the indexes of each version, several types at once, refusals that
//! change nothing, and SIGKILL in the middle of a 100,000-record migration.
//!
//! `STORAGE_MIGRATE_KILLS` sets how many times the migration is killed (3 by
//! default) and `STORAGE_MIGRATE_RECORDS` its size (100,000).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use storage::{Error, Storage, StoredRecord};

/// Version 1: no index.
#[derive(Debug, Clone, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "members")]
pub struct MemberV1 {
    #[key]
    pub id: u64,
    pub name: String,
}

/// Version 2: an email, unique.
#[derive(Debug, Clone, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "members", version = 2, migrate_from = MemberV1)]
pub struct MemberV2 {
    #[key]
    pub id: u64,
    pub name: String,
    #[index(unique)]
    pub email: String,
}

impl From<MemberV1> for MemberV2 {
    fn from(old: MemberV1) -> Self {
        MemberV2 {
            email: format!("{}@example.org", old.name.to_lowercase()),
            id: old.id,
            name: old.name,
        }
    }
}

/// Version 3: the name split, an index on the tier, the email index kept.
#[derive(Debug, Clone, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "members", version = 3, migrate_from = MemberV2)]
pub struct Member {
    #[key]
    pub id: u64,
    pub first: String,
    pub last: String,
    #[index(unique)]
    pub email: String,
    #[index]
    pub tier: u8,
}

impl From<MemberV2> for Member {
    fn from(old: MemberV2) -> Self {
        let (first, last) = old.name.split_once(' ').unwrap_or((&old.name, ""));
        Member {
            id: old.id,
            first: first.to_owned(),
            last: last.to_owned(),
            email: old.email,
            tier: (old.id % 3) as u8,
        }
    }
}

#[allow(unused_imports)]
use {MemberIndexes as _, MemberV2Indexes as _};

fn v1(id: u64, name: &str) -> MemberV1 {
    MemberV1 {
        id,
        name: name.into(),
    }
}

fn seeded_v1() -> Storage {
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<MemberV1>()
        .insert_batch([
            v1(1, "Ann Lee"),
            v1(2, "Bo Chan"),
            v1(3, "Cy Dunn"),
            v1(4, "Di Eve"),
        ])
        .unwrap();
    storage
}

#[test]
fn an_older_table_says_which_version_it_holds_and_that_migrate_exists() {
    let storage = seeded_v1();
    let err = storage.records::<Member>().len().unwrap_err();
    let Error::SchemaMismatch { details, .. } = &err else {
        panic!("expected a schema mismatch, got {err}");
    };
    let (hint, stored) = (&details.hint, &details.stored);
    assert!(stored.starts_with("version 1 of `"), "{stored}");
    assert!(
        hint.contains("holds version 1") && hint.contains("storage.migrate::<Member>()"),
        "{hint}"
    );
    // Nothing changed: the old type still reads and writes.
    assert_eq!(storage.records::<MemberV1>().len().unwrap(), 4);
}

#[test]
fn a_three_version_chain_migrates_with_the_indexes_of_the_last() {
    let storage = seeded_v1();
    let mut seen = Vec::new();
    let report = storage
        .migrate_with::<Member>(|done, total| seen.push((done, total)))
        .unwrap();
    assert_eq!(
        (report.from_version, report.to_version, report.records),
        (1, 3, 4)
    );
    assert_eq!(seen.last(), Some(&(4, 4)), "progress ends at the total");
    let members = storage.records::<Member>();
    assert_eq!(
        members
            .get(2, |m| (
                m.first().to_owned(),
                m.last().to_owned(),
                m.email().to_owned()
            ))
            .unwrap(),
        Some(("Bo".into(), "Chan".into(), "bo chan@example.org".into()))
    );
    assert_eq!(
        members.by_email("cy dunn@example.org", |m| m.id()).unwrap(),
        Some(3)
    );
    assert_eq!(members.by_tier(1, |id, _| Some(*id)).unwrap(), [1, 4]);
    assert!(storage.verify::<Member>().unwrap().is_clean());
    // Nothing of the old versions is left: their tables and schema are gone.
    let tables = storage.read(|tx| {
        let mut names = Vec::new();
        storage::Backend::scan(&storage.backend(), storage::SCHEMA_TABLE, |k, _| {
            names.push(String::from_utf8_lossy(k).into_owned());
            Ok(())
        })?;
        let _ = tx;
        Ok(names)
    });
    assert_eq!(tables.unwrap(), ["members"]);
    assert!(matches!(
        storage.records::<MemberV1>().len(),
        Err(Error::SchemaMismatch { .. })
    ));
    // Migrating again is nothing to do.
    let again = storage.migrate::<Member>().unwrap();
    assert_eq!((again.from_version, again.records), (3, 0));
}

#[test]
fn a_middle_version_migrates_too() {
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<MemberV2>()
        .insert(&MemberV2 {
            id: 9,
            name: "Ed Fox".into(),
            email: "ed@x".into(),
        })
        .unwrap();
    assert_eq!(
        storage
            .records::<MemberV2>()
            .by_email("ed@x", |m| m.id())
            .unwrap(),
        Some(9)
    );
    let report = storage.migrate::<Member>().unwrap();
    assert_eq!((report.from_version, report.records), (2, 1));
    assert_eq!(
        storage
            .records::<Member>()
            .by_email("ed@x", |m| m.tier())
            .unwrap(),
        Some(0)
    );
}

/// A second record type with its own two versions, on another table.
#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "robots")]
pub struct RobotV1 {
    #[key]
    pub serial: u32,
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "robots", version = 2, migrate_from = RobotV1)]
pub struct Robot {
    #[key]
    pub serial: u32,
    #[index]
    pub model: String,
}

impl From<RobotV1> for Robot {
    fn from(old: RobotV1) -> Self {
        Robot {
            serial: old.serial,
            model: "T-1".into(),
        }
    }
}

#[test]
fn two_record_types_migrate_in_one_transaction() {
    //! native_db #462: migrating two models at once failed.
    use RobotIndexes as _;
    let storage = seeded_v1();
    storage
        .records::<RobotV1>()
        .insert_batch([RobotV1 { serial: 7 }, RobotV1 { serial: 8 }])
        .unwrap();
    let (members, robots) = storage
        .write(|tx| Ok((tx.migrate::<Member>()?, tx.migrate::<Robot>()?)))
        .unwrap();
    assert_eq!((members.records, robots.records), (4, 2));
    assert_eq!(
        storage
            .records::<Robot>()
            .by_model("T-1", |k, _| Some(*k))
            .unwrap(),
        [7, 8]
    );
    // And both roll back together when the transaction fails.
    let storage = seeded_v1();
    storage
        .records::<RobotV1>()
        .insert(&RobotV1 { serial: 7 })
        .unwrap();
    let failed = storage.write(|tx| {
        tx.migrate::<Member>()?;
        tx.migrate::<Robot>()?;
        Err::<(), _>(Error::abort("changed my mind"))
    });
    assert!(failed.is_err());
    assert_eq!(storage.records::<MemberV1>().len().unwrap(), 4);
    assert_eq!(storage.records::<RobotV1>().len().unwrap(), 1);
}

/// A chain that does not reach version 1: `Gapped` migrates from `Midway`,
/// a root at version 2.
#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "members", version = 2)]
pub struct Midway {
    #[key]
    pub id: u64,
    pub name: String,
    pub email: String,
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "members", version = 3, migrate_from = Midway)]
pub struct Gapped {
    #[key]
    pub id: u64,
    pub name: String,
}

impl From<Midway> for Gapped {
    fn from(old: Midway) -> Self {
        Gapped {
            id: old.id,
            name: old.name,
        }
    }
}

#[test]
fn a_stored_version_outside_the_chain_is_a_typed_error_and_changes_nothing() {
    let storage = seeded_v1();
    let err = storage.migrate::<Gapped>().unwrap_err();
    let Error::SchemaMismatch { details, .. } = &err else {
        panic!("expected a schema mismatch, got {err}");
    };
    let hint = &details.hint;
    assert!(hint.contains("version = 4"), "{hint}");
    assert_eq!(storage.records::<MemberV1>().len().unwrap(), 4);
}

/// Version 2 keyed by name: two old records can convert to one key.
#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "members", version = 2, migrate_from = MemberV1)]
pub struct ByName {
    #[key]
    pub name: String,
    pub id: u64,
}

impl From<MemberV1> for ByName {
    fn from(old: MemberV1) -> Self {
        ByName {
            name: old.name.split(' ').next().unwrap_or_default().to_owned(),
            id: old.id,
        }
    }
}

#[test]
fn records_converging_on_one_key_stop_the_migration() {
    let storage = seeded_v1();
    storage
        .records::<MemberV1>()
        .insert(&v1(5, "Ann Other"))
        .unwrap();
    let err = storage.migrate::<ByName>().unwrap_err();
    assert!(
        matches!(&err, Error::KeyExists { table, key } if table == "members" && key == "\"Ann\""),
        "{err}"
    );
    assert_eq!(storage.records::<MemberV1>().len().unwrap(), 5);
    assert!(
        storage
            .records::<MemberV1>()
            .get(5, |m| m.name().to_owned())
            .unwrap()
            .is_some()
    );
}

/// Set in the child's environment to the database path.
const CHILD_ENV: &str = "STORAGE_MIGRATE_CHILD_DB";

/// The child: migrates the file, printing `DONE` once the migration committed.
#[test]
fn migrate_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Only a child started by the test below does anything.
    };
    let storage = Storage::new(&path).expect("child opens the database");
    println!("START");
    let report = storage.migrate::<Member>().expect("child migrates");
    println!("DONE {}", report.records);
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn sigkill_during_a_migration_leaves_every_record_old_or_every_record_new() {
    use std::io::{BufRead, BufReader};
    let started = std::time::Instant::now();
    let kills = env_number("STORAGE_MIGRATE_KILLS", 3);
    let records = env_number("STORAGE_MIGRATE_RECORDS", 100_000);
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("v1.redb");
    {
        let storage = Storage::builder()
            .durability(storage::Durability::None)
            .open(&template)
            .unwrap();
        let all: Vec<MemberV1> = (0..records)
            .map(|i| v1(i, &format!("Member {i}")))
            .collect();
        for chunk in all.chunks(10_000) {
            storage.records::<MemberV1>().insert_batch(chunk).unwrap();
        }
    }
    let exe = std::env::current_exe().unwrap();
    let run = |path: &std::path::Path, kill_after: Option<Duration>| {
        std::fs::copy(&template, path).unwrap();
        let mut child = Command::new(&exe)
            .args([
                "migrate_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // libtest may print the test's name on the line before its output.
        while let Some(Ok(line)) = lines.next() {
            if line.ends_with("START") {
                break;
            }
        }
        let started = std::time::Instant::now();
        match kill_after {
            Some(delay) => {
                std::thread::sleep(delay);
                child.kill().expect("SIGKILL the child");
                child.wait().unwrap();
            }
            None => {
                let done = lines.next().and_then(Result::ok).unwrap_or_default();
                assert_eq!(
                    done,
                    format!("DONE {records}"),
                    "the whole migration converts every record"
                );
                lines.for_each(drop);
                assert!(child.wait().unwrap().success(), "the migration completes");
            }
        }
        started.elapsed()
    };
    // How long a whole migration takes here, to kill the others within it.
    let whole = run(&dir.path().join("whole.redb"), None);
    let mut rng = common::Rng(records ^ u64::from(std::process::id()));
    let (mut old, mut new) = (0, 0);
    for kill in 0..kills {
        let path = dir.path().join(format!("kill{kill}.redb"));
        // Mostly during the migration, sometimes after it committed.
        let at = whole.mul_f64((rng.below(1_200) as f64 + 1.0) / 1_000.0);
        run(&path, Some(at));
        let storage = Storage::new(&path).expect("the file opens after a kill");
        match storage.records::<MemberV1>().len() {
            Ok(n) => {
                assert_eq!(n, records, "kill {kill}: every record is old");
                let name = storage
                    .records::<MemberV1>()
                    .get(records - 1, |m| m.name().to_owned())
                    .unwrap();
                assert_eq!(name, Some(format!("Member {}", records - 1)));
                old += 1;
            }
            Err(Error::SchemaMismatch { .. }) => {
                assert_eq!(
                    storage.records::<Member>().len().unwrap(),
                    records,
                    "kill {kill}: every record is new"
                );
                assert!(
                    storage.verify::<Member>().unwrap().is_clean(),
                    "kill {kill}: indexes exact"
                );
                new += 1;
            }
            Err(e) => panic!("kill {kill}: {e}"),
        }
    }
    eprintln!(
        "migration of {records} records ({whole:.1?} whole) killed {kills} times: {old} left every record old, {new} every record new; {:.1?} in all",
        started.elapsed()
    );
}

#[test]
fn a_range_opened_before_a_migration_does_not_read_on_with_the_old_type() {
    //! A `Range` of the old type opened before `tx.migrate` in the same
    //! transaction went on decoding the new version's bytes as the old.
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<MemberV1>()
        .insert_batch((0..40).map(|i| v1(i, "Ann Lee")))
        .unwrap();
    let err = storage
        .write(|tx| {
            let old = tx.records::<MemberV1>();
            let mut range = old.iter()?;
            assert_eq!(range.next().unwrap()?.value().name(), "Ann Lee");
            tx.migrate::<MemberV2>()?;
            for entry in range {
                entry?;
            }
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch { .. }), "{err}");
    assert_eq!(storage.records::<MemberV1>().len().unwrap(), 40);
}

/// The v1 layout with an index that duplicates keep from being built.
mod pending {
    #[derive(Debug, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "members")]
    pub struct MemberV1 {
        #[key]
        pub id: u64,
        #[index(unique)]
        pub name: String,
    }
}

impl From<pending::MemberV1> for MemberV2 {
    fn from(old: pending::MemberV1) -> Self {
        MemberV1 {
            id: old.id,
            name: old.name,
        }
        .into()
    }
}

#[test]
fn a_write_with_the_old_type_then_a_migration_commits() {
    //! A write through the old type whose unique index was pending, then
    //! `tx.migrate` in the same transaction: the migration said `Ok` and the
    //! commit was refused with a mismatch telling to bump the old type.
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<MemberV1>()
        .insert_batch([v1(1, "Same"), v1(2, "Same")])
        .unwrap();
    storage
        .write(|tx| {
            tx.records::<pending::MemberV1>()
                .insert(&pending::MemberV1 {
                    id: 3,
                    name: "Other".into(),
                })?;
            tx.migrate::<MemberV2>().map(drop)
        })
        .unwrap();
    let members = storage.records::<MemberV2>();
    assert_eq!(members.len().unwrap(), 3);
    let email = members.get(3, |m| m.email().to_owned()).unwrap();
    assert_eq!(email.as_deref(), Some("other@example.org"));
}

/// v2 keyed by name: the key type changes in a migration.
mod rekeyed {
    #[derive(Debug, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "members", version = 2, migrate_from = super::MemberV1)]
    pub struct Member {
        #[key]
        pub name: String,
        pub id: u64,
    }

    impl From<super::MemberV1> for Member {
        fn from(old: super::MemberV1) -> Self {
            assert!(old.name != "boom", "conversion failed for {}", old.id);
            Member {
                name: old.name,
                id: old.id,
            }
        }
    }
}

#[test]
fn a_damaged_record_found_by_a_migration_is_shown_with_its_old_key() {
    //! A record that did not decode during a migration changing the key type
    //! was shown with its old key decoded as the new type (`"\0..AB"`
    //! instead of `16706`).
    let storage = seeded_v1();
    common::tamper(&storage, "members", |t| {
        t.insert(&16706u64.to_be_bytes()[..], &b"xx"[..]).unwrap();
    });
    let err = storage.migrate::<rekeyed::Member>().unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { shown, .. } if shown == "16706"),
        "{err}"
    );
}

#[test]
fn a_panic_caught_inside_a_migration_keeps_the_transaction_from_committing() {
    //! A panic in `From` caught inside the write closure let the commit keep
    //! the migration's half-filled staging table.
    let storage = seeded_v1();
    storage
        .records::<MemberV1>()
        .insert(&v1(9, "boom"))
        .unwrap();
    let result = storage.write(|tx| {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tx.migrate::<rekeyed::Member>()
        }));
        assert!(caught.is_err());
        Ok(())
    });
    assert!(
        matches!(result, Err(Error::Incomplete { .. })),
        "{result:?}"
    );
    let db = storage.backend().redb().unwrap().database().unwrap();
    let read = redb::ReadableDatabase::begin_read(db).unwrap();
    let staging = read
        .list_tables()
        .unwrap()
        .any(|t| redb::TableHandle::name(&t).starts_with("__migrate"));
    assert!(!staging, "a failed migration's staging table was committed");
    assert_eq!(storage.records::<MemberV1>().len().unwrap(), 5);
}
