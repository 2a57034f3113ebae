//! Opening databases: persistence, options, and typed errors for locked and
//! foreign files.

mod common;

use common::{User, temp_storage, user};
use storage::{Durability, Error, Storage};

#[test]
fn data_survives_reopening() {
    let (_dir, path, storage) = temp_storage();
    storage
        .put("users", "alice", &user("Alice", 30, true))
        .unwrap();
    drop(storage);
    let storage = Storage::builder()
        .check_integrity(true)
        .open(&path)
        .unwrap();
    assert_eq!(
        storage
            .get::<User, _>("users", "alice", |u| u.age.to_native())
            .unwrap(),
        Some(30)
    );
}

#[test]
fn a_file_held_by_another_storage_is_a_typed_error() {
    let (_dir, path, storage) = temp_storage();
    storage
        .put("users", "alice", &user("Alice", 30, true))
        .unwrap();
    let err = Storage::new(&path).unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyOpen { path: p } if p == &path),
        "{err:?}"
    );
    assert!(err.to_string().contains("already open"), "{err}");
    // The holder is unaffected, and the file opens once it is released.
    assert_eq!(storage.table::<&str, User>("users").len().unwrap(), 1);
    drop(storage);
    assert_eq!(
        Storage::new(&path)
            .unwrap()
            .table::<&str, User>("users")
            .len()
            .unwrap(),
        1
    );
}

#[test]
fn a_foreign_file_is_a_typed_error_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let text = "these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    let err = Storage::new(&path).unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("not a redb database"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "the file was not touched"
    );
}

#[test]
fn a_missing_directory_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Storage::new(dir.path().join("no/such/dir/db.redb")).unwrap_err();
    assert!(matches!(err, Error::Open { .. }), "{err:?}");
}

#[test]
fn non_durable_commits_are_still_atomic_and_visible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fast.redb");
    let storage = Storage::builder()
        .durability(Durability::None)
        .open(&path)
        .unwrap();
    assert_eq!(storage.backend().durability(), Durability::None);
    storage.put("users", 1u64, &user("Fast", 1, true)).unwrap();
    assert_eq!(
        storage
            .get::<User, _>("users", 1u64, |u| u.age.to_native())
            .unwrap(),
        Some(1)
    );
}
