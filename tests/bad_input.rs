//! The bad-input matrix: each way of handing storage something wrong gives
//! a typed error, and the data already stored is left exactly as it was.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{User, user};
use storage::{Error, Storage, StoredRecord};

/// A database file with known contents.
fn populated() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.redb");
    let storage = Storage::new(&path).unwrap();
    storage
        .table::<u64, User>("users")
        .put_batch((1..=3u64).map(|i| (i, user(&format!("user{i}"), i as u32, true))))
        .unwrap();
    (dir, path)
}

/// The contents `populated` stored.
fn assert_intact(storage: &Storage) {
    let names = storage
        .table::<u64, User>("users")
        .scan(|_, u| Some(u.name.to_string()))
        .unwrap();
    assert_eq!(
        names,
        ["user1", "user2", "user3"],
        "the stored data changed"
    );
}

fn assert_intact_at(path: &Path) {
    assert_intact(&Storage::new(path).unwrap());
}

#[test]
fn opening_a_file_that_is_not_a_database() {
    let (dir, path) = populated();
    let notes = dir.path().join("notes.txt");
    let text = "plain text, not a database\n".repeat(300);
    std::fs::write(&notes, &text).unwrap();
    let err = Storage::new(&notes).unwrap_err();
    assert!(
        matches!(&err, Error::NotADatabase { path, .. } if path == &notes),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a redb database"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&notes).unwrap(),
        text,
        "the foreign file was not touched"
    );
    assert_intact_at(&path);
}

#[test]
fn opening_a_file_another_storage_holds() {
    let (_dir, path) = populated();
    let holder = Storage::new(&path).unwrap();
    let err = Storage::new(&path).unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyOpen { path: p } if p == &path),
        "{err:?}"
    );
    assert!(err.to_string().contains("already open"), "{err}");
    assert_intact(&holder);
}

const HOLDER_ENV: &str = "STORAGE_BAD_INPUT_HOLDER_DB";

/// Child for the next test: holds the database open until stdin closes.
#[test]
fn holder_child() {
    let Ok(path) = std::env::var(HOLDER_ENV) else {
        return;
    };
    let _storage = Storage::new(&path).expect("the holder opens the database");
    println!("HOLDING");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn opening_a_file_another_process_holds() {
    let (_dir, path) = populated();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["holder_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(HOLDER_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    assert!(
        stdout
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("HOLDING")),
        "the holder started"
    );
    let err = Storage::new(&path).unwrap_err();
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err:?}");
    drop(child.stdin.take());
    child.wait().unwrap();
    assert_intact_at(&path);
}

mod changed {
    /// `common::User` stored as a record type, then changed.
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "people")]
    pub struct V1 {
        #[key]
        pub id: u64,
        pub name: String,
    }

    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "people")]
    pub struct V2 {
        #[key]
        pub id: u64,
        pub name: String,
        pub email: String,
    }
}

#[test]
fn a_changed_record_schema() {
    let (_dir, path) = populated();
    let storage = Storage::new(&path).unwrap();
    storage
        .records::<changed::V1>()
        .insert(&changed::V1 {
            id: 1,
            name: "Ann".into(),
        })
        .unwrap();
    let err = storage
        .records::<changed::V2>()
        .get(1, |p| p.email().to_owned())
        .unwrap_err();
    assert!(
        matches!(&err, Error::SchemaMismatch { table, .. } if table == "people"),
        "{err:?}"
    );
    let err = storage
        .records::<changed::V2>()
        .insert(&changed::V2 {
            id: 2,
            name: "Bob".into(),
            email: "b@x".into(),
        })
        .unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch { .. }), "{err:?}");
    assert_eq!(
        storage
            .records::<changed::V1>()
            .get(1, |p| p.name().to_owned())
            .unwrap()
            .as_deref(),
        Some("Ann")
    );
    assert_eq!(storage.records::<changed::V1>().len().unwrap(), 1);
    assert_eq!(changed::V2::SCHEMA.table, "people");
    assert_intact(&storage);
}

#[test]
fn a_panic_inside_a_write_closure() {
    let (_dir, path) = populated();
    let storage = Storage::new(&path).unwrap();
    let err = storage
        .write::<()>(|tx| {
            tx.table::<u64, User>("users")
                .put(1u64, &user("overwritten", 0, false))?;
            tx.table::<u64, User>("users").delete(2u64)?;
            panic!("boom")
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Panicked { message, tables } if message == "boom" && tables == &["users"]),
        "{err:?}"
    );
    assert_intact(&storage);
}

#[test]
fn an_error_returned_from_a_write_closure() {
    let (_dir, path) = populated();
    let storage = Storage::new(&path).unwrap();
    let err = storage
        .write::<()>(|tx| {
            tx.table::<u64, User>("users")
                .put(4u64, &user("user4", 4, true))?;
            tx.table::<u64, User>("users").delete(1u64)?;
            Err(Error::abort("validation failed"))
        })
        .unwrap_err();
    assert_eq!(
        err.abort_reason().map(ToString::to_string).as_deref(),
        Some("validation failed")
    );
    assert_intact(&storage);
}

#[test]
fn a_key_or_value_over_the_size_limit() {
    let (_dir, path) = populated();
    let storage = Storage::new(&path).unwrap();
    // One byte over redb's 3 GiB limit. The zeroed pages are never touched:
    // the length is refused before anything is copied.
    let huge = vec![0u8; 3 * 1024 * 1024 * 1024 + 1];
    let err = storage
        .write_batch("users", |batch| {
            batch.put(9u64, &user("before the big one", 9, true))?;
            batch.put_raw(10u64, &huge)
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::TooLarge { table, len } if table == "users" && *len == huge.len()),
        "{err:?}"
    );
    let err = storage
        .write_batch("users", |batch| batch.put_raw(&huge[..], b"small value"))
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    drop(huge);
    assert_intact(&storage);
}

#[test]
fn an_empty_or_reserved_table_name() {
    let (_dir, path) = populated();
    let storage = Storage::new(&path).unwrap();
    for name in ["", "__storage_schema", "__index:users:email"] {
        let err = storage.put(name, 1u64, &user("x", 1, true)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidTableName { table, .. } if table == name),
            "{err:?}"
        );
        let err = storage.table::<u64, User>(name).len().unwrap_err();
        assert!(matches!(err, Error::InvalidTableName { .. }), "{err:?}");
    }
    assert_intact(&storage);
}

#[test]
fn a_path_without_permission() {
    let (_dir, path) = populated();
    // sysfs refuses to create files even for root, unlike a chmod-ed directory.
    let denied = Path::new("/sys/storage-test.redb");
    let err = Storage::new(denied).unwrap_err();
    match &err {
        Error::Open { path, source } => {
            assert_eq!(path, denied);
            let io = source.source().map(ToString::to_string).unwrap_or_default();
            assert!(err.to_string().contains("cannot open database"), "{err}");
            assert!(
                io.contains("ermission") || source.to_string().contains("ermission"),
                "{source}: {io}"
            );
        }
        other => panic!("expected Error::Open, got {other:?}"),
    }
    assert_intact_at(&path);
}
