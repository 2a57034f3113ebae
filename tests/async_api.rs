//! `AsyncStorage`: the scenarios of `tests/api.rs` and the basic reads and
//! writes, awaited on a multi-threaded tokio runtime; and the handle is
//! `Clone + Send + Sync + 'static`, for an axum state.

use futures_util::StreamExt as _;
use storage::{AsyncStorage, ChangeKind, Error, Notice, Storage, StoredRecord};

#[derive(
    Debug, Clone, PartialEq, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[stored(table = "people")]
pub struct Person {
    #[key]
    pub id: u32,
    #[index]
    pub first_name: String,
    #[index(unique)]
    pub email: String,
}

fn person(id: u32, first: &str) -> Person {
    Person {
        id,
        first_name: first.into(),
        email: format!("{}{id}@example.org", first.to_lowercase()),
    }
}

fn assert_state<T: Clone + Send + Sync + 'static>() {}

#[test]
fn the_handle_fits_in_an_axum_state() {
    assert_state::<AsyncStorage>();
    assert_state::<storage::AsyncTable<Person>>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_round_trip_and_refuse_what_the_blocking_api_refuses() {
    let storage = AsyncStorage::new(Storage::in_memory().unwrap());
    let people = storage.records::<Person>();
    people.insert(person(1, "Alice")).await.unwrap();
    people
        .insert_batch(vec![person(2, "Alan"), person(3, "Bob")])
        .await
        .unwrap();
    assert_eq!(people.len().await.unwrap(), 3);
    let name = people.get(1, |p| p.first_name().to_owned()).await.unwrap();
    assert_eq!(name.as_deref(), Some("Alice"));
    assert_eq!(people.get_owned(3).await.unwrap(), Some(person(3, "Bob")));
    let exists = people.insert_new(person(1, "Zed")).await;
    assert!(matches!(exists, Err(Error::KeyExists { .. })), "{exists:?}");
    let clash = people
        .insert(Person {
            email: "bob3@example.org".into(),
            ..person(9, "Eve")
        })
        .await;
    assert!(
        matches!(clash, Err(Error::UniqueViolation { .. })),
        "{clash:?}"
    );
    assert_eq!(
        people.upsert(person(1, "Ann")).await.unwrap(),
        Some(person(1, "Alice"))
    );
    assert_eq!(people.take(2).await.unwrap(), Some(person(2, "Alan")));
    assert!(!people.delete(2).await.unwrap());
    let al = people
        .with(|t| {
            use PersonIndexes as _;
            t.by_first_name_prefix("A", |k, _| Some(*k))
        })
        .await
        .unwrap();
    assert_eq!(al, [1]);
    let page = people.page(None, 1, |k, _| *k).await.unwrap();
    assert_eq!(page.items, [1]);
    let rest = people.page(page.next, 10, |k, _| *k).await.unwrap();
    assert_eq!((rest.items, rest.next), (vec![3], None));
    assert_eq!(people.clear().await.unwrap(), 2);
    assert!(people.is_empty().await.unwrap());
    let report = storage.blocking().verify::<Person>().unwrap();
    assert!(report.is_clean(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_run_on_the_blocking_pool_and_roll_back_the_same() {
    let storage = AsyncStorage::new(Storage::in_memory().unwrap());
    let failed = storage
        .write(|tx| {
            tx.records::<Person>().insert(&person(1, "Alice"))?;
            Err::<(), _>(Error::abort("no"))
        })
        .await;
    assert!(matches!(failed, Err(Error::Aborted(_))));
    let panicked = storage
        .write(|tx| -> storage::Result<()> {
            tx.records::<Person>().insert(&person(1, "Alice"))?;
            panic!("inside the closure")
        })
        .await;
    assert!(
        matches!(panicked, Err(Error::Panicked { .. })),
        "{panicked:?}"
    );
    let read_panic = storage
        .read(|_| -> storage::Result<()> { panic!("in a read") })
        .await;
    assert!(
        matches!(read_panic, Err(Error::Panicked { .. })),
        "{read_panic:?}"
    );
    // A read that panicked says so, not that a write was rolled back.
    let message = read_panic.unwrap_err().to_string();
    assert!(
        message.contains("a closure panicked") && !message.contains("write"),
        "{message}"
    );
    let count = storage
        .read(|tx| tx.records::<Person>().len())
        .await
        .unwrap();
    assert_eq!(count, 0);
    // Many tasks at once, one writer at a time underneath.
    let tasks: Vec<_> = (0..32u32)
        .map(|i| {
            let people = storage.records::<Person>();
            tokio::spawn(async move { people.insert(person(i, "Many")).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(storage.records::<Person>().len().await.unwrap(), 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_feed_is_a_stream() {
    let storage = AsyncStorage::new(Storage::in_memory().unwrap());
    let stream = storage.watch::<Person>();
    let people = storage.records::<Person>();
    people.insert(person(1, "Alice")).await.unwrap();
    people.delete(1).await.unwrap();
    let kinds: Vec<ChangeKind> = stream
        .take(2)
        .map(|notice| match notice.unwrap() {
            Notice::Commit(commit) => commit.changes()[0].kind(),
            Notice::Lagged { .. } => panic!("lagged"),
        })
        .collect()
        .await;
    assert_eq!(kinds, [ChangeKind::Insert, ChangeKind::Delete]);
}
