//! The seed design's usage, end to end: open a database file, put records
//! under string, integer and byte keys, batch writes atomically, and read
//! them back zero-copy through a typed table. Then the same job with
//! `#[derive(StoredRecord)]`, where the record type brings its table and key.
//!
//! Run with `cargo run --example quickstart`.

use storage::{Storage, StoredRecord, Table};

#[derive(Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct User {
    name: String,
    email: String,
    age: u32,
    active: bool,
}

/// A record type: its table, key and archived accessors are derived.
#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "accounts")]
struct Account {
    #[key]
    id: u64,
    owner: String,
    tags: Vec<String>,
    balance_cents: i64,
}

fn user(name: &str, age: u32, active: bool) -> User {
    User {
        name: name.to_owned(),
        email: format!("{}@example.com", name.to_lowercase()),
        age,
        active,
    }
}

fn main() -> storage::Result<()> {
    let dir = tempfile::tempdir().map_err(storage::Error::abort)?;
    let path = dir.path().join("db.redb");
    let storage = Storage::new(&path)?;
    println!("opened {}", path.display());

    // One record at a time, each in its own durable transaction.
    storage.put("users", "alice", &user("Alice", 34, true))?;
    storage.put("users", 42u64, &user("Marvin", 37, false))?;
    println!("put users \"alice\" and 42");

    // A batch: all three commit together, or none does.
    let bytes = b"raw-key".to_vec();
    storage.write_batch("users", |batch| {
        batch.put("bob", &user("Bob", 27, true))?;
        batch.put(123u64, &user("Carol", 41, false))?;
        batch.put(&bytes, &user("Dave", 19, true))?;
        Ok(())
    })?;
    println!("batch-wrote \"bob\", 123 and b\"raw-key\" in one transaction");

    // A typed handle: string keys, `User` values.
    let users: Table<&str, User> = storage.table::<&str, User>("users");
    users.put("charlie", &user("Charlie", 52, true))?;

    // The closure sees the archived record in place (validated, not
    // deserialized) and returns an owned result.
    let name = users.get("alice", |archived| archived.name.to_string())?;
    println!("users[\"alice\"].name = {name:?}");

    let email = storage.get::<User, _>("users", 42u64, |u| u.email.to_string())?;
    println!("users[42].email = {email:?}");

    // Scan in key order, keeping the keys of active users.
    let active = users.scan(|key, data| data.active.then(|| key.clone()))?;
    println!("active users: {active:?}");

    // Several tables in one atomic transaction.
    storage.write(|tx| {
        tx.table::<&str, User>("users")
            .put("erin", &user("Erin", 38, true))?;
        tx.table::<&str, u64>("stats").put("users", &7)?;
        Ok(())
    })?;
    let count = storage
        .table::<&str, u64>("stats")
        .get("users", |n| n.to_native())?;
    println!(
        "stats[\"users\"] = {count:?}, table holds {} entries",
        users.len()?
    );

    // A failed transaction leaves nothing behind.
    let failed = storage.write(|tx| {
        tx.table::<&str, User>("users")
            .put("mallory", &user("Mallory", 99, true))?;
        Err::<(), _>(storage::Error::abort("mallory is not welcome"))
    });
    println!(
        "aborted transaction: {}; \"mallory\" stored: {}",
        failed.unwrap_err(),
        users.contains_key("mallory")?
    );

    println!("deleted \"bob\": {}", users.delete("bob")?);

    // With the derive: the table name and key type come from `Account`.
    let accounts = storage.records::<Account>();
    accounts.insert_batch([
        Account {
            id: 1,
            owner: "Alice".into(),
            tags: vec!["vip".into()],
            balance_cents: 12_000,
        },
        Account {
            id: 2,
            owner: "Bob".into(),
            tags: vec![],
            balance_cents: 300,
        },
    ])?;
    // Generated accessors return native views: `&str`, `i64`, iterators.
    let alice = accounts.get(1, |a| {
        format!(
            "{} ({}) has {} cents",
            a.owner(),
            a.tags().collect::<Vec<_>>().join(","),
            a.balance_cents()
        )
    })?;
    println!("accounts[1]: {}", alice.unwrap_or_default());
    let rich = accounts.scan(|id, a| (a.balance_cents() > 1_000).then_some(*id))?;
    println!("accounts over 1000 cents: {rich:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The layouts of this example's record types, locked in `schemas/`:
    /// a change without a version bump fails here.
    #[test]
    fn schemas_are_locked() {
        storage::schema_lock!("schemas", super::Account);
    }
}
