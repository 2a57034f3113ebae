//! `cargo run --release -p storage-bench [-- --quick] [-n N] [--reps R]`

fn main() {
    storage_bench::run();
}
