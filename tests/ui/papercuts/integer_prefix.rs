// `prefix(5, ..)` on a `u64` key: the literal reads as `i32`, and the
// message says what to write instead.

fn main() {
    let storage = storage::Storage::in_memory().unwrap();
    let orders = storage.table::<u64, u32>("orders");
    let _ = orders.prefix(5, |_, v| Some(v.to_native()));
}
