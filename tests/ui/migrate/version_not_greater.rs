use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "users", version = 3)]
struct UserV3 {
    #[key]
    id: u64,
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "users", version = 2, migrate_from = UserV3)]
struct User {
    #[key]
    id: u64,
    name: String,
}

impl From<UserV3> for User {
    fn from(old: UserV3) -> Self {
        User { id: old.id, name: String::new() }
    }
}

fn main() {}
