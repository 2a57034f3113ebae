//! The schema lock: a layout change without a version bump fails, with the
//! difference and the fix; index changes and version bumps pass.

use storage::{LockMode, LockOutcome, SchemaLockError, schema_lock_with};

/// The lock as a developer runs it: missing files are written, whatever
/// `STORAGE_SCHEMA_LOCK` says in the environment of this test run.
#[allow(clippy::result_large_err)]
fn schema_lock<R: storage::StoredRecord>(
    dir: &std::path::Path,
) -> Result<LockOutcome, SchemaLockError> {
    schema_lock_with::<R>(dir, LockMode::WriteMissing)
}

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

#[test]
fn a_frozen_lock_refuses_to_write_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = schema_lock_with::<v1::User>(dir.path(), LockMode::Frozen);
    assert!(
        matches!(missing, Err(SchemaLockError::Missing { version: 1, .. })),
        "{missing:?}"
    );
    assert!(!dir.path().join("users.v1.json").exists());
    // Once written, a frozen lock checks it like any other.
    schema_lock::<v1::User>(dir.path()).unwrap();
    assert!(matches!(
        schema_lock_with::<v1::User>(dir.path(), LockMode::Frozen),
        Ok(LockOutcome::Unchanged(_))
    ));
}

#[test]
fn the_environment_chooses_the_mode() {
    let frozen = std::env::var("STORAGE_SCHEMA_LOCK").is_ok_and(|v| v == "frozen");
    let expected = if frozen {
        LockMode::Frozen
    } else {
        LockMode::WriteMissing
    };
    assert_eq!(LockMode::from_env(), expected);
}
