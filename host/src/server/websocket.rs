//! The WebSocket bridge: browsers join channels at `/ws-<project hash>/<channel>`.
//!
//! Each connection is one client of its channel's [`feed`](super::feed). Its frames
//! are published to the channel (text stays text, binary stays binary); every
//! message on the channel goes to every client but its sender (unless the channel
//! echoes, `wisp.self-echo`). One task per connection reads the client's frames;
//! what goes out to clients is written by the [`flusher`](super::flusher)s, from
//! each client's [`cursor`](super::cursor).
//!
//! A slow client never slows anyone else: how far it may fall behind its channel
//! is bounded in bytes, and past the bound the connection is closed with code 1008
//! (policy violation, reason "slow consumer") and a log line. Its own frames (the
//! pongs and close replies it is owed) count against the same bound, so a client
//! that sends pings and never reads is closed the same way. Every connection is
//! pinged each interval; a client silent for two intervals is dropped. A bug that
//! panics while writing a client closes that client with 1011 (internal error).
//!
//! A handshake whose `Sec-WebSocket-Key` is not the base64 of 16 bytes gets 400;
//! one from a page whose origin the project does not list (`wisp.origins`), 403.
//! A client that breaks the protocol is sent close 1002 (1007 for text that is not
//! UTF-8) before the connection ends.

use super::cursor::{Outbound, Status};
use super::feed::Feeds;
use super::response::text;
use super::socket_io::SocketIo;
use super::stream::ClientStream;
use super::{follow, replay};
use super::{App, Connection};
use crate::abi::http_event::ResponseBody;
use crate::messaging::broker::{Reach, SinkId};
use crate::messaging::scope::{decode_path, AccessError};
use crate::messaging::token::Refused;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, CONNECTION, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::WebSocketStream;

/// WebSocket settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebSocketLimits {
    /// Largest message (and frame) a client may send; larger closes with 1009.
    pub max_message: usize,
    /// Bytes a client may fall behind its channel (sent to the channel, not yet to
    /// it, and its own frames: pongs, close replies) before it counts as too slow
    /// and is closed.
    pub send_queue: usize,
    /// How often each connection is pinged; two silent intervals drop it.
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

/// Answers a request for `/ws-<hash>/<channel>`: the upgrade, or why not.
pub fn handle(
    app: Arc<App>,
    connection: Arc<Connection>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let path = req.uri().path();
    let rest = path.strip_prefix("/ws-").unwrap_or_default();
    let Some((hash, encoded)) = rest.split_once('/') else {
        // `/ws-<hash>` itself: the broker protocol's socket for many channels.
        return match app.hub().scopes.by_hash(rest) {
            Some(scope) => super::broker_protocol::handle(app, connection, req, scope),
            None => text(
                StatusCode::NOT_FOUND,
                format!("no project has hash {}\n", rest.escape_debug()),
            ),
        };
    };
    let Some(scope_index) = app.hub().scopes.by_hash(hash) else {
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
    let hub = app.hub();
    let scope = hub.scopes.get(scope_index);
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
    let key = match websocket_key(&req, &connection) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    if let Err(response) = check_origin(&app, &req, &connection, &channel) {
        return *response;
    }
    let (can_publish, user) = match admit(&app, &req, &connection, scope_index, &channel) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let asked = match replay::asked(req.uri().query()) {
        Ok(asked) => asked,
        Err(problem) => return text(StatusCode::BAD_REQUEST, format!("{problem}\n")),
    };
    let enveloped = asked.enveloped;
    let catch_up = match asked.catch_up {
        None => None,
        Some(ask) => match scope.history(&channel) {
            Some(kept) => Some((kept, ask)),
            None => {
                let message = format!(
                    "channel `{channel}` keeps no history: give its messaging resource `wisp: {{history: {{size: 100}}}}`\n"
                );
                return text(StatusCode::BAD_REQUEST, message);
            }
        },
    };
    let topic = scope.topic(&channel);
    let reach = scope.reach(&channel);
    // In cluster mode a channel's history is a log every node follows (see `follow`).
    let followed = scope
        .history(&channel)
        .filter(|_| !app.hub().history.immediate() && reach == Reach::Cluster);
    let limits = app.config.websocket;
    let tasks = app.tasks.clone();
    tasks.spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(upgraded) => upgraded,
            Err(error) => return tracing::debug!(%error, "WebSocket upgrade failed"),
        };
        // The connection is the server's own TCP stream (or a TLS session over it);
        // take it back from hyper so that the flushers write the channel's messages
        // to it.
        let Ok((stream, read_ahead)) = ClientStream::from_upgrade(upgraded) else {
            return tracing::error!("WebSocket upgrade on a connection that is not TCP");
        };
        let (outbound, caught_up) = match (&followed, &catch_up) {
            // Cluster mode, a channel that keeps history: fed from its log.
            (Some(kept), catch_up) => {
                let ask = catch_up.as_ref().map(|(_, ask)| ask);
                follow::join(&app, &channel, &topic, stream, *kept, ask, enveloped).await
            }
            (None, Some((kept, ask))) => {
                let (outbound, caught_up) =
                    replay::join(&app, &channel, &topic, reach, stream, *kept, ask, enveloped);
                (outbound, caught_up.map_err(|reason| (replay::HISTORY_GONE, reason)))
            }
            (None, None) => {
                let limit = limits.send_queue;
                let outbound = app.feeds.join(&topic, enveloped, reach, stream, limit);
                (outbound, Ok(()))
            }
        };
        let membership = Membership {
            feeds: &app.feeds,
            outbound: &outbound,
        };
        // Counted among the channel's members (`wisp.presence`) while connected.
        let present = app.hub().scopes.get(scope_index).presence(&channel).then(|| {
            let presence = &app.hub().presence;
            let who = user.unwrap_or_else(|| presence.anonymous(outbound.id));
            presence.enter(&topic, outbound.id, &who)
        });
        let config = WebSocketConfig::default()
            // A small eager read buffer keeps idle connections cheap.
            .read_buffer_size(2 << 10)
            // tungstenite's own frames (pongs, pings, closes) go straight to the
            // client's own frames, behind the channel's messages.
            .write_buffer_size(0)
            .max_message_size(Some(limits.max_message))
            .max_frame_size(Some(limits.max_message));
        let io = SocketIo::new(outbound.clone(), read_ahead);
        let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        if let Err((code, reason)) = caught_up {
            tracing::info!(socket = outbound.id, channel = %channel.escape_debug(), code, reason, "WebSocket catch-up refused");
            close(&mut ws, &outbound, CloseCode::from(code), reason).await;
            drop(membership);
            return;
        }
        let client = Client {
            scope: scope_index,
            self_echo: app.hub().scopes.get(scope_index).self_echo(&channel),
            can_publish,
            channel,
            connection,
        };
        serve(&app, client, ws, &outbound, limits).await;
        drop(present);
        drop(membership);
    });
    switching_protocols(&key)
}

/// The 101 answer to an upgrade with handshake key `key`.
pub(super) fn switching_protocols(key: &str) -> Response<ResponseBody> {
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

/// Whether a client may join `channel` and publish there, and who its token says it is:
/// on a private channel, what its `token` grants (401 without one, 403 for one that is not
/// valid here and now); elsewhere anyone may, unnamed. The token is never logged.
fn admit(
    app: &App,
    req: &Request<Incoming>,
    connection: &Connection,
    scope: usize,
    channel: &str,
) -> Result<(bool, Option<String>), Box<Response<ResponseBody>>> {
    let hub = app.hub();
    let scope = hub.scopes.get(scope);
    if !scope.private(channel) {
        return Ok((true, None));
    }
    let query = req.uri().query().unwrap_or_default();
    let token = form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "token")
        .map(|(_, token)| token.into_owned())
        .unwrap_or_default();
    let now = crate::messaging::token::now_secs();
    match app.hub().tokens.check(&scope.hash, channel, &token, now) {
        Ok(grant) => {
            let user = Some(grant.user).filter(|user| !user.is_empty());
            Ok((grant.can_publish, user))
        }
        Err(refused) => {
            tracing::info!(peer = %connection.peer, channel = %channel.escape_debug(), reason = %refused,
                "WebSocket connection to a private channel refused");
            let status = match refused {
                Refused::Missing => StatusCode::UNAUTHORIZED,
                _ => StatusCode::FORBIDDEN,
            };
            Err(Box::new(text(status, format!("{refused}\n"))))
        }
    }
}

/// The client's handshake key, or the response for a request that is no upgrade or
/// whose key is not one.
pub(super) fn websocket_key(
    req: &Request<Incoming>,
    from: &Connection,
) -> Result<String, Box<Response<ResponseBody>>> {
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
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY) else {
        return Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "missing Sec-WebSocket-Key\n".into(),
        )));
    };
    match key.to_str() {
        Ok(key) if valid_key(key) => Ok(key.to_owned()),
        _ => {
            let key = String::from_utf8_lossy(key.as_bytes());
            tracing::warn!(peer = %from.peer, key = %key.escape_debug(),
                "WebSocket handshake refused: Sec-WebSocket-Key is not the base64 of 16 bytes");
            Err(Box::new(text(
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Key must be the base64 of 16 bytes\n".into(),
            )))
        }
    }
}

/// Refuses, with 403, a handshake from a page whose origin the project does not list
/// (`wisp.origins`), so that other sites' pages cannot use a visitor's browser to
/// join its channels. Without a list every origin may. A request with no `Origin`
/// at all passes: every browser sends one, so it comes from no page, and a client
/// that is not a browser could send any `Origin` it likes.
pub(super) fn check_origin(
    app: &App,
    req: &Request<Incoming>,
    connection: &Connection,
    channel: &str,
) -> Result<(), Box<Response<ResponseBody>>> {
    let generation = app.generation();
    let (Some(allowed), Some(origin)) = (&generation.origins, req.headers().get(ORIGIN)) else {
        return Ok(());
    };
    // Browsers send origins in lower case; a list written otherwise still matches.
    let origin = origin.as_bytes();
    if allowed
        .iter()
        .any(|a| a.as_bytes().eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    let origin = String::from_utf8_lossy(origin);
    tracing::warn!(peer = %connection.peer, origin = %origin.escape_debug(),
        channel = %channel.escape_debug(),
        "WebSocket connection refused: origin not in the project's wisp.origins");
    Err(Box::new(text(
        StatusCode::FORBIDDEN,
        "this origin may not open WebSockets here\n".into(),
    )))
}

/// Whether `key` is what RFC 6455 asks of a `Sec-WebSocket-Key`: 16 bytes in
/// base64, which is 22 characters of the base64 alphabet and `==`. The padding
/// bits of the 22nd are not checked, as lenient decoders do not check them either.
fn valid_key(key: &str) -> bool {
    let key = key.as_bytes();
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// Keeps a connection in its channel's feed; leaves it when dropped, even if the
/// connection's task panics.
struct Membership<'a> {
    feeds: &'a Feeds,
    outbound: &'a Outbound,
}

impl Drop for Membership<'_> {
    fn drop(&mut self) {
        self.feeds.leave(self.outbound);
    }
}

type Socket = WebSocketStream<SocketIo>;

/// Where a connected client belongs.
struct Client {
    scope: usize,
    channel: String,
    /// The client receives its own messages too (`wisp.self-echo`).
    self_echo: bool,
    /// The client may publish (always, but on a private channel with a read-only token).
    can_publish: bool,
    /// Holds the connection's slot under the connection limits.
    connection: Arc<Connection>,
}

/// The most frames a client sent together that are published in one step.
const PUBLISH_BATCH: usize = 128;

/// The close code for a publish from a client whose token does not allow it.
pub const NOT_ALLOWED: u16 = 4403;

/// What woke a connection's task.
enum Wake {
    /// The client's outgoing side needs the task: the socket would block, the
    /// client fell too far behind, a write failed, or writing it panicked.
    Attention,
    Shutdown,
    /// A blocked socket took everything queued.
    Drained(std::io::Result<()>),
    /// A frame from the client (`None`: the connection ended).
    Incoming(Option<Result<Frame, WsError>>),
    Ping,
}

/// Runs one connection in one task: read the client's frames into the channel
/// until either side ends or the server shuts down. Messages for the client are
/// written by the flushers; this task writes only when the socket would block
/// (until the client catches up) or when closing.
async fn serve(
    app: &App,
    client: Client,
    mut ws: Socket,
    outbound: &Arc<Outbound>,
    limits: WebSocketLimits,
) {
    let Client {
        scope,
        channel,
        self_echo,
        can_publish,
        connection,
    } = client;
    let id = outbound.id;
    let opened = std::time::Instant::now();
    tracing::debug!(socket = id, peer = %connection.peer, %channel, "WebSocket client joined");
    let _counted = super::access::CountedSocket::open("channel");

    let mut shutdown = app.shutdown.subscribe();
    let mut rate = RateLimit::new(limits.publish_rate);
    let mut ping = tokio::time::interval(limits.ping_interval);
    ping.reset();
    let mut last_seen = Instant::now();
    // The socket would block: this task writes until the client catches up.
    let mut draining = false;
    // A frame read while gathering a batch of publishes that was not one: handled next.
    let mut carried = None;

    let reason = loop {
        let wake = if let Some(frame) = carried.take() {
            Wake::Incoming(frame)
        } else {
            tokio::select! {
                biased;
                () = outbound.attention.notified() => Wake::Attention,
                () = super::stopping(&mut shutdown) => Wake::Shutdown,
                drained = outbound.drain(), if draining => Wake::Drained(drained),
                frame = ws.next() => Wake::Incoming(frame),
                _ = ping.tick() => Wake::Ping,
            }
        };
        let step = match wake {
            Wake::Attention => match outbound.status() {
                Status::Overflowed => {
                    tracing::warn!(socket = id, peer = %connection.peer, channel = %channel.escape_debug(),
                        limit = limits.send_queue,
                        "WebSocket client too slow (send queue full); closing with 1008");
                    if let Some(metrics) = crate::metrics::get() {
                        metrics.slow_consumer("channel");
                    }
                    outbound.discard();
                    close(&mut ws, outbound, SLOW_CONSUMER, "slow consumer").await;
                    break "slow consumer";
                }
                Status::Broken => {
                    // What panicked is logged where it did.
                    outbound.discard();
                    close(&mut ws, outbound, CloseCode::Error, "internal error").await;
                    break "internal error";
                }
                Status::Failed(error) => {
                    tracing::debug!(socket = id, ?error, "WebSocket write failed");
                    break "write error";
                }
                Status::Blocked => {
                    draining = true;
                    Ok(())
                }
                Status::Idle => Ok(()),
            },
            Wake::Shutdown => {
                close(&mut ws, outbound, CloseCode::Away, "server shutting down").await;
                break "server shutting down";
            }
            Wake::Drained(Ok(())) => {
                draining = false;
                Ok(())
            }
            Wake::Drained(Err(error)) => {
                tracing::debug!(socket = id, %error, "WebSocket write failed");
                break "write error";
            }
            Wake::Ping => {
                if last_seen.elapsed() > limits.ping_interval * 2 {
                    tracing::info!(socket = id, %channel, "WebSocket client stopped answering pings; dropping it");
                    break "no pong";
                }
                ws.send(Frame::Ping(Bytes::new())).await
            }
            Wake::Incoming(frame) => {
                last_seen = Instant::now();
                let (payload, is_text): (Bytes, bool) = match frame {
                    Some(Ok(Frame::Text(text))) => (text.into(), true),
                    Some(Ok(Frame::Binary(data))) => (data, false),
                    // tungstenite has the pong ready: queue it.
                    Some(Ok(Frame::Ping(_))) => {
                        if let Err(error) = ws.flush().await {
                            tracing::debug!(socket = id, %error, "WebSocket write failed");
                            break "write error";
                        }
                        continue;
                    }
                    Some(Ok(Frame::Pong(_) | Frame::Frame(_))) => continue,
                    Some(Ok(Frame::Close(_))) | None => {
                        // Queue tungstenite's close reply, and give it a moment to leave.
                        let _ = ws.flush().await;
                        let _ = tokio::time::timeout(CLOSE_WAIT, outbound.drain()).await;
                        break "client closed";
                    }
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong {
                        size,
                        max_size,
                    }))) => {
                        tracing::warn!(socket = id, %channel, size, max_size, "WebSocket message too big; closing with 1009");
                        close(&mut ws, outbound, CloseCode::Size, "message too big").await;
                        break "message too big";
                    }
                    // RFC 6455 fails the connection with a close frame where it can
                    // still be sent: 1007 for text that is not UTF-8, 1002 for a
                    // frame that breaks the protocol (unmasked, RSV bits, an unknown
                    // opcode, a bad fragment or close frame).
                    Some(Err(WsError::Utf8(error))) => {
                        tracing::warn!(socket = id, peer = %connection.peer, %error,
                            "WebSocket client sent text that is not UTF-8; closing with 1007");
                        close(&mut ws, outbound, CloseCode::Invalid, "invalid UTF-8").await;
                        break "invalid UTF-8";
                    }
                    Some(Err(WsError::Protocol(error))) if violation(&error) => {
                        tracing::warn!(socket = id, peer = %connection.peer, %error,
                            "WebSocket client broke the protocol; closing with 1002");
                        close(&mut ws, outbound, CloseCode::Protocol, "protocol error").await;
                        break "protocol error";
                    }
                    Some(Err(error)) => {
                        tracing::debug!(socket = id, %error, "WebSocket read failed");
                        break "read error";
                    }
                };
                if !can_publish {
                    tracing::warn!(socket = id, peer = %connection.peer, channel = %channel.escape_debug(),
                        "WebSocket client's token does not allow publishing; closing with 4403");
                    let code = CloseCode::from(NOT_ALLOWED);
                    close(&mut ws, outbound, code, "this token may not publish").await;
                    break "publish not allowed";
                }
                if !rate.allow() {
                    tracing::warn!(socket = id, peer = %connection.peer, %channel, rate = limits.publish_rate,
                        "WebSocket client over its publish rate; closing with 1008");
                    close(
                        &mut ws,
                        outbound,
                        CloseCode::Policy,
                        "publish rate exceeded",
                    )
                    .await;
                    break "publish rate exceeded";
                }
                // Frames the client sent together are published together (kept in one
                // step on a channel with history): those already read, each within the
                // publish rate; anything else is handled next, in order.
                let mut batch = vec![(payload, Some(is_text))];
                while batch.len() < PUBLISH_BATCH {
                    match futures_util::FutureExt::now_or_never(ws.next()) {
                        None => break,
                        Some(Some(Ok(Frame::Text(text)))) if rate.allow() => {
                            batch.push((text.into(), Some(true)))
                        }
                        Some(Some(Ok(Frame::Binary(data)))) if rate.allow() => {
                            batch.push((data, Some(false)))
                        }
                        Some(frame) => {
                            carried = Some(frame);
                            break;
                        }
                    }
                }
                let origin = (!self_echo).then_some(SinkId::Socket(id));
                if let Err(error) = app.hub().publish_all(scope, &channel, batch, origin) {
                    tracing::warn!(socket = id, %channel, %error, "publish from a WebSocket client failed");
                }
                Ok(())
            }
        };
        if let Err(error) = step {
            tracing::debug!(socket = id, %error, "WebSocket write failed");
            break "write error";
        }
    };
    match app.config.access_log {
        true => super::access::socket_closed(connection.peer, id, &channel, reason, opened),
        false => tracing::debug!(socket = id, %channel, reason, "WebSocket client left"),
    }
}

/// Whether `error`, met reading the client, is the client's breach of the protocol
/// that the close frame can still answer; not the connection's end.
pub(super) fn violation(error: &ProtocolError) -> bool {
    !matches!(
        error,
        ProtocolError::ResetWithoutClosingHandshake | ProtocolError::SendAfterClosing
    )
}

/// How long a closing connection's last frames may take to leave.
pub(super) const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Queues a close frame and gives a client that may not be reading a moment for it.
async fn close(ws: &mut Socket, outbound: &Arc<Outbound>, code: CloseCode, reason: &'static str) {
    let _ = ws.send(close_frame(code, reason)).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, outbound.drain()).await;
}

/// A token bucket: `rate` messages per second, bursts of up to `rate`.
pub(super) struct RateLimit {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub(super) fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            last: Instant::now(),
        }
    }

    pub(super) fn allow(&mut self) -> bool {
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

pub(super) fn close_frame(code: CloseCode, reason: &'static str) -> Frame {
    Frame::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::valid_key;

    #[test]
    fn keys_must_be_16_bytes_in_base64() {
        assert!(valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(valid_key("AAAAAAAAAAAAAAAAAAAA+/=="));
        for key in [
            "",
            "AAAA",
            "dGhlIHNhbXBsZSBub25jZQ=",
            "dGhlIHNhbXBsZSBub25jZQ==x",
            "dGhlIHNhbXBsZSBub25jZQ=*",
            "dGhlIHNhbXBsZSBub25jZ===",
            "dGhlIHNhbXBsZSBub25j-Q==",
            "AAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(!valid_key(key), "{key:?}");
        }
    }
}
