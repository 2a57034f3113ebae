//! Shared fixtures for the integration tests.

#![allow(dead_code)]

use storage::Storage;

/// A user as the seed design stores it.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct User {
    pub name: String,
    pub age: u32,
    pub active: bool,
    pub tags: Vec<String>,
}

pub fn user(name: &str, age: u32, active: bool) -> User {
    User {
        name: name.to_owned(),
        age,
        active,
        tags: vec![format!("tag-of-{name}")],
    }
}

/// A storage in a fresh temporary directory, with the directory kept alive.
pub fn temp_storage() -> (tempfile::TempDir, std::path::PathBuf, Storage) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("test.redb");
    let storage = Storage::new(&path).expect("open storage");
    (dir, path, storage)
}
