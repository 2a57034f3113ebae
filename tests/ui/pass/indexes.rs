//! Index queries through the generated trait, on every handle.

use storage::{Storage, StoredRecord};

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(index(fields(country, day)))]
pub struct User {
    #[key]
    pub id: u64,
    #[index(unique)]
    pub email: String,
    #[index]
    pub country: String,
    #[index(name = "joined")]
    pub day: u32,
    #[index]
    pub referrer: Option<u64>,
}

fn main() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    let users = storage.records::<User>();
    users.insert(&User { id: 1, email: "a@x.org".into(), country: "NZ".into(), day: 3, referrer: None })?;
    assert_eq!(users.by_email("a@x.org", |u| u.id())?, Some(1));
    assert_eq!(users.by_joined_range(0..10, |k, _| Some(*k))?, [1]);
    assert_eq!(users.by_country_day_prefix(("NZ",), |k, _| Some(*k))?, [1]);
    assert!(users.by_referrer(7, |k, _| Some(*k))?.is_empty());
    storage.write(|tx| {
        let mut users = tx.records::<User>();
        users.insert(&User { id: 2, email: "b@x.org".into(), country: "NZ".into(), day: 4, referrer: Some(1) })?;
        assert_eq!(users.by_referrer(1, |k, _| Some(*k))?, [2]);
        Ok(())
    })?;
    storage.read(|tx| {
        assert_eq!(tx.records::<User>().by_country("NZ", |k, _| Some(*k))?, [1, 2]);
        Ok(())
    })
}
