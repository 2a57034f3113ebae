use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Doc {
    #[key]
    id: u64,
    #[index]
    #[rkyv(with = rkyv::with::AsBox)]
    title: String,
}

fn main() {}
