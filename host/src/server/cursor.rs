//! One WebSocket client's place in its channel's frame log, and its own frames.
//!
//! A client's channel messages wait in its channel's [`Log`](super::framelog::Log)
//! (see [`feed`](super::feed)); the client's [`Outbound`] holds only its cursor
//! there, plus frames of its own (tungstenite's pongs, pings and closes). A
//! flusher's round ([`flusher`](super::flusher)) writes each client once, with one
//! `writev` for everything pending: messages that arrive while the flusher is busy
//! pile up in the log and go out together, so under load a socket gets many
//! messages per system call, and a publish wakes one flusher rather than every
//! connection's task.
//!
//! A socket that would block is handed to its connection's task, which waits until
//! the client reads and writes the rest ([`Outbound::poll_drain`]); the flushers
//! skip it meanwhile. How far a client may fall behind is bounded in bytes, its own
//! frames included (a client that pings and never reads owes itself pongs): past
//! the bound it is marked overflowed and its task closes it.
//!
//! A client knows its channel only as a [`Channel`]: the log it reads and the
//! flushers that write it.

use super::flusher::{panic_message, FlushClient, Flushers, Job};
use super::framelog::{Piece, Slices, View};
use super::stream::ClientStream;
use bytes::{Buf, Bytes};
use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use tokio::sync::Notify;

/// The channel a client reads, as the client sees it.
/// [`Feed`](super::feed::Feed) is the one kind.
pub trait Channel: Send + Sync {
    /// The topic: what the channel is known by.
    fn topic(&self) -> &str;
    /// The log's end: where the next frame will start.
    fn end(&self) -> u64;
    /// What the log holds now, for writing clients out.
    fn view(&self) -> View;
    /// The log's bytes from a client's cursor to the end of the frame it is in
    /// (empty at a frame boundary), so that a client being cut off can finish it.
    fn rest_of_frame(&self, cursor: u64) -> Vec<u8>;
    /// The flushers that write the channel's clients.
    fn flushers(&self) -> &Flushers;
}

/// One client's socket, its place in its channel's log and its own frames.
pub struct Outbound {
    /// The connection's id: the origin of what it publishes.
    pub id: u64,
    stream: ClientStream,
    channel: Arc<dyn Channel>,
    /// The flusher (and the feed's part) that writes this client.
    pub part: usize,
    state: Mutex<State>,
    /// The cursor as trimming reads it without the lock (`u64::MAX` once the client
    /// needs nothing more from the log); it may lag, which only keeps more.
    low: AtomicU64,
    /// Bytes the client may fall behind the log's end before it counts as too slow.
    limit: usize,
    /// Wakes the connection's task: the socket would block, overflowed or failed,
    /// or writing the client panicked.
    pub attention: Notify,
    /// Makes a flusher's writing of this client panic, as a bug would.
    #[cfg(test)]
    panic_on_flush: std::sync::atomic::AtomicBool,
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
    /// Bytes in `own` not yet written. They count against the limit with the log's:
    /// a client that sends pings and never reads would otherwise have its pongs
    /// queued without end.
    own_bytes: u64,
    /// On a flusher's list by itself.
    listed: bool,
    /// The connection's task writes (the socket would block, or it is closing);
    /// flushers leave the socket alone.
    task_writes: bool,
    overflowed: bool,
    /// Cut off from the log: only its own frames are still written.
    detached: bool,
    failed: Option<io::ErrorKind>,
    /// A flusher panicked writing the client: its state may be half updated, so
    /// only its connection's task writes it from then on, to close it.
    broken: bool,
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
    /// Writing the client panicked (a bug, logged where it happened): the task
    /// closes it with 1011.
    Broken,
}

impl Outbound {
    /// A client of `channel`; [`Feeds::join`](super::feed::Feeds::join) makes these.
    pub fn new(
        id: u64,
        stream: ClientStream,
        channel: Arc<dyn Channel>,
        part: usize,
        limit: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            id,
            stream,
            channel,
            part,
            state: Mutex::new(State::default()),
            low: AtomicU64::new(0),
            limit,
            attention: Notify::new(),
            #[cfg(test)]
            panic_on_flush: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// From now on, a flusher writing this client panics.
    #[cfg(test)]
    pub(super) fn panic_on_flush(&self) {
        self.panic_on_flush.store(true, Ordering::Relaxed);
    }

    pub fn channel(&self) -> &Arc<dyn Channel> {
        &self.channel
    }

    /// The socket, for [`SocketIo`](super::socket_io::SocketIo) to read.
    pub(super) fn stream(&self) -> &ClientStream {
        &self.stream
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic while it was held. In a flusher, the client
        // is then marked broken and only its close is written; in its connection's
        // task, the task ends and the client leaves. A half-updated state goes no
        // further either way.
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

    /// Queues a frame of the client's own. It is always queued, so that a close
    /// frame still gets out after an overflow; but it counts as the client falling
    /// behind, so that past the limit the client is marked overflowed.
    pub(super) fn push_own(self: &Arc<Self>, bytes: Bytes) {
        let at = self.channel.end();
        let mut state = self.state();
        if state.failed.is_some() {
            return;
        }
        state.own_bytes += bytes.len() as u64;
        state.own.push_back(Own { at, bytes });
        if !state.detached && !state.overflowed && behind(&state, at) > self.limit as u64 {
            state.overflowed = true;
            self.attention.notify_one();
        }
        if state.listed || state.task_writes {
            return;
        }
        state.listed = true;
        drop(state);
        self.channel.flushers().list(Job::Client(self.clone()));
    }

    /// What the connection's task must do now.
    pub fn status(&self) -> Status {
        let state = self.state();
        if let Some(kind) = state.failed {
            Status::Failed(kind)
        } else if state.broken {
            Status::Broken
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
        let rest = self.channel.rest_of_frame(cursor);
        let mut state = self.state();
        debug_assert_eq!(state.cursor, cursor, "only this task writes now");
        // A partly written frame of the client's own comes first, so only when
        // there is none can the log's be partly written.
        if !rest.is_empty() && !state.own_started {
            state.own_bytes += rest.len() as u64;
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
    ///
    /// A panic here is this client's alone: the flusher goes on with its other
    /// clients, and this one is left to its connection's task to close.
    pub(super) fn flush(&self, view: &View) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.write_out(view))) {
            self.broke(panic.as_ref());
        }
    }

    /// After a panic in a flusher's turn: no flusher writes the client again, and
    /// its task is told to close it ([`Status::Broken`]).
    #[cold]
    fn broke(&self, panic: &(dyn Any + Send)) {
        tracing::error!(
            socket = self.id,
            panic = ?panic_message(panic),
            "writing a WebSocket client panicked; closing it with 1011"
        );
        let mut state = self.state();
        state.broken = true;
        state.task_writes = true;
        drop(state);
        self.attention.notify_one();
    }

    fn write_out(&self, view: &View) {
        let mut state = self.state();
        state.listed = false;
        if !state.task_writes && state.failed.is_none() {
            #[cfg(test)]
            if self.panic_on_flush.load(Ordering::Relaxed) {
                panic!("writing this client panics (the test asked for it)");
            }
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
        if !state.overflowed && behind(state, view.end) > self.limit as u64 {
            state.overflowed = true;
            self.attention.notify_one();
        }
    }

    /// Writes everything pending, waiting for the socket as needed; then hands the
    /// writing back to the flushers. Only the connection's task calls this.
    pub fn poll_drain(self: &Arc<Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let view = self.channel.view();
            let mut state = self.state();
            if let Some(kind) = state.failed {
                return Poll::Ready(Err(kind.into()));
            }
            state.task_writes = true;
            let written = write_pending(&self.stream, &mut state, &view);
            self.settle(&mut state, &view);
            match written {
                Ok(()) => {
                    if state.broken {
                        // No flusher writes it again.
                        return Poll::Ready(Ok(()));
                    }
                    state.task_writes = false;
                    // What was published since the view is a flusher's to write.
                    let list = !state.listed;
                    state.listed = true;
                    drop(state);
                    if list {
                        self.channel.flushers().list(Job::Client(self.clone()));
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

/// Bytes not yet sent to the client, with the log's end at `end`: the log's since its
/// cursor, less what it published itself (never sent to it, so it is not behind on
/// that), and its own frames.
fn behind(state: &State, end: u64) -> u64 {
    end.saturating_sub(state.cursor)
        .saturating_sub(state.skipped)
        .saturating_add(state.own_bytes)
}

/// Writes what the client has pending (its log range from `view`, less its own
/// publishes, with its own frames where they were queued) until all is written
/// (`Ok`) or the socket would block.
fn write_pending(stream: &ClientStream, state: &mut State, view: &View) -> io::Result<()> {
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
            // Over TLS, what the socket did not take of the last write waits here.
            return stream.try_flush();
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
                    state.own_bytes -= front.len() as u64;
                    state.own.pop_front();
                    state.own_started = false;
                } else {
                    front.advance(written);
                    state.own_bytes -= written as u64;
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

impl FlushClient for Outbound {
    fn shard(&self) -> usize {
        self.part
    }

    fn flush_client(&self) {
        self.flush(&self.channel.view());
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fixture, message, pair};
    use super::*;
    use crate::messaging::broker::Reach;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocked_client_is_not_behind_on_what_it_published_itself() {
        let (broker, feeds, listener) = fixture(2).await;
        let (server, _client) = pair(&listener).await;
        let publisher = feeds.join("t", false, Reach::Cluster, server, 4 << 10);
        // Its socket would block: the connection's task has taken the writing over.
        publisher.state().task_writes = true;
        let text = "x".repeat(100);
        for _ in 0..200 {
            let own = message(&text, Some(publisher.id));
            broker.publish("t", own, Reach::Cluster).unwrap();
        }
        publisher.flush(&publisher.channel().view());
        assert_eq!(
            publisher.status(),
            Status::Blocked,
            "20 KB of its own messages are not 20 KB behind"
        );
        let others = message(&"y".repeat(5000), None);
        broker.publish("t", others, Reach::Cluster).unwrap();
        publisher.flush(&publisher.channel().view());
        assert_eq!(publisher.status(), Status::Overflowed);
        feeds.leave(&publisher);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_of_its_own_count_against_the_limit() {
        let (_broker, feeds, listener) = fixture(2).await;
        let (server, _client) = pair(&listener).await;
        let client = feeds.join("t", false, Reach::Cluster, server, 4 << 10);
        // Its socket would block, as for a client that sends pings and never reads.
        client.state().task_writes = true;
        let pong = Bytes::from(vec![0x8a; 127]);
        for _ in 0..32 {
            client.push_own(pong.clone());
        }
        assert_eq!(
            client.status(),
            Status::Blocked,
            "4 KiB of pongs is within 4 KiB"
        );
        client.push_own(pong.clone());
        assert_eq!(client.status(), Status::Overflowed);
        // The close frame after it is still queued.
        client.discard();
        client.push_own(pong);
        assert_eq!(client.state().own.len(), 34);
        feeds.leave(&client);
    }
}
