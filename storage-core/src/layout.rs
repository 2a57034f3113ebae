//! Type layouts: what the archived bytes of a record hold, down to
//! primitives.
//!
//! rkyv archives are not self-describing, so the stored schema describes
//! them: every nested struct with its fields in order, every enum with its
//! variants in order (and their tags and fields), type aliases resolved to
//! what they name. [`StoredType`] gives a type's [`Layout`]; it is
//! implemented here for the standard types a record can hold and derived
//! with `#[derive(StoredType)]` for nested structs and enums (and by
//! `#[derive(StoredRecord)]` for records). The layout is stored as JSON in
//! the schema row of its table (see the README's "Stored schema format").
//!
//! Collections of zero-sized types (`Vec<()>`, a set of a unit struct) are
//! refused at compile time: a few stored bytes could claim billions of such
//! elements. With every element at least one byte, validating and
//! deserializing a record costs at most a fixed multiple of its size.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rkyv::Archive;

/// The archived layout of a type, as stored with a table.
///
/// In JSON, a layout is an object whose `"type"` names its kind (`"u64"`,
/// `"string"`, `"option"`, `"struct"`, ..), with the kind's fields beside it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Layout {
    /// `()`.
    Unit,
    /// `bool`: one byte, 0 or 1.
    Bool,
    /// `u8`.
    U8,
    /// `u16`, little-endian.
    U16,
    /// `u32`, little-endian.
    U32,
    /// `u64`, little-endian.
    U64,
    /// `u128`, little-endian.
    U128,
    /// `i8`.
    I8,
    /// `i16`, little-endian.
    I16,
    /// `i32`, little-endian.
    I32,
    /// `i64`, little-endian.
    I64,
    /// `i128`, little-endian.
    I128,
    /// `f32`, little-endian.
    F32,
    /// `f64`, little-endian.
    F64,
    /// `char`: a `u32` scalar value.
    Char,
    /// `usize`: archived in 32 bits (rkyv's default width).
    Usize,
    /// `isize`: archived in 32 bits.
    Isize,
    /// `String`: rkyv's `ArchivedString`. (The variants are not named
    /// after the standard types, so that compiler messages keep calling
    /// those by their short names.)
    #[serde(rename = "string")]
    Text,
    /// `str` behind a `Box`.
    Str,
    /// `Option<T>`: a tag byte (0 none, 1 some), then the value.
    #[serde(rename = "option")]
    Optional {
        /// The layout of the value.
        some: Box<Layout>,
    },
    /// `Vec<T>`: a relative pointer and a length.
    #[serde(rename = "vec")]
    List {
        /// The layout of each element.
        item: Box<Layout>,
    },
    /// `[T]` behind a `Box`.
    Slice {
        /// The layout of each element.
        item: Box<Layout>,
    },
    /// `[T; N]`: `N` elements in place.
    Array {
        /// The layout of each element.
        item: Box<Layout>,
        /// `N`.
        len: usize,
    },
    /// `Box<T>`: a relative pointer to the value.
    #[serde(rename = "box")]
    Boxed {
        /// The layout of the value.
        item: Box<Layout>,
    },
    /// `BTreeMap<K, V>` (`ordered`) or `HashMap<K, V>`.
    Map {
        /// `BTreeMap` rather than `HashMap`.
        ordered: bool,
        /// The layout of the keys.
        key: Box<Layout>,
        /// The layout of the values.
        value: Box<Layout>,
    },
    /// `BTreeSet<T>` (`ordered`) or `HashSet<T>`.
    Set {
        /// `BTreeSet` rather than `HashSet`.
        ordered: bool,
        /// The layout of the elements.
        item: Box<Layout>,
    },
    /// A tuple: its elements in order, laid out like a `#[repr(C)]` struct.
    Tuple {
        /// The layouts of the elements.
        items: Vec<Layout>,
    },
    /// A struct: its archived form is `#[repr(C)]`, fields in order.
    Struct {
        /// The struct's name (not compared: renaming a type keeps its bytes).
        #[serde(rename = "type_name")]
        name: String,
        /// The fields in order; tuple structs name them `0`, `1`, ...
        fields: Vec<Field>,
        /// `size_of` the archived struct.
        size: usize,
        /// `align_of` the archived struct.
        align: usize,
    },
    /// An enum: its archived form is `#[repr(u8)]`, a tag byte then the
    /// variant's fields.
    Enum {
        /// The enum's name (not compared).
        #[serde(rename = "type_name")]
        name: String,
        /// The variants in order.
        variants: Vec<Variant>,
        /// `size_of` the archived enum.
        size: usize,
        /// `align_of` the archived enum.
        align: usize,
    },
    /// A type being described further up: the layout is recursive.
    Ref {
        /// The type's name.
        #[serde(rename = "type_name")]
        name: String,
        /// Which enclosing struct or enum it is: 1 for the innermost.
        up: usize,
    },
    /// A field archived through `#[rkyv(with = ..)]`.
    Opaque {
        /// What archives it.
        #[serde(rename = "type_name")]
        name: String,
        /// The field's own type as written, compared where `of` is unknown.
        field: String,
        /// The layout of the field's own type, where it has [`StoredType`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        of: Option<Box<Layout>>,
        /// `size_of` the archived value.
        size: usize,
        /// `align_of` the archived value.
        align: usize,
    },
}

/// A named field of a struct or enum variant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Field {
    /// The field's name (`0`, `1`, .. in a tuple struct or variant).
    pub name: String,
    /// Its layout.
    #[serde(flatten)]
    pub layout: Layout,
}

/// One variant of an enum.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Variant {
    /// The variant's name.
    pub name: String,
    /// Its tag byte.
    pub tag: u8,
    /// Its fields, none for a unit variant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
}

impl Field {
    /// A field named `name` with `layout`.
    pub fn new(name: impl Into<String>, layout: Layout) -> Self {
        Field {
            name: name.into(),
            layout,
        }
    }
}

/// A type whose archived layout can be described: every field type of a
/// record, down to primitives.
///
/// Implemented for integers, floats, `bool`, `char`, `()`, `String`,
/// `Option`, `Vec`, `Box`, arrays, tuples, `HashMap`, `HashSet`,
/// `BTreeMap` and `BTreeSet`; derive it with `#[derive(StoredType)]` for a
/// struct or enum of your own that a record holds.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no stored layout",
    label = "a record's fields need `StoredType`, so that their layout is stored with the table",
    note = "add `#[derive(storage::StoredType)]` to `{Self}`, next to its rkyv derives"
)]
pub trait StoredType {
    /// The layout of the archived form of `Self`.
    fn layout(describer: &mut Describer) -> Layout;
}

/// Carries what is being described, so that a recursive type describes
/// itself as a [`Layout::Ref`] instead of without end.
#[derive(Debug, Default)]
pub struct Describer {
    /// The types being described, by their full type names.
    stack: Vec<&'static str>,
}

impl Describer {
    /// The layout of `T`.
    pub fn layout_of<T: StoredType + ?Sized>() -> Layout {
        T::layout(&mut Describer::default())
    }

    /// Describes the struct or enum whose full type name is `key` and whose
    /// name is `name` with `describe`, or as a [`Layout::Ref`] if it is
    /// already being described.
    pub fn named(
        &mut self,
        key: &'static str,
        name: &str,
        describe: impl FnOnce(&mut Self) -> Layout,
    ) -> Layout {
        if let Some(at) = self.stack.iter().rposition(|k| *k == key) {
            return Layout::Ref {
                name: name.to_owned(),
                up: self.stack.len() - at,
            };
        }
        self.stack.push(key);
        let layout = describe(self);
        self.stack.pop();
        layout
    }
}

/// For the derive: the layout of a field's type under `#[rkyv(with = ..)]`
/// where the type has [`StoredType`], else `None` (chosen by method
/// resolution: `Known` applies to `&Probe<T>` itself, `Unknown` one
/// reference further).
#[doc(hidden)]
pub mod __probe {
    use super::{Describer, Layout, StoredType};

    pub struct Probe<T: ?Sized>(core::marker::PhantomData<fn() -> Box<T>>);

    impl<T: ?Sized> Probe<T> {
        #[allow(clippy::new_without_default)]
        pub fn new() -> Self {
            Probe(core::marker::PhantomData)
        }
    }

    pub trait Known {
        fn of(&self, describer: &mut Describer) -> Option<Box<Layout>>;
    }

    impl<T: StoredType + ?Sized> Known for Probe<T> {
        fn of(&self, describer: &mut Describer) -> Option<Box<Layout>> {
            Some(Box::new(T::layout(describer)))
        }
    }

    pub trait Unknown {
        fn of(&self, describer: &mut Describer) -> Option<Box<Layout>>;
    }

    impl<T: ?Sized> Unknown for &Probe<T> {
        fn of(&self, _: &mut Describer) -> Option<Box<Layout>> {
            None
        }
    }
}

macro_rules! primitives {
    ($($ty:ty => $layout:ident,)*) => {$(
        impl StoredType for $ty {
            fn layout(_: &mut Describer) -> Layout {
                Layout::$layout
            }
        }
    )*};
}

primitives! {
    () => Unit,
    bool => Bool,
    u8 => U8,
    u16 => U16,
    u32 => U32,
    u64 => U64,
    u128 => U128,
    i8 => I8,
    i16 => I16,
    i32 => I32,
    i64 => I64,
    i128 => I128,
    f32 => F32,
    f64 => F64,
    char => Char,
    usize => Usize,
    isize => Isize,
    String => Text,
    str => Str,
}

/// Refuses, at compile time, a collection of a zero-sized type.
fn not_zero_sized<T: Archive>() {
    const {
        assert!(
            size_of::<T::Archived>() != 0,
            "a collection of a zero-sized type is refused: a few stored bytes could claim billions of its elements; store a count instead"
        )
    }
}

impl<T: StoredType> StoredType for Option<T> {
    fn layout(d: &mut Describer) -> Layout {
        Layout::Optional {
            some: Box::new(T::layout(d)),
        }
    }
}

impl<T: StoredType + Archive> StoredType for Vec<T> {
    fn layout(d: &mut Describer) -> Layout {
        not_zero_sized::<T>();
        Layout::List {
            item: Box::new(T::layout(d)),
        }
    }
}

impl<T: StoredType + Archive> StoredType for [T] {
    fn layout(d: &mut Describer) -> Layout {
        not_zero_sized::<T>();
        Layout::Slice {
            item: Box::new(T::layout(d)),
        }
    }
}

impl<T: StoredType, const N: usize> StoredType for [T; N] {
    fn layout(d: &mut Describer) -> Layout {
        Layout::Array {
            item: Box::new(T::layout(d)),
            len: N,
        }
    }
}

impl<T: StoredType + ?Sized> StoredType for Box<T> {
    fn layout(d: &mut Describer) -> Layout {
        Layout::Boxed {
            item: Box::new(T::layout(d)),
        }
    }
}

impl<K: StoredType + Archive, V: StoredType + Archive, S> StoredType for HashMap<K, V, S> {
    fn layout(d: &mut Describer) -> Layout {
        not_zero_sized::<(K, V)>();
        Layout::Map {
            ordered: false,
            key: Box::new(K::layout(d)),
            value: Box::new(V::layout(d)),
        }
    }
}

impl<K: StoredType + Archive, V: StoredType + Archive> StoredType for BTreeMap<K, V> {
    fn layout(d: &mut Describer) -> Layout {
        not_zero_sized::<(K, V)>();
        Layout::Map {
            ordered: true,
            key: Box::new(K::layout(d)),
            value: Box::new(V::layout(d)),
        }
    }
}

impl<T: StoredType + Archive, S> StoredType for HashSet<T, S> {
    fn layout(d: &mut Describer) -> Layout {
        not_zero_sized::<T>();
        Layout::Set {
            ordered: false,
            item: Box::new(T::layout(d)),
        }
    }
}

impl<T: StoredType + Archive> StoredType for BTreeSet<T> {
    fn layout(d: &mut Describer) -> Layout {
        not_zero_sized::<T>();
        Layout::Set {
            ordered: true,
            item: Box::new(T::layout(d)),
        }
    }
}

macro_rules! tuples {
    ($(($($t:ident),+);)*) => {$(
        impl<$($t: StoredType),+> StoredType for ($($t,)+) {
            fn layout(d: &mut Describer) -> Layout {
                Layout::Tuple {
                    items: vec![$($t::layout(d)),+],
                }
            }
        }
    )*};
}

tuples! {
    (A);
    (A, B);
    (A, B, C);
    (A, B, C, D);
    (A, B, C, D, E);
    (A, B, C, D, E, F);
}

/// Where two layouts first differ, for a schema mismatch: the path to the
/// place and what each side has there. `None` if they are the same (names of
/// structs and enums aside).
pub(crate) fn first_difference(stored: &Layout, expected: &Layout) -> Option<String> {
    difference(stored, expected, "")
}

fn at(path: &str, what: String) -> Option<String> {
    if path.is_empty() {
        Some(what)
    } else {
        Some(format!("at `{path}`: {what}"))
    }
}

fn join(path: &str, part: &str) -> String {
    if path.is_empty() {
        part.to_owned()
    } else {
        format!("{path}.{part}")
    }
}

fn fields_difference(stored: &[Field], expected: &[Field], path: &str) -> Option<String> {
    for (i, (s, e)) in stored.iter().zip(expected).enumerate() {
        if s.name != e.name {
            return at(
                path,
                format!(
                    "field {i} is `{}` in the stored layout, `{}` here",
                    s.name, e.name
                ),
            );
        }
        if let Some(d) = difference(&s.layout, &e.layout, &join(path, &s.name)) {
            return Some(d);
        }
    }
    if stored.len() != expected.len() {
        let names = |fields: &[Field]| {
            fields
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return at(
            path,
            format!(
                "the stored layout has fields ({}), this one ({})",
                names(stored),
                names(expected)
            ),
        );
    }
    None
}

fn difference(stored: &Layout, expected: &Layout, path: &str) -> Option<String> {
    use Layout as L;
    let boxed = |s: &Layout, e: &Layout, part: &str| difference(s, e, &join(path, part));
    match (stored, expected) {
        (L::Optional { some: s }, L::Optional { some: e }) => boxed(s, e, "some"),
        (L::List { item: s }, L::List { item: e })
        | (L::Slice { item: s }, L::Slice { item: e })
        | (L::Boxed { item: s }, L::Boxed { item: e }) => boxed(s, e, "[]"),
        (L::Array { item: s, len: a }, L::Array { item: e, len: b }) => {
            if a != b {
                return at(path, format!("an array of {a} stored, of {b} here"));
            }
            boxed(s, e, "[]")
        }
        (
            L::Map {
                ordered: a,
                key: sk,
                value: sv,
            },
            L::Map {
                ordered: b,
                key: ek,
                value: ev,
            },
        ) if a == b => boxed(sk, ek, "key").or_else(|| boxed(sv, ev, "value")),
        (
            L::Set {
                ordered: a,
                item: s,
            },
            L::Set {
                ordered: b,
                item: e,
            },
        ) if a == b => boxed(s, e, "[]"),
        (L::Tuple { items: s }, L::Tuple { items: e }) => {
            if s.len() != e.len() {
                return at(
                    path,
                    format!("a tuple of {} stored, of {} here", s.len(), e.len()),
                );
            }
            s.iter()
                .zip(e)
                .enumerate()
                .find_map(|(i, (s, e))| boxed(s, e, &i.to_string()))
        }
        (
            L::Struct {
                fields: sf,
                size: ss,
                align: sa,
                ..
            },
            L::Struct {
                fields: ef,
                size: es,
                align: ea,
                ..
            },
        ) => fields_difference(sf, ef, path).or_else(|| {
            (ss != es || sa != ea)
                .then(|| format!("archived size and alignment {ss}/{sa} stored, {es}/{ea} here"))
                .and_then(|what| at(path, what))
        }),
        (
            L::Enum {
                variants: sv,
                size: ss,
                align: sa,
                ..
            },
            L::Enum {
                variants: ev,
                size: es,
                align: ea,
                ..
            },
        ) => {
            for (i, (s, e)) in sv.iter().zip(ev).enumerate() {
                if s.name != e.name || s.tag != e.tag {
                    return at(
                        path,
                        format!(
                            "variant {i} is `{}` (tag {}) in the stored layout, `{}` (tag {}) here",
                            s.name, s.tag, e.name, e.tag
                        ),
                    );
                }
                if let Some(d) = fields_difference(&s.fields, &e.fields, &join(path, &s.name)) {
                    return Some(d);
                }
            }
            if sv.len() != ev.len() {
                return at(
                    path,
                    format!("{} variants stored, {} here", sv.len(), ev.len()),
                );
            }
            (ss != es || sa != ea)
                .then(|| format!("archived size and alignment {ss}/{sa} stored, {es}/{ea} here"))
                .and_then(|what| at(path, what))
        }
        (L::Ref { name: a, up: sa }, L::Ref { name: b, up: ea }) if a == b => (sa != ea)
            .then(|| {
                format!("a reference to the `{a}` {sa} level(s) up stored, {ea} level(s) up here")
            })
            .and_then(|what| at(path, what)),
        (
            L::Opaque {
                name: a,
                field: sf,
                of: so,
                size: ss,
                align: sa,
            },
            L::Opaque {
                name: b,
                field: ef,
                of: eo,
                size: es,
                align: ea,
            },
        ) if a == b && ss == es && sa == ea => match (so, eo) {
            (Some(so), Some(eo)) => difference(so, eo, path),
            _ if sf == ef => None,
            _ => at(
                path,
                format!("`{sf}` stored, `{ef}` here, archived with `{a}`"),
            ),
        },
        (s, e) if s == e => None,
        (s, e) => at(path, format!("`{}` stored, `{}` here", Short(s), Short(e))),
    }
}

/// A layout shown in one line, nested types by name.
struct Short<'a>(&'a Layout);

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Layout::Struct { name, .. } => write!(f, "struct {name}"),
            Layout::Enum { name, .. } => write!(f, "enum {name}"),
            other => write!(f, "{other}"),
        }
    }
}

fn fields(f: &mut fmt::Formatter<'_>, fields: &[Field]) -> fmt::Result {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}: {}", field.name, field.layout)?;
    }
    Ok(())
}

/// Rust-like: `struct User { id: u64, tags: Vec<String> }`.
impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Layout as L;
        let name = match self {
            L::Unit => "()",
            L::Bool => "bool",
            L::U8 => "u8",
            L::U16 => "u16",
            L::U32 => "u32",
            L::U64 => "u64",
            L::U128 => "u128",
            L::I8 => "i8",
            L::I16 => "i16",
            L::I32 => "i32",
            L::I64 => "i64",
            L::I128 => "i128",
            L::F32 => "f32",
            L::F64 => "f64",
            L::Char => "char",
            L::Usize => "usize",
            L::Isize => "isize",
            L::Text => "String",
            L::Str => "str",
            L::Optional { some } => return write!(f, "Option<{some}>"),
            L::List { item } => return write!(f, "Vec<{item}>"),
            L::Slice { item } => return write!(f, "[{item}]"),
            L::Array { item, len } => return write!(f, "[{item}; {len}]"),
            L::Boxed { item } => return write!(f, "Box<{item}>"),
            L::Map {
                ordered,
                key,
                value,
            } => {
                let kind = if *ordered { "BTreeMap" } else { "HashMap" };
                return write!(f, "{kind}<{key}, {value}>");
            }
            L::Set { ordered, item } => {
                let kind = if *ordered { "BTreeSet" } else { "HashSet" };
                return write!(f, "{kind}<{item}>");
            }
            L::Tuple { items } => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                return f.write_str(if items.len() == 1 { ",)" } else { ")" });
            }
            L::Struct {
                name, fields: list, ..
            } => {
                write!(f, "struct {name} {{ ")?;
                fields(f, list)?;
                return f.write_str(" }");
            }
            L::Enum { name, variants, .. } => {
                write!(f, "enum {name} {{ ")?;
                for (i, variant) in variants.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&variant.name)?;
                    if !variant.fields.is_empty() {
                        f.write_str(" { ")?;
                        fields(f, &variant.fields)?;
                        f.write_str(" }")?;
                    }
                }
                return f.write_str(" }");
            }
            L::Ref { name, .. } => name,
            L::Opaque { name, field, .. } => return write!(f, "<{field} with {name}>"),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_types_describe_themselves() {
        let layout =
            Describer::layout_of::<(Vec<Option<u32>>, HashMap<String, [u8; 4]>, Box<str>)>();
        assert_eq!(
            layout.to_string(),
            "(Vec<Option<u32>>, HashMap<String, [u8; 4]>, Box<str>)"
        );
        let json = serde_json::to_string(&layout).unwrap();
        assert_eq!(serde_json::from_str::<Layout>(&json).unwrap(), layout);
    }

    #[test]
    fn differences_name_the_place() {
        let a = Layout::Struct {
            name: "User".into(),
            fields: vec![
                Field::new("id", Layout::U64),
                Field::new("tags", Describer::layout_of::<Vec<String>>()),
            ],
            size: 16,
            align: 8,
        };
        let mut b = a.clone();
        if let Layout::Struct { fields, name, .. } = &mut b {
            fields[1] = Field::new("tags", Describer::layout_of::<Vec<u32>>());
            *name = "Renamed".into();
        }
        assert_eq!(
            first_difference(&a, &b).as_deref(),
            Some("at `tags.[]`: `String` stored, `u32` here")
        );
        let mut c = a.clone();
        if let Layout::Struct { name, .. } = &mut c {
            *name = "Renamed".into();
        }
        assert_eq!(
            first_difference(&a, &c),
            None,
            "names of types are not compared"
        );
    }
}
