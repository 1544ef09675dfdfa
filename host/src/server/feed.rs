//! A channel's WebSocket clients on this node, as one subscriber of the broker.
//!
//! The broker sees one [`Feed`] per topic with clients, not one subscriber per
//! client: a publish appends the frame to the feed's [`Log`] once and lists the
//! feed with the flushers, whatever the number of clients. A flusher's round then
//! writes each client's socket from its cursor ([`Outbound`]).
//!
//! The clients are split into parts, one per flusher, so that a busy channel's
//! sockets are written on every worker thread at once.
//!
//! A client never gets its own messages back (unless its channel echoes them): a
//! publish from a client records the frame's offsets as a skip for that client.

use super::framelog::{Log, View};
use super::outbound::{Flushers, Job, Outbound};
use crate::messaging::broker::{Broker, Reach, Sink, SinkId};
use crate::messaging::Message;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpStream;

/// Ids of feeds and WebSocket connections: one sequence, so that a feed's
/// [`SinkId`] never equals a connection's (the origin of a client's publish).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// One topic's clients and the frames on their way to them.
pub struct Feed {
    id: u64,
    topic: String,
    /// Lock order: a feed's `inner`, then a client's state; never the other way.
    inner: Mutex<Inner>,
    parts: Box<[Part]>,
    flushers: Arc<Flushers>,
}

struct Inner {
    log: Log,
    /// Every client, by connection id, to record skips for its own publishes.
    clients: HashMap<u64, Arc<Outbound>>,
}

/// The clients one flusher writes.
#[derive(Default)]
struct Part {
    /// Replaced on join and leave, so a round takes it without holding a lock.
    clients: Mutex<Arc<[Arc<Outbound>]>>,
    count: AtomicUsize,
    /// On its flusher's list, waiting for a round.
    listed: AtomicBool,
}

impl Part {
    fn clients(&self) -> Arc<[Arc<Outbound>]> {
        lock(&self.clients).clone()
    }
}

impl Feed {
    fn new(topic: &str, flushers: Arc<Flushers>) -> Arc<Self> {
        Arc::new(Self {
            id: next_id(),
            topic: topic.to_owned(),
            inner: Mutex::new(Inner {
                log: Log::default(),
                clients: HashMap::new(),
            }),
            parts: (0..flushers.count()).map(|_| Part::default()).collect(),
            flushers,
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// The log's end: where the next frame will start.
    pub fn end(&self) -> u64 {
        self.inner().log.end()
    }

    /// What the log holds now, for writing clients out.
    pub fn view(&self) -> View {
        self.inner().log.view()
    }

    pub fn flushers(&self) -> &Arc<Flushers> {
        &self.flushers
    }

    /// Appends a message's frame and lists the feed's parts with their flushers.
    fn publish(self: &Arc<Self>, frame: &[u8], origin: Option<SinkId>) {
        let mut inner = self.inner();
        let range = inner.log.append(frame);
        if let Some(SinkId::Socket(id)) = origin {
            if let Some(client) = inner.clients.get(&id) {
                client.skip(range);
            }
        }
        drop(inner);
        for (index, part) in self.parts.iter().enumerate() {
            if part.count.load(Ordering::Relaxed) > 0
                && !part.listed.load(Ordering::Relaxed)
                && !part.listed.swap(true, Ordering::AcqRel)
            {
                self.flushers.list(Job::Part(self.clone(), index));
            }
        }
    }

    /// A flusher's round over part `index`: writes every client of the part from
    /// one view of the log, then drops what every client has been sent.
    pub fn flush_part(&self, index: usize) {
        let part = &self.parts[index];
        // Before taking the view: a publish from now on lists the part again.
        part.listed.store(false, Ordering::Release);
        let view = self.view();
        for client in part.clients().iter() {
            client.flush(&view);
        }
        self.trim();
    }

    /// Drops the log's chunks that every client is past.
    fn trim(&self) {
        let end = {
            let inner = self.inner();
            if !inner.log.holds_any() {
                return;
            }
            inner.log.end()
        };
        // A client that joins after `end` was read starts at or after it, so the
        // clients seen below (taken after) are all that can need older bytes.
        let mut low = end;
        for part in self.parts.iter() {
            for client in part.clients().iter() {
                low = low.min(client.low());
            }
        }
        self.inner().log.trim(low);
    }

    /// Adds `client`, starting at the log's end.
    fn add(&self, client: &Arc<Outbound>) {
        let mut inner = self.inner();
        client.start_at(inner.log.end());
        inner.clients.insert(client.id, client.clone());
        let part = &self.parts[client.part];
        let mut clients = lock(&part.clients);
        *clients = clients.iter().cloned().chain([client.clone()]).collect();
        part.count.store(clients.len(), Ordering::Relaxed);
    }

    /// Removes `client`; returns how many clients are left.
    fn remove(&self, client: &Outbound) -> usize {
        let mut inner = self.inner();
        inner.clients.remove(&client.id);
        let part = &self.parts[client.part];
        let mut clients = lock(&part.clients);
        *clients = clients
            .iter()
            .filter(|c| c.id != client.id)
            .cloned()
            .collect();
        part.count.store(clients.len(), Ordering::Relaxed);
        inner.clients.len()
    }

    /// The log's bytes from a client's cursor to the end of the frame it is in,
    /// (empty at a frame boundary), so that a client being cut off can finish it.
    pub fn rest_of_frame(&self, cursor: u64) -> Vec<u8> {
        let inner = self.inner();
        let end = inner.log.boundary_from(cursor);
        inner.log.view().copy(cursor..end)
    }
}

/// The broker's handle on a feed.
struct FeedSink(Arc<Feed>);

impl Sink for FeedSink {
    fn id(&self) -> SinkId {
        SinkId::Socket(self.0.id)
    }

    fn deliver(&self, message: &Arc<Message>) {
        self.0.publish(&message.wire, message.origin);
    }
}

/// Every feed on this node, by topic.
pub struct Feeds {
    topics: Mutex<HashMap<String, Arc<Feed>>>,
    broker: Arc<dyn Broker>,
    flushers: Arc<Flushers>,
}

impl Feeds {
    pub fn new(broker: Arc<dyn Broker>, flushers: Arc<Flushers>) -> Self {
        Self {
            topics: Mutex::new(HashMap::new()),
            broker,
            flushers,
        }
    }

    /// Subscribes a WebSocket connection to `topic`: it gets every message
    /// published from now on. `limit` bounds how far behind it may fall, in bytes.
    pub fn join(
        &self,
        topic: &str,
        reach: Reach,
        stream: TcpStream,
        limit: usize,
    ) -> Arc<Outbound> {
        let mut topics = lock(&self.topics);
        let feed = match topics.get(topic) {
            Some(feed) => feed.clone(),
            None => {
                let feed = Feed::new(topic, self.flushers.clone());
                topics.insert(topic.to_owned(), feed.clone());
                self.broker
                    .subscribe(topic, Arc::new(FeedSink(feed.clone())), reach);
                feed
            }
        };
        let part = self.flushers.next_shard();
        let client = Outbound::new(next_id(), stream, feed.clone(), part, limit);
        feed.add(&client);
        client
    }

    /// Unsubscribes a connection; the last one out unsubscribes the topic.
    pub fn leave(&self, client: &Outbound) {
        let mut topics = lock(&self.topics);
        let feed = client.feed();
        if feed.remove(client) == 0 {
            topics.remove(&feed.topic);
            self.broker
                .unsubscribe(&feed.topic, SinkId::Socket(feed.id));
        }
    }
}

/// A poisoned lock only means a panic elsewhere; what it guards is intact.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
