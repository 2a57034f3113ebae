use storage::StoredRecord;

// The method returns a `String`, the index says `u32`.
#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(index(by = initials -> u32))]
struct Item {
    #[key]
    id: u64,
    name: String,
}

impl Item {
    fn initials(&self) -> String {
        self.name.chars().take(2).collect()
    }
}

fn main() {}
