//! The schema lock: each record type's layout, written to a file in the
//! application's repository and checked from its tests, so that a layout
//! change without a version bump fails in CI instead of misreading data in
//! production.

use std::path::{Path, PathBuf};

use crate::layout::{Layout, first_difference};
use crate::record::StoredRecord;

/// What [`schema_lock_with`] does when the lock file for a version is
/// missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Write it: the first run of a new version locks its layout.
    WriteMissing,
    /// Refuse with [`SchemaLockError::Missing`]: for CI, where a lock file
    /// nobody committed must fail the build instead of being written.
    Frozen,
}

impl LockMode {
    /// What [`schema_lock`] uses: [`WriteMissing`](LockMode::WriteMissing)
    /// when `STORAGE_SCHEMA_LOCK` is unset, empty or `write`;
    /// [`Frozen`](LockMode::Frozen) for `frozen` and any other value, so
    /// that a misspelt setting in CI still refuses to write.
    pub fn from_env() -> Self {
        match std::env::var_os("STORAGE_SCHEMA_LOCK") {
            None => LockMode::WriteMissing,
            Some(value) => {
                let value = value.to_string_lossy().trim().to_ascii_lowercase();
                if value.is_empty() || value == "write" {
                    LockMode::WriteMissing
                } else {
                    LockMode::Frozen
                }
            }
        }
    }
}

/// What [`schema_lock`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockOutcome {
    /// No lock file for this version existed: it was written.
    Created(PathBuf),
    /// The lock file agrees with the record type.
    Unchanged(PathBuf),
}

/// Why [`schema_lock`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaLockError {
    /// The record type's layout differs from the one locked for its version.
    #[error(
        "the layout of `{record}` (table `{table}`) changed, but its version is still {version} (locked in {}):\n  first difference {difference}\n  locked: {locked}\n  now:    {current}\nbump the version: keep the old struct (as `{short}V{version}`, say), give `{short}` `#[stored(version = {next}, migrate_from = {short}V{version})]` and `impl From<{short}V{version}> for {short}`, run the tests again to lock version {next}, and commit the new lock file",
        .path.display(),
        next = .version + 1,
        short = short(.record)
    )]
    Changed {
        /// The record type.
        record: String,
        /// Its table.
        table: String,
        /// Its version, unchanged.
        version: u32,
        /// The lock file.
        path: PathBuf,
        /// Where the layouts first differ.
        difference: String,
        /// The locked layout.
        locked: String,
        /// The layout now.
        current: String,
    },
    /// A lock file exists for a version greater than the record type's.
    #[error(
        "`{record}` (table `{table}`) has version {version}, but version {locked} is locked in {}: a version went backwards",
        .path.display()
    )]
    Backwards {
        /// The record type.
        record: String,
        /// Its table.
        table: String,
        /// Its version.
        version: u32,
        /// The greater version locked.
        locked: u32,
        /// That lock file.
        path: PathBuf,
    },
    /// [`LockMode::Frozen`] (`STORAGE_SCHEMA_LOCK=frozen`) and no lock file
    /// for this version.
    #[error(
        "no schema lock for version {version} of `{record}` at {} (the lock is frozen, e.g. STORAGE_SCHEMA_LOCK=frozen): run the tests once without it and commit the file",
        .path.display()
    )]
    Missing {
        /// The record type.
        record: String,
        /// Its version.
        version: u32,
        /// The lock file expected.
        path: PathBuf,
    },
    /// The lock file could not be read or written.
    #[error("schema lock file {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The lock file is not a schema lock.
    #[error("{} is not a schema lock file", .path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
}

fn short(record: &str) -> &str {
    record.rsplit("::").next().unwrap_or(record)
}

/// What a lock file holds: a record type's layout, without its indexes
/// (indexes may change without a version bump).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Locked {
    record: String,
    table: String,
    version: u32,
    key: Vec<String>,
    /// The layout of a key computed by a method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_layout: Option<Layout>,
    layout: Layout,
}

/// Checks record type `R`'s layout against the lock in `dir`:
/// `{dir}/{table}.v{version}.json`. The first run writes the file (commit
/// it); later runs fail when the layout changed while the version did not,
/// with the difference and what to do. Changing only indexes needs no bump.
/// With `STORAGE_SCHEMA_LOCK=frozen` in the environment (for CI), a missing
/// lock file is an error instead of being written ([`LockMode::from_env`];
/// [`schema_lock_with`] takes the mode as an argument).
///
/// Call it from a test, or use [`schema_lock!`](crate::schema_lock!) for
/// several types at once: `storage::schema_lock::<User>("schemas")`.
// A test helper: the error is built once, when a test fails, and carries
// everything its message shows.
#[allow(clippy::result_large_err)]
pub fn schema_lock<R: StoredRecord>(dir: impl AsRef<Path>) -> Result<LockOutcome, SchemaLockError> {
    schema_lock_with::<R>(dir, LockMode::from_env())
}

/// [`schema_lock`] with the mode given instead of read from the
/// environment.
///
/// ```
/// # use storage::StoredRecord;
/// use storage::{LockMode, LockOutcome, schema_lock_with};
///
/// #[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
/// struct User {
///     #[key]
///     id: u64,
///     name: String,
/// }
///
/// let schemas = tempfile::tempdir().unwrap();
/// // Frozen: a missing lock file is an error, nothing is written.
/// assert!(schema_lock_with::<User>(&schemas, LockMode::Frozen).is_err());
/// let first = schema_lock_with::<User>(&schemas, LockMode::WriteMissing).unwrap();
/// assert!(matches!(first, LockOutcome::Created(_)));
/// let again = schema_lock_with::<User>(&schemas, LockMode::Frozen).unwrap();
/// assert!(matches!(again, LockOutcome::Unchanged(_)));
/// ```
#[allow(clippy::result_large_err)]
pub fn schema_lock_with<R: StoredRecord>(
    dir: impl AsRef<Path>,
    mode: LockMode,
) -> Result<LockOutcome, SchemaLockError> {
    let schema = R::SCHEMA;
    let dir = dir.as_ref();
    let path = dir.join(format!(
        "{}.v{}.json",
        file_stem(schema.table),
        schema.version
    ));
    let current = Locked {
        record: schema.record.to_owned(),
        table: schema.table.to_owned(),
        version: schema.version,
        key: schema.key.iter().map(|k| (*k).to_owned()).collect(),
        key_layout: schema.key_layout.map(|l| l().clone()),
        layout: (schema.layout)().clone(),
    };
    if let Some((locked, later)) = newest_lock(dir, schema.table)?
        && locked > schema.version
    {
        return Err(SchemaLockError::Backwards {
            record: schema.record.to_owned(),
            table: schema.table.to_owned(),
            version: schema.version,
            locked,
            path: later,
        });
    }
    let io = |source| SchemaLockError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let locked: Locked =
                serde_json::from_slice(&bytes).map_err(|source| SchemaLockError::Unreadable {
                    path: path.clone(),
                    source,
                })?;
            let difference = if locked.key != current.key {
                Some(format!(
                    "in the key: ({}) locked, ({}) now",
                    locked.key.join(", "),
                    current.key.join(", ")
                ))
            } else if let (Some(a), Some(b)) = (&locked.key_layout, &current.key_layout)
                && let Some(d) = first_difference(a, b)
            {
                Some(format!("in the type of the computed key: {d}"))
            } else if locked.key_layout.is_some() != current.key_layout.is_some() {
                Some("in how the key is made: a computed key one side, fields the other".to_owned())
            } else {
                first_difference(&locked.layout, &current.layout)
            };
            match difference {
                None => Ok(LockOutcome::Unchanged(path)),
                Some(difference) => Err(SchemaLockError::Changed {
                    record: schema.record.to_owned(),
                    table: schema.table.to_owned(),
                    version: schema.version,
                    path,
                    difference,
                    locked: locked.layout.to_string(),
                    current: current.layout.to_string(),
                }),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if mode == LockMode::Frozen {
                return Err(SchemaLockError::Missing {
                    record: schema.record.to_owned(),
                    version: schema.version,
                    path,
                });
            }
            std::fs::create_dir_all(dir).map_err(io)?;
            let mut text = serde_json::to_string_pretty(&current).unwrap_or_default();
            text.push('\n');
            std::fs::write(&path, text).map_err(io)?;
            Ok(LockOutcome::Created(path))
        }
        Err(e) => Err(io(e)),
    }
}

/// A table name as a file name: letters, digits, `_` and `-` as they are,
/// every other byte (`/`, `.`, `:`, ..) as `%XX`, so that no table name
/// reaches outside the lock directory or names another table's file.
fn file_stem(table: &str) -> String {
    let mut out = String::with_capacity(table.len());
    for byte in table.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The greatest version locked for `table` in `dir`, and its file.
#[allow(clippy::result_large_err)]
fn newest_lock(dir: &Path, table: &str) -> Result<Option<(u32, PathBuf)>, SchemaLockError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SchemaLockError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let prefix = format!("{}.v", file_stem(table));
    let newest = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let version = name
                .strip_prefix(&prefix)?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            Some((version, path))
        })
        .max_by_key(|(version, _)| *version);
    Ok(newest)
}

/// Checks several record types against their schema locks in a directory
/// (see [`schema_lock`](crate::schema_lock())) and panics with every
/// failure: for a test.
///
/// ```
/// # use storage::StoredRecord;
/// # #[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
/// # struct User { #[key] id: u64 }
/// # #[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
/// # struct Order { #[key] id: u64 }
/// # let dir = tempfile::tempdir().unwrap();
/// # let schemas = dir.path();
/// # use storage::{LockMode::WriteMissing, schema_lock_with};
/// # schema_lock_with::<User>(schemas, WriteMissing).unwrap();
/// # schema_lock_with::<Order>(schemas, WriteMissing).unwrap();
/// // In a `#[test]`; `schemas` is a directory of your repository, e.g. "schemas".
/// storage::schema_lock!(schemas, User, Order);
/// ```
#[macro_export]
macro_rules! schema_lock {
    ($dir:expr, $($record:ty),+ $(,)?) => {{
        let dir = $dir;
        let mut failures: ::std::vec::Vec<::std::string::String> = ::std::vec::Vec::new();
        $(
            if let ::core::result::Result::Err(error) = $crate::schema_lock::<$record>(&dir) {
                failures.push(::std::string::ToString::to_string(&error));
            }
        )+
        if !failures.is_empty() {
            ::core::panic!("{}", failures.join("\n\n"));
        }
    }};
}
