use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Tagged {
    #[key]
    tags: Vec<String>,
}

fn main() {}
