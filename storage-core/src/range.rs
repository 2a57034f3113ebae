//! [`Range`] and [`Entry`]: iterating validated entries in key order.

use core::fmt;
use core::marker::PhantomData;

use crate::backend::{BackendError, RawRange};
use crate::error::{Error, Result};
use crate::key::FromKeyBytes;
use crate::value::{self, Buf, Buffers, StoredValue};

/// An iterator over the entries of a key range, from
/// [`ReadTable::range`](crate::ReadTable::range)/[`prefix`](crate::ReadTable::prefix)/[`iter`](crate::ReadTable::iter)
/// and the same on [`WriteTable`](crate::WriteTable).
///
/// Yields entries in key order, or backwards with `.rev()`. A damaged entry
/// yields [`Error::Corrupt`] and iteration goes on with the next.
pub struct Range<'a, K, V> {
    name: &'a str,
    inner: Option<RawRange<'a>>,
    buffers: &'a Buffers,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'a, K, V> Range<'a, K, V> {
    /// Entries of `inner` (none if the table does not exist), reported under
    /// `name`, copied into buffers from `buffers`.
    pub(crate) fn new(name: &'a str, inner: Option<RawRange<'a>>, buffers: &'a Buffers) -> Self {
        Self {
            name,
            inner,
            buffers,
            _types: PhantomData,
        }
    }
}

impl<'a, K: FromKeyBytes, V: StoredValue> Range<'a, K, V> {
    /// The entry made of the bytes of one stored key and value.
    #[inline]
    fn entry(
        name: &str,
        buffers: &'a Buffers,
        key: &[u8],
        value: &[u8],
    ) -> Result<Entry<'a, K, V>> {
        let decoded = K::from_key_bytes(key).map_err(|e| Error::corrupt(name, key, "key", e))?;
        Entry::new(decoded, value, buffers.take())
            .map_err(|e| Error::corrupt(name, key, "value", e))
    }

    fn backend(&self, error: BackendError) -> Error {
        Error::backend(Some(self.name), error)
    }
}

impl<K: FromKeyBytes, V: StoredValue> Range<'_, K, V> {
    /// Folds every entry, in order, into an accumulator: the fastest way
    /// through a range. Each value is validated in one reused buffer and no
    /// [`Entry`] is built; the first damaged entry ends the fold with
    /// [`Error::Corrupt`].
    ///
    /// ```
    /// # fn main() -> storage::Result<()> {
    /// let storage = storage::Storage::in_memory()?;
    /// storage.table::<u32, u32>("squares").put_batch((1..=10u32).map(|i| (i, i * i)))?;
    /// let sum = storage.read(|tx| {
    ///     tx.table::<u32, u32>("squares").range(4..=6)?.fold_entries(0, |sum, _, v| sum + v.to_native())
    /// })?;
    /// assert_eq!(sum, 16 + 25 + 36);
    /// # Ok(())
    /// # }
    /// ```
    pub fn fold_entries<B>(
        self,
        init: B,
        mut f: impl FnMut(B, &K, &V::Archived) -> B,
    ) -> Result<B> {
        let Some(inner) = self.inner else {
            return Ok(init);
        };
        let mut buf = self.buffers.take();
        let name = self.name;
        inner.try_fold_with(
            init,
            |acc, key, value| {
                let decoded =
                    K::from_key_bytes(key).map_err(|e| Error::corrupt(name, key, "key", e))?;
                let archived = value::check::<V>(value::aligned(value, &mut buf))
                    .map_err(|e| Error::corrupt(name, key, "value", e))?;
                Ok(f(acc, &decoded, archived))
            },
            |e| Error::backend(Some(name), e),
        )
    }
}

impl<'a, K: FromKeyBytes, V: StoredValue> Iterator for Range<'a, K, V> {
    type Item = Result<Entry<'a, K, V>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (name, buffers) = (self.name, self.buffers);
        let item = self
            .inner
            .as_mut()?
            .next_with(|k, v| Self::entry(name, buffers, k, v))?;
        Some(item.unwrap_or_else(|e| Err(self.backend(e))))
    }
}

impl<K: FromKeyBytes, V: StoredValue> DoubleEndedIterator for Range<'_, K, V> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        let (name, buffers) = (self.name, self.buffers);
        let item = self
            .inner
            .as_mut()?
            .next_back_with(|k, v| Self::entry(name, buffers, k, v))?;
        Some(item.unwrap_or_else(|e| Err(self.backend(e))))
    }
}

/// One validated entry of a [`Range`]: a decoded key and the archived value.
///
/// The value is an aligned copy of the stored bytes, validated once, in a
/// buffer the table handle lends and gets back when the entry is dropped (a
/// scan reuses one buffer); the store's pages are released as the iterator
/// moves on.
pub struct Entry<'a, K, V> {
    key: K,
    value: Buf<'a>,
    _types: PhantomData<fn() -> V>,
}

impl<'a, K, V: StoredValue> Entry<'a, K, V> {
    #[inline]
    pub(crate) fn new(
        key: K,
        bytes: &[u8],
        mut value: Buf<'a>,
    ) -> Result<Self, rkyv::rancor::BoxedError> {
        value::check::<V>(value.fill(bytes))?;
        Ok(Self {
            key,
            value,
            _types: PhantomData,
        })
    }

    /// The decoded key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The decoded key, by value.
    pub fn into_key(self) -> K {
        self.key
    }

    /// The archived value.
    #[inline]
    pub fn value(&self) -> &V::Archived {
        // SAFETY: `Entry::new` validated exactly these bytes with
        // `value::check::<V>`, and they cannot have changed since: the buffer
        // is owned by this entry, not written after validation, and its heap
        // allocation does not move when the entry does.
        unsafe { rkyv::access_unchecked::<V::Archived>(self.value.as_slice()) }
    }
}

impl<K: fmt::Debug, V> fmt::Debug for Entry<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
