//! A channel's WebSocket clients on this node, as one subscriber of the broker.
//!
//! The broker sees one [`Feed`] per topic with clients, not one subscriber per
//! client: a publish appends the frame to the feed's [`Log`] once and lists the
//! feed with the [`flusher`](super::flusher)s, whatever the number of clients. A
//! flusher's round then writes each client's socket from its cursor
//! ([`Outbound`]).
//!
//! The clients are split into parts, one per flusher, so that a busy channel's
//! sockets are written on every worker thread at once.
//!
//! A client never gets its own messages back (unless its channel echoes them): a
//! publish from a client records the frame's offsets as a skip for that client.
//!
//! A channel that keeps history in cluster mode is not fed by the broker: its feed is
//! *followed* ([`Feeds::followed`]), fed in offset order from the channel's log by a task
//! of the server's `follow`, and a client joins it at an offset ([`Feeds::join_at`]).

use super::cursor::{Channel, Outbound};
use super::flusher::{FlushPart, Flushers, Job};
use super::framelog::{Log, View};
use super::stream::ClientStream;
use crate::messaging::broker::{Broker, Reach, Sink, SinkId};
use crate::messaging::Message;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub(super) use crate::messaging::broker::next_sink_id as next_id;

/// One topic's clients and the frames on their way to them.
pub struct Feed {
    id: u64,
    /// What the feed is known by in [`Feeds`]: [`feed_key`] of its topic.
    topic: String,
    /// Clients get [`Message::envelope`] frames instead of the raw ones.
    enveloped: bool,
    /// Lock order: a feed's `inner`, then a client's state; never the other way.
    inner: Mutex<Inner>,
    parts: Box<[Part]>,
    flushers: Arc<Flushers>,
    /// A followed feed's task; `None` for a feed the broker delivers to.
    follower: Mutex<Option<tokio::task::AbortHandle>>,
    /// Held by a followed feed's task while it appends a message, and by a client
    /// joining at an offset: nothing comes between a joining client's catch-up and its
    /// first live message. Lock order: `order`, then `inner`.
    order: Mutex<()>,
}

struct Inner {
    log: Log,
    /// Every client, by connection id, to record skips for its own publishes.
    clients: HashMap<u64, Arc<Outbound>>,
    /// A followed feed's place in its log: the offset of the last message appended
    /// (`None` until its task has found where the log is).
    delivered: Option<u64>,
    /// Clients whose catch-up went past `delivered`: the messages up to this offset,
    /// already replayed to them, are skipped.
    replayed_to: HashMap<u64, u64>,
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
    fn new(topic: String, enveloped: bool, flushers: Arc<Flushers>) -> Arc<Self> {
        Arc::new(Self {
            id: next_id(),
            topic,
            enveloped,
            inner: Mutex::new(Inner {
                log: Log::default(),
                clients: HashMap::new(),
                delivered: None,
                replayed_to: HashMap::new(),
            }),
            parts: (0..flushers.count()).map(|_| Part::default()).collect(),
            flushers,
            follower: Mutex::new(None),
            order: Mutex::new(()),
        })
    }

    /// A followed feed's task found its log at `offset`: messages after it come next.
    pub(super) fn start_at_offset(&self, offset: u64) {
        let _order = lock(&self.order);
        let mut inner = self.inner();
        if inner.delivered.is_none() {
            inner.delivered = Some(offset);
        }
    }

    /// A followed feed's log was reset: its offsets start again, and what clients were
    /// to skip of the old ones no longer applies.
    pub(super) fn restart_offsets(&self) {
        let _order = lock(&self.order);
        let mut inner = self.inner();
        inner.delivered = Some(0);
        inner.replayed_to.clear();
    }

    /// Appends a followed log's message (from the feed's task), in order.
    pub(super) fn publish_followed(self: &Arc<Self>, message: &Message) {
        let _order = lock(&self.order);
        self.deliver(message);
    }

    /// Appends `message`'s frame, raw or enveloped as the feed's clients take it.
    fn deliver(self: &Arc<Self>, message: &Message) {
        if crate::metrics::get().is_some() {
            let clients = self.parts.iter().map(|p| p.count.load(Ordering::Relaxed));
            message.count_delivery(clients.sum::<usize>() as u64);
        }
        let offset = message.kept.as_ref().map(|kept| kept.offset);
        let frame = if self.enveloped {
            message.envelope()
        } else {
            &message.wire
        };
        self.publish(frame, message.origin, offset);
    }

    /// Where a followed feed is in its log, once its task knows.
    pub(super) fn delivered(&self) -> Option<u64> {
        self.inner().delivered
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Appends a message's frame (at `offset` of its channel's log, if kept) and lists
    /// the feed's parts with their flushers.
    fn publish(self: &Arc<Self>, frame: &[u8], origin: Option<SinkId>, offset: Option<u64>) {
        let mut inner = self.inner();
        let range = inner.log.append(frame);
        if let Some(SinkId::Socket(id)) = origin {
            if let Some(client) = inner.clients.get(&id) {
                client.skip(range.clone());
            }
        }
        if let Some(offset) = offset {
            inner.delivered = Some(offset);
            if !inner.replayed_to.is_empty() {
                let Inner {
                    clients,
                    replayed_to,
                    ..
                } = &mut *inner;
                replayed_to.retain(|id, upto| {
                    let replayed = offset <= *upto;
                    if let (true, Some(client)) = (replayed, clients.get(id)) {
                        client.skip(range.clone());
                    }
                    replayed && offset < *upto
                });
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
        inner.replayed_to.remove(&client.id);
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
}

impl Channel for Feed {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn end(&self) -> u64 {
        self.inner().log.end()
    }

    fn view(&self) -> View {
        self.inner().log.view()
    }

    fn rest_of_frame(&self, cursor: u64) -> Vec<u8> {
        let inner = self.inner();
        let end = inner.log.boundary_from(cursor);
        inner.log.view().copy(cursor..end)
    }

    fn flushers(&self) -> &Flushers {
        &self.flushers
    }
}

impl FlushPart for Feed {
    /// A flusher's round over part `index`: writes every client of the part from
    /// one view of the log, then drops what every client has been sent.
    fn flush_part(&self, index: usize) {
        let part = &self.parts[index];
        // Before taking the view: a publish from now on lists the part again.
        part.listed.store(false, Ordering::Release);
        let view = self.view();
        for client in part.clients().iter() {
            client.flush(&view);
        }
        self.trim();
    }
}

/// The broker's handle on a feed.
struct FeedSink(Arc<Feed>);

impl Sink for FeedSink {
    fn id(&self) -> SinkId {
        SinkId::Socket(self.0.id)
    }

    fn deliver(&self, message: &Arc<Message>) {
        self.0.deliver(message);
    }
}

/// Every feed on this node, by topic.
pub struct Feeds {
    topics: Mutex<HashMap<String, Arc<Feed>>>,
    broker: Arc<dyn Broker>,
    flushers: Arc<Flushers>,
}

impl Feeds {
    /// Each topic with WebSocket clients on this node, and how many (for the console).
    pub fn counts(&self) -> Vec<(String, usize)> {
        let topics = lock(&self.topics);
        let count = |feed: &Feed| {
            let parts = feed.parts.iter();
            parts.map(|p| p.count.load(Ordering::Relaxed)).sum()
        };
        topics
            .iter()
            .map(|(topic, feed)| (topic.clone(), count(feed)))
            .collect()
    }

    pub fn new(broker: Arc<dyn Broker>, flushers: Arc<Flushers>) -> Self {
        Self {
            topics: Mutex::new(HashMap::new()),
            broker,
            flushers,
        }
    }

    /// Subscribes a WebSocket connection to `topic`: it gets every message
    /// published from now on (`enveloped`: in a JSON envelope). `limit` bounds how far
    /// behind it may fall, in bytes.
    pub fn join(
        &self,
        topic: &str,
        enveloped: bool,
        reach: Reach,
        stream: ClientStream,
        limit: usize,
    ) -> Arc<Outbound> {
        let key = feed_key(topic, enveloped);
        let mut topics = lock(&self.topics);
        let feed = match topics.get(&key) {
            Some(feed) => feed.clone(),
            None => {
                let feed = Feed::new(key.clone(), enveloped, self.flushers.clone());
                topics.insert(key, feed.clone());
                self.broker
                    .subscribe(topic, Arc::new(FeedSink(feed.clone())), reach);
                feed
            }
        };
        self.attach(&feed, stream, limit)
    }

    /// The followed feed of `topic` (see the module docs), made with its task, which
    /// `start` spawns, if there is none.
    pub fn followed(
        &self,
        topic: &str,
        enveloped: bool,
        start: impl FnOnce(Arc<Feed>) -> tokio::task::AbortHandle,
    ) -> Arc<Feed> {
        let key = feed_key(topic, enveloped);
        let mut topics = lock(&self.topics);
        if let Some(feed) = topics.get(&key) {
            return feed.clone();
        }
        let feed = Feed::new(key.clone(), enveloped, self.flushers.clone());
        *lock(&feed.follower) = Some(start(feed.clone()));
        topics.insert(key, feed.clone());
        feed
    }

    /// Adds a connection to followed `feed` after `catch_up` (frames of the messages up to
    /// offset `upto`, replayed from the log): `Err` with the stream back while the feed
    /// has not found its place yet, or has delivered past `upto` (read more, then again).
    /// Without a catch-up (`None`) the client starts with the next message.
    pub fn join_at(
        &self,
        feed: &Arc<Feed>,
        stream: ClientStream,
        limit: usize,
        catch_up: Option<(u64, Vec<bytes::Bytes>)>,
    ) -> Result<Arc<Outbound>, (ClientStream, Option<u64>)> {
        // A feed whose last client left meanwhile is no longer followed: ask for it again.
        let topics = lock(&self.topics);
        if !topics
            .get(&feed.topic)
            .is_some_and(|f| Arc::ptr_eq(f, feed))
        {
            return Err((stream, None));
        }
        let _order = lock(&feed.order);
        let delivered = feed.delivered();
        let upto = match (&catch_up, delivered) {
            (None, _) => None,
            (Some(_), None) => return Err((stream, None)),
            (Some((upto, _)), Some(delivered)) if delivered > *upto => {
                return Err((stream, Some(delivered)))
            }
            (Some((upto, _)), Some(_)) => Some(*upto),
        };
        let client = self.attach(feed, stream, limit);
        for frame in catch_up.map(|(_, frames)| frames).unwrap_or_default() {
            client.push_own(frame);
        }
        if let (Some(upto), Some(delivered)) = (upto, delivered) {
            if upto > delivered {
                feed.inner().replayed_to.insert(client.id, upto);
            }
        }
        Ok(client)
    }

    /// Adds a connection to followed `feed` with no catch-up, whatever its state: for a
    /// client about to be closed, which needs its place to send the close from.
    pub fn join_live(&self, feed: &Arc<Feed>, stream: ClientStream, limit: usize) -> Arc<Outbound> {
        self.attach(feed, stream, limit)
    }

    /// A new client of `feed` on `stream`, written by the next flusher in turn.
    fn attach(&self, feed: &Arc<Feed>, stream: ClientStream, limit: usize) -> Arc<Outbound> {
        let part = self.flushers.next_shard();
        let client = Outbound::new(next_id(), stream, feed.clone(), part, limit);
        feed.add(&client);
        client
    }

    /// Unsubscribes a connection; the last one out unsubscribes the topic.
    pub fn leave(&self, client: &Outbound) {
        let mut topics = lock(&self.topics);
        // A feed stays under its topic while it has clients, so this is the
        // client's own feed (unless the client has left already).
        let topic = client.channel().topic();
        let Some(feed) = topics.get(topic) else {
            return;
        };
        // A client of a feed dropped meanwhile (see `join_live`) leaves with it.
        if !std::ptr::addr_eq(Arc::as_ptr(client.channel()), Arc::as_ptr(feed)) {
            return;
        }
        if feed.remove(client) == 0 {
            let id = feed.id;
            let broker_topic = topic[1..].to_owned();
            let feed = topics.remove(topic).expect("found above");
            let follower = lock(&feed.follower).take();
            match follower {
                Some(follower) => follower.abort(),
                None => self.broker.unsubscribe(&broker_topic, SinkId::Socket(id)),
            }
        }
    }
}

/// A feed's key: its topic after `r` for raw frames, `e` for enveloped ones, so the two
/// feeds of a topic never meet.
fn feed_key(topic: &str, enveloped: bool) -> String {
    let kind = if enveloped { 'e' } else { 'r' };
    format!("{kind}{topic}")
}

/// A poisoned lock only means a panic elsewhere; what it guards is intact.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::super::cursor::Status;
    use super::super::testing::{fixture, message, pair, payloads};
    use crate::messaging::broker::Reach;
    use bytes::Bytes;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_client_gets_every_message_but_its_own_in_order() {
        let (broker, feeds, listener) = fixture(2).await;
        let mut clients = Vec::new();
        for _ in 0..5 {
            let (server, client) = pair(&listener).await;
            clients.push((
                feeds.join("t", false, Reach::Cluster, server, 1 << 20),
                client,
            ));
        }
        // Enough to cross several chunks; client 2 publishes every third message.
        let publisher = clients[2].0.id;
        let texts: Vec<String> = (0..3000).map(|i| format!("message {i}")).collect();
        for (i, text) in texts.iter().enumerate() {
            let origin = (i % 3 == 0).then_some(publisher);
            broker
                .publish("t", message(text, origin), Reach::Cluster)
                .unwrap();
        }
        for (index, (outbound, client)) in clients.iter_mut().enumerate() {
            let expected: Vec<Vec<u8>> = texts
                .iter()
                .enumerate()
                .filter(|(i, _)| index != 2 || i % 3 != 0)
                .map(|(_, t)| t.clone().into_bytes())
                .collect();
            assert_eq!(payloads(client, expected.len()).await, expected);
            assert_eq!(outbound.status(), Status::Idle);
        }
        for (outbound, _) in &clients {
            feeds.leave(outbound);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stops_reading_overflows_alone_and_gets_whole_frames() {
        let (broker, feeds, listener) = fixture(2).await;
        let (server, mut reader) = pair(&listener).await;
        let live = feeds.join("t", false, Reach::Cluster, server, 64 << 10);
        let (server, mut stalled_client) = pair(&listener).await;
        let stalled = feeds.join("t", false, Reach::Cluster, server, 64 << 10);
        // Publish in steps, reading one client as it goes, until the other (whose
        // socket buffers fill) is over its 64 KiB.
        let text = "x".repeat(100);
        let mut sent = 0;
        while stalled.status() != Status::Overflowed {
            assert!(sent < 200_000, "the stalled client never overflowed");
            for _ in 0..100 {
                broker
                    .publish("t", message(&text, None), Reach::Cluster)
                    .unwrap();
            }
            sent += 100;
            assert_eq!(payloads(&mut reader, 100).await.len(), 100);
            if stalled.status() == Status::Blocked {
                // The connection's task would wait here; the test plays it.
                tokio::select! {
                    _ = stalled.drain() => {}
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                }
            }
        }
        assert_eq!(
            live.status(),
            Status::Idle,
            "the reading client is unaffected"
        );
        stalled.discard();
        // A close frame, as tungstenite writes it.
        stalled.push_own(Bytes::from_static(&[0x88, 0x00]));
        // The client reads everything now: whole frames, then the close frame.
        let drain = tokio::spawn({
            let stalled = stalled.clone();
            async move { stalled.drain().await }
        });
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0; 65536];
            let n = tokio::time::timeout(Duration::from_secs(5), stalled_client.read(&mut chunk))
                .await
                .expect("the rest within 5 s")
                .unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if buf.ends_with(&[0x88, 0x00]) {
                break;
            }
        }
        drain.await.unwrap().unwrap();
        let frames = &buf[..buf.len() - 2];
        let frame = 2 + text.len();
        assert_eq!(
            frames.len() % frame,
            0,
            "only whole frames before the close"
        );
        assert!(frames.len() / frame < sent, "the backlog was dropped");
        for whole in frames.chunks(frame) {
            assert_eq!(&whole[..2], &[0x81, 100]);
        }
        feeds.leave(&live);
        feeds.leave(&stalled);
    }
}
