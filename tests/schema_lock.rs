//! The schema lock: a layout change without a version bump fails, with the
//! difference and the fix; index changes and version bumps pass.

use storage::{LockOutcome, SchemaLockError, schema_lock};

mod v1 {
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "users")]
    pub struct User {
        #[key]
        pub id: u64,
        pub email: String,
    }
}

mod indexed {
    /// `v1::User` with an index: the same layout.
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "users")]
    pub struct User {
        #[key]
        pub id: u64,
        #[index(unique)]
        pub email: String,
    }
}

mod changed {
    /// `v1::User` with a field added and the version left at 1.
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "users")]
    pub struct User {
        #[key]
        pub id: u64,
        pub email: String,
        pub age: u32,
    }
}

mod bumped {
    /// The change done right: version 2, migrating from version 1.
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "users", version = 2, migrate_from = super::v1::User)]
    pub struct User {
        #[key]
        pub id: u64,
        pub email: String,
        pub age: u32,
    }

    impl From<super::v1::User> for User {
        fn from(old: super::v1::User) -> Self {
            User {
                id: old.id,
                email: old.email,
                age: 0,
            }
        }
    }
}

#[test]
fn a_layout_change_without_a_version_bump_fails_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let created = schema_lock::<v1::User>(dir.path()).unwrap();
    assert_eq!(
        created,
        LockOutcome::Created(dir.path().join("users.v1.json"))
    );
    let text = std::fs::read_to_string(dir.path().join("users.v1.json")).unwrap();
    assert!(
        text.contains("\"layout\"") && !text.contains("index"),
        "{text}"
    );
    assert!(matches!(
        schema_lock::<v1::User>(dir.path()),
        Ok(LockOutcome::Unchanged(_))
    ));
    // Indexes are not part of the lock.
    assert!(matches!(
        schema_lock::<indexed::User>(dir.path()),
        Ok(LockOutcome::Unchanged(_))
    ));

    let err = schema_lock::<changed::User>(dir.path()).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, SchemaLockError::Changed { version: 1, .. }),
        "{message}"
    );
    assert!(message.contains("but its version is still 1"), "{message}");
    assert!(
        message.contains("(id, email)") && message.contains("(id, email, age)"),
        "{message}"
    );
    assert!(
        message.contains("#[stored(version = 2, migrate_from = UserV1)]"),
        "{message}"
    );

    // Bumping the version locks the new layout beside the old one.
    let bumped = schema_lock::<bumped::User>(dir.path()).unwrap();
    assert_eq!(
        bumped,
        LockOutcome::Created(dir.path().join("users.v2.json"))
    );
    // And the old version cannot come back as the newest.
    let back = schema_lock::<changed::User>(dir.path()).unwrap_err();
    assert!(
        matches!(
            back,
            SchemaLockError::Backwards {
                version: 1,
                locked: 2,
                ..
            }
        ),
        "{back}"
    );
}

/// Set to a directory for the child below.
const CHILD_ENV: &str = "STORAGE_LOCK_CHILD_DIR";

#[test]
fn frozen_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Only the test below runs this, in a child process.
    };
    match schema_lock::<v1::User>(&dir) {
        Err(SchemaLockError::Missing { version: 1, .. }) => println!("MISSING"),
        other => println!("UNEXPECTED {other:?}"),
    }
}

#[test]
fn a_frozen_lock_refuses_to_write_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["frozen_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .env("STORAGE_SCHEMA_LOCK", "frozen")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("MISSING"), "{stdout}");
    assert!(!dir.path().join("users.v1.json").exists());
}
