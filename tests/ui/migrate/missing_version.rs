use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "users")]
struct UserV1 {
    #[key]
    id: u64,
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "users", migrate_from = UserV1)]
struct User {
    #[key]
    id: u64,
}

impl From<UserV1> for User {
    fn from(old: UserV1) -> Self {
        User { id: old.id }
    }
}

fn main() {}
