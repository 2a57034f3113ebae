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

/// Set for the child below: it prints the mode the environment chooses.
const MODE_CHILD_ENV: &str = "STORAGE_LOCK_MODE_CHILD";

#[test]
fn mode_child() {
    if std::env::var_os(MODE_CHILD_ENV).is_some() {
        println!("MODE {:?}", LockMode::from_env());
    }
}

#[test]
fn the_environment_chooses_the_mode_and_a_typo_still_freezes() {
    let mode = |value: Option<&str>| {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args(["mode_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(MODE_CHILD_ENV, "1");
        match value {
            Some(value) => child.env("STORAGE_SCHEMA_LOCK", value),
            None => child.env_remove("STORAGE_SCHEMA_LOCK"),
        };
        let out = String::from_utf8(child.output().unwrap().stdout).unwrap();
        out.lines()
            .find_map(|l| {
                l.split_once("MODE ")
                    .map(|(_, mode)| mode.trim().to_owned())
            })
            .unwrap_or_default()
    };
    assert_eq!(mode(None), "WriteMissing");
    assert_eq!(mode(Some("")), "WriteMissing");
    assert_eq!(mode(Some("write")), "WriteMissing");
    for frozen in ["frozen", "FROZEN", "frozen\n", "1", "true", "frozne"] {
        assert_eq!(mode(Some(frozen)), "Frozen", "{frozen:?}");
    }
}

mod odd_name {
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    #[stored(table = "../w/x")]
    pub struct Thing {
        #[key]
        pub id: u64,
    }
}

#[test]
fn a_table_name_stays_inside_the_lock_directory() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("locks");
    let created = schema_lock::<odd_name::Thing>(&inner).unwrap();
    assert_eq!(
        created,
        LockOutcome::Created(inner.join("%2E%2E%2Fw%2Fx.v1.json"))
    );
    assert!(matches!(
        schema_lock::<odd_name::Thing>(&inner),
        Ok(LockOutcome::Unchanged(_))
    ));
}
