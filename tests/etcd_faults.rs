//! The etcd engine on a real three-member cluster under faults: a member
//! killed during a write load, quorum lost and regained, two processes
//! racing for one unique value, a client SIGKILLed mid-commit, etcd's limits,
//! and an unreachable cluster. Skipped, with a printed line, when the `etcd`
//! binary is not installed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::etcd::{Cluster, namespace};
use storage::{Error, Storage, StoredRecord};

#[derive(Debug, Clone, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "events")]
struct Event {
    #[key]
    batch: u64,
    #[key]
    slot: u8,
    #[index(unique)]
    serial: u64,
    #[index]
    tag: String,
}

const PER_BATCH: u8 = 4;

fn batch(n: u64) -> Vec<Event> {
    (0..PER_BATCH)
        .map(|slot| Event {
            batch: n,
            slot,
            serial: n * u64::from(PER_BATCH) + u64::from(slot),
            tag: format!("batch-{n}"),
        })
        .collect()
}

/// Every acknowledged batch is there whole, and no other batch is there in part.
fn check_batches(storage: &Storage, acknowledged: &[u64]) {
    let keys = storage
        .records::<Event>()
        .scan(|k, _| Some(*k))
        .expect("the records read");
    let mut batches: std::collections::BTreeMap<u64, u8> = Default::default();
    for (batch, _) in &keys {
        *batches.entry(*batch).or_default() += 1;
    }
    for (batch, count) in &batches {
        assert_eq!(*count, PER_BATCH, "batch {batch} is there only in part");
    }
    for batch in acknowledged {
        assert!(
            batches.contains_key(batch),
            "acknowledged batch {batch} is missing"
        );
    }
    assert!(
        storage.verify::<Event>().unwrap().is_clean(),
        "the indexes are exact"
    );
}

#[test]
fn a_member_killed_during_a_write_load_loses_no_acknowledged_commit() {
    let Some(mut cluster) = Cluster::start(3, &[]) else {
        return;
    };
    let ns = namespace("one_down");
    let storage = cluster.storage(&ns);
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(1));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (storage, stop, next) = (storage.clone(), stop.clone(), next.clone());
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                let mut failed = 0;
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    match storage.records::<Event>().insert_batch(batch(n)) {
                        Ok(()) => acknowledged.push((n, Instant::now())),
                        Err(_) => failed += 1,
                    }
                }
                (acknowledged, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    cluster.kill(0);
    let killed_at = Instant::now();
    std::thread::sleep(Duration::from_millis(1_500));
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let mut failed = 0;
    for writer in writers {
        let (done, errors) = writer.join().unwrap();
        acknowledged.extend(done);
        failed += errors;
    }
    let after_kill = acknowledged
        .iter()
        .filter(|(_, at)| *at > killed_at)
        .count();
    assert!(
        after_kill > 10,
        "writes went on after the kill: {after_kill} batches"
    );
    let numbers: Vec<u64> = acknowledged.iter().map(|(n, _)| *n).collect();
    check_batches(&storage, &numbers);
    eprintln!(
        "one member of three killed: {} batches acknowledged, {after_kill} of them after the kill, {failed} refused",
        numbers.len()
    );
}

#[test]
fn without_quorum_writes_fail_in_time_and_nothing_is_lost() {
    let Some(mut cluster) = Cluster::start(3, &[]) else {
        return;
    };
    let ns = namespace("no_quorum");
    let timeout = Duration::from_secs(1);
    let storage = cluster.storage_with(&ns, timeout);
    let mut acknowledged = Vec::new();
    for n in 1..=5 {
        storage.records::<Event>().insert_batch(batch(n)).unwrap();
        acknowledged.push(n);
    }
    cluster.kill(1);
    cluster.kill(2);
    let started = Instant::now();
    let write = storage.records::<Event>().insert_batch(batch(6));
    let took = started.elapsed();
    assert!(matches!(write, Err(Error::Unavailable { .. })), "{write:?}");
    assert!(
        took < timeout + Duration::from_millis(700),
        "the error came in time: {took:?}"
    );
    let read = storage.records::<Event>().len();
    assert!(matches!(read, Err(Error::Unavailable { .. })), "{read:?}");
    cluster.restart(1);
    cluster.restart(2);
    cluster.wait_ready();
    let storage = cluster.storage(&ns);
    // Batch 6 may or may not have committed (its answer was lost), but whole.
    check_batches(&storage, &acknowledged);
    storage.records::<Event>().insert_batch(batch(7)).unwrap();
    eprintln!("quorum lost: typed error after {took:?}");
}

/// Set in the child's environment: the endpoints, the namespace and the id.
const RACE_ENV: &str = "STORAGE_ETCD_RACE";

#[test]
fn race_child() {
    let Ok(spec) = std::env::var(RACE_ENV) else {
        return;
    };
    let mut parts = spec.split(' ');
    let endpoints: Vec<String> = parts
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let ns = parts.next().unwrap();
    let id: u64 = parts.next().unwrap().parse().unwrap();
    let storage = Storage::builder()
        .etcd(endpoints)
        .namespace(ns)
        .open()
        .unwrap();
    // Wait for the parent's go, so that both processes insert at once.
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let event = Event {
        batch: id,
        slot: 0,
        serial: 777,
        tag: "race".into(),
    };
    match storage.records::<Event>().insert(&event) {
        Ok(()) => println!("WON"),
        Err(Error::UniqueViolation { .. }) => println!("LOST"),
        Err(e) => println!("ERROR {e}"),
    }
}

#[test]
fn two_processes_racing_for_one_unique_value_one_wins() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    for round in 0..3 {
        let ns = namespace("race");
        let children: Vec<_> = (1..=2)
            .map(|id| {
                Command::new(&exe)
                    .args(["race_child", "--exact", "--nocapture", "--test-threads=1"])
                    .env(
                        RACE_ENV,
                        format!("{} {ns} {id}", cluster.endpoints.join(",")),
                    )
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let mut children = children;
        for child in &mut children {
            use std::io::Write;
            writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
        }
        let outcomes: Vec<String> = children
            .into_iter()
            .map(|child| {
                let output = child.wait_with_output().unwrap();
                let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
                ["WON", "LOST", "ERROR"]
                    .into_iter()
                    .find(|w| stdout.contains(w))
                    .unwrap_or("NOTHING")
                    .to_owned()
                    + &stdout
            })
            .collect();
        let won = outcomes.iter().filter(|o| o.starts_with("WON")).count();
        let lost = outcomes.iter().filter(|o| o.starts_with("LOST")).count();
        assert_eq!((won, lost), (1, 1), "round {round}: {outcomes:?}");
        let storage = cluster.storage(&ns);
        assert_eq!(storage.records::<Event>().len().unwrap(), 1);
        assert!(storage.verify::<Event>().unwrap().is_clean());
    }
}

const WRITER_ENV: &str = "STORAGE_ETCD_WRITER";

#[test]
fn writer_child() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return;
    };
    let (endpoints, ns) = spec.split_once(' ').unwrap();
    let endpoints: Vec<String> = endpoints.split(',').map(str::to_owned).collect();
    let storage = Storage::builder()
        .etcd(endpoints)
        .namespace(ns)
        .open()
        .unwrap();
    let last = storage
        .table::<&str, u64>("meta")
        .get("last", |n| n.to_native())
        .unwrap()
        .unwrap_or(0);
    for n in last + 1.. {
        storage
            .write(|tx| {
                tx.records::<Event>().insert_batch(batch(n))?;
                tx.table::<&str, u64>("meta").put("last", &n)
            })
            .unwrap();
        println!("ACK {n}");
    }
}

#[test]
fn a_client_killed_mid_commit_leaves_all_or_nothing() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let ns = namespace("killed_client");
    let mut rng = common::Rng(u64::from(std::process::id()));
    let mut acknowledged = Vec::new();
    for _ in 0..5 {
        let mut child = Command::new(&exe)
            .args(["writer_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(WRITER_ENV, format!("{} {ns}", cluster.endpoints.join(",")))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let wanted = 1 + rng.below(5);
        let mut seen = 0;
        while seen < wanted {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(n) = line.split("ACK ").nth(1) {
                        acknowledged.push(n.parse::<u64>().unwrap());
                        seen += 1;
                    }
                }
                _ => break,
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.split("ACK ").nth(1) {
                acknowledged.push(n.parse().unwrap());
            }
        }
        let storage = cluster.storage(&ns);
        check_batches(&storage, &acknowledged);
        // The counter and the records commit together.
        let last = storage
            .table::<&str, u64>("meta")
            .get("last", |n| n.to_native())
            .unwrap()
            .unwrap_or(0);
        let newest = storage
            .records::<Event>()
            .scan(|k, _| Some(k.0))
            .unwrap()
            .into_iter()
            .max()
            .unwrap_or(0);
        assert_eq!(last, newest, "the counter and the records agree");
    }
}

#[test]
fn over_a_limit_is_a_typed_error_naming_it_and_writes_nothing() {
    // etcd's default limits: 128 operations per transaction, 1.5 MiB per request.
    let Some(cluster) = Cluster::start(
        1,
        &["--max-txn-ops", "128", "--max-request-bytes", "1572864"],
    ) else {
        return;
    };
    let storage = cluster.storage(&namespace("limits"));
    let many: Vec<Event> = (0..50).flat_map(batch).collect();
    let err = storage.records::<Event>().insert_batch(&many).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::LimitExceeded {
                limit: "max-txn-ops",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("max-txn-ops"), "{err}");
    let big = vec![7u8; 2 << 20];
    let err = storage.put("blobs", 1u64, &big).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::LimitExceeded {
                limit: "max-request-bytes",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(storage.records::<Event>().len().unwrap(), 0);
    assert_eq!(storage.table::<u64, Vec<u8>>("blobs").len().unwrap(), 0);
}

#[test]
fn an_unreachable_cluster_is_a_typed_error_in_time() {
    if !common::etcd::available() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let opened = Storage::builder()
        .etcd([format!("127.0.0.1:{port}")])
        .timeout(Duration::from_millis(500))
        .open();
    let took = started.elapsed();
    assert!(
        matches!(opened, Err(Error::Unavailable { .. })),
        "{opened:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}
