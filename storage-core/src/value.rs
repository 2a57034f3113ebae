//! Values: rkyv serialization into reused buffers, validated zero-copy access.
//!
//! redb guarantees values only 1-byte alignment, while rkyv archives need
//! their natural alignment (up to 16 bytes). A value slice that happens to be
//! 16-byte aligned is accessed in place; any other is first copied into an
//! aligned buffer taken from a small per-thread pool, so steady-state reads
//! allocate nothing. Every access is validated with rkyv's `bytecheck` unless
//! the caller explicitly opts out through an `unsafe` method.

use core::cell::{Cell, RefCell};

use core::num::NonZeroUsize;
use rkyv::Archive;
use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;

use rkyv::rancor::{BoxedError, Failure};
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::validation::Validator;
use rkyv::validation::archive::ArchiveValidator;
use rkyv::validation::shared::SharedValidator;

/// The archived form of `T`: what read closures receive.
pub use rkyv::Archived;

/// The serializer values are written with: rkyv's high-level serializer into
/// a reused `Vec<u8>`.
pub type ValueSerializer<'a> = HighSerializer<Vec<u8>, ArenaHandle<'a>, BoxedError>;

/// The validator values are checked with on every read. Its error type
/// carries no detail, which keeps the successful path lean; a value it
/// rejects is checked again with [`DiagnosticValidator`] for the message.
pub type ValueValidator<'a> = HighValidator<'a, Failure>;

/// The validator that explains why a value was rejected.
pub type DiagnosticValidator<'a> = HighValidator<'a, BoxedError>;

/// A type that can be stored as a value: it serializes with rkyv, and its
/// archived form can be validated.
///
/// Implemented for every type with `#[derive(rkyv::Archive, rkyv::Serialize)]`
/// (rkyv derives `CheckBytes` for the archived type by default), and for
/// rkyv's built-in types (`u64`, `String`, `Vec<T>`, ...).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored: it is not an rkyv archive type",
    label = "needs `#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]`",
    note = "add `#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]` to `{Self}` and to the types of its fields"
)]
pub trait StoredValue:
    Archive<
        Archived: for<'a> CheckBytes<ValueValidator<'a>>
                      + for<'a> CheckBytes<DiagnosticValidator<'a>>,
    > + for<'a> rkyv::Serialize<ValueSerializer<'a>>
{
}

impl<T> StoredValue for T where
    T: Archive<
            Archived: for<'a> CheckBytes<ValueValidator<'a>>
                          + for<'a> CheckBytes<DiagnosticValidator<'a>>,
        > + for<'a> rkyv::Serialize<ValueSerializer<'a>>
{
}

/// Serializes `value` into `buf` (cleared first, capacity kept).
pub(crate) fn encode<V: StoredValue>(value: &V, buf: &mut Vec<u8>) -> Result<(), BoxedError> {
    let mut writer = core::mem::take(buf);
    writer.clear();
    *buf = rkyv::api::high::to_bytes_in::<_, BoxedError>(value, writer)?;
    Ok(())
}

const ALIGN: usize = AlignedVec::<16>::ALIGNMENT;

#[inline]
fn is_aligned(bytes: &[u8]) -> bool {
    (bytes.as_ptr() as usize).is_multiple_of(ALIGN)
}

thread_local! {
    static POOL: RefCell<Vec<AlignedVec>> = const { RefCell::new(Vec::new()) };
}

/// How many buffers one thread keeps, and the largest one it keeps.
const POOL_BUFFERS: usize = 16;
const POOL_BUFFER_BYTES: usize = 1 << 20;

fn from_pool() -> AlignedVec {
    POOL.try_with(|pool| pool.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn to_pool(buf: AlignedVec) {
    if buf.capacity() == 0 || buf.capacity() > POOL_BUFFER_BYTES {
        return;
    }
    // The pool is gone while the thread shuts down; then the buffer is freed.
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut()
            && pool.len() < POOL_BUFFERS
        {
            pool.push(buf);
        }
    });
}

/// The aligned buffer a table handle keeps at hand for its reads, so that a
/// scan hands the same buffer from entry to entry without going through the
/// per-thread pool. Returned to the pool when the handle goes.
#[derive(Default)]
pub(crate) struct Buffers(Cell<Option<AlignedVec>>);

impl Buffers {
    /// A buffer: the one at hand, else one from the pool.
    #[inline]
    pub(crate) fn take(&self) -> Buf<'_> {
        Buf {
            vec: self.0.take().unwrap_or_else(from_pool),
            home: Some(self),
        }
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        if let Some(buf) = self.0.take() {
            to_pool(buf);
        }
    }
}

/// An aligned buffer on loan: back to its handle (or the per-thread pool) on drop.
pub(crate) struct Buf<'a> {
    vec: AlignedVec,
    home: Option<&'a Buffers>,
}

impl Buf<'static> {
    /// A buffer from this thread's pool.
    #[inline]
    pub(crate) fn pooled() -> Self {
        Buf {
            vec: from_pool(),
            home: None,
        }
    }
}

impl Buf<'_> {
    /// Copies `bytes` in and returns the aligned copy.
    #[inline]
    pub(crate) fn fill(&mut self, bytes: &[u8]) -> &[u8] {
        self.vec.clear();
        self.vec.extend_from_slice(bytes);
        &self.vec
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.vec
    }
}

impl Drop for Buf<'_> {
    #[inline]
    fn drop(&mut self) {
        let vec = core::mem::take(&mut self.vec);
        match self.home {
            Some(home) => {
                if let Some(other) = home.0.replace(Some(vec)) {
                    to_pool(other);
                }
            }
            None => to_pool(vec),
        }
    }
}

/// `bytes` at an address rkyv can read: in place when aligned, else copied into `buf`.
#[inline]
pub(crate) fn aligned<'a>(bytes: &'a [u8], buf: &'a mut Buf<'_>) -> &'a [u8] {
    if is_aligned(bytes) {
        bytes
    } else {
        buf.fill(bytes)
    }
}

/// Validates `bytes` as an archived `V`. `bytes` must already be aligned.
#[inline]
pub(crate) fn check<V: StoredValue>(bytes: &[u8]) -> Result<&V::Archived, BoxedError> {
    const { assert_alignment::<V>() };
    match rkyv::api::access_with_context::<V::Archived, _, Failure>(bytes, &mut validator(bytes)) {
        Ok(archived) => Ok(archived),
        Err(_) => Err(explain::<V>(bytes)),
    }
}

/// How deep validation follows pointers: deep enough for any record, shallow
/// enough that crafted bytes for a recursive type cannot overflow the stack.
pub const MAX_VALIDATION_DEPTH: usize = 512;

fn validator(bytes: &[u8]) -> Validator<ArchiveValidator<'_>, SharedValidator> {
    Validator::new(
        ArchiveValidator::with_max_depth(bytes, NonZeroUsize::new(MAX_VALIDATION_DEPTH)),
        SharedValidator::new(),
    )
}

/// Archives are read from buffers aligned to 16 bytes.
const fn assert_alignment<V: StoredValue>() {
    assert!(
        align_of::<V::Archived>() <= ALIGN,
        "storage reads archives from 16-byte aligned buffers; this archived type needs more"
    );
}

/// Why `bytes` are not a valid archive of `V`: validation again, with details.
#[cold]
fn explain<V: StoredValue>(bytes: &[u8]) -> BoxedError {
    match rkyv::api::access_with_context::<V::Archived, _, BoxedError>(bytes, &mut validator(bytes))
    {
        Err(error) => error,
        // The two validators differ only in their error type.
        Ok(_) => <BoxedError as rkyv::rancor::Source>::new(Inconsistent),
    }
}

/// A validator that rejected bytes the detailed one accepts (a bug in rkyv).
#[derive(Debug, thiserror::Error)]
#[error("rkyv validators disagree on these bytes")]
struct Inconsistent;

/// Validates `bytes` as an archived `V` and runs `f` on it: what every read
/// of this crate does, for bytes from elsewhere (the raw
/// [`RedbBackend`](crate::RedbBackend), a file, the network).
///
/// Bytes at an address rkyv cannot read from are copied into a reused
/// aligned buffer first. Bytes that are not a valid archive of `V` give an
/// error, never a panic.
///
/// ```
/// let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&(7u32, String::from("seven"))).unwrap();
/// let text = storage::read_archived::<(u32, String), _>(&bytes[..], |t| t.1.to_string()).unwrap();
/// assert_eq!(text, "seven");
/// assert!(storage::read_archived::<(u32, String), _>(&bytes[1..], |_| ()).is_err());
/// ```
pub fn read_archived<V: StoredValue, R>(
    bytes: &[u8],
    f: impl FnOnce(&V::Archived) -> R,
) -> Result<R, crate::BoxError> {
    read::<V, R>(bytes, f).map_err(Into::into)
}

/// Validates `bytes` as an archived `V` and runs `f` on it.
pub(crate) fn read<V: StoredValue, R>(
    bytes: &[u8],
    f: impl FnOnce(&V::Archived) -> R,
) -> Result<R, BoxedError> {
    let mut buf = Buf::pooled();
    let archived = check::<V>(aligned(bytes, &mut buf))?;
    Ok(f(archived))
}

/// The deserializer `get_owned` turns archived values back into owned ones with.
pub type ValueDeserializer = rkyv::api::high::HighDeserializer<BoxedError>;

/// Turns an archived value back into an owned one.
pub(crate) fn deserialize<V>(archived: &V::Archived) -> Result<V, BoxedError>
where
    V: Archive,
    V::Archived: rkyv::Deserialize<V, ValueDeserializer>,
{
    rkyv::deserialize::<V, BoxedError>(archived)
}

/// Deserializes an archived record; for the indexes computed by a method
/// that `#[derive(StoredRecord)]` generates.
#[doc(hidden)]
pub fn deserialize_record<V>(archived: &V::Archived) -> Result<V, crate::BoxError>
where
    V: Archive,
    V::Archived: rkyv::Deserialize<V, ValueDeserializer>,
{
    deserialize::<V>(archived).map_err(Into::into)
}

/// Validates `bytes` as an archived `V` and deserializes it; for the
/// migrations `#[derive(StoredRecord)]` generates.
#[doc(hidden)]
pub fn read_owned<V>(bytes: &[u8]) -> Result<V, crate::BoxError>
where
    V: StoredValue,
    V::Archived: rkyv::Deserialize<V, ValueDeserializer>,
{
    read::<V, _>(bytes, deserialize::<V>)?.map_err(Into::into)
}

/// Runs `f` on `bytes` as an archived `V` without validating them.
///
/// # Safety
///
/// `bytes` must be a valid archive of `V`, e.g. written by this crate for the
/// same type and not altered since.
pub(crate) unsafe fn read_unchecked<V: StoredValue, R>(
    bytes: &[u8],
    f: impl FnOnce(&V::Archived) -> R,
) -> R {
    const { assert_alignment::<V>() };
    let mut buf = Buf::pooled();
    let bytes = aligned(bytes, &mut buf);
    // SAFETY: `bytes` is aligned to 16 (in place or copied), which is enough
    // for `V::Archived` (asserted at compile time above), and the caller
    // guarantees it holds a valid archive of `V`.
    let archived = unsafe { rkyv::access_unchecked::<V::Archived>(bytes) };
    f(archived)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misaligned_bytes_are_copied_and_validated() {
        let mut buf = Vec::new();
        encode(&(7u64, String::from("seven")), &mut buf).unwrap();
        // Place the archive at every offset of a larger buffer: most are misaligned.
        let mut backing = vec![0u8; buf.len() + ALIGN];
        for offset in 0..ALIGN {
            backing[offset..offset + buf.len()].copy_from_slice(&buf);
            let slice = &backing[offset..offset + buf.len()];
            let got = read::<(u64, String), _>(slice, |t| (t.0.to_native(), t.1.to_string()));
            assert_eq!(got.unwrap(), (7, "seven".to_owned()), "offset {offset}");
        }
    }

    #[test]
    fn damaged_archives_are_errors_not_panics() {
        let mut buf = Vec::new();
        encode(
            &(7u64, String::from("a string longer than inline")),
            &mut buf,
        )
        .unwrap();
        // Cutting off the front leaves the string's relative pointer out of bounds.
        let err = read::<(u64, String), _>(&buf[8..], |_| ()).unwrap_err();
        assert!(!err.to_string().is_empty());
        assert!(read::<(u64, String), _>(&[], |_| ()).is_err());
        assert!(read::<(u64, String), _>(&[1, 2, 3], |_| ()).is_err());
    }

    /// A list as deep as it gets: a node pointing at a node pointing at ...
    #[derive(rkyv::Archive, rkyv::Serialize)]
    #[rkyv(serialize_bounds(__S: rkyv::ser::Writer + rkyv::ser::Allocator, __S::Error: rkyv::rancor::Source))]
    #[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext, __C::Error: rkyv::rancor::Source)))]
    struct Node {
        #[rkyv(omit_bounds)]
        next: Option<Box<Node>>,
    }

    fn list(depth: usize) -> Node {
        (0..depth).fold(Node { next: None }, |next, _| Node {
            next: Some(Box::new(next)),
        })
    }

    #[test]
    fn validation_depth_is_bounded() {
        //! Crafted bytes for a recursive type could nest deep enough to overflow
        //! the stack while being validated.
        let mut buf = Vec::new();
        encode(&list(100), &mut buf).unwrap();
        assert!(
            read::<Node, _>(&buf, |_| ()).is_ok(),
            "ordinary depths validate"
        );
        let deep = list(MAX_VALIDATION_DEPTH * 2);
        encode(&deep, &mut buf).unwrap();
        // Dropping a deep Box chain recursively could itself overflow: unlink it.
        let mut next = deep.next;
        while let Some(node) = next {
            next = node.next;
        }
        assert!(
            read::<Node, _>(&buf, |_| ()).is_err(),
            "deeper than the limit is refused"
        );
    }

    #[test]
    fn buffers_are_reused() {
        let ptr = {
            let mut buf = Buf::pooled();
            buf.fill(&[1; 100]).as_ptr()
        };
        let mut again = Buf::pooled();
        assert_eq!(
            again.fill(&[2; 10]).as_ptr(),
            ptr,
            "the buffer came back from the pool"
        );
        drop(again);
        let at_hand = Buffers::default();
        let first = at_hand.take().fill(&[3; 10]).as_ptr();
        assert_eq!(first, ptr, "a handle's first buffer comes from the pool");
        let second = at_hand.take().fill(&[4; 10]).as_ptr();
        assert_eq!(second, ptr, "and is kept at hand");
    }
}
