//! What goes out to one WebSocket client, and who writes it.
//!
//! A client's channel messages wait in its channel's [`Log`](super::framelog::Log)
//! (see [`feed`](super::feed)); the client's [`Outbound`] holds only its cursor
//! there, plus frames of its own (tungstenite's pongs, pings and closes). A
//! flusher's round writes each client once, with one `writev` for everything
//! pending: messages that arrive while the flusher is busy pile up in the log and
//! go out together, so under load a socket gets many messages per system call,
//! and a publish wakes one flusher rather than every connection's task.
//!
//! A socket that would block is handed to its connection's task, which waits until
//! the client reads and writes the rest ([`Outbound::poll_drain`]); the flushers
//! skip it meanwhile. How far a client may fall behind is bounded in bytes: past
//! the bound it is marked overflowed and its task closes it.
//!
//! [`SocketIo`] lets tungstenite read from the socket and write its own frames
//! through the same client, so every frame leaves whole and in order.

use super::feed::Feed;
use super::framelog::{Piece, Slices, View};
use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// One client's socket, its place in its channel's log and its own frames.
pub struct Outbound {
    /// The connection's id: the origin of what it publishes.
    pub id: u64,
    stream: TcpStream,
    feed: Arc<Feed>,
    /// The flusher (and the feed's part) that writes this client.
    pub part: usize,
    state: Mutex<State>,
    /// The cursor as trimming reads it without the lock (`u64::MAX` once the client
    /// needs nothing more from the log); it may lag, which only keeps more.
    low: AtomicU64,
    /// Bytes the client may fall behind the log's end before it counts as too slow.
    limit: usize,
    /// Wakes the connection's task: the socket would block, overflowed or failed.
    pub attention: Notify,
}

#[derive(Default)]
struct State {
    /// The client has been sent the log up to here.
    cursor: u64,
    /// Frames in the log the client published itself: never sent back to it.
    skips: VecDeque<Range<u64>>,
    /// Bytes in `skips`: never sent, so never counted as the client falling behind.
    skipped: u64,
    /// Frames of the client's own, each sent once the log up to where it was
    /// queued has been: frames leave in the order they were made.
    own: VecDeque<Own>,
    /// The front own frame is partly written: it must be finished, never dropped.
    own_started: bool,
    /// On a flusher's list by itself.
    listed: bool,
    /// The connection's task writes (the socket would block, or it is closing);
    /// flushers leave the socket alone.
    task_writes: bool,
    overflowed: bool,
    /// Cut off from the log: only its own frames are still written.
    detached: bool,
    failed: Option<io::ErrorKind>,
}

/// A frame of the client's own, and the log's end when it was queued.
struct Own {
    at: u64,
    bytes: Bytes,
}

/// What the connection's task must do, as [`Outbound::status`] reports it.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    Idle,
    /// The socket would block: the task writes the rest.
    Blocked,
    Overflowed,
    Failed(io::ErrorKind),
}

impl Outbound {
    /// A client of `feed`; [`Feeds::join`](super::feed::Feeds::join) makes these.
    pub fn new(
        id: u64,
        stream: TcpStream,
        feed: Arc<Feed>,
        part: usize,
        limit: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            id,
            stream,
            feed,
            part,
            state: Mutex::new(State::default()),
            low: AtomicU64::new(0),
            limit,
            attention: Notify::new(),
        })
    }

    pub fn feed(&self) -> &Arc<Feed> {
        &self.feed
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the state itself is intact.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the cursor of a client joining its feed (under the feed's lock).
    pub(super) fn start_at(&self, cursor: u64) {
        self.state().cursor = cursor;
        self.low.store(cursor, Ordering::Relaxed);
    }

    /// The lowest log offset this client may still need.
    pub(super) fn low(&self) -> u64 {
        self.low.load(Ordering::Relaxed)
    }

    /// Records a frame the client published (under the feed's lock, as it is appended).
    pub(super) fn skip(&self, range: Range<u64>) {
        let mut state = self.state();
        if !state.detached {
            state.skipped += range.end - range.start;
            state.skips.push_back(range);
        }
    }

    /// Queues a frame of the client's own: no byte limit, so that a close frame
    /// still gets out after an overflow.
    fn push_own(self: &Arc<Self>, bytes: Bytes) {
        let at = self.feed.end();
        let mut state = self.state();
        if state.failed.is_some() {
            return;
        }
        state.own.push_back(Own { at, bytes });
        if state.listed || state.task_writes {
            return;
        }
        state.listed = true;
        drop(state);
        self.feed.flushers().list(Job::Client(self.clone()));
    }

    /// What the connection's task must do now.
    pub fn status(&self) -> Status {
        let state = self.state();
        if let Some(kind) = state.failed {
            Status::Failed(kind)
        } else if state.overflowed {
            Status::Overflowed
        } else if state.task_writes {
            Status::Blocked
        } else {
            Status::Idle
        }
    }

    /// Cuts the client off from its channel (a frame partly written is finished
    /// first) and takes the writing over, so that a close frame queued next
    /// leaves soon.
    pub fn discard(&self) {
        // Take the writing over first: from here on no flusher moves the cursor, so
        // the rest of the frame it is in can be read from the log without the
        // client's lock (the feed's lock comes first).
        let cursor = {
            let mut state = self.state();
            state.task_writes = true;
            if state.detached {
                return;
            }
            state.cursor
        };
        // The bytes are copied before the client stops holding them in the log.
        let rest = self.feed.rest_of_frame(cursor);
        let mut state = self.state();
        debug_assert_eq!(state.cursor, cursor, "only this task writes now");
        // A partly written frame of the client's own comes first, so only when
        // there is none can the log's be partly written.
        if !rest.is_empty() && !state.own_started {
            state.own.push_front(Own {
                at: cursor,
                bytes: rest.into(),
            });
            state.own_started = true;
        }
        state.detached = true;
        state.skips.clear();
        state.skipped = 0;
        self.low.store(u64::MAX, Ordering::Relaxed);
    }

    /// A flusher's turn: writes what is pending without waiting. If the socket
    /// would block, the connection's task takes over.
    pub(super) fn flush(&self, view: &View) {
        let mut state = self.state();
        state.listed = false;
        if !state.task_writes && state.failed.is_none() {
            match write_pending(&self.stream, &mut state, view) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    state.task_writes = true;
                    self.attention.notify_one();
                }
                Err(error) => {
                    state.failed = Some(error.kind());
                    self.attention.notify_one();
                }
            }
        }
        self.settle(&mut state, view);
    }

    /// After a write: publishes the cursor for trimming and checks how far behind
    /// the client is.
    fn settle(&self, state: &mut State, view: &View) {
        if state.detached {
            return;
        }
        self.low.store(state.cursor, Ordering::Relaxed);
        // What it published itself is never sent to it, so it is not behind on that.
        let behind = view
            .end
            .saturating_sub(state.cursor)
            .saturating_sub(state.skipped);
        if !state.overflowed && behind > self.limit as u64 {
            state.overflowed = true;
            self.attention.notify_one();
        }
    }

    /// Writes everything pending, waiting for the socket as needed; then hands the
    /// writing back to the flushers. Only the connection's task calls this.
    pub fn poll_drain(self: &Arc<Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let view = self.feed.view();
            let mut state = self.state();
            if let Some(kind) = state.failed {
                return Poll::Ready(Err(kind.into()));
            }
            state.task_writes = true;
            let written = write_pending(&self.stream, &mut state, &view);
            self.settle(&mut state, &view);
            match written {
                Ok(()) => {
                    state.task_writes = false;
                    // What was published since the view is a flusher's to write.
                    let list = !state.listed;
                    state.listed = true;
                    drop(state);
                    if list {
                        self.feed.flushers().list(Job::Client(self.clone()));
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    drop(state);
                    // Ready means it became writable meanwhile: try again.
                    ready!(self.stream.poll_write_ready(cx))?;
                }
                Err(error) => {
                    state.failed = Some(error.kind());
                    return Poll::Ready(Err(error));
                }
            }
        }
    }

    /// Writes everything pending (see [`poll_drain`](Self::poll_drain)).
    pub async fn drain(self: &Arc<Self>) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_drain(cx)).await
    }
}

/// Writes what the client has pending (its log range from `view`, less its own
/// publishes, with its own frames where they were queued) until all is written
/// (`Ok`) or the socket would block.
fn write_pending(stream: &TcpStream, state: &mut State, view: &View) -> io::Result<()> {
    loop {
        skip_own(state);
        let end = if state.detached {
            state.cursor
        } else {
            view.end.max(state.cursor)
        };
        let detached = state.detached;
        let mut out = Slices::default();
        let mut own = state.own.iter().peekable();
        // A partly written frame of its own is finished first.
        if state.own_started {
            if let Some(frame) = own.next() {
                out.push(&frame.bytes, Piece::Own);
            }
        }
        let mut at = state.cursor;
        let mut skips = state.skips.iter().peekable();
        while !out.full() {
            // A frame of its own goes once the log before it has.
            if let Some(frame) = own.next_if(|frame| detached || frame.at <= at) {
                out.push(&frame.bytes, Piece::Own);
                continue;
            }
            let limit = own.peek().map_or(end, |frame| frame.at.min(end));
            if at >= limit {
                break;
            }
            let stop = match skips.peek() {
                Some(skip) if skip.start < limit => skip.start,
                _ => limit,
            };
            if at < stop {
                at = view.slices(at, stop, &mut out);
                if at < stop {
                    break;
                }
            }
            if let Some(skip) = skips.next_if(|skip| skip.start == at) {
                at = skip.end;
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        let written = stream.try_write_vectored(out.slices())?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let pieces = out.take_pieces();
        consume(state, &pieces, written);
    }
}

/// Moves the cursor past the client's own frames at it.
fn skip_own(state: &mut State) {
    while let Some(skip) = state.skips.front() {
        if skip.start > state.cursor {
            break;
        }
        state.cursor = state.cursor.max(skip.end);
        state.skipped -= skip.end - skip.start;
        state.skips.pop_front();
    }
}

/// Accounts for `written` bytes of a write made of `pieces`, in order.
fn consume(state: &mut State, pieces: &[Piece], mut written: usize) {
    for piece in pieces {
        if written == 0 {
            break;
        }
        match *piece {
            Piece::Own => {
                let front = &mut state
                    .own
                    .front_mut()
                    .expect("written own bytes are queued")
                    .bytes;
                if written >= front.len() {
                    written -= front.len();
                    state.own.pop_front();
                    state.own_started = false;
                } else {
                    front.advance(written);
                    state.own_started = true;
                    written = 0;
                }
            }
            Piece::Log { from, to } => {
                let len = usize::try_from(to - from).expect("a write fits in memory");
                if written >= len {
                    state.cursor = to;
                    written -= len;
                    skip_own(state);
                } else {
                    state.cursor = from + written as u64;
                    written = 0;
                }
            }
        }
    }
}

/// Work for a flusher.
pub enum Job {
    /// A round over one part of a feed: messages were published.
    Part(Arc<Feed>, usize),
    /// One client: a frame of its own was queued, or its task handed writing back.
    Client(Arc<Outbound>),
}

/// The tasks that write WebSocket clients out, one per worker thread. Each socket
/// belongs to one of them, so sockets are written in parallel on several cores
/// while each socket's frames stay in order.
pub struct Flushers {
    shards: Vec<Shard>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Shard {
    listed: Mutex<Vec<Job>>,
    wake: Notify,
}

impl Flushers {
    /// Starts `count` (at least one) flusher tasks on the current runtime. They
    /// run as long as the runtime does.
    pub fn start(count: usize) -> Arc<Self> {
        let flushers = Arc::new(Self {
            shards: (0..count.max(1)).map(|_| Shard::default()).collect(),
            next: AtomicUsize::new(0),
        });
        for shard in 0..flushers.shards.len() {
            tokio::spawn(run(flushers.clone(), shard));
        }
        flushers
    }

    /// How many flushers there are.
    pub fn count(&self) -> usize {
        self.shards.len()
    }

    /// The flusher for the next new client, in turn.
    pub fn next_shard(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len()
    }

    pub fn list(&self, job: Job) {
        let shard = match &job {
            Job::Part(_, part) => *part,
            Job::Client(client) => client.part,
        };
        let shard = &self.shards[shard];
        let mut listed = shard.listed.lock().unwrap_or_else(|p| p.into_inner());
        let was_empty = listed.is_empty();
        listed.push(job);
        drop(listed);
        if was_empty {
            shard.wake.notify_one();
        }
    }
}

/// One flusher: waits for jobs, does each, repeats.
async fn run(flushers: Arc<Flushers>, shard: usize) {
    let shard = &flushers.shards[shard];
    let mut batch = Vec::new();
    loop {
        std::mem::swap(
            &mut *shard.listed.lock().unwrap_or_else(|p| p.into_inner()),
            &mut batch,
        );
        if batch.is_empty() {
            shard.wake.notified().await;
            continue;
        }
        for job in batch.drain(..) {
            match job {
                Job::Part(feed, part) => feed.flush_part(part),
                Job::Client(client) => client.flush(&client.feed.view()),
            }
        }
        // Let publishers and readers run between rounds.
        tokio::task::yield_now().await;
    }
}

/// The socket as tungstenite sees it: reads come straight from the socket (after
/// whatever hyper read past the upgrade request); writes join the client's own frames.
pub struct SocketIo {
    outbound: Arc<Outbound>,
    read_ahead: Bytes,
}

impl SocketIo {
    pub fn new(outbound: Arc<Outbound>, read_ahead: Bytes) -> Self {
        let mut io = Self {
            outbound,
            read_ahead,
        };
        io.release_read_ahead();
        io
    }

    /// `read_ahead` is a view of hyper's read buffer: once it is used up, let the
    /// buffer go, so an idle connection does not hold it.
    fn release_read_ahead(&mut self) {
        if self.read_ahead.is_empty() {
            self.read_ahead = Bytes::new();
        }
    }
}

impl AsyncRead for SocketIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read_ahead.is_empty() {
            let n = self.read_ahead.len().min(buf.remaining());
            buf.put_slice(&self.read_ahead[..n]);
            self.read_ahead.advance(n);
            self.release_read_ahead();
            return Poll::Ready(Ok(()));
        }
        let stream = &self.outbound.stream;
        loop {
            ready!(stream.poll_read_ready(cx))?;
            match stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncWrite for SocketIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.outbound.push_own(Bytes::copy_from_slice(buf));
        Poll::Ready(Ok(buf.len()))
    }

    /// Queued bytes are on their way (a flusher or the connection's task writes
    /// them); tungstenite never waits for the client here.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::feed::Feeds;
    use super::*;
    use crate::messaging::broker::{Broker, LocalBroker, Reach, SinkId};
    use crate::messaging::Message;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A broker, the feeds on it with two flushers, and a listener for connections.
    async fn fixture() -> (Arc<dyn Broker>, Feeds, TcpListener) {
        let broker: Arc<dyn Broker> = Arc::new(LocalBroker::new());
        let feeds = Feeds::new(broker.clone(), Flushers::start(2));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        (broker, feeds, listener)
    }

    /// A connected pair: the server's side and the client's.
    async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (server, client) = tokio::join!(listener.accept(), client);
        (server.unwrap().0, client.unwrap())
    }

    /// Reads whole unmasked frames until `count` payloads have come.
    async fn payloads(client: &mut TcpStream, count: usize) -> Vec<Vec<u8>> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while out.len() < count {
            let mut chunk = [0; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut chunk))
                .await
                .expect("frames within 5 s")
                .unwrap();
            assert!(n > 0, "closed after {} of {count} frames", out.len());
            buf.extend_from_slice(&chunk[..n]);
            while buf.len() >= 2 && buf.len() >= 2 + usize::from(buf[1]) {
                let len = usize::from(buf[1]);
                assert!(len < 126, "test frames are short");
                out.push(buf[2..2 + len].to_vec());
                buf.drain(..2 + len);
            }
        }
        assert!(buf.is_empty(), "nothing past the expected frames");
        out
    }

    fn message(text: &str, origin: Option<u64>) -> Arc<Message> {
        Arc::new(Message::new(
            "c",
            Bytes::copy_from_slice(text.as_bytes()),
            None,
            origin.map(SinkId::Socket),
        ))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_client_gets_every_message_but_its_own_in_order() {
        let (broker, feeds, listener) = fixture().await;
        let mut clients = Vec::new();
        for _ in 0..5 {
            let (server, client) = pair(&listener).await;
            clients.push((feeds.join("t", Reach::Cluster, server, 1 << 20), client));
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
    async fn frames_of_its_own_leave_between_the_messages_around_them() {
        let (broker, feeds, listener) = fixture().await;
        let (server, mut client) = pair(&listener).await;
        let outbound = feeds.join("t", Reach::Cluster, server, 1 << 20);
        let mut io = SocketIo::new(outbound.clone(), Bytes::new());
        // As a WebSocket's task would: a message, a pong, a message, a pong, in that order,
        // many times over, while the flushers write concurrently.
        let mut expected = Vec::new();
        for i in 0..500 {
            let text = format!("m{i}");
            broker
                .publish("t", message(&text, None), Reach::Cluster)
                .unwrap();
            expected.push(text.into_bytes());
            let pong = format!("p{i}");
            let frame = [&[0x8A, pong.len() as u8][..], pong.as_bytes()].concat();
            tokio::io::AsyncWriteExt::write_all(&mut io, &frame)
                .await
                .unwrap();
            expected.push(pong.into_bytes());
        }
        assert_eq!(payloads(&mut client, expected.len()).await, expected);
        feeds.leave(&outbound);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocked_client_is_not_behind_on_what_it_published_itself() {
        let (broker, feeds, listener) = fixture().await;
        let (server, _client) = pair(&listener).await;
        let publisher = feeds.join("t", Reach::Cluster, server, 4 << 10);
        // Its socket would block: the connection's task has taken the writing over.
        publisher.state().task_writes = true;
        let text = "x".repeat(100);
        for _ in 0..200 {
            let own = message(&text, Some(publisher.id));
            broker.publish("t", own, Reach::Cluster).unwrap();
        }
        publisher.flush(&publisher.feed().view());
        assert_eq!(
            publisher.status(),
            Status::Blocked,
            "20 KB of its own messages are not 20 KB behind"
        );
        let others = message(&"y".repeat(5000), None);
        broker.publish("t", others, Reach::Cluster).unwrap();
        publisher.flush(&publisher.feed().view());
        assert_eq!(publisher.status(), Status::Overflowed);
        feeds.leave(&publisher);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stops_reading_overflows_alone_and_gets_whole_frames() {
        let (broker, feeds, listener) = fixture().await;
        let (server, mut reader) = pair(&listener).await;
        let live = feeds.join("t", Reach::Cluster, server, 64 << 10);
        let (server, mut stalled_client) = pair(&listener).await;
        let stalled = feeds.join("t", Reach::Cluster, server, 64 << 10);
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
        let mut closing = SocketIo::new(stalled.clone(), Bytes::new());
        tokio::io::AsyncWriteExt::write_all(&mut closing, &[0x88, 0x00])
            .await
            .unwrap();
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
