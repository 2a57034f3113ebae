//! Secondary indexes: kept in step with their table on insert, replace,
//! delete and batch insert, unique clashes refused without a trace, and
//! typed queries through the generated `{Record}Indexes` trait.

mod common;

use std::ops::Bound;

use common::tamper;
use storage::{Error, Storage, StoredRecord};

#[derive(
    Debug, Clone, PartialEq, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[stored(table = "users", index(name = "place", fields(country, signup_day)))]
struct User {
    #[key]
    id: u64,
    #[index(unique)]
    email: String,
    #[index]
    country: String,
    #[index]
    signup_day: u32,
    #[index]
    nickname: Option<String>,
    name: String,
}

fn user(id: u64, email: &str, country: &str, signup_day: u32, nickname: Option<&str>) -> User {
    User {
        id,
        email: email.into(),
        country: country.into(),
        signup_day,
        nickname: nickname.map(Into::into),
        name: format!("user {id}"),
    }
}

fn ids(_: &UserKey, u: &ArchivedUser) -> Option<u64> {
    Some(u.id())
}

fn seeded() -> Storage {
    let storage = Storage::in_memory().unwrap();
    storage
        .records::<User>()
        .insert_batch([
            user(1, "a@x.org", "NZ", 150, Some("ace")),
            user(2, "b@x.org", "FR", 100, None),
            user(3, "c@x.org", "NZ", 120, Some("cat")),
            user(4, "d@x.org", "NZ", 150, None),
            user(5, "e@x.org", "DE", 300, Some("eel")),
        ])
        .unwrap();
    storage
}

#[test]
fn the_schema_lists_the_indexes() {
    let names: Vec<&str> = User::SCHEMA.indexes.iter().map(|i| i.name).collect();
    assert_eq!(
        names,
        ["email", "country", "signup_day", "nickname", "place"]
    );
    assert!(User::SCHEMA.indexes[0].unique);
    assert_eq!(User::SCHEMA.indexes[4].fields, ["country", "signup_day"]);
    assert!(!User::SCHEMA.indexes[4].unique);
}

#[test]
fn lookups_by_unique_and_non_unique_indexes() -> storage::Result<()> {
    let storage = seeded();
    let users = storage.records::<User>();
    assert_eq!(users.by_email("c@x.org", |u| u.id())?, Some(3));
    assert_eq!(users.by_email("nobody@x.org", |u| u.id())?, None);
    // Equal values come back in key order.
    assert_eq!(users.by_country("NZ", ids)?, [1, 3, 4]);
    assert_eq!(users.by_country(String::from("NZ"), ids)?, [1, 3, 4]);
    assert_eq!(users.by_country("US", ids)?, Vec::<u64>::new());
    // Ranges run in value order, then key order.
    assert_eq!(users.by_signup_day_range(100..=150, ids)?, [2, 3, 1, 4]);
    assert_eq!(users.by_signup_day_range(121.., ids)?, [1, 4, 5]);
    assert_eq!(users.by_country_range("E".."O", ids)?, [2, 1, 3, 4]);
    assert_eq!(users.by_country_range("G".., ids)?, [1, 3, 4]);
    // Only `Some` values of an optional field are indexed.
    assert_eq!(users.by_nickname_range::<&str, _>(.., ids)?, [1, 3, 5]);
    assert_eq!(users.by_nickname("cat", ids)?, [3]);
    // A composite index: whole values and leading parts.
    assert_eq!(users.by_place(("NZ", 150), ids)?, [1, 4]);
    assert_eq!(users.by_place_prefix(("NZ",), ids)?, [3, 1, 4]);
    assert_eq!(users.by_place_range(("NZ", 0)..("NZ", 150), ids)?, [3]);
    Ok(())
}

#[test]
fn queries_work_inside_transactions_and_see_their_writes() -> storage::Result<()> {
    let storage = seeded();
    storage.write(|tx| {
        let mut users = tx.records::<User>();
        users.insert(&user(6, "f@x.org", "NZ", 10, None))?;
        assert_eq!(users.by_country("NZ", ids)?, [1, 3, 4, 6]);
        assert_eq!(users.by_email("f@x.org", |u| u.id())?, Some(6));
        Ok(())
    })?;
    storage.read(|tx| {
        let users = tx.records::<User>();
        assert_eq!(users.by_signup_day(10, ids)?, [6]);
        Ok(())
    })
}

#[test]
fn replacing_and_deleting_keep_indexes_exact() -> storage::Result<()> {
    let storage = seeded();
    let users = storage.records::<User>();
    // Replace: new country and email, nickname removed.
    users.insert(&user(1, "a2@x.org", "FR", 150, None))?;
    assert_eq!(users.by_email("a@x.org", |u| u.id())?, None);
    assert_eq!(users.by_email("a2@x.org", |u| u.id())?, Some(1));
    assert_eq!(users.by_country("NZ", ids)?, [3, 4]);
    assert_eq!(users.by_country("FR", ids)?, [1, 2]);
    assert_eq!(users.by_nickname("ace", ids)?, Vec::<u64>::new());
    assert_eq!(users.by_place(("FR", 150), ids)?, [1]);

    // Replacing a record with itself, or keeping its own unique value, is no clash.
    users.insert(&user(1, "a2@x.org", "FR", 150, None))?;
    users.insert(&user(1, "a2@x.org", "DE", 151, Some("new")))?;
    assert_eq!(
        users
            .by_email("a2@x.org", |u| u.country().to_owned())?
            .as_deref(),
        Some("DE")
    );

    assert!(users.delete(3)?);
    assert_eq!(users.by_country("NZ", ids)?, [4]);
    assert_eq!(users.by_email("c@x.org", |u| u.id())?, None);
    assert_eq!(users.by_nickname("cat", ids)?, Vec::<u64>::new());
    assert!(!users.delete(3)?);
    Ok(())
}

#[test]
fn a_unique_clash_is_refused_and_the_transaction_writes_nothing() -> storage::Result<()> {
    let storage = seeded();
    let before = storage
        .records::<User>()
        .scan(|k, u| Some((*k, u.email().to_owned())))?;
    let err = storage
        .write(|tx| {
            let mut users = tx.records::<User>();
            users.insert(&user(10, "new@x.org", "US", 1, None))?;
            users.insert(&user(11, "b@x.org", "US", 1, None))
        })
        .unwrap_err();
    match &err {
        Error::UniqueViolation {
            table,
            index,
            value,
            existing,
        } => {
            assert_eq!((table.as_str(), index.as_str()), ("users", "email"));
            assert_eq!((value.as_str(), existing.as_str()), ("\"b@x.org\"", "2"));
            assert_eq!(
                err.to_string(),
                "table `users`: unique index `email` already holds \"b@x.org\" (the record with key 2); nothing was written"
            );
        }
        other => panic!("expected a unique violation, got {other:?}"),
    }
    let users = storage.records::<User>();
    assert_eq!(users.scan(|k, u| Some((*k, u.email().to_owned())))?, before);
    assert_eq!(users.by_country("US", ids)?, Vec::<u64>::new());
    assert_eq!(users.by_email("new@x.org", |u| u.id())?, None);

    // Changing one's own email onto another's clashes too, and changes nothing
    // even when the error is caught inside the transaction and it commits.
    storage.write(|tx| {
        let mut users = tx.records::<User>();
        let clash = users.insert(&user(1, "b@x.org", "US", 1, None));
        assert!(matches!(clash, Err(Error::UniqueViolation { .. })));
        Ok(())
    })?;
    assert_eq!(users.by_email("a@x.org", |u| u.id())?, Some(1));
    assert_eq!(users.by_country("US", ids)?, Vec::<u64>::new());
    assert_eq!(
        users.get(1, |u| u.country().to_owned())?.as_deref(),
        Some("NZ")
    );
    Ok(())
}

#[test]
fn a_clash_inside_one_batch_rolls_the_batch_back() {
    let storage = Storage::in_memory().unwrap();
    let err = storage
        .records::<User>()
        .insert_batch([
            user(1, "same@x.org", "NZ", 1, None),
            user(2, "same@x.org", "NZ", 1, None),
        ])
        .unwrap_err();
    assert!(matches!(err.root(), Error::UniqueViolation { .. }), "{err}");
    assert!(matches!(err, Error::Batch { item: 2, .. }), "{err}");
    assert!(storage.records::<User>().is_empty().unwrap());
    assert_eq!(
        storage.records::<User>().by_country("NZ", ids).unwrap(),
        Vec::<u64>::new()
    );
}

mod before {
    /// `User` as it was before its indexes were added.
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "users")]
    pub struct User {
        #[key]
        pub id: u64,
        pub email: String,
        pub country: String,
        pub signup_day: u32,
        pub nickname: Option<String>,
        pub name: String,
    }

    pub fn user(id: u64, country: &str) -> User {
        User {
            id,
            email: format!("{id}@x.org"),
            country: country.into(),
            signup_day: id as u32,
            nickname: None,
            name: String::new(),
        }
    }
}

#[test]
fn indexes_added_to_a_populated_table_are_built_on_first_open() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    let old = storage.records::<before::User>();
    for (id, country) in [(1, "NZ"), (2, "FR"), (3, "NZ")] {
        old.insert(&before::user(id, country))?;
    }
    // A read transaction cannot build them: index queries say so.
    let err = storage
        .read(|tx| tx.records::<User>().by_country("NZ", ids))
        .unwrap_err();
    assert!(
        matches!(&err, Error::IndexNotBuilt { index, .. } if index == "country"),
        "{err}"
    );
    // Plain reads work meanwhile.
    assert_eq!(storage.read(|tx| tx.records::<User>().len())?, 3);
    // The storage-level handle builds them on first use.
    assert_eq!(storage.records::<User>().by_country("NZ", ids)?, [1, 3]);
    assert_eq!(
        storage.records::<User>().by_email("2@x.org", |u| u.id())?,
        Some(2)
    );
    // And the old layout's description is replaced: the old type now sees other indexes.
    let back = storage
        .records::<before::User>()
        .insert(&before::user(4, "NZ"));
    assert!(
        back.is_ok(),
        "the layout is the same; only indexes differ: {back:?}"
    );
    // ... which drops the new type's indexes again; the new type rebuilds them.
    assert_eq!(storage.records::<User>().by_country("NZ", ids)?, [1, 3, 4]);
    Ok(())
}

#[test]
fn rebuild_indexes_repairs_a_damaged_index() -> storage::Result<()> {
    let storage = seeded();
    // Damage the index behind storage's back.
    let mut entry = storage::KeyBuf::new();
    storage::IntoKeyBytes::write_key_part(&"NZ", &mut entry);
    entry.extend_from_slice(&3u64.to_be_bytes());
    tamper(&storage, "__index:users:country", |t| {
        assert!(t.remove(entry.as_slice()).unwrap().is_some());
    });
    assert_eq!(storage.records::<User>().by_country("NZ", ids)?, [1, 4]);
    storage.rebuild_indexes::<User>()?;
    assert_eq!(storage.records::<User>().by_country("NZ", ids)?, [1, 3, 4]);
    Ok(())
}

mod unique_later {
    /// `before::User` with a unique index on `country` added: the stored
    /// records have duplicate countries, so the index cannot be built.
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "users")]
    pub struct User {
        #[key]
        pub id: u64,
        pub email: String,
        #[index(unique)]
        pub country: String,
        pub signup_day: u32,
        pub nickname: Option<String>,
        pub name: String,
    }
}

fn populate_before(storage: &Storage) {
    for (id, country) in [(1, "NZ"), (2, "FR"), (3, "NZ")] {
        storage
            .records::<before::User>()
            .insert(&before::user(id, country))
            .unwrap();
    }
}

#[test]
fn a_unique_index_over_duplicates_leaves_the_table_usable_and_says_why() {
    //! A unique index added over duplicate data locked the type out: every
    //! call, the delete that would repair the data included, failed with a
    //! message showing hex bytes.
    use unique_later::UserIndexes as _;
    let storage = Storage::in_memory().unwrap();
    populate_before(&storage);
    let users = storage.records::<unique_later::User>();
    // Everything but the index works: counts, reads, unrelated writes.
    assert_eq!(users.len().unwrap(), 3);
    users
        .insert(&unique_later::User {
            id: 4,
            email: "4@x.org".into(),
            country: "DE".into(),
            signup_day: 4,
            nickname: None,
            name: String::new(),
        })
        .unwrap();
    // The query says which records clash, by key and value.
    let err = users.by_country("NZ", |u| u.id()).unwrap_err();
    match &err {
        Error::UniqueIndexConflict {
            table,
            index,
            value,
            keys,
        } => {
            assert_eq!((table.as_str(), index.as_str()), ("users", "country"));
            assert_eq!(value, "\"NZ\"");
            assert_eq!(keys[..], ["1", "3"]);
        }
        other => panic!("expected UniqueIndexConflict, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("records with keys 1 and 3 both hold \"NZ\""),
        "{err}"
    );
    assert!(matches!(
        storage.rebuild_indexes::<unique_later::User>(),
        Err(Error::UniqueIndexConflict { .. })
    ));
    // Deleting one of the two repairs the data, and the index is built.
    assert!(users.delete(3).unwrap());
    assert_eq!(users.by_country("NZ", |u| u.id()).unwrap(), Some(1));
    assert_eq!(users.by_country("DE", |u| u.id()).unwrap(), Some(4));
    let clash = users.insert(&unique_later::User {
        id: 5,
        email: "5@x.org".into(),
        country: "NZ".into(),
        signup_day: 5,
        nickname: None,
        name: String::new(),
    });
    assert!(
        matches!(clash, Err(Error::UniqueViolation { .. })),
        "{clash:?}"
    );
}

#[test]
fn a_damaged_record_can_be_deleted_with_its_index_entries() {
    let storage = seeded();
    // Damage record 3 behind storage's back.
    tamper(&storage, "users", |t| {
        t.insert(&3u64.to_be_bytes()[..], &b"garbage"[..]).unwrap();
    });
    let users = storage.records::<User>();
    assert!(matches!(
        users.get(3, |u| u.id()),
        Err(Error::Corrupt { .. })
    ));
    // Its index entries can no longer be computed from it; they go anyway.
    assert!(users.delete(3).unwrap());
    assert_eq!(users.by_country("NZ", ids).unwrap(), [1, 4]);
    assert_eq!(users.by_email("c@x.org", |u| u.id()).unwrap(), None);
    assert_eq!(users.by_nickname("cat", ids).unwrap(), Vec::<u64>::new());
    // Overwriting a damaged record works the same way.
    tamper(&storage, "users", |t| {
        t.insert(&4u64.to_be_bytes()[..], &b"garbage"[..]).unwrap();
    });
    users.insert(&user(4, "d2@x.org", "FR", 1, None)).unwrap();
    assert_eq!(users.by_country("NZ", ids).unwrap(), [1]);
    assert_eq!(users.by_email("d@x.org", |u| u.id()).unwrap(), None);
    assert_eq!(users.by_email("d2@x.org", |u| u.id()).unwrap(), Some(4));
}

#[test]
fn an_old_snapshot_does_not_bring_back_a_replaced_schema() {
    //! A read transaction on a snapshot older than a schema change trusted
    //! the replaced schema again, so later writes skipped index upkeep.
    let storage = seeded();
    assert_eq!(
        storage.records::<User>().by_country("NZ", ids).unwrap(),
        [1, 3, 4]
    );
    storage
        .read(|old| {
            // Meanwhile the layout without indexes takes the table over.
            storage
                .records::<before::User>()
                .insert(&before::user(9, "NZ"))?;
            // The old snapshot still shows the indexed schema as current.
            assert_eq!(old.records::<User>().by_country("NZ", ids)?, [1, 3, 4]);
            Ok(())
        })
        .unwrap();
    // The indexed type must notice the change and rebuild.
    assert_eq!(
        storage.records::<User>().by_country("NZ", ids).unwrap(),
        [1, 3, 4, 9]
    );
}

#[test]
fn an_exclusive_start_at_the_largest_value_is_empty() {
    let storage = seeded();
    storage
        .records::<User>()
        .insert(&user(7, "g@x.org", "NZ", u32::MAX, None))
        .unwrap();
    let users = storage.records::<User>();
    let after_max = users
        .by_signup_day_range((Bound::Excluded(u32::MAX), Bound::Unbounded), ids)
        .unwrap();
    assert_eq!(after_max, Vec::<u64>::new());
    assert_eq!(users.by_signup_day_range(u32::MAX.., ids).unwrap(), [7]);
}

/// A fan-out index (`#[index(each)]`) and indexes computed by methods.
mod computed {
    #[derive(
        Debug,
        Clone,
        PartialEq,
        storage::StoredRecord,
        rkyv::Archive,
        rkyv::Serialize,
        rkyv::Deserialize,
    )]
    #[stored(table = "posts", index(by = domain -> String), index(by = length -> u32, name = "size"))]
    pub struct Post {
        #[key]
        pub id: u64,
        pub author: String,
        pub body: String,
        #[index(each)]
        pub tags: Vec<String>,
    }

    impl Post {
        /// The author's mail domain.
        pub fn domain(&self) -> String {
            self.author
                .rsplit('@')
                .next()
                .unwrap_or_default()
                .to_owned()
        }

        pub fn length(&self) -> u32 {
            self.body.len() as u32
        }
    }

    /// The same table and layout, with `size` computed differently: what
    /// an application changing a method's body without renaming its index
    /// does.
    pub mod changed {
        #[derive(
            Debug,
            Clone,
            PartialEq,
            storage::StoredRecord,
            rkyv::Archive,
            rkyv::Serialize,
            rkyv::Deserialize,
        )]
        #[stored(table = "posts", index(by = domain -> String), index(by = length -> u32, name = "size"))]
        pub struct Post {
            #[key]
            pub id: u64,
            pub author: String,
            pub body: String,
            #[index(each)]
            pub tags: Vec<String>,
        }

        impl Post {
            pub fn domain(&self) -> String {
                self.author
                    .rsplit('@')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            }

            pub fn length(&self) -> u32 {
                self.body.chars().count() as u32 * 2
            }
        }
    }
}

fn post(id: u64, author: &str, body: &str, tags: &[&str]) -> computed::Post {
    computed::Post {
        id,
        author: author.into(),
        body: body.into(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
    }
}

#[test]
fn an_each_index_has_one_entry_per_distinct_element() -> storage::Result<()> {
    use computed::PostIndexes as _;
    let storage = Storage::in_memory()?;
    let posts = storage.records::<computed::Post>();
    posts.insert_batch([
        post(1, "ann@x.org", "hello", &["rust", "db", "rust"]),
        post(2, "bo@y.org", "hi", &["db"]),
        post(3, "cy@x.org", "hey you", &[]),
    ])?;
    let of = |_: &u64, p: &computed::ArchivedPost| Some(p.id());
    assert_eq!(
        posts.by_tags("rust", of)?,
        [1],
        "a repeated element is one entry"
    );
    assert_eq!(posts.by_tags("db", of)?, [1, 2]);
    assert_eq!(posts.count_by_tags("db")?, 2);
    assert_eq!(posts.by_tags("nothing", of)?, Vec::<u64>::new());
    // Ranges come once per matching element, in element order.
    assert_eq!(posts.by_tags_range("a".."z", of)?, [1, 2, 1]);
    assert_eq!(posts.by_tags_prefix("ru", of)?, [1]);
    // Replacing keeps the elements exact: gone, kept and new ones.
    posts.insert(&post(1, "ann@x.org", "hello", &["db", "new"]))?;
    assert_eq!(posts.by_tags("rust", of)?, Vec::<u64>::new());
    assert_eq!(posts.by_tags("db", of)?, [1, 2]);
    assert_eq!(posts.by_tags("new", of)?, [1]);
    // Deleting removes every entry of the record.
    assert!(posts.delete(1)?);
    assert_eq!(posts.by_tags("db", of)?, [2]);
    assert_eq!(posts.count_by_tags("new")?, 0);
    let report = storage.verify::<computed::Post>()?;
    assert!(report.is_clean(), "{report}");
    let tags = report.indexes.iter().find(|i| i.index == "tags").unwrap();
    assert_eq!(tags.entries, 1, "{report}");
    Ok(())
}

#[test]
fn indexes_computed_by_methods_follow_the_records() -> storage::Result<()> {
    use computed::PostIndexes as _;
    let storage = Storage::in_memory()?;
    let posts = storage.records::<computed::Post>();
    posts.insert_batch([
        post(1, "ann@x.org", "hello", &[]),
        post(2, "bo@y.org", "hi", &[]),
        post(3, "cy@x.org", "hey you", &[]),
    ])?;
    let of = |id: &u64, _: &computed::ArchivedPost| Some(*id);
    assert_eq!(posts.by_domain("x.org", of)?, [1, 3]);
    assert_eq!(posts.by_domain_prefix("y", of)?, [2]);
    assert_eq!(posts.by_size_range(3..=5, of)?, [1]);
    storage.write(|tx| {
        let mut posts = tx.records::<computed::Post>();
        posts.insert(&post(3, "cy@y.org", "hey", &[]))?;
        // Read-your-writes through the computed index.
        assert_eq!(posts.by_domain("y.org", of)?, [2, 3]);
        Ok(())
    })?;
    assert_eq!(posts.by_domain("x.org", of)?, [1]);
    assert_eq!(posts.count_by_size(3)?, 1);
    assert!(storage.verify::<computed::Post>()?.is_clean());

    // A method whose body changed without renaming its index: its answers
    // are checked, so a stale entry is an error naming it, never a wrong
    // record; verify finds every stale entry and repair rebuilds.
    use computed::changed::PostIndexes as _;
    let changed = storage.records::<computed::changed::Post>();
    let stale = changed.by_size(3, |id, _| Some(*id));
    assert!(matches!(stale, Err(Error::Corrupt { .. })), "{stale:?}");
    let report = storage.verify::<computed::changed::Post>()?;
    assert!(!report.is_clean());
    storage.repair::<computed::changed::Post>()?;
    assert_eq!(changed.by_size(6, |id, _| Some(*id))?, [3]);
    assert!(storage.verify::<computed::changed::Post>()?.is_clean());
    Ok(())
}

#[test]
fn changing_an_index_to_each_rebuilds_it() -> storage::Result<()> {
    mod whole {
        #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
        #[stored(table = "codes")]
        pub struct Doc {
            #[key]
            pub id: u32,
            #[index]
            pub codes: Vec<u8>,
        }
    }
    mod each {
        #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
        #[stored(table = "codes")]
        pub struct Doc {
            #[key]
            pub id: u32,
            #[index(each)]
            pub codes: Vec<u8>,
        }
    }
    let storage = Storage::in_memory()?;
    storage.records::<whole::Doc>().insert(&whole::Doc {
        id: 1,
        codes: vec![7, 9],
    })?;
    {
        use whole::DocIndexes as _;
        let whole = storage.records::<whole::Doc>();
        assert_eq!(whole.by_codes(&[7u8, 9][..], |id, _| Some(*id))?, [1]);
    }
    use each::DocIndexes as _;
    let each = storage.records::<each::Doc>();
    assert_eq!(each.by_codes(9, |id, _| Some(*id))?, [1]);
    assert_eq!(each.by_codes(7, |id, _| Some(*id))?, [1]);
    assert!(storage.verify::<each::Doc>()?.is_clean());
    Ok(())
}
