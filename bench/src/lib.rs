//! `storage` side by side with raw redb, a hand-written redb + rkyv layer and
//! native_db, in one process, on the same data, with ratios.
//!
//! ```text
//! cargo run --release -p storage-bench                # N = 1,000,000, 3 repetitions
//! cargo run --release -p storage-bench -- --quick     # N = 20,000, 1 repetition: a smoke run
//! cargo run --release -p storage-bench -- -n 200000 --reps 5
//! cargo bench -p storage-bench                        # the same as the first
//! ```
//!
//! Every workload is split into chunks, and the engines take turns chunk by
//! chunk in an order that rotates, so that the machine's drift falls on all of
//! them alike; each engine's time for a repetition is the sum of its chunks.
//! The table reports the median over repetitions with the range.

mod alloc;
mod data;
mod engines;
mod etcd;
mod feed;
mod migrate;

use std::path::Path;
use std::time::{Duration, Instant};

use engines::{Engine, Input, Shared, Work};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

struct Config {
    n: usize,
    reps: usize,
    commits: usize,
    reads: usize,
    chunks: usize,
    quick: bool,
    /// Only this workload (its `Work` name, e.g. `FullScan`), for profiling.
    only: Option<String>,
    /// Skip the memory measurement.
    no_rss: bool,
    /// Measure the peak memory of this engine alone, then exit.
    rss_child: Option<usize>,
    /// The etcd comparison instead of the embedded one.
    etcd: bool,
    /// The change feed's costs instead.
    feed: bool,
    /// Migrations instead.
    migrate: bool,
    args: Vec<String>,
}

fn config() -> Config {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.replace('_', "")
                    .parse::<usize>()
                    .unwrap_or_else(|_| panic!("{flag} takes a number"))
            })
    };
    let quick = args.iter().any(|a| a == "--quick");
    let etcd = args.iter().any(|a| a == "--etcd");
    let feed = args.iter().any(|a| a == "--feed");
    let migrate = args.iter().any(|a| a == "--migrate");
    let n = value("-n").unwrap_or(match (quick, etcd || feed) {
        (true, true) => 2_000,
        (true, false) => 20_000,
        (false, true) if feed => 200_000,
        (false, true) => 10_000,
        (false, false) => 1_000_000,
    });
    Config {
        n,
        reps: value("--reps").unwrap_or(if quick { 1 } else { 3 }),
        commits: value("--commits").unwrap_or(match (quick, etcd) {
            (true, _) => 100,
            (false, true) => 300,
            (false, false) => 2_000,
        }),
        reads: value("--reads").unwrap_or(n),
        chunks: 10,
        quick,
        only: args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1))
            .cloned(),
        no_rss: args.iter().any(|a| a == "--no-rss"),
        rss_child: value("--rss-child"),
        etcd,
        feed,
        migrate,
        args: args.clone(),
    }
}

fn input(config: &Config) -> Input {
    let n = config.n as u64;
    let mut rng = data::Rng(0x5707_A6E5);
    let users: Vec<data::User> = (0..n).map(data::user).collect();
    let extra: Vec<data::User> = (n..n + config.commits as u64).map(data::user).collect();
    let index_n = (n / 5).max(1_000);
    let users1: Vec<data::UserIdx1> = users
        .iter()
        .take(index_n as usize)
        .map(data::user1)
        .collect();
    let users3: Vec<data::UserIdx3> = users
        .iter()
        .take(index_n as usize)
        .map(data::user3)
        .collect();
    let range_len = (n / 100).max(1);
    let lookups = index_n as usize;
    Input {
        serialized: users
            .iter()
            .map(|u| {
                rkyv::to_bytes::<rkyv::rancor::Error>(u)
                    .expect("serialize")
                    .to_vec()
            })
            .collect(),
        native_users: users.iter().map(data::native::user).collect(),
        native_extra: extra.iter().map(data::native::user).collect(),
        read_ids: (0..config.reads).map(|_| rng.below(n)).collect(),
        range_starts: (0..20).map(|_| rng.below(n - range_len + 1)).collect(),
        range_len,
        customers: (0..config.reads / 10)
            .map(|_| rng.below(n / data::ORDERS_PER_CUSTOMER))
            .collect(),
        delete_ids: rng
            .permutation(n)
            .into_iter()
            .take((n / 10) as usize)
            .collect(),
        native_users1: users
            .iter()
            .take(index_n as usize)
            .map(data::native::user1)
            .collect(),
        native_users3: users
            .iter()
            .take(index_n as usize)
            .map(data::native::user3)
            .collect(),
        emails: (0..lookups)
            .map(|_| format!("person{}@example.com", rng.below(index_n)))
            .collect(),
        day_ranges: (0..200)
            .map(|_| {
                let from = rng.below(u64::from(data::DAYS - 37)) as u32;
                (from, from + 36)
            })
            .collect(),
        users,
        extra,
        users1,
        users3,
    }
}

/// One engine's result on one workload in one repetition.
#[derive(Clone, Copy, Default)]
struct Sample {
    time: Duration,
    allocations: u64,
}

/// How many operations a workload performs, and over which input slice.
fn size(work: Work, input: &Input, scans: usize) -> (usize, f64) {
    match work {
        Work::BulkInsert => (input.users.len(), 1.0),
        Work::SingleCommits => (input.extra.len(), 1.0),
        Work::PointReads | Work::PointReadsUnchecked => (input.read_ids.len(), 1.0),
        Work::FullScan => (scans, input.users.len() as f64),
        Work::RangeScans => (input.range_starts.len(), input.range_len as f64),
        Work::PrefixQueries => (input.customers.len(), 1.0),
        Work::Delete => (input.delete_ids.len(), 1.0),
        Work::InsertIndex1 => (input.users1.len(), 1.0),
        Work::InsertIndex3 => (input.users3.len(), 1.0),
        Work::UniqueLookup => (input.emails.len(), 1.0),
        Work::IndexRange => (input.day_ranges.len(), 1.0),
    }
}

/// Runs `work` on every engine, chunk by chunk with a rotating order.
/// Returns one sample per engine (`None` where the engine lacks the workload)
/// and the checksums, which must agree.
fn measure(
    engines: &mut [Box<dyn Engine + '_>],
    work: Work,
    input: &Input,
    chunks: usize,
    scans: usize,
    rep: usize,
) -> Vec<Option<Sample>> {
    let (len, _) = size(work, input, scans);
    let chunk = len.div_ceil(chunks).max(1);
    let mut samples: Vec<Option<Sample>> = vec![Some(Sample::default()); engines.len()];
    let mut sums = vec![0u64; engines.len()];
    for (c, start) in (0..len).step_by(chunk).enumerate() {
        let part = start..(start + chunk).min(len);
        for turn in 0..engines.len() {
            let e = (turn + c + rep) % engines.len();
            let Some(sample) = samples[e].as_mut() else {
                continue;
            };
            let before = alloc::allocations();
            let started = Instant::now();
            let result = engines[e].run(work, input, part.clone());
            let elapsed = started.elapsed();
            match result {
                Some(sum) => {
                    sample.time += elapsed;
                    sample.allocations += alloc::allocations() - before;
                    sums[e] = sums[e].wrapping_add(sum);
                }
                None => samples[e] = None,
            }
        }
    }
    let agreed: Vec<u64> = sums
        .iter()
        .zip(&samples)
        .filter(|(_, s)| s.is_some())
        .map(|(s, _)| *s)
        .collect();
    if agreed.windows(2).any(|w| w[0] != w[1]) {
        let names: Vec<_> = engines.iter().map(|e| e.name()).collect();
        panic!("{work:?}: engines disagree on the result: {names:?} {sums:?}");
    }
    samples
}

/// Median and range of the operations per second of one engine.
struct Stat {
    median: f64,
    min: f64,
    max: f64,
    allocations: f64,
}

fn stat(samples: &[Sample], ops: f64) -> Stat {
    let mut rates: Vec<f64> = samples.iter().map(|s| ops / s.time.as_secs_f64()).collect();
    rates.sort_by(f64::total_cmp);
    let allocations = samples
        .iter()
        .map(|s| s.allocations as f64 / ops)
        .sum::<f64>()
        / samples.len() as f64;
    Stat {
        median: rates[rates.len() / 2],
        min: rates[0],
        max: rates[rates.len() - 1],
        allocations,
    }
}

fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

/// Loads the read databases: one `storage` file for engines 1 to 4, and
/// native_db's and redb 2.6's own files.
fn load(dir: &Path, input: &Input) -> (Shared, native_db::Database<'static>, redb2::Database) {
    let storage = storage::Storage::new(dir.join("shared.redb")).expect("open");
    for batch in input.users.chunks(engines::BATCH) {
        storage
            .records::<data::User>()
            .insert_batch(batch)
            .expect("load users");
    }
    let orders: Vec<data::Order> = (0..input.users.len() as u64).map(data::order).collect();
    for batch in orders.chunks(engines::BATCH) {
        storage
            .records::<data::Order>()
            .insert_batch(batch)
            .expect("load orders");
    }
    let native = native_db::Builder::new()
        .create(data::native::models(), dir.join("native-read.redb"))
        .expect("native_db");
    for (users, orders) in input
        .native_users
        .chunks(engines::BATCH)
        .zip(orders.chunks(engines::BATCH))
    {
        let rw = native.rw_transaction().expect("write");
        for user in users {
            rw.insert(user.clone()).expect("insert");
        }
        for order in orders {
            rw.insert(data::native::order(order)).expect("insert");
        }
        rw.commit().expect("commit");
    }
    let raw2 = redb2::Database::create(dir.join("raw2-read.redb")).expect("redb 2.6");
    {
        let txn = raw2.begin_write().expect("write");
        {
            let mut table = txn
                .open_table(redb2::TableDefinition::<&[u8], &[u8]>::new("orders"))
                .expect("table");
            for order in &orders {
                let mut key = [0; 12];
                key[..8].copy_from_slice(&order.customer.to_be_bytes());
                key[8..].copy_from_slice(&order.number.to_be_bytes());
                let value = rkyv::to_bytes::<rkyv::rancor::Error>(order).expect("serialize");
                table.insert(&key[..], &value[..]).expect("insert");
            }
        }
        txn.commit().expect("commit");
    }
    for batch in input
        .serialized
        .chunks(engines::BATCH)
        .zip(input.users.chunks(engines::BATCH))
    {
        let txn = raw2.begin_write().expect("write");
        {
            let mut table = txn
                .open_table(redb2::TableDefinition::<&[u8], &[u8]>::new("users"))
                .expect("table");
            for (value, user) in batch.0.iter().zip(batch.1) {
                table
                    .insert(&user.id.to_be_bytes()[..], &value[..])
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
    }
    (Shared { storage }, native, raw2)
}

/// Runs this program again to measure engine `engine`'s peak memory alone.
fn rss_of(config: &Config, engine: usize) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let mut args: Vec<String> = config
        .args
        .iter()
        .filter(|a| *a != "--bench")
        .cloned()
        .collect();
    args.extend(["--rss-child".to_owned(), engine.to_string()]);
    let output = std::process::Command::new(exe).args(args).output().ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RSS ")?.trim().parse().ok())
}

/// In a child process: the growth of peak memory over the input data while
/// engine `which` bulk-inserts everything, then reads it back (point reads
/// and a full scan) from the file it wrote.
fn rss_child(config: &Config, which: usize) {
    let input = input(config);
    let dir = tempfile::tempdir().expect("temp dir");
    let in_memory_redb2 = || {
        redb2::Database::builder()
            .create_with_backend(redb2::backends::InMemoryBackend::new())
            .expect("redb 2.6")
    };
    let in_memory_native = || {
        native_db::Builder::new()
            .create_in_memory(data::native::models())
            .expect("native_db")
    };
    alloc::reset_peak_rss();
    let Some(base) = alloc::rss_mib() else { return };
    let path = {
        let unused = Shared {
            storage: storage::Storage::in_memory().expect("memory"),
        };
        let unused_redb2 = in_memory_redb2();
        let mut engines = engines::all(&unused, in_memory_native(), &unused_redb2);
        let engine = &mut engines[which];
        let path = engine.create(dir.path());
        engine.run(Work::BulkInsert, &input, 0..input.users.len());
        engine.close();
        path
    };
    let (shared, native, raw2) = match which {
        5 => (
            None,
            native_db::Builder::new()
                .open(data::native::models(), &path)
                .ok(),
            None,
        ),
        6 => (None, None, redb2::Database::open(&path).ok()),
        _ => (
            Some(Shared {
                storage: storage::Storage::new(&path).expect("reopen"),
            }),
            None,
            None,
        ),
    };
    let unused = Shared {
        storage: storage::Storage::in_memory().expect("memory"),
    };
    let raw2 = raw2.unwrap_or_else(in_memory_redb2);
    let mut engines = engines::all(
        shared.as_ref().unwrap_or(&unused),
        native.unwrap_or_else(in_memory_native),
        &raw2,
    );
    let engine = &mut engines[which];
    engine.run(Work::PointReads, &input, 0..input.read_ids.len());
    engine.run(Work::FullScan, &input, 0..1);
    if let Some(peak) = alloc::peak_rss_mib() {
        println!("RSS {:.1}", peak - base);
    }
}

const WORKLOADS: &[(Work, &str)] = &[
    (Work::BulkInsert, "bulk insert (1,000 per transaction)"),
    (Work::SingleCommits, "single durable commits"),
    (Work::PointReads, "random point read, one field, validated"),
    (
        Work::PointReadsUnchecked,
        "random point read, one field, unchecked",
    ),
    (Work::FullScan, "full scan counting `active` (records/s)"),
    (Work::RangeScans, "range scans of 1% of keys (records/s)"),
    (
        Work::PrefixQueries,
        "composite-key prefix query (10 orders)",
    ),
    (Work::Delete, "delete 10% of keys (1,000 per transaction)"),
    (Work::InsertIndex1, "insert with 1 index (unique email)"),
    (Work::InsertIndex3, "insert with 3 indexes"),
    (Work::UniqueLookup, "lookup by unique index"),
    (Work::IndexRange, "range on a non-unique index (1% of days)"),
];

/// Runs the benchmark with the command line's options and prints the report.
pub fn run() {
    let config = config();
    if let Some(engine) = config.rss_child {
        rss_child(&config, engine);
        return;
    }
    if config.etcd {
        run_etcd(&config);
        return;
    }
    if config.feed {
        run_feed(&config);
        return;
    }
    let arg = |flag: &str| {
        let at = config.args.iter().position(|a| a == flag)?;
        config.args.get(at + 1).cloned()
    };
    if let (Some(engine), Some(dir)) = (arg("--migrate-child"), arg("--dir")) {
        migrate::child(&engine, config.n as u64, Path::new(&dir));
        return;
    }
    if config.migrate {
        println!(
            "storage-bench --migrate: N = {}, {} repetitions; {} ({} cores)",
            config.n,
            config.reps,
            cpu(),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        );
        migrate::run(config.n as u64, config.reps);
        return;
    }
    let started = Instant::now();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    println!(
        "storage-bench: N = {}, {} repetitions, {} single commits, {} point reads{}; {} ({} cores)",
        config.n,
        config.reps,
        config.commits,
        config.reads,
        if config.quick { " (quick)" } else { "" },
        cpu,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let input = input(&config);
    let dir = tempfile::tempdir().expect("temp dir");
    let (shared, native_read, raw2_read) = load(dir.path(), &input);
    println!("loaded in {:.1?}", started.elapsed());

    let mut engines = engines::all(&shared, native_read, &raw2_read);
    let names: Vec<&'static str> = engines.iter().map(|e| e.name()).collect();

    // Warm every read database's cache before anything is timed.
    for engine in engines.iter_mut() {
        let _ = engine.run(Work::FullScan, &input, 0..1);
    }
    let scans = 5;
    let mut results: Vec<Vec<Vec<Sample>>> = vec![vec![Vec::new(); engines.len()]; WORKLOADS.len()];
    for rep in 0..config.reps {
        let rep_dir = tempfile::tempdir_in(dir.path()).expect("rep dir");
        for engine in engines.iter_mut() {
            engine.create(rep_dir.path());
        }
        for (w, (work, _)) in WORKLOADS.iter().enumerate() {
            if config
                .only
                .as_ref()
                .is_some_and(|only| !format!("{work:?}").eq_ignore_ascii_case(only))
            {
                continue;
            }
            let samples = measure(&mut engines, *work, &input, config.chunks, scans, rep);
            for (e, sample) in samples.into_iter().enumerate() {
                if let Some(sample) = sample {
                    results[w][e].push(sample);
                }
            }
        }
        for engine in engines.iter_mut() {
            engine.close();
        }
        println!("repetition {} done at {:.1?}", rep + 1, started.elapsed());
    }

    // Peak memory: each engine alone, in a process of its own.
    let rss: Vec<Option<f64>> = (0..engines.len())
        .map(|e| {
            if config.no_rss {
                None
            } else {
                rss_of(&config, e)
            }
        })
        .collect();

    report(&config, &names, &input, scans, &results, &rss);
    println!("\nfinished in {:.1?}", started.elapsed());
}

fn report(
    config: &Config,
    names: &[&str],
    input: &Input,
    scans: usize,
    results: &[Vec<Vec<Sample>>],
    rss: &[Option<f64>],
) {
    const FLOOR: usize = 0;
    const PRESERIALIZED: usize = 1;
    const SEED: usize = 3;
    const DERIVE: usize = 4;
    const NATIVE: usize = 5;
    println!(
        "\n## Results (ops/s, median of {} [min..max])\n",
        config.reps
    );
    print!("| workload |");
    for name in names {
        print!(" {name} |");
    }
    println!(" storage ÷ native_db |");
    print!("|---|");
    for _ in names {
        print!("---|");
    }
    println!("---|");
    let mut stats: Vec<Vec<Option<Stat>>> = Vec::new();
    for (w, (work, label)) in WORKLOADS.iter().enumerate() {
        let (len, per) = size(*work, input, scans);
        let ops = len as f64 * per;
        let row: Vec<Option<Stat>> = results[w]
            .iter()
            .map(|s| (!s.is_empty()).then(|| stat(s, ops)))
            .collect();
        print!("| {label} |");
        for stat in &row {
            match stat {
                Some(s) => print!(
                    " {} [{}..{}] |",
                    human(s.median),
                    human(s.min),
                    human(s.max)
                ),
                None => print!(" — |"),
            }
        }
        let ours = row[DERIVE]
            .as_ref()
            .or(row[SEED].as_ref())
            .map(|s| s.median);
        match (ours, row[NATIVE].as_ref()) {
            (Some(ours), Some(native)) => println!(" {:.2}× |", ours / native.median),
            _ => println!(" — |"),
        }
        stats.push(row);
    }

    println!("\n## Ratio to the raw redb floor (engine 1; same run)\n");
    print!("| workload |");
    for name in &names[1..] {
        print!(" {name} |");
    }
    println!();
    print!("|---|");
    for _ in &names[1..] {
        print!("---|");
    }
    println!();
    for (w, (_, label)) in WORKLOADS.iter().enumerate() {
        let Some(floor) = stats[w][FLOOR].as_ref() else {
            continue;
        };
        print!("| {label} |");
        for stat in &stats[w][1..] {
            match stat {
                Some(s) => print!(" {:.2}× |", s.median / floor.median),
                None => print!(" — |"),
            }
        }
        println!();
    }

    println!("\n## Heap allocations per operation\n");
    print!("| workload |");
    for name in names {
        print!(" {name} |");
    }
    println!();
    print!("|---|");
    for _ in names {
        print!("---|");
    }
    println!();
    for (w, (_, label)) in WORKLOADS.iter().enumerate() {
        print!("| {label} |");
        for stat in &stats[w] {
            match stat {
                Some(s) => print!(" {:.2} |", s.allocations),
                None => print!(" — |"),
            }
        }
        println!();
    }

    println!(
        "\n## Peak memory (MiB above the input data): each engine alone, bulk insert + point reads + one scan\n"
    );
    for (name, rss) in names.iter().zip(rss) {
        match rss {
            Some(mib) => println!("- {name}: {mib:.0}"),
            None => println!("- {name}: unknown"),
        }
    }

    println!("\n## Targets (storage = the better of engines 3 and 4 unless named)\n");
    println!("| target | measured | goal | met |\n|---|---|---|---|");
    let ratio = |w: Work, e: usize, base: usize| -> Option<f64> {
        let i = WORKLOADS.iter().position(|(x, _)| *x == w)?;
        Some(stats[i][e].as_ref()?.median / stats[i][base].as_ref()?.median)
    };
    let best = |w: Work, base: usize| -> Option<f64> {
        let a = ratio(w, SEED, base);
        let b = ratio(w, DERIVE, base);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    };
    let allocs = |w: Work, e: usize| -> Option<f64> {
        let i = WORKLOADS.iter().position(|(x, _)| *x == w)?;
        Some(stats[i][e].as_ref()?.allocations)
    };
    let target = |name: &str, value: Option<f64>, goal: f64, at_least: bool, unit: &str| {
        let (shown, met) = match value {
            Some(v) => (
                format!("{v:.2}{unit}"),
                if at_least { v >= goal } else { v <= goal },
            ),
            None => ("—".to_owned(), false),
        };
        let sign = if at_least { "≥" } else { "≤" };
        println!(
            "| {name} | {shown} | {sign} {goal}{unit} | {} |",
            if met { "yes" } else { "**no**" }
        );
    };
    target(
        "bulk insert ÷ raw redb",
        best(Work::BulkInsert, FLOOR),
        0.95,
        true,
        "×",
    );
    target(
        "bulk insert ÷ native_db",
        best(Work::BulkInsert, NATIVE),
        3.0,
        true,
        "×",
    );
    target(
        "point read, validated ÷ raw redb",
        best(Work::PointReads, FLOOR),
        0.85,
        true,
        "×",
    );
    target(
        "point read, validated ÷ native_db",
        best(Work::PointReads, NATIVE),
        2.5,
        true,
        "×",
    );
    // The floor reads without validation already: compare with its reads.
    let unchecked = (|| {
        let i = WORKLOADS
            .iter()
            .position(|(x, _)| *x == Work::PointReadsUnchecked)?;
        let j = WORKLOADS.iter().position(|(x, _)| *x == Work::PointReads)?;
        Some(stats[i][DERIVE].as_ref()?.median / stats[j][FLOOR].as_ref()?.median)
    })();
    target(
        "point read, unchecked ÷ raw redb",
        unchecked,
        0.90,
        true,
        "×",
    );
    target(
        "full scan, validated ÷ raw redb",
        best(Work::FullScan, FLOOR),
        1.0,
        true,
        "×",
    );
    target(
        "full scan, validated ÷ native_db",
        best(Work::FullScan, NATIVE),
        3.0,
        true,
        "×",
    );
    target(
        "single durable commits ÷ raw redb",
        best(Work::SingleCommits, FLOOR),
        0.97,
        true,
        "×",
    );
    // redb allocates for its own pages; what counts is what storage adds:
    // the derive's count minus raw redb's with values serialized beforehand.
    let added = |w: Work, base: usize| Some(allocs(w, DERIVE)? - allocs(w, base)?);
    target(
        "allocations per batched write, beyond redb's",
        added(Work::BulkInsert, PRESERIALIZED),
        0.01,
        false,
        "",
    );
    target(
        "allocations per validated read, beyond redb's",
        added(Work::PointReads, FLOOR),
        0.01,
        false,
        "",
    );
}

/// The workloads of the etcd comparison.
const ETCD_WORKLOADS: &[(Work, &str)] = &[
    (Work::BulkInsert, "bulk insert (100 per transaction)"),
    (Work::SingleCommits, "single commits"),
    (Work::PointReads, "random point read, one field, validated"),
    (Work::FullScan, "full scan counting `active` (records/s)"),
    (Work::RangeScans, "range scans of 1% of keys (records/s)"),
];

/// `--etcd`: `storage` against a hand-written client on a three-member
/// cluster started here.
fn run_etcd(config: &Config) {
    let started = Instant::now();
    let Some(cluster) = etcd::start() else {
        println!(
            "storage-bench --etcd: no `etcd` binary on the PATH (Debian: apt-get install etcd-server)"
        );
        return;
    };
    println!(
        "storage-bench --etcd: N = {}, {} repetitions, {} single commits, {} point reads; \
         a 3-member etcd cluster ({}) on loopback on this machine, fsync on, default limits",
        config.n,
        config.reps,
        config.commits,
        config.reads,
        etcd_version(),
    );
    let input = input(config);
    let read = etcd::Layer::open(&cluster.endpoints, "read");
    for batch in input.users.chunks(etcd::BATCH) {
        read.records::<data::User>()
            .insert_batch(batch)
            .expect("load users");
    }
    let mut baseline = etcd::Baseline::new(&cluster.endpoints);
    baseline.put_all(b"raw-read/", &input.users);
    println!("loaded in {:.1?}", started.elapsed());
    let mut engines: Vec<Box<dyn Engine>> = vec![
        Box::new(baseline),
        Box::new(etcd::Layer::new(&cluster.endpoints, read)),
    ];
    let names: Vec<&'static str> = engines.iter().map(|e| e.name()).collect();
    let scans = 3;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut results: Vec<Vec<Vec<Sample>>> =
        vec![vec![Vec::new(); engines.len()]; ETCD_WORKLOADS.len()];
    for rep in 0..config.reps {
        for engine in engines.iter_mut() {
            engine.create(dir.path());
        }
        for (w, (work, _)) in ETCD_WORKLOADS.iter().enumerate() {
            let samples = measure(&mut engines, *work, &input, config.chunks, scans, rep);
            for (e, sample) in samples.into_iter().enumerate() {
                if let Some(sample) = sample {
                    results[w][e].push(sample);
                }
            }
        }
        for engine in engines.iter_mut() {
            engine.close();
        }
        println!("repetition {} done at {:.1?}", rep + 1, started.elapsed());
    }
    println!(
        "\n## Results on etcd (ops/s, median of {} [min..max])\n",
        config.reps
    );
    println!(
        "| workload | {} | {} | storage ÷ hand-written |\n|---|---|---|---|",
        names[0], names[1]
    );
    for (w, (work, label)) in ETCD_WORKLOADS.iter().enumerate() {
        let (len, per) = size(*work, &input, scans);
        let ops = len as f64 * per;
        let row: Vec<Stat> = results[w].iter().map(|s| stat(s, ops)).collect();
        let shown = |s: &Stat| format!("{} [{}..{}]", human(s.median), human(s.min), human(s.max));
        println!(
            "| {label} | {} | {} | {:.2}× |",
            shown(&row[0]),
            shown(&row[1]),
            row[1].median / row[0].median
        );
    }
    println!("\nfinished in {:.1?}", started.elapsed());
}

fn etcd_version() -> String {
    std::process::Command::new("etcd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "etcd".to_owned())
}

/// `--feed`: bulk inserts with and without the change feed, and its latency.
fn run_feed(config: &Config) {
    let started = Instant::now();
    println!(
        "storage-bench --feed: N = {}, {} repetitions, {} single commits for the latency; {} ({} cores)",
        config.n,
        config.reps,
        config.commits,
        cpu(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let input = input(config);
    let mut engines = feed::variants(&input);
    let names: Vec<&'static str> = engines.iter().map(|e| e.name()).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); engines.len()];
    for rep in 0..config.reps {
        let rep_dir = tempfile::tempdir_in(dir.path()).expect("rep dir");
        for engine in engines.iter_mut() {
            engine.create(rep_dir.path());
        }
        let measured = measure(
            &mut engines,
            Work::BulkInsert,
            &input,
            config.chunks,
            1,
            rep,
        );
        for (e, sample) in measured.into_iter().enumerate() {
            if let Some(sample) = sample {
                samples[e].push(sample);
            }
        }
        for engine in engines.iter_mut() {
            engine.close();
        }
        println!("repetition {} done at {:.1?}", rep + 1, started.elapsed());
    }
    let ops = input.users.len() as f64;
    let stats: Vec<Stat> = samples.iter().map(|s| stat(s, ops)).collect();
    println!(
        "\n## Bulk insert with the change feed (records/s, 1,000 per transaction, median of {} [min..max])\n",
        config.reps
    );
    println!("| variant | records/s | ÷ no feed |\n|---|---|---|");
    for (name, s) in names.iter().zip(&stats) {
        println!(
            "| {name} | {} [{}..{}] | {:.2}× |",
            human(s.median),
            human(s.min),
            human(s.max),
            s.median / stats[0].median
        );
    }
    let (p50, p99, max) = feed::latency(&input, config.commits.min(input.users.len()));
    println!(
        "\n## Latency from `write` to the subscriber's thread ({} single commits, in memory)\n\n\
         p50 {p50:.1?}, p99 {p99:.1?}, max {max:.1?}",
        config.commits.min(input.users.len())
    );
    println!("\n## Targets\n\n| target | measured | goal | met |\n|---|---|---|---|");
    let target = |name: &str, value: f64, goal: f64| {
        println!(
            "| {name} | {value:.2}× | ≥ {goal}× | {} |",
            if value >= goal { "yes" } else { "**no**" }
        );
    };
    target(
        "1 idle subscriber ÷ no feed",
        stats[1].median / stats[0].median,
        0.95,
    );
    target(
        "durable log ÷ no feed",
        stats[4].median / stats[0].median,
        0.85,
    );
    println!("\nfinished in {:.1?}", started.elapsed());
}

fn cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}
