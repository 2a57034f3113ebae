use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "people")]
struct Person {
    #[key]
    id: u64,
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "users", version = 2, migrate_from = Person)]
struct User {
    #[key]
    id: u64,
}

impl From<Person> for User {
    fn from(p: Person) -> Self {
        User { id: p.id }
    }
}

fn main() {}
