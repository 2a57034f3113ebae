use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Maybe {
    #[key]
    id: Option<u64>,
}

fn main() {}
