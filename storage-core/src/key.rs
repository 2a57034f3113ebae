//! Order-preserving key encodings.
//!
//! Every key is stored in redb as a byte string, and redb orders byte strings
//! lexicographically. The encodings here are chosen so that this byte order is
//! the natural order of the key type: for any two keys `a` and `b` of one type,
//! `a < b` if and only if `encode(a) < encode(b)`, and decoding an encoding
//! gives back the key exactly. This is an on-disk format; it does not change
//! between releases of this crate.
//!
//! | key type | encoding |
//! |---|---|
//! | `u8` .. `u128`, `usize` | big-endian, fixed width (`usize` as 8 bytes) |
//! | `i8` .. `i128`, `isize` | big-endian with the sign bit flipped (`isize` as 8 bytes) |
//! | `bool` | one byte, `0` or `1` |
//! | `[u8; N]` | the `N` bytes as they are |
//! | `str`, `String`, `[u8]`, `Vec<u8>` | the bytes as they are (no copy) |
//! | tuples of up to four keys | the parts one after another, each in its *part* form |
//!
//! Inside a tuple, fixed-width parts are written as above, and variable-length
//! parts (strings, byte strings) are escaped so that a part never is a prefix
//! of another: every `0x00` byte is written `0x00 0xFF`, and the part ends with
//! `0x00 0x00`. This keeps tuple order lexicographic by part and makes the
//! encoding of the leading parts `(a,)` a byte prefix of every `(a, ..)` key,
//! which is what [`KeyPrefix`] queries rely on.

use core::fmt;

use smallvec::SmallVec;

/// A value that can be written as an order-preserving key.
///
/// Implemented for strings, byte strings, byte arrays, all integers, `bool`,
/// tuples of up to four of these, and references to any of them.
///
/// # Contract
///
/// - Encoding is order-preserving: for two values `a` and `b` with the same
///   [`Key`](IntoKeyBytes::Key) type, `a < b` if and only if
///   `a.into_key_bytes() < b.into_key_bytes()` (compared as byte slices).
/// - Encoding round-trips exactly: [`FromKeyBytes::from_key_bytes`] of the
///   encoding gives back a value equal to the original.
/// - Borrowed forms encode exactly like their owned forms: `"a"`, `&"a"` and
///   `String::from("a")` are the same key.
///
/// Encoding never allocates for strings, byte strings and integers; tuples are
/// encoded into an inline buffer that only spills to the heap past 64 bytes.
///
/// ```
/// use storage::IntoKeyBytes;
///
/// assert!(1u64.into_key_bytes() < 256u64.into_key_bytes());
/// assert!((-1i32).into_key_bytes() < 0i32.into_key_bytes());
/// assert!(("ab", 9u8).into_key_bytes().as_ref() < ("abc", 0u8).into_key_bytes().as_ref());
/// ```
pub trait IntoKeyBytes {
    /// The owned key type this value encodes as, and that scans decode back:
    /// `String` for `&str`, `Vec<u8>` for `&[u8]`, `(u64, String)` for `(u64, &str)`.
    type Key: FromKeyBytes;

    /// The encoded bytes: a borrowed slice for strings, a fixed array for
    /// integers, an inline buffer for tuples.
    type Bytes<'a>: AsRef<[u8]>
    where
        Self: 'a;

    /// Encodes this value as a whole key.
    ///
    /// (It borrows `self` despite the `into_` name the seed design gave it:
    /// encoding leaves the caller its key.)
    #[allow(clippy::wrong_self_convention)]
    fn into_key_bytes(&self) -> Self::Bytes<'_>;

    /// Appends the self-delimiting form used for a part of a composite key.
    fn write_key_part(&self, out: &mut KeyBuf);
}

/// A key type that can be decoded from the bytes [`IntoKeyBytes`] wrote.
///
/// Decoding is the exact inverse of encoding: `T::from_key_bytes(&t.into_key_bytes())`
/// is `Ok(t)`. Bytes that no value encodes to give a [`KeyError`], never a panic.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a key",
    label = "not a key type",
    note = "keys are integers, `bool`, `String`, `Vec<u8>`, `[u8; N]`, or tuples of up to four of these",
    note = "for a key type of your own, implement `IntoKeyBytes`, `AsKey` and `FromKeyBytes` for it"
)]
pub trait FromKeyBytes: IntoKeyBytes<Key = Self> + Sized + fmt::Debug {
    /// Decodes a whole key.
    fn from_key_bytes(bytes: &[u8]) -> Result<Self, KeyError>;

    /// Decodes one part of a composite key from the front of `input`, and
    /// advances `input` past it.
    fn read_key_part(input: &mut &[u8]) -> Result<Self, KeyError>;
}

/// A value usable where a key of type `K` is expected: `K` itself, or a
/// borrowed form that encodes the same way (`&str` for `String`, `&[u8]` for
/// `Vec<u8>`, `&u64` for `u64`, `(u64, &str)` for `(u64, String)`).
///
/// Typed tables take their keys as `impl AsKey<K>`, which lets integer
/// literals infer their type from the table: `users.get(42, ..)` on a `u64`
/// table needs no `42u64`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a key of type `{K}`",
    label = "expected a `{K}` key, or a borrowed form of one"
)]
pub trait AsKey<K>: IntoKeyBytes<Key = K> {}

impl<K, T: AsKey<K> + ?Sized> AsKey<K> for &T {}

/// Marks key types whose encodings are byte prefixes of the encodings of `K`.
///
/// `(A,)` and `(A, B)` are prefixes of `(A, B, C)`: a prefix query with them
/// returns every key whose leading parts are equal to them. A `String` is a
/// prefix of a `String` key (every key starting with that text), a `Vec<u8>` of
/// a `Vec<u8>` key, and every key type is a prefix of itself.
///
/// An integer literal has no type of its own here: `prefix(5)` on a `u64`
/// key reads as `i32`. Write `prefix(5u64)`, or, since a single integer key
/// has no shorter prefix, `get(5)` or `range(5..6)`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a prefix of `{K}` keys",
    label = "not a prefix of the table's keys",
    note = "a prefix is the leading parts of a composite key, `(42,)`, or the start of a string or byte key",
    note = "an integer literal reads as `i32` here: write its type (`5u64`), or use `get(5)` / `range(5..6)` on a single-field key"
)]
pub trait KeyPrefix<K> {}

impl<T: FromKeyBytes> KeyPrefix<T> for T {}

/// The buffer composite keys are encoded into: inline up to 64 bytes.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyBuf(SmallVec<[u8; 64]>);

impl KeyBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self(SmallVec::new())
    }

    /// Appends bytes.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// Appends one byte.
    pub fn push(&mut self, byte: u8) {
        self.0.push(byte);
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Turns the bytes into the smallest byte string greater than every
    /// string starting with them; `false` (and empty) if there is none, when
    /// they are empty or all `0xFF`.
    pub(crate) fn increment(&mut self) -> bool {
        loop {
            match self.0.last().copied() {
                Some(0xFF) => {
                    self.0.pop();
                }
                Some(byte) => {
                    let last = self.0.len() - 1;
                    self.0[last] = byte + 1;
                    return true;
                }
                None => return false,
            }
        }
    }
}

impl From<&[u8]> for KeyBuf {
    fn from(bytes: &[u8]) -> Self {
        Self(SmallVec::from_slice(bytes))
    }
}

impl AsRef<[u8]> for KeyBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyBuf({})", crate::error::Hex(&self.0))
    }
}

/// Why bytes could not be decoded as a key of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A fixed-width key or part has the wrong number of bytes.
    #[error("expected {expected} bytes for `{ty}`, found {found}")]
    Length {
        /// The key type being decoded.
        ty: &'static str,
        /// Bytes the type needs.
        expected: usize,
        /// Bytes that were there.
        found: usize,
    },
    /// A `bool` byte other than 0 or 1.
    #[error("invalid bool byte {0:#04x}")]
    Bool(u8),
    /// A string key that is not UTF-8.
    #[error("string key is not valid UTF-8")]
    Utf8,
    /// An escaped part without its terminator, or with a bad escape.
    #[error("malformed escaped part of a composite key")]
    Escape,
    /// Bytes left over after the last part of a composite key.
    #[error("{0} trailing bytes after the last part of a composite key")]
    Trailing(usize),
    /// An integer that does not fit the platform's `usize`/`isize`.
    #[error("integer key out of range for `{0}`")]
    Range(&'static str),
}

impl<T: IntoKeyBytes + ?Sized> IntoKeyBytes for &T {
    type Key = T::Key;
    type Bytes<'a>
        = T::Bytes<'a>
    where
        Self: 'a;

    fn into_key_bytes(&self) -> Self::Bytes<'_> {
        (**self).into_key_bytes()
    }

    fn write_key_part(&self, out: &mut KeyBuf) {
        (**self).write_key_part(out);
    }
}

fn take<'a>(input: &mut &'a [u8], n: usize, ty: &'static str) -> Result<&'a [u8], KeyError> {
    if input.len() < n {
        return Err(KeyError::Length {
            ty,
            expected: n,
            found: input.len(),
        });
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn exact<const N: usize>(bytes: &[u8], ty: &'static str) -> Result<[u8; N], KeyError> {
    bytes.try_into().map_err(|_| KeyError::Length {
        ty,
        expected: N,
        found: bytes.len(),
    })
}

fn read_array<const N: usize>(input: &mut &[u8], ty: &'static str) -> Result<[u8; N], KeyError> {
    exact(take(input, N, ty)?, ty)
}

macro_rules! integer_keys {
    ($($ty:ty => $unsigned:ty, $flip:expr;)*) => {$(
        impl IntoKeyBytes for $ty {
            type Key = $ty;
            type Bytes<'a> = [u8; size_of::<$ty>()];

            fn into_key_bytes(&self) -> Self::Bytes<'_> {
                ((*self as $unsigned) ^ $flip).to_be_bytes()
            }

            fn write_key_part(&self, out: &mut KeyBuf) {
                out.extend_from_slice(&self.into_key_bytes());
            }
        }

        impl AsKey<$ty> for $ty {}

        impl FromKeyBytes for $ty {
            fn from_key_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
                let raw = <$unsigned>::from_be_bytes(exact(bytes, stringify!($ty))?);
                Ok((raw ^ $flip) as $ty)
            }

            fn read_key_part(input: &mut &[u8]) -> Result<Self, KeyError> {
                let raw = <$unsigned>::from_be_bytes(read_array(input, stringify!($ty))?);
                Ok((raw ^ $flip) as $ty)
            }
        }
    )*};
}

integer_keys! {
    u8 => u8, 0;
    u16 => u16, 0;
    u32 => u32, 0;
    u64 => u64, 0;
    u128 => u128, 0;
    i8 => u8, 1 << 7;
    i16 => u16, 1 << 15;
    i32 => u32, 1 << 31;
    i64 => u64, 1 << 63;
    i128 => u128, 1 << 127;
}

// `usize`/`isize` are stored as 64-bit values so that a database file means
// the same on every platform.
macro_rules! pointer_sized_keys {
    ($($ty:ty => $wide:ty;)*) => {$(
        impl IntoKeyBytes for $ty {
            type Key = $ty;
            type Bytes<'a> = [u8; 8];

            fn into_key_bytes(&self) -> Self::Bytes<'_> {
                (*self as $wide).into_key_bytes()
            }

            fn write_key_part(&self, out: &mut KeyBuf) {
                out.extend_from_slice(&self.into_key_bytes());
            }
        }

        impl AsKey<$ty> for $ty {}

        impl FromKeyBytes for $ty {
            fn from_key_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
                <$ty>::try_from(<$wide>::from_key_bytes(bytes)?)
                    .map_err(|_| KeyError::Range(stringify!($ty)))
            }

            fn read_key_part(input: &mut &[u8]) -> Result<Self, KeyError> {
                <$ty>::try_from(<$wide>::read_key_part(input)?)
                    .map_err(|_| KeyError::Range(stringify!($ty)))
            }
        }
    )*};
}

pointer_sized_keys! {
    usize => u64;
    isize => i64;
}

impl IntoKeyBytes for bool {
    type Key = bool;
    type Bytes<'a> = [u8; 1];

    fn into_key_bytes(&self) -> Self::Bytes<'_> {
        [u8::from(*self)]
    }

    fn write_key_part(&self, out: &mut KeyBuf) {
        out.push(u8::from(*self));
    }
}

impl AsKey<bool> for bool {}

impl FromKeyBytes for bool {
    fn from_key_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let [byte] = exact(bytes, "bool")?;
        decode_bool(byte)
    }

    fn read_key_part(input: &mut &[u8]) -> Result<Self, KeyError> {
        let [byte] = read_array(input, "bool")?;
        decode_bool(byte)
    }
}

fn decode_bool(byte: u8) -> Result<bool, KeyError> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(KeyError::Bool(other)),
    }
}

impl<const N: usize> IntoKeyBytes for [u8; N] {
    type Key = [u8; N];
    type Bytes<'a> = &'a [u8];

    fn into_key_bytes(&self) -> Self::Bytes<'_> {
        self
    }

    fn write_key_part(&self, out: &mut KeyBuf) {
        out.extend_from_slice(self);
    }
}

impl<const N: usize> AsKey<[u8; N]> for [u8; N] {}

impl<const N: usize> FromKeyBytes for [u8; N] {
    fn from_key_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        exact(bytes, "[u8; N]")
    }

    fn read_key_part(input: &mut &[u8]) -> Result<Self, KeyError> {
        read_array(input, "[u8; N]")
    }
}

/// Appends `bytes` escaped (`0x00` becomes `0x00 0xFF`) and terminated by `0x00 0x00`.
fn write_escaped(bytes: &[u8], out: &mut KeyBuf) {
    let mut rest = bytes;
    while let Some(zero) = rest.iter().position(|&b| b == 0) {
        out.extend_from_slice(&rest[..=zero]);
        out.push(0xFF);
        rest = &rest[zero + 1..];
    }
    out.extend_from_slice(rest);
    out.extend_from_slice(&[0, 0]);
}

/// Reads one escaped part written by [`write_escaped`] from the front of `input`.
fn read_escaped(input: &mut &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut out = Vec::new();
    let mut rest = *input;
    loop {
        let zero = rest.iter().position(|&b| b == 0).ok_or(KeyError::Escape)?;
        out.extend_from_slice(&rest[..zero]);
        match rest.get(zero + 1) {
            Some(0x00) => {
                *input = &rest[zero + 2..];
                return Ok(out);
            }
            Some(0xFF) => {
                out.push(0);
                rest = &rest[zero + 2..];
            }
            _ => return Err(KeyError::Escape),
        }
    }
}

impl IntoKeyBytes for [u8] {
    type Key = Vec<u8>;
    type Bytes<'a> = &'a [u8];

    fn into_key_bytes(&self) -> Self::Bytes<'_> {
        self
    }

    fn write_key_part(&self, out: &mut KeyBuf) {
        write_escaped(self, out);
    }
}

impl IntoKeyBytes for Vec<u8> {
    type Key = Vec<u8>;
    type Bytes<'a> = &'a [u8];

    fn into_key_bytes(&self) -> Self::Bytes<'_> {
        self
    }

    fn write_key_part(&self, out: &mut KeyBuf) {
        write_escaped(self, out);
    }
}

impl AsKey<Vec<u8>> for [u8] {}
impl AsKey<Vec<u8>> for Vec<u8> {}

impl FromKeyBytes for Vec<u8> {
    fn from_key_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        Ok(bytes.to_vec())
    }

    fn read_key_part(input: &mut &[u8]) -> Result<Self, KeyError> {
        read_escaped(input)
    }
}

impl IntoKeyBytes for str {
    type Key = String;
    type Bytes<'a> = &'a [u8];

    fn into_key_bytes(&self) -> Self::Bytes<'_> {
        self.as_bytes()
    }

    fn write_key_part(&self, out: &mut KeyBuf) {
        write_escaped(self.as_bytes(), out);
    }
}

impl IntoKeyBytes for String {
    type Key = String;
    type Bytes<'a> = &'a [u8];

    fn into_key_bytes(&self) -> Self::Bytes<'_> {
        self.as_bytes()
    }

    fn write_key_part(&self, out: &mut KeyBuf) {
        write_escaped(self.as_bytes(), out);
    }
}

impl AsKey<String> for str {}
impl AsKey<String> for String {}

impl FromKeyBytes for String {
    fn from_key_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        core::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| KeyError::Utf8)
    }

    fn read_key_part(input: &mut &[u8]) -> Result<Self, KeyError> {
        String::from_utf8(read_escaped(input)?).map_err(|_| KeyError::Utf8)
    }
}

macro_rules! tuple_keys {
    ($(($($part:ident $arg:ident),+);)*) => {$(
        impl<$($part: FromKeyBytes, $arg: AsKey<$part>),+> AsKey<($($part,)+)> for ($($arg,)+) {}

        impl<$($part: IntoKeyBytes),+> IntoKeyBytes for ($($part,)+) {
            type Key = ($($part::Key,)+);
            type Bytes<'a> = KeyBuf where Self: 'a;

            fn into_key_bytes(&self) -> KeyBuf {
                let mut out = KeyBuf::new();
                self.write_key_part(&mut out);
                out
            }

            #[allow(non_snake_case)]
            fn write_key_part(&self, out: &mut KeyBuf) {
                let ($($part,)+) = self;
                $($part.write_key_part(out);)+
            }
        }

        impl<$($part: FromKeyBytes),+> FromKeyBytes for ($($part,)+) {
            fn from_key_bytes(mut bytes: &[u8]) -> Result<Self, KeyError> {
                let key = Self::read_key_part(&mut bytes)?;
                if bytes.is_empty() {
                    Ok(key)
                } else {
                    Err(KeyError::Trailing(bytes.len()))
                }
            }

            fn read_key_part(input: &mut &[u8]) -> Result<Self, KeyError> {
                Ok(($($part::read_key_part(input)?,)+))
            }
        }
    )*};
}

tuple_keys! {
    (A QA);
    (A QA, B QB);
    (A QA, B QB, C QC);
    (A QA, B QB, C QC, D QD);
}

macro_rules! tuple_prefixes {
    ($(($($prefix:ident),+) < ($($all:ident),+);)*) => {$(
        impl<$($all: FromKeyBytes),+> KeyPrefix<($($all,)+)> for ($($prefix,)+) {}
    )*};
}

tuple_prefixes! {
    (A) < (A, B);
    (A) < (A, B, C);
    (A, B) < (A, B, C);
    (A) < (A, B, C, D);
    (A, B) < (A, B, C, D);
    (A, B, C) < (A, B, C, D);
}

/// `bytes` shown as the key of type `K` they encode (`42`, `"alice"`), or in
/// hex when they do not decode as one.
pub fn show<K: FromKeyBytes>(bytes: &[u8]) -> String {
    match K::from_key_bytes(bytes) {
        Ok(key) => format!("{key:?}"),
        Err(_) => crate::error::Hex(bytes).to_string(),
    }
}

/// `bytes` shown as the key part of type `K` they encode, or in hex when they
/// do not decode as exactly one; for generated error messages.
pub fn show_part<K: FromKeyBytes>(bytes: &[u8]) -> String {
    let mut input = bytes;
    match K::read_key_part(&mut input) {
        Ok(part) if input.is_empty() => format!("{part:?}"),
        _ => crate::error::Hex(bytes).to_string(),
    }
}

/// `bytes`, an entry of an index that is not unique (the value of type `V`,
/// then the key of type `K` of the record holding it), shown decoded, or in
/// hex when they do not decode; for generated error messages.
pub fn show_entry<V: FromKeyBytes, K: FromKeyBytes>(bytes: &[u8]) -> String {
    let mut input = bytes;
    match V::read_key_part(&mut input) {
        Ok(value) => match K::from_key_bytes(input) {
            Ok(key) => format!("{value:?} of record {key:?}"),
            Err(_) => format!("{value:?} of record {}", crate::error::Hex(input)),
        },
        Err(_) => crate::error::Hex(bytes).to_string(),
    }
}

/// The smallest byte string greater than every string starting with `prefix`,
/// or `None` when there is none (the prefix is empty or all `0xFF`).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = KeyBuf::from(prefix);
    end.increment().then(|| end.as_slice().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_parts_round_trip_with_zero_bytes() {
        let key = (b"\0a\0".to_vec(), String::from("x\0"));
        let bytes = key.into_key_bytes();
        assert_eq!(
            bytes.as_ref(),
            b"\0\xffa\0\xff\0\0x\0\xff\0\0".as_slice(),
            "zero bytes are escaped and each part terminated"
        );
        assert_eq!(<(Vec<u8>, String)>::from_key_bytes(bytes.as_ref()), Ok(key));
    }

    #[test]
    fn malformed_escapes_are_errors() {
        assert_eq!(<(String,)>::from_key_bytes(b"ab"), Err(KeyError::Escape));
        assert_eq!(
            <(String,)>::from_key_bytes(b"a\0\x01"),
            Err(KeyError::Escape)
        );
        assert_eq!(<(u8,)>::from_key_bytes(&[1, 2]), Err(KeyError::Trailing(1)));
        assert_eq!(bool::from_key_bytes(&[2]), Err(KeyError::Bool(2)));
    }

    #[test]
    fn prefix_successor_skips_trailing_ff() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF]), None);
        assert_eq!(prefix_successor(&[]), None);
    }
}
