//! Generated code names nothing the user's scope could shadow, and is
//! warning-free under `#![deny(warnings)]`.

#![deny(warnings)]

mod shadowing {
    #![allow(dead_code)]
    struct Option;
    struct Result;
    struct Vec;
    struct String;
    struct Box;
    struct Clone;
    struct Iterator;

    /// A nested type in a module that shadows the prelude's names.
    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    pub enum Mood {
        Calm,
        Cross { reason: std::string::String },
    }

    /// A record in a module that shadows the prelude's names.
    #[derive(storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    pub struct Shadowed {
        #[key]
        pub id: u64,
        #[key]
        pub part: std::string::String,
        pub tags: std::vec::Vec<std::string::String>,
        pub nick: std::option::Option<std::string::String>,
        pub boxed: std::boxed::Box<u32>,
        pub mood: Mood,
    }
}

#[no_implicit_prelude]
mod no_prelude {
    // rkyv's own derives (not storage's) name `Sized` unqualified.
    use ::core::marker::Sized;

    /// A nested type in a module without the prelude.
    #[derive(::storage::StoredType, ::rkyv::Archive, ::rkyv::Serialize, ::rkyv::Deserialize)]
    pub struct Point(pub i32, pub i32);

    /// A record in a module without the prelude.
    #[derive(::storage::StoredRecord, ::rkyv::Archive, ::rkyv::Serialize, ::rkyv::Deserialize)]
    pub struct Bare {
        #[key]
        pub id: u64,
        pub name: ::std::string::String,
        pub scores: ::std::vec::Vec<u16>,
        pub maybe: ::std::option::Option<i8>,
        pub at: Point,
    }
}

fn main() -> storage::Result<()> {
    let storage = storage::Storage::in_memory()?;
    storage.records::<shadowing::Shadowed>().insert(&shadowing::Shadowed {
        id: 1,
        part: "a".into(),
        tags: vec!["t".into()],
        nick: None,
        boxed: Box::new(5),
        mood: shadowing::Mood::Cross { reason: "x".into() },
    })?;
    let boxed = storage.records::<shadowing::Shadowed>().get((1, "a"), |s| s.boxed())?;
    assert_eq!(boxed, Some(5));
    storage.records::<no_prelude::Bare>().insert(&no_prelude::Bare {
        id: 2,
        name: "b".into(),
        scores: vec![1, 2],
        maybe: Some(-1),
        at: no_prelude::Point(1, 2),
    })?;
    let sum = storage.records::<no_prelude::Bare>().get(2, |b| b.scores().map(u32::from).sum::<u32>())?;
    assert_eq!(sum, Some(3));
    Ok(())
}
