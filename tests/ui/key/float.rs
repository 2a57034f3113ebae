use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Score {
    #[key]
    score: f64,
    player: String,
}

fn main() {}
