//! The cluster state engine: NATS JetStream key-value buckets, so every node of a cluster
//! sees the same databases, storages and globals.
//!
//! One key-value bucket per kind (`wisp_databases`, `wisp_storages`, `wisp_globals`) and
//! one object store (`wisp_objects`), file storage, one revision kept per key. A space (a
//! database, a storage, a project's globals) is a token of its own in every key:
//! `s<hash of kind, project, application, name>`. In its bucket:
//! - `<space>.k<hex key>`: a record;
//! - `<space>.used`: the bytes the space holds, a decimal counter updated by
//!   compare-and-set, so nodes writing at once cannot together pass the capacity;
//! - `<space>.f<hex name>`: a file's versions and sizes (JSON, also compare-and-set);
//!
//! and each version's content is object `<space>.<hex name>.<version>` in the object store
//! (which chunks it).
//!
//! A write reserves its bytes on the counter before it writes, and gives them back if the
//! write then fails, so `used` can over-count after a failure in between, never under-count:
//! a space never holds more than its capacity. Keys are hex in the subject, so a key is at
//! most [`MAX_KEY`] bytes here (NATS bounds a subject).
//!
//! Every call fails fast with [`StateError::Unavailable`] while NATS is not connected, and
//! gives up after [`OP_TIMEOUT`]; the buckets are made (or found) on first use and again
//! after a failure, so a JetStream that was down at start is used once it is up. Durability
//! is JetStream's: a write has returned once the server stored it, and a killed host loses
//! nothing.

use super::MAX_LISTED;
use super::{Appended, Kind, LogFollow, LogMessage, LogRead, LogSpace, Object, ObjectWrite, Range};
use super::{Space, StateEngine, StateError, StateFuture, StateResult};
use async_nats::connection::State;
use async_nats::jetstream::consumer::{push::OrderedConfig, DeliverPolicy, ReplayPolicy};
use async_nats::jetstream::kv::{Config, Operation, Store};
use async_nats::jetstream::object_store::{self, ObjectStore};
use async_nats::jetstream::stream::StorageType;
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;

/// How long one state call may take before it fails with `Unavailable`.
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest key or file name (its hex must fit in a NATS subject).
pub const MAX_KEY: usize = 1024;

/// Compare-and-set attempts before a write gives up as contended.
const CAS_TRIES: usize = 16;

/// The three buckets and the object store.
struct Buckets {
    databases: Store,
    storages: Store,
    globals: Store,
    objects: ObjectStore,
}

/// The JetStream engine over one NATS connection.
pub struct JetStream {
    pub(super) client: async_nats::Client,
    buckets: OnceCell<Buckets>,
}

pub(super) fn unavailable(error: impl std::fmt::Display) -> StateError {
    StateError::Unavailable(format!("JetStream: {error}"))
}

/// The subject token of `space`.
fn token(space: &Space) -> String {
    let mut hash = Sha256::new();
    for part in [
        space.project.as_bytes(),
        space.application.as_bytes(),
        space.name.as_bytes(),
    ] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    hash.update([space.kind as u8]);
    format!("s{}", hex::encode(&hash.finalize()[..16]))
}

fn checked_key(key: &[u8]) -> StateResult<()> {
    if key.len() > MAX_KEY {
        return Err(StateError::TooLarge(format!(
            "a key or name of {} bytes; in cluster mode they are at most {MAX_KEY}",
            key.len()
        )));
    }
    Ok(())
}

/// A file's versions and their sizes, oldest first.
type Index = Vec<(u32, u64)>;

impl JetStream {
    /// An engine on `client` (the cluster broker's connection). Buckets are made on first use.
    pub fn new(client: async_nats::Client) -> Self {
        Self {
            client,
            buckets: OnceCell::new(),
        }
    }

    /// `Unavailable` while NATS is not connected, so a call fails at once.
    pub(super) fn connected(&self) -> StateResult<()> {
        if self.client.connection_state() != State::Connected {
            return Err(unavailable("NATS is not connected"));
        }
        Ok(())
    }

    /// Runs `call` on the bucket of `kind`: at once `Unavailable` while disconnected, and
    /// after [`OP_TIMEOUT`] at the latest.
    async fn run<'a, T, F>(
        &'a self,
        kind: Kind,
        call: impl FnOnce(&'a Store, &'a ObjectStore) -> F,
    ) -> StateResult<T>
    where
        F: Future<Output = StateResult<T>> + 'a,
    {
        self.connected()?;
        let work = async {
            let buckets = self.buckets.get_or_try_init(|| self.open()).await?;
            let bucket = match kind {
                Kind::Database => &buckets.databases,
                Kind::Storage => &buckets.storages,
                Kind::Globals => &buckets.globals,
            };
            call(bucket, &buckets.objects).await
        };
        tokio::time::timeout(OP_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(unavailable(format!("no answer within {OP_TIMEOUT:?}"))))
    }

    async fn open(&self) -> StateResult<Buckets> {
        let js = async_nats::jetstream::new(self.client.clone());
        let bucket = |name: &'static str| {
            let js = js.clone();
            async move {
                if let Ok(store) = js.get_key_value(name).await {
                    return Ok(store);
                }
                let config = Config {
                    bucket: name.to_owned(),
                    description: "Wisp state (databases, storages, globals)".into(),
                    history: 1,
                    storage: StorageType::File,
                    ..Default::default()
                };
                match js.create_key_value(config).await {
                    Ok(store) => Ok(store),
                    // Another node made it meanwhile.
                    Err(error) => js.get_key_value(name).await.map_err(|_| unavailable(error)),
                }
            }
        };
        let objects = match js.get_object_store("wisp_objects").await {
            Ok(store) => store,
            Err(_) => {
                let config = object_store::Config {
                    bucket: "wisp_objects".into(),
                    description: Some("Wisp storages' file contents".into()),
                    storage: StorageType::File,
                    ..Default::default()
                };
                match js.create_object_store(config).await {
                    Ok(store) => store,
                    // Another node made it meanwhile.
                    Err(error) => js
                        .get_object_store("wisp_objects")
                        .await
                        .map_err(|_| unavailable(error))?,
                }
            }
        };
        Ok(Buckets {
            databases: bucket("wisp_databases").await?,
            storages: bucket("wisp_storages").await?,
            globals: bucket("wisp_globals").await?,
            objects,
        })
    }
}

/// The value of `key` and its revision, if it holds one.
async fn entry(kv: &Store, key: &str) -> StateResult<Option<(Bytes, u64)>> {
    let entry = kv.entry(key).await.map_err(unavailable)?;
    Ok(entry
        .filter(|e| e.operation == Operation::Put)
        .map(|e| (e.value, e.revision)))
}

/// Writes `value` at `key` if it is still at `revision` (`None`: absent); false if not.
async fn swap(kv: &Store, key: &str, value: Bytes, revision: Option<u64>) -> StateResult<bool> {
    let done = match revision {
        Some(revision) => kv
            .update(key, value, revision)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        None => kv
            .create(key, value)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
    };
    match done {
        Ok(()) => Ok(true),
        Err(error) if error.contains("wrong last sequence") || error.contains("exists") => {
            Ok(false)
        }
        Err(error) => Err(unavailable(error)),
    }
}

/// Moves `space`'s counter by `delta` bytes; growing past the capacity is `Full`.
async fn reserve(kv: &Store, space: &Space, sp: &str, delta: i64) -> StateResult<()> {
    if delta == 0 {
        return Ok(());
    }
    let key = format!("{sp}.used");
    for _ in 0..CAS_TRIES {
        let current = entry(kv, &key).await?;
        let used = current
            .as_ref()
            .and_then(|(v, _)| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        let needed = used.saturating_add_signed(delta);
        if delta > 0 && needed > space.capacity {
            return Err(StateError::Full {
                needed,
                capacity: space.capacity,
            });
        }
        if swap(kv, &key, needed.to_string().into(), current.map(|(_, r)| r)).await? {
            return Ok(());
        }
    }
    Err(unavailable(
        "the space's size is being changed by many nodes at once; try again",
    ))
}

/// The keys under `filter` (a subject in the bucket, with wildcards) that hold a value.
async fn list(client: &async_nats::Client, kv: &Store, filter: &str) -> StateResult<Vec<String>> {
    let consumer = kv
        .stream
        .create_consumer(OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: format!("{}{filter}", kv.prefix),
            headers_only: true,
            replay_policy: ReplayPolicy::Instant,
            deliver_policy: DeliverPolicy::LastPerSubject,
            ..Default::default()
        })
        .await
        .map_err(unavailable)?;
    let mut keys = Vec::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(keys);
    }
    let mut messages = consumer.messages().await.map_err(unavailable)?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(unavailable)?;
        let deleted = message
            .headers
            .as_ref()
            .and_then(|h| h.get("KV-Operation"))
            .is_some_and(|op| op.as_str() != "PUT");
        if !deleted {
            if let Some(key) = message.subject.strip_prefix(kv.prefix.as_str()) {
                keys.push(key.to_owned());
            }
        }
        if keys.len() > MAX_LISTED {
            return Err(StateError::TooLarge(format!(
                "more than {MAX_LISTED} keys to list"
            )));
        }
        let info = message.info().map_err(unavailable)?;
        if info.pending == 0 {
            break;
        }
    }
    Ok(keys)
}

fn record_key(sp: &str, key: &[u8]) -> String {
    format!("{sp}.k{}", hex::encode(key))
}

async fn index(kv: &Store, sp: &str, name: &str) -> StateResult<(Index, Option<u64>)> {
    let key = format!("{sp}.f{}", hex::encode(name));
    Ok(match entry(kv, &key).await? {
        Some((value, revision)) => {
            let index = serde_json::from_slice(&value).map_err(unavailable)?;
            (index, Some(revision))
        }
        None => (Vec::new(), None),
    })
}

async fn write_index(
    kv: &Store,
    sp: &str,
    name: &str,
    index: &Index,
    revision: Option<u64>,
) -> StateResult<bool> {
    let key = format!("{sp}.f{}", hex::encode(name));
    if index.is_empty() {
        return match revision {
            Some(revision) => match kv.delete_expect_revision(&key, Some(revision)).await {
                Ok(()) => Ok(true),
                Err(error) if error.to_string().contains("wrong last sequence") => Ok(false),
                Err(error) => Err(unavailable(error)),
            },
            None => Ok(true),
        };
    }
    let value = serde_json::to_vec(index).map_err(unavailable)?;
    swap(kv, &key, value.into(), revision).await
}

/// The object holding version `version` of file `name`.
fn object_name(sp: &str, name: &str, version: u32) -> String {
    format!("{sp}.{}.{version}", hex::encode(name))
}

impl StateEngine for JetStream {
    fn get<'a>(&'a self, space: &'a Space, key: &'a [u8]) -> StateFuture<'a, Option<Vec<u8>>> {
        Box::pin(self.run(space.kind, move |kv, _| async move {
            checked_key(key)?;
            let value = entry(kv, &record_key(&token(space), key)).await?;
            Ok(value.map(|(v, _)| v.to_vec()))
        }))
    }

    fn put<'a>(&'a self, space: &'a Space, key: &'a [u8], value: &'a [u8]) -> StateFuture<'a, ()> {
        Box::pin(self.run(space.kind, move |kv, _| async move {
            checked_key(key)?;
            let sp = token(space);
            let at = record_key(&sp, key);
            let old = entry(kv, &at)
                .await?
                .map_or(0, |(v, _)| key.len() + v.len());
            let delta = (key.len() + value.len()) as i64 - old as i64;
            reserve(kv, space, &sp, delta).await?;
            if let Err(error) = kv.put(&at, Bytes::copy_from_slice(value)).await {
                let _ = reserve(kv, space, &sp, -delta.max(0)).await;
                return Err(unavailable(error));
            }
            Ok(())
        }))
    }

    fn delete<'a>(&'a self, space: &'a Space, key: &'a [u8]) -> StateFuture<'a, bool> {
        Box::pin(self.run(space.kind, move |kv, _| async move {
            checked_key(key)?;
            let sp = token(space);
            let at = record_key(&sp, key);
            let Some((value, _)) = entry(kv, &at).await? else {
                return Ok(false);
            };
            kv.purge(&at).await.map_err(unavailable)?;
            reserve(kv, space, &sp, -((key.len() + value.len()) as i64)).await?;
            Ok(true)
        }))
    }

    fn keys<'a>(&'a self, space: &'a Space, prefix: &'a [u8]) -> StateFuture<'a, Vec<Vec<u8>>> {
        Box::pin(self.run(space.kind, move |kv, _| async move {
            let sp = token(space);
            let mut keys: Vec<Vec<u8>> = list(&self.client, kv, &format!("{sp}.*"))
                .await?
                .iter()
                .filter_map(|k| hex::decode(k.strip_prefix(&sp)?.strip_prefix(".k")?).ok())
                .filter(|k| k.starts_with(prefix))
                .collect();
            keys.sort();
            Ok(keys)
        }))
    }

    fn add_object<'a>(
        &'a self,
        space: &'a Space,
        name: &'a str,
        data: &'a [u8],
        write: ObjectWrite,
    ) -> StateFuture<'a, u32> {
        Box::pin(self.run(space.kind, move |kv, objects| async move {
            checked_key(name.as_bytes())?;
            let sp = token(space);
            let (mut versions, revision) = index(kv, &sp, name).await?;
            let latest = versions.last().map(|(v, _)| *v);
            let version = write.version(name, latest)?;
            let old = versions
                .iter()
                .find(|(v, _)| *v == version)
                .map(|(_, size)| *size);
            let old_cost = old.map_or(0, |size| name.len() as u64 + size);
            let delta = (name.len() + data.len()) as i64 - old_cost as i64;
            reserve(kv, space, &sp, delta).await?;
            let written = async {
                let mut content = data;
                let object = object_name(&sp, name, version);
                objects
                    .put(object.as_str(), &mut content)
                    .await
                    .map_err(unavailable)?;
                versions.retain(|(v, _)| *v != version);
                versions.push((version, data.len() as u64));
                versions.sort();
                if !write_index(kv, &sp, name, &versions, revision).await? {
                    return Err(unavailable(format!(
                        "file `{name}` was written by another node at the same time; try again"
                    )));
                }
                Ok(())
            };
            if let Err(error) = written.await {
                let _ = reserve(kv, space, &sp, -delta.max(0)).await;
                return Err(error);
            }
            Ok(version)
        }))
    }

    fn object<'a>(
        &'a self,
        space: &'a Space,
        name: &'a str,
        version: Option<u32>,
    ) -> StateFuture<'a, Option<Object>> {
        Box::pin(self.run(space.kind, move |kv, objects| async move {
            checked_key(name.as_bytes())?;
            let sp = token(space);
            let (versions, _) = index(kv, &sp, name).await?;
            let found = match version {
                None => versions.last(),
                Some(wanted) => versions.iter().find(|(v, _)| *v == wanted),
            };
            let Some(&(version, size)) = found else {
                return Ok(None);
            };
            let mut data = Vec::with_capacity(size as usize);
            let object = object_name(&sp, name, version);
            match objects.get(object.as_str()).await {
                Ok(mut content) => {
                    content.read_to_end(&mut data).await.map_err(unavailable)?;
                }
                // Deleted meanwhile.
                Err(error) if error.kind() == object_store::GetErrorKind::NotFound => {
                    return Ok(None)
                }
                Err(error) => return Err(unavailable(error)),
            }
            Ok(Some(Object { version, data }))
        }))
    }

    fn versions<'a>(&'a self, space: &'a Space, name: &'a str) -> StateFuture<'a, Vec<u32>> {
        Box::pin(self.run(space.kind, move |kv, _| async move {
            checked_key(name.as_bytes())?;
            let (versions, _) = index(kv, &token(space), name).await?;
            Ok(versions.into_iter().map(|(v, _)| v).collect())
        }))
    }

    fn objects<'a>(&'a self, space: &'a Space) -> StateFuture<'a, Vec<(String, u32)>> {
        Box::pin(self.run(space.kind, move |kv, _| async move {
            let sp = token(space);
            let mut names: Vec<String> = list(&self.client, kv, &format!("{sp}.*"))
                .await?
                .iter()
                .filter_map(|k| hex::decode(k.strip_prefix(&sp)?.strip_prefix(".f")?).ok())
                .filter_map(|name| String::from_utf8(name).ok())
                .collect();
            names.sort();
            let mut out = Vec::new();
            for name in names {
                let (versions, _) = index(kv, &sp, &name).await?;
                out.extend(versions.into_iter().map(|(v, _)| (name.clone(), v)));
                if out.len() > MAX_LISTED {
                    return Err(StateError::TooLarge(format!(
                        "more than {MAX_LISTED} files to list"
                    )));
                }
            }
            Ok(out)
        }))
    }

    fn delete_object<'a>(
        &'a self,
        space: &'a Space,
        name: &'a str,
        version: Option<u32>,
    ) -> StateFuture<'a, bool> {
        Box::pin(self.run(space.kind, move |kv, objects| async move {
            checked_key(name.as_bytes())?;
            let sp = token(space);
            let (mut versions, revision) = index(kv, &sp, name).await?;
            let (gone, kept): (Index, Index) = versions
                .drain(..)
                .partition(|(v, _)| version.is_none_or(|wanted| *v == wanted));
            if gone.is_empty() {
                return Ok(false);
            }
            if !write_index(kv, &sp, name, &kept, revision).await? {
                return Err(unavailable(format!(
                    "file `{name}` was written by another node at the same time; try again"
                )));
            }
            let mut freed = 0;
            for (version, size) in gone {
                let object = object_name(&sp, name, version);
                match objects.delete(object.as_str()).await {
                    Ok(()) => {}
                    Err(error) if error.kind() == object_store::DeleteErrorKind::NotFound => {}
                    Err(error) => return Err(unavailable(error)),
                }
                freed += name.len() as i64 + size as i64;
            }
            reserve(kv, space, &sp, -freed).await?;
            Ok(true)
        }))
    }

    fn used<'a>(&'a self, space: &'a Space) -> StateFuture<'a, u64> {
        Box::pin(self.run(space.kind, move |kv, _| async move {
            let key = format!("{}.used", token(space));
            let used = entry(kv, &key).await?;
            Ok(used
                .and_then(|(v, _)| std::str::from_utf8(&v).ok()?.parse().ok())
                .unwrap_or(0))
        }))
    }

    // Channel logs: one JetStream stream per log (see `jetstream_log`).
    fn append<'a>(
        &'a self,
        log: &'a LogSpace,
        message: LogMessage<'a>,
    ) -> StateFuture<'a, Appended> {
        Box::pin(async move {
            let mut appended = self.append_log(log, &[message]).await?;
            Ok(appended.remove(0))
        })
    }

    fn append_all<'a>(
        &'a self,
        log: &'a LogSpace,
        messages: &'a [LogMessage<'a>],
    ) -> StateFuture<'a, Vec<Appended>> {
        Box::pin(self.append_log(log, messages))
    }

    fn answers_at_once(&self) -> bool {
        false
    }

    fn follow<'a>(&'a self, log: &'a LogSpace, after: u64) -> StateFuture<'a, Option<LogFollow>> {
        Box::pin(async move { Ok(Some(self.follow_log(log, after).await?)) })
    }

    fn read_log<'a>(
        &'a self,
        log: &'a LogSpace,
        range: Range,
        now_ms: u64,
    ) -> StateFuture<'a, LogRead> {
        Box::pin(self.read_log_stream(log, range, now_ms))
    }
}
