use storage::StoredRecord;

#[derive(StoredRecord)]
struct User {
    #[key]
    id: u64,
    name: String,
}

fn main() {}
