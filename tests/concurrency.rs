//! Readers running beside a writer always see a consistent snapshot of an
//! invariant the writer keeps across two tables. The soak runs for
//! `STORAGE_SOAK_SECS` seconds (3 by default) on a file with durable commits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use storage::Storage;

const ACCOUNTS: u64 = 16;
const TOTAL: i64 = ACCOUNTS as i64 * 1_000;

fn assert_send_sync<T: Clone + Send + Sync + 'static>() {}

#[test]
fn storage_and_handles_are_send_and_sync() {
    assert_send_sync::<Storage>();
    assert_send_sync::<storage::Table<u64, String>>();
    assert_send_sync::<storage::Table<&'static str, Vec<u8>>>();
}

/// Sum of both tables, read in one snapshot.
fn total(storage: &Storage) -> storage::Result<i64> {
    storage.read(|tx| {
        let mut sum = 0;
        for table in ["checking", "savings"] {
            for entry in tx.table::<u64, i64>(table).iter()? {
                sum += entry?.value().to_native();
            }
        }
        Ok(sum)
    })
}

#[test]
fn readers_see_a_constant_sum_while_a_writer_moves_money_between_tables() {
    let seconds: u64 = std::env::var("STORAGE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(dir.path().join("soak.redb")).unwrap();
    storage
        .write(|tx| {
            let mut checking = tx.table::<u64, i64>("checking");
            for id in 0..ACCOUNTS {
                checking.put(id, &1_000)?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(total(&storage).unwrap(), TOTAL);

    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let storage = storage.clone();
            let done = done.clone();
            thread::spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::Relaxed) || reads == 0 {
                    assert_eq!(
                        total(&storage).unwrap(),
                        TOTAL,
                        "a reader saw a torn transfer"
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut transfers = 0u64;
    while Instant::now() < deadline {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let (from, to, amount) = (
            state % ACCOUNTS,
            (state >> 8) % ACCOUNTS,
            (state >> 16) as i64 % 50,
        );
        // Alternate the direction so that both tables take and give.
        let (source, target) = if transfers.is_multiple_of(2) {
            ("checking", "savings")
        } else {
            ("savings", "checking")
        };
        storage
            .write(|tx| {
                let mut source = tx.table::<u64, i64>(source);
                let balance = source.get(from, |b| b.to_native())?.unwrap_or(0);
                source.put(from, &(balance - amount))?;
                let mut target = tx.table::<u64, i64>(target);
                let balance = target.get(to, |b| b.to_native())?.unwrap_or(0);
                target.put(to, &(balance + amount))?;
                Ok(())
            })
            .unwrap();
        transfers += 1;
    }
    done.store(true, Ordering::Relaxed);
    let reads: u64 = readers
        .into_iter()
        .map(|r| r.join().expect("reader panicked"))
        .sum();
    assert!(transfers > 0 && reads > 0);
    assert_eq!(total(&storage).unwrap(), TOTAL);
    eprintln!(
        "soak: {transfers} durable transfers and {reads} consistent snapshot reads in {seconds}s, no errors"
    );
}
