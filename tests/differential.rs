//! Differential tests: random operations on a table, and on a record table
//! with indexes, against a `BTreeMap` model. Every read must match the model
//! exactly. The seed is printed first; `STORAGE_DIFF_SEED=<seed>` replays a
//! run and `STORAGE_DIFF_OPS` sets how many operations run (3,000 by default).

use std::collections::BTreeMap;
use std::ops::Bound;

mod common;

use common::Rng;
use storage::{Durability, Error, Storage, StoredRecord};

fn settings(name: &str) -> (u64, u64) {
    let seed = std::env::var("STORAGE_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let ops = std::env::var("STORAGE_DIFF_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000);
    eprintln!("{name}: {ops} operations, replay with STORAGE_DIFF_SEED={seed}");
    (seed, ops)
}

fn storage() -> Storage {
    Storage::builder()
        .durability(Durability::None)
        .in_memory()
        .unwrap()
}

type Key = (u16, String);

fn key(rng: &mut Rng) -> Key {
    const WORDS: [&str; 6] = ["", "a", "a\0", "ab", "b", "\0"];
    (
        rng.below(12) as u16,
        WORDS[rng.below(WORDS.len() as u64) as usize].to_owned(),
    )
}

fn bound(rng: &mut Rng) -> Bound<Key> {
    match rng.below(3) {
        0 => Bound::Included(key(rng)),
        1 => Bound::Excluded(key(rng)),
        _ => Bound::Unbounded,
    }
}

/// A valid range for `BTreeMap::range` (which panics on inverted bounds).
fn valid(start: &Bound<Key>, end: &Bound<Key>) -> bool {
    match (start, end) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a < b,
        _ => true,
    }
}

#[test]
fn table_matches_a_btreemap() {
    let (seed, ops) = settings("table_matches_a_btreemap");
    let mut rng = Rng(seed);
    let storage = storage();
    let table = storage.table::<Key, u64>("t");
    let mut model = BTreeMap::<Key, u64>::new();

    for op in 0..ops {
        let context = format!("op {op}, STORAGE_DIFF_SEED={seed}");
        match rng.below(10) {
            0..=2 => {
                let (k, v) = (key(&mut rng), rng.next());
                table.put(&k, &v).unwrap();
                model.insert(k, v);
            }
            3 => {
                let k = key(&mut rng);
                assert_eq!(
                    table.delete(&k).unwrap(),
                    model.remove(&k).is_some(),
                    "{context}"
                );
            }
            4 => {
                // A batch of puts and deletes in one transaction, sometimes aborted.
                let mut staged = model.clone();
                let abort = rng.chance(25);
                let result = storage.write(|tx| {
                    let mut t = tx.table::<Key, u64>("t");
                    for _ in 0..1 + rng.below(8) {
                        let k = key(&mut rng);
                        if rng.chance(70) {
                            let v = rng.next();
                            t.put(&k, &v)?;
                            staged.insert(k, v);
                        } else {
                            assert_eq!(t.delete(&k)?, staged.remove(&k).is_some());
                        }
                    }
                    if abort {
                        Err(Error::abort("model says no"))
                    } else {
                        Ok(())
                    }
                });
                assert_eq!(result.is_err(), abort, "{context}");
                if !abort {
                    model = staged;
                }
            }
            5 => {
                let k = key(&mut rng);
                assert_eq!(
                    table.get(&k, |v| v.to_native()).unwrap(),
                    model.get(&k).copied(),
                    "{context}"
                );
            }
            6 | 7 => {
                let (start, end) = (bound(&mut rng), bound(&mut rng));
                if !valid(&start, &end) {
                    continue;
                }
                let expected: Vec<(Key, u64)> = model
                    .range((start.clone(), end.clone()))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                let backwards = rng.chance(50);
                let got: Vec<(Key, u64)> = storage
                    .read(|tx| {
                        let t = tx.table::<Key, u64>("t");
                        let range = t.range((start.clone(), end.clone()))?;
                        let entries: Box<dyn Iterator<Item = _>> = if backwards {
                            Box::new(range.rev())
                        } else {
                            Box::new(range)
                        };
                        entries
                            .map(|e| e.map(|e| (e.key().clone(), e.value().to_native())))
                            .collect()
                    })
                    .unwrap();
                let expected: Vec<_> = if backwards {
                    expected.into_iter().rev().collect()
                } else {
                    expected
                };
                assert_eq!(got, expected, "{context}: range {start:?}..{end:?}");
            }
            8 => {
                let first = rng.below(12) as u16;
                let got = table
                    .prefix((first,), |k, v| Some((k.clone(), v.to_native())))
                    .unwrap();
                let expected: Vec<(Key, u64)> = model
                    .iter()
                    .filter(|(k, _)| k.0 == first)
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                assert_eq!(got, expected, "{context}: prefix ({first},)");
            }
            _ => assert_eq!(table.len().unwrap(), model.len() as u64, "{context}"),
        }
    }
    let all = table.scan(|k, v| Some((k.clone(), v.to_native()))).unwrap();
    assert_eq!(
        all,
        model.into_iter().collect::<Vec<_>>(),
        "final contents, STORAGE_DIFF_SEED={seed}"
    );
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
    #[index]
    tag: Option<String>,
    balance: u32,
}

fn account(rng: &mut Rng) -> Account {
    Account {
        id: rng.below(40) as u16,
        email: format!("user{}@x", rng.below(60)),
        group: rng.below(5) as u8,
        tag: rng
            .chance(60)
            .then(|| ["red", "green", "blue"][rng.below(3) as usize].to_owned()),
        balance: rng.below(1_000) as u32,
    }
}

/// Whether `records` (applied in order, replacing by id) keep emails unique
/// in `model`; the new model if they do.
fn apply(model: &BTreeMap<u16, Account>, records: &[Account]) -> Option<BTreeMap<u16, Account>> {
    let mut next = model.clone();
    for record in records {
        if next
            .values()
            .any(|other| other.email == record.email && other.id != record.id)
        {
            return None;
        }
        next.insert(record.id, record.clone());
    }
    Some(next)
}

fn ids(_: &u16, a: &ArchivedAccount) -> Option<u16> {
    Some(a.id())
}

#[test]
fn records_and_indexes_match_a_btreemap() {
    let (seed, ops) = settings("records_and_indexes_match_a_btreemap");
    let mut rng = Rng(seed);
    let storage = storage();
    let accounts = storage.records::<Account>();
    let mut model = BTreeMap::<u16, Account>::new();
    let (mut clashes, mut inserts) = (0, 0);

    for op in 0..ops {
        let context = format!("op {op}, STORAGE_DIFF_SEED={seed}");
        match rng.below(8) {
            0..=2 => {
                let batch: Vec<Account> = (0..1 + rng.below(4) * u64::from(rng.chance(30)))
                    .map(|_| account(&mut rng))
                    .collect();
                let result = accounts.insert_batch(&batch);
                match apply(&model, &batch) {
                    Some(next) => {
                        result.unwrap_or_else(|e| panic!("{context}: {e}"));
                        model = next;
                        inserts += batch.len();
                    }
                    None => {
                        assert!(
                            matches!(
                                result.as_ref().map_err(Error::root),
                                Err(Error::UniqueViolation { .. })
                            ),
                            "{context}: {result:?}"
                        );
                        clashes += 1;
                    }
                }
            }
            3 => {
                let id = rng.below(40) as u16;
                assert_eq!(
                    accounts.delete(id).unwrap(),
                    model.remove(&id).is_some(),
                    "{context}"
                );
            }
            4 => {
                let email = format!("user{}@x", rng.below(60));
                let expected = model.values().find(|a| a.email == email).map(|a| a.id);
                assert_eq!(
                    accounts.by_email(&email, |a| a.id()).unwrap(),
                    expected,
                    "{context}"
                );
            }
            5 => {
                let group = rng.below(5) as u8;
                let expected: Vec<u16> = model
                    .values()
                    .filter(|a| a.group == group)
                    .map(|a| a.id)
                    .collect();
                assert_eq!(
                    accounts.by_group(group, ids).unwrap(),
                    expected,
                    "{context}: group {group}"
                );
            }
            6 => {
                let (low, high) = (rng.below(5) as u8, rng.below(5) as u8);
                let mut expected: Vec<(u8, u16)> = model
                    .values()
                    .filter(|a| (low..=high).contains(&a.group))
                    .map(|a| (a.group, a.id))
                    .collect();
                expected.sort();
                let expected: Vec<u16> = expected.into_iter().map(|(_, id)| id).collect();
                assert_eq!(
                    accounts.by_group_range(low..=high, ids).unwrap(),
                    expected,
                    "{context}: groups {low}..={high}"
                );
            }
            _ => {
                let tag = ["red", "green", "blue"][rng.below(3) as usize];
                let expected: Vec<u16> = model
                    .values()
                    .filter(|a| a.tag.as_deref() == Some(tag))
                    .map(|a| a.id)
                    .collect();
                assert_eq!(
                    accounts.by_tag(tag, ids).unwrap(),
                    expected,
                    "{context}: tag {tag}"
                );
            }
        }
    }
    let all = accounts
        .scan(|_, a| Some((a.id(), a.email().to_owned(), a.balance())))
        .unwrap();
    let expected: Vec<_> = model
        .values()
        .map(|a| (a.id, a.email.clone(), a.balance))
        .collect();
    assert_eq!(all, expected, "final contents, STORAGE_DIFF_SEED={seed}");
    // Every index holds exactly one entry per indexed value.
    let count = |index: &str| {
        let mut n = 0;
        storage
            .backend()
            .scan(&format!("__index:accounts:{index}"), |_, _| {
                n += 1;
                Ok(())
            })
            .unwrap();
        n
    };
    assert_eq!(count("email"), model.len());
    assert_eq!(count("group"), model.len());
    assert_eq!(
        count("tag"),
        model.values().filter(|a| a.tag.is_some()).count()
    );
    eprintln!("{inserts} records written, {clashes} batches refused for a unique clash");
}
