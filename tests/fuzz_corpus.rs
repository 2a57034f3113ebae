//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`) through the
//! fuzz targets' bodies, so that every input the fuzzers kept is re-checked
//! by `cargo test` on stable Rust, without libFuzzer or nightly.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // A panic names the input that caused it.
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{} panicked on {}", target, path.display());
        inputs += 1;
    }
    assert!(inputs >= 10, "the {target} corpus has only {inputs} inputs");
}

#[test]
fn key_decoding_corpus() {
    replay("key_decoding", targets::key_decoding);
}

#[test]
fn record_access_corpus() {
    replay("record_access", targets::record_access);
}
