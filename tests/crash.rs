//! Crash consistency: a child process commits durable write transactions
//! that each touch a record table (with two indexes) and a counter table,
//! acknowledging each commit on stdout; the parent SIGKILLs it at random
//! moments and checks the reopened file: it opens, every acknowledged batch
//! is there, and no batch is partly there — in the records, the counter or
//! the indexes.
//!
//! `STORAGE_CRASH_KILLS=500 cargo test --release --test crash` runs more kills
//! (50 by default); `STORAGE_CRASH_SEED` replays a run.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::Rng;
use storage::{Storage, StoredRecord};

/// Records per batch.
const PER_BATCH: u32 = 5;
/// Set in the child's environment to the database path.
const CHILD_ENV: &str = "STORAGE_CRASH_CHILD_DB";

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "items")]
struct Item {
    #[key]
    batch: u64,
    #[key]
    slot: u32,
    #[index]
    tag: String,
    #[index(unique)]
    serial: u64,
    payload: Vec<u8>,
}

fn item(batch: u64, slot: u32) -> Item {
    Item {
        batch,
        slot,
        tag: format!("batch-{batch}"),
        serial: batch * u64::from(PER_BATCH) + u64::from(slot),
        payload: vec![batch as u8; 64 + (slot as usize * 97) % 400],
    }
}

/// The child: commits batches forever, printing `ACK n` after each commit returns.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Only a child started by the test below does anything.
    };
    let storage = Storage::new(&path).expect("child opens the database");
    let mut batch = storage
        .table::<&str, u64>("meta")
        .get("batch", |n| n.to_native())
        .expect("child reads the counter")
        .unwrap_or(0);
    loop {
        batch += 1;
        storage
            .write(|tx| {
                let mut items = tx.records::<Item>();
                for slot in 0..PER_BATCH {
                    items.insert(&item(batch, slot))?;
                }
                tx.table::<&str, u64>("meta").put("batch", &batch)
            })
            .expect("child commits");
        println!("ACK {batch}");
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Opens the file and checks that exactly batches `1..=committed` are there,
/// with their index entries; returns `committed`.
fn verify(path: &Path) -> u64 {
    let storage = Storage::new(path).expect("the file opens after a kill");
    let committed = storage
        .table::<&str, u64>("meta")
        .get("batch", |n| n.to_native())
        .expect("the counter reads")
        .unwrap_or(0);
    let items = storage.records::<Item>();
    let keys = items.scan(|key, _| Some(*key)).expect("records read");
    let expected: Vec<(u64, u32)> = (1..=committed)
        .flat_map(|b| (0..PER_BATCH).map(move |s| (b, s)))
        .collect();
    assert_eq!(keys, expected, "records are exactly the committed batches");
    for batch in [1, committed / 2, committed].into_iter().filter(|b| *b > 0) {
        let tagged = items
            .by_tag(format!("batch-{batch}"), |k, _| Some(*k))
            .expect("index reads");
        assert_eq!(
            tagged.len(),
            PER_BATCH as usize,
            "index `tag` of batch {batch}"
        );
        let serial = batch * u64::from(PER_BATCH);
        let found = items
            .by_serial(serial, |i| i.slot())
            .expect("unique index reads");
        assert_eq!(found, Some(0), "index `serial` of batch {batch}");
    }
    for index in ["tag", "serial"] {
        let mut entries = 0;
        storage
            .backend()
            .scan(&format!("__index:items:{index}"), |_, _| {
                entries += 1;
                Ok(())
            })
            .expect("index table scans");
        assert_eq!(
            entries,
            expected.len(),
            "no orphan or missing entries in index `{index}`"
        );
    }
    committed
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_batch() {
    let kills = env_number("STORAGE_CRASH_KILLS", 50);
    let seed = env_number("STORAGE_CRASH_SEED", u64::from(std::process::id()) ^ 0x5EED);
    eprintln!("crash test: {kills} kills, STORAGE_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let exe = std::env::current_exe().unwrap();

    let started = Instant::now();
    let mut acknowledged = 0u64;
    let mut committed = 0u64;
    let mut mid_batch = 0u32;
    for kill in 0..kills {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        // Let it commit a few batches, then kill it at a random moment.
        let wait_for = 1 + rng.next() % 6;
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen < wait_for && Instant::now() < deadline {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("ACK ") => {
                    acknowledged = line[4..].parse().unwrap();
                    seen += 1;
                }
                Some(_) => {}
                None => break,
            }
        }
        std::thread::sleep(Duration::from_micros(rng.next() % 3_000));
        child.kill().expect("SIGKILL the child");
        child.wait().unwrap();
        // Acknowledgements written before the kill count too.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("ACK ") {
                acknowledged = n.parse().unwrap();
            }
        }
        committed = verify(&path);
        assert!(
            committed >= acknowledged,
            "kill {kill}: batch {acknowledged} was acknowledged but only {committed} survived (seed {seed})"
        );
        assert!(
            committed <= acknowledged + 1,
            "kill {kill}: {committed} batches found, {acknowledged} acknowledged (seed {seed})"
        );
        if committed == acknowledged + 1 {
            mid_batch += 1; // Killed after the commit, before the acknowledgement.
        }
    }
    eprintln!(
        "crash test: {kills} kills survived in {:.1?}; {committed} batches ({} records) committed; \
         {mid_batch} kills fell between a commit and its acknowledgement",
        started.elapsed(),
        committed * u64::from(PER_BATCH)
    );
}
