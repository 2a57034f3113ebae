//! A collection of a zero-sized type is refused at compile time: 32 stored
//! bytes could claim `u32::MAX` elements, validate in microseconds and then
//! take seconds to deserialize.

use storage::{Storage, StoredRecord};

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Tally {
    #[key]
    id: u64,
    marks: Vec<()>,
}

fn main() {
    let storage = Storage::in_memory().unwrap();
    let _ = storage.records::<Tally>().len();
}
