//! `#[derive(StoredRecord)]`: tables, keys, accessors and the API on top.

use storage::{Storage, StoredRecord};

#[derive(
    Debug, Clone, PartialEq, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[stored(table = "users")]
struct User {
    #[key]
    id: u64,
    name: String,
    email: String,
    age: u32,
    tags: Vec<String>,
    active: bool,
}

fn user(id: u64, name: &str) -> User {
    User {
        id,
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        age: 20 + id as u32,
        tags: vec!["a".into(), format!("tag-{id}")],
        active: id.is_multiple_of(2),
    }
}

#[derive(Debug, Clone, storage::StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Address {
    street: String,
    zip: u32,
}

/// Every accessor shape, and a composite key.
#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct OrderLine {
    #[key]
    customer: String,
    #[key]
    order: u32,
    #[key]
    line: u16,
    price: f64,
    count: i64,
    size: usize,
    flags: Vec<u8>,
    scores: Vec<u32>,
    notes: Vec<String>,
    discount: Option<f32>,
    gift_note: Option<String>,
    shipped_to: Option<Address>,
    billed_to: Address,
    history: Vec<Address>,
    boxed: Box<u64>,
    hash: [u8; 4],
    initial: char,
}

fn line(customer: &str, order: u32, line: u16) -> OrderLine {
    OrderLine {
        customer: customer.into(),
        order,
        line,
        price: 9.5,
        count: -3,
        size: 12,
        flags: vec![1, 2],
        scores: vec![10, 20, 30],
        notes: vec!["fragile".into(), "gift".into()],
        discount: Some(0.25),
        gift_note: None,
        shipped_to: Some(Address {
            street: "1 Main St".into(),
            zip: 12345,
        }),
        billed_to: Address {
            street: "2 Side St".into(),
            zip: 54321,
        },
        history: vec![Address {
            street: "old".into(),
            zip: 1,
        }],
        boxed: Box::new(77),
        hash: [1, 2, 3, 4],
        initial: 'λ',
    }
}

#[test]
fn table_name_key_type_and_schema_come_from_the_struct() {
    assert_eq!(User::SCHEMA.table, "users");
    assert_eq!(User::SCHEMA.version, 1);
    assert_eq!(User::SCHEMA.key, ["id"]);
    assert_eq!(
        (User::SCHEMA.layout)().to_string(),
        "struct User { id: u64, name: String, email: String, age: u32, tags: Vec<String>, active: bool }"
    );
    // The default table name is the snake_case struct name.
    assert_eq!(OrderLine::SCHEMA.table, "order_line");
    let key: OrderLineKey = ("ann".to_string(), 1, 2);
    assert_eq!(line("ann", 1, 2).key(), key);
    let id: UserKey = 7;
    assert_eq!(user(7, "x").key(), id);
}

#[test]
fn insert_get_delete_through_records() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    let users = storage.records::<User>();
    users.insert(&user(1, "Ann"))?;
    users.insert_batch([user(2, "Bob"), user(3, "Cid")])?;
    assert_eq!(users.len()?, 3);

    let name = users.get(&2, |u| u.name().to_owned())?;
    assert_eq!(name.as_deref(), Some("Bob"));
    let (age, active, tags) = users
        .get(3, |u| {
            (u.age(), u.active(), u.tags().collect::<Vec<_>>().join("|"))
        })?
        .unwrap();
    assert_eq!((age, active, tags.as_str()), (23, false, "a|tag-3"));

    // Inserting a record with an existing key replaces it.
    users.insert(&User {
        name: "Bobby".into(),
        ..user(2, "Bob")
    })?;
    assert_eq!(
        users.get(2, |u| u.name().to_owned())?.as_deref(),
        Some("Bobby")
    );

    let ids = users.range(2.., |id, _| Some(*id))?;
    assert_eq!(ids, [2, 3]);
    let active = users.scan(|_, u| u.active().then(|| u.id()))?;
    assert_eq!(active, [2]);

    assert!(users.delete(&1)?);
    assert_eq!(users.get(1, |u| u.id())?, None);
    Ok(())
}

#[test]
fn accessors_return_native_views() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    let lines = storage.records::<OrderLine>();
    lines.insert(&line("ann", 1, 1))?;
    lines
        .get(("ann", 1, 1), |l| {
            assert_eq!(l.customer(), "ann");
            assert_eq!((l.order(), l.line()), (1u32, 1u16));
            assert_eq!(l.price(), 9.5f64);
            assert_eq!(l.count(), -3i64);
            assert_eq!(l.size(), 12usize);
            assert_eq!(l.flags(), &[1u8, 2]);
            assert_eq!(l.scores().collect::<Vec<u32>>(), [10, 20, 30]);
            assert_eq!(l.scores().next_back(), Some(30));
            assert_eq!(l.scores().len(), 3);
            assert_eq!(l.notes().collect::<Vec<&str>>(), ["fragile", "gift"]);
            assert_eq!(l.discount(), Some(0.25f32));
            assert_eq!(l.gift_note(), None::<&str>);
            let shipped = l.shipped_to().expect("shipped");
            assert_eq!(
                (shipped.street.as_str(), shipped.zip.to_native()),
                ("1 Main St", 12345)
            );
            assert_eq!(l.billed_to().zip.to_native(), 54321);
            assert_eq!(l.history().len(), 1);
            assert_eq!(l.history()[0].street.as_str(), "old");
            assert_eq!(l.boxed(), 77u64);
            assert_eq!(l.hash(), &[1u8, 2, 3, 4]);
            assert_eq!(l.initial(), 'λ');
        })?
        .expect("stored");
    Ok(())
}

#[test]
fn prefix_queries_on_leading_key_parts() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    let lines = storage.records::<OrderLine>();
    for (customer, order, n) in [
        ("bob", 2, 1),
        ("ann", 2, 1),
        ("ann", 1, 2),
        ("ann", 1, 1),
        ("annie", 1, 1),
    ] {
        lines.insert(&line(customer, order, n))?;
    }
    let keys = |k: &OrderLineKey, _: &ArchivedOrderLine| Some(k.clone());
    let ann = lines.prefix(("ann",), keys)?;
    assert_eq!(
        ann,
        [
            ("ann".into(), 1, 1),
            ("ann".into(), 1, 2),
            ("ann".into(), 2, 1)
        ],
        "a string key part matches whole: `annie` is not under `ann`"
    );
    let ann_1 = lines.prefix(("ann", 1), keys)?;
    assert_eq!(ann_1.len(), 2);
    let everything = lines.prefix(("ann", 1, 1), keys)?;
    assert_eq!(everything, [("ann".into(), 1, 1)]);
    Ok(())
}

#[test]
fn records_in_transactions() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    storage.write(|tx| {
        tx.records::<User>().insert(&user(1, "Ann"))?;
        tx.records::<OrderLine>().insert(&line("ann", 1, 1))?;
        Ok(())
    })?;
    let (name, lines) = storage.read(|tx| {
        let name = tx.records::<User>().get(1, |u| u.name().to_owned())?;
        let lines = tx.records::<OrderLine>().prefix(("ann",))?.count();
        Ok((name, lines))
    })?;
    assert_eq!((name.as_deref(), lines), (Some("Ann"), 1));

    // An aborted transaction leaves both tables as they were.
    let err = storage
        .write(|tx| {
            tx.records::<User>().insert(&user(2, "Bob"))?;
            tx.records::<OrderLine>().delete(("ann", 1, 1))?;
            Err::<(), _>(storage::Error::abort("no"))
        })
        .unwrap_err();
    assert!(err.abort_reason().is_some());
    assert_eq!(storage.records::<User>().len()?, 1);
    assert_eq!(storage.records::<OrderLine>().len()?, 1);
    Ok(())
}

#[test]
fn a_record_table_is_also_reachable_by_name() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    storage.records::<User>().insert(&user(5, "Eve"))?;
    let name = storage
        .table::<u64, User>("users")
        .get(5, |u| u.name().to_owned())?;
    assert_eq!(name.as_deref(), Some("Eve"));
    Ok(())
}

macro_rules! define {
    ($item:item) => {
        $item
    };
}

define! {
    /// A record whose whole item passed through `macro_rules!`.
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "macro_items")]
    pub struct MacroItem {
        #[key]
        pub id: u64,
        pub name: String,
    }
}

#[test]
fn a_record_defined_through_a_macro_derives() {
    //! The derives failed to compile on an item passed into `macro_rules!`
    //! as `$item` ("cannot find value `__d`").
    let storage = storage::Storage::in_memory().unwrap();
    storage
        .records::<MacroItem>()
        .insert(&MacroItem {
            id: 1,
            name: "through a macro".into(),
        })
        .unwrap();
    let name = storage
        .records::<MacroItem>()
        .get(1, |i| i.name().to_owned());
    assert_eq!(name.unwrap().as_deref(), Some("through a macro"));
}
