//! The real `storage-inspect` binary, run on files this test writes with many
//! record types (every field type the derive supports, composite keys,
//! indexes, a migrated table, a table by name), compared with the records it
//! wrote (serialized with serde, which the inspector's JSON follows); and on
//! damaged, foreign and locked files, and an etcd namespace.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Output};

use serde::Serialize;
use storage::{Storage, StoredRecord};

#[path = "../../tests/common/etcd.rs"]
#[allow(dead_code)]
mod etcd;

#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    storage::StoredType,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct Address {
    pub city: String,
    pub zip: Option<u32>,
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    storage::StoredType,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub enum Shape {
    Empty,
    Circle(f64),
    Pair(u8, String),
    Rect { w: u32, h: u32 },
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    StoredRecord,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[stored(table = "everything")]
pub struct Everything {
    #[key]
    pub id: u64,
    pub a: u8,
    pub b: u16,
    pub c: u32,
    pub d: u64,
    pub e: u128,
    pub f: i8,
    pub g: i16,
    pub h: i32,
    pub i: i64,
    pub j: i128,
    pub k: f32,
    pub l: f64,
    pub m: bool,
    pub n: char,
    pub short: String,
    pub long: String,
    pub bytes: Vec<u8>,
    pub words: Vec<String>,
    pub array: [u16; 3],
    pub maybe: Option<String>,
    pub nothing: Option<String>,
    pub boxed: Box<u32>,
    pub counts: HashMap<String, u32>,
    pub sorted: BTreeMap<String, Vec<u8>>,
    pub tags: HashSet<String>,
    pub numbers: BTreeSet<u32>,
    pub address: Address,
    pub shapes: Vec<Shape>,
    pub pair: (u8, String),
    pub unit: (),
}

fn everything(id: u64) -> Everything {
    Everything {
        id,
        a: 255,
        b: 65_535,
        c: u32::MAX,
        d: u64::MAX,
        e: u128::from(u64::MAX),
        f: i8::MIN,
        g: -2,
        h: i32::MIN,
        i: i64::MIN,
        j: i128::from(i64::MIN),
        k: 0.1,
        l: -0.25,
        m: id.is_multiple_of(2),
        n: 'ß',
        short: "hi".into(),
        long: format!("a longer string for record {id}, out of line"),
        bytes: vec![0, 1, 2, 255],
        words: vec!["one".into(), String::new(), "three".into()],
        array: [1, 2, 3],
        maybe: Some("yes".into()),
        nothing: None,
        boxed: Box::new(7),
        counts: (0..20).map(|i| (format!("k{i}"), i)).collect(),
        sorted: (0..12)
            .map(|i| (format!("s{i:02}"), vec![i as u8; 2]))
            .collect(),
        tags: ["x", "y", "z"].into_iter().map(String::from).collect(),
        numbers: (0..30).collect(),
        address: Address {
            city: "Wellington".into(),
            zip: Some(6011),
        },
        shapes: vec![
            Shape::Empty,
            Shape::Circle(2.5),
            Shape::Pair(3, "p".into()),
            Shape::Rect { w: 4, h: 5 },
        ],
        pair: (9, "nine".into()),
        unit: (),
    }
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    StoredRecord,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[stored(table = "orders")]
pub struct Order {
    #[key]
    pub customer: u64,
    #[key]
    pub number: u32,
    #[index]
    pub status: String,
    #[index(unique)]
    pub code: String,
    pub total: i64,
}

fn order(customer: u64, number: u32) -> Order {
    Order {
        customer,
        number,
        status: ["open", "paid"][(number % 2) as usize].into(),
        code: format!("C{customer}-{number}"),
        total: i64::from(number) * 100 - 50,
    }
}

mod v1 {
    #[derive(
        Debug,
        Clone,
        serde::Serialize,
        storage::StoredRecord,
        rkyv::Archive,
        rkyv::Serialize,
        rkyv::Deserialize,
    )]
    #[stored(table = "docs")]
    pub struct Doc {
        #[key]
        pub name: String,
        pub words: u32,
    }
}

mod v2 {
    #[derive(
        Debug,
        Clone,
        PartialEq,
        serde::Serialize,
        storage::StoredRecord,
        rkyv::Archive,
        rkyv::Serialize,
        rkyv::Deserialize,
    )]
    #[stored(table = "docs", version = 2, migrate_from = super::v1::Doc)]
    pub struct Doc {
        #[key]
        pub name: String,
        pub words: u64,
        pub title: Option<String>,
    }

    impl From<super::v1::Doc> for Doc {
        fn from(old: super::v1::Doc) -> Self {
            Doc {
                name: old.name,
                words: u64::from(old.words),
                title: None,
            }
        }
    }
}

fn inspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_storage-inspect"))
        .args(args)
        .output()
        .expect("run storage-inspect")
}

/// What serde_json writes for `value`, read back: its text, where an `f32`
/// is written in its shortest form (`to_value` would widen it first).
fn serde_text(value: &impl Serialize) -> serde_json::Value {
    serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// The JSON of `value` with every array of a `HashSet` field sorted, since
/// a hash set's order is its own.
fn normalized(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(tags) = value.get_mut("tags").and_then(|t| t.as_array_mut()) {
        tags.sort_by_key(|t| t.to_string());
    }
    value
}

fn written(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("app.redb");
    let storage = Storage::new(&path).unwrap();
    storage
        .records::<Everything>()
        .insert_batch((1..=3).map(everything))
        .unwrap();
    storage
        .records::<Order>()
        .insert_batch((1..=3u64).flat_map(|c| (1..=4u32).map(move |n| order(c, n))))
        .unwrap();
    storage
        .records::<v1::Doc>()
        .insert_batch([
            v1::Doc {
                name: "alpha".into(),
                words: 10,
            },
            v1::Doc {
                name: "beta".into(),
                words: 20,
            },
        ])
        .unwrap();
    storage.migrate::<v2::Doc>().unwrap();
    storage
        .put("settings", "theme", &String::from("dark"))
        .unwrap();
    path
}

#[test]
fn records_of_every_field_type_decode_to_their_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path());
    let file = path.to_str().unwrap();
    let out = inspect(&[file, "dump", "everything", "--json"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (line, id) in lines.iter().zip(1..) {
        assert_eq!(line["key"], serde_json::json!(id));
        let expected = normalized(serde_text(&everything(id)));
        assert_eq!(normalized(line["value"].clone()), expected, "record {id}");
    }
    let got = inspect(&[file, "get", "everything", "2"]);
    assert_eq!(code(&got), 0);
    let value: serde_json::Value = serde_json::from_str(&stdout(&got)).unwrap();
    assert_eq!(normalized(value), normalized(serde_text(&everything(2))));
    assert_eq!(code(&inspect(&[file, "get", "everything", "99"])), 1);
    assert_eq!(
        code(&inspect(&[file, "get", "everything", "not-a-number"])),
        6
    );
}

#[test]
fn composite_keys_ranges_prefixes_and_the_migrated_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path());
    let file = path.to_str().unwrap();
    let keys = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = inspect(args);
        assert_eq!(
            code(&out),
            0,
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["key"].clone())
            .collect()
    };
    let customer_2 = keys(&[file, "dump", "orders", "--prefix", "[2]", "--json"]);
    assert_eq!(
        customer_2,
        (1..=4)
            .map(|n| serde_json::json!([2, n]))
            .collect::<Vec<_>>()
    );
    let ranged = keys(&[
        file, "dump", "orders", "--from", "[1, 3]", "--to", "[2, 2]", "--json",
    ]);
    assert_eq!(
        ranged,
        [
            serde_json::json!([1, 3]),
            serde_json::json!([1, 4]),
            serde_json::json!([2, 1])
        ]
    );
    assert_eq!(
        keys(&[file, "dump", "orders", "--limit", "2", "--json"]).len(),
        2
    );
    let got = inspect(&[file, "get", "orders", "[3, 4]"]);
    let value: serde_json::Value = serde_json::from_str(&stdout(&got)).unwrap();
    assert_eq!(value, serde_json::to_value(order(3, 4)).unwrap());
    // Rust's tuple form works too, for keys and prefixes.
    let tuple = inspect(&[file, "get", "orders", "(3, 4)"]);
    assert_eq!(stdout(&tuple), stdout(&got));
    assert_eq!(
        keys(&[file, "dump", "orders", "--prefix", "(2,)", "--json"]),
        customer_2
    );
    // The migrated table reads as its new version.
    let docs = inspect(&[file, "dump", "docs", "--json"]);
    let first: serde_json::Value =
        serde_json::from_str(stdout(&docs).lines().next().unwrap()).unwrap();
    assert_eq!(first["key"], "alpha");
    assert_eq!(
        first["value"],
        serde_json::json!({"name": "alpha", "words": 10, "title": null})
    );
    let schema = stdout(&inspect(&[file, "schema", "docs"]));
    assert!(schema.contains("version 2"), "{schema}");
    assert!(schema.contains("title: Option<String>"), "{schema}");
    // A table by name: keys as text, values as bytes.
    let settings = stdout(&inspect(&[file, "dump", "settings"]));
    assert!(settings.starts_with("\"theme\": \"0x"), "{settings}");
    // Tables, with their record types, keys and indexes.
    let tables = stdout(&inspect(&[file, "tables"]));
    assert!(
        tables.contains("orders: 12 records of inspect::Order v1, key (customer, number)"),
        "{tables}"
    );
    assert!(
        tables.contains("indexes: status, code (unique)"),
        "{tables}"
    );
    assert!(tables.contains("settings: 1 entries (by name)"), "{tables}");
    assert_eq!(code(&inspect(&[file, "dump", "nonesuch"])), 6);
}

#[test]
fn check_finds_damage_and_dump_goes_on_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path());
    let file = path.to_str().unwrap();
    let clean = inspect(&[file, "check"]);
    assert_eq!(code(&clean), 0, "{}", stdout(&clean));
    assert!(stdout(&clean).contains("table `orders`: 12 records, clean"));
    {
        // Damage: a record's bytes replaced, an index entry re-pointed.
        let storage = Storage::new(&path).unwrap();
        let db = storage.backend().redb().unwrap().database().unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def = redb::TableDefinition::<&[u8], &[u8]>::new("everything");
            let mut table = txn.open_table(def).unwrap();
            table
                .insert(&2u64.to_be_bytes()[..], &b"garbage"[..])
                .unwrap();
            let def = redb::TableDefinition::<&[u8], &[u8]>::new("__index:orders:code");
            let mut index = txn.open_table(def).unwrap();
            let mut entry = storage::KeyBuf::new();
            storage::IntoKeyBytes::write_key_part(&"C1-1", &mut entry);
            let mut owner = 2u64.to_be_bytes().to_vec();
            owner.extend_from_slice(&2u32.to_be_bytes());
            index.insert(entry.as_slice(), &owner[..]).unwrap();
        }
        txn.commit().unwrap();
    }
    let damaged = inspect(&[file, "check"]);
    assert_eq!(code(&damaged), 3, "{}", stdout(&damaged));
    let report = stdout(&damaged);
    assert!(report.contains("1 corrupt records: record 2"), "{report}");
    assert!(
        report.contains("mismatched entries: record [2,2]"),
        "{report}"
    );
    let dump = inspect(&[file, "dump", "everything", "--json"]);
    assert_eq!(code(&dump), 3);
    let lines: Vec<serde_json::Value> = stdout(&dump)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "the dump went on past the damaged record");
    assert!(lines[1].get("error").is_some());
    assert!(lines[2].get("value").is_some());
}

#[test]
fn foreign_damaged_and_locked_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database, just some text").unwrap();
    let out = inspect(&[text.to_str().unwrap(), "tables"]);
    assert_eq!(code(&out), 4, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a redb database"));
    let missing = dir.path().join("missing.redb");
    assert_eq!(code(&inspect(&[missing.to_str().unwrap(), "tables"])), 4);
    assert!(!missing.exists(), "looking creates nothing");
    let path = written(dir.path());
    let held = Storage::new(&path).unwrap();
    let out = inspect(&[path.to_str().unwrap(), "tables"]);
    assert_eq!(code(&out), 5, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already open"));
    drop(held);
    assert_eq!(code(&inspect(&[path.to_str().unwrap(), "tables"])), 0);
}

#[test]
fn compact_backup_and_stats_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path());
    let file = path.to_str().unwrap();
    let backup = dir.path().join("copy.redb");
    let out = inspect(&[file, "backup", backup.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let copy = Storage::new(&backup).unwrap();
    assert_eq!(copy.records::<Order>().len().unwrap(), 12);
    assert!(copy.verify::<Order>().unwrap().is_clean());
    drop(copy);
    let out = inspect(&[file, "compact"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).starts_with("compacted:"));
    let stats = inspect(&[file, "stats", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&stats)).unwrap();
    assert!(json["file_bytes"].as_u64().unwrap() > 0);
    let orders = json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "orders")
        .unwrap();
    assert_eq!(orders["entries"], 12);
    // The allocation, from the checked read-only open; the file unchanged.
    let allocated = json["allocated_bytes"].as_u64().unwrap();
    assert!(allocated > 0 && allocated <= json["file_bytes"].as_u64().unwrap());
    let before = std::fs::read(&path).unwrap();
    let text = stdout(&inspect(&[file, "stats"]));
    assert!(text.contains("bytes allocated"), "{text}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "stats changed the file"
    );
}

#[test]
fn an_etcd_namespace_reads_like_a_file() {
    let Some(cluster) = etcd::Cluster::shared() else {
        return;
    };
    let namespace = etcd::namespace("inspect");
    let storage = cluster.storage(&namespace);
    storage
        .records::<Order>()
        .insert_batch((1..=3u32).map(|n| order(7, n)))
        .unwrap();
    let mut args = vec!["--namespace", namespace.as_str()];
    for endpoint in &cluster.endpoints {
        args.extend(["--etcd", endpoint.as_str()]);
    }
    let mut dump = args.clone();
    dump.extend(["dump", "orders", "--json"]);
    let out = inspect(&dump);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let keys: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["key"].clone())
        .collect();
    assert_eq!(
        keys,
        [
            serde_json::json!([7, 1]),
            serde_json::json!([7, 2]),
            serde_json::json!([7, 3])
        ]
    );
    let mut check = args.clone();
    check.push("check");
    assert_eq!(code(&inspect(&check)), 0);
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "posts", index(by = initial -> String))]
pub struct Post {
    #[key]
    pub id: u32,
    pub title: String,
    #[index(each)]
    pub tags: Vec<String>,
    #[index(each)]
    pub codes: Vec<u8>,
}

impl Post {
    pub fn initial(&self) -> String {
        self.title.chars().take(1).collect()
    }
}

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[stored(table = "slugs", key(by = slug -> String))]
pub struct Slugged {
    pub title: String,
}

impl Slugged {
    pub fn slug(&self) -> String {
        self.title.to_lowercase()
    }
}

#[test]
fn each_and_computed_indexes_are_listed_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("posts.redb");
    {
        let storage = Storage::new(&path).unwrap();
        storage
            .records::<Post>()
            .insert_batch([
                Post {
                    id: 1,
                    title: "Rust".into(),
                    tags: vec!["a".into(), "b".into(), "a".into()],
                    codes: vec![3, 1],
                },
                Post {
                    id: 2,
                    title: "Go".into(),
                    tags: vec![],
                    codes: vec![1],
                },
            ])
            .unwrap();
    }
    Storage::new(&path)
        .unwrap()
        .records::<Slugged>()
        .insert(&Slugged {
            title: "Hello".into(),
        })
        .unwrap();
    let file = path.to_str().unwrap();
    // A computed key decodes by its stored type.
    let dump = stdout(&inspect(&[file, "dump", "slugs"]));
    assert_eq!(dump.trim(), r#""hello": {"title":"Hello"}"#);
    let got = inspect(&[file, "get", "slugs", "hello"]);
    assert_eq!(code(&got), 0, "{}", String::from_utf8_lossy(&got.stderr));
    let schema = stdout(&inspect(&[file, "schema", "posts"]));
    assert!(
        schema.contains("index `tags` on (tags), one entry per element"),
        "{schema}"
    );
    assert!(schema.contains("index `initial` by initial()"), "{schema}");
    let check = inspect(&[file, "check"]);
    assert_eq!(code(&check), 0, "{}", stdout(&check));
    // An entry for an element the record does not have is found.
    {
        let storage = Storage::new(&path).unwrap();
        let db = storage.backend().redb().unwrap().database().unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def = redb::TableDefinition::<&[u8], &[u8]>::new("__index:posts:tags");
            let mut index = txn.open_table(def).unwrap();
            let mut entry = storage::KeyBuf::new();
            storage::IntoKeyBytes::write_key_part(&"zzz", &mut entry);
            entry.extend_from_slice(&2u32.to_be_bytes());
            index
                .insert(entry.as_slice(), &2u32.to_be_bytes()[..])
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let damaged = inspect(&[file, "check"]);
    assert_eq!(code(&damaged), 3, "{}", stdout(&damaged));
    assert!(
        stdout(&damaged).contains("mismatched entries: record 2"),
        "{}",
        stdout(&damaged)
    );
}

/// Set to a file for the child below: it writes, and exits without closing.
const CRASH_CHILD_ENV: &str = "STORAGE_INSPECT_CRASH_FILE";

#[test]
fn crashed_writer_child() {
    let Ok(path) = std::env::var(CRASH_CHILD_ENV) else {
        return; // Only the test below runs this, in a child process.
    };
    let storage = Storage::new(&path).unwrap();
    storage
        .records::<Order>()
        .insert_batch((1..=20).map(|n| order(n, 1)))
        .unwrap();
    // The database is never closed: the file is left as a crash leaves it.
    std::process::exit(0);
}

#[test]
fn damaged_and_crashed_files_are_checked_read_only_and_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    // A file a crashed writer left needs recovery: done in memory.
    let crashed = dir.path().join("crashed.redb");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["crashed_writer_child", "--exact", "--test-threads=1"])
        .env(CRASH_CHILD_ENV, &crashed)
        .output()
        .unwrap();
    assert!(child.status.success(), "{child:?}");
    let before = std::fs::read(&crashed).unwrap();
    let out = inspect(&[crashed.to_str().unwrap(), "check"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("table `orders`: 20 records, clean"));
    assert_eq!(std::fs::read(&crashed).unwrap(), before, "the file changed");

    // Bytes flipped anywhere: damage found or a clean read, never a panic.
    let clean = written(dir.path());
    let original = std::fs::read(&clean).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut damaged_found = 0;
    for case in 0..40 {
        let mut bytes = original.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] ^= 1 << (next() % 8);
        }
        let path = dir.path().join(format!("damaged-{case}.redb"));
        std::fs::write(&path, &bytes).unwrap();
        for command in ["check", "tables", "stats"] {
            let out = inspect(&[path.to_str().unwrap(), command]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                [0, 3, 4].contains(&code(&out)) && !stderr.contains("panicked"),
                "case {case} {command}: exit {}: {stderr}",
                code(&out)
            );
            damaged_found += u32::from(code(&out) == 3);
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "case {case}: the file changed"
        );
    }
    assert!(
        damaged_found > 0,
        "no case found damage: the test flips nothing"
    );
}

#[test]
fn odd_targets_and_a_full_output_get_clear_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    // `compact` does not turn an empty file into a database.
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(code(&inspect(&[empty.to_str().unwrap(), "compact"])), 4);
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    // A backup onto an existing file fails as a backup (7), not as the source.
    let path = written(dir.path());
    let file = path.to_str().unwrap();
    let taken = dir.path().join("taken");
    std::fs::write(&taken, b"mine").unwrap();
    let out = inspect(&[file, "backup", taken.to_str().unwrap()]);
    assert_eq!(code(&out), 7, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&taken).unwrap(), b"mine");
    // Output that cannot be written is an error, not a silent success.
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let out = Command::new(env!("CARGO_BIN_EXE_storage-inspect"))
            .args([file, "dump", "orders"])
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(code(&out), 7, "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("writing the output"));
    }
}
