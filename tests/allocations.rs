//! Heap allocations on the hot paths, counted by a global allocator: integer
//! keys inside a write batch and validated reads cost none per operation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use storage::Storage;

struct Counting;

thread_local! {
    /// Allocations made by this thread while counting, or `None` when not counting.
    static ALLOCATIONS: Cell<Option<usize>> = const { Cell::new(None) };
}

fn count() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get().map(|n| n + 1)));
}

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap allocations this thread makes while `f` runs.
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(Some(0)));
    f();
    ALLOCATIONS.with(|n| n.take()).unwrap_or(0)
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct User {
    name: String,
    age: u32,
    tags: Vec<String>,
}

fn user(i: u64) -> User {
    User {
        name: format!("user {i} with a name longer than inline"),
        age: i as u32,
        tags: vec!["a longer tag than inline".into(), "b".into()],
    }
}

fn put_users(storage: &Storage, table: &str, users: &[User]) -> usize {
    allocations(|| {
        storage
            .write_batch(table, |batch| {
                for (i, user) in users.iter().enumerate() {
                    batch.put(i as u64, user)?;
                }
                Ok(())
            })
            .unwrap();
    })
}

fn put_raw(storage: &Storage, table: &str, entries: &[([u8; 8], Vec<u8>)]) -> usize {
    allocations(|| {
        storage
            .backend()
            .put_batch(table, entries.iter().map(|(k, v)| (k, v)))
            .unwrap()
    })
}

#[test]
fn integer_keyed_batch_puts_allocate_no_more_than_raw_redb() {
    const N: usize = 2_000;
    let users: Vec<User> = (0..N as u64).map(user).collect();
    // The same keys and value bytes, prepared before counting.
    let entries: Vec<([u8; 8], Vec<u8>)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            (
                (i as u64).to_be_bytes(),
                rkyv::to_bytes::<rkyv::rancor::Error>(u).unwrap().to_vec(),
            )
        })
        .collect();

    for round in 0..3 {
        let storage = Storage::in_memory().unwrap();
        put_users(&storage, "warm-up", &users[..10]);
        let raw = put_raw(&storage, &format!("raw{round}"), &entries);
        let ours = put_users(&storage, &format!("typed{round}"), &users);
        println!("{N} puts: raw redb {raw} allocations, storage {ours}");
        assert!(
            ours <= raw + 8,
            "storage allocated {ours} times for {N} puts, raw redb {raw}: more than a constant per batch"
        );
    }
}

#[test]
fn validated_reads_do_not_allocate() {
    const N: u64 = 2_000;
    let storage = Storage::in_memory().unwrap();
    let users: Vec<User> = (0..N).map(user).collect();
    put_users(&storage, "users", &users);

    let read = |count: u64| {
        allocations(|| {
            storage
                .read(|tx| {
                    let table = tx.table::<u64, User>("users");
                    for i in 0..count {
                        let age = table.get(i, |u| u.age.to_native())?;
                        assert_eq!(age, Some(i as u32));
                    }
                    Ok(())
                })
                .unwrap();
        })
    };
    read(N); // warm the buffer pool and the page cache
    let few = read(10);
    let many = read(N);
    println!("validated reads: 10 -> {few} allocations, {N} -> {many}");
    assert_eq!(
        many, few,
        "reads {N} times allocated more than reading 10 times"
    );
}
