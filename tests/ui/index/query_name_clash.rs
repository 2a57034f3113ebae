use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct User {
    #[key]
    id: u64,
    #[index]
    email: String,
    #[index(name = "email_range")]
    backup_email: String,
}

fn main() {}
