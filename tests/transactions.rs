//! Write transactions commit everything or nothing, across tables; reads see
//! snapshots; ranges iterate in key order both ways.

mod common;

use common::{User, user};
use storage::{Error, Storage};

/// Two tables with known contents.
fn seeded() -> Storage {
    let storage = Storage::in_memory().unwrap();
    storage
        .write(|tx| {
            tx.table::<u64, User>("users")
                .put(1u64, &user("Ann", 40, true))?;
            tx.table::<&str, u64>("counters").put("users", &1)?;
            Ok(())
        })
        .unwrap();
    storage
}

/// The full contents of both tables, to compare before and after.
type Contents = (Vec<(u64, String)>, Vec<(String, u64)>);

fn snapshot(storage: &Storage) -> Contents {
    let users = storage.table::<u64, User>("users");
    let counters = storage.table::<&str, u64>("counters");
    (
        users.scan(|k, u| Some((*k, u.name.to_string()))).unwrap(),
        counters
            .scan(|k, n| Some((k.clone(), n.to_native())))
            .unwrap(),
    )
}

/// Writes to both tables, then fails the way `fail` says.
fn write_then(
    storage: &Storage,
    mut fail: impl FnMut() -> storage::Result<()>,
) -> storage::Result<()> {
    storage.write(|tx| {
        let mut users = tx.table::<u64, User>("users");
        users.put(1u64, &user("Ann overwritten", 41, false))?;
        users.put(2u64, &user("Bob", 20, true))?;
        tx.table::<&str, u64>("counters").put("users", &2)?;
        fail()
    })
}

#[test]
fn commit_applies_every_table() {
    let storage = seeded();
    write_then(&storage, || Ok(())).unwrap();
    let (users, counters) = snapshot(&storage);
    assert_eq!(users, [(1, "Ann overwritten".into()), (2, "Bob".into())]);
    assert_eq!(counters, [("users".into(), 2)]);
}

#[test]
fn an_error_from_the_closure_rolls_back_every_table() {
    let storage = seeded();
    let before = snapshot(&storage);
    let err = write_then(&storage, || Err(Error::abort("changed my mind"))).unwrap_err();
    assert_eq!(
        err.abort_reason().map(ToString::to_string),
        Some("changed my mind".into())
    );
    assert_eq!(snapshot(&storage), before);
}

#[test]
fn a_storage_error_inside_rolls_back_too() {
    let storage = seeded();
    let before = snapshot(&storage);
    let err = storage
        .write(|tx| {
            tx.table::<u64, User>("users")
                .put(9u64, &user("Zed", 1, true))?;
            // Fails: reserved name.
            tx.table::<u64, u64>("__nope").put(1u64, &1)?;
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTableName { .. }), "{err}");
    assert_eq!(snapshot(&storage), before);
}

#[test]
fn a_panic_inside_rolls_back_and_names_the_tables() {
    let storage = seeded();
    let before = snapshot(&storage);
    let err = write_then(&storage, || panic!("boom in the middle")).unwrap_err();
    match &err {
        Error::Panicked { tables, message } => {
            assert_eq!(message, "boom in the middle");
            assert_eq!(tables, &["users", "counters"]);
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(snapshot(&storage), before);
    // The storage is still usable after the panic.
    write_then(&storage, || Ok(())).unwrap();
    assert_eq!(snapshot(&storage).0.len(), 2);
}

#[test]
fn a_panic_inside_a_batch_rolls_back() {
    let storage = seeded();
    let before = snapshot(&storage);
    let err = storage
        .write_batch::<()>("users", |batch| {
            batch.put(7u64, &user("Seven", 7, true))?;
            batch.table("counters").put("users", &7u64)?;
            panic!("{} went wrong", "formatting")
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Panicked { message, .. } if message == "formatting went wrong"),
        "{err}"
    );
    assert_eq!(snapshot(&storage), before);
}

#[test]
fn nested_writes_are_refused_not_deadlocked() {
    let storage = seeded();
    let err = storage
        .write(|_tx| storage.put("users", 5u64, &user("Nested", 5, true)))
        .unwrap_err();
    assert!(matches!(err, Error::NestedWrite), "{err}");
    // Reads inside a write are fine (they see the last commit).
    let n = storage
        .write(|_tx| storage.table::<u64, User>("users").len())
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn two_handles_on_one_table_share_it() {
    let storage = seeded();
    storage
        .write(|tx| {
            let mut first = tx.table::<u64, User>("users");
            first.put(3u64, &user("C", 3, true))?;
            let mut second = tx.table::<u64, User>("users");
            second.put(4u64, &user("D", 4, true))?;
            assert_eq!(first.len()?, 3, "each handle sees the other's writes");
            first.put(5u64, &user("E", 5, true))
        })
        .unwrap();
    assert_eq!(snapshot(&storage).0.len(), 4);
}

#[test]
fn writing_a_table_from_inside_its_own_read_is_a_typed_error() {
    let storage = seeded();
    let err = storage
        .write(|tx| {
            let reader = tx.table::<u64, User>("users");
            let mut writer = tx.table::<u64, User>("users");
            reader
                .get(1u64, |_| writer.put(9u64, &user("I", 9, true)))?
                .unwrap_or(Ok(()))
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::TableInUse { table } if table == "users"),
        "{err}"
    );
    assert_eq!(
        snapshot(&storage).0.len(),
        1,
        "the transaction was rolled back"
    );
}

#[test]
fn reads_inside_a_write_see_its_own_writes() {
    let storage = seeded();
    storage
        .write(|tx| {
            let mut users = tx.table::<u64, User>("users");
            users.put(2u64, &user("Bob", 20, true))?;
            assert_eq!(
                users.get(2u64, |u| u.name.to_string())?.as_deref(),
                Some("Bob")
            );
            assert_eq!(users.len()?, 2);
            let ids: Vec<u64> = users
                .iter()?
                .map(|e| e.map(|e| *e.key()))
                .collect::<Result<_, _>>()?;
            assert_eq!(ids, [1, 2]);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_read_transaction_is_a_snapshot() {
    let storage = seeded();
    storage
        .read(|tx| {
            // Committed after this snapshot began: not visible in it.
            storage.put("users", 2u64, &user("Later", 2, true))?;
            assert_eq!(tx.table::<u64, User>("users").len()?, 1);
            Ok(())
        })
        .unwrap();
    assert_eq!(storage.table::<u64, User>("users").len().unwrap(), 2);
}

#[test]
fn ranges_and_prefixes_iterate_in_key_order_both_ways() {
    let storage = Storage::in_memory().unwrap();
    storage
        .write(|tx| {
            let mut orders = tx.table::<(u64, u32), u64>("orders");
            for customer in [3u64, 1, 2] {
                for order in [20u32, 10, 30] {
                    orders.put((customer, order), &(customer * 100 + u64::from(order)))?;
                }
            }
            Ok(())
        })
        .unwrap();
    storage
        .read(|tx| {
            let orders = tx.table::<(u64, u32), u64>("orders");
            let keys =
                |range: storage::Range<'_, (u64, u32), u64>| -> storage::Result<Vec<(u64, u32)>> {
                    range.map(|e| e.map(storage::Entry::into_key)).collect()
                };
            assert_eq!(keys(orders.prefix((2u64,))?)?, [(2, 10), (2, 20), (2, 30)]);
            let backwards: Vec<(u64, u32)> =
                keys(orders.prefix((2u64,))?)?.into_iter().rev().collect();
            let rev: storage::Result<Vec<(u64, u32)>> = orders
                .prefix((2u64,))?
                .rev()
                .map(|e| e.map(storage::Entry::into_key))
                .collect();
            assert_eq!(rev?, backwards);
            assert_eq!(
                keys(orders.range((1, 20)..(2, 20))?)?,
                [(1, 20), (1, 30), (2, 10)]
            );
            assert_eq!(keys(orders.range((3, 20)..)?)?, [(3, 20), (3, 30)]);
            let last = orders
                .iter()?
                .next_back()
                .transpose()?
                .map(|e| (*e.key(), e.value().to_native()));
            assert_eq!(last, Some(((3, 30), 330)));
            // An empty or inverted range is empty, not an error.
            assert_eq!(keys(orders.range((2, 0)..(2, 0))?)?, []);
            assert_eq!(keys(orders.range((3, 0)..(1, 0))?)?, []);
            Ok(())
        })
        .unwrap();
}

#[test]
fn entries_stay_valid_after_the_iterator_moves_on() {
    // Entries hold their (possibly copied) value bytes; collecting many and
    // reading them afterwards must still see each entry's own value.
    let storage = Storage::in_memory().unwrap();
    let users = storage.table::<u32, User>("users");
    users
        .put_batch((0..500u32).map(|i| (i, user(&format!("name number {i}"), i, i % 3 == 0))))
        .unwrap();
    storage
        .read(|tx| {
            let table = tx.table::<u32, User>("users");
            let entries = table.iter()?.collect::<storage::Result<Vec<_>>>()?;
            for (i, entry) in entries.iter().enumerate() {
                assert_eq!(*entry.key(), i as u32);
                assert_eq!(entry.value().age.to_native(), i as u32);
                assert_eq!(entry.value().name.as_str(), format!("name number {i}"));
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn unchecked_reads_see_what_checked_reads_see() {
    let storage = Storage::in_memory().unwrap();
    let users = storage.table::<u32, User>("users");
    users
        .put_batch((0..100u32).map(|i| (i, user(&format!("user {i}"), i, i % 2 == 0))))
        .unwrap();
    storage
        .read(|tx| {
            let table = tx.table::<u32, User>("users");
            for i in 0..100u32 {
                let checked = table.get(i, |u| (u.name.to_string(), u.age.to_native()))?;
                // SAFETY: every value in this table was written just above
                // through storage as a `User`.
                let unchecked =
                    unsafe { table.get_unchecked(i, |u| (u.name.to_string(), u.age.to_native())) }?;
                assert_eq!(checked, unchecked);
                assert_eq!(checked, Some((format!("user {i}"), i)));
            }
            Ok(())
        })
        .unwrap();
}
