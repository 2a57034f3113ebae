//! The schema stored with a record table: the record's layout described down
//! to primitives, written on first use, compared on every open, and a changed
//! type refused — naming the first difference — without touching the data.

mod common;

use common::temp_storage;
use storage::{Error, Layout, SCHEMA_TABLE, Storage};

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
    /// `v1::Person` with only the version changed: a migration between the
    /// two may change what the values mean, so this is another schema too.
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "people", version = 2)]
    pub struct Person {
        #[key]
        pub id: u64,
        pub name: String,
    }
}

/// The parts of a schema mismatch: table, stored, expected, first difference.
fn mismatch(err: &Error) -> Option<(&str, &str, &str, &str)> {
    match err {
        Error::SchemaMismatch { table, details } => Some((
            table,
            &details.stored,
            &details.expected,
            &details.difference,
        )),
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
    let (table, stored, expected, difference) = mismatch(&read).expect("a schema mismatch");
    assert_eq!(table, "people");
    assert!(
        stored.contains("struct Person { id: u64, name: String }"),
        "{stored}"
    );
    assert!(
        expected.contains("struct Person { id: u64, name: String, age: u32 }"),
        "{expected}"
    );
    assert!(
        difference.contains("(id, name)") && difference.contains("(id, name, age)"),
        "{difference}"
    );
    let message = read.to_string();
    assert!(
        message.contains("table `people`") && message.contains("migrate"),
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
    let (_, _, _, difference) = mismatch(&bumped).expect("a mismatch");
    assert!(
        difference.contains("version: 1 stored, 2 here"),
        "{difference}"
    );

    // The old data is untouched and still reads with the old struct.
    let people = storage.records::<v1::Person>();
    assert_eq!(people.len().unwrap(), 2);
    assert_eq!(
        people.get(2, |p| p.name().to_owned()).unwrap().as_deref(),
        Some("Bob")
    );
}

/// Before and after each change of the table in the schema evolution issue:
/// in every pair the record's own fields read the same and the archived
/// sizes are equal, so only the structural layout tells them apart.
mod enum_before {
    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    pub enum Status {
        Active,
        Banned,
    }
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "accounts")]
    pub struct Account {
        #[key]
        pub id: u64,
        pub status: Status,
    }
}

mod enum_after {
    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    pub enum Status {
        Banned,
        Active,
    }
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "accounts")]
    pub struct Account {
        #[key]
        pub id: u64,
        pub status: Status,
    }
}

mod nested_before {
    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    pub struct Address {
        pub city: String,
        pub street: String,
    }
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "homes")]
    pub struct Home {
        #[key]
        pub id: u64,
        pub address: Address,
    }
}

mod nested_after {
    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    pub struct Address {
        pub street: String,
        pub city: String,
    }
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "homes")]
    pub struct Home {
        #[key]
        pub id: u64,
        pub address: Address,
    }
}

mod alias_before {
    pub type Money = i64;
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "wallets")]
    pub struct Wallet {
        #[key]
        pub id: u64,
        pub balance: Money,
    }
}

mod alias_after {
    pub type Money = i32;
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "wallets")]
    pub struct Wallet {
        #[key]
        pub id: u64,
        pub balance: Money,
    }
}

mod key_before {
    pub type Id = u64;
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "items")]
    pub struct Item {
        #[key]
        pub id: Id,
        pub label: String,
    }
}

mod key_after {
    pub type Id = u32;
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "items")]
    pub struct Item {
        #[key]
        pub id: Id,
        pub label: String,
    }
}

/// Writes a record with `before`, then asserts that `after` is refused with
/// `difference` and that `before` still reads it.
fn refused(
    write: impl FnOnce(&Storage),
    open_after: impl FnOnce(&Storage) -> storage::Result<u64>,
    read_before: impl FnOnce(&Storage) -> storage::Result<u64>,
    difference: &str,
) {
    let storage = Storage::in_memory().unwrap();
    write(&storage);
    let err = open_after(&storage).unwrap_err();
    let (_, stored, expected, found) =
        mismatch(&err).unwrap_or_else(|| panic!("not a mismatch: {err}"));
    assert!(
        found.contains(difference),
        "difference {found:?}, wanted {difference:?}"
    );
    assert_ne!(stored, expected);
    assert_eq!(read_before(&storage).unwrap(), 1, "the data is kept");
}

#[test]
fn reordered_enum_variants_are_refused() {
    refused(
        |s| {
            s.records::<enum_before::Account>()
                .insert(&enum_before::Account {
                    id: 1,
                    status: enum_before::Status::Banned,
                })
                .unwrap()
        },
        |s| s.records::<enum_after::Account>().len(),
        |s| s.records::<enum_before::Account>().len(),
        "at `status`: variant 0 is `Active` (tag 0) in the stored layout, `Banned` (tag 0) here",
    );
}

#[test]
fn swapped_fields_of_a_nested_struct_are_refused() {
    refused(
        |s| {
            s.records::<nested_before::Home>()
                .insert(&nested_before::Home {
                    id: 1,
                    address: nested_before::Address {
                        city: "Wellington".into(),
                        street: "Cuba St".into(),
                    },
                })
                .unwrap()
        },
        |s| s.records::<nested_after::Home>().len(),
        |s| s.records::<nested_before::Home>().len(),
        "at `address`: field 0 is `city` in the stored layout, `street` here",
    );
}

#[test]
fn a_type_alias_is_resolved_to_what_it_names() {
    refused(
        |s| {
            s.records::<alias_before::Wallet>()
                .insert(&alias_before::Wallet {
                    id: 1,
                    balance: 5_000_000_000,
                })
                .unwrap()
        },
        |s| s.records::<alias_after::Wallet>().len(),
        |s| s.records::<alias_before::Wallet>().len(),
        "at `balance`: `i64` stored, `i32` here",
    );
}

#[test]
fn a_key_alias_is_resolved_too() {
    refused(
        |s| {
            s.records::<key_before::Item>()
                .insert(&key_before::Item {
                    id: 5,
                    label: "five".into(),
                })
                .unwrap()
        },
        |s| s.records::<key_after::Item>().len(),
        |s| s.records::<key_before::Item>().len(),
        "at `id`: `u64` stored, `u32` here",
    );
}

#[test]
fn the_stored_schema_is_machine_readable_json() {
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<nested_before::Home>()
        .insert(&nested_before::Home {
            id: 1,
            address: nested_before::Address {
                city: "a".into(),
                street: "b".into(),
            },
        })
        .unwrap();
    let row = storage
        .backend()
        .get(SCHEMA_TABLE, b"homes", |bytes| bytes.to_vec())
        .unwrap()
        .expect("a row");
    let row: serde_json::Value = serde_json::from_slice(&row).expect("JSON");
    assert_eq!(row["format"], 1);
    assert_eq!(row["version"], 1);
    assert_eq!(row["key"], serde_json::json!(["id"]));
    assert!(
        row["record"]
            .as_str()
            .unwrap()
            .ends_with("nested_before::Home")
    );
    let layout: Layout = serde_json::from_value(row["layout"].clone()).expect("a layout");
    assert_eq!(
        layout,
        storage::layout::Describer::layout_of::<nested_before::Home>()
    );
    let address = &row["layout"]["fields"][1];
    assert_eq!(address["name"], "address");
    assert_eq!(address["type"], "struct");
    assert_eq!(
        address["fields"][0],
        serde_json::json!({"name": "city", "type": "string"})
    );
    assert_eq!(
        layout.to_string(),
        "struct Home { id: u64, address: struct Address { city: String, street: String } }"
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
    let row = stored(&storage).expect("the first layout to commit claims the table");
    assert!(row.contains("v1::Person"), "{row}");
    assert!(mismatch(&storage.records::<v2::Person>().len().unwrap_err()).is_some());
}

#[test]
fn files_of_the_previous_release_give_a_typed_error_naming_their_format() {
    // storage 0.1 stored the schema as text.
    let storage = Storage::in_memory().unwrap();
    common::tamper(&storage, SCHEMA_TABLE, |t| {
        t.insert(
            &b"people"[..],
            &b"people v1 key(id) fields(id: u64, name: String) archived(40, 8) format(le, usize32)"
                [..],
        )
        .unwrap();
    });
    let fresh = storage
        .read(|tx| tx.records::<v1::Person>().len())
        .unwrap_err();
    assert!(
        matches!(&fresh, Error::UnsupportedFormat { table, found } if table == "people" && found.contains("0.1")),
        "{fresh}"
    );
}

mod with_before {
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "prices")]
    pub struct Price {
        #[key]
        pub id: u64,
        #[rkyv(with = rkyv::with::AsBox)]
        pub amount: u64,
        #[rkyv(with = rkyv::with::AsBox)]
        pub tags: Vec<u32>,
    }
}

mod with_after {
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "prices")]
    pub struct Price {
        #[key]
        pub id: u64,
        #[rkyv(with = rkyv::with::AsBox)]
        pub amount: u64,
        #[rkyv(with = rkyv::with::AsBox)]
        pub tags: Vec<i32>,
    }
}

#[test]
fn a_type_changed_under_a_with_wrapper_is_refused() {
    //! A field archived `with` a wrapper was described by the wrapper and
    //! its size alone: `Vec<u32>` became `Vec<i32>` unnoticed, by the schema
    //! check and the schema lock, and `u32::MAX` read back as `-1`.
    refused(
        |s| {
            s.records::<with_before::Price>()
                .insert(&with_before::Price {
                    id: 1,
                    amount: 5,
                    tags: vec![u32::MAX],
                })
                .unwrap()
        },
        |s| s.records::<with_after::Price>().len(),
        |s| s.records::<with_before::Price>().len(),
        "at `tags.[]`: `u32` stored, `i32` here",
    );
}

macro_rules! recursive {
    ($module:ident, $target:ident) => {
        pub mod $module {
            pub mod a {
                #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
                #[rkyv(serialize_bounds(__S: rkyv::ser::Writer + rkyv::ser::Allocator, __S::Error: rkyv::rancor::Source))]
                #[rkyv(deserialize_bounds(__D::Error: rkyv::rancor::Source))]
                #[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
                pub struct N {
                    pub f: super::b::N,
                    pub x: u64,
                }
            }
            pub mod b {
                #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
                #[rkyv(serialize_bounds(__S: rkyv::ser::Writer + rkyv::ser::Allocator, __S::Error: rkyv::rancor::Source))]
                #[rkyv(deserialize_bounds(__D::Error: rkyv::rancor::Source))]
                #[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
                pub struct N {
                    #[rkyv(omit_bounds)]
                    pub g: Option<Box<super::$target::N>>,
                }
            }
            #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
            #[stored(table = "trees")]
            pub struct Tree {
                #[key]
                pub id: u64,
                pub n: a::N,
            }
        }
    };
}

// `b::N` points back at `a::N`, then at itself: two types of one name.
recursive!(back_to_a, a);
recursive!(back_to_b, b);

#[test]
fn recursive_layouts_pointing_at_different_types_of_one_name_differ() {
    //! A back-reference in a recursive layout named its type by its short
    //! name only: pointing at `a::N` or at `b::N` was the same description,
    //! and a nested value was lost silently.
    refused(
        |s| {
            let leaf = back_to_a::a::N {
                f: back_to_a::b::N { g: None },
                x: 99,
            };
            s.records::<back_to_a::Tree>()
                .insert(&back_to_a::Tree {
                    id: 1,
                    n: back_to_a::a::N {
                        f: back_to_a::b::N {
                            g: Some(Box::new(leaf)),
                        },
                        x: 1,
                    },
                })
                .unwrap()
        },
        |s| s.records::<back_to_b::Tree>().len(),
        |s| s.records::<back_to_a::Tree>().len(),
        "a reference to the `N` 2 level(s) up stored, 1 level(s) up here",
    );
}
