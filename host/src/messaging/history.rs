//! Channel history: the messages of channels whose messaging resource has `wisp.history`,
//! kept in the state engine's channel logs, and the order between keeping them and
//! delivering them.
//!
//! A publish on such a channel is appended to its log (getting its offset) and handed to
//! the broker under the channel's lock; a WebSocket client that asks for history reads the
//! log and joins the channel's feed under the same lock. So a message is either in what the
//! client replays or among what it receives live, never both and never neither.
//!
//! The locks are striped (a fixed number, a channel's chosen by hash), so however many
//! channels there are, they cost nothing more.

use crate::project::History;
use crate::state::{Appended, LogMessage, LogRead, LogSpace, Range, StateEngine};
use futures_util::FutureExt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Lock stripes.
const STRIPES: usize = 64;

/// The project's channel logs.
pub struct Histories {
    engine: Option<Arc<dyn StateEngine>>,
    /// Whose logs: the project's key in the state engine.
    project: Arc<str>,
    stripes: Box<[Mutex<()>]>,
    /// An engine that keeps no history was logged about once (at warn; later at debug).
    warned: AtomicBool,
}

impl Histories {
    /// Logs of `project` in `engine`; `None` keeps nothing (every append and read fails).
    pub fn new(engine: Option<Arc<dyn StateEngine>>, project: Arc<str>) -> Self {
        Self {
            engine,
            project,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            warned: AtomicBool::new(false),
        }
    }

    /// Holds `topic`'s order: appends and replays of it wait for each other.
    pub fn lock(&self, topic: &str) -> MutexGuard<'_, ()> {
        let mut hasher = std::hash::DefaultHasher::new();
        topic.hash(&mut hasher);
        let stripe = &self.stripes[hasher.finish() as usize % STRIPES];
        stripe.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log of `topic` under `history`.
    pub fn space(&self, topic: &str, history: History) -> LogSpace {
        LogSpace {
            project: self.project.clone(),
            topic: topic.into(),
            size: history.size,
            ttl_ms: history.ttl.map(|ttl| ttl.as_millis() as u64),
        }
    }

    /// Appends `messages` to `log`, in order and in one step where the engine can; call
    /// under [`Self::lock`]. Only an engine that answers at once (SQLite) keeps history here.
    pub fn append(
        &self,
        log: &LogSpace,
        messages: &[LogMessage<'_>],
    ) -> Result<Vec<Appended>, String> {
        let engine = self.engine.as_ref().ok_or("no state engine")?;
        match engine.append_all(log, messages).now_or_never() {
            Some(appended) => appended.map_err(|e| e.to_string()),
            None => Err("channel history is not kept by this state engine yet".into()),
        }
    }

    /// Logs a failed append: the first at warn, the rest at debug, so that an engine that
    /// keeps no history (cluster mode, for now) does not fill the log.
    pub fn not_kept(&self, channel: &str, error: &str) {
        let channel = channel.escape_debug();
        if self.warned.swap(true, Ordering::Relaxed) {
            tracing::debug!(%channel, error, "message not kept in the channel's history");
        } else {
            tracing::warn!(%channel, error, "message not kept in the channel's history (further failures at debug level)");
        }
    }

    /// Reads `log`; call under [`Self::lock`] to join its channel in step.
    pub fn read(&self, log: &LogSpace, range: Range) -> Result<LogRead, String> {
        let engine = self.engine.as_ref().ok_or("no state engine")?;
        match engine.read_log(log, range, now_ms()).now_or_never() {
            Some(read) => read.map_err(|e| e.to_string()),
            None => Err("channel history is not kept by this state engine yet".into()),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
