//! Garbage written under our keys through raw redb is reported as
//! `Error::Corrupt` naming the table, never a panic; good entries stay readable.
//! `STORAGE_CORRUPT_VALUES=100000` mutates more values (10,000 by default) and
//! `STORAGE_CORRUPT_SEED` picks other mutations.

mod common;

use common::{Rng, User, temp_storage, user};
use redb::{Database, TableDefinition};
use storage::{Error, Storage};

const USERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("users");

/// Writes `entries` straight into the `users` table with redb, bypassing storage.
fn write_raw(path: &std::path::Path, entries: &[(&[u8], &[u8])]) {
    let db = Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(USERS).unwrap();
        for (key, value) in entries {
            table.insert(*key, *value).unwrap();
        }
    }
    txn.commit().unwrap();
}

fn is_corrupt(err: &Error, part: &str, key: &[u8]) -> bool {
    matches!(err, Error::Corrupt { table, part: p, key: k, .. } if table == "users" && *p == part && k == key)
}

#[test]
fn garbage_values_and_keys_give_corrupt_errors() {
    let (_dir, path, storage) = temp_storage();
    let users = storage.table::<u64, User>("users");
    users
        .put_batch((1..=3u64).map(|i| (i, user(&format!("user{i}"), i as u32, true))))
        .unwrap();
    drop((users, storage));

    let two = 2u64.to_be_bytes();
    let bad_key = [7u8; 3]; // not 8 bytes: cannot be a u64 key
    let good = rkyv::to_bytes::<rkyv::rancor::Error>(&user("fine", 1, true)).unwrap();
    write_raw(
        &path,
        &[(&two, b"definitely not an archive"), (&bad_key, &good)],
    );

    let storage = Storage::new(&path).unwrap();
    let users = storage.table::<u64, User>("users");

    // The damaged value: a typed error naming the table, key and part.
    let err = users.get(2u64, |u| u.name.to_string()).unwrap_err();
    assert!(is_corrupt(&err, "value", &two), "{err:?}");
    assert!(err.to_string().contains("table `users`"), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "chained to rkyv's error"
    );

    // Good records stay readable.
    assert_eq!(
        users.get(1u64, |u| u.name.to_string()).unwrap().as_deref(),
        Some("user1")
    );
    assert_eq!(
        users.get(3u64, |u| u.name.to_string()).unwrap().as_deref(),
        Some("user3")
    );

    // A scan stops at the first bad entry with the error.
    let err = users.scan(|k, _| Some(*k)).unwrap_err();
    assert!(is_corrupt(&err, "value", &two), "{err:?}");

    // Iteration reports each bad entry and goes on.
    let results: Vec<Result<u64, Error>> = storage
        .read(|tx| {
            Ok(tx
                .table::<u64, User>("users")
                .iter()?
                .map(|e| e.map(|e| *e.key()))
                .collect())
        })
        .unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].as_ref().ok(), Some(&1));
    assert!(is_corrupt(results[1].as_ref().unwrap_err(), "value", &two));
    assert_eq!(results[2].as_ref().ok(), Some(&3));
    assert!(is_corrupt(
        results[3].as_ref().unwrap_err(),
        "key",
        &bad_key
    ));

    // Overwriting the bad value repairs the entry.
    users.put(2u64, &user("repaired", 2, true)).unwrap();
    assert_eq!(
        users.get(2u64, |u| u.name.to_string()).unwrap().as_deref(),
        Some("repaired")
    );
}

#[test]
fn truncated_and_bit_flipped_values_never_panic() {
    let (_dir, path, storage) = temp_storage();
    storage
        .put(
            "users",
            1u64,
            &user("a name longer than inline storage", 5, true),
        )
        .unwrap();
    drop(storage);
    let valid =
        rkyv::to_bytes::<rkyv::rancor::Error>(&user("a name longer than inline storage", 5, true))
            .unwrap()
            .to_vec();

    let mut variants: Vec<Vec<u8>> = (0..valid.len()).map(|n| valid[..n].to_vec()).collect();
    for bit in 0..valid.len() * 8 {
        let mut flipped = valid.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        variants.push(flipped);
    }
    // Every variant under a key of its own, written in one raw transaction.
    let keys: Vec<[u8; 8]> = (0..variants.len() as u64).map(u64::to_be_bytes).collect();
    let entries: Vec<(&[u8], &[u8])> = keys
        .iter()
        .zip(&variants)
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    write_raw(&path, &entries);

    let storage = Storage::new(&path).unwrap();
    let users = storage.table::<u64, User>("users");
    let mut rejected = 0;
    for (i, key) in keys.iter().enumerate() {
        // Either a typed error or a value: rkyv accepts flips that keep the
        // archive well-formed (a changed age, a changed letter).
        match users.get(i as u64, |u| (u.name.len(), u.age.to_native())) {
            Ok(_) => {}
            Err(err) => {
                assert!(is_corrupt(&err, "value", key), "{err:?}");
                rejected += 1;
            }
        }
    }
    // Every truncation is caught, and so are most bit flips.
    assert!(
        rejected >= valid.len(),
        "only {rejected} of {} variants rejected",
        variants.len()
    );
}

#[test]
fn ten_thousand_mutated_values_are_reported_and_good_ones_stay_readable() {
    let mutated: usize = std::env::var("STORAGE_CORRUPT_VALUES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    const KINDS: [&str; 4] = ["truncated", "bit flip", "random bytes", "overwritten run"];
    let seed = std::env::var("STORAGE_CORRUPT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut rng = Rng(seed);
    let originals: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            let mut u = user(
                &format!("user number {i} with a longer name"),
                i * 7,
                i % 2 == 0,
            );
            u.tags = (0..i).map(|t| format!("tag {t} of {i}")).collect();
            rkyv::to_bytes::<rkyv::rancor::Error>(&u).unwrap().to_vec()
        })
        .collect();

    // Every 10th key holds a good value; the others a mutated one.
    let mut entries: Vec<([u8; 8], Vec<u8>, Option<usize>)> = Vec::new();
    let mut key = 0u64;
    let mut made = 0;
    while made < mutated {
        let original = &originals[rng.below(originals.len() as u64) as usize];
        let kind = if key.is_multiple_of(10) {
            None
        } else {
            Some(rng.below(KINDS.len() as u64) as usize)
        };
        let value = match kind {
            None => original.clone(),
            Some(0) => original[..rng.below(original.len() as u64) as usize].to_vec(),
            Some(1) => {
                let mut v = original.clone();
                let bit = rng.below(v.len() as u64 * 8) as usize;
                v[bit / 8] ^= 1 << (bit % 8);
                v
            }
            Some(2) => (0..rng.below(200) as usize)
                .map(|_| rng.next() as u8)
                .collect(),
            _ => {
                let mut v = original.clone();
                let start = rng.below(v.len() as u64) as usize;
                let end = (start + 1 + rng.below(16) as usize).min(v.len());
                for byte in &mut v[start..end] {
                    *byte = rng.next() as u8;
                }
                v
            }
        };
        made += usize::from(kind.is_some());
        entries.push((key.to_be_bytes(), value, kind));
        key += 1;
    }

    let (_dir, path, storage) = temp_storage();
    storage
        .put("users", u64::MAX, &user("sentinel", 1, true))
        .unwrap();
    drop(storage);
    let raw: Vec<(&[u8], &[u8])> = entries
        .iter()
        .map(|(k, v, _)| (k.as_slice(), v.as_slice()))
        .collect();
    write_raw(&path, &raw);

    let storage = Storage::new(&path).unwrap();
    let users = storage.table::<u64, User>("users");
    let mut rejected = [0usize; 4];
    let mut accepted = [0usize; 4];
    let mut first_bad = None;
    for (key, value, kind) in &entries {
        let id = u64::from_be_bytes(*key);
        let read = users.get(id, |u| (u.name.len(), u.age.to_native(), u.tags.len()));
        match (kind, read) {
            (None, Ok(Some(_))) => {}
            (None, other) => panic!("good value under {id} unreadable: {other:?}"),
            (Some(kind), Ok(_)) => accepted[*kind] += 1,
            (Some(kind), Err(err)) => {
                assert!(is_corrupt(&err, "value", key), "{err:?}");
                rejected[*kind] += 1;
                first_bad.get_or_insert(id);
            }
        }
        let _ = value;
    }
    // Iteration reports each bad value and goes on; good values come through.
    let (mut ok, mut bad) = (0, 0);
    storage
        .read(|tx| {
            for entry in tx.table::<u64, User>("users").iter()? {
                match entry {
                    Ok(e) => {
                        let _ = (e.value().name.len(), e.value().tags.len());
                        ok += 1;
                    }
                    Err(err) => {
                        assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
                        bad += 1;
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    let total_rejected: usize = rejected.iter().sum();
    assert_eq!(
        bad, total_rejected,
        "iteration and lookups agree on what is corrupt"
    );
    assert_eq!(ok + bad, entries.len() + 1);
    // A scan stops at the first corrupt entry, with its key.
    let err = users.scan(|id, _| Some(*id)).unwrap_err();
    assert!(
        is_corrupt(&err, "value", &first_bad.unwrap().to_be_bytes()),
        "{err:?}"
    );
    // And the sentinel written through storage is still there.
    assert_eq!(
        users
            .get(u64::MAX, |u| u.name.to_string())
            .unwrap()
            .as_deref(),
        Some("sentinel")
    );

    eprintln!("{mutated} mutated values (seed {seed}):");
    for (i, kind) in KINDS.iter().enumerate() {
        eprintln!(
            "  {kind:>15}: {} rejected as Corrupt, {} still valid archives",
            rejected[i], accepted[i]
        );
    }
    // Truncation and random bytes almost never form a valid archive.
    assert!(
        rejected[0] * 10 > (rejected[0] + accepted[0]) * 9,
        "{rejected:?} {accepted:?}"
    );
    assert!(
        rejected[2] * 10 > (rejected[2] + accepted[2]) * 9,
        "{rejected:?} {accepted:?}"
    );
}
