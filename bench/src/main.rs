//! `cargo run --release -p storage-bench [-- --quick] [-n N] [--reps R] [--etcd | --feed | --migrate]`

fn main() {
    storage_bench::run();
}
