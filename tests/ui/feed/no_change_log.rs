// `Storage::changes` reads a durable log, which a record type keeps only
// with `#[stored(changes)]`.

#[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "users")]
struct User {
    #[key]
    id: u64,
}

fn main() {
    let storage = storage::Storage::in_memory().unwrap();
    let _ = storage.changes::<User>();
}
