use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct User {
    #[key]
    #[index]
    id: u64,
}

fn main() {}
