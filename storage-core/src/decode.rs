//! Records decoded without their Rust types: a record's bytes (an rkyv
//! archive) read through the [`Layout`] stored with its table into a
//! [`Value`] tree, and that tree as JSON.
//!
//! The decoder reads little-endian bytes at explicit offsets, so the buffer
//! it is given needs no alignment; offsets are checked for the alignment rkyv
//! requires relative to the start of the buffer (where rkyv's own aligned
//! copy of it starts). It checks what rkyv's validation checks, in the same
//! order: that every value lies in the buffer at an aligned offset, that
//! every relative pointer claims a subtree of its own (before the value that
//! points to it, after what was claimed before: rkyv's subtree ranges, which
//! also keep the work linear in the size of the record), UTF-8, bool and
//! char values, enum and option tags, and the structure of hash tables and
//! B-trees. Damaged or hostile bytes are a [`DecodeError`] naming the place,
//! never a panic. Nesting is capped at [`MAX_DEPTH`] levels, and the number
//! of values at a multiple of the record's size.
//!
//! What is not decoded: a field archived `#[rkyv(with = ..)]`
//! ([`Layout::Opaque`]) is handed back as its raw archived bytes, since the
//! wrapper decides its archived form (the `of` layout describes the field's
//! own type, not what the wrapper archives); and a zero-sized element type
//! in a `Vec` or boxed slice (refused by `StoredType`) is an error.

use core::fmt;

use crate::layout::{Field, Layout, Variant};

/// How deeply values may nest: a field, an element, what an option or a
/// box holds is each a level below its container, and so is a B-tree node
/// below its parent (a [`Layout::Ref`] adds no level).
pub(crate) const MAX_DEPTH: usize = 128;

/// How many values a record may decode to per byte of it, beyond
/// [`BASE_VALUES`]: a bound on the work for layouts with zero-sized parts.
const VALUES_PER_BYTE: usize = 32;

/// How many values any record may decode to, whatever its size.
const BASE_VALUES: usize = 1 << 16;

/// Entries per node of rkyv's archived B-trees (its default `E`).
const BTREE_ENTRIES: usize = 5;

/// rkyv's `MAX_GROUP_WIDTH`: control bytes of a hash table come in groups
/// of this many.
const GROUP_WIDTH: usize = 16;

/// A value decoded from its stored layout.
#[derive(Debug, Clone, PartialEq)]
#[allow(dead_code)]
pub(crate) enum Value {
    /// `()`.
    Unit,
    /// `bool`.
    Bool(bool),
    /// `u8` to `u64`, and `usize`.
    Unsigned(u64),
    /// `i8` to `i64`, and `isize`.
    Signed(i64),
    /// `u128`.
    U128(u128),
    /// `i128`.
    I128(i128),
    /// `f32` (widened) or `f64`.
    Float(f64),
    /// `f32`, kept as it is: JSON shows it in its shortest form.
    F32(f32),
    /// `char`.
    Char(char),
    /// `String` or `Box<str>`.
    Text(String),
    /// `Vec<u8>`, `[u8; N]` and `Box<[u8]>`, as bytes.
    Bytes(Vec<u8>),
    /// `Vec`, arrays, boxed slices and sets (in their archived order).
    List(Vec<Value>),
    /// `Option`.
    Optional(Option<Box<Value>>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A struct: its fields by name, in order.
    Struct(Vec<(String, Value)>),
    /// An enum: the variant's name and its fields (`0`, `1`, .. for a tuple
    /// variant, none for a unit variant).
    Enum {
        /// The variant's name.
        variant: String,
        /// The variant's fields by name, in order.
        fields: Vec<(String, Value)>,
    },
    /// A map, its entries in their archived order (sorted for a `BTreeMap`).
    Map(Vec<(Value, Value)>),
    /// A field archived `with` a wrapper: its raw archived bytes.
    Opaque(Vec<u8>),
}

/// Why bytes could not be decoded, and where.
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) struct DecodeError {
    /// Where in the value: `address.city`, `tags.[3]`; empty at the root.
    pub(crate) path: String,
    /// What is wrong there.
    pub(crate) what: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.what)
        } else {
            write!(f, "at `{}`: {}", self.path, self.what)
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes `bytes`, a whole rkyv archive whose root (at its end) has
/// `layout`, validating everything it reads.
#[allow(dead_code)]
pub(crate) fn decode(layout: &Layout, bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut decoder = Decoder::new(bytes);
    let shape = decoder.shape(layout, 0)?;
    if bytes.len() < shape.size {
        return Err(decoder.err(format!(
            "the record is {} bytes, shorter than its root ({} bytes)",
            bytes.len(),
            shape.size
        )));
    }
    let pos = bytes.len() - shape.size;
    decoder.in_subtree(pos, shape.size, shape.align, |d| d.value(layout, pos))
}

/// Decoded value as JSON: numbers, strings, null for None, objects for
/// structs, arrays for lists/tuples/sets, externally tagged enums like serde
/// (`"Unit"` or `{"Variant": {..}}`), maps as objects when every key is a
/// Text else as arrays of [key, value] pairs, bytes as arrays of numbers,
/// opaque as {"opaque": "<hex>"}, non-finite floats as strings
/// "NaN"/"inf"/"-inf", and 128-bit integers beyond 64 bits as strings of
/// their digits.
///
/// Objects are `serde_json` maps: their keys come sorted, not in field
/// order, unless `serde_json`'s `preserve_order` feature is enabled (it is
/// not in this workspace). Of duplicate keys in a damaged map, the last
/// stays.
#[allow(dead_code)]
pub(crate) fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Unit => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Unsigned(n) => J::from(*n),
        Value::Signed(n) => J::from(*n),
        Value::U128(n) => {
            serde_json::Number::from_u128(*n).map_or_else(|| J::String(n.to_string()), J::Number)
        }
        Value::I128(n) => {
            serde_json::Number::from_i128(*n).map_or_else(|| J::String(n.to_string()), J::Number)
        }
        Value::F32(x) => to_json(&Value::Float(widened(*x))),
        Value::Float(x) => match serde_json::Number::from_f64(*x) {
            Some(n) => J::Number(n),
            None if x.is_nan() => J::String("NaN".into()),
            None if *x > 0.0 => J::String("inf".into()),
            None => J::String("-inf".into()),
        },
        Value::Char(c) => J::String(c.to_string()),
        Value::Text(s) => J::String(s.clone()),
        Value::Bytes(bytes) => J::Array(bytes.iter().map(|b| J::from(*b)).collect()),
        Value::List(items) | Value::Tuple(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Optional(None) => J::Null,
        Value::Optional(Some(inner)) => to_json(inner),
        Value::Struct(fields) => json_fields(fields),
        Value::Enum { variant, fields } if fields.is_empty() => J::String(variant.clone()),
        Value::Enum { variant, fields } => {
            let mut object = serde_json::Map::new();
            object.insert(variant.clone(), json_fields(fields));
            J::Object(object)
        }
        Value::Map(entries) => {
            if entries.iter().all(|(k, _)| matches!(k, Value::Text(_))) {
                let mut object = serde_json::Map::new();
                for (k, v) in entries {
                    if let Value::Text(k) = k {
                        object.insert(k.clone(), to_json(v));
                    }
                }
                J::Object(object)
            } else {
                J::Array(
                    entries
                        .iter()
                        .map(|(k, v)| J::Array(vec![to_json(k), to_json(v)]))
                        .collect(),
                )
            }
        }
        Value::Opaque(bytes) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let mut object = serde_json::Map::new();
            object.insert("opaque".into(), J::String(hex));
            J::Object(object)
        }
    }
}

/// An `f32` as the `f64` of its shortest decimal form, so that `0.1f32`
/// shows as `0.1` (as serde_json writes it), not `0.10000000149011612`.
fn widened(x: f32) -> f64 {
    if x.is_finite() {
        x.to_string().parse().unwrap_or(f64::from(x))
    } else {
        f64::from(x)
    }
}

/// Fields as serde shows them: a newtype's one field as itself, a tuple
/// struct's or variant's fields (named `0`, `1`, ..) as an array, named
/// fields as an object.
fn json_fields(fields: &[(String, Value)]) -> serde_json::Value {
    let positional = fields
        .iter()
        .enumerate()
        .all(|(i, (name, _))| *name == i.to_string());
    match fields {
        // No fields: `struct S {}` (serde writes `{}`).
        [] => json_object(fields),
        [(_, only)] if positional => to_json(only),
        _ if positional => {
            serde_json::Value::Array(fields.iter().map(|(_, v)| to_json(v)).collect())
        }
        _ => json_object(fields),
    }
}

/// Named fields as a JSON object.
fn json_object(fields: &[(String, Value)]) -> serde_json::Value {
    serde_json::Value::Object(
        fields
            .iter()
            .map(|(name, value)| (name.clone(), to_json(value)))
            .collect(),
    )
}

/// The size and alignment of an archived type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    /// `size_of`.
    size: usize,
    /// `align_of`: a power of two.
    align: usize,
}

impl Shape {
    /// A shape of `size` and `align`.
    const fn new(size: usize, align: usize) -> Self {
        Shape { size, align }
    }
}

/// The offsets of `fields` laid out like a `#[repr(C)]` struct whose first
/// `start` bytes are taken by a tag byte (so 0 or 1), and the struct's
/// shape; `None` on overflow.
fn repr_c(fields: &[Shape], start: usize) -> Option<(Vec<usize>, Shape)> {
    let mut offsets = Vec::with_capacity(fields.len());
    let mut end = start;
    let mut align = 1;
    for field in fields {
        let offset = end.checked_next_multiple_of(field.align)?;
        offsets.push(offset);
        end = offset.checked_add(field.size)?;
        align = align.max(field.align);
    }
    Some((
        offsets,
        Shape::new(end.checked_next_multiple_of(align)?, align),
    ))
}

/// Where a B-tree node's parts are, for keys and values of given shapes:
/// rkyv's `Node`, `LeafNode` and `InnerNode` (`#[repr(C)]`).
struct BTreeGeometry {
    /// `Node`: the kind byte, then `[K; E]`, then `[V; E]`.
    node: Shape,
    /// The offset of the keys in a node.
    keys: usize,
    /// The offset of the values in a node.
    values: usize,
    /// `LeafNode`: a `Node`, then `len`.
    leaf: Shape,
    /// The offset of a leaf's `len`.
    leaf_len: usize,
    /// `InnerNode`: a `Node`, then `E` lesser nodes and a greater node.
    inner: Shape,
    /// The offset of an inner node's first relative pointer.
    pointers: usize,
}

impl BTreeGeometry {
    /// The geometry for keys of shape `key` and values of shape `value`;
    /// `None` on overflow.
    fn new(key: Shape, value: Shape) -> Option<Self> {
        let keys_bytes = key.size.checked_mul(BTREE_ENTRIES)?;
        let values_bytes = value.size.checked_mul(BTREE_ENTRIES)?;
        let (offsets, node) = repr_c(
            &[
                Shape::new(keys_bytes, key.align),
                Shape::new(values_bytes, value.align),
            ],
            1,
        )?;
        let (keys, values) = match offsets.as_slice() {
            [keys, values] => (*keys, *values),
            _ => return None,
        };
        let (leaf_offsets, leaf) = repr_c(&[node, Shape::new(4, 4)], 0)?;
        let (inner_offsets, inner) = repr_c(&[node, Shape::new(4 * (BTREE_ENTRIES + 1), 4)], 0)?;
        Some(BTreeGeometry {
            node,
            keys,
            values,
            leaf,
            leaf_len: *leaf_offsets.get(1)?,
            inner,
            pointers: *inner_offsets.get(1)?,
        })
    }
}

/// One step of the path to a value, for error messages.
#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    /// A field or variant, by name.
    Name(&'a str),
    /// A tuple element: `0`, `1`, ..
    Position(usize),
    /// A collection element: `[3]`.
    Index(usize),
    /// A part with a fixed name: `some`, `key`, `value`.
    Word(&'static str),
}

/// A key and, for maps, its value.
type Entry = (Value, Option<Value>);

/// The decoder's state: the bytes, rkyv's current subtree range, what is
/// left of the budgets, and where it is.
struct Decoder<'a> {
    /// The whole archive.
    buf: &'a [u8],
    /// The start of the range a relative pointer may claim now.
    start: usize,
    /// The end of that range.
    end: usize,
    /// How many more values may be decoded.
    values_left: usize,
    /// How deeply nested the value being decoded is.
    depth: usize,
    /// The path to it.
    path: Vec<Segment<'a>>,
    /// The structs and enums it is within, innermost last, for
    /// [`Layout::Ref`].
    stack: Vec<&'a Layout>,
}

impl<'a> Decoder<'a> {
    /// A decoder of `buf`.
    fn new(buf: &'a [u8]) -> Self {
        Decoder {
            buf,
            start: 0,
            end: buf.len(),
            values_left: buf
                .len()
                .saturating_mul(VALUES_PER_BYTE)
                .saturating_add(BASE_VALUES),
            depth: 0,
            path: Vec::new(),
            stack: Vec::new(),
        }
    }

    /// An error at the current path.
    fn err(&self, what: impl Into<String>) -> DecodeError {
        let mut path = String::new();
        for (i, segment) in self.path.iter().enumerate() {
            if i > 0 {
                path.push('.');
            }
            match segment {
                Segment::Name(name) => path.push_str(name),
                Segment::Position(i) => path.push_str(&i.to_string()),
                Segment::Index(i) => {
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                }
                Segment::Word(word) => path.push_str(word),
            }
        }
        DecodeError {
            path,
            what: what.into(),
        }
    }

    /// `a + b`, or an error on overflow.
    fn add(&self, a: usize, b: usize) -> Result<usize, DecodeError> {
        a.checked_add(b)
            .ok_or_else(|| self.err("an offset overflows"))
    }

    /// `a * b`, or an error on overflow.
    fn mul(&self, a: usize, b: usize) -> Result<usize, DecodeError> {
        a.checked_mul(b).ok_or_else(|| self.err("a size overflows"))
    }

    /// `len` bytes at `pos`.
    fn slice(&self, pos: usize, len: usize) -> Result<&'a [u8], DecodeError> {
        let buf = self.buf;
        pos.checked_add(len)
            .and_then(|end| buf.get(pos..end))
            .ok_or_else(|| {
                self.err(format!(
                    "{len} bytes at offset {pos} run past the end of the {}-byte record",
                    buf.len()
                ))
            })
    }

    /// `N` bytes at `pos`.
    fn array<const N: usize>(&self, pos: usize) -> Result<[u8; N], DecodeError> {
        let bytes = self.slice(pos, N)?;
        bytes
            .try_into()
            .map_err(|_| self.err(format!("{N} bytes at offset {pos} could not be read")))
    }

    /// The byte at `pos`.
    fn byte(&self, pos: usize) -> Result<u8, DecodeError> {
        let [b] = self.array::<1>(pos)?;
        Ok(b)
    }

    /// The little-endian `u32` at `pos`.
    fn u32_at(&self, pos: usize) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(pos)?))
    }

    /// The little-endian `i32` at `pos`.
    fn i32_at(&self, pos: usize) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array(pos)?))
    }

    /// Where the relative pointer at `pos` points.
    fn target(&self, pos: usize) -> Result<usize, DecodeError> {
        let offset = self.i32_at(pos)?;
        Self::offset(pos, offset).ok_or_else(|| {
            self.err(format!(
                "the relative pointer at offset {pos} ({offset:+}) points before the start of the record"
            ))
        })
    }

    /// `base` moved by `offset`, if that is not before 0.
    fn offset(base: usize, offset: i32) -> Option<usize> {
        let moved = i64::try_from(base).ok()?.checked_add(i64::from(offset))?;
        usize::try_from(moved).ok()
    }

    /// rkyv's `check_subtree_ptr`: `size` bytes at `pos` lie in the range a
    /// pointer may claim now, and `pos` is aligned to `align`.
    fn check_subtree(&self, pos: usize, size: usize, align: usize) -> Result<(), DecodeError> {
        let end = pos.checked_add(size);
        match end {
            Some(end) if pos >= self.start && end <= self.end => {}
            _ => {
                return Err(self.err(format!(
                    "{size} bytes at offset {pos} are outside the bytes {}..{} they may be in (out of bounds, or overlapping other data)",
                    self.start, self.end
                )));
            }
        }
        if align == 0 || !pos.is_multiple_of(align) {
            return Err(self.err(format!("offset {pos} is not aligned to {align} bytes")));
        }
        Ok(())
    }

    /// rkyv's `in_subtree`: claims `size` bytes at `pos` (aligned to
    /// `align`) for what `f` decodes there; pointers within must point
    /// before `pos`, and later ones after what it claimed.
    fn in_subtree<R>(
        &mut self,
        pos: usize,
        size: usize,
        align: usize,
        f: impl FnOnce(&mut Self) -> Result<R, DecodeError>,
    ) -> Result<R, DecodeError> {
        self.check_subtree(pos, size, align)?;
        let end = self.add(pos, size)?;
        let outer_end = self.end;
        self.end = pos;
        let result = f(self)?;
        if end < self.end {
            return Err(self.err("a subtree was claimed out of order"));
        }
        self.start = end;
        self.end = outer_end;
        Ok(result)
    }

    /// At most `n`, and no more than the values left to decode: a capacity
    /// to reserve.
    fn capacity(&self, n: usize) -> usize {
        n.min(self.values_left)
    }

    /// The struct or enum a [`Layout::Ref`] to `name`, `up` levels up,
    /// refers to.
    fn resolve(&self, name: &str, up: usize) -> Result<&'a Layout, DecodeError> {
        let found = self
            .stack
            .len()
            .checked_sub(up)
            .filter(|_| up > 0)
            .and_then(|at| self.stack.get(at))
            .copied();
        match found {
            Some(layout @ (Layout::Struct { name: n, .. } | Layout::Enum { name: n, .. }))
                if n == name =>
            {
                Ok(layout)
            }
            _ => Err(self.err(format!(
                "the layout refers to `{name}` {up} level(s) up, which is not there"
            ))),
        }
    }

    /// A size and alignment stored in a layout, checked.
    fn stored_shape(&self, size: usize, align: usize) -> Result<Shape, DecodeError> {
        if !align.is_power_of_two() || !size.is_multiple_of(align) {
            return Err(self.err(format!(
                "the layout gives size {size} and alignment {align}, which no type has"
            )));
        }
        Ok(Shape::new(size, align))
    }

    /// The size and alignment of `layout`'s archived form.
    fn shape(&self, layout: &'a Layout, depth: usize) -> Result<Shape, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("the layout nests deeper than {MAX_DEPTH} levels")));
        }
        let overflow = || self.err("the layout's size overflows");
        Ok(match layout {
            Layout::Unit => Shape::new(0, 1),
            Layout::Bool | Layout::U8 | Layout::I8 => Shape::new(1, 1),
            Layout::U16 | Layout::I16 => Shape::new(2, 2),
            Layout::U32
            | Layout::I32
            | Layout::F32
            | Layout::Char
            | Layout::Usize
            | Layout::Isize => Shape::new(4, 4),
            Layout::U64 | Layout::I64 | Layout::F64 => Shape::new(8, 8),
            Layout::U128 | Layout::I128 => Shape::new(16, 16),
            Layout::Text | Layout::List { .. } => Shape::new(8, 4),
            Layout::Str | Layout::Slice { .. } => {
                return Err(self.err(format!("`{layout}` is unsized: it is only stored in a Box")));
            }
            Layout::Optional { some } => {
                let inner = self.shape(some, depth + 1)?;
                let (_, shape) = repr_c(&[inner], 1).ok_or_else(overflow)?;
                shape
            }
            Layout::Boxed { item } => match **item {
                Layout::Str | Layout::Slice { .. } => Shape::new(8, 4),
                _ => Shape::new(4, 4),
            },
            Layout::Array { item, len } => {
                let inner = self.shape(item, depth + 1)?;
                Shape::new(
                    inner.size.checked_mul(*len).ok_or_else(overflow)?,
                    inner.align,
                )
            }
            Layout::Map { ordered: true, .. } | Layout::Set { ordered: true, .. } => {
                Shape::new(8, 4)
            }
            Layout::Map { ordered: false, .. } | Layout::Set { ordered: false, .. } => {
                Shape::new(12, 4)
            }
            Layout::Tuple { items } => {
                let shapes = items
                    .iter()
                    .map(|item| self.shape(item, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                let (_, shape) = repr_c(&shapes, 0).ok_or_else(overflow)?;
                shape
            }
            Layout::Struct { size, align, .. }
            | Layout::Enum { size, align, .. }
            | Layout::Opaque { size, align, .. } => self.stored_shape(*size, *align)?,
            Layout::Ref { name, up } => {
                let target = self.resolve(name, *up)?;
                self.shape(target, depth + 1)?
            }
        })
    }

    /// The shapes of `fields`.
    fn field_shapes(&self, fields: &'a [Field]) -> Result<Vec<Shape>, DecodeError> {
        fields.iter().map(|f| self.shape(&f.layout, 0)).collect()
    }

    /// Decodes the value of `layout` at `pos`, whose bytes are claimed.
    fn value(&mut self, layout: &'a Layout, pos: usize) -> Result<Value, DecodeError> {
        if self.depth >= MAX_DEPTH || self.values_left == 0 {
            return Err(self.too_much());
        }
        self.values_left -= 1;
        self.depth += 1;
        let value = self.value_at(layout, pos);
        self.depth -= 1;
        value
    }

    /// The error for a value nested too deeply, or one too many.
    #[cold]
    #[inline(never)]
    fn too_much(&self) -> DecodeError {
        if self.depth >= MAX_DEPTH {
            self.err(format!("values nest deeper than {MAX_DEPTH} levels"))
        } else {
            self.err("the record decodes to more values than its size allows")
        }
    }

    /// [`Decoder::value`] without the budgets: a dispatch to small
    /// functions, so that each level of a deep value takes little stack.
    fn value_at(&mut self, layout: &'a Layout, pos: usize) -> Result<Value, DecodeError> {
        match layout {
            Layout::Optional { some } => self.option(some, pos),
            Layout::List { item } => self.slice_value(item, pos),
            Layout::Boxed { item } => self.boxed(item, pos),
            Layout::Array { item, len } => self.array_value(item, *len, pos),
            Layout::Map {
                ordered,
                key,
                value,
            } => self.map(*ordered, key, value, pos),
            Layout::Set { ordered, item } => self.set(*ordered, item, pos),
            Layout::Tuple { items } => self.tuple(items, pos),
            Layout::Struct {
                name,
                fields,
                size,
                align,
            } => {
                self.stack.push(layout);
                let fields = self.struct_fields(name, fields, Shape::new(*size, *align), pos)?;
                self.stack.pop();
                Ok(Value::Struct(fields))
            }
            Layout::Enum {
                name,
                variants,
                size,
                align,
            } => {
                self.stack.push(layout);
                let value = self.enum_value(name, variants, Shape::new(*size, *align), pos)?;
                self.stack.pop();
                Ok(value)
            }
            Layout::Ref { name, up } => {
                // The struct or enum referred to, as one level with the
                // reference (which resolves to a struct or enum only).
                let target = self.resolve(name, *up)?;
                self.value_at(target, pos)
            }
            _ => self.scalar(layout, pos),
        }
    }

    /// A value of a layout that holds no other values: a primitive, a
    /// string, an opaque field.
    #[inline(never)]
    fn scalar(&mut self, layout: &'a Layout, pos: usize) -> Result<Value, DecodeError> {
        Ok(match layout {
            Layout::Unit => Value::Unit,
            Layout::Bool => match self.byte(pos)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(self.err(format!("a bool is byte {b}, not 0 or 1"))),
            },
            Layout::U8 => Value::Unsigned(self.byte(pos)?.into()),
            Layout::U16 => Value::Unsigned(u16::from_le_bytes(self.array(pos)?).into()),
            Layout::U32 | Layout::Usize => Value::Unsigned(self.u32_at(pos)?.into()),
            Layout::U64 => Value::Unsigned(u64::from_le_bytes(self.array(pos)?)),
            Layout::U128 => Value::U128(u128::from_le_bytes(self.array(pos)?)),
            Layout::I8 => Value::Signed(i8::from_le_bytes(self.array(pos)?).into()),
            Layout::I16 => Value::Signed(i16::from_le_bytes(self.array(pos)?).into()),
            Layout::I32 | Layout::Isize => Value::Signed(self.i32_at(pos)?.into()),
            Layout::I64 => Value::Signed(i64::from_le_bytes(self.array(pos)?)),
            Layout::I128 => Value::I128(i128::from_le_bytes(self.array(pos)?)),
            Layout::F32 => Value::F32(f32::from_le_bytes(self.array(pos)?)),
            Layout::F64 => Value::Float(f64::from_le_bytes(self.array(pos)?)),
            Layout::Char => {
                let scalar = self.u32_at(pos)?;
                Value::Char(char::from_u32(scalar).ok_or_else(|| {
                    self.err(format!(
                        "{scalar:#x} is not a char (a Unicode scalar value)"
                    ))
                })?)
            }
            Layout::Text => Value::Text(self.text(pos)?),
            Layout::Opaque { size, align, .. } => {
                let shape = self.stored_shape(*size, *align)?;
                Value::Opaque(self.slice(pos, shape.size)?.to_vec())
            }
            _ => {
                return Err(self.err(format!("`{layout}` is unsized: it is only stored in a Box")));
            }
        })
    }

    /// The `ArchivedOption` of `some` at `pos`: a tag byte, then the value
    /// at its alignment.
    #[inline(never)]
    fn option(&mut self, some: &'a Layout, pos: usize) -> Result<Value, DecodeError> {
        match self.byte(pos)? {
            0 => Ok(Value::Optional(None)),
            1 => {
                let inner = self.shape(some, 0)?;
                let offset = 1usize
                    .checked_next_multiple_of(inner.align)
                    .ok_or_else(|| self.overflow())?;
                let at = self.add(pos, offset)?;
                self.path.push(Segment::Word("some"));
                let value = self.value(some, at)?;
                self.path.pop();
                Ok(Value::Optional(Some(Box::new(value))))
            }
            tag => Err(self.bad_option_tag(tag)),
        }
    }

    /// The error for an option's bad tag.
    #[cold]
    #[inline(never)]
    fn bad_option_tag(&self, tag: u8) -> DecodeError {
        self.err(format!(
            "an Option's tag is {tag}, not 0 (None) or 1 (Some)"
        ))
    }

    /// The `ArchivedBox` of `item` at `pos`.
    #[inline(never)]
    fn boxed(&mut self, item: &'a Layout, pos: usize) -> Result<Value, DecodeError> {
        match item {
            Layout::Str => {
                let target = self.target(pos)?;
                let len = self.u32_at(self.add(pos, 4)?)? as usize;
                let text = self.in_subtree(target, len, 1, |d| {
                    let bytes = d.slice(target, len)?;
                    d.utf8(bytes)
                })?;
                Ok(Value::Text(text))
            }
            Layout::Slice { item } => self.slice_value(item, pos),
            item => {
                let target = self.target(pos)?;
                let shape = self.shape(item, 0)?;
                self.in_subtree(target, shape.size, shape.align, |d| d.value(item, target))
            }
        }
    }

    /// `[item; len]` at `pos`.
    #[inline(never)]
    fn array_value(
        &mut self,
        item: &'a Layout,
        len: usize,
        pos: usize,
    ) -> Result<Value, DecodeError> {
        let shape = self.shape(item, 0)?;
        if matches!(item, Layout::U8) {
            return Ok(Value::Bytes(self.slice(pos, len)?.to_vec()));
        }
        let mut items = Vec::with_capacity(self.capacity(len));
        for i in 0..len {
            let at = self.add(pos, self.mul(i, shape.size)?)?;
            self.path.push(Segment::Index(i));
            items.push(self.value(item, at)?);
            self.path.pop();
        }
        Ok(Value::List(items))
    }

    /// A `BTreeMap` (`ordered`) or `HashMap` at `pos`.
    #[inline(never)]
    fn map(
        &mut self,
        ordered: bool,
        key: &'a Layout,
        value: &'a Layout,
        pos: usize,
    ) -> Result<Value, DecodeError> {
        let entries = if ordered {
            self.btree(key, Some(value), pos)?
        } else {
            self.hash_table(key, Some(value), pos)?
        };
        Ok(Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or(Value::Unit)))
                .collect(),
        ))
    }

    /// A `BTreeSet` (`ordered`) or `HashSet` at `pos`.
    #[inline(never)]
    fn set(&mut self, ordered: bool, item: &'a Layout, pos: usize) -> Result<Value, DecodeError> {
        let entries = if ordered {
            self.btree(item, None, pos)?
        } else {
            self.hash_table(item, None, pos)?
        };
        Ok(Value::List(entries.into_iter().map(|(k, _)| k).collect()))
    }

    /// A tuple of `items` at `pos`, laid out like a `#[repr(C)]` struct.
    #[inline(never)]
    fn tuple(&mut self, items: &'a [Layout], pos: usize) -> Result<Value, DecodeError> {
        let shapes = items
            .iter()
            .map(|item| self.shape(item, 0))
            .collect::<Result<Vec<_>, _>>()?;
        let (offsets, _) = repr_c(&shapes, 0).ok_or_else(|| self.overflow())?;
        let mut values = Vec::with_capacity(items.len());
        for (i, (item, offset)) in items.iter().zip(offsets).enumerate() {
            let at = self.add(pos, offset)?;
            self.path.push(Segment::Position(i));
            values.push(self.value(item, at)?);
            self.path.pop();
        }
        Ok(Value::Tuple(values))
    }

    /// The error for a layout whose size overflows.
    #[cold]
    #[inline(never)]
    fn overflow(&self) -> DecodeError {
        self.err("the layout's size overflows")
    }

    /// `bytes` as a string.
    fn utf8(&self, bytes: &[u8]) -> Result<String, DecodeError> {
        match core::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(self.err(format!("a string is not UTF-8: {e}"))),
        }
    }

    /// The `ArchivedString` at `pos`: up to 8 bytes inline (padded with
    /// 0xff), else a length with two flag bits and a relative pointer.
    #[inline(never)]
    fn text(&mut self, pos: usize) -> Result<String, DecodeError> {
        let repr: [u8; 8] = self.array(pos)?;
        if repr[0] & 0xc0 != 0x80 {
            let len = repr.iter().position(|b| *b == 0xff).unwrap_or(repr.len());
            let bytes = repr
                .get(..len)
                .ok_or_else(|| self.err("an inline string is too long"))?;
            return self.utf8(bytes);
        }
        let raw = u32::from_le_bytes([repr[0], repr[1], repr[2], repr[3]]);
        let len = ((raw & 0b0011_1111) | ((raw & !0xff) >> 2)) as usize;
        if len <= repr.len() {
            return Err(self.err(format!(
                "a string of {len} bytes is stored out of line (at most 8 are stored inline)"
            )));
        }
        let offset = i32::from_le_bytes([repr[4], repr[5], repr[6], repr[7]]);
        let target = Self::offset(pos, offset).ok_or_else(|| {
            self.err(format!(
                "the string at offset {pos} points ({offset:+}) before the start of the record"
            ))
        })?;
        self.in_subtree(target, len, 1, |d| {
            let bytes = d.slice(target, len)?;
            d.utf8(bytes)
        })
    }

    /// An `ArchivedVec` or a boxed slice at `pos` (a relative pointer, then
    /// a length) of `item`s.
    #[inline(never)]
    fn slice_value(&mut self, item: &'a Layout, pos: usize) -> Result<Value, DecodeError> {
        let target = self.target(pos)?;
        let len = self.u32_at(self.add(pos, 4)?)? as usize;
        let shape = self.shape(item, 0)?;
        if shape.size == 0 {
            return Err(self.err(format!(
                "a list of the zero-sized `{item}` is refused: its length is not bounded by its bytes"
            )));
        }
        let bytes = self.mul(len, shape.size)?;
        self.in_subtree(target, bytes, shape.align, |d| {
            if matches!(item, Layout::U8) {
                return Ok(Value::Bytes(d.slice(target, len)?.to_vec()));
            }
            let mut items = Vec::with_capacity(d.capacity(len));
            for i in 0..len {
                let at = d.add(target, i * shape.size)?;
                d.path.push(Segment::Index(i));
                items.push(d.value(item, at)?);
                d.path.pop();
            }
            Ok(Value::List(items))
        })
    }

    /// The fields of the struct `name` at `pos`, checking that they make
    /// the `shape` the layout gives.
    #[inline(never)]
    fn struct_fields(
        &mut self,
        name: &str,
        fields: &'a [Field],
        shape: Shape,
        pos: usize,
    ) -> Result<Vec<(String, Value)>, DecodeError> {
        let shape = self.stored_shape(shape.size, shape.align)?;
        let shapes = self.field_shapes(fields)?;
        let (offsets, computed) =
            repr_c(&shapes, 0).ok_or_else(|| self.err("the layout's size overflows"))?;
        if computed != shape {
            return Err(self.err(format!(
                "the layout gives struct `{name}` size {} and alignment {}, its fields make {} and {}",
                shape.size, shape.align, computed.size, computed.align
            )));
        }
        self.fields(fields, &offsets, pos)
    }

    /// `fields` at `offsets` from `pos`.
    #[inline(never)]
    fn fields(
        &mut self,
        fields: &'a [Field],
        offsets: &[usize],
        pos: usize,
    ) -> Result<Vec<(String, Value)>, DecodeError> {
        let mut values = Vec::with_capacity(fields.len());
        for (field, offset) in fields.iter().zip(offsets) {
            let at = self.add(pos, *offset)?;
            self.path.push(Segment::Name(&field.name));
            values.push((field.name.clone(), self.value(&field.layout, at)?));
            self.path.pop();
        }
        Ok(values)
    }

    /// The enum `name` at `pos`: a tag byte, then the variant's fields laid
    /// out like a `#[repr(C)]` struct after it; the variants must make the
    /// `shape` the layout gives.
    #[inline(never)]
    fn enum_value(
        &mut self,
        name: &str,
        variants: &'a [Variant],
        shape: Shape,
        pos: usize,
    ) -> Result<Value, DecodeError> {
        let shape = self.stored_shape(shape.size, shape.align)?;
        let tag = self.byte(pos)?;
        let mut chosen = None;
        let mut end = 1;
        let mut align = 1;
        for variant in variants {
            let shapes = self.field_shapes(&variant.fields)?;
            let (offsets, variant_shape) =
                repr_c(&shapes, 1).ok_or_else(|| self.err("the layout's size overflows"))?;
            end = variant_shape.size.max(end);
            align = variant_shape.align.max(align);
            if variant.tag == tag && chosen.is_none() {
                chosen = Some((variant, offsets));
            }
        }
        let computed = end
            .checked_next_multiple_of(align)
            .map(|size| Shape::new(size, align));
        if computed != Some(shape) {
            return Err(self.err(format!(
                "the layout gives enum `{name}` size {} and alignment {}, its variants do not make that",
                shape.size, shape.align
            )));
        }
        let Some((variant, offsets)) = chosen else {
            return Err(self.err(format!("tag {tag} is no variant of enum `{name}`")));
        };
        self.path.push(Segment::Name(&variant.name));
        let fields = self.fields(&variant.fields, &offsets, pos)?;
        self.path.pop();
        Ok(Value::Enum {
            variant: variant.name.clone(),
            fields,
        })
    }

    /// The shape of a map's entry: rkyv's `Entry<K, V>`, `V` being `()` for
    /// a set; and the offset of the value in it.
    fn entry_shape(
        &self,
        key: &'a Layout,
        value: Option<&'a Layout>,
    ) -> Result<(Shape, Shape, usize, Shape), DecodeError> {
        let key_shape = self.shape(key, 0)?;
        let value_shape = match value {
            Some(value) => self.shape(value, 0)?,
            None => Shape::new(0, 1),
        };
        let (offsets, entry) = repr_c(&[key_shape, value_shape], 0)
            .ok_or_else(|| self.err("the layout's size overflows"))?;
        let value_offset = offsets.get(1).copied().unwrap_or(0);
        Ok((key_shape, value_shape, value_offset, entry))
    }

    /// The key and value at `key_at` and `value_at`.
    #[inline(never)]
    fn entry(
        &mut self,
        key: &'a Layout,
        value: Option<&'a Layout>,
        key_at: usize,
        value_at: usize,
    ) -> Result<Entry, DecodeError> {
        self.path.push(Segment::Word("key"));
        let k = self.value(key, key_at)?;
        self.path.pop();
        let v = match value {
            Some(layout) => {
                self.path.push(Segment::Word("value"));
                let v = self.value(layout, value_at)?;
                self.path.pop();
                Some(v)
            }
            None => None,
        };
        Ok((k, v))
    }

    /// rkyv's `ArchivedHashTable` at `pos` (of a `HashMap` or a `HashSet`):
    /// a relative pointer to the control bytes, `len` and `cap`. The
    /// buckets (`cap` entries) come right before the control bytes, bucket
    /// `i` at `i + 1` entries before them; a control byte with its high bit
    /// clear marks a full bucket. Entries come in bucket order, as rkyv
    /// iterates them.
    #[inline(never)]
    fn hash_table(
        &mut self,
        key: &'a Layout,
        value: Option<&'a Layout>,
        pos: usize,
    ) -> Result<Vec<Entry>, DecodeError> {
        let len = self.u32_at(self.add(pos, 4)?)? as usize;
        let cap = self.u32_at(self.add(pos, 8)?)? as usize;
        if len == 0 && cap == 0 {
            return Ok(Vec::new());
        }
        if len >= cap {
            return Err(self.err(format!(
                "a hash table of {len} entries has capacity {cap}: the length must be below the capacity"
            )));
        }
        let (_, _, value_offset, entry) = self.entry_shape(key, value)?;
        let overflow = || self.err("the hash table's size overflows");
        let probe_cap = cap
            .checked_next_multiple_of(GROUP_WIDTH)
            .ok_or_else(overflow)?;
        let control_count = self.add(probe_cap, GROUP_WIDTH - 1)?;
        let buckets = self.mul(cap, entry.size)?;
        let size = self.add(buckets, control_count)?;
        let controls_at = self.target(pos)?;
        let start = controls_at
            .checked_sub(buckets)
            .ok_or_else(|| self.err("the hash table's buckets would start before the record"))?;
        self.in_subtree(start, size, entry.align, |d| {
            let controls = d.slice(controls_at, control_count)?;
            let mut entries = Vec::with_capacity(d.capacity(len));
            for (i, control) in controls.iter().take(cap).enumerate() {
                if control & 0x80 != 0 {
                    continue;
                }
                let key_at = (i + 1)
                    .checked_mul(entry.size)
                    .and_then(|back| controls_at.checked_sub(back))
                    .ok_or_else(|| d.err("a hash table's bucket is before the record"))?;
                let value_at = d.add(key_at, value_offset)?;
                d.path.push(Segment::Index(entries.len()));
                entries.push(d.entry(key, value, key_at, value_at)?);
                d.path.pop();
            }
            if entries.len() != len {
                return Err(d.err(format!(
                    "a hash table says it has {len} entries but has {}",
                    entries.len()
                )));
            }
            for i in cap..(2 * cap).min(control_count - cap) {
                if controls.get(i) != controls.get(i % cap) {
                    return Err(d.err(format!(
                        "control byte {i} of a hash table does not repeat byte {}",
                        i % cap
                    )));
                }
            }
            Ok(entries)
        })
    }

    /// rkyv's `ArchivedBTreeMap` at `pos` (of a `BTreeMap` or a
    /// `BTreeSet`): a relative pointer to the root node and `len`. Entries
    /// come in order: an inner node's lesser node `i` before its entry `i`,
    /// its greater node after its last entry.
    #[inline(never)]
    fn btree(
        &mut self,
        key: &'a Layout,
        value: Option<&'a Layout>,
        pos: usize,
    ) -> Result<Vec<Entry>, DecodeError> {
        let len = self.u32_at(self.add(pos, 4)?)? as usize;
        if len == 0 {
            return Ok(Vec::new());
        }
        let (key_shape, value_shape, _, _) = self.entry_shape(key, value)?;
        let geometry = BTreeGeometry::new(key_shape, value_shape)
            .ok_or_else(|| self.err("the B-tree's node size overflows"))?;
        let nodes = BTreeNodes {
            key,
            value,
            key_shape,
            value_shape,
            geometry,
        };
        let entries = self.btree_node(&nodes, pos)?;
        if entries.len() != len {
            return Err(self.err(format!(
                "a B-tree says it has {len} entries but has {}",
                entries.len()
            )));
        }
        Ok(entries)
    }

    /// The entries of the B-tree node the relative pointer at `pointer`
    /// points to, and of the nodes below it, validated in rkyv's order (an
    /// inner node's children before its own entries).
    fn btree_node(
        &mut self,
        nodes: &BTreeNodes<'a>,
        pointer: usize,
    ) -> Result<Vec<Entry>, DecodeError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("B-tree nodes nest deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let result = self.btree_node_at(nodes, pointer);
        self.depth -= 1;
        result
    }

    /// [`Decoder::btree_node`] without the depth check.
    #[inline(never)]
    fn btree_node_at(
        &mut self,
        nodes: &BTreeNodes<'a>,
        pointer: usize,
    ) -> Result<Vec<Entry>, DecodeError> {
        let geometry = &nodes.geometry;
        let node = self.target(pointer)?;
        self.check_subtree(node, geometry.node.size, geometry.node.align)?;
        match self.byte(node)? {
            0 => self.in_subtree(node, geometry.leaf.size, geometry.leaf.align, |d| {
                let len = d.u32_at(d.add(node, geometry.leaf_len)?)? as usize;
                if len > BTREE_ENTRIES {
                    return Err(d.err(format!(
                        "a B-tree leaf says it has {len} entries, more than {BTREE_ENTRIES}"
                    )));
                }
                d.node_entries(nodes, node, len)
            }),
            1 => self.in_subtree(node, geometry.inner.size, geometry.inner.align, |d| {
                let mut children = Vec::with_capacity(BTREE_ENTRIES + 1);
                for i in 0..=BTREE_ENTRIES {
                    let at = d.add(d.add(node, geometry.pointers)?, 4 * i)?;
                    // An offset of 1 is rkyv's invalid pointer: no node there.
                    children.push(if d.i32_at(at)? == 1 {
                        Vec::new()
                    } else {
                        d.btree_node(nodes, at)?
                    });
                }
                let entries = d.node_entries(nodes, node, BTREE_ENTRIES)?;
                let mut children = children.into_iter();
                let mut all = Vec::new();
                for entry in entries {
                    all.extend(children.next().unwrap_or_default());
                    all.push(entry);
                }
                for rest in children {
                    all.extend(rest);
                }
                Ok(all)
            }),
            kind => Err(self.err(format!(
                "a B-tree node's kind is {kind}, not 0 (leaf) or 1 (inner)"
            ))),
        }
    }

    /// The first `len` entries of the B-tree node at `node`.
    #[inline(never)]
    fn node_entries(
        &mut self,
        nodes: &BTreeNodes<'a>,
        node: usize,
        len: usize,
    ) -> Result<Vec<Entry>, DecodeError> {
        let geometry = &nodes.geometry;
        let mut entries = Vec::with_capacity(len);
        for i in 0..len {
            let key_at = self.add(
                self.add(node, geometry.keys)?,
                self.mul(i, nodes.key_shape.size)?,
            )?;
            let value_at = self.add(
                self.add(node, geometry.values)?,
                self.mul(i, nodes.value_shape.size)?,
            )?;
            entries.push(self.entry(nodes.key, nodes.value, key_at, value_at)?);
        }
        Ok(entries)
    }
}

/// What a B-tree's nodes hold, and where.
struct BTreeNodes<'a> {
    /// The layout of the keys.
    key: &'a Layout,
    /// The layout of the values; `None` for a set.
    value: Option<&'a Layout>,
    /// The shape of a key.
    key_shape: Shape,
    /// The shape of a value (`()` for a set).
    value_shape: Shape,
    /// Where the parts of a node are.
    geometry: BTreeGeometry,
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

    use rkyv::bytecheck::CheckBytes;
    use rkyv::rancor::Error as RkyvError;
    use rkyv::util::AlignedVec;

    use super::*;
    use crate::StoredType;
    use crate::layout::Describer;

    /// The serializer `rkyv::to_bytes` uses.
    type Ser<'a> = rkyv::api::high::HighSerializer<
        AlignedVec,
        rkyv::ser::allocator::ArenaHandle<'a>,
        RkyvError,
    >;

    /// The validator `rkyv::access` uses.
    type Val<'a> = rkyv::api::high::HighValidator<'a, RkyvError>;

    /// A record of one field `v`.
    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
    #[stored(crate = "crate")]
    struct W<T> {
        v: T,
    }

    fn w<T>(v: T) -> W<T> {
        W { v }
    }

    /// `Value::Struct` of `fields`.
    fn record(fields: Vec<(&str, Value)>) -> Value {
        Value::Struct(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// The record `W { v }` as it decodes.
    fn rec(v: Value) -> Value {
        record(vec![("v", v)])
    }

    fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    fn u(n: u64) -> Value {
        Value::Unsigned(n)
    }

    /// `value` archived, decoded through its layout; also decoded from an
    /// unaligned copy (the same), turned to JSON, and cut short (no panic).
    fn decoded<T>(value: &T) -> Value
    where
        T: StoredType + for<'a> rkyv::Serialize<Ser<'a>>,
    {
        let bytes = rkyv::to_bytes::<RkyvError>(value).unwrap();
        let layout = Describer::layout_of::<T>();
        let decoded = decode(&layout, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        let again = decode(&layout, &shifted[1..]).unwrap();
        assert_eq!(format!("{again:?}"), format!("{decoded:?}"));
        let _ = to_json(&decoded);
        if bytes.len() <= 512 {
            for cut in 0..bytes.len() {
                let _ = decode(&layout, &bytes[..cut]);
                let _ = decode(&layout, &bytes[cut..]);
            }
        }
        decoded
    }

    #[test]
    fn unsigned_integers_at_their_extremes() {
        #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
        #[stored(crate = "crate")]
        struct Unsigned {
            a: u8,
            b: u16,
            c: u32,
            d: u64,
            e: u128,
            f: usize,
        }
        for (a, b, c, d, e, f) in [
            (0, 0, 0, 0, 0, 0),
            (
                u8::MAX,
                u16::MAX,
                u32::MAX,
                u64::MAX,
                u128::MAX,
                u32::MAX as usize,
            ),
            (1, 2, 3, 4, 5, 6),
        ] {
            let value = Unsigned { a, b, c, d, e, f };
            assert_eq!(
                decoded(&value),
                record(vec![
                    ("a", u(a.into())),
                    ("b", u(b.into())),
                    ("c", u(c.into())),
                    ("d", u(d)),
                    ("e", Value::U128(e)),
                    ("f", u(f as u64)),
                ])
            );
        }
    }

    #[test]
    fn signed_integers_at_their_extremes() {
        #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
        #[stored(crate = "crate")]
        struct Signed {
            a: i8,
            b: i16,
            c: i32,
            d: i64,
            e: i128,
            f: isize,
        }
        for (a, b, c, d, e, f) in [
            (
                i8::MIN,
                i16::MIN,
                i32::MIN,
                i64::MIN,
                i128::MIN,
                i32::MIN as isize,
            ),
            (
                i8::MAX,
                i16::MAX,
                i32::MAX,
                i64::MAX,
                i128::MAX,
                i32::MAX as isize,
            ),
            (-1, -1, -1, -1, -1, -1),
            (0, 0, 0, 0, 0, 0),
        ] {
            let value = Signed { a, b, c, d, e, f };
            assert_eq!(
                decoded(&value),
                record(vec![
                    ("a", Value::Signed(a.into())),
                    ("b", Value::Signed(b.into())),
                    ("c", Value::Signed(c.into())),
                    ("d", Value::Signed(d)),
                    ("e", Value::I128(e)),
                    ("f", Value::Signed(f as i64)),
                ])
            );
        }
    }

    #[test]
    fn json_writes_f32_and_empty_structs_as_serde_does() {
        assert_eq!(to_json(&Value::F32(0.1)).to_string(), "0.1");
        assert_eq!(
            to_json(&Value::F32(f32::MAX)).to_string(),
            serde_json::to_string(&f32::MAX).unwrap()
        );
        assert_eq!(to_json(&Value::Struct(Vec::new())).to_string(), "{}");
    }

    #[test]
    fn floats_including_nan_and_infinities() {
        for x in [
            0.0f32,
            -0.0,
            1.5,
            f32::MIN,
            f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            assert_eq!(decoded(&w(x)), rec(Value::F32(x)));
        }
        for x in [0.0f64, -2.25, f64::MIN_POSITIVE, f64::MAX, f64::INFINITY] {
            assert_eq!(decoded(&w(x)), rec(Value::Float(x)));
        }
        let Value::Struct(fields) = decoded(&w((f32::NAN, f64::NAN))) else {
            panic!("not a struct")
        };
        let [(_, Value::Tuple(items))] = fields.as_slice() else {
            panic!("not a tuple")
        };
        assert!(
            matches!(items.as_slice(), [Value::F32(a), Value::Float(b)] if a.is_nan() && b.is_nan())
        );
        assert_eq!(
            to_json(&decoded(&w((
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                0.5
            )))),
            serde_json::json!({"v": ["NaN", "inf", "-inf", 0.5]})
        );
    }

    #[test]
    fn bools_chars_and_units() {
        #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
        #[stored(crate = "crate")]
        struct Small {
            yes: bool,
            no: bool,
            c: char,
            nothing: (),
            last: char,
        }
        assert_eq!(
            decoded(&Small {
                yes: true,
                no: false,
                c: 'é',
                nothing: (),
                last: '\u{10FFFF}',
            }),
            record(vec![
                ("yes", Value::Bool(true)),
                ("no", Value::Bool(false)),
                ("c", Value::Char('é')),
                ("nothing", Value::Unit),
                ("last", Value::Char('\u{10FFFF}')),
            ])
        );
        assert_eq!(decoded(&w(())), rec(Value::Unit));
    }

    #[test]
    fn strings_inline_and_out_of_line() {
        let mut samples: Vec<String> = (0..=40)
            .map(|n| "abcdefghij".repeat(4)[..n].to_owned())
            .collect();
        samples.extend(
            [
                "12345678",
                "123456789",
                "é",
                "日本",
                "日本語",
                "ééé",
                "éééé",
                "ééééé",
                "\u{7f}\u{7f}",
                "\u{10FFFF}\u{10FFFF}",
            ]
            .map(String::from),
        );
        samples.push("long ".repeat(1000));
        samples.push("x".repeat(64));
        samples.push("y".repeat(1 << 14));
        for s in samples {
            assert_eq!(decoded(&w(s.clone())), rec(text(&s)), "{s:?}");
            assert_eq!(
                decoded(&w(s.clone().into_boxed_str())),
                rec(text(&s)),
                "{s:?}"
            );
        }
    }

    #[test]
    fn vectors() {
        assert_eq!(decoded(&w(Vec::<u32>::new())), rec(Value::List(vec![])));
        assert_eq!(decoded(&w(Vec::<u8>::new())), rec(Value::Bytes(vec![])));
        assert_eq!(
            decoded(&w(vec![1u8, 2, 255])),
            rec(Value::Bytes(vec![1, 2, 255]))
        );
        let strings = vec!["a".to_owned(), String::new(), "a longer string".to_owned()];
        assert_eq!(
            decoded(&w(strings.clone())),
            rec(Value::List(strings.iter().map(|s| text(s)).collect()))
        );
        let nested = vec![vec![], vec![1u32], vec![2, 3, u32::MAX]];
        assert_eq!(
            decoded(&w(nested.clone())),
            rec(Value::List(
                nested
                    .iter()
                    .map(|v| Value::List(v.iter().map(|n| u((*n).into())).collect()))
                    .collect()
            ))
        );
        let wide: Vec<u128> = (0..100).map(|i| u128::MAX - i).collect();
        assert_eq!(
            decoded(&w(wide.clone())),
            rec(Value::List(wide.into_iter().map(Value::U128).collect()))
        );
    }

    #[test]
    fn options() {
        assert_eq!(decoded(&w(None::<u64>)), rec(Value::Optional(None)));
        assert_eq!(
            decoded(&w(Some(u64::MAX))),
            rec(Value::Optional(Some(Box::new(u(u64::MAX)))))
        );
        assert_eq!(
            decoded(&w(Some(7u8))),
            rec(Value::Optional(Some(Box::new(u(7)))))
        );
        assert_eq!(
            decoded(&w(Some("a string that is long".to_owned()))),
            rec(Value::Optional(Some(Box::new(text(
                "a string that is long"
            )))))
        );
        assert_eq!(decoded(&w(None::<String>)), rec(Value::Optional(None)));
        assert_eq!(
            decoded(&w((Some(None::<u16>), Some(Some(3u128)), 9u8))),
            rec(Value::Tuple(vec![
                Value::Optional(Some(Box::new(Value::Optional(None)))),
                Value::Optional(Some(Box::new(Value::Optional(Some(Box::new(
                    Value::U128(3)
                )))))),
                u(9),
            ]))
        );
        assert_eq!(
            to_json(&decoded(&w((None::<u8>, Some(2u8))))),
            serde_json::json!({"v": [null, 2]})
        );
    }

    #[test]
    fn boxes() {
        assert_eq!(decoded(&w(Box::new(42u64))), rec(u(42)));
        assert_eq!(
            decoded(&w(Box::new("boxed and long enough".to_owned()))),
            rec(text("boxed and long enough"))
        );
        assert_eq!(decoded(&w(Box::new(Box::new(1i8)))), rec(Value::Signed(1)));
        assert_eq!(
            decoded(&w(vec![1u32, 2, 3].into_boxed_slice())),
            rec(Value::List(vec![u(1), u(2), u(3)]))
        );
        assert_eq!(
            decoded(&w(vec![4u8, 5].into_boxed_slice())),
            rec(Value::Bytes(vec![4, 5]))
        );
        assert_eq!(
            decoded(&w(Vec::<String>::new().into_boxed_slice())),
            rec(Value::List(vec![]))
        );
        assert_eq!(
            decoded(&w(Some(Box::new(5u16)))),
            rec(Value::Optional(Some(Box::new(u(5)))))
        );
    }

    #[test]
    fn arrays_and_tuples() {
        assert_eq!(
            decoded(&w([1u32, 2, 3])),
            rec(Value::List(vec![u(1), u(2), u(3)]))
        );
        assert_eq!(
            decoded(&w([9u8, 8, 7, 6])),
            rec(Value::Bytes(vec![9, 8, 7, 6]))
        );
        assert_eq!(decoded(&w([0u64; 0])), rec(Value::List(vec![])));
        assert_eq!(
            decoded(&w(["one".to_owned(), "a second, longer one".to_owned()])),
            rec(Value::List(vec![text("one"), text("a second, longer one")]))
        );
        assert_eq!(
            decoded(&w((1u8, u64::MAX, "three".to_owned()))),
            rec(Value::Tuple(vec![u(1), u(u64::MAX), text("three")]))
        );
        assert_eq!(decoded(&w((7u16,))), rec(Value::Tuple(vec![u(7)])));
        assert_eq!(
            decoded(&w(((1u8, 2u128), [(3u8, true); 2]))),
            rec(Value::Tuple(vec![
                Value::Tuple(vec![u(1), Value::U128(2)]),
                Value::List(vec![
                    Value::Tuple(vec![u(3), Value::Bool(true)]),
                    Value::Tuple(vec![u(3), Value::Bool(true)]),
                ]),
            ]))
        );
    }

    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
    #[stored(crate = "crate")]
    struct Address {
        city: String,
        zip: u32,
    }

    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
    #[stored(crate = "crate")]
    struct Person {
        id: u64,
        name: String,
        address: Address,
        previous: Vec<Address>,
        pair: Point,
    }

    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
    #[stored(crate = "crate")]
    struct Point(i16, u8);

    #[test]
    fn nested_structs() {
        let person = Person {
            id: 5,
            name: "Ada Lovelace".into(),
            address: Address {
                city: "London".into(),
                zip: 12345,
            },
            previous: vec![Address {
                city: "a city with a long name".into(),
                zip: 0,
            }],
            pair: Point(-3, 4),
        };
        let address = |city: &str, zip| record(vec![("city", text(city)), ("zip", u(zip))]);
        let expected = record(vec![
            ("id", u(5)),
            ("name", text("Ada Lovelace")),
            ("address", address("London", 12345)),
            (
                "previous",
                Value::List(vec![address("a city with a long name", 0)]),
            ),
            ("pair", record(vec![("0", Value::Signed(-3)), ("1", u(4))])),
        ]);
        assert_eq!(decoded(&person), expected);
        assert_eq!(
            to_json(&expected),
            serde_json::json!({
                "id": 5,
                "name": "Ada Lovelace",
                "address": {"city": "London", "zip": 12345},
                "previous": [{"city": "a city with a long name", "zip": 0}],
                "pair": [-3, 4],
            })
        );
    }

    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
    #[stored(crate = "crate")]
    enum Shape {
        Empty,
        Circle(f64),
        Rect { w: u32, h: u16 },
        Label(String, u8),
    }

    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
    #[stored(crate = "crate")]
    enum Level {
        Low = 2,
        High = 9,
    }

    fn variant(name: &str, fields: Vec<(&str, Value)>) -> Value {
        Value::Enum {
            variant: name.to_owned(),
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    #[test]
    fn enums_with_unit_tuple_and_struct_variants() {
        assert_eq!(decoded(&w(Shape::Empty)), rec(variant("Empty", vec![])));
        assert_eq!(
            decoded(&w(Shape::Circle(2.5))),
            rec(variant("Circle", vec![("0", Value::Float(2.5))]))
        );
        assert_eq!(
            decoded(&w(Shape::Rect { w: 3, h: 4 })),
            rec(variant("Rect", vec![("w", u(3)), ("h", u(4))]))
        );
        assert_eq!(
            decoded(&w(Shape::Label("a label, out of line".into(), 1))),
            rec(variant(
                "Label",
                vec![("0", text("a label, out of line")), ("1", u(1))]
            ))
        );
        assert_eq!(decoded(&w(Level::Low)), rec(variant("Low", vec![])));
        assert_eq!(decoded(&w(Level::High)), rec(variant("High", vec![])));
        assert_eq!(
            decoded(&w(vec![
                Some(Shape::Empty),
                None,
                Some(Shape::Rect { w: 1, h: 2 })
            ])),
            rec(Value::List(vec![
                Value::Optional(Some(Box::new(variant("Empty", vec![])))),
                Value::Optional(None),
                Value::Optional(Some(Box::new(variant(
                    "Rect",
                    vec![("w", u(1)), ("h", u(2))]
                )))),
            ]))
        );
        assert_eq!(
            to_json(&decoded(&w((Level::High, Shape::Rect { w: 1, h: 2 })))),
            serde_json::json!({"v": ["High", {"Rect": {"w": 1, "h": 2}}]})
        );
    }

    /// The archived map's entries in rkyv's order.
    fn hash_map_entries(map: &HashMap<String, u32>) -> Vec<(Value, Value)> {
        let bytes = rkyv::to_bytes::<RkyvError>(map).unwrap();
        let archived =
            rkyv::access::<rkyv::Archived<HashMap<String, u32>>, RkyvError>(&bytes).unwrap();
        archived
            .iter()
            .map(|(k, v)| (text(k), u(v.to_native().into())))
            .collect()
    }

    #[test]
    fn hash_maps_of_many_sizes() {
        for n in [0usize, 1, 2, 7, 15, 16, 17, 100, 1000] {
            let map: HashMap<String, u32> = (0..n)
                .map(|i| (format!("key number {i}"), i as u32 * 3))
                .collect();
            let Value::Struct(fields) = decoded(&w(map.clone())) else {
                panic!("not a struct")
            };
            let [(_, Value::Map(entries))] = fields.as_slice() else {
                panic!("not a map")
            };
            assert_eq!(entries.len(), n);
            assert_eq!(
                *entries,
                hash_map_entries(&map),
                "in rkyv's order, {n} entries"
            );
            let mut got: Vec<_> = entries
                .iter()
                .map(|(k, v)| match (k, v) {
                    (Value::Text(k), Value::Unsigned(v)) => (k.clone(), *v as u32),
                    other => panic!("{other:?}"),
                })
                .collect();
            got.sort();
            let mut want: Vec<_> = map.into_iter().collect();
            want.sort();
            assert_eq!(got, want);
        }
        let json = to_json(&decoded(&w(HashMap::from([("a".to_owned(), 1u32)]))));
        assert_eq!(json, serde_json::json!({"v": {"a": 1}}));
    }

    #[test]
    fn hash_maps_and_sets_of_other_shapes() {
        let map: HashMap<u8, u64> = (0..50).map(|i| (i, u64::MAX - u64::from(i))).collect();
        let Value::Struct(fields) = decoded(&w(map.clone())) else {
            panic!()
        };
        let [(_, Value::Map(entries))] = fields.as_slice() else {
            panic!()
        };
        let got: HashMap<u8, u64> = entries
            .iter()
            .map(|e| match e {
                (Value::Unsigned(k), Value::Unsigned(v)) => (*k as u8, *v),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got, map);
        assert_eq!(
            to_json(&decoded(&w(HashMap::from([(1u8, 2u8)])))),
            serde_json::json!({"v": [[1, 2]]})
        );

        for n in [0u64, 1, 30, 500] {
            let set: HashSet<u64> = (0..n).map(|i| i * i).collect();
            let Value::Struct(fields) = decoded(&w(set.clone())) else {
                panic!()
            };
            let [(_, Value::List(items))] = fields.as_slice() else {
                panic!()
            };
            let got: HashSet<u64> = items
                .iter()
                .map(|i| match i {
                    Value::Unsigned(n) => *n,
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(got.len(), items.len());
            assert_eq!(got, set);
        }
        let set: HashSet<(u128, u8)> = (0..20).map(|i| (u128::from(i) << 100, i)).collect();
        let Value::Struct(fields) = decoded(&w(set.clone())) else {
            panic!()
        };
        let [(_, Value::List(items))] = fields.as_slice() else {
            panic!()
        };
        assert_eq!(items.len(), 20);
    }

    #[test]
    fn btree_maps_of_many_sizes() {
        for n in [
            0u32, 1, 2, 5, 6, 7, 25, 26, 30, 35, 36, 37, 215, 216, 217, 1000, 1296, 5000,
        ] {
            let map: BTreeMap<u32, String> = (0..n)
                .map(|i| {
                    (
                        i * 7,
                        if i % 3 == 0 {
                            format!("value {i} is long")
                        } else {
                            i.to_string()
                        },
                    )
                })
                .collect();
            let expected = rec(Value::Map(
                map.iter().map(|(k, v)| (u((*k).into()), text(v))).collect(),
            ));
            assert_eq!(decoded(&w(map)), expected, "{n} entries");
        }
        let map: BTreeMap<u8, u128> = (0..40).map(|i| (i, u128::from(i) << 90)).collect();
        assert_eq!(
            decoded(&w(map.clone())),
            rec(Value::Map(
                map.iter()
                    .map(|(k, v)| (u((*k).into()), Value::U128(*v)))
                    .collect()
            ))
        );
        let json = to_json(&decoded(&w(BTreeMap::from([
            ("b".to_owned(), 2u8),
            ("a".to_owned(), 1),
        ]))));
        assert_eq!(json, serde_json::json!({"v": {"a": 1, "b": 2}}));
    }

    #[test]
    fn btree_sets() {
        for n in [0usize, 1, 5, 6, 26, 100, 1000] {
            let set: BTreeSet<String> = (0..n).map(|i| format!("{i:08}-member")).collect();
            assert_eq!(
                decoded(&w(set.clone())),
                rec(Value::List(set.iter().map(|s| text(s)).collect())),
                "{n} members"
            );
        }
        let set: BTreeSet<u16> = (0..300).map(|i| i * 3).collect();
        assert_eq!(
            decoded(&w(set.clone())),
            rec(Value::List(set.iter().map(|i| u((*i).into())).collect()))
        );
        let set: BTreeSet<u8> = [3, 1, 2].into();
        assert_eq!(
            to_json(&decoded(&w(set))),
            serde_json::json!({"v": [1, 2, 3]})
        );
    }

    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
    #[stored(crate = "crate")]
    #[rkyv(serialize_bounds(__S: rkyv::ser::Writer + rkyv::ser::Allocator, __S::Error: rkyv::rancor::Source))]
    #[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
    struct Tree {
        value: u32,
        #[rkyv(omit_bounds)]
        children: Vec<Tree>,
    }

    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
    #[stored(crate = "crate")]
    #[rkyv(serialize_bounds(__S: rkyv::ser::Writer + rkyv::ser::Allocator, __S::Error: rkyv::rancor::Source))]
    #[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
    struct Chain {
        #[rkyv(omit_bounds)]
        next: Option<Box<Chain>>,
    }

    fn chain(depth: usize) -> Chain {
        (0..depth).fold(Chain { next: None }, |next, _| Chain {
            next: Some(Box::new(next)),
        })
    }

    #[test]
    fn recursive_layouts_through_references() {
        let tree = Tree {
            value: 1,
            children: vec![
                Tree {
                    value: 2,
                    children: vec![],
                },
                Tree {
                    value: 3,
                    children: vec![Tree {
                        value: 4,
                        children: vec![],
                    }],
                },
            ],
        };
        let node = |value, children| {
            record(vec![
                ("value", u(value)),
                ("children", Value::List(children)),
            ])
        };
        assert_eq!(
            decoded(&tree),
            node(1, vec![node(2, vec![]), node(3, vec![node(4, vec![])])])
        );
        let layout = Describer::layout_of::<Chain>();
        let bytes = rkyv::to_bytes::<RkyvError>(&chain(3)).unwrap();
        let mut value = decode(&layout, &bytes).unwrap();
        let mut depth = 0;
        loop {
            let Value::Struct(fields) = value else {
                panic!()
            };
            match fields.into_iter().next() {
                Some((_, Value::Optional(Some(next)))) => {
                    value = *next;
                    depth += 1;
                }
                Some((_, Value::Optional(None))) => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(depth, 3);
    }

    #[test]
    fn nesting_is_capped() {
        let layout = Describer::layout_of::<Chain>();
        // Three levels a link: the struct, the option, the box.
        let bytes = rkyv::to_bytes::<RkyvError>(&chain(MAX_DEPTH / 3 - 1)).unwrap();
        assert!(decode(&layout, &bytes).is_ok());
        let bytes = rkyv::to_bytes::<RkyvError>(&chain(MAX_DEPTH)).unwrap();
        let err = decode(&layout, &bytes).unwrap_err();
        assert!(err.what.contains("deeper"), "{err}");
        assert!(err.path.starts_with("next.some.next.some"), "{err}");
    }

    #[test]
    fn with_fields_are_opaque_bytes() {
        #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
        #[stored(crate = "crate")]
        struct Priced {
            id: u8,
            #[rkyv(with = rkyv::with::AsBox)]
            amount: u64,
            after: u16,
        }
        let value = decoded(&Priced {
            id: 1,
            amount: 5,
            after: 7,
        });
        let Value::Struct(fields) = &value else {
            panic!()
        };
        let [(_, id), (_, Value::Opaque(raw)), (_, after)] = fields.as_slice() else {
            panic!("{value:?}")
        };
        assert_eq!((id, after, raw.len()), (&u(1), &u(7), 4));
        let json = to_json(&value);
        assert!(
            json["amount"]["opaque"].as_str().unwrap().len() == 8,
            "{json}"
        );
    }

    #[test]
    fn json_of_wide_integers_and_bytes() {
        let value = Value::Tuple(vec![
            Value::U128(5),
            Value::U128(u128::MAX),
            Value::I128(-5),
            Value::I128(i128::MIN),
            Value::Bytes(vec![0, 255]),
            Value::Opaque(vec![0xab, 0x01]),
            Value::Char('x'),
            Value::Unit,
        ]);
        assert_eq!(
            to_json(&value),
            serde_json::json!([
                5,
                u128::MAX.to_string(),
                -5,
                i128::MIN.to_string(),
                [0, 255],
                {"opaque": "ab01"},
                "x",
                null
            ])
        );
    }

    #[test]
    fn a_layout_that_does_not_match_is_an_error() {
        let bytes = rkyv::to_bytes::<RkyvError>(&w((5u32, 6u32))).unwrap();
        let mut layout = Describer::layout_of::<W<(u32, u32)>>();
        if let Layout::Struct { size, .. } = &mut layout {
            *size = 4;
        }
        let err = decode(&layout, &bytes).unwrap_err();
        assert!(err.what.contains("size 4"), "{err}");
        let bytes = rkyv::to_bytes::<RkyvError>(&w(5u32)).unwrap();
        let err = decode(&Describer::layout_of::<W<(u32, u32)>>(), &bytes).unwrap_err();
        assert!(err.what.contains("shorter"), "{err}");
        let layout = Layout::Struct {
            name: "W".into(),
            fields: vec![Field::new("v", Layout::Str)],
            size: 8,
            align: 4,
        };
        assert!(decode(&layout, &bytes).is_err());
        let layout = Layout::Struct {
            name: "W".into(),
            fields: vec![Field::new(
                "v",
                Layout::Ref {
                    name: "X".into(),
                    up: 3,
                },
            )],
            size: 8,
            align: 4,
        };
        assert!(decode(&layout, &bytes).is_err());
        let zero_sized = Layout::Struct {
            name: "W".into(),
            fields: vec![Field::new(
                "v",
                Layout::List {
                    item: Box::new(Layout::Unit),
                },
            )],
            size: 8,
            align: 4,
        };
        let bytes = rkyv::to_bytes::<RkyvError>(&w(vec![(); 3])).unwrap();
        assert!(decode(&zero_sized, &bytes).is_err());
        let huge = Layout::Struct {
            name: "W".into(),
            fields: vec![Field::new(
                "v",
                Layout::Array {
                    item: Box::new(Layout::Unit),
                    len: usize::MAX,
                },
            )],
            size: 0,
            align: 1,
        };
        let err = decode(&huge, &[]).unwrap_err();
        assert!(err.what.contains("more values"), "{err}");
    }

    #[test]
    fn hostile_values_name_the_place() {
        let bytes = rkyv::to_bytes::<RkyvError>(&w(true)).unwrap();
        let layout = Describer::layout_of::<W<bool>>();
        let mut bad = bytes.to_vec();
        bad[0] = 2;
        let err = decode(&layout, &bad).unwrap_err();
        assert_eq!(err.to_string(), "at `v`: a bool is byte 2, not 0 or 1");

        let layout = Describer::layout_of::<W<char>>();
        let err = decode(&layout, &0xD800u32.to_le_bytes()).unwrap_err();
        assert!(err.what.contains("not a char"), "{err}");

        let layout = Describer::layout_of::<W<Level>>();
        let err = decode(&layout, &[3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at `v`: tag 3 is no variant of enum `Level`"
        );

        let layout = Describer::layout_of::<W<Option<u8>>>();
        assert!(decode(&layout, &[2, 0]).is_err());
        assert!(decode(&layout, &[0, 0]).is_ok());

        // An inline string that is not UTF-8.
        let layout = Describer::layout_of::<W<String>>();
        let err = decode(&layout, &[0xc3, 0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert!(err.what.contains("UTF-8"), "{err}");

        // An out-of-line string that is not UTF-8.
        let long = "a string that is not short";
        let bytes = rkyv::to_bytes::<RkyvError>(&w(long.to_owned())).unwrap();
        let mut bad = bytes.to_vec();
        bad[3] = 0xff;
        let err = decode(&layout, &bad).unwrap_err();
        assert!(err.what.contains("UTF-8"), "{err}");

        // A pointer out of range, either way.
        let n = bytes.len();
        for offset in [i32::MIN, -(n as i32) - 1, 0, 1, 8, i32::MAX] {
            let mut bad = bytes.to_vec();
            bad[n - 4..].copy_from_slice(&offset.to_le_bytes());
            assert!(decode(&layout, &bad).is_err(), "{offset}");
        }

        // Vec elements in a list, one of them bad.
        let layout = Describer::layout_of::<W<Vec<bool>>>();
        let bytes = rkyv::to_bytes::<RkyvError>(&w(vec![true, false, true, true])).unwrap();
        let mut bad = bytes.to_vec();
        bad[2] = 7;
        assert_eq!(
            decode(&layout, &bad).unwrap_err().to_string(),
            "at `v.[2]`: a bool is byte 7, not 0 or 1"
        );
        // A length beyond the buffer.
        let mut bad = bytes.to_vec();
        let at = bad.len() - 4;
        bad[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&layout, &bad).is_err());

        // Empty and short buffers.
        let layout = Describer::layout_of::<Person>();
        assert!(decode(&layout, &[]).is_err());
        assert!(decode(&layout, &[0; 3]).is_err());
    }

    #[test]
    fn random_bytes_are_errors_not_panics() {
        let layouts = [
            Describer::layout_of::<Mixed>(),
            Describer::layout_of::<Person>(),
            Describer::layout_of::<W<HashMap<String, u32>>>(),
            Describer::layout_of::<W<BTreeMap<u32, String>>>(),
            Describer::layout_of::<W<BTreeSet<Vec<u8>>>>(),
            Describer::layout_of::<Tree>(),
        ];
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..3000 {
            let len = rng.below(300);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            for layout in &layouts {
                let _ = decode(layout, &bytes);
            }
        }
    }

    /// A deterministic xorshift generator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
    }

    /// `base` damaged in one of a few ways.
    fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
        let mut bytes = base.to_vec();
        let len = bytes.len();
        match rng.below(7) {
            0 => {
                let at = rng.below(len);
                bytes[at] = rng.next() as u8;
            }
            1 => {
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(len);
                    bytes[at] ^= 1 << rng.below(8);
                }
            }
            2 | 3 => {
                // A word, as pointers and lengths are: nudged a little.
                let at = rng.below(len / 4) * 4;
                if at + 4 <= len {
                    let word = i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
                    let nudged = word.wrapping_add(rng.below(33) as i32 - 16);
                    bytes[at..at + 4].copy_from_slice(&nudged.to_le_bytes());
                }
            }
            4 => {
                let at = rng.below(len / 4) * 4;
                if at + 4 <= len {
                    bytes[at..at + 4].copy_from_slice(&(rng.next() as u32).to_le_bytes());
                }
            }
            5 => bytes.truncate(rng.below(len)),
            _ => {
                bytes.drain(..rng.below(len));
            }
        }
        bytes
    }

    /// Damages `value`'s archive many ways, checking that the decoder
    /// accepts exactly what rkyv's validation accepts, and reads what rkyv
    /// reads (`oracle`: the archived value as a `Value`).
    fn differential<T>(value: &T, rounds: usize, oracle: impl Fn(&T::Archived) -> Value)
    where
        T: StoredType + rkyv::Archive + for<'a> rkyv::Serialize<Ser<'a>>,
        T::Archived: for<'a> CheckBytes<Val<'a>>,
    {
        let layout = Describer::layout_of::<T>();
        let base = rkyv::to_bytes::<RkyvError>(value).unwrap();
        assert_eq!(
            format!("{:?}", decode(&layout, &base).unwrap()),
            format!(
                "{:?}",
                oracle(rkyv::access::<T::Archived, RkyvError>(&base).unwrap())
            ),
            "the oracle agrees on the undamaged value"
        );
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ base.len() as u64);
        let mut accepted = 0;
        for round in 0..rounds {
            let bytes = mutate(&mut rng, &base);
            let mut aligned = AlignedVec::<16>::new();
            aligned.extend_from_slice(&bytes);
            let theirs = rkyv::access::<T::Archived, RkyvError>(&aligned).map(&oracle);
            let ours = decode(&layout, &bytes);
            match (&ours, &theirs) {
                (Ok(ours), Ok(theirs)) => {
                    accepted += 1;
                    assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "round {round}");
                }
                (Err(_), Err(_)) => {}
                _ => panic!(
                    "round {round}: decode {:?}, rkyv {:?}, bytes {bytes:?}",
                    ours.as_ref().map(|_| ()),
                    theirs.as_ref().map(|_| ())
                ),
            }
        }
        assert!(accepted > 0, "some damage is still a valid archive");
    }

    #[derive(storage::StoredType, rkyv::Archive, rkyv::Serialize)]
    #[stored(crate = "crate")]
    struct Mixed {
        id: u64,
        name: String,
        tags: Vec<String>,
        bytes: Vec<u8>,
        score: Option<Box<i32>>,
        shapes: Vec<Shape>,
        pair: (u8, u64),
        grid: [u16; 3],
        ok: bool,
        letter: char,
        note: Box<str>,
        ratio: f32,
        level: Level,
        huge: i128,
    }

    fn archived_shape(shape: &ArchivedShape) -> Value {
        match shape {
            ArchivedShape::Empty => variant("Empty", vec![]),
            ArchivedShape::Circle(r) => variant("Circle", vec![("0", Value::Float(r.to_native()))]),
            ArchivedShape::Rect { w, h } => variant(
                "Rect",
                vec![
                    ("w", u(w.to_native().into())),
                    ("h", u(h.to_native().into())),
                ],
            ),
            ArchivedShape::Label(s, n) => {
                variant("Label", vec![("0", text(s)), ("1", u((*n).into()))])
            }
        }
    }

    fn archived_mixed(m: &ArchivedMixed) -> Value {
        record(vec![
            ("id", u(m.id.to_native())),
            ("name", text(&m.name)),
            (
                "tags",
                Value::List(m.tags.iter().map(|t| text(t)).collect()),
            ),
            ("bytes", Value::Bytes(m.bytes.to_vec())),
            (
                "score",
                Value::Optional(
                    m.score
                        .as_ref()
                        .map(|s| Box::new(Value::Signed(s.to_native().into()))),
                ),
            ),
            (
                "shapes",
                Value::List(m.shapes.iter().map(archived_shape).collect()),
            ),
            (
                "pair",
                Value::Tuple(vec![u(m.pair.0.into()), u(m.pair.1.to_native())]),
            ),
            (
                "grid",
                Value::List(m.grid.iter().map(|g| u(g.to_native().into())).collect()),
            ),
            ("ok", Value::Bool(m.ok)),
            ("letter", Value::Char(m.letter.to_native())),
            ("note", text(&m.note)),
            ("ratio", Value::F32(m.ratio.to_native())),
            (
                "level",
                variant(
                    match m.level {
                        ArchivedLevel::Low => "Low",
                        ArchivedLevel::High => "High",
                    },
                    vec![],
                ),
            ),
            ("huge", Value::I128(m.huge.to_native())),
        ])
    }

    fn mixed() -> Mixed {
        Mixed {
            id: 77,
            name: "a name longer than eight".into(),
            tags: vec!["short".into(), "a much longer tag".into(), String::new()],
            bytes: vec![1, 2, 3, 4, 5],
            score: Some(Box::new(-12)),
            shapes: vec![
                Shape::Circle(1.0),
                Shape::Label("label text, long".into(), 9),
                Shape::Empty,
                Shape::Rect { w: 5, h: 6 },
            ],
            pair: (3, 4),
            grid: [7, 8, 9],
            ok: true,
            letter: 'ß',
            note: "a boxed str".into(),
            ratio: 0.25,
            level: Level::High,
            huge: -1,
        }
    }

    #[test]
    fn damaged_records_are_refused_as_rkyv_refuses_them() {
        differential(&mixed(), 20_000, archived_mixed);
        assert_eq!(decoded(&mixed()), {
            let bytes = rkyv::to_bytes::<RkyvError>(&mixed()).unwrap();
            archived_mixed(rkyv::access::<ArchivedMixed, RkyvError>(&bytes).unwrap())
        });
    }

    #[test]
    fn damaged_hash_maps_are_refused_as_rkyv_refuses_them() {
        let map: HashMap<String, u32> = (0..20)
            .map(|i| {
                (
                    if i % 2 == 0 {
                        format!("k{i}")
                    } else {
                        format!("a long key {i}")
                    },
                    i,
                )
            })
            .collect();
        differential(&w(map), 20_000, |m| {
            rec(Value::Map(
                m.v.iter()
                    .map(|(k, v)| (text(k), u(v.to_native().into())))
                    .collect(),
            ))
        });
        let set: HashSet<u16> = (0..40).collect();
        differential(&w(set), 5_000, |m| {
            rec(Value::List(
                m.v.iter().map(|i| u(i.to_native().into())).collect(),
            ))
        });
    }

    #[test]
    fn damaged_btree_maps_are_refused_as_rkyv_refuses_them() {
        let map: BTreeMap<u32, String> = (0..40)
            .map(|i| {
                (
                    i,
                    if i % 2 == 0 {
                        format!("v{i}")
                    } else {
                        format!("a long value {i}")
                    },
                )
            })
            .collect();
        differential(&w(map), 20_000, |m| {
            rec(Value::Map(
                m.v.iter()
                    .map(|(k, v)| (u(k.to_native().into()), text(v)))
                    .collect(),
            ))
        });
        let set: BTreeSet<String> = (0..12).map(|i| format!("member {i}")).collect();
        differential(&w(set), 5_000, |m| {
            rec(Value::List(m.v.iter().map(|s| text(s)).collect()))
        });
    }

    #[test]
    fn damaged_recursive_records_are_refused_as_rkyv_refuses_them() {
        fn archived_tree(t: &ArchivedTree) -> Value {
            record(vec![
                ("value", u(t.value.to_native().into())),
                (
                    "children",
                    Value::List(t.children.iter().map(archived_tree).collect()),
                ),
            ])
        }
        let leaf = |value| Tree {
            value,
            children: vec![],
        };
        let tree = Tree {
            value: 1,
            children: vec![
                leaf(2),
                Tree {
                    value: 3,
                    children: vec![leaf(4), leaf(5)],
                },
            ],
        };
        differential(&tree, 10_000, archived_tree);
    }
}
