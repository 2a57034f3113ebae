//! `--migrate`: migrating N records from version 1 to version 2 (a field
//! added, one secondary index kept), storage's `migrate` beside native_db's,
//! on the same records in a fresh file each time. Each migration runs in a
//! child process of its own, so that its peak memory is its own: the child
//! loads version 1, resets the kernel's high-water mark of its resident
//! memory, migrates in one write transaction, and prints the time and the
//! peak above what it held before.

use std::path::Path;
use std::time::Instant;

/// storage's versions of the record.
pub mod stored {
    use storage::StoredRecord;

    #[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "people")]
    pub struct PersonV1 {
        #[key]
        pub id: u64,
        pub name: String,
        #[index]
        pub group: u32,
        pub bio: String,
    }

    #[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "people", version = 2, migrate_from = PersonV1)]
    pub struct Person {
        #[key]
        pub id: u64,
        pub name: String,
        #[index]
        pub group: u32,
        pub bio: String,
        pub score: u64,
    }

    impl From<PersonV1> for Person {
        fn from(old: PersonV1) -> Self {
            Person {
                id: old.id,
                name: old.name,
                group: old.group,
                bio: old.bio,
                score: 0,
            }
        }
    }
}

/// native_db's versions of the same record.
pub mod native {
    pub mod v1 {
        use native_db::*;
        use native_model::{Model, native_model};
        use serde::{Deserialize, Serialize};

        #[derive(Serialize, Deserialize, Debug, Clone)]
        #[native_model(id = 20, version = 1)]
        #[native_db]
        pub struct Person {
            #[primary_key]
            pub id: u64,
            pub name: String,
            #[secondary_key]
            pub group: u32,
            pub bio: String,
        }
    }

    pub mod v2 {
        use native_db::*;
        use native_model::{Model, native_model};
        use serde::{Deserialize, Serialize};

        #[derive(Serialize, Deserialize, Debug, Clone)]
        #[native_model(id = 20, version = 2, from = super::v1::Person)]
        #[native_db]
        pub struct Person {
            #[primary_key]
            pub id: u64,
            pub name: String,
            #[secondary_key]
            pub group: u32,
            pub bio: String,
            pub score: u64,
        }

        impl From<super::v1::Person> for Person {
            fn from(old: super::v1::Person) -> Self {
                Person {
                    id: old.id,
                    name: old.name,
                    group: old.group,
                    bio: old.bio,
                    score: 0,
                }
            }
        }

        // native_model encodes downgrades too, so it wants the way back.
        impl From<Person> for super::v1::Person {
            fn from(new: Person) -> Self {
                super::v1::Person {
                    id: new.id,
                    name: new.name,
                    group: new.group,
                    bio: new.bio,
                }
            }
        }
    }

    /// Both versions, the target last.
    pub fn models() -> &'static native_db::Models {
        static MODELS: std::sync::LazyLock<native_db::Models> = std::sync::LazyLock::new(|| {
            let mut models = native_db::Models::new();
            models.define::<v1::Person>().expect("define v1");
            models.define::<v2::Person>().expect("define v2");
            models
        });
        &MODELS
    }
}

const BATCH: u64 = 1_000;

fn name(id: u64) -> String {
    format!("person {id}")
}

fn bio(id: u64) -> String {
    let mut bio = format!("Person {id} keeps bees and reads about databases. ");
    while bio.len() < 120 {
        bio.push_str("Lorem ipsum dolor sit amet. ");
    }
    bio
}

/// Resident memory now and its high-water mark, in KiB, from
/// `/proc/self/status`.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the high-water mark of resident memory to what is resident now.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// In the child: loads `n` version-1 records with `engine`, migrates them,
/// and prints `MIGRATED seconds peak_mib`.
pub fn child(engine: &str, n: u64, dir: &Path) {
    let path = dir.join(format!("{engine}.redb"));
    let seconds = match engine {
        "storage" => {
            let storage = storage::Storage::builder()
                .durability(storage::Durability::None)
                .open(&path)
                .expect("open");
            let people = storage.records::<stored::PersonV1>();
            let mut start = 0;
            while start < n {
                people
                    .insert_batch((start..(start + BATCH).min(n)).map(|id| stored::PersonV1 {
                        id,
                        name: name(id),
                        group: (id % 100) as u32,
                        bio: bio(id),
                    }))
                    .expect("load");
                start += BATCH;
            }
            let before = rss_kib().0;
            reset_peak();
            let started = Instant::now();
            let report = storage.migrate::<stored::Person>().expect("migrate");
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(report.records, n);
            (seconds, before)
        }
        _ => {
            let db = native_db::Builder::new()
                .create(native::models(), &path)
                .expect("create");
            let mut start = 0;
            while start < n {
                let rw = db.rw_transaction().expect("rw");
                for id in start..(start + BATCH).min(n) {
                    rw.insert(native::v1::Person {
                        id,
                        name: name(id),
                        group: (id % 100) as u32,
                        bio: bio(id),
                    })
                    .expect("insert");
                }
                rw.commit().expect("commit");
                start += BATCH;
            }
            let before = rss_kib().0;
            reset_peak();
            let started = Instant::now();
            let rw = db.rw_transaction().expect("rw");
            rw.migrate::<native::v2::Person>().expect("migrate");
            rw.commit().expect("commit");
            let seconds = started.elapsed().as_secs_f64();
            let r = db.r_transaction().expect("r");
            assert_eq!(r.len().primary::<native::v2::Person>().expect("len"), n);
            (seconds, before)
        }
    };
    let (seconds, before) = seconds;
    let (_, peak) = rss_kib();
    println!(
        "MIGRATED {seconds} {} {}",
        peak as f64 / 1024.0,
        peak.saturating_sub(before) as f64 / 1024.0
    );
}

/// In the parent: each engine's migration `reps` times, alternating, each in
/// a child process; prints records/s and peak memory.
pub fn run(n: u64, reps: usize) {
    let exe = std::env::current_exe().expect("current exe");
    let engines = ["storage", "native_db"];
    let mut results: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); engines.len()];
    let started = Instant::now();
    for rep in 0..reps {
        for (e, engine) in engines.iter().enumerate() {
            let dir = tempfile::tempdir().expect("temp dir");
            let out = std::process::Command::new(&exe)
                .args([
                    "--migrate-child",
                    engine,
                    "-n",
                    &n.to_string(),
                    "--dir",
                    dir.path().to_str().expect("utf-8 temp dir"),
                ])
                .output()
                .expect("run the child");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let line = stdout
                .lines()
                .find_map(|l| l.strip_prefix("MIGRATED "))
                .unwrap_or_else(|| {
                    panic!(
                        "{engine}: no result: {stdout} {}",
                        String::from_utf8_lossy(&out.stderr)
                    )
                });
            let mut parts = line
                .split_whitespace()
                .map(|p| p.parse::<f64>().unwrap_or(0.0));
            let seconds = parts.next().unwrap_or(0.0);
            let peak = parts.next().unwrap_or(0.0);
            let above = parts.next().unwrap_or(0.0);
            results[e].push((n as f64 / seconds, peak, above));
        }
        println!("repetition {} done at {:.1?}", rep + 1, started.elapsed());
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "\n## Migrating {n} records from version 1 to 2 (one write transaction; median of {reps})\n"
    );
    println!(
        "| engine | records/s | peak resident memory (MiB) | of which above the loaded state |"
    );
    println!("|---|---|---|---|");
    let rates: Vec<f64> = results
        .iter()
        .map(|r| median(r.iter().map(|x| x.0).collect()))
        .collect();
    for (e, engine) in engines.iter().enumerate() {
        let peak = median(results[e].iter().map(|x| x.1).collect());
        let above = median(results[e].iter().map(|x| x.2).collect());
        println!(
            "| {engine} | {:.1}k | {peak:.0} | {above:.0} |",
            rates[e] / 1_000.0
        );
    }
    println!("\nstorage ÷ native_db: {:.2}×", rates[0] / rates[1]);
    println!("\nfinished in {:.1?}", started.elapsed());
}
