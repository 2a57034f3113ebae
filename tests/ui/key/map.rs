use std::collections::HashMap;

use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Settings {
    #[key]
    values: HashMap<String, u32>,
}

fn main() {}
