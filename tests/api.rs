//! The operations ported native_db scenarios needed: an insert that refuses
//! an existing key, upsert and take handing back the record, clearing and
//! draining, counting one index value, text-prefix queries on a string index,
//! and paged listings with a cursor. Each keeps the indexes exact (checked
//! with `verify`) and reaches subscribers of the change feed.

use storage::{ChangeKind, Cursor, Error, Notice, Storage, StoredRecord};

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
    pub age: u8,
}

fn person(id: u32, first: &str, age: u8) -> Person {
    Person {
        id,
        first_name: first.into(),
        email: format!("{}{id}@example.org", first.to_lowercase()),
        age,
    }
}

fn seeded() -> Storage {
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<Person>()
        .insert_batch([
            person(1, "Alice", 30),
            person(2, "Alan", 41),
            person(3, "Bob", 25),
            person(4, "Alice", 52),
        ])
        .unwrap();
    storage
}

fn clean(storage: &Storage) {
    let report = storage.verify::<Person>().unwrap();
    assert!(report.is_clean(), "{report}");
}

#[test]
fn insert_new_refuses_an_existing_key_and_changes_nothing() {
    // native_db: `rw.insert` of an existing primary key is `DuplicateKey`.
    let storage = seeded();
    let people = storage.records::<Person>();
    let err = people.insert_new(&person(1, "Zed", 9)).unwrap_err();
    assert!(
        matches!(&err, Error::KeyExists { table, key } if table == "people" && key == "1"),
        "{err}"
    );
    assert_eq!(
        people
            .get(1, |p| p.first_name().to_owned())
            .unwrap()
            .as_deref(),
        Some("Alice")
    );
    assert_eq!(
        people.by_first_name("Zed", |k, _| Some(*k)).unwrap(),
        Vec::<u32>::new()
    );
    people.insert_new(&person(9, "Zed", 9)).unwrap();
    // In a transaction, the failed one leaves the transaction as it was.
    storage
        .write(|tx| {
            let mut people = tx.records::<Person>();
            assert!(matches!(
                people.insert_new(&person(9, "Yan", 1)),
                Err(Error::KeyExists { .. })
            ));
            people.insert_new(&person(10, "Yan", 1))
        })
        .unwrap();
    assert_eq!(people.len().unwrap(), 6);
    clean(&storage);
}

#[test]
fn upsert_and_take_hand_back_the_record() {
    // native_db: `rw.upsert` returns the old item, `rw.remove` the removed one.
    let storage = seeded();
    let people = storage.records::<Person>();
    assert_eq!(people.upsert(&person(7, "Gus", 3)).unwrap(), None);
    let old = people.upsert(&person(7, "Gus", 4)).unwrap();
    assert_eq!(old, Some(person(7, "Gus", 3)));
    assert_eq!(people.take(7).unwrap(), Some(person(7, "Gus", 4)));
    assert_eq!(people.take(7).unwrap(), None);
    assert_eq!(
        people.by_email("gus7@example.org", |p| p.id()).unwrap(),
        None
    );
    // An upsert that would break the unique index changes nothing.
    let clash = Person {
        email: "bob3@example.org".into(),
        ..person(8, "Eve", 1)
    };
    assert!(matches!(
        people.upsert(&clash),
        Err(Error::UniqueViolation { .. })
    ));
    assert_eq!(people.get(8, |_| ()).unwrap(), None);
    clean(&storage);
}

#[test]
fn clear_and_drain_empty_the_table_and_its_indexes() {
    let storage = seeded();
    let people = storage.records::<Person>();
    let drained = people.drain().unwrap();
    assert_eq!(
        drained.iter().map(|p| p.id).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(people.is_empty().unwrap());
    assert_eq!(people.count_by_first_name("Alice").unwrap(), 0);
    people.insert(&person(1, "Alice", 30)).unwrap();
    assert_eq!(people.clear().unwrap(), 1);
    assert_eq!(
        people.by_email("alice1@example.org", |p| p.id()).unwrap(),
        None
    );
    // The table still belongs to the record type.
    assert!(matches!(
        storage.put("people", 5u32, &String::new()),
        Err(Error::TableOwned { .. })
    ));
    clean(&storage);
    // A clear inside a transaction that then fails takes nothing away.
    people
        .insert_batch([person(1, "Alice", 30), person(2, "Alan", 41)])
        .unwrap();
    let failed = storage.write(|tx| {
        tx.records::<Person>().clear()?;
        Err::<(), _>(Error::abort("changed my mind"))
    });
    assert!(failed.is_err());
    assert_eq!(people.len().unwrap(), 2);
    clean(&storage);
}

#[test]
fn counts_and_text_prefixes_on_indexes() {
    // native_db: `r.len().secondary(..)`-style counts and `start_with` on a
    // secondary String key.
    let storage = seeded();
    let people = storage.records::<Person>();
    assert_eq!(people.count_by_first_name("Alice").unwrap(), 2);
    assert_eq!(people.count_by_first_name("Nobody").unwrap(), 0);
    assert_eq!(people.count_by_email("bob3@example.org").unwrap(), 1);
    let al = people.by_first_name_prefix("Al", |k, _| Some(*k)).unwrap();
    assert_eq!(al, [2, 1, 4], "Alan, then both Alices in key order");
    assert_eq!(
        people
            .by_first_name_prefix("", |k, _| Some(*k))
            .unwrap()
            .len(),
        4
    );
    assert!(
        people
            .by_first_name_prefix("Zz", |k, _| Some(*k))
            .unwrap()
            .is_empty()
    );
    // Text with zero bytes and non-ASCII stays exact.
    people.insert(&person(20, "Al\0x", 1)).unwrap();
    people.insert(&person(21, "Älva", 1)).unwrap();
    assert_eq!(
        people
            .by_first_name_prefix("Al\0", |k, _| Some(*k))
            .unwrap(),
        [20]
    );
    assert_eq!(
        people.by_first_name_prefix("Ä", |k, _| Some(*k)).unwrap(),
        [21]
    );
    storage
        .read(|tx| {
            let people = tx.records::<Person>();
            assert_eq!(people.count_by_first_name("Alice")?, 2);
            assert_eq!(people.by_first_name_prefix("Bo", |k, _| Some(*k))?, [3]);
            Ok(())
        })
        .unwrap();
}

#[test]
fn pages_walk_the_table_with_a_cursor_as_text() {
    let storage = Storage::in_memory().unwrap();
    let people = storage.records::<Person>();
    people
        .insert_batch((0..25).map(|i| person(i, "P", 1)))
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let page = people.page(cursor.as_ref(), 10, |k, _| *k).unwrap();
        seen.extend(page.items);
        pages += 1;
        match page.next {
            // Through text, as a web client would send it back.
            Some(next) => cursor = Some(next.to_string().parse().unwrap()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
    // A range, and writes between pages.
    let first = people.page_range(5..15, None, 4, |k, _| *k).unwrap();
    assert_eq!(first.items, [5, 6, 7, 8]);
    people.delete(9).unwrap();
    let second = people
        .page_range(5..15, first.next.as_ref(), 4, |k, _| *k)
        .unwrap();
    assert_eq!(second.items, [10, 11, 12, 13]);
    let last = people
        .page_range(5..15, second.next.as_ref(), 4, |k, _| *k)
        .unwrap();
    assert_eq!((last.items, last.next), (vec![14], None));
    // A page exactly filling the rest has no next page.
    let exact = people.page_range(20..25, None, 5, |k, _| *k).unwrap();
    assert_eq!(exact.next, None);
    assert!(matches!(
        "xyz".parse::<Cursor>(),
        Err(Error::BadCursor { .. })
    ));
    // Signs are not hex digits.
    assert!(matches!(
        "+f+f".parse::<Cursor>(),
        Err(Error::BadCursor { .. })
    ));
    // A page of 0 is a page of 1: it says where the next one starts.
    let one = people.page(None, 0, |k, _| *k).unwrap();
    assert_eq!(one.items.len(), 1);
    assert!(one.next.is_some());
}

#[test]
fn the_table_handle_has_the_reads_of_the_transaction_handles() {
    let storage = seeded();
    let people = storage.records::<Person>();
    let total = people.fold(0u32, |n, _, p| n + u32::from(p.age())).unwrap();
    assert_eq!(total, 30 + 41 + 25 + 52);
    // SAFETY: every record of this table was written by this test with `Person`.
    let age = unsafe { people.get_unchecked(3, |p| p.age()) }.unwrap();
    assert_eq!(age, Some(25));
}

#[test]
fn the_new_writes_reach_the_change_feed() {
    let storage = seeded();
    let mut feed = storage.watch::<Person>();
    let people = storage.records::<Person>();
    people.upsert(&person(1, "Alice", 31)).unwrap();
    people.take(2).unwrap();
    people.clear().unwrap();
    let mut kinds = Vec::new();
    while let Some(notice) = feed.try_next() {
        let Notice::Commit(commit) = notice.unwrap() else {
            panic!("lagged")
        };
        kinds.push(
            commit
                .changes()
                .iter()
                .map(|c| (c.kind(), *c.key()))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        kinds,
        [
            vec![(ChangeKind::Update, 1)],
            vec![(ChangeKind::Delete, 2)],
            vec![
                (ChangeKind::Delete, 1),
                (ChangeKind::Delete, 3),
                (ChangeKind::Delete, 4)
            ],
        ]
    );
}

/// A key computed by a method (native_db's `primary_key(fn)`).
mod slugged {
    #[derive(
        Debug,
        Clone,
        PartialEq,
        storage::StoredRecord,
        rkyv::Archive,
        rkyv::Serialize,
        rkyv::Deserialize,
    )]
    #[stored(table = "pages", key(by = slug -> String))]
    pub struct Page {
        pub title: String,
        pub body: String,
    }

    impl Page {
        pub fn slug(&self) -> String {
            self.title.to_lowercase().replace(' ', "-")
        }
    }

    /// The same table with the key's type changed.
    pub mod numbered {
        #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
        #[stored(table = "pages", key(by = slug -> u64))]
        pub struct Page {
            pub title: String,
            pub body: String,
        }

        impl Page {
            pub fn slug(&self) -> u64 {
                self.title.len() as u64
            }
        }
    }
}

#[test]
fn a_key_computed_by_a_method_works_like_a_key_field() {
    use slugged::Page;
    let storage = Storage::in_memory().unwrap();
    let pages = storage.records::<Page>();
    let page = |title: &str| Page {
        title: title.into(),
        body: format!("about {title}"),
    };
    pages
        .insert_batch([page("Hello World"), page("Rust Tips")])
        .unwrap();
    assert_eq!(
        pages
            .get("hello-world", |p| p.body().to_owned())
            .unwrap()
            .as_deref(),
        Some("about Hello World")
    );
    assert!(matches!(
        pages.insert_new(&page("Hello World")),
        Err(Error::KeyExists { .. })
    ));
    assert_eq!(
        pages
            .prefix("rust", |k: &String, _| Some(k.clone()))
            .unwrap(),
        ["rust-tips"]
    );
    // `put` under a key that is not what the method computes is refused.
    assert!(matches!(
        pages.put("elsewhere", &page("Hello World")),
        Err(Error::KeyMismatch { .. })
    ));
    assert_eq!(
        pages.take("rust-tips").unwrap().map(|p| p.title).as_deref(),
        Some("Rust Tips")
    );
    // The key's type is part of the schema.
    let other = storage.records::<slugged::numbered::Page>().len();
    let message = match other {
        Err(e @ Error::SchemaMismatch { .. }) => e.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(message.contains("computed key"), "{message}");
}
