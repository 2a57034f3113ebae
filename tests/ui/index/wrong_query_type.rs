use storage::{Storage, StoredRecord};

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct User {
    #[key]
    id: u64,
    #[index(unique)]
    email: String,
    #[index]
    signup_day: u32,
}

fn main() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    let users = storage.records::<User>();
    // An email is a string, a signup day a number: each query takes its own type.
    let _ = users.by_email(42, |u| u.id())?;
    let _ = users.by_signup_day("monday", |_, u| Some(u.id()))?;
    Ok(())
}
