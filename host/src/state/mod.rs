//! What functions keep: Taubyte's databases, storages and globals, behind one seam.
//!
//! [`StateEngine`] is that seam: keyed records (databases, globals) and versioned objects
//! (storages), each in a [`Space`], and ordered channel logs (channel history), each a
//! [`LogSpace`]. Two engines implement it:
//! - [`sqlite::Sqlite`], the default: one SQLite file (WAL) under the data dir, nothing
//!   to install;
//! - [`jetstream`], with `--cluster`: NATS JetStream key-value buckets and object stores,
//!   so every node sees the same data.
//!
//! A store never holds more than its capacity: a write that would pass it fails whole, with
//! [`StateError::Full`], and nothing of it is kept. Durability: once a write has returned,
//! the data survives the host being killed (`kill -9`); see each engine for power loss.
//!
//! [`FunctionState`] is what one function's host calls see: the engine, the project's
//! database and storage resources, and the names its globals are scoped by.

pub mod jetstream;
mod jetstream_log;
pub mod metered;
pub mod sqlite;

use crate::project::{select, StateResource};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What kind of data a space holds; part of its identity, so a database and a storage
/// opened by the same name never share data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Database = 1,
    Storage = 2,
    Globals = 3,
}

/// One store: a database or storage a guest opened by `name`, or a project's globals. Its
/// data is kept per (kind, project, application, name), as Taubyte keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Space {
    pub kind: Kind,
    pub project: Arc<str>,
    /// `""` for a project-level function.
    pub application: Arc<str>,
    /// The name the guest passed (`""` for globals).
    pub name: Arc<str>,
    /// Bytes the space may hold: a record costs its key and value, an object its content.
    pub capacity: u64,
}

/// Why a state call failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("full: {needed} bytes would pass its size of {capacity} bytes")]
    Full { needed: u64, capacity: u64 },
    #[error("a file named `{0}` already exists and the storage does not keep versions")]
    Exists(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("state engine unavailable: {0}")]
    Unavailable(String),
}

pub type StateResult<T> = Result<T, StateError>;

/// The future of a state call.
pub type StateFuture<'a, T> = Pin<Box<dyn Future<Output = StateResult<T>> + Send + 'a>>;

/// How [`StateEngine::add_object`] stores a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectWrite {
    /// Keep older versions: the new content becomes the latest version + 1.
    pub versioning: bool,
    /// Replace the latest version instead (a first add is version 1 either way).
    pub overwrite: bool,
}

impl ObjectWrite {
    /// The version a new content of file `name` gets when its latest is `latest`: 1 for a
    /// new file, the latest when overwriting, the next with versioning; without either, the
    /// file exists already.
    pub fn version(self, name: &str, latest: Option<u32>) -> StateResult<u32> {
        match (latest, self.overwrite, self.versioning) {
            (None, _, _) => Ok(1),
            (Some(latest), true, _) => Ok(latest),
            (Some(latest), false, true) => latest
                .checked_add(1)
                .ok_or_else(|| StateError::TooLarge("no versions left".into())),
            (Some(_), false, false) => Err(StateError::Exists(name.into())),
        }
    }
}

/// One version of a stored file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub version: u32,
    pub data: Vec<u8>,
}

/// The most keys or files one listing returns; past it the listing fails (errno 27 or
/// 93) rather than build an answer the guest could not take in.
pub const MAX_LISTED: usize = 100_000;

/// Where functions' data is kept. Every call is bounded: records and objects by their
/// space's capacity, listings by [`MAX_LISTED`].
pub trait StateEngine: Send + Sync {
    /// The value of `key`, or `None`.
    fn get<'a>(&'a self, space: &'a Space, key: &'a [u8]) -> StateFuture<'a, Option<Vec<u8>>>;
    /// Sets `key` to `value`, unless the space would then hold more than its capacity.
    fn put<'a>(&'a self, space: &'a Space, key: &'a [u8], value: &'a [u8]) -> StateFuture<'a, ()>;
    /// Removes `key`; whether it was there.
    fn delete<'a>(&'a self, space: &'a Space, key: &'a [u8]) -> StateFuture<'a, bool>;
    /// The keys that start with `prefix`, in byte order.
    fn keys<'a>(&'a self, space: &'a Space, prefix: &'a [u8]) -> StateFuture<'a, Vec<Vec<u8>>>;

    /// Stores `data` as file `name`; the version it got.
    fn add_object<'a>(
        &'a self,
        space: &'a Space,
        name: &'a str,
        data: &'a [u8],
        write: ObjectWrite,
    ) -> StateFuture<'a, u32>;
    /// Version `version` of file `name` (`None`: the latest), if stored.
    fn object<'a>(
        &'a self,
        space: &'a Space,
        name: &'a str,
        version: Option<u32>,
    ) -> StateFuture<'a, Option<Object>>;
    /// The versions of file `name` kept, oldest first.
    fn versions<'a>(&'a self, space: &'a Space, name: &'a str) -> StateFuture<'a, Vec<u32>>;
    /// Every (file, version) kept, by name then version.
    fn objects<'a>(&'a self, space: &'a Space) -> StateFuture<'a, Vec<(String, u32)>>;
    /// Removes version `version` of `name` (`None`: every version); whether any was there.
    fn delete_object<'a>(
        &'a self,
        space: &'a Space,
        name: &'a str,
        version: Option<u32>,
    ) -> StateFuture<'a, bool>;

    /// Bytes the space holds.
    fn used<'a>(&'a self, space: &'a Space) -> StateFuture<'a, u64>;

    /// Appends a message to channel log `log`, then trims it to its size and age; the
    /// offset it got (one past the last, from 1) and the log's epoch.
    fn append<'a>(
        &'a self,
        log: &'a LogSpace,
        message: LogMessage<'a>,
    ) -> StateFuture<'a, Appended>;
    /// Appends `messages` to `log` in order, as [`Self::append`] one by one would; an engine
    /// may keep them in one step (SQLite: one transaction). Where each went.
    fn append_all<'a>(
        &'a self,
        log: &'a LogSpace,
        messages: &'a [LogMessage<'a>],
    ) -> StateFuture<'a, Vec<Appended>> {
        Box::pin(async move {
            let mut appended = Vec::with_capacity(messages.len());
            for message in messages {
                appended.push(self.append(log, *message).await?);
            }
            Ok(appended)
        })
    }
    /// Whether every call's future is ready when first polled (SQLite: the work is done
    /// in the call). Channel history relies on it to keep and deliver a message in one step;
    /// an engine that answers later (JetStream) is followed instead ([`Self::follow`]).
    fn answers_at_once(&self) -> bool {
        true
    }
    /// Every message appended to `log` after offset `after`, in order, from whichever node
    /// appended it; `None` where logs are not followed (an engine that answers at once,
    /// whose appends and deliveries are in step already).
    fn follow<'a>(&'a self, log: &'a LogSpace, after: u64) -> StateFuture<'a, Option<LogFollow>> {
        let _ = (log, after);
        Box::pin(std::future::ready(Ok(None)))
    }
    /// The kept messages of `log` in `range`, oldest first, at most [`MAX_READ`].
    fn read_log<'a>(
        &'a self,
        log: &'a LogSpace,
        range: Range,
        now_ms: u64,
    ) -> StateFuture<'a, LogRead>;
}

/// One channel's log: the messages kept for it (`wisp.history` of its messaging resource).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogSpace {
    pub project: Arc<str>,
    /// The channel's topic (its scope's hash and its name), as the broker knows it.
    pub topic: Arc<str>,
    /// Messages kept.
    pub size: usize,
    /// How long a message is kept, in milliseconds; `None`: no age limit.
    pub ttl_ms: Option<u64>,
}

/// A message to append.
#[derive(Clone, Copy, Debug)]
pub struct LogMessage<'a> {
    /// Sent as a text frame (else binary).
    pub text: bool,
    pub data: &'a [u8],
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Who published it, for an engine whose logs are followed ([`StateEngine::follow`]):
    /// the messaging layer's own words, handed back in [`LogEntry::origin`].
    pub origin: Option<&'a str>,
}

/// Where an appended message went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub offset: u64,
    pub epoch: String,
}

/// One kept message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub offset: u64,
    pub time_ms: u64,
    pub text: bool,
    pub data: Vec<u8>,
    /// [`LogMessage::origin`], where the engine keeps it (followed logs only).
    pub origin: Option<String>,
}

/// A log's messages as they are appended, from any node: [`StateEngine::follow`].
pub type LogFollow = futures_util::stream::BoxStream<'static, StateResult<Followed>>;

/// One message of a followed log, with the log's epoch.
#[derive(Clone, Debug)]
pub struct Followed {
    pub epoch: Arc<str>,
    pub entry: LogEntry,
}

/// Which kept messages to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// The newest n.
    Last(usize),
    /// Every one after this offset.
    After(u64),
}

/// What a read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRead {
    /// Changes when the log is lost or reset: offsets of another epoch mean nothing here.
    pub epoch: String,
    /// The oldest offset still kept (`next` when none is).
    pub first: u64,
    /// The offset the next message will get.
    pub next: u64,
    pub entries: Vec<LogEntry>,
}

/// The most messages one read returns; a reader wanting more reads again after the last.
pub const MAX_READ: usize = 10_000;

/// A shared state engine, as every host call holds one.
pub type Engine = Arc<dyn StateEngine>;

/// A project's database and storage resources, and what bounds its globals.
#[derive(Debug)]
pub struct Catalog {
    pub project: Arc<str>,
    pub databases: Vec<StateResource>,
    pub storages: Vec<StateResource>,
    /// What one project's globals may hold together (keys and values).
    pub globals_size: u64,
}

impl Catalog {
    /// The resources of `project`. Data is kept under the project's `id`, or its name when
    /// it has none, so renaming the folder keeps the data of a project with an id.
    pub fn of(project: &crate::project::Project, globals_size: u64) -> Self {
        let key = if project.id.is_empty() {
            &project.name
        } else {
            &project.id
        };
        Self {
            project: key.as_str().into(),
            databases: project.databases.clone(),
            storages: project.storages.clone(),
            globals_size,
        }
    }
}

/// `--globals-size` when not given: 1MiB, about the 1MB Taubyte gives a project's globals.
pub const DEFAULT_GLOBALS_SIZE: u64 = 1 << 20;

/// What one function's state calls reach.
pub struct FunctionState {
    pub engine: Arc<dyn StateEngine>,
    pub catalog: Arc<Catalog>,
    /// The function's application (`""` at project level).
    pub application: Arc<str>,
    /// The function's own key for globals in function scope: `<application>/<name>`.
    pub function: Arc<str>,
}

impl FunctionState {
    /// The database a guest opens by `name`, or `None` when no resource serves the name.
    pub fn database(&self, name: &str) -> Option<Space> {
        let resource = self.resource(&self.catalog.databases, name)?;
        Some(self.space(Kind::Database, name, resource.size))
    }

    /// The storage a guest opens by `name`, with whether it keeps versions.
    pub fn storage(&self, name: &str) -> Option<(Space, bool)> {
        let resource = self.resource(&self.catalog.storages, name)?;
        Some((
            self.space(Kind::Storage, name, resource.size),
            resource.versioning,
        ))
    }

    /// The project's globals (one space; the scope is part of each key).
    pub fn globals(&self) -> Space {
        Space {
            kind: Kind::Globals,
            project: self.catalog.project.clone(),
            application: "".into(),
            name: "".into(),
            capacity: self.catalog.globals_size,
        }
    }

    fn resource<'a>(
        &self,
        resources: &'a [StateResource],
        name: &str,
    ) -> Option<&'a StateResource> {
        let application = (!self.application.is_empty()).then_some(&*self.application);
        select(resources, application, name)
    }

    fn space(&self, kind: Kind, name: &str, capacity: u64) -> Space {
        Space {
            kind,
            project: self.catalog.project.clone(),
            application: self.application.clone(),
            name: name.into(),
            capacity,
        }
    }
}
