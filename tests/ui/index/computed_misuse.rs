use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(index(by = ratio -> f64), index(by = name_len -> usize, fields(name)), index(fields(name), by = name_len -> u64))]
struct Item {
    #[key]
    id: u64,
    name: String,
}

impl Item {
    fn ratio(&self) -> f64 {
        1.0
    }
    fn name_len(&self) -> usize {
        self.name.len()
    }
}

fn main() {}
