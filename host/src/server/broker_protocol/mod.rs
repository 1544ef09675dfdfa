//! The broker tutorial's protocol: one WebSocket, many channels, text commands. Served
//! at `/ws-<project hash>` on the main port and at `/` of `wisp serve --broker-listen`.
//!
//! A client sends, one command per frame:
//!
//! - `SUBSCRIBE:<channel>`: the channel's kept messages (`wisp.history`), oldest first,
//!   then its live ones. Subscribing again to a channel the socket has is a no-op.
//! - `UNSUBSCRIBE:<channel>`.
//! - `PUBLISH:<channel>:<content>`: `<content>` is everything after the second `:`.
//! - `AUTH:<token>`: a token that opens private channels to the socket (see `auth`); the
//!   first that opens one and names a user signs the socket in as that user.
//! - `PUBLISH:@<user>:<content>`: a private message to every socket signed in as `<user>`,
//!   on every node, which gets `MSG:@<sender>:<content>`. Only a signed-in socket may send
//!   one. Nobody signed in as `<user>`: it is dropped, and the sender is not told.
//! - `SIGNAL:<channel>:<content>`: published as `PUBLISH` publishes, but never kept in the
//!   channel's history (an ephemeral message).
//! - `USER_TYPING:<channel>`: on a channel the socket is subscribed to, its other
//!   subscribers get `USER_TYPING:<channel>:<who>` (the user, else the socket's anonymous
//!   name); never kept; at most one a second per socket and channel, the rest dropped.
//! - `PRESENCE:<channel>`: on a channel with `wisp.presence`, answered with
//!   `PRESENCE:<channel>:<members>`, a JSON list of `{"user", "connections"}` by name.
//!
//! and gets `MSG:<channel>:<content>` for every message on a channel it subscribed to,
//! its own publishes included (as the tutorial's broker does), `JOIN:<channel>:<who>` and
//! `LEAVE:<channel>:<who>` on a channel with `wisp.presence` (see `messaging::presence`:
//! a leave waits 3 s for the member to come back), and `ERROR:<reason>` for a command it
//! cannot have. Nothing else: a command that worked is not acknowledged.
//!
//! Channel names are percent-decoded. In `PUBLISH` the name ends at the first `:`, so
//! a `:` in a channel's name is written `%3A` there (and a leading `@`, `%40`) (in `SUBSCRIBE` and `UNSUBSCRIBE`
//! it may be written plainly); in `MSG` a name's `%` and `:` are always percent-encoded,
//! so the content starts after the first `:` that follows `MSG:`. A command in a binary
//! frame works the same; its `PUBLISH` content is published as binary, and binary
//! messages are delivered as binary frames.
//!
//! Access is the messaging resources': a channel must match one with the WebSocket
//! bridge. The channel WebSockets' limits apply per socket: messages over
//! `--ws-max-message` close with 1009; more than `--ws-publish-rate` commands a second
//! (every command counts, as a subscribe may replay a channel's history) close with
//! 1008; a client that falls `--ws-send-queue` bytes behind is closed with 1008 "slow
//! consumer"; one socket holds at most [`MAX_CHANNELS`] subscriptions.

mod auth;
mod command;
mod outbox;
mod signals;
mod subscriptions;

use auth::Auth;

use command::{parse, shown, Command};
use outbox::{write, Outbox};
use subscriptions::Subscriptions;

use super::response::text;
use super::websocket::{
    check_origin, close_frame, violation, websocket_key, RateLimit, WebSocketLimits, CLOSE_WAIT,
    SLOW_CONSUMER,
};
use super::{App, Connection};
use crate::abi::http_event::ResponseBody;
use bytes::Bytes;
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::WebSocketStream;

/// Channels one socket may be subscribed to at once; past it `SUBSCRIBE` gets an
/// `ERROR:` line. Each is a subscription in the broker that the client makes for free.
pub const MAX_CHANNELS: usize = 256;

/// How much of a command an `ERROR:` line or a log line repeats.
const SHOWN: usize = 64;

/// Answers a request for the protocol's socket in `scope`: the upgrade, or why not.
pub fn handle(
    app: Arc<App>,
    connection: Arc<Connection>,
    req: Request<Incoming>,
    scope: usize,
) -> Response<ResponseBody> {
    let key = match websocket_key(&req, &connection) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    if let Err(response) = check_origin(&app, &req, &connection, "(broker protocol)") {
        return *response;
    }
    if req.uri().query().is_some_and(|q| !q.is_empty()) {
        return text(
            StatusCode::BAD_REQUEST,
            "the broker protocol's socket takes no query: send SUBSCRIBE:<channel> on it\n".into(),
        );
    }
    let tasks = app.tasks.clone();
    tasks.spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(upgraded) => upgraded,
            Err(error) => return tracing::debug!(%error, "WebSocket upgrade failed"),
        };
        let limits = app.config.websocket;
        let config = WebSocketConfig::default()
            .read_buffer_size(2 << 10)
            .max_message_size(Some(limits.max_message))
            .max_frame_size(Some(limits.max_message));
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        serve(&app, &connection, scope, ws, limits).await;
    });
    super::websocket::switching_protocols(&key)
}

pub(super) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// What woke a connection's task.
enum Wake {
    Trouble,
    Shutdown,
    Incoming(Option<Result<Frame, WsError>>),
    Ping,
}

/// Runs one socket: its commands in this task, its frames out in a writer task, until
/// either side ends or the server shuts down.
async fn serve(
    app: &App,
    connection: &Connection,
    scope: usize,
    ws: Socket,
    limits: WebSocketLimits,
) {
    let peer = connection.peer;
    let (sink, mut stream) = ws.split();
    let outbox = Arc::new(Outbox::new(limits.send_queue));
    let mut writer = tokio::spawn(write(outbox.clone(), sink));
    let mut auth = Auth::default();
    let mut subscriptions = Subscriptions {
        app,
        scope,
        outbox: outbox.clone(),
        socket: super::feed::next_id(),
        channels: HashMap::new(),
    };
    // Opened when the socket signs in.
    let mut inbox = None;
    let (opened, socket) = (std::time::Instant::now(), subscriptions.socket);
    let _counted = crate::server::access::CountedSocket::open("broker");
    tracing::debug!(%peer, "broker protocol client connected");

    let mut shutdown = app.shutdown.subscribe();
    let mut rate = RateLimit::new(limits.publish_rate);
    let mut ping = tokio::time::interval(limits.ping_interval);
    ping.reset();
    let mut last_seen = Instant::now();
    let close = |code: CloseCode, reason: &'static str| {
        outbox.close(Some(close_frame(code, reason)));
        reason
    };

    let reason = loop {
        let wake = tokio::select! {
            biased;
            () = outbox.trouble.notified() => Wake::Trouble,
            () = super::stopping(&mut shutdown) => Wake::Shutdown,
            frame = stream.next() => Wake::Incoming(frame),
            _ = ping.tick() => Wake::Ping,
        };
        let frame = match wake {
            Wake::Trouble if outbox.overflowed() => {
                tracing::warn!(%peer, limit = limits.send_queue,
                    "broker protocol client too slow (send queue full); closing with 1008");
                if let Some(metrics) = crate::metrics::get() {
                    metrics.slow_consumer("broker");
                }
                break close(SLOW_CONSUMER, "slow consumer");
            }
            Wake::Trouble => break "write error",
            Wake::Shutdown => break close(CloseCode::Away, "server shutting down"),
            Wake::Ping => {
                if last_seen.elapsed() > limits.ping_interval * 2 {
                    tracing::info!(%peer, "broker protocol client stopped answering pings; dropping it");
                    break "no pong";
                }
                outbox.push(Frame::Ping(Bytes::new()));
                continue;
            }
            Wake::Incoming(frame) => frame,
        };
        last_seen = Instant::now();
        let (bytes, is_text): (Bytes, bool) = match frame {
            Some(Ok(Frame::Text(text))) => (text.into(), true),
            Some(Ok(Frame::Binary(data))) => (data, false),
            // tungstenite has queued the pong; the writer sends it.
            Some(Ok(Frame::Ping(_))) => {
                outbox.ready.notify_one();
                continue;
            }
            Some(Ok(Frame::Pong(_) | Frame::Frame(_))) => continue,
            Some(Ok(Frame::Close(_))) | None => {
                // tungstenite has queued its close reply; the writer sends it and ends.
                outbox.close(None);
                break "client closed";
            }
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                tracing::warn!(%peer, size, max_size, "broker protocol message too big; closing with 1009");
                break close(CloseCode::Size, "message too big");
            }
            Some(Err(WsError::Utf8(error))) => {
                tracing::warn!(%peer, %error, "broker protocol client sent text that is not UTF-8; closing with 1007");
                break close(CloseCode::Invalid, "invalid UTF-8");
            }
            Some(Err(WsError::Protocol(error))) if violation(&error) => {
                tracing::warn!(%peer, %error, "broker protocol client broke the protocol; closing with 1002");
                break close(CloseCode::Protocol, "protocol error");
            }
            Some(Err(error)) => {
                tracing::debug!(%peer, %error, "WebSocket read failed");
                break "read error";
            }
        };
        if !rate.allow() {
            tracing::warn!(%peer, rate = limits.publish_rate,
                "broker protocol client over its command rate; closing with 1008");
            break close(CloseCode::Policy, "publish rate exceeded");
        }
        let done = match parse(&bytes) {
            Ok(Command::Subscribe(channel)) => subscriptions.subscribe(channel, &mut auth).await,
            Ok(Command::Unsubscribe(channel)) => subscriptions.unsubscribe(&channel),
            Ok(Command::Publish(channel, content)) => {
                let content = bytes.slice_ref(content);
                publish(app, scope, &mut auth, &channel, content, is_text, false)
            }
            Ok(Command::Signal(channel, content)) => {
                let content = bytes.slice_ref(content);
                publish(app, scope, &mut auth, &channel, content, is_text, true)
            }
            Ok(Command::Private(to, content)) => match auth.user() {
                Some(from) => signals::send_private(app, scope, from, &to, content, is_text),
                None => Err("a private message needs a signed-in sender: AUTH:<token> with a token that names you, and SUBSCRIBE: to a channel it opens".into()),
            },
            Ok(Command::Typing(channel)) => subscriptions.typing(&channel, &auth),
            Ok(Command::Presence(channel)) => {
                presence(app, scope, &mut auth, &channel).map(|lines| {
                    lines.into_iter().for_each(|line| outbox.push(line));
                })
            }
            Ok(Command::Auth(token)) => auth.add(token),
            Err(reason) => Err(reason),
        };
        if let (None, Some(user)) = (&inbox, auth.user()) {
            inbox = Some(signals::Inbox::open(app, scope, user, &outbox));
        }
        if let Err(reason) = done {
            // A token is never logged.
            let command = match bytes.starts_with(b"AUTH:") {
                true => "AUTH:…".to_owned(),
                false => shown(&bytes),
            };
            tracing::debug!(%peer, %command, reason, "broker protocol command refused");
            outbox.push(Frame::Text(format!("ERROR:{reason}").into()));
        }
    };
    drop(subscriptions);
    drop(inbox);
    if tokio::time::timeout(CLOSE_WAIT, &mut writer).await.is_err() {
        writer.abort();
    }
    match app.config.access_log {
        true => super::access::socket_closed(peer, socket, "broker protocol", reason, opened),
        false => tracing::debug!(%peer, reason, "broker protocol client left"),
    }
}

/// Publishes a client's `content` on `channel`, which must have the WebSocket bridge;
/// `ephemeral`: live only, never kept. The publisher's own subscription gets it too.
fn publish(
    app: &App,
    scope: usize,
    auth: &mut Auth,
    channel: &str,
    content: Bytes,
    text: bool,
    ephemeral: bool,
) -> Result<(), String> {
    let hub = &app.hub();
    open(app, scope, auth, channel, true)?;
    let published = match ephemeral {
        true => hub.publish_ephemeral(scope, channel, content, Some(text), None),
        false => hub.publish(scope, channel, content, Some(text), None),
    };
    published.map_err(|e| e.to_string())
}

/// Whether the socket may use `channel` (to publish, if `publish`): the WebSocket bridge,
/// and on a private channel a token that opens it.
fn open(
    app: &App,
    scope: usize,
    auth: &mut Auth,
    channel: &str,
    publish: bool,
) -> Result<(), String> {
    let hub = &app.hub();
    let scope = hub.scopes.get(scope);
    scope.check(channel, true).map_err(|e| e.to_string())?;
    if scope.private(channel) {
        let shown = shown(channel.as_bytes());
        auth.admits(&hub.tokens, &scope.hash, channel, publish, &shown)?;
    }
    Ok(())
}

/// The `PRESENCE:<channel>:<members>` line for `channel`: its first
/// [`MAX_LISTED`](crate::messaging::presence::MAX_LISTED) members by name, and, past them, an
/// `ERROR:` line saying how many there are.
fn presence(app: &App, scope: usize, auth: &mut Auth, channel: &str) -> Result<Vec<Frame>, String> {
    open(app, scope, auth, channel, false)?;
    let hub = app.hub();
    let scope = hub.scopes.get(scope);
    if !scope.presence(channel) {
        return Err(format!(
            "channel `{}` keeps no presence: give its messaging resource `wisp: {{presence: true}}`",
            shown(channel.as_bytes())
        ));
    }
    let topic = scope.topic(channel);
    let (members, count) = app.hub().presence.list_counted(&topic);
    let json = serde_json::to_string(&members).expect("plain data serializes");
    let encoded = command::encode_channel(channel);
    let mut lines = vec![Frame::Text(format!("PRESENCE:{encoded}:{json}").into())];
    if count > members.len() {
        let shown = shown(channel.as_bytes());
        let more = format!(
            "ERROR:channel `{shown}` has {count} members; PRESENCE lists the first {} by name",
            members.len()
        );
        lines.push(Frame::Text(more.into()));
    }
    Ok(lines)
}
