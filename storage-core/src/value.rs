//! Values: rkyv serialization into reused buffers, validated zero-copy access.
//!
//! redb guarantees values only 1-byte alignment, while rkyv archives need
//! their natural alignment (up to 16 bytes). A value slice that happens to be
//! 16-byte aligned is accessed in place; any other is first copied into an
//! aligned buffer taken from a small per-thread pool, so steady-state reads
//! allocate nothing. Every access is validated with rkyv's `bytecheck` unless
//! the caller explicitly opts out through an `unsafe` method.

use core::cell::RefCell;

use rkyv::Archive;
use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor::BoxedError;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;

/// The archived form of `T`: what read closures receive.
pub use rkyv::Archived;

/// The serializer values are written with: rkyv's high-level serializer into
/// a reused `Vec<u8>`.
pub type ValueSerializer<'a> = HighSerializer<Vec<u8>, ArenaHandle<'a>, BoxedError>;

/// The validator values are checked with on every read.
pub type ValueValidator<'a> = HighValidator<'a, BoxedError>;

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
    Archive<Archived: for<'a> CheckBytes<ValueValidator<'a>>>
    + for<'a> rkyv::Serialize<ValueSerializer<'a>>
{
}

impl<T> StoredValue for T where
    T: Archive<Archived: for<'a> CheckBytes<ValueValidator<'a>>>
        + for<'a> rkyv::Serialize<ValueSerializer<'a>>
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

fn is_aligned(bytes: &[u8]) -> bool {
    (bytes.as_ptr() as usize).is_multiple_of(ALIGN)
}

thread_local! {
    static POOL: RefCell<Vec<AlignedVec>> = const { RefCell::new(Vec::new()) };
}

/// How many buffers one thread keeps, and the largest one it keeps.
const POOL_BUFFERS: usize = 16;
const POOL_BUFFER_BYTES: usize = 1 << 20;

/// An aligned buffer from this thread's pool, returned to it on drop.
pub(crate) struct PooledBuf(AlignedVec);

impl PooledBuf {
    pub(crate) fn take() -> Self {
        let buf = POOL
            .try_with(|pool| pool.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        PooledBuf(buf)
    }

    /// Copies `bytes` in and returns the aligned copy.
    pub(crate) fn fill(&mut self, bytes: &[u8]) -> &[u8] {
        self.0.clear();
        self.0.extend_from_slice(bytes);
        &self.0
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if self.0.capacity() == 0 || self.0.capacity() > POOL_BUFFER_BYTES {
            return;
        }
        let buf = core::mem::take(&mut self.0);
        // The pool is gone while the thread shuts down; then the buffer is freed.
        let _ = POOL.try_with(|pool| {
            if let Ok(mut pool) = pool.try_borrow_mut()
                && pool.len() < POOL_BUFFERS
            {
                pool.push(buf);
            }
        });
    }
}

/// `bytes` at an address rkyv can read: in place when aligned, else copied into `buf`.
pub(crate) fn aligned<'a>(bytes: &'a [u8], buf: &'a mut PooledBuf) -> &'a [u8] {
    if is_aligned(bytes) {
        bytes
    } else {
        buf.fill(bytes)
    }
}

/// Validates `bytes` as an archived `V`. `bytes` must already be aligned.
pub(crate) fn check<V: StoredValue>(bytes: &[u8]) -> Result<&V::Archived, BoxedError> {
    rkyv::access::<V::Archived, BoxedError>(bytes)
}

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
    let mut buf = PooledBuf::take();
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
    let mut buf = PooledBuf::take();
    let bytes = aligned(bytes, &mut buf);
    // SAFETY: `bytes` is aligned to 16 (in place or copied), and the caller
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

    #[test]
    fn pool_reuses_buffers() {
        let ptr = {
            let mut buf = PooledBuf::take();
            buf.fill(&[1; 100]).as_ptr()
        };
        let mut again = PooledBuf::take();
        assert_eq!(
            again.fill(&[2; 10]).as_ptr(),
            ptr,
            "the buffer came back from the pool"
        );
    }
}
