use storage::StoredRecord;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(index(fields(a, b), each))]
struct Post {
    #[key]
    id: u64,
    #[index(each, unique)]
    tags: Vec<String>,
    #[index(each)]
    title: String,
    #[index(each)]
    scores: Vec<f64>,
    #[index(each)]
    maybe: Vec<Option<u32>>,
    a: Vec<u32>,
    b: u32,
}

fn main() {}
