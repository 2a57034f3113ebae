//! Compile-time checks of `#[derive(StoredRecord)]`, with trybuild: every case
//! in `tests/ui/<topic>/` must fail with exactly the error in its `.stderr`,
//! and every case in `tests/ui/pass/` must compile and run.
//!
//! Compiler messages change between Rust releases, so the `.stderr` files are
//! pinned to the toolchain CI runs (see `PINNED`). On another toolchain the
//! compile-fail half is skipped with a note; regenerate with
//! `TRYBUILD=overwrite cargo test --test ui` after changing the pin.

use std::process::Command;

/// The rustc the `.stderr` files were written by.
const PINNED: &str = "rustc 1.95.";

const FAILING: &[&str] = &[
    "attr",
    "feed",
    "index",
    "key",
    "layout",
    "migrate",
    "multi",
    "papercuts",
    "rkyv",
    "scope",
    "shape",
    "table",
];

fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    Command::new(rustc)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    let version = rustc_version();
    if version.starts_with(PINNED) {
        for topic in FAILING {
            cases.compile_fail(format!("tests/ui/{topic}/*.rs"));
        }
    } else {
        eprintln!(
            "note: compile-fail UI cases skipped: their .stderr is pinned to {PINNED}x, this is {version}"
        );
    }
}
