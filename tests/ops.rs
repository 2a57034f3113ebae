//! Looking after a database: compact gives the space back and refuses, at
//! once, while the storage is shared; stats count what is there; a backup
//! is one snapshot taken while writers go on and opens as a database; a
//! read-only open writes nothing and says so.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use storage::{Error, Storage, StoredRecord, TableKind};

#[derive(
    Debug, Clone, PartialEq, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[stored(table = "events")]
pub struct Event {
    #[key]
    pub id: u64,
    #[index]
    pub kind: String,
    pub body: Vec<u8>,
}

fn event(id: u64) -> Event {
    Event {
        id,
        kind: format!("kind-{}", id % 3),
        body: vec![id as u8; 1_000],
    }
}

#[test]
fn compact_gives_back_what_deletes_left_and_refuses_while_shared() {
    //! 50,000 records inserted and deleted left 39 MiB after reopening, and
    //! `compact` could not be called at all.
    let (_dir, path, mut storage) = common::temp_storage();
    for chunk in (0..20_000u64).collect::<Vec<_>>().chunks(1_000) {
        storage
            .records::<Event>()
            .insert_batch(chunk.iter().map(|i| event(*i)))
            .unwrap();
    }
    storage.records::<Event>().clear().unwrap();
    let clone = storage.clone();
    let busy = storage.compact().unwrap_err();
    assert!(
        matches!(
            busy,
            Error::Busy {
                operation: "compact",
                ..
            }
        ),
        "{busy}"
    );
    drop(clone);
    let table = storage.records::<Event>();
    assert!(
        matches!(storage.compact(), Err(Error::Busy { .. })),
        "a Table is a handle"
    );
    drop(table);
    let before = std::fs::metadata(&path).unwrap().len();
    let report = storage.compact().unwrap();
    assert!(report.compacted);
    assert_eq!(report.bytes_before, Some(before));
    assert!(
        report.reclaimed() > before / 2,
        "{report:?}: the file should shrink to a fraction"
    );
    // Still the same database.
    storage.records::<Event>().insert(&event(1)).unwrap();
    assert!(storage.verify::<Event>().unwrap().is_clean());
}

#[test]
fn stats_name_every_table_and_count_it() {
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<Event>()
        .insert_batch((0..30).map(event))
        .unwrap();
    storage.put("notes", 1u32, &String::from("hello")).unwrap();
    let stats = storage.stats().unwrap();
    let of = |name: &str| stats.tables.iter().find(|t| t.name == name).unwrap();
    let events = of("events");
    assert!(
        matches!(&events.kind, TableKind::Records { version: 1, .. }),
        "{:?}",
        events.kind
    );
    assert_eq!(events.entries, 30);
    assert_eq!(events.key_bytes, 30 * 8);
    assert!(events.value_bytes > 30 * 1_000);
    assert_eq!(
        of("__index:events:kind").kind,
        TableKind::Index {
            table: "events".into(),
            index: "kind".into()
        }
    );
    assert_eq!(of("__index:events:kind").entries, 30);
    assert_eq!(of("notes").kind, TableKind::Named);
    assert_eq!(of("__storage_schema").kind, TableKind::Schema);
    assert!(stats.allocated_bytes.is_some());
    // Inside a write, stats do not wait for it (nor fail): the allocation
    // is what cannot be told then.
    let inside = storage
        .write(|tx| {
            tx.table::<u32, u32>("counters").put(1u32, &1)?;
            storage.stats()
        })
        .unwrap();
    assert!(inside.allocated_bytes.is_none());
    assert!(inside.tables.iter().any(|t| t.name == "events"));
}

#[test]
fn a_backup_is_one_snapshot_while_writers_go_on() {
    let (dir, _path, storage) = common::temp_storage();
    storage
        .records::<Event>()
        .insert_batch((0..5_000).map(event))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (storage, stop) = (storage.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut id = 5_000;
            while !stop.load(Ordering::Relaxed) {
                storage.records::<Event>().insert(&event(id)).unwrap();
                id += 1;
            }
            id
        })
    };
    let backup = dir.path().join("backup.redb");
    let report = storage.backup_to(&backup).unwrap();
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    let copy = Storage::new(&backup).unwrap();
    let n = copy.records::<Event>().len().unwrap();
    assert!((5_000..=written).contains(&n), "{n} records in the copy");
    // One snapshot: records 0..n exactly, with every index entry.
    let ids = copy.records::<Event>().scan(|k, _| Some(*k)).unwrap();
    assert_eq!(ids, (0..n).collect::<Vec<_>>());
    assert!(copy.verify::<Event>().unwrap().is_clean());
    assert!(
        report.entries >= n * 2,
        "records and index entries: {report:?}"
    );
    // Never over an existing file.
    let again = storage.backup_to(&backup).unwrap_err();
    assert!(matches!(again, Error::Open { .. }), "{again}");
}

#[test]
fn read_only_writes_nothing_and_a_locked_file_says_so() {
    let (_dir, path, storage) = common::temp_storage();
    storage.records::<Event>().insert(&event(1)).unwrap();
    // Locked by the running writer (another handle in this process).
    let locked = Storage::builder().read_only().open(&path).unwrap_err();
    assert!(matches!(locked, Error::AlreadyOpen { .. }), "{locked}");
    drop(storage);
    let reader = Storage::builder().read_only().open(&path).unwrap();
    assert_eq!(reader.records::<Event>().len().unwrap(), 1);
    let refused = reader.records::<Event>().insert(&event(2)).unwrap_err();
    assert!(matches!(refused, Error::ReadOnly), "{refused}");
    assert!(matches!(
        reader.put("notes", 1u32, &1u32),
        Err(Error::ReadOnly)
    ));
    drop(reader);
    assert_eq!(
        Storage::new(&path)
            .unwrap()
            .records::<Event>()
            .len()
            .unwrap(),
        1
    );
    let missing = Storage::builder()
        .read_only()
        .open(path.with_extension("nope"))
        .unwrap_err();
    assert!(matches!(missing, Error::Open { .. }), "{missing}");
    assert!(
        !path.with_extension("nope").exists(),
        "a read-only open creates nothing"
    );
}
