use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "")]
struct User {
    #[key]
    id: u64,
}

fn main() {}
