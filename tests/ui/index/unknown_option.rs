use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(index(fields(country, day), uniq))]
struct User {
    #[key]
    id: u64,
    #[index(uniqe)]
    email: String,
    country: String,
    day: u32,
}

fn main() {}
