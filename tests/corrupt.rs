//! Garbage written under our keys through raw redb is reported as
//! `Error::Corrupt` naming the table, never a panic; good entries stay readable.

mod common;

use common::{User, temp_storage, user};
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
