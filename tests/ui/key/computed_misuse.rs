use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(key(by = ratio -> f64))]
struct Float {
    a: u32,
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(key(by = code -> u64))]
struct Both {
    #[key]
    id: u64,
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(key(code))]
struct NoMethod {
    id: u64,
}

fn main() {}
