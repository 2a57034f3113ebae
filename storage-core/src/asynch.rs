//! [`AsyncStorage`] (feature `tokio`): the same storage from async code, every
//! transaction on tokio's blocking pool, so that no executor thread waits on
//! the disk or the network.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::feed::{NoticeStream, Subscription};
use crate::key::IntoKeyBytes;
use crate::record::StoredRecord;
use crate::storage::Storage;
use crate::table::{Cursor, Page};
use crate::txn::{ReadTransaction, WriteTransaction};
use crate::value::ValueDeserializer;

/// A [`Storage`] for async code: `Clone + Send + Sync + 'static`, so it sits
/// in an axum state or moves into a spawned task as it is. Each method runs
/// its transaction with [`tokio::task::spawn_blocking`]; closures are
/// `'static` and return owned data.
///
/// ```
/// # fn main() -> storage::Result<()> {
/// #[derive(Debug, PartialEq, storage::StoredRecord, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
/// #[stored(table = "notes")]
/// struct Note { #[key] id: u64, text: String }
///
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// runtime.block_on(async {
///     let storage = storage::AsyncStorage::new(storage::Storage::in_memory()?);
///     let notes = storage.records::<Note>();
///     notes.insert(Note { id: 1, text: "hello".into() }).await?;
///     let text = notes.get(1, |n| n.text().to_owned()).await?;
///     assert_eq!(text.as_deref(), Some("hello"));
///     Ok(())
/// })
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct AsyncStorage {
    storage: Storage,
}

/// Runs `f` on the blocking pool; a panic in it is [`Error::Panicked`].
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(join) => {
            let message = if join.is_panic() {
                let payload = join.into_panic();
                payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_owned())
            } else {
                "the blocking task was cancelled".to_owned()
            };
            Err(Error::Panicked {
                tables: Vec::new(),
                message,
            })
        }
    }
}

impl AsyncStorage {
    /// The async face of `storage` (which stays usable as it is).
    pub fn new(storage: Storage) -> Self {
        AsyncStorage { storage }
    }

    /// The blocking handle underneath.
    pub fn blocking(&self) -> &Storage {
        &self.storage
    }

    /// [`Storage::read`] on the blocking pool.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReadTransaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let storage = self.storage.clone();
        blocking(move || storage.read(f)).await
    }

    /// [`Storage::write`] on the blocking pool (the closure may run more
    /// than once on etcd, as there).
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnMut(&WriteTransaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let storage = self.storage.clone();
        blocking(move || storage.write(f)).await
    }

    /// The records of `R`, each call a transaction of its own.
    pub fn records<R: StoredRecord>(&self) -> AsyncTable<R> {
        AsyncTable {
            storage: self.storage.clone(),
            _record: Arc::new(()),
            _types: core::marker::PhantomData,
        }
    }

    /// [`Storage::watch`] as a [`Stream`](futures_core::Stream).
    pub fn watch<R: StoredRecord>(&self) -> NoticeStream<R> {
        self.storage.watch::<R>().into_stream()
    }

    /// [`Storage::watch`], to narrow before turning it into a stream with
    /// [`Subscription::into_stream`].
    pub fn subscribe<R: StoredRecord>(&self) -> Subscription<R> {
        self.storage.watch::<R>()
    }
}

/// The records of `R` in an [`AsyncStorage`]: the blocking
/// [`Table`](crate::Table)'s operations, awaited.
pub struct AsyncTable<R> {
    storage: Storage,
    _record: Arc<()>,
    _types: core::marker::PhantomData<fn() -> R>,
}

impl<R> Clone for AsyncTable<R> {
    fn clone(&self) -> Self {
        AsyncTable {
            storage: self.storage.clone(),
            _record: self._record.clone(),
            _types: core::marker::PhantomData,
        }
    }
}

impl<R> core::fmt::Debug for AsyncTable<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncTable").finish_non_exhaustive()
    }
}

impl<R: StoredRecord + Send + 'static> AsyncTable<R>
where
    R::Key: Send + 'static,
{
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(crate::Table<R::Key, R>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let table = self.storage.records::<R>();
        blocking(move || f(table)).await
    }

    /// [`Table::insert`](crate::Table::insert).
    pub async fn insert(&self, record: R) -> Result<()> {
        self.run(move |t| t.insert(&record)).await
    }

    /// [`Table::insert_new`](crate::Table::insert_new).
    pub async fn insert_new(&self, record: R) -> Result<()> {
        self.run(move |t| t.insert_new(&record)).await
    }

    /// [`Table::insert_batch`](crate::Table::insert_batch).
    pub async fn insert_batch(&self, records: Vec<R>) -> Result<()> {
        self.run(move |t| t.insert_batch(&records)).await
    }

    /// [`Table::upsert`](crate::Table::upsert).
    pub async fn upsert(&self, record: R) -> Result<Option<R>>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        self.run(move |t| t.upsert(&record)).await
    }

    /// [`Table::get`](crate::Table::get): `f` reads the archived record.
    pub async fn get<O: Send + 'static>(
        &self,
        key: impl crate::AsKey<R::Key> + Send + 'static,
        f: impl FnOnce(&R::Archived) -> O + Send + 'static,
    ) -> Result<Option<O>> {
        self.run(move |t| t.get(KeyOf(key), f)).await
    }

    /// [`Table::get_owned`](crate::Table::get_owned).
    pub async fn get_owned(
        &self,
        key: impl crate::AsKey<R::Key> + Send + 'static,
    ) -> Result<Option<R>>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        self.run(move |t| t.get_owned(KeyOf(key))).await
    }

    /// [`Table::delete`](crate::Table::delete).
    pub async fn delete(&self, key: impl crate::AsKey<R::Key> + Send + 'static) -> Result<bool> {
        self.run(move |t| t.delete(KeyOf(key))).await
    }

    /// [`Table::take`](crate::Table::take).
    pub async fn take(&self, key: impl crate::AsKey<R::Key> + Send + 'static) -> Result<Option<R>>
    where
        R::Archived: rkyv::Deserialize<R, ValueDeserializer>,
    {
        self.run(move |t| t.take(KeyOf(key))).await
    }

    /// [`Table::clear`](crate::Table::clear).
    pub async fn clear(&self) -> Result<u64> {
        self.run(|t| t.clear()).await
    }

    /// [`Table::len`](crate::Table::len).
    pub async fn len(&self) -> Result<u64> {
        self.run(|t| t.len()).await
    }

    /// [`Table::is_empty`](crate::Table::is_empty).
    pub async fn is_empty(&self) -> Result<bool> {
        self.run(|t| t.is_empty()).await
    }

    /// [`Table::page`](crate::Table::page).
    pub async fn page<O: Send + 'static>(
        &self,
        after: Option<Cursor>,
        limit: usize,
        f: impl FnMut(&R::Key, &R::Archived) -> O + Send + 'static,
    ) -> Result<Page<O>> {
        self.run(move |t| t.page(after.as_ref(), limit, f)).await
    }

    /// Runs `f` on the blocking [`Table`](crate::Table), for what has no
    /// async twin here (index queries: `records.with(|t| t.by_email(..))`).
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::Table<R::Key, R>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.run(move |t| f(&t)).await
    }
}

/// A key passed by value into the blocking pool, usable where an
/// [`AsKey`](crate::AsKey) is expected.
struct KeyOf<Q>(Q);

impl<Q: IntoKeyBytes> IntoKeyBytes for KeyOf<Q> {
    type Key = Q::Key;
    type Bytes<'a>
        = Q::Bytes<'a>
    where
        Self: 'a;

    #[allow(clippy::wrong_self_convention)]
    fn into_key_bytes(&self) -> Self::Bytes<'_> {
        self.0.into_key_bytes()
    }

    fn write_key_part(&self, out: &mut crate::KeyBuf) {
        self.0.write_key_part(out);
    }
}

impl<Q: IntoKeyBytes> crate::AsKey<Q::Key> for KeyOf<Q> {}
