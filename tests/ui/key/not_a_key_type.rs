use storage::StoredRecord;

#[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone)]
struct Address {
    street: String,
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Customer {
    #[key]
    address: Address,
    name: String,
}

fn main() {}
