use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct User {
    #[key]
    id: u64,
    name: String,
}

fn main() -> storage::Result<()> {
    let storage = storage::Storage::in_memory()?;
    let users = storage.records::<User>();
    // The archived record lives only as long as the read transaction: the
    // closure must return owned data, e.g. `u.name().to_owned()`.
    let name = users.get(1, |u| u.name())?;
    println!("{name:?}");
    Ok(())
}
