use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Counter {
    #[key]
    slot: usize,
}

fn main() {}
