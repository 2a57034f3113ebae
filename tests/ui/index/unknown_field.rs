use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(index(fields(country, citty)))]
struct User {
    #[key]
    id: u64,
    country: String,
    city: String,
}

fn main() {}
