use storage::StoredType;

const BASE: u8 = 3;

#[derive(StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[repr(u8)]
enum Status {
    Active = BASE,
    Banned,
}

fn main() {}
