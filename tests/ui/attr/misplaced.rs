use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[key]
#[index]
struct User {
    #[key]
    id: u64,
    #[stored(table = "users")]
    name: String,
}

fn main() {}
