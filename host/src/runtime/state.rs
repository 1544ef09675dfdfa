//! The data each Store carries: one event, its WASI context and its limits.

use super::clocks::{CoarseMonotonicClock, CoarseWallClock};
use super::guest_log::{GuestLog, Stream};
use super::http_event::HttpEvent;
use super::limits::MemoryLimiter;
use crate::abi::errno::Errno;
use crate::messaging::Hub;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::Memory;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::WasiCtxBuilder;

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

/// Where a guest's pub/sub calls go: the hub, and who is calling.
pub struct GuestEnv {
    pub hub: Arc<Hub>,
    /// The calling function's index (it subscribes itself, and never receives its
    /// own publishes).
    pub function: usize,
    /// The function's messaging scope.
    pub scope: usize,
}

/// Store data for one invocation. A fresh one is made per event and dropped after.
pub struct HostState {
    /// Built on the guest's first WASI call (see [`HostState::wasi`]): most events
    /// make none, and a context costs allocations and a seeded random generator.
    pub wasi: Option<WasiP1Ctx>,
    pub limiter: MemoryLimiter,
    /// The guest's exported memory, found once after instantiation.
    pub memory: Option<Memory>,
    /// The id the guest was called with; any other id is `EventNotFound`.
    pub event_id: u32,
    pub event: EventData,
    /// The function's name, for log lines.
    pub function: Arc<str>,
    /// When the invocation must end (`execution.timeout`).
    pub deadline: Instant,
    pub env: GuestEnv,
}

impl HostState {
    /// The guest's WASI context, built on first use.
    pub fn wasi(&mut self) -> &mut WasiP1Ctx {
        let function = &self.function;
        self.wasi.get_or_insert_with(|| wasi_context(function))
    }

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

/// What a guest gets of WASI: nothing granted (no preopened folders, no environment,
/// no arguments, no sockets), coarse clocks, and stdout/stderr as log lines.
fn wasi_context(function: &Arc<str>) -> WasiP1Ctx {
    WasiCtxBuilder::new()
        .stdout(GuestLog::new(function.clone(), Stream::Stdout))
        .stderr(GuestLog::new(function.clone(), Stream::Stderr))
        .wall_clock(CoarseWallClock)
        .monotonic_clock(CoarseMonotonicClock)
        .build_p1()
}
