//! [`Range`] and [`Entry`]: iterating validated entries in key order.
//!
//! A range holds no engine object between calls: it fetches its entries a
//! page at a time from either end (pages grow from 16 entries to 1,024), so
//! that a range left unfinished, or leaked, pins nothing in the store.
//! [`Range::fold_entries`] visits what is left in place, without pages.

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Bound, ControlFlow};
use std::collections::VecDeque;

use crate::backend::{AnyTable, Direction, ReadTable};
use crate::error::{Error, Result};
use crate::key::{self, FromKeyBytes, KeyBuf};
use crate::schema::Schema;
use crate::txn::WriteTransaction;
use crate::value::{self, Buf, StoredValue};

const FIRST_PAGE: usize = 16;
const LAST_PAGE: usize = 1024;
const PAGE_BYTES: usize = 1 << 18;

/// An iterator over the entries of a key range, from
/// [`ReadTable::range`](crate::ReadTable::range)/[`prefix`](crate::ReadTable::prefix)/[`iter`](crate::ReadTable::iter)
/// and the same on [`WriteTable`](crate::WriteTable).
///
/// Yields entries in key order, or backwards with `.rev()`. A damaged entry
/// yields [`Error::Corrupt`] and iteration goes on with the next; an error of
/// the engine ends the iteration after it is yielded.
pub struct Range<'a, K, V> {
    table: Option<AnyTable<'a>>,
    /// The keys not fetched yet.
    lo: Bound<KeyBuf>,
    hi: Bound<KeyBuf>,
    /// Everything between `lo` and `hi` has been fetched.
    drained: bool,
    /// Fetched from the front, ascending.
    front: Page,
    /// Fetched from the back, descending.
    back: Page,
    page: usize,
    /// In a write transaction, the record type read: its table may be
    /// migrated between two fetches.
    record: Option<(&'a WriteTransaction<'a>, &'static Schema)>,
    _types: PhantomData<fn() -> (K, V)>,
}

/// Entries fetched and not yet handed out.
#[derive(Default)]
struct Page {
    bytes: Vec<u8>,
    entries: VecDeque<(core::ops::Range<usize>, core::ops::Range<usize>)>,
}

impl Page {
    fn push(&mut self, key: &[u8], value: &[u8]) {
        if self.entries.is_empty() {
            self.bytes.clear();
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let middle = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.entries
            .push_back((start..middle, middle..self.bytes.len()));
    }
}

impl<'a, K, V> Range<'a, K, V> {
    /// The entries of `table` (none if it does not exist) between `lo` and `hi`.
    pub(crate) fn new(
        table: Option<AnyTable<'a>>,
        (lo, hi): (Bound<KeyBuf>, Bound<KeyBuf>),
    ) -> Self {
        Self {
            drained: table.is_none(),
            table,
            lo,
            hi,
            front: Page::default(),
            back: Page::default(),
            page: FIRST_PAGE,
            record: None,
            _types: PhantomData,
        }
    }

    /// The same range, refusing to read on once the write transaction `tx`
    /// holds the table with another version of the record type than `schema`.
    pub(crate) fn of_record(
        mut self,
        tx: &'a WriteTransaction<'a>,
        schema: &'static Schema,
    ) -> Self {
        self.record = Some((tx, schema));
        self
    }

    /// [`Error::SchemaMismatch`] if the table was migrated since the range began.
    fn check_schema(&self) -> Result<()> {
        let Some((tx, schema)) = self.record else {
            return Ok(());
        };
        match tx.row(schema.table)? {
            Some(row) if !row.holds(schema) => Err(crate::schema::mismatch(schema, &row)),
            _ => Ok(()),
        }
    }

    /// Fetches the next page from the front or the back; false if there was
    /// nothing left.
    fn fetch(&mut self, direction: Direction) -> Result<bool> {
        let Some(table) = self.table.as_ref().filter(|_| !self.drained) else {
            return Ok(false);
        };
        if let Err(e) = self.check_schema() {
            self.drained = true;
            return Err(e);
        }
        let want = self.page;
        self.page = (self.page * 2).min(LAST_PAGE);
        let page = match direction {
            Direction::Forward => &mut self.front,
            Direction::Backward => &mut self.back,
        };
        let mut got = 0;
        let mut bytes = 0;
        let mut last: Option<KeyBuf> = None;
        let range = (bound(&self.lo), bound(&self.hi));
        let scanned = table.scan(range, direction, |key, value| {
            page.push(key, value);
            got += 1;
            bytes += key.len() + value.len();
            if got == want || bytes >= PAGE_BYTES {
                last = Some(KeyBuf::from(key));
                return Ok(ControlFlow::Break(()));
            }
            Ok(ControlFlow::Continue(()))
        });
        if let Err(e) = scanned {
            self.drained = true;
            return Err(e);
        }
        match (last, direction) {
            (Some(key), Direction::Forward) => self.lo = Bound::Excluded(key),
            (Some(key), Direction::Backward) => self.hi = Bound::Excluded(key),
            (None, _) => self.drained = true,
        }
        Ok(got > 0)
    }
}

impl<K: FromKeyBytes, V: StoredValue> Range<'_, K, V> {
    /// The entry made of the bytes of one stored key and value.
    #[inline]
    fn entry(name: &str, key: &[u8], value: &[u8]) -> Result<Entry<K, V>> {
        let decoded = K::from_key_bytes(key)
            .map_err(|e| Error::corrupt(name, key, crate::error::Hex(key).to_string(), "key", e))?;
        Entry::new(decoded, value)
            .map_err(|e| Error::corrupt(name, key, key::show::<K>(key), "value", e))
    }

    fn name(&self) -> &str {
        self.table.as_ref().map_or("", |t| t.name())
    }

    /// Hands out the entry at one end of a page.
    fn pop(&mut self, from_front: bool, of_front: bool) -> Option<Result<Entry<K, V>>> {
        let page = if of_front {
            &mut self.front
        } else {
            &mut self.back
        };
        let (key, value) = if from_front {
            page.entries.pop_front()?
        } else {
            page.entries.pop_back()?
        };
        let page = if of_front { &self.front } else { &self.back };
        Some(Self::entry(
            self.name(),
            &page.bytes[key],
            &page.bytes[value],
        ))
    }

    /// Folds every remaining entry, in order, into an accumulator: the
    /// fastest way through a range. Each value is validated in one reused
    /// buffer and no [`Entry`] is built; the first damaged entry ends the
    /// fold with [`Error::Corrupt`].
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
        mut self,
        init: B,
        mut f: impl FnMut(B, &K, &V::Archived) -> B,
    ) -> Result<B> {
        let mut acc = init;
        while let Some(entry) = self.pop(true, true) {
            let entry = entry?;
            acc = f(acc, entry.key(), entry.value());
        }
        if let Some(table) = self.table.as_ref().filter(|_| !self.drained) {
            self.check_schema()?;
            let name = table.name();
            let mut buf = Buf::pooled();
            let mut slot = Some(acc);
            let range = (bound(&self.lo), bound(&self.hi));
            table.scan(range, Direction::Forward, |key, value| {
                let decoded = K::from_key_bytes(key).map_err(|e| {
                    Error::corrupt(name, key, crate::error::Hex(key).to_string(), "key", e)
                })?;
                let archived = value::check::<V>(value::aligned(value, &mut buf))
                    .map_err(|e| Error::corrupt(name, key, key::show::<K>(key), "value", e))?;
                if let Some(acc) = slot.take() {
                    slot = Some(f(acc, &decoded, archived));
                }
                Ok(ControlFlow::Continue(()))
            })?;
            self.drained = true;
            // `slot` is refilled after every entry.
            acc = match slot {
                Some(acc) => acc,
                None => unreachable_acc(),
            };
        }
        while let Some(entry) = self.pop(false, false) {
            let entry = entry?;
            acc = f(acc, entry.key(), entry.value());
        }
        Ok(acc)
    }
}

fn bound(bound: &Bound<KeyBuf>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_slice()),
        Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The accumulator is put back after each step of a fold; it cannot be missing.
#[cold]
fn unreachable_acc<B>() -> B {
    unreachable!("fold accumulator taken and not returned")
}

impl<K: FromKeyBytes, V: StoredValue> Iterator for Range<'_, K, V> {
    type Item = Result<Entry<K, V>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.front.entries.is_empty() {
            match self.fetch(Direction::Forward) {
                Ok(true) => {}
                Ok(false) => return self.pop(false, false),
                Err(e) => return Some(Err(e)),
            }
        }
        self.pop(true, true)
    }
}

impl<K: FromKeyBytes, V: StoredValue> DoubleEndedIterator for Range<'_, K, V> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.back.entries.is_empty() {
            match self.fetch(Direction::Backward) {
                Ok(true) => {}
                Ok(false) => return self.pop(false, true),
                Err(e) => return Some(Err(e)),
            }
        }
        self.pop(true, false)
    }
}

/// One validated entry of a [`Range`]: a decoded key and the archived value.
///
/// The value is an aligned copy of the stored bytes, validated once, in a
/// buffer from a small per-thread pool that gets it back when the entry is
/// dropped (a scan reuses one buffer).
pub struct Entry<K, V> {
    key: K,
    value: Buf<'static>,
    _types: PhantomData<fn() -> V>,
}

impl<K, V: StoredValue> Entry<K, V> {
    #[inline]
    pub(crate) fn new(key: K, bytes: &[u8]) -> Result<Self, rkyv::rancor::BoxedError> {
        let mut value = Buf::pooled();
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

impl<K: fmt::Debug, V> fmt::Debug for Entry<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
