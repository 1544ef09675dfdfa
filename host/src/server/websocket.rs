//! The WebSocket bridge: browsers join channels at `/ws-<project hash>/<channel>`.
//!
//! Each connection is one subscriber. Its frames are published to the channel
//! (text stays text, binary stays binary); every message on the channel goes to
//! every client but its sender. One writer task per socket owns all writes, and
//! coalesces queued messages into one flush.
//!
//! A slow client never slows anyone else: its queue is bounded in bytes, and past
//! the bound the connection is closed with code 1008 (policy violation, reason
//! "slow consumer") and a log line. Idle connections are pinged; a client that
//! stops answering is dropped.

use super::http::text;
use super::{App, Connection};
use crate::messaging::broker::{Sink, SinkId};
use crate::messaging::scope::{decode_path, AccessError};
use crate::messaging::Message;
use crate::runtime::http_event::ResponseBody;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::WebSocketStream;

/// WebSocket settings.
#[derive(Clone, Copy, Debug)]
pub struct WebSocketLimits {
    /// Largest message (and frame) a client may send; larger closes with 1009.
    pub max_message: usize,
    /// Bytes queued for one client before it counts as too slow and is closed.
    pub send_queue: usize,
    /// How often an idle connection is pinged; two silent intervals drop it.
    pub ping_interval: Duration,
    /// Messages per second one client may publish (bursts up to the same number);
    /// past it the connection is closed with 1008. 0 means no limit.
    pub publish_rate: u32,
}

impl Default for WebSocketLimits {
    fn default() -> Self {
        Self {
            // Chat messages and live updates are small; 1 MiB leaves room for
            // documents without letting one client buffer much.
            max_message: 1 << 20,
            // About a second of a busy channel for a browser: enough to ride out a
            // hiccup, small enough that 10,000 stalled clients stay bounded.
            send_queue: 1 << 20,
            ping_interval: Duration::from_secs(30),
            // Far above any person typing, low enough to stop a runaway script.
            publish_rate: 1_000,
        }
    }
}

/// Close code for a client whose send queue overflowed.
pub const SLOW_CONSUMER: CloseCode = CloseCode::Policy;

static NEXT_SOCKET: AtomicU64 = AtomicU64::new(1);

/// Answers a request for `/ws-<hash>/<channel>`: the upgrade, or why not.
pub fn handle(
    app: Arc<App>,
    connection: Arc<Connection>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let path = req.uri().path();
    let rest = path.strip_prefix("/ws-").unwrap_or_default();
    let Some((hash, encoded)) = rest.split_once('/') else {
        return text(
            StatusCode::NOT_FOUND,
            "WebSocket URLs look like /ws-<project hash>/<channel>\n".into(),
        );
    };
    let Some(scope_index) = app.hub.scopes.by_hash(hash) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no project has hash {hash}\n"),
        );
    };
    let Some(channel) = decode_path(encoded) else {
        return text(
            StatusCode::BAD_REQUEST,
            "the channel name is not valid percent-encoded UTF-8\n".into(),
        );
    };
    let scope = app.hub.scopes.get(scope_index);
    if let Err(error) = scope.check(&channel, true) {
        tracing::warn!(%channel, %error, "WebSocket connection refused");
        let status = match error {
            AccessError::NoWebSocket(_) => StatusCode::FORBIDDEN,
            AccessError::NoResource(_) => StatusCode::NOT_FOUND,
            AccessError::EmptyChannel | AccessError::TooLong(_) | AccessError::NotUtf8 => {
                StatusCode::BAD_REQUEST
            }
        };
        return text(status, format!("{error}\n"));
    }
    let key = match websocket_key(&req) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let topic = scope.topic(&channel);
    let limits = app.config.websocket;
    let tasks = app.tasks.clone();
    tasks.spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let config = WebSocketConfig::default()
                    // A small eager read buffer keeps idle connections cheap.
                    .read_buffer_size(4 << 10)
                    .write_buffer_size(0)
                    .max_message_size(Some(limits.max_message))
                    .max_frame_size(Some(limits.max_message));
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                let client = Client {
                    scope: scope_index,
                    self_echo: app.hub.scopes.get(scope_index).self_echo(&channel),
                    channel,
                    topic,
                    connection,
                };
                serve(app, client, ws, limits).await;
            }
            Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
        }
    });
    let mut response = Response::new(ResponseBody::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// The client's handshake key, or the response for a request that is no upgrade.
fn websocket_key(req: &Request<Incoming>) -> Result<String, Box<Response<ResponseBody>>> {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let upgrade = header(UPGRADE).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let connection = header(CONNECTION).is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !upgrade || !connection {
        let mut response = text(
            StatusCode::UPGRADE_REQUIRED,
            "this URL takes a WebSocket connection\n".into(),
        );
        response
            .headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("websocket"));
        return Err(Box::new(response));
    }
    if header(SEC_WEBSOCKET_VERSION) != Some("13") {
        let mut response = text(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is supported\n".into(),
        );
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Err(Box::new(response));
    }
    match header(SEC_WEBSOCKET_KEY) {
        Some(key) => Ok(key.to_owned()),
        None => Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "missing Sec-WebSocket-Key\n".into(),
        ))),
    }
}

/// One connection's subscriber: a byte-bounded queue to its writer.
struct SocketSink {
    id: u64,
    tx: mpsc::UnboundedSender<Arc<Message>>,
    queued: AtomicUsize,
    limit: usize,
    overflowed: AtomicBool,
    overflow: Notify,
}

impl Sink for SocketSink {
    fn id(&self) -> SinkId {
        SinkId::Socket(self.id)
    }

    fn deliver(&self, message: &Arc<Message>) {
        if self.overflowed.load(Ordering::Relaxed) {
            return;
        }
        let size = message.payload.len();
        let queued = self.queued.fetch_add(size, Ordering::Relaxed) + size;
        if queued > self.limit {
            self.overflowed.store(true, Ordering::Relaxed);
            self.overflow.notify_one();
            return;
        }
        // A closed receiver means the connection is ending; nothing to do.
        let _ = self.tx.send(message.clone());
    }
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Where a connected client belongs.
struct Client {
    scope: usize,
    channel: String,
    topic: String,
    /// The client receives its own messages too (`wisp.self-echo`).
    self_echo: bool,
    /// Holds the connection's slot under the connection limits.
    connection: Arc<Connection>,
}

/// Runs one connection: subscribe, read frames into the channel, write the
/// channel out, until either side ends or the server shuts down.
async fn serve(app: Arc<App>, client: Client, ws: Socket, limits: WebSocketLimits) {
    let Client {
        scope,
        channel,
        topic,
        self_echo,
        connection,
    } = client;
    let id = NEXT_SOCKET.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = Arc::new(SocketSink {
        id,
        tx,
        queued: AtomicUsize::new(0),
        limit: limits.send_queue,
        overflowed: AtomicBool::new(false),
        overflow: Notify::new(),
    });
    app.hub.broker.subscribe(&topic, sink.clone());
    tracing::debug!(socket = id, peer = %connection.peer, %channel, "WebSocket client joined");

    let (write, mut read) = ws.split();
    let (control_tx, control_rx) = mpsc::channel(4);
    let last_seen = Arc::new(std::sync::Mutex::new(Instant::now()));
    let mut writer = tokio::spawn(write_loop(
        write,
        rx,
        control_rx,
        sink.clone(),
        limits,
        last_seen.clone(),
        channel.clone(),
    ));
    let mut shutdown = app.shutdown.subscribe();
    let mut rate = RateLimit::new(limits.publish_rate);

    let reason = loop {
        let frame = tokio::select! {
            frame = read.next() => frame,
            _ = &mut writer => break "writer ended",
            () = super::stopping(&mut shutdown) => {
                let _ = control_tx.send(Control::Close(CloseCode::Away, "server shutting down")).await;
                break "server shutting down";
            }
        };
        *last_seen.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let (payload, is_text): (Bytes, bool) = match frame {
            Some(Ok(Frame::Text(text))) => (text.into(), true),
            Some(Ok(Frame::Binary(data))) => (data, false),
            // tungstenite queued the pong; the writer flushes it out.
            Some(Ok(Frame::Ping(_))) => {
                let _ = control_tx.try_send(Control::Flush);
                continue;
            }
            Some(Ok(Frame::Pong(_) | Frame::Frame(_))) => continue,
            Some(Ok(Frame::Close(_))) | None => break "client closed",
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                tracing::warn!(socket = id, %channel, size, max_size, "WebSocket message too big; closing with 1009");
                let _ = control_tx
                    .send(Control::Close(CloseCode::Size, "message too big"))
                    .await;
                break "message too big";
            }
            Some(Err(error)) => {
                tracing::debug!(socket = id, %error, "WebSocket read failed");
                break "read error";
            }
        };
        if !rate.allow() {
            tracing::warn!(socket = id, peer = %connection.peer, %channel, rate = limits.publish_rate,
                "WebSocket client over its publish rate; closing with 1008");
            let _ = control_tx
                .send(Control::Close(CloseCode::Policy, "publish rate exceeded"))
                .await;
            break "publish rate exceeded";
        }
        let origin = (!self_echo).then_some(SinkId::Socket(id));
        if let Err(error) = app
            .hub
            .publish(scope, &channel, payload, Some(is_text), origin)
        {
            tracing::warn!(socket = id, %channel, %error, "publish from a WebSocket client failed");
        }
    };
    app.hub.broker.unsubscribe(&topic, SinkId::Socket(id));
    drop(control_tx);
    if !writer.is_finished() {
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut writer).await;
        writer.abort();
    }
    tracing::debug!(socket = id, %channel, reason, "WebSocket client left");
}

/// A token bucket: `rate` messages per second, bursts of up to `rate`.
struct RateLimit {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            last: Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

enum Control {
    Flush,
    Close(CloseCode, &'static str),
}

/// Most messages written before one flush.
const MAX_BATCH: usize = 64;

/// What the writer does after one step.
enum Flow {
    Continue,
    Stop,
}

/// The one task that writes to a socket.
async fn write_loop(
    mut write: WriteHalf,
    mut rx: mpsc::UnboundedReceiver<Arc<Message>>,
    mut control: mpsc::Receiver<Control>,
    sink: Arc<SocketSink>,
    limits: WebSocketLimits,
    last_seen: Arc<std::sync::Mutex<Instant>>,
    channel: String,
) {
    let mut ping = tokio::time::interval(limits.ping_interval);
    ping.reset();
    loop {
        // A step may block on a client that stopped reading; the overflow signal
        // must still get through, so it races every step.
        let step = tokio::select! {
            biased;
            () = sink.overflow.notified() => None,
            step = step(&mut write, &mut rx, &mut control, &mut ping, &sink, &limits, &last_seen) => Some(step),
        };
        match step {
            None => {
                tracing::warn!(socket = sink.id, %channel, limit = sink.limit,
                    "WebSocket client too slow (send queue full); closing with 1008");
                // The client may not be reading at all: give the close frame a moment.
                let close = close_frame(SLOW_CONSUMER, "slow consumer");
                let _ = tokio::time::timeout(Duration::from_secs(1), write.send(close)).await;
                return;
            }
            Some(Ok(Flow::Continue)) => {}
            Some(Ok(Flow::Stop)) => return,
            Some(Err(error)) => {
                tracing::debug!(socket = sink.id, %error, "WebSocket write failed");
                return;
            }
        }
    }
}

type WriteHalf = futures_util::stream::SplitSink<Socket, Frame>;

async fn step(
    write: &mut WriteHalf,
    rx: &mut mpsc::UnboundedReceiver<Arc<Message>>,
    control: &mut mpsc::Receiver<Control>,
    ping: &mut tokio::time::Interval,
    sink: &SocketSink,
    limits: &WebSocketLimits,
    last_seen: &std::sync::Mutex<Instant>,
) -> Result<Flow, WsError> {
    tokio::select! {
        biased;
        command = control.recv() => match command {
            Some(Control::Flush) => write.flush().await.map(|()| Flow::Continue),
            Some(Control::Close(code, reason)) => {
                write.send(close_frame(code, reason)).await?;
                Ok(Flow::Stop)
            }
            None => {
                write.close().await?;
                Ok(Flow::Stop)
            }
        },
        message = rx.recv() => match message {
            Some(message) => write_batch(write, rx, sink, message).await.map(|()| Flow::Continue),
            None => Ok(Flow::Stop),
        },
        _ = ping.tick() => {
            let idle = last_seen.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
            if idle > limits.ping_interval * 2 {
                tracing::info!(socket = sink.id, "WebSocket client stopped answering pings; dropping it");
                return Ok(Flow::Stop);
            }
            write.send(Frame::Ping(Bytes::new())).await.map(|()| Flow::Continue)
        }
    }
}

/// Writes `first` and whatever else is already queued, then flushes once.
async fn write_batch(
    write: &mut WriteHalf,
    rx: &mut mpsc::UnboundedReceiver<Arc<Message>>,
    sink: &SocketSink,
    first: Arc<Message>,
) -> Result<(), WsError> {
    let mut bytes = first.payload.len();
    write.feed(first.frame.clone()).await?;
    for _ in 1..MAX_BATCH {
        let Ok(next) = rx.try_recv() else { break };
        bytes += next.payload.len();
        write.feed(next.frame.clone()).await?;
    }
    let flushed = write.flush().await;
    sink.queued.fetch_sub(bytes, Ordering::Relaxed);
    flushed
}

fn close_frame(code: CloseCode, reason: &'static str) -> Frame {
    Frame::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}
