use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct User {
    #[key(unique)]
    id: u64,
}

fn main() {}
