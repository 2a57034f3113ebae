//! The change feed: subscriptions checked against a model of the committed
//! operations under random transactions (commits, aborts, panics, failed
//! batches), bounded queues that lag instead of growing, the durable log
//! across SIGKILL and restarts, and delivery across processes on etcd.
//!
//! `STORAGE_FEED_OPS=20000` runs more model steps (1,500 by default);
//! `STORAGE_FEED_SEED` replays a run; `STORAGE_FEED_KILLS` sets the kills.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Rng;
use storage::{ChangeKind, Error, Notice, Storage, StoredRecord};

#[derive(
    Debug, Clone, PartialEq, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[stored(table = "items", changes)]
pub struct Item {
    #[key]
    pub id: u16,
    #[index]
    pub group: u8,
    #[index(unique)]
    pub code: u32,
    pub note: String,
}

/// What a change looks like in the model: kind, key, old and new records.
type Seen = (ChangeKind, u16, Option<Item>, Option<Item>);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn item(rng: &mut Rng) -> Item {
    let id = rng.below(40) as u16;
    Item {
        id,
        group: rng.below(4) as u8,
        code: rng.below(60) as u32,
        note: format!("note {}", rng.below(1000)),
    }
}

/// The changes of one commit as a subscription hands them out.
fn seen(notice: Notice<Item>) -> Vec<Seen> {
    match notice {
        Notice::Commit(commit) => commit
            .changes()
            .iter()
            .map(|c| {
                let owned = |image: Option<&storage::Image<Item>>| {
                    image.map(|i| i.to_owned().expect("a validated record deserializes"))
                };
                (c.kind(), *c.key(), owned(c.before()), owned(c.after()))
            })
            .collect(),
        Notice::Lagged { missed } => panic!("lagged by {missed} with room to spare"),
    }
}

/// What a filter passes: a change whose key or index value (before or
/// after) matches.
fn filtered(
    changes: &[Seen],
    pass: impl Fn(&Item) -> bool,
    key: impl Fn(u16) -> bool,
) -> Vec<Seen> {
    changes
        .iter()
        .filter(|(_, id, old, new)| {
            key(*id) && (old.as_ref().is_some_and(&pass) || new.as_ref().is_some_and(&pass))
        })
        .cloned()
        .collect()
}

fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&"provoked") {
                default(info);
            }
        }));
    });
}

#[test]
fn subscribers_see_exactly_the_committed_changes_in_order() {
    quiet_panics();
    let steps = env_number("STORAGE_FEED_OPS", 1_500);
    let seed = env_number("STORAGE_FEED_SEED", u64::from(std::process::id()));
    eprintln!("feed model: {steps} steps, STORAGE_FEED_SEED={seed}");
    let mut rng = Rng(seed);
    let storage = Storage::in_memory().unwrap();
    let mut all = storage.watch::<Item>().capacity(1 << 20);
    let mut keys = storage.watch::<Item>().keys(10u16..20).capacity(1 << 20);
    let mut group = storage.watch::<Item>().by_group(2).capacity(1 << 20);
    let mut codes = storage
        .watch::<Item>()
        .by_code_range(..10u32)
        .capacity(1 << 20);
    let mut model: BTreeMap<u16, Item> = BTreeMap::new();
    let mut commits = 0;
    let mut seq = 0;
    for step in 0..steps {
        let ending = rng.below(10);
        let ops = 1 + rng.below(5);
        let txn_seed = rng.next();
        let mut expected: Vec<Seen> = Vec::new();
        let mut next = model.clone();
        let result = storage.write(|tx| {
            let mut rng = Rng(txn_seed);
            expected.clear();
            next = model.clone();
            let mut items = tx.records::<Item>();
            for _ in 0..ops {
                match rng.below(4) {
                    0 | 1 => {
                        let new = item(&mut rng);
                        let clash = next.values().any(|i| i.code == new.code && i.id != new.id);
                        match items.insert(&new) {
                            Ok(()) => {
                                assert!(!clash);
                                let old = next.insert(new.id, new.clone());
                                let kind = if old.is_some() {
                                    ChangeKind::Update
                                } else {
                                    ChangeKind::Insert
                                };
                                expected.push((kind, new.id, old, Some(new)));
                            }
                            Err(Error::UniqueViolation { .. }) => assert!(clash),
                            Err(e) => return Err(e),
                        }
                    }
                    2 => {
                        let id = rng.below(40) as u16;
                        let existed = items.delete(id)?;
                        let old = next.remove(&id);
                        assert_eq!(existed, old.is_some());
                        if let Some(old) = old {
                            expected.push((ChangeKind::Delete, id, Some(old), None));
                        }
                    }
                    _ => {
                        // A batch, which fails as a whole on a unique clash.
                        let batch: Vec<Item> =
                            (0..1 + rng.below(3)).map(|_| item(&mut rng)).collect();
                        let mut after = next.clone();
                        let mut changes = Vec::new();
                        let mut ok = true;
                        for new in &batch {
                            if after.values().any(|i| i.code == new.code && i.id != new.id) {
                                ok = false;
                                break;
                            }
                            let old = after.insert(new.id, new.clone());
                            let kind = if old.is_some() {
                                ChangeKind::Update
                            } else {
                                ChangeKind::Insert
                            };
                            changes.push((kind, new.id, old, Some(new.clone())));
                        }
                        match items.insert_batch(&batch) {
                            Ok(()) => {
                                assert!(ok, "batch accepted against the model");
                                next = after;
                                expected.extend(changes);
                            }
                            Err(Error::Batch { .. }) => {
                                assert!(!ok, "batch refused against the model")
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
            match ending {
                0 => Err(Error::abort("rolled back")),
                1 => std::panic::panic_any("provoked"),
                _ => Ok(()),
            }
        });
        let committed = match result {
            Ok(()) => true,
            Err(Error::Aborted(_) | Error::Panicked { .. }) => false,
            Err(e) => panic!("step {step}: {e} (seed {seed})"),
        };
        let context = format!("step {step}, seed {seed}");
        let got = all.try_next().map(|n| seen(n.unwrap()));
        if committed {
            model = next;
            commits += 1;
            if expected.is_empty() {
                assert!(
                    got.is_none(),
                    "{context}: an event for a commit without changes"
                );
            } else {
                assert_eq!(
                    got.as_deref(),
                    Some(&expected[..]),
                    "{context}: whole table"
                );
                seq += 1;
            }
        } else {
            assert!(
                got.is_none(),
                "{context}: an event for a transaction that did not commit"
            );
            expected.clear();
        }
        for (sub, want) in [
            (
                &mut keys,
                filtered(&expected, |_| true, |id| (10..20).contains(&id)),
            ),
            (&mut group, filtered(&expected, |i| i.group == 2, |_| true)),
            (&mut codes, filtered(&expected, |i| i.code < 10, |_| true)),
        ] {
            let got = sub.try_next().map(|n| seen(n.unwrap()));
            if want.is_empty() {
                assert!(
                    got.is_none(),
                    "{context}: a filtered subscription got {got:?}"
                );
            } else {
                assert_eq!(got.as_deref(), Some(&want[..]), "{context}: filtered");
            }
        }
    }
    // The durable log holds the same commits, and the table is its replay.
    let log = storage.changes::<Item>().since(0, usize::MAX).unwrap();
    assert_eq!(log.len(), seq, "one logged commit per commit with changes");
    let mut replay: BTreeMap<u16, Item> = BTreeMap::new();
    for (i, commit) in log.iter().enumerate() {
        assert_eq!(commit.seq(), Some(i as u64 + 1));
        for change in commit.changes() {
            match change.after() {
                Some(new) => replay.insert(*change.key(), new.to_owned().unwrap()),
                None => replay.remove(change.key()),
            };
        }
    }
    assert_eq!(replay, model, "the log replays to the table");
    let stored: BTreeMap<u16, Item> = storage
        .records::<Item>()
        .scan(|_, i| {
            Some((
                i.id(),
                rkyv::deserialize::<Item, rkyv::rancor::Error>(i).unwrap(),
            ))
        })
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(stored, model);
    eprintln!("feed model: {commits} commits, {seq} with changes");
}

#[test]
fn a_subscriber_that_never_reads_lags_and_holds_only_its_capacity() {
    let storage = Storage::in_memory().unwrap();
    let mut stalled = storage.watch::<Item>().capacity(10);
    for i in 0..500u16 {
        storage
            .records::<Item>()
            .insert(&Item {
                id: i % 40,
                group: 0,
                code: u32::from(i),
                note: String::new(),
            })
            .ok();
    }
    let mut delivered = 0;
    let mut missed = 0;
    while let Some(notice) = stalled.try_next() {
        match notice.unwrap() {
            Notice::Commit(commit) => delivered += commit.changes().len() as u64,
            Notice::Lagged { missed: m } => missed += m,
        }
    }
    assert_eq!(delivered, 10, "the queue held its capacity");
    assert_eq!(
        delivered + missed,
        500,
        "every change delivered or counted as missed"
    );
    // It keeps going after the gap.
    storage
        .records::<Item>()
        .insert(&Item {
            id: 1,
            group: 0,
            code: 9_999,
            note: String::new(),
        })
        .unwrap();
    assert!(matches!(stalled.try_next(), Some(Ok(Notice::Commit(_)))));
}

#[test]
fn dropping_a_subscription_unsubscribes_and_dropping_the_storage_ends_it() {
    let storage = Storage::in_memory().unwrap();
    let watching = storage.watch::<Item>();
    drop(watching);
    let mut last = storage.watch::<Item>();
    storage
        .records::<Item>()
        .insert(&Item {
            id: 1,
            group: 0,
            code: 1,
            note: String::new(),
        })
        .unwrap();
    drop(storage);
    assert!(matches!(last.next(), Some(Ok(Notice::Commit(_)))));
    assert!(
        last.next().is_none(),
        "iteration ends once the storage is gone"
    );
}

#[test]
fn a_consumer_resumes_after_a_restart_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.redb");
    let write = |storage: &Storage, from: u16, to: u16| {
        for id in from..to {
            storage
                .records::<Item>()
                .insert(&Item {
                    id,
                    group: 1,
                    code: u32::from(id),
                    note: String::new(),
                })
                .unwrap();
        }
    };
    // The consumer stores its position with what it did, in one transaction.
    let consume = |storage: &Storage, handled: &mut Vec<u16>| {
        let position = storage
            .table::<&str, u64>("consumer")
            .get("position", |p| p.to_native())
            .unwrap()
            .unwrap_or(0);
        for commit in storage.changes::<Item>().since(position, 7).unwrap() {
            handled.extend(commit.changes().iter().map(|c| *c.key()));
            let seq = commit.seq().unwrap();
            storage.put("consumer", "position", &seq).unwrap();
        }
    };
    let mut handled = Vec::new();
    {
        let storage = Storage::new(&path).unwrap();
        write(&storage, 0, 10);
        consume(&storage, &mut handled);
    }
    {
        let storage = Storage::new(&path).unwrap();
        write(&storage, 10, 25);
        consume(&storage, &mut handled);
        consume(&storage, &mut handled);
        consume(&storage, &mut handled);
    }
    assert_eq!(
        handled,
        (0..25).collect::<Vec<_>>(),
        "each change once, in order"
    );
}

#[test]
fn trimming_says_when_a_position_is_gone() {
    let storage = Storage::in_memory().unwrap();
    for id in 0..10u16 {
        storage
            .records::<Item>()
            .insert(&Item {
                id,
                group: 0,
                code: u32::from(id),
                note: String::new(),
            })
            .unwrap();
    }
    let log = storage.changes::<Item>();
    assert_eq!(log.last_seq().unwrap(), Some(10));
    assert_eq!(log.trim_before(4).unwrap(), 3);
    assert_eq!(log.first_kept().unwrap(), 4);
    assert_eq!(
        log.since(3, 100).unwrap().len(),
        7,
        "position 3 still resumes"
    );
    let gone = log.since(2, 100).unwrap_err();
    assert!(
        matches!(
            gone,
            Error::ChangesTrimmed {
                after: 2,
                first: 4,
                ..
            }
        ),
        "{gone}"
    );
    assert_eq!(log.keep_last(2).unwrap(), 5);
    let kept: Vec<u64> = log
        .since(8, 100)
        .unwrap()
        .iter()
        .filter_map(|c| c.seq())
        .collect();
    assert_eq!(kept, [9, 10]);
    // Sequence numbers go on after a trim.
    storage
        .records::<Item>()
        .insert(&Item {
            id: 99,
            group: 0,
            code: 99,
            note: String::new(),
        })
        .unwrap();
    assert_eq!(log.last_seq().unwrap(), Some(11));
}

/// Set in the child's environment to the database path.
const CHILD_ENV: &str = "STORAGE_FEED_CHILD_DB";

/// The records of commit `n` of the child: three, keyed by `n`.
fn commit_items(n: u64) -> Vec<Item> {
    (0..3)
        .map(|i| Item {
            id: ((n * 3 + i) % 30_000) as u16,
            group: (n % 4) as u8,
            code: (n * 3 + i) as u32,
            note: format!("commit {n}"),
        })
        .collect()
}

/// The child: commits forever, printing `ACK n` after each commit returns;
/// every third transaction aborts after writing.
#[test]
fn feed_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let storage = Storage::new(&path).expect("child opens the database");
    let mut n = storage
        .changes::<Item>()
        .last_seq()
        .expect("log")
        .unwrap_or(0);
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        let abort = attempt.is_multiple_of(3);
        let result = storage.write(|tx| {
            let mut items = tx.records::<Item>();
            let records = if abort {
                vec![Item {
                    id: 40_000,
                    group: 9,
                    code: u32::MAX,
                    note: "aborted".into(),
                }]
            } else {
                commit_items(n + 1)
            };
            for record in &records {
                items.insert(record)?;
            }
            if abort {
                Err(Error::abort("aborted on purpose"))
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) => {
                n += 1;
                println!("ACK {n}");
            }
            Err(Error::Aborted(_)) => {}
            Err(e) => panic!("child: {e}"),
        }
    }
}

#[test]
fn sigkill_during_commits_leaves_exactly_the_acknowledged_commits_in_the_log() {
    let kills = env_number("STORAGE_FEED_KILLS", 15);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed-crash.redb");
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged = 0u64;
    for kill in 0..kills {
        let mut child = Command::new(&exe)
            .args(["feed_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let wait_for = 2 + kill % 5;
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
        std::thread::sleep(Duration::from_micros(kill * 397 % 2_000));
        child.kill().expect("SIGKILL the child");
        child.wait().unwrap();
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("ACK ") {
                acknowledged = n.parse().unwrap();
            }
        }
        let storage = Storage::new(&path).expect("the file opens after a kill");
        let log = storage.changes::<Item>().since(0, usize::MAX).unwrap();
        let committed = log.len() as u64;
        assert!(
            committed == acknowledged || committed == acknowledged + 1,
            "kill {kill}: {committed} commits logged, {acknowledged} acknowledged"
        );
        for (i, commit) in log.iter().enumerate() {
            let n = i as u64 + 1;
            assert_eq!(commit.seq(), Some(n));
            let records: Vec<Item> = commit
                .changes()
                .iter()
                .map(|c| c.after().unwrap().to_owned().unwrap())
                .collect();
            assert_eq!(
                records,
                commit_items(n),
                "kill {kill}: commit {n} is whole and its own"
            );
        }
        assert_eq!(
            storage.records::<Item>().get(40_000, |_| ()).unwrap(),
            None,
            "an aborted transaction left a record"
        );
        acknowledged = committed;
    }
}

#[test]
fn follow_delivers_a_child_process_commits_on_etcd() {
    //! On etcd a follower sees the commits another process makes in the
    //! namespace, through the durable log.
    if let Ok(spec) = std::env::var("STORAGE_FEED_ETCD_CHILD") {
        let (namespace, endpoints) = spec.split_once('|').expect("namespace|endpoints");
        let storage = Storage::builder()
            .etcd(endpoints.split(',').map(str::to_owned).collect::<Vec<_>>())
            .namespace(namespace)
            .open()
            .expect("child opens the namespace");
        for id in 100..103u16 {
            storage
                .records::<Item>()
                .insert(&Item {
                    id,
                    group: 0,
                    code: u32::from(id),
                    note: "child".into(),
                })
                .expect("child writes");
        }
        return;
    }
    let Some(cluster) = common::etcd::Cluster::shared() else {
        return;
    };
    let namespace = common::etcd::namespace("feed-child");
    let reader = cluster.storage(&namespace);
    let mut follow = reader
        .changes::<Item>()
        .follow(0, Duration::from_millis(20));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "follow_delivers_a_child_process_commits_on_etcd",
            "--exact",
            "--test-threads=1",
        ])
        .env(
            "STORAGE_FEED_ETCD_CHILD",
            format!("{namespace}|{}", cluster.endpoints.join(",")),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the writing process");
    let mut got = Vec::new();
    while got.len() < 3 {
        let commit = follow
            .next_timeout(Duration::from_secs(30))
            .expect("the child's commit within the timeout")
            .unwrap();
        got.extend(commit.changes().iter().map(|c| *c.key()));
    }
    assert!(
        child.wait().unwrap().success(),
        "the child wrote its records"
    );
    assert_eq!(got, [100, 101, 102]);
}

#[test]
fn a_subscription_is_an_async_stream() {
    use futures_util::StreamExt as _;
    let storage = Storage::in_memory().unwrap();
    let stream = storage.watch::<Item>().into_stream();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let writer = storage.clone();
    let got = runtime.block_on(async move {
        let writes = tokio::task::spawn_blocking(move || {
            for id in 0..3u16 {
                writer
                    .records::<Item>()
                    .insert(&Item {
                        id,
                        group: 0,
                        code: u32::from(id),
                        note: String::new(),
                    })
                    .unwrap();
            }
        });
        let keys: Vec<u16> = stream
            .take(3)
            .map(|notice| match notice.unwrap() {
                Notice::Commit(commit) => *commit.changes()[0].key(),
                Notice::Lagged { .. } => u16::MAX,
            })
            .collect()
            .await;
        writes.await.unwrap();
        keys
    });
    assert_eq!(got, [0, 1, 2]);
}

mod versions {
    #[derive(Debug, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "events", changes)]
    pub struct V1 {
        #[key]
        pub id: u32,
        pub n: u32,
    }

    #[derive(Debug, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "events", version = 2, migrate_from = V1, changes)]
    pub struct V2 {
        #[key]
        pub id: u32,
        pub n: u64,
    }

    impl From<V1> for V2 {
        fn from(old: V1) -> Self {
            V2 {
                id: old.id,
                n: u64::from(old.n),
            }
        }
    }
}

#[test]
fn a_migration_restarts_the_log_without_reusing_sequence_numbers() {
    //! The log of a migrated table held the older version's bytes, which the
    //! new type cannot read: the migration empties it, sequence numbers go on,
    //! and a consumer behind it is told.
    let storage = Storage::in_memory().unwrap();
    for id in 0..3 {
        storage
            .records::<versions::V1>()
            .insert(&versions::V1 { id, n: id })
            .unwrap();
    }
    storage.migrate::<versions::V2>().unwrap();
    storage
        .records::<versions::V2>()
        .insert(&versions::V2 { id: 9, n: 9 })
        .unwrap();
    let log = storage.changes::<versions::V2>();
    assert!(matches!(
        log.since(0, 10),
        Err(Error::ChangesTrimmed { first: 4, .. })
    ));
    let after: Vec<u64> = log
        .since(3, 10)
        .unwrap()
        .iter()
        .filter_map(|c| c.seq())
        .collect();
    assert_eq!(after, [4]);
}

// Regressions found by a hostile run (one test each; the first line says
// what broke).

#[derive(
    Debug, Clone, PartialEq, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[stored(table = "prices")]
pub struct Price {
    #[key]
    pub id: u32,
    pub cents: u32,
}

#[test]
fn a_subscription_made_while_a_transaction_writes_hears_that_it_missed_it() {
    //! A subscription made after a running transaction's first write never
    //! got that commit, and no `Lagged` either: a cache built as
    //! "subscribe, snapshot, apply notices" stayed stale for good.
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<Price>()
        .insert(&Price { id: 1, cents: 100 })
        .unwrap();
    let (subscribe, subscribed) = std::sync::mpsc::channel::<()>();
    let (done, wait) = std::sync::mpsc::channel::<storage::Subscription<Price>>();
    let other = storage.clone();
    let reader = std::thread::spawn(move || {
        subscribed.recv().unwrap();
        done.send(other.watch::<Price>()).unwrap();
    });
    let mut late = None;
    storage
        .write(|tx| {
            tx.records::<Price>().insert(&Price { id: 1, cents: 200 })?;
            subscribe.send(()).unwrap();
            late = Some(wait.recv().unwrap());
            Ok(())
        })
        .unwrap();
    reader.join().unwrap();
    let mut late = late.unwrap();
    assert!(
        matches!(late.try_next(), Some(Ok(Notice::Lagged { missed: 1 }))),
        "the late subscriber must learn it missed the commit"
    );
    drop(late);
    // And one made inside the closure, on the writing thread.
    let mut inside = storage
        .write(|tx| {
            tx.records::<Price>().insert(&Price { id: 2, cents: 1 })?;
            let subscription = storage.watch::<Price>();
            tx.records::<Price>().insert(&Price { id: 3, cents: 1 })?;
            Ok(subscription)
        })
        .unwrap();
    assert!(matches!(
        inside.try_next(),
        Some(Ok(Notice::Lagged { missed: 2 }))
    ));
}

mod v {
    #[derive(
        Debug, Clone, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
    )]
    #[stored(table = "counts", changes)]
    pub struct V1 {
        #[key]
        pub id: u32,
        pub n: u32,
    }

    #[derive(
        Debug, Clone, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
    )]
    #[stored(table = "counts", version = 2, migrate_from = V1, changes)]
    pub struct V2 {
        #[key]
        pub id: u32,
        pub n: u32,
        pub m: u32,
    }

    impl From<V1> for V2 {
        fn from(old: V1) -> Self {
            V2 {
                id: old.id,
                n: old.n,
                m: 7,
            }
        }
    }

    /// The same table and layout as `V1`, without a change log.
    #[derive(
        Debug, Clone, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
    )]
    #[stored(table = "counts")]
    pub struct Plain {
        #[key]
        pub id: u32,
        pub n: u32,
    }
}

#[test]
fn readers_of_the_old_version_are_refused_after_a_migration() {
    //! After `migrate::<V2>()` a live `watch::<V1>()` and `changes::<V1>()`
    //! decoded V2 bytes as V1: `V1 { id: 168496141, n: 99 }` for key 5.
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<v::V1>()
        .insert(&v::V1 { id: 1, n: 1 })
        .unwrap();
    let mut old = storage.watch::<v::V1>();
    storage.migrate::<v::V2>().unwrap();
    storage
        .records::<v::V2>()
        .insert(&v::V2 {
            id: 5,
            n: 0x0A0B_0C0D,
            m: 99,
        })
        .unwrap();
    let notice = old.try_next().expect("a notice for the commit");
    assert!(
        matches!(notice, Err(Error::SchemaMismatch { .. })),
        "{notice:?}"
    );
    let since = storage.changes::<v::V1>().since(0, 10);
    assert!(
        matches!(since, Err(Error::SchemaMismatch { .. })),
        "{:?}",
        since.map(|c| c.len())
    );
}

#[test]
fn writes_before_a_migration_in_one_transaction_stay_out_of_the_new_log() {
    //! Writing through V1 and migrating to V2 in one transaction put V1
    //! bytes in the restarted log: every `since`/`follow` from the right
    //! position failed with `Corrupt` for good.
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<v::V1>()
        .insert(&v::V1 { id: 1, n: 1 })
        .unwrap();
    storage
        .write(|tx| {
            tx.records::<v::V1>().insert(&v::V1 {
                id: 2,
                n: 0x0102_0304,
            })?;
            tx.migrate::<v::V2>().map(drop)
        })
        .unwrap();
    let log = storage.changes::<v::V2>();
    let first = log.first_kept().unwrap();
    assert!(log.since(first - 1, 10).unwrap().is_empty());
    storage
        .records::<v::V2>()
        .insert(&v::V2 { id: 3, n: 3, m: 3 })
        .unwrap();
    let commits = log.since(first - 1, 10).unwrap();
    assert_eq!(commits.len(), 1);
    assert_eq!(*commits[0].changes()[0].key(), 3);
}

#[test]
fn every_record_type_writing_a_logged_table_is_logged() {
    //! With two record types on one table, one with `#[stored(changes)]`,
    //! writes through the other reached the log only while some unrelated
    //! subscription existed: the log did not replay to the table.
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<v::Plain>()
        .insert(&v::Plain { id: 1, n: 1 })
        .unwrap();
    storage
        .records::<v::V1>()
        .insert(&v::V1 { id: 2, n: 2 })
        .unwrap();
    storage
        .records::<v::Plain>()
        .insert(&v::Plain { id: 3, n: 3 })
        .unwrap();
    storage
        .write(|tx| {
            tx.records::<v::Plain>().insert(&v::Plain { id: 4, n: 4 })?;
            tx.records::<v::V1>().insert(&v::V1 { id: 5, n: 5 })
        })
        .unwrap();
    let logged: Vec<Vec<u32>> = storage
        .changes::<v::V1>()
        .since(0, 100)
        .unwrap()
        .iter()
        .map(|c| c.changes().iter().map(|ch| *ch.key()).collect())
        .collect();
    assert_eq!(
        logged,
        [vec![2], vec![3], vec![4, 5]],
        "from the first logged write on"
    );
}

#[derive(Debug, Clone, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "names")]
pub struct Name {
    #[key]
    pub name: String,
}

#[test]
fn a_key_subscription_is_that_key_only() {
    //! `.key("ab")` on a `String` key also delivered "abc".
    let storage = Storage::in_memory().unwrap();
    let mut ab = storage.watch::<Name>().key("ab");
    for name in ["abc", "ab", "a"] {
        storage
            .records::<Name>()
            .insert(&Name { name: name.into() })
            .unwrap();
    }
    let mut got = Vec::new();
    while let Some(notice) = ab.try_next() {
        if let Notice::Commit(commit) = notice.unwrap() {
            got.extend(commit.changes().iter().map(|c| c.key().clone()));
        }
    }
    assert_eq!(got, ["ab"]);
}

#[test]
fn narrowing_a_subscription_after_the_storage_is_gone_ends_it() {
    //! Narrowing a subscription after the storage was dropped made `next`
    //! block for ever.
    let storage = Storage::in_memory().unwrap();
    let subscription = storage.watch::<Price>();
    drop(storage);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut narrowed = subscription.key(1u32).capacity(5);
        tx.send(narrowed.next().is_none()).unwrap();
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
}

#[test]
fn a_subscriber_holds_the_changes_it_matched_not_whole_commits() {
    //! Each queued change kept its whole commit's buffer: a `capacity(100)`
    //! subscriber matching one small change per big commit held 428 MiB.
    let storage = Storage::builder()
        .durability(storage::Durability::None)
        .in_memory()
        .unwrap();
    let mut one = storage.watch::<Item>().key(0u16).capacity(100);
    let note = "x".repeat(4_000);
    for round in 0..50u32 {
        storage
            .write(|tx| {
                let mut items = tx.records::<Item>();
                for id in 0..500u16 {
                    items.insert(&Item {
                        id,
                        group: 0,
                        code: round * 1000 + u32::from(id),
                        note: note.clone(),
                    })?;
                }
                Ok(())
            })
            .unwrap();
    }
    // 50 commits of 2 MB each; the subscriber holds 50 changes of 4 KB.
    let mut held = 0;
    while let Some(notice) = one.try_next() {
        if let Notice::Commit(commit) = notice.unwrap() {
            held += commit.changes().len();
        }
    }
    assert_eq!(held, 50);
}

#[test]
fn a_log_whose_sequence_numbers_are_used_up_refuses_the_write() {
    //! A log state at `u64::MAX` (written behind the layer's back) made
    //! `write` panic with an overflow; in release builds numbers wrapped.
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<Item>()
        .insert(&Item {
            id: 1,
            group: 0,
            code: 1,
            note: String::new(),
        })
        .unwrap();
    let mut state = u64::MAX.to_be_bytes().to_vec();
    state.extend_from_slice(&1u64.to_be_bytes());
    common::tamper(&storage, "__changes:items", |t| {
        t.insert(&[][..], &state[..]).unwrap();
    });
    let err = storage
        .records::<Item>()
        .insert(&Item {
            id: 2,
            group: 0,
            code: 2,
            note: String::new(),
        })
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert_eq!(
        storage.records::<Item>().len().unwrap(),
        1,
        "nothing written"
    );
}

mod tagged {
    #[derive(
        Debug,
        Clone,
        PartialEq,
        storage::StoredRecord,
        rkyv::Archive,
        rkyv::Serialize,
        rkyv::Deserialize,
    )]
    #[stored(table = "tagged", index(by = initial -> String))]
    pub struct Doc {
        #[key]
        pub id: u32,
        pub title: String,
        #[index(each)]
        pub tags: Vec<String>,
    }

    impl Doc {
        pub fn initial(&self) -> String {
            self.title.chars().take(1).collect()
        }
    }
}

#[test]
fn watching_an_each_index_or_a_computed_one_matches_any_element() {
    use tagged::DocWatch as _;
    let storage = Storage::in_memory().unwrap();
    let mut rust = storage.watch::<tagged::Doc>().by_tags("rust");
    let mut initial = storage.watch::<tagged::Doc>().by_initial("W");
    let doc = |id: u32, title: &str, tags: &[&str]| tagged::Doc {
        id,
        title: title.into(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
    };
    let docs = storage.records::<tagged::Doc>();
    docs.insert(&doc(1, "Wasm", &["web", "rust"])).unwrap();
    docs.insert(&doc(2, "Go", &["go"])).unwrap();
    // Losing the tag is a change of a record that had it.
    docs.insert(&doc(1, "Wasm", &["web"])).unwrap();
    let keys = |sub: &mut storage::Subscription<tagged::Doc>| {
        let mut keys = Vec::new();
        while let Some(notice) = sub.try_next() {
            match notice.unwrap() {
                Notice::Commit(commit) => keys.extend(commit.changes().iter().map(|c| *c.key())),
                Notice::Lagged { missed } => panic!("lagged by {missed}"),
            }
        }
        keys
    };
    assert_eq!(keys(&mut rust), [1, 1]);
    assert_eq!(keys(&mut initial), [1, 1]);
}

/// Two record types on one table, their indexes numbered differently.
mod shared {
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "shared")]
    pub struct A {
        #[key]
        pub id: u32,
        #[index(each)]
        pub tags: Vec<String>,
        #[index]
        pub n: u64,
    }

    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "shared")]
    pub struct B {
        #[key]
        pub id: u32,
        pub tags: Vec<String>,
        #[index]
        pub n: u64,
    }
}

#[test]
fn index_filters_use_the_subscribers_indexes_whoever_writes() {
    use shared::AWatch as _;
    let storage = Storage::in_memory().unwrap();
    let mut q = storage.watch::<shared::A>().by_tags("q");
    let mut seven = storage.watch::<shared::A>().by_n(7u64);
    let mut x = storage.watch::<shared::A>().by_tags("x");
    let b = |id, tags: &[&str], n| shared::B {
        id,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        n,
    };
    let records = storage.records::<shared::B>();
    records.insert(&b(1, &["q"], 1)).unwrap();
    records.insert(&b(2, &["r"], 7)).unwrap();
    // B's index 0 is `n`: bytes starting like the encoding of "x".
    records
        .insert(&b(3, &["nope"], 0x7800_0000_0000_0000))
        .unwrap();
    let keys = |sub: &mut storage::Subscription<shared::A>| {
        let mut keys = Vec::new();
        while let Some(notice) = sub.try_next() {
            if let Notice::Commit(commit) = notice.unwrap() {
                keys.extend(commit.changes().iter().map(|c| *c.key()));
            }
        }
        keys
    };
    assert_eq!(keys(&mut q), [1]);
    assert_eq!(keys(&mut seven), [2]);
    assert_eq!(keys(&mut x), Vec::<u32>::new());
}

mod flaky {
    use std::sync::atomic::{AtomicU32, Ordering};

    /// How many times `bucket` ran; it panics from call `FROM` on.
    pub static CALLS: AtomicU32 = AtomicU32::new(0);
    pub static FROM: AtomicU32 = AtomicU32::new(u32::MAX);

    #[derive(Debug, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "flaky", index(by = bucket -> u32))]
    pub struct Item {
        #[key]
        pub id: u32,
    }

    impl Item {
        pub fn bucket(&self) -> u32 {
            if CALLS.fetch_add(1, Ordering::SeqCst) >= FROM.load(Ordering::SeqCst) {
                panic!("the method changed its mind");
            }
            self.id % 2
        }
    }
}

#[test]
fn a_method_index_panicking_while_changes_are_matched_does_not_unwind_a_committed_write() {
    use flaky::ItemWatch as _;
    use std::sync::atomic::Ordering;
    let storage = Storage::in_memory().unwrap();
    // How many calls a write makes before its commit, with no subscriber.
    storage
        .records::<flaky::Item>()
        .insert(&flaky::Item { id: 3 })
        .unwrap();
    flaky::CALLS.store(0, Ordering::SeqCst);
    storage
        .records::<flaky::Item>()
        .insert(&flaky::Item { id: 5 })
        .unwrap();
    let before_commit = flaky::CALLS.load(Ordering::SeqCst);
    // Then every later call panics: those matching the committed change.
    let mut sub = storage.watch::<flaky::Item>().by_bucket(1u32);
    flaky::CALLS.store(0, Ordering::SeqCst);
    flaky::FROM.store(before_commit, Ordering::SeqCst);
    let result = storage
        .records::<flaky::Item>()
        .insert(&flaky::Item { id: 1 });
    flaky::FROM.store(u32::MAX, Ordering::SeqCst);
    assert!(
        flaky::CALLS.load(Ordering::SeqCst) > before_commit,
        "matching ran the method (and it panicked)"
    );
    assert!(result.is_ok(), "{result:?}");
    assert!(storage.records::<flaky::Item>().contains_key(1).unwrap());
    // Matching could not compute the value: the subscriber gets nothing.
    while let Some(notice) = sub.try_next() {
        assert!(matches!(notice, Ok(Notice::Lagged { .. })), "{notice:?}");
    }
}
