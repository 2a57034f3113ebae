use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
enum Status {
    Active,
    Banned,
}

fn main() {}
