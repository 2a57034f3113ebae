use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(index(name = "email", fields(email, country)))]
struct User {
    #[key]
    id: u64,
    #[index(unique)]
    email: String,
    #[index(name = "place")]
    country: String,
    #[index(name = "place")]
    city: String,
}

fn main() {}
