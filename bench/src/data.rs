//! The records every engine stores, and their generators. One dataset feeds
//! every engine: the same ids, names, emails, tags and bios.

use storage::StoredRecord;

/// Days of signup spread over, for the `signup_day` index.
pub const DAYS: u32 = 3_650;
/// Orders per customer in the composite-key table.
pub const ORDERS_PER_CUSTOMER: u64 = 10;
pub const COUNTRIES: [&str; 8] = ["NZ", "FR", "DE", "JP", "US", "BR", "IN", "KE"];

/// The benchmark record (engines 1 to 4: rkyv; `storage` adds the derive).
#[derive(Clone, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "users")]
pub struct User {
    #[key]
    pub id: u64,
    pub name: String,
    pub email: String,
    pub age: u32,
    pub active: bool,
    pub tags: Vec<String>,
    pub bio: String,
}

pub fn user(id: u64) -> User {
    let mut bio = format!("User {id} writes about storage engines, sailing and bread. ");
    while bio.len() < 200 {
        bio.push_str("Lorem ipsum dolor sit amet, consectetur. ");
    }
    bio.truncate(200);
    User {
        id,
        name: format!("Person Number {id}"),
        email: format!("person{id}@example.com"),
        age: 18 + (id % 70) as u32,
        active: !id.is_multiple_of(3),
        tags: (0..1 + id % 3)
            .map(|t| format!("tag-{}", (id + t) % 50))
            .collect(),
        bio,
    }
}

/// The same user, keeping a durable change log (the feed benchmark).
#[derive(Clone, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "users_logged", changes)]
pub struct UserLogged {
    #[key]
    pub id: u64,
    pub name: String,
    pub email: String,
    pub age: u32,
    pub active: bool,
    pub tags: Vec<String>,
    pub bio: String,
}

impl From<&User> for UserLogged {
    fn from(u: &User) -> Self {
        UserLogged {
            id: u.id,
            name: u.name.clone(),
            email: u.email.clone(),
            age: u.age,
            active: u.active,
            tags: u.tags.clone(),
            bio: u.bio.clone(),
        }
    }
}

/// The same user with one unique index (engine 4 and native_db).
#[derive(Clone, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "users1")]
pub struct UserIdx1 {
    #[key]
    pub id: u64,
    pub name: String,
    #[index(unique)]
    pub email: String,
    pub age: u32,
    pub active: bool,
    pub tags: Vec<String>,
    pub bio: String,
}

/// The same user with three indexes.
#[derive(Clone, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "users3")]
pub struct UserIdx3 {
    #[key]
    pub id: u64,
    pub name: String,
    #[index(unique)]
    pub email: String,
    #[index]
    pub country: String,
    #[index]
    pub signup_day: u32,
    pub age: u32,
    pub active: bool,
    pub tags: Vec<String>,
    pub bio: String,
}

pub fn user1(u: &User) -> UserIdx1 {
    UserIdx1 {
        id: u.id,
        name: u.name.clone(),
        email: u.email.clone(),
        age: u.age,
        active: u.active,
        tags: u.tags.clone(),
        bio: u.bio.clone(),
    }
}

pub fn country(id: u64) -> &'static str {
    COUNTRIES[(id % COUNTRIES.len() as u64) as usize]
}

pub fn signup_day(id: u64) -> u32 {
    (id.wrapping_mul(2_654_435_761) % u64::from(DAYS)) as u32
}

pub fn user3(u: &User) -> UserIdx3 {
    UserIdx3 {
        id: u.id,
        name: u.name.clone(),
        email: u.email.clone(),
        country: country(u.id).to_owned(),
        signup_day: signup_day(u.id),
        age: u.age,
        active: u.active,
        tags: u.tags.clone(),
        bio: u.bio.clone(),
    }
}

/// An order, keyed by `(customer, number)`.
#[derive(Clone, StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "orders")]
pub struct Order {
    #[key]
    pub customer: u64,
    #[key]
    pub number: u32,
    pub total_cents: i64,
    pub note: String,
}

pub fn order(i: u64) -> Order {
    Order {
        customer: i / ORDERS_PER_CUSTOMER,
        number: (i % ORDERS_PER_CUSTOMER) as u32,
        total_cents: (i * 37 % 10_000) as i64,
        note: format!("order {i} for customer {}", i / ORDERS_PER_CUSTOMER),
    }
}

/// Deterministic pseudo-random numbers (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A random permutation of `0..n`.
    pub fn permutation(&mut self, n: u64) -> Vec<u64> {
        let mut v: Vec<u64> = (0..n).collect();
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
        v
    }
}

/// native_db's versions of the records (serde + bincode, its own derive).
pub mod native {
    use native_db::*;
    use native_model::{Model, native_model};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Clone)]
    #[native_model(id = 1, version = 1)]
    #[native_db]
    pub struct User {
        #[primary_key]
        pub id: u64,
        pub name: String,
        pub email: String,
        pub age: u32,
        pub active: bool,
        pub tags: Vec<String>,
        pub bio: String,
    }

    #[derive(Serialize, Deserialize, Clone)]
    #[native_model(id = 2, version = 1)]
    #[native_db]
    pub struct UserIdx1 {
        #[primary_key]
        pub id: u64,
        pub name: String,
        #[secondary_key(unique)]
        pub email: String,
        pub age: u32,
        pub active: bool,
        pub tags: Vec<String>,
        pub bio: String,
    }

    #[derive(Serialize, Deserialize, Clone)]
    #[native_model(id = 3, version = 1)]
    #[native_db]
    pub struct UserIdx3 {
        #[primary_key]
        pub id: u64,
        pub name: String,
        #[secondary_key(unique)]
        pub email: String,
        #[secondary_key]
        pub country: String,
        #[secondary_key]
        pub signup_day: u32,
        pub age: u32,
        pub active: bool,
        pub tags: Vec<String>,
        pub bio: String,
    }

    #[derive(Serialize, Deserialize, Clone)]
    #[native_model(id = 4, version = 1)]
    #[native_db(primary_key(key -> (u64, u32)))]
    pub struct Order {
        pub customer: u64,
        pub number: u32,
        pub total_cents: i64,
        pub note: String,
    }

    impl Order {
        pub fn key(&self) -> (u64, u32) {
            (self.customer, self.number)
        }
    }

    pub fn user(u: &super::User) -> User {
        User {
            id: u.id,
            name: u.name.clone(),
            email: u.email.clone(),
            age: u.age,
            active: u.active,
            tags: u.tags.clone(),
            bio: u.bio.clone(),
        }
    }

    pub fn user1(u: &super::User) -> UserIdx1 {
        UserIdx1 {
            id: u.id,
            name: u.name.clone(),
            email: u.email.clone(),
            age: u.age,
            active: u.active,
            tags: u.tags.clone(),
            bio: u.bio.clone(),
        }
    }

    pub fn user3(u: &super::User) -> UserIdx3 {
        UserIdx3 {
            id: u.id,
            name: u.name.clone(),
            email: u.email.clone(),
            country: super::country(u.id).to_owned(),
            signup_day: super::signup_day(u.id),
            age: u.age,
            active: u.active,
            tags: u.tags.clone(),
            bio: u.bio.clone(),
        }
    }

    pub fn order(o: &super::Order) -> Order {
        Order {
            customer: o.customer,
            number: o.number,
            total_cents: o.total_cents,
            note: o.note.clone(),
        }
    }

    /// Every model, defined once for the life of the program (a native_db
    /// `Database` borrows its `Models`).
    pub fn models() -> &'static Models {
        static MODELS: std::sync::LazyLock<Models> = std::sync::LazyLock::new(|| {
            let mut models = Models::new();
            models.define::<User>().expect("define User");
            models.define::<UserIdx1>().expect("define UserIdx1");
            models.define::<UserIdx3>().expect("define UserIdx3");
            models.define::<Order>().expect("define Order");
            models
        });
        &MODELS
    }
}
