// A record defined in another module: its generated `{Record}Indexes` trait
// must be imported to call the index queries, and the compiler names it.

mod model {
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "members")]
    pub struct Member {
        #[key]
        pub id: u64,
        #[index(unique)]
        pub email: String,
    }
}

use model::Member;

fn main() {
    let storage = storage::Storage::in_memory().unwrap();
    let _ = storage.records::<Member>().by_email("a@x", |m| m.id());
}
