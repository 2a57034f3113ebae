use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Reading {
    #[key]
    id: u64,
    #[index]
    celsius: f64,
    #[index]
    labels: Vec<String>,
}

fn main() {}
