//! The seed design's API, used as its usage sketch uses it.

mod common;

use common::{User, temp_storage, user};
use storage::Storage;

#[test]
fn seed_usage_end_to_end() -> storage::Result<()> {
    let (_dir, path, storage) = temp_storage();

    storage.put("users", "alice", &user("Alice", 30, true))?;
    storage.put("users", 42u64, &user("Answer", 42, false))?;

    let bytes = b"raw-key".to_vec();
    storage.write_batch("users", |batch| {
        batch.put("alice", &user("Alice v2", 31, true))?;
        batch.put(123u64, &user("Numbered", 1, true))?;
        batch.put(&bytes, &user("Bytes", 2, false))?;
        Ok(())
    })?;

    let users = storage.table::<&str, User>("users");
    users.put("charlie", &user("Charlie", 25, true))?;

    let name = users.get("alice", |archived| archived.name.to_string())?;
    assert_eq!(name.as_deref(), Some("Alice v2"));

    let active = users.scan(|key, data| data.active.then(|| key.clone()))?;
    // Keys are stored as bytes; this table mixes string and integer keys, and
    // 123u64 (big-endian) happens to be valid UTF-8.
    assert_eq!(active, ["\0\0\0\0\0\0\0{", "alice", "charlie"]);

    // A key that is not UTF-8, scanned as a string key, is reported, not garbled.
    storage.put("users", [0xFFu8, 0x00], &user("Binary", 3, true))?;
    let err = users.scan(|key, _| Some(key.clone())).unwrap_err();
    assert!(
        matches!(&err, storage::Error::Corrupt { table, part: "key", key, .. } if table == "users" && key == &[0xFF, 0]),
        "{err}"
    );
    assert!(storage.delete("users", [0xFFu8, 0x00])?);

    // Typed access to the integer and byte keys of the same table.
    let answer = storage.get::<User, _>("users", 42u64, |u| u.age.to_native())?;
    assert_eq!(answer, Some(42));
    let by_bytes = storage.get::<User, _>("users", &bytes, |u| u.name.to_string())?;
    assert_eq!(by_bytes.as_deref(), Some("Bytes"));

    // Everything is on disk: reopen and read again.
    drop((users, storage));
    let storage = Storage::new(&path)?;
    assert_eq!(storage.table::<&str, User>("users").len()?, 5);
    Ok(())
}

#[test]
fn table_handle_operations() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    let users = storage.table::<u64, User>("users");
    assert!(users.is_empty()?);

    users.put_batch((1..=5u64).map(|i| (i, user(&format!("u{i}"), i as u32, i % 2 == 0))))?;
    assert_eq!(users.len()?, 5);
    assert!(users.contains_key(3u64)?);
    assert!(users.delete(3u64)?);
    assert!(!users.delete(3u64)?);
    assert!(!users.contains_key(3u64)?);
    assert_eq!(users.get(3u64, |u| u.age.to_native())?, None);

    let ages = users.range(2..5u64, |id, u| Some((*id, u.age.to_native())))?;
    assert_eq!(ages, [(2, 2), (4, 4)]);
    let names = users.scan(|_, u| Some(u.name.to_string()))?;
    assert_eq!(names, ["u1", "u2", "u4", "u5"]);
    Ok(())
}

#[test]
fn string_prefix_queries() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    let words = storage.table::<String, u32>("words");
    for (i, w) in ["apple", "apricot", "banana", "ap", "b"].iter().enumerate() {
        words.put(*w, &(i as u32))?;
    }
    let ap = words.prefix("ap", |w, _| Some(w.clone()))?;
    assert_eq!(ap, ["ap", "apple", "apricot"]);
    assert_eq!(words.prefix("", |w, _| Some(w.clone()))?.len(), 5);
    Ok(())
}

#[test]
fn a_table_never_written_is_empty() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    let ghosts = storage.table::<&str, User>("ghosts");
    assert!(ghosts.is_empty()?);
    assert_eq!(ghosts.get("anyone", |u| u.age.to_native())?, None);
    assert!(!ghosts.contains_key("anyone")?);
    assert!(ghosts.scan(|k, _| Some(k.clone()))?.is_empty());
    assert_eq!(storage.get::<User, _>("ghosts", "x", |_| ())?, None);
    storage.read(|tx| {
        let table = tx.table::<&str, User>("ghosts");
        assert_eq!(table.iter()?.count(), 0);
        assert_eq!(table.prefix("a")?.count(), 0);
        Ok(())
    })?;
    // Deleting from it is not an error either.
    assert!(!storage.delete("ghosts", "anyone")?);
    Ok(())
}

#[test]
fn the_byte_level_backend() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    let backend = storage.backend();
    backend.put_batch(
        "raw",
        [(b"k2".as_slice(), b"two".as_slice()), (b"k1", b"one")],
    )?;
    assert_eq!(
        backend.get("raw", b"k1", <[u8]>::to_vec)?,
        Some(b"one".to_vec())
    );
    assert_eq!(backend.get("missing", b"k1", <[u8]>::to_vec)?, None);
    let mut seen = Vec::new();
    backend.scan("raw", |k, v| {
        seen.push((k.to_vec(), v.to_vec()));
        Ok(())
    })?;
    assert_eq!(
        seen,
        [
            (b"k1".to_vec(), b"one".to_vec()),
            (b"k2".to_vec(), b"two".to_vec())
        ]
    );
    assert!(backend.delete("raw", b"k1")?);
    assert!(!backend.delete("raw", b"k1")?);
    Ok(())
}

#[test]
fn reserved_and_empty_table_names_are_refused() {
    let storage = Storage::in_memory().unwrap();
    let err = storage.put("", 1u64, &1u32).unwrap_err();
    assert!(
        matches!(err, storage::Error::InvalidTableName { .. }),
        "{err}"
    );
    let err = storage.put("__storage_schema", 1u64, &1u32).unwrap_err();
    assert!(
        matches!(err, storage::Error::InvalidTableName { .. }),
        "{err}"
    );
    let err = storage.table::<u64, u32>("__x").len().unwrap_err();
    assert_eq!(err.table(), Some("__x"));
}
