//! `--feed`: what the change feed costs a writer, and how soon it delivers.
//!
//! Bulk inserts (1,000 per transaction, `Durability::None` so that the feed's
//! own cost is not hidden behind fsync) into a fresh file, side by side:
//! without the feed, with 1 and with 10 subscriptions that never read (they
//! fill up to their capacity and then only count what they miss), with one
//! subscription drained by a thread, and into a record type that keeps a
//! durable change log. Then the latency of single commits: from the call of
//! `write` to the subscriber's thread holding the change.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::data::{User, UserLogged};
use crate::engines::{BATCH, Engine, Input, Work};

/// One way of inserting.
pub struct Variant {
    name: &'static str,
    /// Subscriptions that never read.
    idle: usize,
    /// A subscription drained by a thread.
    drained: bool,
    /// Into the record type with a durable log.
    durable: bool,
    db: Option<storage::Storage>,
    subscriptions: Vec<storage::Subscription<User>>,
    drain: Option<std::thread::JoinHandle<u64>>,
    logged: Vec<UserLogged>,
}

pub fn variants(input: &Input) -> Vec<Box<dyn Engine>> {
    let logged: Vec<UserLogged> = input.users.iter().map(UserLogged::from).collect();
    let variant = |name, idle, drained, durable| -> Box<dyn Engine> {
        Box::new(Variant {
            name,
            idle,
            drained,
            durable,
            db: None,
            subscriptions: Vec::new(),
            drain: None,
            logged: if durable { logged.clone() } else { Vec::new() },
        })
    };
    vec![
        variant("no feed", 0, false, false),
        variant("1 idle subscriber", 1, false, false),
        variant("10 idle subscribers", 10, false, false),
        variant("1 subscriber reading", 0, true, false),
        variant("durable log", 0, false, true),
    ]
}

impl Engine for Variant {
    fn name(&self) -> &'static str {
        self.name
    }

    fn create(&mut self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{}.redb", self.name.replace(' ', "-")));
        let db = storage::Storage::builder()
            .durability(storage::Durability::None)
            .open(&path)
            .expect("open");
        self.subscriptions = (0..self.idle).map(|_| db.watch::<User>()).collect();
        if self.drained {
            let mut subscription = db.watch::<User>();
            self.drain = Some(std::thread::spawn(move || {
                let mut seen = 0;
                for notice in subscription.by_ref() {
                    if let Ok(storage::Notice::Commit(commit)) = notice {
                        seen += commit.changes().len() as u64;
                    }
                }
                seen
            }));
        }
        self.db = Some(db);
        path
    }

    fn close(&mut self) {
        self.subscriptions.clear();
        self.db = None;
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
    }

    fn run(&mut self, work: Work, input: &Input, part: std::ops::Range<usize>) -> Option<u64> {
        if work != Work::BulkInsert {
            return None;
        }
        let db = self.db.as_ref()?;
        for start in part.clone().step_by(BATCH) {
            let end = (start + BATCH).min(part.end);
            if self.durable {
                db.records::<UserLogged>()
                    .insert_batch(&self.logged[start..end])
            } else {
                db.records::<User>().insert_batch(&input.users[start..end])
            }
            .expect("insert");
        }
        Some(0)
    }
}

/// Commit-to-delivery latency of `commits` single-record commits: (p50, p99, max).
pub fn latency(input: &Input, commits: usize) -> (Duration, Duration, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = storage::Storage::builder()
        .durability(storage::Durability::None)
        .open(dir.path().join("latency.redb"))
        .expect("open");
    let mut subscription = db.watch::<User>();
    let (sent, sent_rx) = std::sync::mpsc::channel::<(u64, Instant)>();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(commits);
        while got.len() < commits {
            match subscription.next() {
                Some(Ok(storage::Notice::Commit(commit))) => {
                    let at = Instant::now();
                    for change in commit.changes() {
                        got.push((*change.key(), at));
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
        got
    });
    for user in input.users.iter().take(commits) {
        let started = Instant::now();
        db.records::<User>().insert(user).expect("insert");
        sent.send((user.id, started)).expect("send");
        // One commit at a time in flight, so that each is timed alone.
        std::thread::sleep(Duration::from_micros(200));
    }
    let got = reader.join().expect("reader");
    let started: std::collections::HashMap<u64, Instant> = sent_rx.try_iter().collect();
    let mut latencies: Vec<Duration> = got
        .iter()
        .filter_map(|(id, at)| Some(at.duration_since(*started.get(id)?)))
        .collect();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    (at(0.50), at(0.99), at(1.0))
}
