//! Opening databases: persistence and options. Locked, foreign and
//! forbidden files are in `bad_input.rs`.

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
    // With the integrity check (the default) and without it.
    for check in [true, false] {
        let storage = Storage::builder()
            .check_integrity(check)
            .open(&path)
            .unwrap();
        assert_eq!(
            storage
                .get::<User, _>("users", "alice", |u| u.age.to_native())
                .unwrap(),
            Some(30)
        );
    }
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
