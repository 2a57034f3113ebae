use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "users\nand more")]
struct User {
    #[key]
    id: u64,
}

fn main() {}
