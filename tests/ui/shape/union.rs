use storage::StoredRecord;

#[derive(StoredRecord)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
