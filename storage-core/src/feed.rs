//! Change feeds: subscriptions to the committed changes of a record type
//! ([`Storage::watch`](crate::Storage::watch)), and the durable change log of
//! record types that keep one (`#[stored(changes)]`,
//! [`Storage::changes`](crate::Storage::changes)).
//!
//! Changes are collected by the write transaction as records are written
//! (under its savepoints: a write undone is a change forgotten) and handed
//! out after the commit, in commit order and in write order within a commit,
//! one [`Commit`] per transaction. Nothing is collected while no
//! subscription exists and the record type keeps no log.
//!
//! Each subscription has a bounded queue, counted in changes: a subscriber
//! that does not keep up never blocks a writer; what does not fit is dropped
//! and the subscriber gets [`Notice::Lagged`] in its place, and may catch up
//! from the durable log. Subscriptions are found per commit through an index
//! by table, then by key prefix or index value prefix, so that the cost of a
//! commit does not grow with subscriptions that cannot match it (key and
//! index *ranges* other than prefixes are tested one by one).
//!
//! The durable log of a table is the table `__changes:{table}`: under the
//! empty key, the next sequence number and the first one kept; under
//! `seq ++ n` (big-endian), part `n` of the changes of the commit with
//! sequence number `seq` (one part, or several of about 256 KiB for a big
//! commit). It is written in the transaction that makes the changes.

use core::marker::PhantomData;
use core::ops::{Bound, ControlFlow, RangeBounds};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use rkyv::util::AlignedVec;

use crate::backend::{AnyTable, Direction, ReadTable as _, WriteTable as _};
use crate::error::{Error, Result};
use crate::index::{IndexValues, RecordInfo, RecordMeta};
use crate::key::{AsKey, FromKeyBytes, KeyBuf, KeyPrefix};
use crate::record::StoredRecord;
use crate::schema::Schema;
use crate::value::{self, ValueDeserializer};

/// The changes a subscription holds before it lags, by default.
pub const DEFAULT_CAPACITY: usize = 4096;

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A record was stored under a key that had none.
    Insert,
    /// A record replaced another under the same key.
    Update,
    /// The record under a key was removed.
    Delete,
}

/// Where the parts of one change lie in an [`Arena`].
#[derive(Debug, Clone, Copy)]
struct Span {
    key: (usize, usize),
    old: Option<(usize, usize)>,
    new: Option<(usize, usize)>,
    /// The record type that wrote it; `None` for a change read back from
    /// the durable log (whose table's schema was checked).
    schema: Option<&'static Schema>,
}

impl Span {
    fn kind(&self) -> ChangeKind {
        match (self.old, self.new) {
            (None, _) => ChangeKind::Insert,
            (Some(_), Some(_)) => ChangeKind::Update,
            (Some(_), None) => ChangeKind::Delete,
        }
    }
}

/// The changes of one transaction, or of one read of the durable log:
/// their keys and the records before and after, one after another in one
/// buffer (records aligned for rkyv), shared by every subscriber.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    bytes: AlignedVec,
    spans: Vec<Span>,
}

/// What an [`Arena`] aligns records to: rkyv's largest alignment.
const ALIGN: usize = 16;

impl Arena {
    fn put(&mut self, bytes: &[u8], align: bool) -> (usize, usize) {
        if align {
            let pad = self.bytes.len().next_multiple_of(ALIGN) - self.bytes.len();
            self.bytes.extend_from_slice(&[0; ALIGN][..pad]);
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        (start, self.bytes.len())
    }

    /// Adds a change by the record type `schema` (if known): `key` held
    /// `old` and holds `new`.
    pub(crate) fn push(
        &mut self,
        schema: Option<&'static Schema>,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) {
        let key = self.put(key, false);
        let old = old.map(|b| self.put(b, true));
        let new = new.map(|b| self.put(b, true));
        self.spans.push(Span {
            key,
            old,
            new,
            schema,
        });
    }

    /// A compact copy of the changes `changes` alone (numbered from 0).
    fn subset(&self, changes: &[u32]) -> Arena {
        let mut out = Arena::default();
        for &c in changes {
            let c = c as usize;
            out.push(
                self.spans[c].schema,
                self.key(c),
                self.before(c),
                self.after(c),
            );
        }
        out
    }

    /// The schema of change `change`, if known.
    fn schema(&self, change: usize) -> Option<&'static Schema> {
        self.spans[change].schema
    }

    /// The same buffers, empty, unless they grew too large to keep.
    pub(crate) fn emptied(mut self) -> Self {
        const KEPT: usize = 4 << 20;
        if self.bytes.capacity() > KEPT {
            return Arena::default();
        }
        self.bytes.clear();
        self.spans.clear();
        self
    }

    /// The number of changes.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Forgets the changes from number `len` on.
    pub(crate) fn truncate(&mut self, len: usize) {
        if let Some(first) = self.spans.get(len) {
            self.bytes.resize(first.key.0, 0);
            self.spans.truncate(len);
        }
    }

    fn slice(&self, (start, end): (usize, usize)) -> &[u8] {
        &self.bytes[start..end]
    }

    fn key(&self, change: usize) -> &[u8] {
        self.slice(self.spans[change].key)
    }

    fn before(&self, change: usize) -> Option<&[u8]> {
        self.spans[change].old.map(|r| self.slice(r))
    }

    fn after(&self, change: usize) -> Option<&[u8]> {
        self.spans[change].new.map(|r| self.slice(r))
    }

    /// Change `change` in the durable log's encoding: the key, then the old
    /// and the new bytes, each with a `u32` length (`u32::MAX` for none).
    fn encode(&self, change: usize, out: &mut Vec<u8>) {
        let mut part = |bytes: Option<&[u8]>| match bytes {
            Some(bytes) => {
                out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                out.extend_from_slice(bytes);
            }
            None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
        };
        part(Some(self.key(change)));
        part(self.before(change));
        part(self.after(change));
    }

    /// Adds the changes `bytes` encodes, one after another; false if they
    /// are not changes.
    fn decode(&mut self, bytes: &[u8]) -> bool {
        let mut input = bytes;
        while !input.is_empty() {
            let mut part = || -> Option<Option<&[u8]>> {
                let (len, rest) = input.split_first_chunk::<4>()?;
                let len = u32::from_be_bytes(*len);
                if len == u32::MAX {
                    input = rest;
                    return Some(None);
                }
                let (bytes, rest) = rest.split_at_checked(len as usize)?;
                input = rest;
                Some(Some(bytes))
            };
            let (Some(Some(key)), Some(old), Some(new)) = (part(), part(), part()) else {
                return false;
            };
            self.push(None, key, old, new);
        }
        true
    }
}

/// The changes of one record table in one transaction, for the feed.
pub(crate) struct TableChanges {
    pub(crate) table: Arc<str>,
    pub(crate) arena: Arc<Arena>,
    /// The table's changes in the arena, in write order.
    pub(crate) changes: Arc<[u32]>,
    /// The commit's sequence number in the table's durable log.
    pub(crate) seq: Option<u64>,
}

/// What a subscription wants of its table.
#[derive(Debug, Clone)]
enum Filter {
    /// The record under this very key.
    Key(Vec<u8>),
    /// Keys starting with these bytes (all of them: none).
    KeyPrefix(Vec<u8>),
    KeyRange(Bound<Vec<u8>>, Bound<Vec<u8>>),
    /// Records whose value of the index starts with these bytes, before or
    /// after the change.
    IndexPrefix(IndexOf, Vec<u8>),
    IndexRange(IndexOf, Bound<Vec<u8>>, Bound<Vec<u8>>),
}

/// An index of the subscriber's record type: values are computed with its
/// definitions, whichever record type sharing the table wrote the change.
#[derive(Clone, Copy)]
struct IndexOf {
    meta: RecordMeta,
    index: usize,
}

impl IndexOf {
    /// The index's identity: its record type's schema and its number.
    fn id(&self) -> (usize, usize) {
        (
            self.meta.schema as *const crate::schema::Schema as usize,
            self.index,
        )
    }

    /// The values the stored record `bytes` has for the index, added to
    /// `out`. A panic in a method computing them (the change is committed
    /// already) counts as no values.
    fn values(&self, bytes: &[u8], out: &mut Vec<KeyBuf>) {
        let computed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut values = IndexValues::new();
            self.meta.stored_values(bytes, self.index, &mut values);
            values
        }));
        if let Ok(values) = computed {
            out.extend(values.iter().map(KeyBuf::from));
        }
    }
}

impl core::fmt::Debug for IndexOf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = self
            .meta
            .schema
            .indexes
            .get(self.index)
            .map_or("?", |def| def.name);
        write!(f, "index `{name}` of {}", self.meta.schema.record)
    }
}

fn contains(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>, bytes: &[u8]) -> bool {
    let above = match lo {
        Bound::Included(lo) => bytes >= lo.as_slice(),
        Bound::Excluded(lo) => bytes > lo.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match hi {
        Bound::Included(hi) => bytes <= hi.as_slice(),
        Bound::Excluded(hi) => bytes < hi.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

/// One item of a subscription's queue.
enum Item {
    Commit(Option<u64>, Arc<Arena>, Arc<[u32]>),
    Lagged(u64),
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Item>,
    /// Changes in `items`.
    held: usize,
    closed: bool,
    waker: Option<core::task::Waker>,
}

/// A subscription's queue, shared with the hub.
pub(crate) struct Queue {
    table: Arc<str>,
    filter: Filter,
    capacity: usize,
    state: Mutex<QueueState>,
    ready: Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a commit's matching changes, or counts them as missed.
    fn push(&self, seq: Option<u64>, arena: &Arc<Arena>, changes: Arc<[u32]>) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        let n = changes.len();
        if state.held + n > self.capacity {
            match state.items.back_mut() {
                Some(Item::Lagged(missed)) => *missed += n as u64,
                _ => state.items.push_back(Item::Lagged(n as u64)),
            }
        } else {
            state.held += n;
            state
                .items
                .push_back(Item::Commit(seq, arena.clone(), changes));
        }
        let waker = state.waker.take();
        drop(state);
        self.ready.notify_one();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Counts `n` changes as missed, at this point of the queue.
    fn lag(&self, n: u64) {
        let mut state = self.lock();
        if state.closed || n == 0 {
            return;
        }
        match state.items.back_mut() {
            Some(Item::Lagged(missed)) => *missed += n,
            _ => state.items.push_back(Item::Lagged(n)),
        }
        let waker = state.waker.take();
        drop(state);
        self.ready.notify_one();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let waker = state.waker.take();
        drop(state);
        self.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The next item, waiting until `deadline` (`None`: forever) for one;
    /// `Err(())` once the storage is gone and the queue empty.
    fn pop(&self, deadline: Option<Instant>) -> core::result::Result<Option<Item>, ()> {
        let mut state = self.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                if let Item::Commit(_, _, changes) = &item {
                    state.held -= changes.len();
                }
                return Ok(Some(item));
            }
            if state.closed {
                return Err(());
            }
            match deadline {
                None => {
                    state = self
                        .ready
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    state = self
                        .ready
                        .wait_timeout(state, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
            }
        }
    }

    /// For a `Stream`: the next item, or registers `waker` to be woken.
    #[cfg(feature = "tokio")]
    fn poll_pop(
        &self,
        waker: &core::task::Waker,
    ) -> core::task::Poll<core::result::Result<Item, ()>> {
        let mut state = self.lock();
        if let Some(item) = state.items.pop_front() {
            if let Item::Commit(_, _, changes) = &item {
                state.held -= changes.len();
            }
            return core::task::Poll::Ready(Ok(item));
        }
        if state.closed {
            return core::task::Poll::Ready(Err(()));
        }
        state.waker = Some(waker.clone());
        core::task::Poll::Pending
    }
}

/// Subscriptions to values of one index, by value prefix.
type ByValue = BTreeMap<Vec<u8>, Vec<Arc<Queue>>>;

/// The subscriptions of one table, indexed.
#[derive(Default)]
struct TableSubs {
    /// Subscriptions to one key, by key.
    keys: BTreeMap<Vec<u8>, Vec<Arc<Queue>>>,
    /// Key-prefix subscriptions, by prefix (the whole table: the empty one).
    prefixes: BTreeMap<Vec<u8>, Vec<Arc<Queue>>>,
    /// Index-value-prefix subscriptions, by index, then prefix.
    index_prefixes: BTreeMap<(usize, usize), (IndexOf, ByValue)>,
    /// Range subscriptions, tested one by one.
    ranges: Vec<Arc<Queue>>,
    /// The lengths of the key prefixes in `prefixes` but the empty one,
    /// with how many prefixes have each.
    lengths: BTreeMap<usize, usize>,
}

impl TableSubs {
    fn is_empty(&self) -> bool {
        self.keys.is_empty()
            && self.prefixes.is_empty()
            && self.index_prefixes.is_empty()
            && self.ranges.is_empty()
    }

    /// Every subscription of the table.
    fn all(&self) -> impl Iterator<Item = &Arc<Queue>> {
        self.keys
            .values()
            .flatten()
            .chain(self.prefixes.values().flatten())
            .chain(
                self.index_prefixes
                    .values()
                    .flat_map(|(_, m)| m.values().flatten()),
            )
            .chain(&self.ranges)
    }

    fn insert(&mut self, queue: Arc<Queue>) {
        if let Filter::KeyPrefix(prefix) = &queue.filter
            && !prefix.is_empty()
            && !self.prefixes.contains_key(prefix)
        {
            *self.lengths.entry(prefix.len()).or_default() += 1;
        }
        self.insert_queue(queue);
    }

    fn remove(&mut self, queue: &Arc<Queue>) {
        self.remove_queue(queue);
        if let Filter::KeyPrefix(prefix) = &queue.filter
            && !prefix.is_empty()
            && !self.prefixes.contains_key(prefix)
            && let Some(count) = self.lengths.get_mut(&prefix.len())
        {
            *count -= 1;
            if *count == 0 {
                self.lengths.remove(&prefix.len());
            }
        }
    }

    fn insert_queue(&mut self, queue: Arc<Queue>) {
        match &queue.filter {
            Filter::Key(key) => self.keys.entry(key.clone()).or_default().push(queue),
            Filter::KeyPrefix(prefix) => {
                self.prefixes.entry(prefix.clone()).or_default().push(queue)
            }
            Filter::IndexPrefix(of, prefix) => self
                .index_prefixes
                .entry(of.id())
                .or_insert_with(|| (*of, BTreeMap::new()))
                .1
                .entry(prefix.clone())
                .or_default()
                .push(queue),
            Filter::KeyRange(..) | Filter::IndexRange(..) => self.ranges.push(queue),
        }
    }

    fn remove_queue(&mut self, queue: &Arc<Queue>) {
        let gone = |list: &mut Vec<Arc<Queue>>| list.retain(|q| !Arc::ptr_eq(q, queue));
        match &queue.filter {
            Filter::Key(key) => {
                if let Some(list) = self.keys.get_mut(key) {
                    gone(list);
                    if list.is_empty() {
                        self.keys.remove(key);
                    }
                }
            }
            Filter::KeyPrefix(prefix) => {
                if let Some(list) = self.prefixes.get_mut(prefix) {
                    gone(list);
                    if list.is_empty() {
                        self.prefixes.remove(prefix);
                    }
                }
            }
            Filter::IndexPrefix(of, prefix) => {
                if let Some((_, by_value)) = self.index_prefixes.get_mut(&of.id()) {
                    if let Some(list) = by_value.get_mut(prefix) {
                        gone(list);
                        if list.is_empty() {
                            by_value.remove(prefix);
                        }
                    }
                    if by_value.is_empty() {
                        self.index_prefixes.remove(&of.id());
                    }
                }
            }
            Filter::KeyRange(..) | Filter::IndexRange(..) => gone(&mut self.ranges),
        }
    }

    /// The subscriptions to the whole table.
    fn whole(&self) -> &[Arc<Queue>] {
        self.prefixes.get(&[][..]).map_or(&[], Vec::as_slice)
    }

    /// Whether a change can match other subscriptions than the whole table's.
    fn narrowed(&self) -> bool {
        !self.keys.is_empty()
            || self.prefixes.len() > usize::from(!self.whole().is_empty())
            || !self.index_prefixes.is_empty()
            || !self.ranges.is_empty()
    }

    /// Calls `matched` with every narrowed subscription change `change` of
    /// `arena` matches (a subscription may be named more than once).
    fn matches(&self, arena: &Arena, change: usize, matched: &mut impl FnMut(&Arc<Queue>)) {
        let key = arena.key(change);
        if let Some(list) = self.keys.get(key) {
            list.iter().for_each(&mut *matched);
        }
        for len in self.lengths.keys().copied().filter(|len| *len <= key.len()) {
            if let Some(list) = self.prefixes.get(&key[..len]) {
                list.iter().for_each(&mut *matched);
            }
        }
        let mut values: Vec<KeyBuf> = Vec::new();
        let value_of = |of: &IndexOf, values: &mut Vec<KeyBuf>| {
            values.clear();
            for bytes in [arena.before(change), arena.after(change)]
                .into_iter()
                .flatten()
            {
                of.values(bytes, values);
            }
        };
        for (of, by_value) in self.index_prefixes.values() {
            value_of(of, &mut values);
            for value in &values {
                let value = value.as_slice();
                for len in 0..=value.len() {
                    if let Some(list) = by_value.get(&value[..len]) {
                        list.iter().for_each(&mut *matched);
                    }
                }
            }
        }
        for queue in &self.ranges {
            let hit = match &queue.filter {
                Filter::KeyRange(lo, hi) => contains(lo, hi, key),
                Filter::IndexRange(of, lo, hi) => {
                    value_of(of, &mut values);
                    values.iter().any(|v| contains(lo, hi, v.as_slice()))
                }
                _ => false,
            };
            if hit {
                matched(queue);
            }
        }
    }
}

/// The subscriptions of one storage.
#[derive(Default)]
pub(crate) struct Hub {
    /// Subscriptions alive: while none is, writes collect no changes.
    active: AtomicUsize,
    tables: RwLock<HashMap<Arc<str>, TableSubs>>,
    /// The storage is gone: new subscriptions start closed.
    closed: AtomicBool,
}

impl core::fmt::Debug for Hub {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hub")
            .field("subscriptions", &self.active.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Whether writes to `table` must collect their changes for subscribers.
    pub(crate) fn watched(&self, table: &str) -> bool {
        self.active.load(Ordering::Acquire) > 0
            && self
                .tables
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains_key(table)
    }

    fn subscribe(&self, table: Arc<str>, filter: Filter, capacity: usize) -> Arc<Queue> {
        let queue = Arc::new(Queue {
            table: table.clone(),
            filter,
            capacity: capacity.max(1),
            state: Mutex::new(QueueState::default()),
            ready: Condvar::new(),
        });
        let mut tables = self
            .tables
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tables.entry(table).or_default().insert(queue.clone());
        self.active.fetch_add(1, Ordering::AcqRel);
        if self.closed.load(Ordering::Acquire) {
            queue.close();
        }
        queue
    }

    fn unsubscribe(&self, queue: &Arc<Queue>) {
        let mut tables = self
            .tables
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(subs) = tables.get_mut(&queue.table) {
            subs.remove(queue);
            if subs.is_empty() {
                tables.remove(&queue.table);
            }
        }
        self.active.fetch_sub(1, Ordering::AcqRel);
    }

    /// Hands a committed transaction's changes to the subscriptions they match.
    pub(crate) fn publish(&self, committed: &[TableChanges]) {
        if self.active.load(Ordering::Acquire) == 0 {
            return;
        }
        let tables = self
            .tables
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for changes in committed {
            let Some(subs) = tables.get(&changes.table) else {
                continue;
            };
            // A queue holds its changes' buffer: not a big commit's whole
            // buffer for a few of its changes.
            let compact = |list: Vec<u32>| -> (Arc<Arena>, Arc<[u32]>) {
                if list.len() * 2 >= changes.arena.len() {
                    (changes.arena.clone(), list.into())
                } else {
                    let numbers: Arc<[u32]> = (0..list.len() as u32).collect();
                    (Arc::new(changes.arena.subset(&list)), numbers)
                }
            };
            let whole = subs.whole();
            if !whole.is_empty() {
                let (arena, list) = compact(changes.changes.to_vec());
                for queue in whole {
                    queue.push(changes.seq, &arena, list.clone());
                }
            }
            if !subs.narrowed() {
                continue;
            }
            // Per subscription, in the order first matched, its changes in
            // write order.
            let mut out: Vec<(Arc<Queue>, Vec<u32>)> = Vec::new();
            for &change in changes.changes.iter() {
                subs.matches(&changes.arena, change as usize, &mut |queue| match out
                    .iter_mut()
                    .find(|(q, _)| Arc::ptr_eq(q, queue))
                {
                    Some((_, list)) => {
                        if list.last() != Some(&change) {
                            list.push(change);
                        }
                    }
                    None => out.push((queue.clone(), vec![change])),
                });
            }
            for (queue, list) in out {
                let (arena, list) = compact(list);
                queue.push(changes.seq, &arena, list);
            }
        }
    }

    /// The storage is gone: every subscription ends once drained.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let tables = self
            .tables
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for subs in tables.values() {
            subs.all().for_each(|queue| queue.close());
        }
    }

    /// Tells every subscription of the tables in `missed` that it missed
    /// that many changes: a transaction that did not collect them (it had
    /// written the table before the subscription was made), or a commit
    /// whose outcome is unknown.
    pub(crate) fn lagged(&self, missed: &[(&str, u64)]) {
        if self.active.load(Ordering::Acquire) == 0 {
            return;
        }
        let tables = self
            .tables
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (table, n) in missed {
            if let Some(subs) = tables.get(*table) {
                subs.all().for_each(|queue| queue.lag(*n));
            }
        }
    }
}

/// A record as it was before or after a change: validated, read with the
/// generated accessors through [`get`](Self::get).
pub struct Image<R> {
    arena: Arc<Arena>,
    range: (usize, usize),
    key: (usize, usize),
    _record: PhantomData<fn() -> R>,
}

impl<R: StoredRecord> Image<R> {
    /// Validates the record at `range` of `arena`, if there is one.
    fn of(
        arena: &Arc<Arena>,
        key: (usize, usize),
        range: Option<(usize, usize)>,
        table: &str,
    ) -> Result<Option<Self>> {
        let Some(range) = range else { return Ok(None) };
        let key_bytes = arena.slice(key);
        value::check::<R>(arena.slice(range)).map_err(|e| {
            Error::corrupt(
                table,
                key_bytes,
                crate::key::show::<R::Key>(key_bytes),
                "value",
                e,
            )
        })?;
        Ok(Some(Image {
            arena: arena.clone(),
            range,
            key,
            _record: PhantomData,
        }))
    }

    fn bytes(&self) -> &[u8] {
        self.arena.slice(self.range)
    }

    /// The archived record.
    pub fn get(&self) -> &R::Archived {
        // SAFETY: `Image::of` validated exactly these bytes as `R`; the
        // arena is shared immutably and never written again.
        unsafe { rkyv::access_unchecked::<R::Archived>(self.bytes()) }
    }

    /// The record, deserialized.
    pub fn to_owned(&self) -> Result<R>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        let key = self.arena.slice(self.key);
        value::read_owned::<R>(self.bytes()).map_err(|e| Error::Corrupt {
            table: R::SCHEMA.table.to_owned(),
            key: key.to_vec(),
            shown: crate::key::show::<R::Key>(key),
            part: "value",
            source: e,
        })
    }
}

impl<R> core::fmt::Debug for Image<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Image").finish_non_exhaustive()
    }
}

/// One change of a record: its key, and the record before and after.
pub struct Change<R: StoredRecord> {
    key: R::Key,
    kind: ChangeKind,
    old: Option<Image<R>>,
    new: Option<Image<R>>,
}

impl<R: StoredRecord> Change<R> {
    fn of(arena: &Arc<Arena>, change: usize, table: &str) -> Result<Self> {
        let span = arena.spans[change];
        if let Some(writer) = arena.schema(change)
            && !crate::schema::compatible(writer, R::SCHEMA)
        {
            // Written through another layout (a migration in the same
            // transaction, or another record type on the table).
            return Err(crate::schema::mismatch(
                R::SCHEMA,
                &crate::schema::StoredRow::of(writer),
            ));
        }
        let bytes = arena.key(change);
        let key = R::Key::from_key_bytes(bytes).map_err(|e| {
            Error::corrupt(table, bytes, crate::error::Hex(bytes).to_string(), "key", e)
        })?;
        Ok(Change {
            key,
            kind: span.kind(),
            old: Image::of(arena, span.key, span.old, table)?,
            new: Image::of(arena, span.key, span.new, table)?,
        })
    }

    /// Insert, update or delete.
    pub fn kind(&self) -> ChangeKind {
        self.kind
    }

    /// The record's key.
    pub fn key(&self) -> &R::Key {
        &self.key
    }

    /// The record before the change: `None` for an insert.
    pub fn before(&self) -> Option<&Image<R>> {
        self.old.as_ref()
    }

    /// The record after the change: `None` for a delete.
    pub fn after(&self) -> Option<&Image<R>> {
        self.new.as_ref()
    }
}

impl<R: StoredRecord> core::fmt::Debug for Change<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Change")
            .field("kind", &self.kind)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The changes one committed transaction made to one record table (those a
/// subscription matched).
pub struct Commit<R: StoredRecord> {
    seq: Option<u64>,
    changes: Vec<Change<R>>,
}

impl<R: StoredRecord> Commit<R> {
    fn of(seq: Option<u64>, arena: &Arc<Arena>, changes: &[u32]) -> Result<Self> {
        let table = R::SCHEMA.table;
        Ok(Commit {
            seq,
            changes: changes
                .iter()
                .map(|c| Change::of(arena, *c as usize, table))
                .collect::<Result<_>>()?,
        })
    }

    /// The commit's sequence number in the table's durable log, for a
    /// record type that keeps one (`#[stored(changes)]`).
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// The changes, in the order they were written.
    pub fn changes(&self) -> &[Change<R>] {
        &self.changes
    }

    /// The changes, by value.
    pub fn into_changes(self) -> Vec<Change<R>> {
        self.changes
    }
}

impl<R: StoredRecord> core::fmt::Debug for Commit<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Commit")
            .field("seq", &self.seq)
            .field("changes", &self.changes)
            .finish()
    }
}

/// What a subscription hands out.
#[derive(Debug)]
pub enum Notice<R: StoredRecord> {
    /// A committed transaction's changes.
    Commit(Commit<R>),
    /// The subscriber fell behind: `missed` changes were dropped here.
    /// A record type with a durable log can catch up with
    /// [`Changes::since`].
    Lagged {
        /// The changes dropped.
        missed: u64,
    },
}

impl<R: StoredRecord> Notice<R> {
    fn of(item: Item) -> Result<Self> {
        Ok(match item {
            Item::Commit(seq, arena, changes) => Notice::Commit(Commit::of(seq, &arena, &changes)?),
            Item::Lagged(missed) => Notice::Lagged { missed },
        })
    }
}

/// A subscription to committed changes of the record type `R`, from
/// [`Storage::watch`](crate::Storage::watch). Narrow it before the first
/// read with [`keys`](Self::keys), [`prefix`](Self::prefix), or an index
/// (the generated `{Record}Watch` trait: `by_country(..)`).
///
/// Iterating blocks until the next commit; [`next_timeout`](Self::next_timeout)
/// and [`try_next`](Self::try_next) do not. Iteration ends when the last
/// handle of the storage is dropped and the queue is drained. Dropping the
/// subscription unsubscribes.
///
/// Events come from commits of this process. On etcd, changes committed by
/// other processes are read from a durable log with
/// [`Changes::follow`].
pub struct Subscription<R> {
    hub: Arc<Hub>,
    queue: Option<Arc<Queue>>,
    table: Arc<str>,
    filter: Filter,
    capacity: usize,
    _record: PhantomData<fn() -> R>,
}

impl<R: StoredRecord> Subscription<R> {
    pub(crate) fn new(hub: Arc<Hub>) -> Self {
        let table: Arc<str> = Arc::from(R::SCHEMA.table);
        let filter = Filter::KeyPrefix(Vec::new());
        let queue = hub.subscribe(table.clone(), filter.clone(), DEFAULT_CAPACITY);
        Subscription {
            hub,
            queue: Some(queue),
            table,
            filter,
            capacity: DEFAULT_CAPACITY,
            _record: PhantomData,
        }
    }

    /// Subscribes again with another filter or capacity; what was queued is dropped.
    fn with(mut self, filter: Option<Filter>, capacity: Option<usize>) -> Self {
        if let Some(queue) = self.queue.take() {
            self.hub.unsubscribe(&queue);
        }
        if let Some(filter) = filter {
            self.filter = filter;
        }
        if let Some(capacity) = capacity {
            self.capacity = capacity;
        }
        self.queue = Some(self.hub.subscribe(
            self.table.clone(),
            self.filter.clone(),
            self.capacity,
        ));
        self
    }

    /// Only changes of keys in `bounds`.
    pub fn keys<Q: AsKey<R::Key>>(self, bounds: impl RangeBounds<Q>) -> Self {
        let bound = |b: Bound<&Q>| match b {
            Bound::Included(k) => Bound::Included(k.into_key_bytes().as_ref().to_vec()),
            Bound::Excluded(k) => Bound::Excluded(k.into_key_bytes().as_ref().to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let filter = Filter::KeyRange(bound(bounds.start_bound()), bound(bounds.end_bound()));
        self.with(Some(filter), None)
    }

    /// Only changes of the record under `key`.
    pub fn key(self, key: impl AsKey<R::Key>) -> Self {
        let bytes = key.into_key_bytes().as_ref().to_vec();
        self.with(Some(Filter::Key(bytes)), None)
    }

    /// Only changes of keys starting with `prefix` (leading parts of a
    /// composite key).
    pub fn prefix<P: KeyPrefix<R::Key>>(self, prefix: impl AsKey<P>) -> Self {
        let bytes = prefix.into_key_bytes().as_ref().to_vec();
        self.with(Some(Filter::KeyPrefix(bytes)), None)
    }

    /// Holds up to `changes` changes before lagging (default
    /// [`DEFAULT_CAPACITY`]).
    pub fn capacity(self, changes: usize) -> Self {
        self.with(None, Some(changes))
    }

    /// For the generated `{Record}Watch` trait: records whose value of index
    /// number `index` (before or after the change) lies in the bounds of
    /// `prefix_bounds` of a value or value prefix.
    #[doc(hidden)]
    pub fn __index_prefix(self, index: usize, bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>)) -> Self {
        let of = IndexOf {
            meta: RecordInfo::<R>::of().meta,
            index,
        };
        let filter = match bounds {
            (Bound::Included(prefix), _) => Filter::IndexPrefix(of, prefix),
            (lo, hi) => Filter::IndexRange(of, lo, hi),
        };
        self.with(Some(filter), None)
    }

    /// For the generated `{Record}Watch` trait: records whose value of index
    /// number `index` lies in the encoded bounds.
    #[doc(hidden)]
    pub fn __index_range(self, index: usize, (lo, hi): (Bound<Vec<u8>>, Bound<Vec<u8>>)) -> Self {
        let of = IndexOf {
            meta: RecordInfo::<R>::of().meta,
            index,
        };
        self.with(Some(Filter::IndexRange(of, lo, hi)), None)
    }

    fn queue(&self) -> Option<&Arc<Queue>> {
        self.queue.as_ref()
    }

    /// The next notice, waiting at most `timeout`; `None` if none came (or
    /// the storage is gone).
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<Notice<R>>> {
        let queue = self.queue()?;
        match queue.pop(Some(Instant::now() + timeout)) {
            Ok(Some(item)) => Some(Notice::of(item)),
            Ok(None) | Err(()) => None,
        }
    }

    /// The next notice if one is queued.
    pub fn try_next(&mut self) -> Option<Result<Notice<R>>> {
        self.next_timeout(Duration::ZERO)
    }

    /// An async [`Stream`](futures_core::Stream) of the same notices.
    #[cfg(feature = "tokio")]
    pub fn into_stream(self) -> NoticeStream<R> {
        NoticeStream { subscription: self }
    }
}

impl<R: StoredRecord> Iterator for Subscription<R> {
    type Item = Result<Notice<R>>;

    /// Waits for the next notice; `None` once the storage is gone.
    fn next(&mut self) -> Option<Self::Item> {
        let queue = self.queue()?;
        match queue.pop(None) {
            Ok(Some(item)) => Some(Notice::of(item)),
            Ok(None) | Err(()) => None,
        }
    }
}

impl<R> Drop for Subscription<R> {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.take() {
            self.hub.unsubscribe(&queue);
        }
    }
}

impl<R> core::fmt::Debug for Subscription<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Subscription")
            .field("table", &self.table)
            .field("filter", &self.filter)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// A [`Subscription`] as an async stream (feature `tokio`).
#[cfg(feature = "tokio")]
pub struct NoticeStream<R> {
    subscription: Subscription<R>,
}

#[cfg(feature = "tokio")]
impl<R: StoredRecord> futures_core::Stream for NoticeStream<R> {
    type Item = Result<Notice<R>>;

    fn poll_next(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<Option<Self::Item>> {
        let Some(queue) = self.subscription.queue() else {
            return core::task::Poll::Ready(None);
        };
        queue
            .poll_pop(cx.waker())
            .map(|item| item.ok().map(Notice::of))
    }
}

// ----------------------------------------------------------------------
// The durable log.

/// The name of the durable change log of `table`.
pub(crate) fn log_table(table: &str) -> String {
    format!("__changes:{table}")
}

/// The key of part `n` of commit `seq`.
fn log_key(seq: u64, n: u32) -> [u8; 12] {
    let mut key = [0; 12];
    key[..8].copy_from_slice(&seq.to_be_bytes());
    key[8..].copy_from_slice(&n.to_be_bytes());
    key
}

/// The most bytes of changes one entry of the log holds: a commit's changes
/// are one entry, or several of about this size (etcd takes 1.5 MiB per
/// request by default).
const PART_BYTES: usize = 256 << 10;

/// The log's own row: the next sequence number and the first one kept.
#[derive(Debug, Clone, Copy)]
struct LogState {
    next: u64,
    first: u64,
}

impl LogState {
    fn load(table: &AnyTable<'_>, name: &str) -> Result<Self> {
        let row = table.get(&[], |bytes| {
            let next = bytes.get(..8).and_then(|b| b.try_into().ok());
            let first = bytes.get(8..16).and_then(|b| b.try_into().ok());
            match (next, first, bytes.len()) {
                (Some(next), Some(first), 16) => Ok(LogState {
                    next: u64::from_be_bytes(next),
                    first: u64::from_be_bytes(first),
                }),
                _ => Err(Error::corrupt(
                    name,
                    &[],
                    "the log's state".to_owned(),
                    "change log state",
                    "not 16 bytes",
                )),
            }
        })?;
        row.unwrap_or(Ok(LogState { next: 1, first: 1 }))
    }

    fn store(self, table: &AnyTable<'_>) -> Result<()> {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.next.to_be_bytes());
        bytes[8..].copy_from_slice(&self.first.to_be_bytes());
        table.insert(&[], &bytes)
    }
}

/// Appends one commit's changes (`changes` of `arena`) to the log in
/// `table`, in as few entries as [`PART_BYTES`] allows; returns its
/// sequence number.
pub(crate) fn append(
    table: &AnyTable<'_>,
    name: &str,
    arena: &Arena,
    changes: &[u32],
) -> Result<u64> {
    let mut state = LogState::load(table, name)?;
    let seq = state.next;
    let mut bytes = Vec::new();
    let mut part = 0;
    for (i, change) in changes.iter().enumerate() {
        arena.encode(*change as usize, &mut bytes);
        if bytes.len() >= PART_BYTES || i + 1 == changes.len() {
            table.insert(&log_key(seq, part), &bytes)?;
            bytes.clear();
            part += 1;
        }
    }
    state.next = seq.checked_add(1).ok_or_else(|| {
        Error::corrupt(
            name,
            &[],
            "the log's state".to_owned(),
            "change log state",
            "the sequence numbers are used up",
        )
    })?;
    state.store(table)?;
    Ok(seq)
}

/// After a migration rewrote the records of `table`: its log (if it has
/// one) holds the older version's bytes, so it is emptied, keeping its
/// sequence numbers going; positions before it get [`Error::ChangesTrimmed`].
pub(crate) fn restart_log(txn: &crate::backend::AnyWrite<'_>, table: &str) -> Result<()> {
    let name = log_table(table);
    if !txn.tables()?.contains(&name) {
        return Ok(());
    }
    let log = txn.table(&name)?;
    let mut state = LogState::load(&log, &name)?;
    let mut keys = Vec::new();
    let range = (Bound::Excluded(&[][..]), Bound::Unbounded);
    log.scan(range, Direction::Forward, |key, _| {
        keys.push(key.to_vec());
        Ok(ControlFlow::Continue(()))
    })?;
    for key in &keys {
        log.remove(key, |_| ())?;
    }
    state.first = state.next;
    state.store(&log)
}

fn not_a_change(name: &str, key: &[u8]) -> Error {
    Error::corrupt(
        name,
        key,
        crate::error::Hex(key).to_string(),
        "change",
        "not a change of the log",
    )
}

/// The durable change log of the record type `R`, from
/// [`Storage::changes`](crate::Storage::changes); `R` must keep one
/// (`#[stored(changes)]`).
///
/// Each committed transaction that changed `R`'s table is one [`Commit`]
/// with a sequence number, 1, 2, 3, ..: store the last one you handled and
/// resume with [`since`](Self::since) to see every later change once.
pub struct Changes<R> {
    storage: crate::Storage,
    _record: PhantomData<fn() -> R>,
}

impl<R: StoredRecord> Changes<R> {
    pub(crate) fn new(storage: crate::Storage) -> Self {
        Changes {
            storage,
            _record: PhantomData,
        }
    }

    fn name() -> String {
        log_table(R::SCHEMA.table)
    }

    /// The commits after `seq`, oldest first, up to `limit` changes (a
    /// commit is never split: the last one may go beyond, and at least one
    /// comes if there is one). `since(0)` starts at the beginning.
    /// [`Error::ChangesTrimmed`] if some of them were trimmed away;
    /// [`Error::SchemaMismatch`] if the table holds another version of the
    /// record type than `R`.
    pub fn since(&self, seq: u64, limit: usize) -> Result<Vec<Commit<R>>> {
        let name = Self::name();
        self.storage.read(|tx| {
            if let Some(row) = tx.row(R::SCHEMA.table)?
                && !row.holds(R::SCHEMA)
            {
                return Err(crate::schema::mismatch(R::SCHEMA, &row));
            }
            let limit = limit.max(1);
            let Some(table) = tx.raw().table(&name)? else {
                return Ok(Vec::new());
            };
            let state = LogState::load(&table, &name)?;
            if seq.saturating_add(1) < state.first {
                return Err(Error::ChangesTrimmed {
                    table: R::SCHEMA.table.to_owned(),
                    after: seq,
                    first: state.first,
                });
            }
            // Each commit's first change and its sequence number.
            let mut commits: Vec<(u64, usize)> = Vec::new();
            let mut arena = Arena::default();
            let from = log_key(seq.saturating_add(1), 0);
            let range = (Bound::Included(&from[..]), Bound::Unbounded);
            table.scan(range, Direction::Forward, |key, bytes| {
                let at = key
                    .get(..8)
                    .and_then(|k| k.try_into().ok())
                    .map(u64::from_be_bytes);
                let Some(at) = at else {
                    return Err(not_a_change(&name, key));
                };
                if commits.last().is_none_or(|(last, _)| *last != at) {
                    if arena.len() >= limit {
                        return Ok(ControlFlow::Break(()));
                    }
                    commits.push((at, arena.len()));
                }
                // Part after part of one commit.
                if !arena.decode(bytes) {
                    return Err(not_a_change(&name, key));
                }
                Ok(ControlFlow::Continue(()))
            })?;
            let arena = Arc::new(arena);
            let ends: Vec<usize> = commits
                .iter()
                .skip(1)
                .map(|(_, start)| *start)
                .chain([arena.len()])
                .collect();
            commits
                .iter()
                .zip(ends)
                .map(|((seq, start), end)| {
                    let changes: Vec<u32> = (*start as u32..end as u32).collect();
                    Commit::of(Some(*seq), &arena, &changes)
                })
                .collect()
        })
    }

    /// The sequence number of the last commit logged, if any.
    pub fn last_seq(&self) -> Result<Option<u64>> {
        let name = Self::name();
        self.storage.read(|tx| match tx.raw().table(&name)? {
            Some(table) => {
                let state = LogState::load(&table, &name)?;
                Ok((state.next > 1).then(|| state.next - 1))
            }
            None => Ok(None),
        })
    }

    /// The first sequence number still kept (changes before it were trimmed).
    pub fn first_kept(&self) -> Result<u64> {
        let name = Self::name();
        self.storage.read(|tx| match tx.raw().table(&name)? {
            Some(table) => Ok(LogState::load(&table, &name)?.first),
            None => Ok(1),
        })
    }

    /// Removes the commits before `seq`; returns how many went.
    /// Later [`since`](Self::since) calls for positions before `seq - 1`
    /// get [`Error::ChangesTrimmed`].
    pub fn trim_before(&self, seq: u64) -> Result<u64> {
        let name = Self::name();
        self.storage.write(|tx| {
            let table = tx.raw().table(&name)?;
            let mut state = LogState::load(&table, &name)?;
            let upto = seq.min(state.next);
            if upto <= state.first {
                return Ok(0);
            }
            let mut keys = Vec::new();
            let (from, to) = (log_key(state.first, 0), log_key(upto, 0));
            let range = (Bound::Included(&from[..]), Bound::Excluded(&to[..]));
            table.scan(range, Direction::Forward, |key, _| {
                keys.push(key.to_vec());
                Ok(ControlFlow::Continue(()))
            })?;
            for key in &keys {
                table.remove(key, |_| ())?;
            }
            let removed = upto - state.first;
            state.first = upto;
            state.store(&table)?;
            Ok(removed)
        })
    }

    /// Keeps only the last `commits` commits; returns how many went.
    pub fn keep_last(&self, commits: u64) -> Result<u64> {
        let next = self.last_seq()?.map_or(1, |last| last + 1);
        self.trim_before(next.saturating_sub(commits))
    }

    /// A blocking iterator over the commits after `seq`, that waits for new
    /// ones: woken by this process's commits, and looking at the log every
    /// `poll` for other processes' (on etcd).
    pub fn follow(&self, seq: u64, poll: Duration) -> Follow<R> {
        Follow {
            changes: Changes {
                storage: self.storage.clone(),
                _record: PhantomData,
            },
            wake: Subscription::new(self.storage.hub()).capacity(1),
            after: seq,
            poll,
            ready: VecDeque::new(),
        }
    }
}

/// From [`Changes::follow`]: the durable log's commits after a position,
/// waiting for new ones.
pub struct Follow<R: StoredRecord> {
    changes: Changes<R>,
    wake: Subscription<R>,
    after: u64,
    poll: Duration,
    ready: VecDeque<Commit<R>>,
}

impl<R: StoredRecord> Follow<R> {
    /// The next commit, waiting at most `timeout`.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<Commit<R>>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(commit) = self.ready.pop_front() {
                return Some(Ok(commit));
            }
            match self.changes.since(self.after, 1024) {
                Ok(commits) if !commits.is_empty() => {
                    if let Some(last) = commits.last().and_then(|c| c.seq) {
                        self.after = last;
                    }
                    self.ready.extend(commits);
                    continue;
                }
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            // Woken by a commit of this process, or after `poll`.
            let _ = self.wake.next_timeout(self.poll.min(left));
        }
    }
}

impl<R: StoredRecord> Iterator for Follow<R> {
    type Item = Result<Commit<R>>;

    /// Waits for the next commit.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(next) = self.next_timeout(Duration::from_secs(3600)) {
                return Some(next);
            }
        }
    }
}
