//! Shared fixtures for the integration tests.

#![allow(dead_code)]

pub mod etcd;

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

/// Deterministic pseudo-random numbers (SplitMix64), for seeded tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Writes through redb itself, behind storage's back, as another program
/// editing the file would: for tests of what storage does with damage.
pub fn tamper(
    storage: &Storage,
    table: &str,
    f: impl FnOnce(&mut redb::Table<&'static [u8], &'static [u8]>),
) {
    let db = storage
        .backend()
        .redb()
        .expect("a redb storage")
        .database()
        .expect("a writable database");
    let txn = db.begin_write().expect("write");
    {
        let mut raw = txn
            .open_table(redb::TableDefinition::<&[u8], &[u8]>::new(table))
            .expect("table");
        f(&mut raw);
    }
    txn.commit().expect("commit");
}
