//! Fields the accessors treat specially, and an index on a non-leading key field.

#![deny(warnings)]

use storage::{Storage, StoredRecord};

#[derive(StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Line {
    #[key]
    pub order: u64,
    #[key]
    #[index]
    pub r#type: u32,
    pub label: Box<str>,
    pub codes: Box<[u16]>,
    pub boxed: Box<u8>,
    #[rkyv(with = rkyv::with::AsBox)]
    pub note: String,
}

fn main() -> storage::Result<()> {
    let storage = Storage::in_memory()?;
    let lines = storage.records::<Line>();
    let line = Line {
        order: 1,
        r#type: 7,
        label: "hello".into(),
        codes: vec![1, 2].into_boxed_slice(),
        boxed: Box::new(3),
        note: "boxed note".into(),
    };
    lines.insert(&line)?;
    let (label, codes, boxed, kind) = lines
        .get((1, 7), |l| (l.label().get().to_owned(), l.codes().len(), l.boxed(), l.r#type()))?
        .expect("stored");
    assert_eq!((label.as_str(), codes, boxed, kind), ("hello", 2, 3, 7));
    assert_eq!(lines.by_type(7, |k, _| Some(*k))?, [(1, 7)]);
    Ok(())
}
