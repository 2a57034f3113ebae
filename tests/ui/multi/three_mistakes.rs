use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(tabel = "scores")]
struct Score {
    #[key]
    value: f32,
    #[key(desc)]
    player: String,
}

fn main() {}
