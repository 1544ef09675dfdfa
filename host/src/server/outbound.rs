//! What goes out to WebSocket clients, and who writes it.
//!
//! Each connection has an [`Outbound`]: the encoded frames waiting for its socket.
//! A publish appends the message's pre-encoded frame to every subscriber's queue
//! and puts the connection on a [`Flushers`] list; a flusher task then writes each
//! listed socket once, with one `writev` for everything queued. Messages that
//! arrive while the flusher is busy pile up and go out together, so under load a
//! socket gets many messages per system call instead of one, and a publish wakes
//! one flusher rather than every connection's task.
//!
//! A socket that would block is handed to its connection's task, which waits until
//! the client reads and writes the rest ([`Outbound::poll_drain`]); the flushers
//! skip it meanwhile. The queue is bounded in bytes: past the bound the connection
//! is marked overflowed and its task closes it.
//!
//! [`SocketIo`] lets tungstenite read from the socket and write control frames
//! (pongs, pings, closes) through the same queue, so every frame leaves in order.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Frames handed to the kernel per `writev` call.
const IOVECS: usize = 64;

/// The frames waiting for one client's socket.
pub struct Outbound {
    stream: TcpStream,
    state: Mutex<State>,
    /// Bytes of data frames queued before the client counts as too slow.
    limit: usize,
    /// Wakes the connection's task: the socket would block, overflowed or failed.
    pub attention: Notify,
    flushers: Arc<Flushers>,
    shard: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Bytes>,
    /// Bytes in `queue`.
    queued: usize,
    /// The front frame is partly written: it must be finished, never dropped.
    front_started: bool,
    /// On a flusher's list.
    listed: bool,
    /// The connection's task writes (the socket would block, or it is closing);
    /// flushers leave the socket alone.
    task_writes: bool,
    overflowed: bool,
    failed: Option<io::ErrorKind>,
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
    pub fn new(stream: TcpStream, limit: usize, flushers: Arc<Flushers>) -> Arc<Self> {
        let shard = flushers.next_shard();
        Arc::new(Self {
            stream,
            state: Mutex::new(State::default()),
            limit,
            attention: Notify::new(),
            flushers,
            shard,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the queue itself is intact.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a data frame. Never blocks: past the byte limit the connection is
    /// marked overflowed (and its task told), and later frames are dropped.
    pub fn push_data(self: &Arc<Self>, frame: &Bytes) {
        let mut state = self.state();
        if state.overflowed || state.failed.is_some() {
            return;
        }
        if state.queued + frame.len() > self.limit {
            state.overflowed = true;
            drop(state);
            self.attention.notify_one();
            return;
        }
        self.enqueue(state, frame.clone());
    }

    /// Queues a control frame (or any bytes tungstenite writes): no byte limit, so
    /// a close frame still gets out after an overflow.
    fn push_control(self: &Arc<Self>, bytes: Bytes) {
        let state = self.state();
        if state.failed.is_some() {
            return;
        }
        self.enqueue(state, bytes);
    }

    fn enqueue(self: &Arc<Self>, mut state: MutexGuard<'_, State>, frame: Bytes) {
        state.queued += frame.len();
        state.queue.push_back(frame);
        if state.listed || state.task_writes {
            return;
        }
        state.listed = true;
        drop(state);
        self.flushers.list(self.clone());
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

    /// Drops queued data frames (a partly written one is finished first) and
    /// takes the writing over, so that a close frame queued next leaves soon.
    pub fn discard(&self) {
        let mut state = self.state();
        let keep = usize::from(state.front_started).min(state.queue.len());
        state.queue.truncate(keep);
        state.queued = state.queue.iter().map(Bytes::len).sum();
        state.task_writes = true;
    }

    /// A flusher's turn: writes what is queued without waiting. If the socket
    /// would block, the connection's task takes over.
    fn flush(&self) {
        let mut state = self.state();
        state.listed = false;
        if state.task_writes || state.failed.is_some() {
            return;
        }
        match write_queued(&self.stream, &mut state) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                state.task_writes = true;
                drop(state);
                self.attention.notify_one();
            }
            Err(error) => {
                state.failed = Some(error.kind());
                drop(state);
                self.attention.notify_one();
            }
        }
    }

    /// Writes everything queued, waiting for the socket as needed; then hands the
    /// writing back to the flushers. Only the connection's task calls this.
    pub fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut state = self.state();
            if let Some(kind) = state.failed {
                return Poll::Ready(Err(kind.into()));
            }
            state.task_writes = true;
            match write_queued(&self.stream, &mut state) {
                Ok(()) => {
                    state.task_writes = false;
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

    /// Writes everything queued (see [`poll_drain`](Self::poll_drain)).
    pub async fn drain(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_drain(cx)).await
    }
}

/// Writes `state.queue` until it is empty (`Ok`) or the socket would block.
fn write_queued(stream: &TcpStream, state: &mut State) -> io::Result<()> {
    while !state.queue.is_empty() {
        let mut slices = [IoSlice::new(&[]); IOVECS];
        let mut count = 0;
        for (slot, frame) in slices.iter_mut().zip(&state.queue) {
            *slot = IoSlice::new(frame);
            count += 1;
        }
        let mut written = stream.try_write_vectored(&slices[..count])?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        state.queued -= written;
        while written > 0 {
            let front = state
                .queue
                .front_mut()
                .expect("written bytes came from the queue");
            if written < front.len() {
                front.advance(written);
                state.front_started = true;
                break;
            }
            written -= front.len();
            state.queue.pop_front();
            state.front_started = false;
        }
    }
    Ok(())
}

/// The tasks that write queued frames out, one per worker thread. Each socket
/// belongs to one of them, so sockets are written in parallel on several cores
/// while each socket's frames stay in order.
pub struct Flushers {
    shards: Vec<Shard>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Shard {
    listed: Mutex<Vec<Arc<Outbound>>>,
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

    fn next_shard(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len()
    }

    fn list(&self, outbound: Arc<Outbound>) {
        let shard = &self.shards[outbound.shard];
        let mut listed = shard.listed.lock().unwrap_or_else(|p| p.into_inner());
        let was_empty = listed.is_empty();
        listed.push(outbound);
        drop(listed);
        if was_empty {
            shard.wake.notify_one();
        }
    }
}

/// One flusher: waits for listed sockets, writes each once, repeats.
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
        for outbound in batch.drain(..) {
            outbound.flush();
        }
        // Let publishers and readers run between rounds.
        tokio::task::yield_now().await;
    }
}

/// The socket as tungstenite sees it: reads come straight from the socket (after
/// whatever hyper read past the upgrade request); writes join the outbound queue.
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
        self.outbound.push_control(Bytes::copy_from_slice(buf));
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
