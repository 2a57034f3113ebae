//! The distributed engine: [etcd](https://etcd.io) v3, over its gRPC API
//! (cargo feature `etcd`).
//!
//! # Layout of the keys
//!
//! Everything of one storage lives under its namespace, escaped like a key
//! part so that no namespace is a prefix of another (`ns`):
//!
//! | key | value |
//! |---|---|
//! | `ns 01 name` | the table's id (8 bytes): the registry of tables |
//! | `ns 02 id key` | the entries of the table with that id |
//! | `ns 03 id` | the table's clock, written by every commit that writes the table |
//!
//! A table's entries live under a random 64-bit id, so that deleting a table
//! (deleting its id's range and its registry entry) and creating it again, or
//! renaming one, never puts a key and deletes a range over it in one etcd
//! transaction, which etcd refuses.
//!
//! # Transactions
//!
//! A read transaction reads at one revision: the one its first request was
//! answered at. A write transaction reads at one revision too, buffers its
//! writes (reads see them), remembers the `mod_revision` of every key it read
//! and the clock of every table it scanned, and commits as one etcd `Txn`
//! whose compares check that none of those changed. When one did, the write
//! closure runs again, a bounded number of times, then
//! [`Error::Conflict`](crate::Error::Conflict).
//!
//! Every request times out ([`Error::Unavailable`](crate::Error::Unavailable))
//! and asks for a leader, so that a cluster without quorum answers at once
//! instead of after etcd's own five seconds. A request that found no leader
//! or no connection is tried again on the next endpoint until the timeout; a
//! commit whose answer did not arrive is not tried again, since it may have
//! been applied.

use core::cell::{Cell, RefCell};
use core::ops::{Bound, ControlFlow};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};

use super::{
    Direction, KeyRange, ReadTable, ReadTxn, Savepoint, Store, Visit, WriteTable, WriteTxn,
};
use crate::error::{Error, Result};
use crate::key::KeyBuf;

/// The code `tonic-prost-build` 0.14 generates from etcd's `rpc.proto`,
/// `kv.proto` and `auth.proto` (as shipped in the `etcd-client` 0.21 crate),
/// with `build_server(false)`; checked in so that building needs no `protoc`.
#[allow(
    clippy::all,
    clippy::pedantic,
    dead_code,
    missing_docs,
    rustdoc::all,
    unreachable_pub
)]
pub(crate) mod proto {
    pub mod authpb {
        include!("authpb.rs");
    }
    pub mod mvccpb {
        include!("mvccpb.rs");
    }
    pub mod etcdserverpb {
        include!("etcdserverpb.rs");
    }
}

use proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse, RequestOp, StatusRequest,
    TxnRequest, compare, kv_client::KvClient, maintenance_client::MaintenanceClient, range_request,
    request_op,
};

/// Entries fetched per request of a scan.
const PAGE: i64 = 256;

/// How to reach an etcd cluster; see
/// [`StorageBuilder::etcd`](crate::StorageBuilder::etcd).
#[derive(Debug, Clone)]
pub(crate) struct EtcdOptions {
    pub(crate) endpoints: Vec<String>,
    pub(crate) namespace: String,
    pub(crate) timeout: Duration,
    pub(crate) attempts: u32,
}

/// The etcd engine behind a [`Storage`](crate::Storage) opened with
/// [`StorageBuilder::etcd`](crate::StorageBuilder::etcd).
pub struct EtcdBackend {
    client: Client,
    keys: Keys,
    attempts: u32,
}

impl core::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("endpoints", &self.client.names)
            .field("timeout", &self.client.timeout)
            .finish_non_exhaustive()
    }
}

/// A gRPC client over one channel per endpoint, running on a runtime of its
/// own so that callers need none.
struct Client {
    runtime: Option<tokio::runtime::Runtime>,
    channels: Vec<Channel>,
    names: Vec<String>,
    /// The endpoint that answered last.
    current: AtomicUsize,
    timeout: Duration,
}

type Rpc<T> = Pin<Box<dyn Future<Output = core::result::Result<T, tonic::Status>> + Send>>;

/// How a request ended.
enum Failure {
    /// No endpoint answered in time, or the cluster has no leader.
    Unavailable {
        sent: bool,
        last: Option<tonic::Status>,
    },
    /// The cluster answered with an error.
    Status(tonic::Status),
}

impl Client {
    fn new(options: &EtcdOptions) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("storage-etcd")
            .enable_all()
            .build()
            .map_err(|e| Error::Backend {
                table: None,
                source: Box::new(e),
            })?;
        let mut channels = Vec::new();
        let guard = runtime.enter();
        for endpoint in &options.endpoints {
            let url = if endpoint.contains("://") {
                endpoint.clone()
            } else {
                format!("http://{endpoint}")
            };
            let channel = Endpoint::from_shared(url)
                .map_err(|e| Error::Open {
                    path: endpoint.into(),
                    source: Box::new(e),
                })?
                .connect_timeout(options.timeout)
                .timeout(options.timeout)
                .connect_lazy();
            channels.push(channel);
        }
        drop(guard);
        if channels.is_empty() {
            return Err(Error::Open {
                path: "etcd".into(),
                source: "no endpoints given".into(),
            });
        }
        Ok(Client {
            runtime: Some(runtime),
            channels,
            names: options.endpoints.clone(),
            current: AtomicUsize::new(0),
            timeout: options.timeout,
        })
    }

    /// Runs one request, on the endpoints in turn, until it is answered or
    /// the timeout passes. `repeatable`: the request may be sent again after
    /// an answer that did not arrive (reads), not only after one that
    /// certainly did not apply.
    fn call<T: Send + 'static>(
        &self,
        repeatable: bool,
        rpc: impl Fn(Channel) -> Rpc<T>,
    ) -> core::result::Result<T, Failure> {
        let Some(runtime) = &self.runtime else {
            return Err(Failure::Unavailable {
                sent: false,
                last: None,
            });
        };
        let deadline = Instant::now() + self.timeout;
        let mut sent = false;
        let mut last = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Unavailable { sent, last });
            }
            let at = self.current.load(Ordering::Relaxed) % self.channels.len();
            let future = rpc(self.channels[at].clone());
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            runtime.spawn(async move {
                let _ = tx.send(tokio::time::timeout(left, future).await);
            });
            let answer = rx.recv_timeout(left + Duration::from_millis(100));
            let status = match answer {
                Ok(Ok(Ok(value))) => return Ok(value),
                Ok(Ok(Err(status))) => status,
                // The request timed out, or the runtime dropped it.
                _ => {
                    sent = true;
                    if !repeatable {
                        return Err(Failure::Unavailable { sent, last });
                    }
                    continue;
                }
            };
            if not_applied(&status) || (repeatable && maybe_applied(&status)) {
                sent |= maybe_applied(&status);
                if maybe_applied(&status) && !repeatable {
                    return Err(Failure::Unavailable {
                        sent: true,
                        last: Some(status),
                    });
                }
                last = Some(status);
                self.current.store(at + 1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20).min(left));
                continue;
            }
            if maybe_applied(&status) {
                return Err(Failure::Unavailable {
                    sent: true,
                    last: Some(status),
                });
            }
            return Err(Failure::Status(status));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Dropping a runtime from inside another one would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A status that says the request was not applied: no connection, no leader.
fn not_applied(status: &tonic::Status) -> bool {
    let message = status.message();
    matches!(status.code(), tonic::Code::Unavailable)
        && (message.contains("no leader")
            || message.contains("connect")
            || message.contains("transport")
            || message.contains("dns")
            || message.contains("broken pipe")
            || message.contains("connection"))
}

/// A status that leaves it open whether the request was applied.
fn maybe_applied(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::Cancelled
            | tonic::Code::DeadlineExceeded
    ) && !not_applied(status)
}

/// Asks for a request to be refused at once when the cluster has no leader.
fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "hasleader",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    request
}

/// The errors of `operation` in `table`.
fn failure(
    failure: Failure,
    operation: &'static str,
    table: Option<&str>,
    timeout: Duration,
) -> Error {
    match failure {
        Failure::Unavailable { sent, last } => Error::Unavailable {
            operation,
            timeout,
            outcome_unknown: sent && operation == "commit",
            source: last.map(|s| Box::new(s) as crate::error::BoxError),
        },
        Failure::Status(status) => {
            let message = status.message();
            let limit = if message.contains("too many operations in txn request") {
                Some("max-txn-ops")
            } else if message.contains("request is too large")
                || message.contains("message larger than max")
            {
                Some("max-request-bytes")
            } else if message.contains("database space exceeded") {
                Some("quota-backend-bytes")
            } else {
                None
            };
            match limit {
                Some(limit) => Error::LimitExceeded {
                    limit,
                    detail: message.to_owned(),
                },
                // The snapshot's revision is gone: the transaction must run again.
                None if message.contains("required revision has been compacted") => {
                    Error::Conflict { attempts: 0 }
                }
                None => Error::Backend {
                    table: table.map(str::to_owned),
                    source: Box::new(status),
                },
            }
        }
    }
}

/// Where things are: the keys of the namespace.
struct Keys {
    namespace: Vec<u8>,
}

impl Keys {
    fn new(namespace: &str) -> Self {
        let mut out = KeyBuf::new();
        crate::key::IntoKeyBytes::write_key_part(&namespace, &mut out);
        Keys {
            namespace: out.as_slice().to_vec(),
        }
    }

    fn with(&self, kind: u8, rest: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.namespace.len() + 1 + rest.len());
        key.extend_from_slice(&self.namespace);
        key.push(kind);
        key.extend_from_slice(rest);
        key
    }

    fn registry(&self, table: &str) -> Vec<u8> {
        self.with(1, table.as_bytes())
    }

    fn registry_prefix(&self) -> Vec<u8> {
        self.with(1, &[])
    }

    fn data_prefix(&self, id: u64) -> Vec<u8> {
        self.with(2, &id.to_be_bytes())
    }

    fn clock(&self, id: u64) -> Vec<u8> {
        self.with(3, &id.to_be_bytes())
    }
}

/// The end of the range of keys starting with `prefix`.
fn successor(prefix: &[u8]) -> Vec<u8> {
    let mut end = KeyBuf::from(prefix);
    if end.increment() {
        end.as_slice().to_vec()
    } else {
        vec![0]
    }
}

/// The etcd keys `[start, end)` of the table range `range` under `prefix`.
fn etcd_range(prefix: &[u8], (start, end): KeyRange<'_>) -> (Vec<u8>, Vec<u8>) {
    let at = |key: &[u8]| [prefix, key].concat();
    let start = match start {
        Bound::Included(key) => at(key),
        Bound::Excluded(key) => [prefix, key, &[0]].concat(),
        Bound::Unbounded => prefix.to_vec(),
    };
    let end = match end {
        Bound::Included(key) => [prefix, key, &[0]].concat(),
        Bound::Excluded(key) => at(key),
        Bound::Unbounded => successor(prefix),
    };
    (start, end)
}

/// A random table id: tables need no coordination to be created.
fn fresh_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_usize(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

impl EtcdBackend {
    /// Connects and checks that the cluster answers within the timeout.
    pub(crate) fn open(options: &EtcdOptions) -> Result<Self> {
        let backend = EtcdBackend {
            client: Client::new(options)?,
            keys: Keys::new(&options.namespace),
            attempts: options.attempts.max(1),
        };
        backend.status()?;
        Ok(backend)
    }

    /// The endpoints it was opened with.
    pub fn endpoints(&self) -> &[String] {
        &self.client.names
    }

    /// The size of the cluster's database file on the endpoint that answers,
    /// in bytes: a health check.
    pub fn status(&self) -> Result<u64> {
        let answer = self.client.call(true, |channel| {
            Box::pin(async move {
                let mut client = MaintenanceClient::new(channel);
                Ok(client.status(request(StatusRequest {})).await?.into_inner())
            })
        });
        let status = answer.map_err(|f| failure(f, "status", None, self.client.timeout))?;
        Ok(u64::try_from(status.db_size).unwrap_or(0))
    }

    fn range(&self, table: Option<&str>, req: RangeRequest) -> Result<RangeResponse> {
        self.client
            .call(true, move |channel| {
                let req = req.clone();
                Box::pin(async move {
                    let mut client = KvClient::new(channel).max_decoding_message_size(64 << 20);
                    Ok(client.range(request(req)).await?.into_inner())
                })
            })
            .map_err(|f| failure(f, "read", table, self.client.timeout))
    }

    /// Sends a commit; whether its compares held.
    fn txn(&self, req: TxnRequest) -> Result<bool> {
        self.client
            .call(false, move |channel| {
                let req = req.clone();
                Box::pin(async move {
                    let mut client = KvClient::new(channel).max_decoding_message_size(64 << 20);
                    Ok(client.txn(request(req)).await?.into_inner())
                })
            })
            .map(|response| response.succeeded)
            .map_err(|f| failure(f, "commit", None, self.client.timeout))
    }
}

impl Store for EtcdBackend {
    type Read<'t> = EtcdRead<'t>;
    type Write<'t> = EtcdWrite<'t>;

    fn read<R>(&self, f: impl FnOnce(&EtcdRead<'_>) -> Result<R>) -> Result<R> {
        f(&EtcdRead {
            backend: self,
            revision: Cell::new(0),
        })
    }

    fn write<R>(&self, mut f: impl FnMut(&EtcdWrite<'_>) -> Result<R>) -> Result<R> {
        for attempt in 1..=self.attempts {
            let txn = EtcdWrite {
                snapshot: EtcdRead {
                    backend: self,
                    revision: Cell::new(0),
                },
                state: RefCell::new(State::default()),
            };
            let value = match f(&txn) {
                Ok(value) => value,
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            };
            match txn.commit() {
                Ok(true) => return Ok(value),
                Ok(false) | Err(Error::Conflict { .. }) => {
                    // Back off a little, more on every attempt.
                    let pause = (fresh_id() % 5 + 1) * u64::from(attempt);
                    std::thread::sleep(Duration::from_millis(pause));
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict {
            attempts: self.attempts,
        })
    }

    fn is_exclusive(&self) -> bool {
        // Other processes write the same cluster.
        false
    }
}

/// A read transaction: every read at one revision.
pub struct EtcdRead<'a> {
    backend: &'a EtcdBackend,
    /// The revision, once the first request has fixed it (0 before).
    revision: Cell<i64>,
}

impl<'a> EtcdRead<'a> {
    /// Reads `req` at this transaction's revision.
    fn range(&self, table: Option<&str>, mut req: RangeRequest) -> Result<RangeResponse> {
        req.revision = self.revision.get();
        let response = self.backend.range(table, req)?;
        if self.revision.get() == 0
            && let Some(header) = &response.header
        {
            self.revision.set(header.revision);
        }
        Ok(response)
    }

    /// The value and `mod_revision` of `key` (0 if it is absent).
    fn get(&self, table: &str, key: Vec<u8>) -> Result<(Option<Vec<u8>>, i64)> {
        let response = self.range(
            Some(table),
            RangeRequest {
                key,
                ..Default::default()
            },
        )?;
        Ok(match response.kvs.into_iter().next() {
            Some(kv) => (Some(kv.value), kv.mod_revision),
            None => (None, 0),
        })
    }

    /// The id of the table `name`, and the `mod_revision` of its registry entry.
    fn lookup(&self, name: &str) -> Result<(Option<u64>, i64)> {
        let (value, revision) = self.get(name, self.backend.keys.registry(name))?;
        let id = match value {
            Some(bytes) => Some(u64::from_be_bytes(bytes.as_slice().try_into().map_err(
                |_| {
                    Error::corrupt(
                        name,
                        name.as_bytes(),
                        format!("{name:?}"),
                        "table registry entry",
                        "not 8 bytes",
                    )
                },
            )?)),
            None => None,
        };
        Ok((id, revision))
    }

    /// Calls `f` with the entries of `[start, end)` in `direction` order, a
    /// page at a time, until it breaks.
    fn scan(
        &self,
        table: &str,
        prefix: &[u8],
        (mut start, mut end): (Vec<u8>, Vec<u8>),
        direction: Direction,
        f: &mut Visit<'_>,
    ) -> Result<()> {
        loop {
            if start >= end {
                return Ok(());
            }
            let order = match direction {
                Direction::Forward => range_request::SortOrder::None,
                Direction::Backward => range_request::SortOrder::Descend,
            };
            let response = self.range(
                Some(table),
                RangeRequest {
                    key: start.clone(),
                    range_end: end.clone(),
                    limit: PAGE,
                    sort_order: order as i32,
                    sort_target: range_request::SortTarget::Key as i32,
                    ..Default::default()
                },
            )?;
            let Some(last) = response.kvs.last().map(|kv| kv.key.clone()) else {
                return Ok(());
            };
            for kv in &response.kvs {
                let key = kv.key.strip_prefix(prefix).unwrap_or(&kv.key);
                if f(key, &kv.value)?.is_break() {
                    return Ok(());
                }
            }
            if !response.more {
                return Ok(());
            }
            match direction {
                Direction::Forward => start = [last.as_slice(), &[0]].concat(),
                Direction::Backward => end = last,
            }
        }
    }

    fn count(&self, table: &str, id: u64) -> Result<u64> {
        let prefix = self.backend.keys.data_prefix(id);
        let response = self.range(
            Some(table),
            RangeRequest {
                range_end: successor(&prefix),
                key: prefix,
                count_only: true,
                ..Default::default()
            },
        )?;
        Ok(u64::try_from(response.count).unwrap_or(0))
    }

    fn names(&self) -> Result<Vec<String>> {
        let prefix = self.backend.keys.registry_prefix();
        let mut names = Vec::new();
        self.scan(
            "",
            &prefix,
            (prefix.clone(), successor(&prefix)),
            Direction::Forward,
            &mut |key, _| {
                names.push(String::from_utf8_lossy(key).into_owned());
                Ok(ControlFlow::Continue(()))
            },
        )?;
        Ok(names)
    }
}

impl<'a> ReadTxn for EtcdRead<'a> {
    type Table<'t>
        = EtcdReadTable<'t>
    where
        Self: 't;

    fn table(&self, name: &str) -> Result<Option<EtcdReadTable<'_>>> {
        let (id, _) = self.lookup(name)?;
        Ok(id.map(|id| EtcdReadTable {
            txn: self,
            id,
            prefix: self.backend.keys.data_prefix(id).into(),
            name: name.into(),
        }))
    }

    fn tables(&self) -> Result<Vec<String>> {
        self.names()
    }
}

/// A table of an etcd read transaction.
#[derive(Clone)]
pub struct EtcdReadTable<'a> {
    txn: &'a EtcdRead<'a>,
    id: u64,
    prefix: Rc<[u8]>,
    name: Rc<str>,
}

impl ReadTable for EtcdReadTable<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    fn get<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let (value, _) = self.txn.get(&self.name, [&self.prefix[..], key].concat())?;
        Ok(value.map(|value| f(&value)))
    }

    fn scan(
        &self,
        range: KeyRange<'_>,
        direction: Direction,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let bounds = etcd_range(&self.prefix, range);
        self.txn
            .scan(&self.name, &self.prefix, bounds, direction, &mut f)
    }

    fn len(&self) -> Result<u64> {
        self.txn.count(&self.name, self.id)
    }
}

/// What a write transaction has read and written, and the tables it touched.
#[derive(Default)]
struct State {
    /// Keys read, with the `mod_revision` seen (0: absent).
    reads: BTreeMap<Vec<u8>, i64>,
    /// Keys written, with the order of their last write and the value (`None`: deleted).
    writes: BTreeMap<Vec<u8>, Buffered>,
    order: u64,
    /// Tables by name: the id they had at the snapshot and the one they have now.
    tables: BTreeMap<String, Registered>,
    /// Ids written to, whose clocks the commit advances.
    touched: BTreeSet<u64>,
    /// Ids whose tables this transaction deleted.
    dropped: BTreeSet<u64>,
    /// Savepoints open, and the writes to undo back to them.
    open: usize,
    undo: Vec<(Vec<u8>, Option<Buffered>)>,
}

/// A buffered write: when it was made, and the value (`None`: a delete).
type Buffered = (u64, Option<Vec<u8>>);

#[derive(Clone, Copy)]
struct Registered {
    before: Option<u64>,
    now: Option<u64>,
}

impl State {
    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>, id: u64) {
        self.order += 1;
        let previous = self.writes.insert(key.clone(), (self.order, value));
        if self.open > 0 {
            self.undo.push((key, previous));
        }
        self.touched.insert(id);
    }
}

/// A write transaction on etcd: reads at one revision, writes buffered until
/// the commit.
pub struct EtcdWrite<'a> {
    snapshot: EtcdRead<'a>,
    state: RefCell<State>,
}

impl<'a> EtcdWrite<'a> {
    fn keys(&self) -> &'a Keys {
        &self.snapshot.backend.keys
    }

    /// The table `name` as this transaction sees it, its registry entry read.
    fn registered(&self, name: &str) -> Result<Registered> {
        if let Some(entry) = self.state.borrow().tables.get(name) {
            return Ok(*entry);
        }
        let (id, revision) = self.snapshot.lookup(name)?;
        let mut state = self.state.borrow_mut();
        state.reads.insert(self.keys().registry(name), revision);
        let entry = Registered {
            before: id,
            now: id,
        };
        state.tables.insert(name.to_owned(), entry);
        Ok(entry)
    }

    /// The id of the table `name`, created if it does not exist.
    fn id(&self, name: &str) -> Result<u64> {
        let entry = self.registered(name)?;
        if let Some(id) = entry.now {
            return Ok(id);
        }
        let id = fresh_id();
        self.state.borrow_mut().tables.insert(
            name.to_owned(),
            Registered {
                before: entry.before,
                now: Some(id),
            },
        );
        Ok(id)
    }

    fn refuse_under_savepoint(&self, name: &str) -> Result<()> {
        super::refuse_under_savepoint(self.state.borrow().open, name)
    }

    /// Drops the writes buffered for the table with id `id`.
    fn forget(&self, id: u64) {
        let prefix = self.keys().data_prefix(id);
        let mut state = self.state.borrow_mut();
        state.writes.retain(|key, _| !key.starts_with(&prefix));
        state.touched.remove(&id);
    }

    /// The value of `key` (a full etcd key) as this transaction sees it,
    /// the read remembered when it went to the snapshot.
    fn read(&self, table: &str, key: Vec<u8>, from_snapshot: bool) -> Result<Option<Vec<u8>>> {
        if let Some((_, value)) = self.state.borrow().writes.get(&key) {
            return Ok(value.clone());
        }
        if !from_snapshot {
            return Ok(None);
        }
        let (value, revision) = self.snapshot.get(table, key.clone())?;
        self.state.borrow_mut().reads.entry(key).or_insert(revision);
        Ok(value)
    }

    /// Sends the commit: whether it held.
    fn commit(self) -> Result<bool> {
        let keys = self.keys();
        let state = self.state.into_inner();
        let nothing = state.writes.is_empty()
            && state.dropped.is_empty()
            && state.tables.values().all(|t| t.before == t.now);
        if nothing {
            return Ok(true);
        }
        let compare = state
            .reads
            .iter()
            .map(|(key, revision)| Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Mod as i32,
                key: key.clone(),
                range_end: Vec::new(),
                target_union: Some(compare::TargetUnion::ModRevision(*revision)),
            })
            .collect();
        let put = |key: Vec<u8>, value: Vec<u8>| RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key,
                value,
                ..Default::default()
            })),
        };
        let delete = |key: Vec<u8>, range_end: Vec<u8>| RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(
                DeleteRangeRequest {
                    key,
                    range_end,
                    ..Default::default()
                },
            )),
        };
        let mut writes: Vec<_> = state.writes.into_iter().collect();
        writes.sort_by_key(|(_, (order, _))| *order);
        let mut success: Vec<RequestOp> = writes
            .into_iter()
            .map(|(key, (_, value))| match value {
                Some(value) => put(key, value),
                None => delete(key, Vec::new()),
            })
            .collect();
        for (name, table) in &state.tables {
            if table.before == table.now {
                continue;
            }
            match table.now {
                Some(id) => success.push(put(keys.registry(name), id.to_be_bytes().to_vec())),
                None => success.push(delete(keys.registry(name), Vec::new())),
            }
        }
        for id in &state.dropped {
            let prefix = keys.data_prefix(*id);
            success.push(delete(prefix.clone(), successor(&prefix)));
            success.push(delete(keys.clock(*id), Vec::new()));
        }
        for id in state.touched.difference(&state.dropped) {
            success.push(put(keys.clock(*id), Vec::new()));
        }
        self.snapshot.backend.txn(TxnRequest {
            compare,
            success,
            failure: Vec::new(),
        })
    }
}

impl<'a> WriteTxn for EtcdWrite<'a> {
    type Table<'t>
        = EtcdTable<'t>
    where
        Self: 't;

    fn table(&self, name: &str) -> Result<EtcdTable<'_>> {
        self.registered(name)?;
        Ok(EtcdTable {
            txn: self,
            name: name.into(),
        })
    }

    fn delete_table(&self, name: &str) -> Result<bool> {
        self.refuse_under_savepoint(name)?;
        let entry = self.registered(name)?;
        let Some(id) = entry.now else {
            return Ok(false);
        };
        self.forget(id);
        let mut state = self.state.borrow_mut();
        if entry.before == Some(id) {
            state.dropped.insert(id);
        }
        state.tables.insert(
            name.to_owned(),
            Registered {
                before: entry.before,
                now: None,
            },
        );
        Ok(true)
    }

    fn rename_table(&self, from: &str, to: &str) -> Result<()> {
        self.refuse_under_savepoint(from)?;
        let source = self.registered(from)?;
        let target = self.registered(to)?;
        if target.now.is_some() {
            return Err(Error::Backend {
                table: Some(to.to_owned()),
                source: "renaming onto a table that exists".into(),
            });
        }
        let mut state = self.state.borrow_mut();
        state.tables.insert(
            from.to_owned(),
            Registered {
                before: source.before,
                now: None,
            },
        );
        state.tables.insert(
            to.to_owned(),
            Registered {
                before: target.before,
                now: source.now,
            },
        );
        Ok(())
    }

    fn tables(&self) -> Result<Vec<String>> {
        let mut names: BTreeSet<String> = self.snapshot.names()?.into_iter().collect();
        for (name, table) in &self.state.borrow().tables {
            if table.now.is_some() {
                names.insert(name.clone());
            } else {
                names.remove(name);
            }
        }
        Ok(names.into_iter().collect())
    }

    fn savepoint(&self) -> Savepoint {
        let mut state = self.state.borrow_mut();
        state.open += 1;
        Savepoint(state.undo.len())
    }

    fn rollback_to(&self, savepoint: Savepoint) -> Result<()> {
        let mut state = self.state.borrow_mut();
        let at = savepoint.0.min(state.undo.len());
        let undo = state.undo.split_off(at);
        for (key, previous) in undo.into_iter().rev() {
            match previous {
                Some(previous) => state.writes.insert(key, previous),
                None => state.writes.remove(&key),
            };
        }
        state.open = state.open.saturating_sub(1);
        if state.open == 0 {
            state.undo.clear();
        }
        Ok(())
    }

    fn release(&self, _savepoint: Savepoint) {
        let mut state = self.state.borrow_mut();
        state.open = state.open.saturating_sub(1);
        if state.open == 0 {
            state.undo.clear();
        }
    }
}

/// A table of an etcd write transaction.
#[derive(Clone)]
pub struct EtcdTable<'a> {
    txn: &'a EtcdWrite<'a>,
    name: Rc<str>,
}

impl EtcdTable<'_> {
    /// The table's id now, and whether its entries are in the snapshot (it
    /// was not created in this transaction). `None` if it was deleted.
    fn current(&self) -> Result<Option<(u64, bool)>> {
        let entry = self.txn.registered(&self.name)?;
        Ok(entry.now.map(|id| (id, entry.before == Some(id))))
    }

    fn key(&self, id: u64, key: &[u8]) -> Vec<u8> {
        [self.txn.keys().data_prefix(id).as_slice(), key].concat()
    }

    /// Writes `value` (`None`: removes) under `key`; `old` asks for the
    /// value it replaces, which is then read (and remembered).
    fn write(&self, key: &[u8], value: Option<&[u8]>, old: bool) -> Result<Option<Vec<u8>>> {
        let id = self.txn.id(&self.name)?;
        let full = self.key(id, key);
        let before = match old {
            true => {
                let in_snapshot = self.current()?.is_some_and(|(_, s)| s);
                self.txn.read(&self.name, full.clone(), in_snapshot)?
            }
            false => None,
        };
        self.txn
            .state
            .borrow_mut()
            .write(full, value.map(<[u8]>::to_vec), id);
        Ok(before)
    }
}

impl ReadTable for EtcdTable<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    fn get<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let Some((id, in_snapshot)) = self.current()? else {
            return Ok(None);
        };
        let value = self.txn.read(&self.name, self.key(id, key), in_snapshot)?;
        Ok(value.map(|value| f(&value)))
    }

    fn scan(
        &self,
        range: KeyRange<'_>,
        direction: Direction,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let Some((id, in_snapshot)) = self.current()? else {
            return Ok(());
        };
        let keys = self.txn.keys();
        let prefix = keys.data_prefix(id);
        let (start, end) = etcd_range(&prefix, range);
        // This transaction's own writes in the range, merged with the snapshot's.
        let mut own: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
            .txn
            .state
            .borrow()
            .writes
            .range(start.clone()..end.clone())
            .map(|(key, (_, value))| (key[prefix.len()..].to_vec(), value.clone()))
            .collect();
        if direction == Direction::Backward {
            own.reverse();
        }
        let mut own = own.into_iter().peekable();
        let ahead = |own: &[u8], remote: &[u8]| match direction {
            Direction::Forward => own < remote,
            Direction::Backward => own > remote,
        };
        let mut flow = ControlFlow::Continue(());
        if in_snapshot {
            // Any commit to the table since the snapshot may change what a scan saw.
            let (_, revision) = self.txn.snapshot.get(&self.name, keys.clock(id))?;
            self.txn
                .state
                .borrow_mut()
                .reads
                .entry(keys.clock(id))
                .or_insert(revision);
            self.txn.snapshot.scan(
                &self.name,
                &prefix,
                (start, end),
                direction,
                &mut |key, value| {
                    while let Some((own_key, own_value)) =
                        own.next_if(|(k, _)| ahead(k, key) || k == key)
                    {
                        let same = own_key == key;
                        if let Some(own_value) = own_value {
                            flow = f(&own_key, &own_value)?;
                            if flow.is_break() {
                                return Ok(flow);
                            }
                        }
                        if same {
                            return Ok(ControlFlow::Continue(()));
                        }
                    }
                    flow = f(key, value)?;
                    Ok(flow)
                },
            )?;
        }
        if flow.is_break() {
            return Ok(());
        }
        for (key, value) in own {
            if let Some(value) = value
                && f(&key, &value)?.is_break()
            {
                return Ok(());
            }
        }
        Ok(())
    }

    fn len(&self) -> Result<u64> {
        let mut count = 0;
        self.scan(
            (Bound::Unbounded, Bound::Unbounded),
            Direction::Forward,
            |_, _| {
                count += 1;
                Ok(ControlFlow::Continue(()))
            },
        )?;
        Ok(count)
    }
}

impl WriteTable for EtcdTable<'_> {
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(key, Some(value), false).map(drop)
    }

    fn replace<R>(
        &self,
        key: &[u8],
        value: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        let old = self.write(key, Some(value), true)?;
        Ok(f(old.as_deref()))
    }

    fn remove<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
        let old = self.write(key, None, true)?;
        Ok(f(old.as_deref()))
    }
}
