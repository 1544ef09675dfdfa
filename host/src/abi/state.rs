//! What the host calls of one invocation work on: its event, the guest's memory, who is
//! calling and until when.

use super::channels::GuestEnv;
use super::handles::Handles;
use super::http_client::HttpClients;
use super::http_event::HttpEvent;
use super::storage::{OpenFile, OpenStorage, MAX_FILES_OPENED};
use crate::state::{Space, StateEngine};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::Memory;
use wisp_abi::Errno;

/// Taubyte's event type numbers, as `getEventType` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum EventType {
    Undefined = 0,
    Http = 1,
    PubSub = 2,
}

/// The event a guest is called with.
pub enum EventData {
    Http(Box<HttpEvent>),
    PubSub(PubSubEvent),
}

impl EventData {
    pub fn event_type(&self) -> EventType {
        match self {
            EventData::Http(_) => EventType::Http,
            EventData::PubSub(_) => EventType::PubSub,
        }
    }
}

/// A message delivered to a pub/sub function.
pub struct PubSubEvent {
    pub channel: Arc<str>,
    pub data: Bytes,
}

/// The host calls' share of one invocation's Store data. A fresh one is made per event.
pub struct AbiState {
    /// The guest's exported memory, found once after instantiation.
    pub memory: Option<Memory>,
    /// The id the guest was called with; any other id is `EventNotFound`.
    pub event_id: u32,
    pub event: EventData,
    /// The function's name, for log lines.
    pub function: Arc<str>,
    /// When the invocation must end (`execution.timeout`).
    pub deadline: Instant,
    /// Where its pub/sub and state calls go.
    pub env: GuestEnv,
    /// The databases and storages it opened.
    pub stores: StoreHandles,
    /// Its outbound HTTP clients and requests.
    pub http_clients: HttpClients,
}

/// What a guest opened of its databases, storages and globals during one invocation.
pub struct StoreHandles {
    pub databases: Handles<OpenDatabase>,
    /// The globals value `getGlobalValueSize` measured, by key, for `getGlobalValue`.
    pub global_measured: Option<(Vec<u8>, Vec<u8>)>,
    pub storages: Handles<OpenStorage>,
    /// The files open for reading, of every storage handle.
    pub files: Handles<OpenFile>,
    /// The bytes those files hold, at most [`MAX_OPEN_FILE_BYTES`].
    pub file_bytes: usize,
    /// The version `storageCurrentVersionSize` measured, by file name, for
    /// `storageCurrentVersion` (which has no storage id).
    pub current_version: Option<(String, Vec<u8>)>,
    /// The channel history `channelHistorySize` measured, for `channelHistory`.
    pub history_measured: Option<Vec<u8>>,
    /// The WebSocket URL `webSocketUrlForSize` made, for `webSocketUrlFor`.
    pub url_measured: Option<Vec<u8>>,
    /// The members `channelPresenceSize` listed, for `channelPresence`.
    pub presence_measured: Option<Vec<u8>>,
}

impl Default for StoreHandles {
    fn default() -> Self {
        Self {
            databases: Handles::new(super::database::MAX_OPEN_DATABASES),
            global_measured: None,
            storages: Handles::new(super::storage::MAX_OPEN_STORAGES),
            files: Handles::new(MAX_FILES_OPENED),
            file_bytes: 0,
            current_version: None,
            history_measured: None,
            url_measured: None,
            presence_measured: None,
        }
    }
}

/// A database handle.
pub struct OpenDatabase {
    pub engine: Arc<dyn StateEngine>,
    pub space: Arc<Space>,
    /// The value a `databaseGetSize` measured, by key: what the following `databaseGet`
    /// writes, so that it fits the buffer the guest sized by it.
    pub measured: Option<(Vec<u8>, Vec<u8>)>,
    /// Likewise the key list a `databaseListSize` measured, by prefix.
    pub listed: Option<(Vec<u8>, Vec<u8>)>,
}

impl AbiState {
    /// The HTTP event `id`, or the errno a guest gets for a wrong id or event type.
    pub fn http(&mut self, id: i32) -> Result<&mut HttpEvent, Errno> {
        if id as u32 != self.event_id {
            return Err(Errno::EventNotFound);
        }
        match &mut self.event {
            EventData::Http(http) => Ok(http),
            _ => Err(Errno::EventNotFound),
        }
    }

    /// The pub/sub event `id`, or the errno for a wrong id or event type.
    pub fn pubsub(&self, id: i32) -> Result<&PubSubEvent, Errno> {
        if id as u32 != self.event_id {
            return Err(Errno::EventNotFound);
        }
        match &self.event {
            EventData::PubSub(event) => Ok(event),
            _ => Err(Errno::EventNotFound),
        }
    }

    /// The type of event `id` (`Undefined` for an unknown id).
    pub fn event_type(&self, id: i32) -> EventType {
        if id as u32 == self.event_id {
            self.event.event_type()
        } else {
            EventType::Undefined
        }
    }
}
