//! Channel history: the messages of channels whose messaging resource has `wisp.history`,
//! kept in the state engine's channel logs, and the order between keeping them and
//! delivering them.
//!
//! With an engine that answers at once (SQLite, one node), a publish on such a channel is
//! appended to its log (getting its offset) and handed to the broker under the channel's
//! lock; a WebSocket client that asks for history reads the log and joins the channel's
//! feed under the same lock. So a message is either in what the client replays or among
//! what it receives live, never both and never neither.
//!
//! With JetStream (`--cluster`) the log is one stream every node appends to, so offsets
//! agree across nodes. A publish is handed to this node's writer (a task, fed by a bounded
//! queue: past [`WRITER_QUEUE`] batches waiting the publish is refused), which appends it
//! and then publishes it to the broker, for functions and broker-protocol subscribers. A
//! node's WebSocket clients of the channel are fed by following the log itself, in offset
//! order, whichever node appended (see the server's `follow`): a client's catch-up and its
//! live messages then meet at an offset, without a gap or a repeat.
//!
//! The locks are striped (a fixed number, a channel's chosen by hash), so however many
//! channels there are, they cost nothing more.

use super::broker::{Broker, Reach, SinkId};
use super::{Kept, Message};
use crate::project::History;
use crate::state::{Appended, LogFollow, LogMessage, LogRead, LogSpace, Range, StateEngine};
use futures_util::FutureExt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::mpsc;

/// Batches of publishes waiting for the writer (cluster mode), at most.
pub const WRITER_QUEUE: usize = 1024;

/// A batch of publishes on one channel, for the writer to keep and then publish.
pub struct Batch {
    pub topic: String,
    pub log: LogSpace,
    pub reach: Reach,
    pub messages: Vec<Message>,
    pub broker: Arc<dyn Broker>,
}

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
    /// This process, in the origin of what its sockets publish to a followed log.
    node: String,
    /// The writer's queue (followed logs only), made on first use.
    writer: OnceLock<mpsc::Sender<Batch>>,
}

impl Histories {
    /// Logs of `project` in `engine`; `None` keeps nothing (every append and read fails).
    pub fn new(engine: Option<Arc<dyn StateEngine>>, project: Arc<str>) -> Self {
        let mut node = [0u8; 8];
        let _ = getrandom::getrandom(&mut node);
        Self {
            engine,
            project,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            warned: AtomicBool::new(false),
            node: hex::encode(node),
            writer: OnceLock::new(),
        }
    }

    /// Whose logs these are: the project's key in the state engine.
    pub fn project(&self) -> &Arc<str> {
        &self.project
    }

    /// Whether logs are kept in step with delivery (SQLite); else they are followed.
    pub fn immediate(&self) -> bool {
        self.engine.as_ref().is_none_or(|e| e.answers_at_once())
    }

    /// The origin a followed log keeps for a message from `sink`: only a socket's matters
    /// (a client that does not get its own publishes back).
    pub fn origin_of(&self, sink: Option<SinkId>) -> Option<String> {
        origin_of(&self.node, sink)
    }

    /// The socket of this process that published an entry of a followed log, if one did.
    pub fn own_socket(&self, origin: Option<&str>) -> Option<SinkId> {
        let (node, id) = origin?.split_once(' ')?;
        (node == self.node).then_some(SinkId::Socket(id.parse().ok()?))
    }

    /// Hands `batch` to the writer, which keeps it and then publishes it (followed logs);
    /// `Err` with the number waiting when the queue is full.
    pub fn keep_then_publish(&self, batch: Batch) -> Result<(), usize> {
        let writer = self.writer.get_or_init(|| {
            let (tx, rx) = mpsc::channel(WRITER_QUEUE);
            let engine = self.engine.clone().expect("followed logs have an engine");
            tokio::spawn(write(engine, self.node.clone(), rx));
            tx
        });
        writer.try_send(batch).map_err(|_| {
            if let Some(metrics) = crate::metrics::get() {
                metrics.queue_drop("history");
            }
            WRITER_QUEUE
        })
    }

    /// Reads `log`, waiting for the engine.
    pub async fn read_later(&self, log: &LogSpace, range: Range) -> Result<LogRead, String> {
        let engine = self.engine.as_ref().ok_or("no state engine")?;
        let read = engine.read_log(log, range, now_ms()).await;
        read.map_err(|e| e.to_string())
    }

    /// Every message appended to `log` after `after`; `Err` where logs are not followed.
    pub async fn follow(&self, log: &LogSpace, after: u64) -> Result<LogFollow, String> {
        let engine = self.engine.as_ref().ok_or("no state engine")?;
        match engine.follow(log, after).await {
            Ok(Some(follow)) => Ok(follow),
            Ok(None) => Err("this state engine's logs are not followed".into()),
            Err(error) => Err(error.to_string()),
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

/// The writer of followed logs: each batch kept (in order, one batch at a time), then
/// published to the broker; a batch that could not be kept is published all the same, and
/// logged.
async fn write(engine: Arc<dyn StateEngine>, node: String, mut batches: mpsc::Receiver<Batch>) {
    let mut warned = false;
    while let Some(batch) = batches.recv().await {
        let Batch {
            topic,
            log,
            reach,
            mut messages,
            broker,
        } = batch;
        let time_ms = now_ms();
        let origins: Vec<Option<String>> = messages
            .iter()
            .map(|m| origin_of(&node, m.origin))
            .collect();
        let entries: Vec<LogMessage<'_>> = messages
            .iter()
            .zip(&origins)
            .map(|(message, origin)| LogMessage {
                text: message.text,
                data: &message.payload,
                time_ms,
                origin: origin.as_deref(),
            })
            .collect();
        let appended = engine.append_all(&log, &entries).await;
        drop(entries);
        match appended {
            Ok(appended) => keep(&mut messages, appended, time_ms),
            Err(error) if !warned => {
                warned = true;
                tracing::warn!(topic = %topic.escape_debug(), %error, "messages not kept in the channel's history (further failures at debug level)");
            }
            Err(error) => {
                tracing::debug!(topic = %topic.escape_debug(), %error, "messages not kept in the channel's history")
            }
        }
        for message in messages {
            if let Err(error) = broker.publish(&topic, Arc::new(message), reach) {
                tracing::warn!(topic = %topic.escape_debug(), %error, "publishing a kept message failed");
            }
        }
    }
}

/// The origin kept with a message from `sink` of process `node`: only a socket's.
fn origin_of(node: &str, sink: Option<SinkId>) -> Option<String> {
    match sink {
        Some(SinkId::Socket(id)) => Some(format!("{node} {id}")),
        _ => None,
    }
}

/// Marks each of `messages` with where it was kept.
pub fn keep(messages: &mut [Message], appended: Vec<Appended>, time_ms: u64) {
    for (message, appended) in messages.iter_mut().zip(appended) {
        message.kept = Some(Kept {
            offset: appended.offset,
            epoch: appended.epoch.into(),
            time_ms,
        });
    }
}
