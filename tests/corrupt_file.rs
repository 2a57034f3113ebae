//! Damaged database files: bytes flipped at random offsets of a closed file,
//! then opened — with redb's integrity check and without — and read through,
//! each case in a child process so that a panic or an abort is caught and
//! counted rather than taking the test down.
//!
//! With the integrity check (what `Storage::new` does by default), every case
//! must end in a clean open and clean reads, or a typed error: never a panic
//! or an abort. Without it, redb
//! trusts the file; the outcomes are counted and printed, not asserted.
//! `STORAGE_FILE_CASES=1000 cargo test --release --test corrupt_file` runs
//! more cases (60 by default).

use std::path::Path;
use std::process::Command;

use storage::{Storage, StoredRecord};

const CHILD_DB: &str = "STORAGE_CORRUPT_FILE_CHILD_DB";
const CHILD_CHECK: &str = "STORAGE_CORRUPT_FILE_CHILD_CHECK";

/// Child exit codes.
const CLEAN: i32 = 0;
const OPEN_ERROR: i32 = 2;
const READ_ERROR: i32 = 3;

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "notes")]
struct Note {
    #[key]
    id: u64,
    #[index]
    author: String,
    text: String,
}

/// Reads everything through storage; `Err` at the first typed error.
fn read_all(storage: &Storage) -> storage::Result<usize> {
    let notes = storage.records::<Note>();
    let mut seen = notes.scan(|_, n| Some(n.text().len()))?.len();
    seen += notes.by_author("ann", |k, _| Some(*k))?.len();
    seen += storage
        .table::<&str, u64>("meta")
        .scan(|_, n| Some(n.to_native()))?
        .len();
    Ok(seen)
}

#[test]
fn corrupt_file_child() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return; // Only a child started by the test below does anything.
    };
    // "1": `Storage::new`, whose default is to check; "0": the check turned off.
    let opened = match std::env::var(CHILD_CHECK).as_deref() {
        Ok("1") => Storage::new(&path),
        _ => Storage::builder().check_integrity(false).open(&path),
    };
    let code = match opened {
        Err(_) => OPEN_ERROR,
        Ok(storage) => match read_all(&storage) {
            Ok(_) => CLEAN,
            Err(_) => READ_ERROR,
        },
    };
    std::process::exit(code);
}

fn build(path: &Path) {
    let storage = Storage::new(path).unwrap();
    let authors = ["ann", "bob", "cid"];
    storage
        .records::<Note>()
        .insert_batch((0..400u64).map(|id| Note {
            id,
            author: authors[id as usize % 3].into(),
            text: format!("note {id} ").repeat(1 + id as usize % 7),
        }))
        .unwrap();
    storage
        .table::<&str, u64>("meta")
        .put("notes", &400)
        .unwrap();
}

#[derive(Default, Debug)]
struct Outcomes {
    clean: usize,
    open_error: usize,
    read_error: usize,
    panic: usize,
    abort: usize,
}

fn run_child(path: &Path, check: bool, outcomes: &mut Outcomes) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "corrupt_file_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, path)
        .env(CHILD_CHECK, if check { "1" } else { "0" })
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("spawn child")
        .status;
    match status.code() {
        Some(CLEAN) => outcomes.clean += 1,
        Some(OPEN_ERROR) => outcomes.open_error += 1,
        Some(READ_ERROR) => outcomes.read_error += 1,
        Some(_) => outcomes.panic += 1,
        None => outcomes.abort += 1,
    }
}

#[test]
fn flipped_bytes_give_a_typed_error_or_a_clean_open_with_the_integrity_check() {
    let cases: u64 = std::env::var("STORAGE_FILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original.redb");
    build(&original);
    let bytes = std::fs::read(&original).unwrap();
    let damaged = dir.path().join("damaged.redb");

    let mut state = 0x0DDB_1A5E_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut checked, mut unchecked) = (Outcomes::default(), Outcomes::default());
    for _ in 0..cases {
        let mut copy = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let offset = (next() % copy.len() as u64) as usize;
            copy[offset] ^= 1 + (next() % 255) as u8;
        }
        for (check, outcomes) in [(true, &mut checked), (false, &mut unchecked)] {
            std::fs::write(&damaged, &copy).unwrap();
            run_child(&damaged, check, outcomes);
        }
    }
    eprintln!("{cases} damaged files ({} bytes each):", bytes.len());
    eprintln!("  integrity check on:  {checked:?}");
    eprintln!("  integrity check off: {unchecked:?}");
    assert_eq!(
        checked.panic + checked.abort,
        0,
        "with the integrity check: {checked:?}"
    );
    assert_eq!(
        checked.clean + checked.open_error + checked.read_error,
        cases as usize
    );
}
