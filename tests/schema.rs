//! The schema stored with a record table: written on first use, compared on
//! every open, and a changed struct refused without touching the data.

mod common;

use common::temp_storage;
use storage::{Error, SCHEMA_TABLE, Storage, StoredRecord};

mod v1 {
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "people")]
    pub struct Person {
        #[key]
        pub id: u64,
        pub name: String,
    }
}

mod v2 {
    /// `v1::Person` with a field added: a different archive layout.
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "people")]
    pub struct Person {
        #[key]
        pub id: u64,
        pub name: String,
        pub age: u32,
    }
}

mod v1_bumped {
    /// `v1::Person` with only the version changed.
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "people", version = 2)]
    pub struct Person {
        #[key]
        pub id: u64,
        pub name: String,
    }
}

fn mismatch(err: &Error) -> Option<(&str, &str, &str)> {
    match err {
        Error::SchemaMismatch {
            table,
            stored,
            expected,
        } => Some((table, stored, expected)),
        _ => None,
    }
}

#[test]
fn a_changed_struct_is_refused_and_the_data_kept() {
    let (_dir, path, storage) = temp_storage();
    let people = storage.records::<v1::Person>();
    people
        .insert(&v1::Person {
            id: 1,
            name: "Ann".into(),
        })
        .unwrap();
    people
        .insert(&v1::Person {
            id: 2,
            name: "Bob".into(),
        })
        .unwrap();
    drop((people, storage));

    let storage = Storage::new(&path).unwrap();
    let people = storage.records::<v2::Person>();
    let read = people.get(1, |p| p.age()).unwrap_err();
    let (table, stored, expected) = mismatch(&read).expect("a schema mismatch");
    assert_eq!(table, "people");
    // Each side: the description, then the archived size and alignment and rkyv's format.
    assert!(
        stored.starts_with(v1::Person::SCHEMA.description),
        "{stored}"
    );
    assert!(
        expected.starts_with(v2::Person::SCHEMA.description),
        "{expected}"
    );
    assert!(
        stored.contains(" archived(") && stored.contains(" format("),
        "{stored}"
    );
    let message = read.to_string();
    assert!(
        message.contains("table `people`") && message.contains("age: u32"),
        "{message}"
    );

    // Writing is refused too, and inside a transaction nothing else commits.
    let write = people
        .insert(&v2::Person {
            id: 3,
            name: "Cid".into(),
            age: 9,
        })
        .unwrap_err();
    assert!(mismatch(&write).is_some(), "{write}");
    let in_tx = storage
        .write(|tx| {
            tx.table::<&str, u64>("log").put("attempt", &1)?;
            tx.records::<v2::Person>().insert(&v2::Person {
                id: 4,
                name: "Dee".into(),
                age: 1,
            })
        })
        .unwrap_err();
    assert!(mismatch(&in_tx).is_some(), "{in_tx}");
    assert!(storage.table::<&str, u64>("log").is_empty().unwrap());

    // A version bump alone is a different schema as well.
    let bumped = storage.records::<v1_bumped::Person>().len().unwrap_err();
    assert!(mismatch(&bumped).is_some(), "{bumped}");

    // The old data is untouched and still reads with the old struct.
    let people = storage.records::<v1::Person>();
    assert_eq!(people.len().unwrap(), 2);
    assert_eq!(
        people.get(2, |p| p.name().to_owned()).unwrap().as_deref(),
        Some("Bob")
    );
}

#[test]
fn the_schema_is_stored_on_first_write_only() {
    let storage = Storage::in_memory().unwrap();
    // Reading a record table that was never written needs no schema.
    assert!(storage.records::<v2::Person>().is_empty().unwrap());
    let stored = |storage: &Storage| {
        storage
            .backend()
            .get(SCHEMA_TABLE, b"people", |bytes| {
                String::from_utf8(bytes.to_vec()).unwrap()
            })
            .unwrap()
    };
    assert_eq!(stored(&storage), None);

    // A failed first write stores nothing either.
    let _ = storage.write(|tx| {
        tx.records::<v2::Person>().insert(&v2::Person {
            id: 1,
            name: "A".into(),
            age: 1,
        })?;
        Err::<(), _>(Error::abort("rolled back"))
    });
    assert_eq!(stored(&storage), None);
    // So another layout may still claim the table.
    storage
        .records::<v1::Person>()
        .insert(&v1::Person {
            id: 1,
            name: "A".into(),
        })
        .unwrap();
    assert!(
        stored(&storage).is_some_and(|s| s.contains(v1::Person::SCHEMA.description)),
        "the first layout to commit claims the table"
    );
    assert!(mismatch(&storage.records::<v2::Person>().len().unwrap_err()).is_some());
}
