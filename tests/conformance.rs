//! One conformance suite, every backend: the same scenarios — keys and their
//! order, ranges both ways, transactions and rollback, indexes (unique under
//! concurrent writers too), schema checks and migrations, and a differential
//! run against a `BTreeMap` — on redb in a file, redb in memory, and a real
//! three-member etcd cluster on loopback (skipped, with a printed line, when
//! the `etcd` binary is not installed).

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::Rng;
use storage::{Error, Storage, StoredRecord};

/// Runs each scenario on each backend.
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod redb_file {
            $(#[test]
            fn $scenario() {
                let (_dir, _path, storage) = crate::common::temp_storage();
                super::$scenario(&storage);
            })*
        }
        mod redb_memory {
            $(#[test]
            fn $scenario() {
                super::$scenario(&storage::Storage::in_memory().unwrap());
            })*
        }
        mod etcd {
            $(#[test]
            fn $scenario() {
                let Some(cluster) = crate::common::etcd::Cluster::shared() else {
                    return;
                };
                let namespace = crate::common::etcd::namespace(stringify!($scenario));
                let storage = cluster.storage(&namespace);
                assert!(storage.backend().engine().etcd().is_some());
                super::$scenario(&storage);
            })*
        }
    };
}

on_every_backend!(
    keys_come_back_in_order_both_ways,
    transactions_commit_everything_or_nothing,
    a_snapshot_does_not_see_later_commits,
    indexes_stay_exact,
    a_unique_value_goes_to_exactly_one_of_many_concurrent_writers,
    a_changed_layout_is_refused_and_migrates,
    tables_match_a_btreemap,
);

type Key = (u16, String);

fn keys_come_back_in_order_both_ways(storage: &Storage) {
    let table = storage.table::<Key, u32>("pairs");
    let words = ["", "a", "a\0", "ab", "b", "\0"];
    let mut expected = BTreeMap::new();
    let mut items = Vec::new();
    for i in 0..40u32 {
        let key: Key = (
            (i % 7) as u16,
            words[(i as usize * 5) % words.len()].to_owned(),
        );
        expected.insert(key.clone(), i);
        items.push((key, i));
    }
    table
        .put_batch(items.iter().map(|(k, v)| (k.clone(), *v)))
        .unwrap();
    let all = table.scan(|k, v| Some((k.clone(), v.to_native()))).unwrap();
    assert_eq!(all, expected.clone().into_iter().collect::<Vec<_>>());
    storage
        .read(|tx| {
            let pairs = tx.table::<Key, u32>("pairs");
            let backwards: Vec<Key> = pairs.iter()?.rev().map(|e| e.unwrap().into_key()).collect();
            let mut want: Vec<Key> = expected.keys().cloned().collect();
            want.reverse();
            assert_eq!(backwards, want);
            let three: Vec<Key> = pairs
                .prefix((3u16,))?
                .map(|e| e.unwrap().into_key())
                .collect();
            let want: Vec<Key> = expected.keys().filter(|k| k.0 == 3).cloned().collect();
            assert_eq!(three, want);
            let from: (u16, &str) = (2, "a");
            let to: (u16, &str) = (4, "b");
            let mid: Vec<Key> = pairs
                .range(from..to)?
                .rev()
                .map(|e| e.unwrap().into_key())
                .collect();
            let mut want: Vec<Key> = expected
                .range((2, "a".to_owned())..(4, "b".to_owned()))
                .map(|(k, _)| k.clone())
                .collect();
            want.reverse();
            assert_eq!(mid, want);
            assert_eq!(pairs.len()?, expected.len() as u64);
            Ok(())
        })
        .unwrap();
}

fn transactions_commit_everything_or_nothing(storage: &Storage) {
    storage
        .write(|tx| {
            tx.table::<&str, u64>("a").put("x", &1)?;
            tx.table::<&str, u64>("b").put("y", &2)?;
            // Reads see the transaction's own writes.
            assert_eq!(
                tx.table::<&str, u64>("a").get("x", |v| v.to_native())?,
                Some(1)
            );
            Ok(())
        })
        .unwrap();
    let failed = storage.write(|tx| {
        tx.table::<&str, u64>("a").put("x", &10)?;
        tx.table::<&str, u64>("b").delete("y")?;
        Err::<(), _>(Error::abort("no"))
    });
    assert!(failed.is_err());
    let panicked = storage.write(|tx| {
        tx.table::<&str, u64>("a").put("x", &20)?;
        if tx.table::<&str, u64>("a").len()? > 0 {
            panic!("inside the closure");
        }
        Ok(())
    });
    assert!(matches!(panicked, Err(Error::Panicked { .. })));
    assert_eq!(
        storage
            .table::<&str, u64>("a")
            .get("x", |v| v.to_native())
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        storage
            .table::<&str, u64>("b")
            .get("y", |v| v.to_native())
            .unwrap(),
        Some(2)
    );
}

fn a_snapshot_does_not_see_later_commits(storage: &Storage) {
    storage.put("counter", "n", &1u64).unwrap();
    storage
        .read(|old| {
            let before = old
                .table::<&str, u64>("counter")
                .get("n", |v| v.to_native())?;
            storage.put("counter", "n", &2u64)?;
            storage.put("counter", "m", &3u64)?;
            let counter = old.table::<&str, u64>("counter");
            assert_eq!(counter.get("n", |v| v.to_native())?, before);
            assert_eq!(counter.get("m", |v| v.to_native())?, None);
            assert_eq!(counter.len()?, 1);
            Ok(())
        })
        .unwrap();
    assert_eq!(storage.table::<&str, u64>("counter").len().unwrap(), 2);
}

#[derive(
    Debug, Clone, PartialEq, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[stored(table = "accounts")]
struct Account {
    #[key]
    id: u16,
    #[index(unique)]
    email: String,
    #[index]
    group: u8,
    balance: u32,
}

fn account(id: u16, email: &str, group: u8) -> Account {
    Account {
        id,
        email: email.into(),
        group,
        balance: u32::from(id) * 10,
    }
}

fn ids(_: &u16, a: &ArchivedAccount) -> Option<u16> {
    Some(a.id())
}

fn indexes_stay_exact(storage: &Storage) {
    let accounts = storage.records::<Account>();
    accounts
        .insert_batch([
            account(1, "a@x", 1),
            account(2, "b@x", 1),
            account(3, "c@x", 2),
        ])
        .unwrap();
    assert_eq!(accounts.by_email("b@x", |a| a.id()).unwrap(), Some(2));
    assert_eq!(accounts.by_group(1, ids).unwrap(), [1, 2]);
    accounts.insert(&account(2, "b2@x", 2)).unwrap();
    assert_eq!(accounts.by_email("b@x", |a| a.id()).unwrap(), None);
    assert_eq!(accounts.by_group(2, ids).unwrap(), [2, 3]);
    let clash = accounts.insert(&account(4, "a@x", 3)).unwrap_err();
    assert!(matches!(clash, Error::UniqueViolation { .. }), "{clash}");
    let batch = accounts
        .insert_batch([account(5, "e@x", 3), account(6, "c@x", 3)])
        .unwrap_err();
    assert!(
        matches!(batch.root(), Error::UniqueViolation { .. }),
        "{batch}"
    );
    assert!(accounts.delete(1).unwrap());
    assert_eq!(accounts.by_group(3, ids).unwrap(), Vec::<u16>::new());
    assert_eq!(accounts.by_email("a@x", |a| a.id()).unwrap(), None);
    storage
        .write(|tx| {
            let mut accounts = tx.records::<Account>();
            accounts.insert(&account(7, "g@x", 1))?;
            assert_eq!(accounts.by_group(1, ids)?, [7]);
            Ok(())
        })
        .unwrap();
    assert!(storage.verify::<Account>().unwrap().is_clean());
    let by_name = storage
        .table::<u16, Account>("accounts")
        .put(9, &account(9, "z@x", 1));
    assert!(matches!(by_name, Err(Error::TableOwned { .. })));
}

fn a_unique_value_goes_to_exactly_one_of_many_concurrent_writers(storage: &Storage) {
    let accounts = storage.records::<Account>();
    accounts.insert(&account(100, "seed@x", 0)).unwrap();
    let writers: Vec<_> = (0..4u16)
        .map(|i| {
            let storage = storage.clone();
            std::thread::spawn(move || {
                storage
                    .records::<Account>()
                    .insert(&account(i + 1, "same@x", 0))
            })
        })
        .collect();
    let results: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for result in &results {
        if let Err(e) = result {
            assert!(matches!(e, Error::UniqueViolation { .. }), "{e}");
        }
    }
    assert!(storage.verify::<Account>().unwrap().is_clean());
    assert_eq!(accounts.len().unwrap(), 2);
}

mod before {
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "notes")]
    pub struct Note {
        #[key]
        pub id: u32,
        pub text: String,
    }
}

mod after {
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "notes", version = 2, migrate_from = super::before::Note)]
    pub struct Note {
        #[key]
        pub id: u32,
        pub text: String,
        #[index]
        pub pinned: bool,
    }

    impl From<super::before::Note> for Note {
        fn from(old: super::before::Note) -> Self {
            Note {
                id: old.id,
                pinned: old.text.starts_with('!'),
                text: old.text,
            }
        }
    }
}

fn a_changed_layout_is_refused_and_migrates(storage: &Storage) {
    use after::NoteIndexes as _;
    storage
        .records::<before::Note>()
        .insert_batch([
            before::Note {
                id: 1,
                text: "!urgent".into(),
            },
            before::Note {
                id: 2,
                text: "later".into(),
            },
        ])
        .unwrap();
    let refused = storage.records::<after::Note>().len().unwrap_err();
    assert!(matches!(refused, Error::SchemaMismatch { .. }), "{refused}");
    let report = storage.migrate::<after::Note>().unwrap();
    assert_eq!((report.from_version, report.records), (1, 2));
    let pinned = storage
        .records::<after::Note>()
        .by_pinned(true, |id, _| Some(*id))
        .unwrap();
    assert_eq!(pinned, [1]);
    assert!(storage.verify::<after::Note>().unwrap().is_clean());
}

fn tables_match_a_btreemap(storage: &Storage) {
    let ops = std::env::var("STORAGE_CONFORMANCE_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300u64);
    let seed = u64::from(std::process::id());
    let mut rng = Rng(seed);
    let table = storage.table::<u16, u32>("model");
    let mut model = BTreeMap::<u16, u32>::new();
    for op in 0..ops {
        let context = format!("op {op}, seed {seed}");
        match rng.below(6) {
            0 | 1 => {
                let (k, v) = (rng.below(50) as u16, rng.below(1000) as u32);
                table.put(k, &v).unwrap();
                model.insert(k, v);
            }
            2 => {
                let k = rng.below(50) as u16;
                assert_eq!(
                    table.delete(k).unwrap(),
                    model.remove(&k).is_some(),
                    "{context}"
                );
            }
            3 => {
                // A batch, aborted a third of the time.
                let items: Vec<(u16, u32)> = (0..3)
                    .map(|_| (rng.below(50) as u16, rng.below(1000) as u32))
                    .collect();
                let abort = rng.chance(33);
                let result = storage.write(|tx| {
                    tx.table::<u16, u32>("model")
                        .put_batch(items.iter().map(|(k, v)| (*k, *v)))?;
                    if abort {
                        Err(Error::abort("no"))
                    } else {
                        Ok(())
                    }
                });
                assert_eq!(result.is_ok(), !abort, "{context}");
                if !abort {
                    model.extend(items);
                }
            }
            4 => {
                let k = rng.below(50) as u16;
                assert_eq!(
                    table.get(k, |v| v.to_native()).unwrap(),
                    model.get(&k).copied(),
                    "{context}"
                );
            }
            _ => {
                let (a, b) = (rng.below(50) as u16, rng.below(50) as u16);
                let (lo, hi) = (a.min(b), a.max(b));
                let start = if rng.chance(50) {
                    Bound::Included(lo)
                } else {
                    Bound::Excluded(lo)
                };
                let got = storage
                    .read(|tx| {
                        Ok(tx
                            .table::<u16, u32>("model")
                            .range((start, Bound::Included(hi)))?
                            .rev()
                            .map(|e| {
                                let e = e.unwrap();
                                (*e.key(), e.value().to_native())
                            })
                            .collect::<Vec<_>>())
                    })
                    .unwrap();
                let want: Vec<(u16, u32)> = model
                    .range((start, Bound::Included(hi)))
                    .rev()
                    .map(|(k, v)| (*k, *v))
                    .collect();
                assert_eq!(got, want, "{context}");
            }
        }
    }
    let all = table.scan(|k, v| Some((*k, v.to_native()))).unwrap();
    assert_eq!(
        all,
        model.into_iter().collect::<Vec<_>>(),
        "final, seed {seed}"
    );
}
