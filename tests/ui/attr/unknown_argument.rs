use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(tabel = "users")]
struct User {
    #[key]
    id: u64,
}

fn main() {}
