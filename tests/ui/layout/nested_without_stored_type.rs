use storage::StoredRecord;

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Address {
    city: String,
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Customer {
    #[key]
    id: u64,
    home: Address,
}

fn main() {}
