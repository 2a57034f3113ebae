//! `cargo bench -p storage-bench`: the benchmark program, as a bench target.

fn main() {
    storage_bench::run();
}
