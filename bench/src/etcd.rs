//! `--etcd`: the same workloads on a real three-member etcd cluster started
//! here (loopback, this machine, fsync on, etcd's default limits), through
//! `storage` and through a hand-written client doing the same puts, gets and
//! ranges.
//!
//! The baseline calls etcd's KV gRPC service directly with the client code
//! `etcd-client` wraps (the same generated messages, over tonic), one request
//! at a time on a tokio runtime: `etcd-client` itself builds only with
//! `protoc` installed. Keys are big-endian ids under a prefix, values
//! `rkyv::to_bytes` of the record; reads take the field from its offset, as
//! the redb floor does.

use std::path::{Path, PathBuf};

use rkyv::rancor::Error as RkyvError;

use crate::data::{ArchivedUser, User};
use crate::engines::{Engine, Input, Work};

#[path = "../../tests/common/etcd.rs"]
#[allow(dead_code)]
mod cluster;

/// The code `tonic-prost-build` generated from etcd's protocol files, as
/// `storage-core` vendors it.
#[allow(clippy::all, clippy::pedantic, dead_code, missing_docs, rustdoc::all)]
mod proto {
    pub mod authpb {
        include!("../../storage-core/src/backend/etcd/authpb.rs");
    }
    pub mod mvccpb {
        include!("../../storage-core/src/backend/etcd/mvccpb.rs");
    }
    pub mod etcdserverpb {
        include!("../../storage-core/src/backend/etcd/etcdserverpb.rs");
    }
}

use proto::etcdserverpb::{
    PutRequest, RangeRequest, RequestOp, TxnRequest, kv_client::KvClient, request_op,
};

pub use cluster::Cluster;

/// Records per write transaction: etcd allows 128 operations in one.
pub const BATCH: usize = 100;

/// Entries per range request, as the etcd engine pages them.
const PAGE: i64 = 256;

/// Starts the benchmark's cluster: etcd's default limits, fsync on.
pub fn start() -> Option<Cluster> {
    Cluster::start(
        3,
        &[
            "--unsafe-no-fsync=false",
            "--max-txn-ops",
            "128",
            "--max-request-bytes",
            "1572864",
        ],
    )
}

/// The hand-written client.
pub struct Baseline {
    runtime: tokio::runtime::Runtime,
    client: KvClient<tonic::transport::Channel>,
    /// The prefix the read workloads read, and the one writes go to.
    read: Vec<u8>,
    write: Vec<u8>,
    runs: u32,
}

impl Baseline {
    pub fn new(endpoints: &[String]) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let channel = runtime.block_on(async {
            tonic::transport::Endpoint::from_shared(endpoints[0].clone())
                .expect("endpoint")
                .connect()
                .await
                .expect("connect")
        });
        Baseline {
            runtime,
            client: KvClient::new(channel),
            read: b"raw-read/".to_vec(),
            write: b"raw-write/".to_vec(),
            runs: 0,
        }
    }

    fn key(prefix: &[u8], id: u64) -> Vec<u8> {
        let mut key = prefix.to_vec();
        key.extend_from_slice(&id.to_be_bytes());
        key
    }

    /// Puts `users` in transactions of [`BATCH`] under `prefix`.
    pub fn put_all(&mut self, prefix: &[u8], users: &[User]) {
        for batch in users.chunks(BATCH) {
            let success = batch
                .iter()
                .map(|user| RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key: Self::key(prefix, user.id),
                        value: rkyv::to_bytes::<RkyvError>(user)
                            .expect("serialize")
                            .to_vec(),
                        ..Default::default()
                    })),
                })
                .collect();
            let request = TxnRequest {
                success,
                ..Default::default()
            };
            let mut client = self.client.clone();
            self.runtime.block_on(client.txn(request)).expect("txn");
        }
    }

    /// Counts `active` over the keys in `[from, to)`, a page at a time.
    fn count_active(&mut self, mut from: Vec<u8>, to: Vec<u8>) -> u64 {
        let mut active = 0;
        loop {
            let request = RangeRequest {
                key: from.clone(),
                range_end: to.clone(),
                limit: PAGE,
                ..Default::default()
            };
            let mut client = self.client.clone();
            let response = self
                .runtime
                .block_on(client.range(request))
                .expect("range")
                .into_inner();
            for kv in &response.kvs {
                active += u64::from(active_at_offset(&kv.value));
            }
            match response.kvs.last() {
                Some(last) if response.more => {
                    from = last.key.clone();
                    from.push(0);
                }
                _ => return active,
            }
        }
    }
}

fn field_at(bytes: &[u8], offset: usize) -> usize {
    bytes.len() - size_of::<ArchivedUser>() + offset
}

fn active_at_offset(bytes: &[u8]) -> bool {
    bytes[field_at(bytes, std::mem::offset_of!(ArchivedUser, active))] != 0
}

fn age_at_offset(bytes: &[u8]) -> u64 {
    let at = field_at(bytes, std::mem::offset_of!(ArchivedUser, age));
    u64::from(u32::from_le_bytes(
        bytes[at..at + 4].try_into().expect("4 bytes"),
    ))
}

impl Engine for Baseline {
    fn name(&self) -> &'static str {
        "hand-written etcd client"
    }

    fn create(&mut self, _: &Path) -> PathBuf {
        self.runs += 1;
        self.write = format!("raw-write-{}/", self.runs).into_bytes();
        PathBuf::new()
    }

    fn close(&mut self) {}

    fn run(&mut self, work: Work, input: &Input, part: std::ops::Range<usize>) -> Option<u64> {
        match work {
            Work::BulkInsert => {
                let prefix = self.write.clone();
                self.put_all(&prefix, &input.users[part]);
                Some(0)
            }
            Work::SingleCommits => {
                let prefix = self.write.clone();
                for user in &input.extra[part] {
                    self.put_all(&prefix, std::slice::from_ref(user));
                }
                Some(0)
            }
            Work::PointReads => {
                let mut sum = 0;
                for id in &input.read_ids[part] {
                    let request = RangeRequest {
                        key: Self::key(&self.read, *id),
                        ..Default::default()
                    };
                    let mut client = self.client.clone();
                    let response = self
                        .runtime
                        .block_on(client.range(request))
                        .expect("get")
                        .into_inner();
                    sum += age_at_offset(&response.kvs.first().expect("present").value);
                }
                Some(sum)
            }
            Work::FullScan => {
                let mut end = self.read.clone();
                *end.last_mut().expect("prefix") += 1;
                let mut active = 0;
                for _ in part {
                    active += self.count_active(self.read.clone(), end.clone());
                }
                Some(active)
            }
            Work::RangeScans => {
                let mut active = 0;
                for start in &input.range_starts[part] {
                    let from = Self::key(&self.read, *start);
                    let to = Self::key(&self.read, start + input.range_len);
                    active += self.count_active(from, to);
                }
                Some(active)
            }
            _ => None,
        }
    }
}

/// `storage` on the same cluster, through the derive.
pub struct Layer {
    endpoints: Vec<String>,
    read: storage::Storage,
    write: Option<storage::Storage>,
    runs: u32,
}

impl Layer {
    pub fn new(endpoints: &[String], read: storage::Storage) -> Self {
        Layer {
            endpoints: endpoints.to_vec(),
            read,
            write: None,
            runs: 0,
        }
    }

    /// A storage in `namespace` of the cluster.
    pub fn open(endpoints: &[String], namespace: &str) -> storage::Storage {
        storage::Storage::builder()
            .etcd(endpoints.to_vec())
            .namespace(namespace)
            .open()
            .expect("open storage on etcd")
    }
}

impl Engine for Layer {
    fn name(&self) -> &'static str {
        "storage (derive) on etcd"
    }

    fn create(&mut self, _: &Path) -> PathBuf {
        self.runs += 1;
        self.write = Some(Self::open(&self.endpoints, &format!("write-{}", self.runs)));
        PathBuf::new()
    }

    fn close(&mut self) {
        self.write = None;
    }

    fn run(&mut self, work: Work, input: &Input, part: std::ops::Range<usize>) -> Option<u64> {
        let result = match work {
            Work::BulkInsert => {
                let db = self.write.as_ref()?;
                for batch in input.users[part].chunks(BATCH) {
                    db.records::<User>().insert_batch(batch).expect("insert");
                }
                Ok(0)
            }
            Work::SingleCommits => {
                let db = self.write.as_ref()?;
                for user in &input.extra[part] {
                    db.records::<User>().insert(user).expect("insert");
                }
                Ok(0)
            }
            Work::PointReads => self.read.read(|tx| {
                let users = tx.records::<User>();
                let mut sum = 0;
                for id in &input.read_ids[part] {
                    sum += u64::from(users.get(id, |u| u.age())?.expect("present"));
                }
                Ok(sum)
            }),
            Work::FullScan => self.read.read(|tx| {
                let mut active = 0;
                for _ in part {
                    active += tx
                        .records::<User>()
                        .fold(0, |n, _, u| n + u64::from(u.active()))?;
                }
                Ok(active)
            }),
            Work::RangeScans => self.read.read(|tx| {
                let users = tx.records::<User>();
                let mut active = 0;
                for start in &input.range_starts[part] {
                    let range = users.range(*start..start + input.range_len)?;
                    active += range.fold_entries(0, |n, _, u| n + u64::from(u.active()))?;
                }
                Ok(active)
            }),
            _ => return None,
        };
        Some(result.expect("storage on etcd"))
    }
}
