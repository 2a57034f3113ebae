//! [`Range`] and [`Entry`]: iterating validated entries in key order.

use core::fmt;
use core::marker::PhantomData;

use crate::backend::{BackendError, RawBytes, RawRange};
use crate::error::{Error, Result};
use crate::key::FromKeyBytes;
use crate::value::{self, PooledBuf, StoredValue};

/// An iterator over the entries of a key range, from
/// [`ReadTable::range`]/[`prefix`](ReadTable::prefix)/[`iter`](ReadTable::iter)
/// and the same on [`WriteTable`].
///
/// Yields entries in key order, or backwards with `.rev()`. A damaged entry
/// yields [`Error::Corrupt`] and iteration goes on with the next.
pub struct Range<'a, K, V> {
    name: &'a str,
    inner: Option<RawRange<'a>>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'a, K, V> Range<'a, K, V> {
    /// Entries of `inner` (none if the table does not exist), reported under `name`.
    pub(crate) fn new(name: &'a str, inner: Option<RawRange<'a>>) -> Self {
        Self {
            name,
            inner,
            _types: PhantomData,
        }
    }
}

impl<'a, K: FromKeyBytes, V: StoredValue> Range<'a, K, V> {
    fn entry(
        &self,
        item: Result<(RawBytes<'a>, RawBytes<'a>), BackendError>,
    ) -> Result<Entry<'a, K, V>> {
        let (key, value) = item.map_err(|e| Error::backend(Some(self.name), e))?;
        let decoded = K::from_key_bytes(key.bytes())
            .map_err(|e| Error::corrupt(self.name, key.bytes(), "key", e))?;
        Entry::new(decoded, value).map_err(|e| Error::corrupt(self.name, key.bytes(), "value", e))
    }
}

impl<'a, K: FromKeyBytes, V: StoredValue> Iterator for Range<'a, K, V> {
    type Item = Result<Entry<'a, K, V>>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.as_mut()?.next()?;
        Some(self.entry(item))
    }
}

impl<K: FromKeyBytes, V: StoredValue> DoubleEndedIterator for Range<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.inner.as_mut()?.next_back()?;
        Some(self.entry(item))
    }
}

/// One validated entry of a [`Range`]: a decoded key and the archived value.
pub struct Entry<'a, K, V> {
    key: K,
    value: ValueBytes<'a>,
    _value: PhantomData<fn() -> V>,
}

/// Where an entry's validated value bytes live.
enum ValueBytes<'a> {
    /// In the store's page, which happened to be aligned.
    InPlace(RawBytes<'a>),
    /// In an aligned copy.
    Copied(PooledBuf),
}

impl<'a, K, V: StoredValue> Entry<'a, K, V> {
    pub(crate) fn new(key: K, value: RawBytes<'a>) -> Result<Self, rkyv::rancor::BoxedError> {
        let mut buf = PooledBuf::take();
        let aligned = value::aligned(value.bytes(), &mut buf);
        value::check::<V>(aligned)?;
        let in_place = core::ptr::eq(aligned, value.bytes());
        Ok(Self {
            key,
            value: if in_place {
                ValueBytes::InPlace(value)
            } else {
                ValueBytes::Copied(buf)
            },
            _value: PhantomData,
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
    pub fn value(&self) -> &V::Archived {
        let bytes = match &self.value {
            ValueBytes::InPlace(raw) => raw.bytes(),
            ValueBytes::Copied(buf) => buf.as_slice(),
        };
        // SAFETY: `Entry::new` validated exactly these bytes with
        // `value::check::<V>` at this address, and they cannot have changed
        // since: the store's page is immutable while its guard is held (the
        // range borrows the table, so no write can happen meanwhile), and the
        // copy is owned by this entry and never written after validation.
        unsafe { rkyv::access_unchecked::<V::Archived>(bytes) }
    }
}

impl<K: fmt::Debug, V> fmt::Debug for Entry<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
