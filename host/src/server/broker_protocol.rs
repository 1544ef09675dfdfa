//! The broker tutorial's protocol: one WebSocket, many channels, text commands. Served
//! at `/ws-<project hash>` on the main port and at `/` of `wisp serve --broker-listen`.
//!
//! A client sends, one command per frame:
//!
//! - `SUBSCRIBE:<channel>`: the channel's kept messages (`wisp.history`), oldest first,
//!   then its live ones. Subscribing again to a channel the socket has is a no-op.
//! - `UNSUBSCRIBE:<channel>`.
//! - `PUBLISH:<channel>:<content>`: `<content>` is everything after the second `:`.
//!
//! and gets `MSG:<channel>:<content>` for every message on a channel it subscribed to,
//! its own publishes included (as the tutorial's broker does), and `ERROR:<reason>` for a
//! command it cannot have. Nothing else: a command that worked is not acknowledged.
//!
//! Channel names are percent-decoded. In `PUBLISH` the name ends at the first `:`, so
//! a `:` in a channel's name is written `%3A` there (in `SUBSCRIBE` and `UNSUBSCRIBE`
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

use super::response::text;
use super::websocket::{
    check_origin, close_frame, violation, websocket_key, RateLimit, WebSocketLimits, CLOSE_WAIT,
    SLOW_CONSUMER,
};
use super::{App, Connection};
use crate::abi::http_event::ResponseBody;
use crate::messaging::broker::{Reach, Sink, SinkId};
use crate::messaging::scope::decode_path;
use crate::messaging::Message;
use crate::state::{LogEntry, Range};
use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Notify;
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

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A command, parsed.
#[derive(Debug, PartialEq, Eq)]
enum Command<'a> {
    Subscribe(String),
    Unsubscribe(String),
    Publish(String, &'a [u8]),
}

/// The command in `frame`, or the reason for its `ERROR:` line.
fn parse(frame: &[u8]) -> Result<Command<'_>, String> {
    const USAGE: &str =
        "the commands are SUBSCRIBE:<channel>, UNSUBSCRIBE:<channel> and PUBLISH:<channel>:<content>";
    let Some(colon) = frame.iter().position(|&b| b == b':') else {
        return Err(format!("`{}` is not a command; {USAGE}", shown(frame)));
    };
    let (verb, rest) = (&frame[..colon], &frame[colon + 1..]);
    let channel = |name: &[u8]| -> Result<String, String> {
        let decoded = std::str::from_utf8(name).ok().and_then(decode_path);
        match decoded {
            Some(channel) if !channel.is_empty() => Ok(channel),
            Some(_) => Err("the channel name is empty".into()),
            None => Err(format!(
                "channel `{}` is not valid percent-encoded UTF-8",
                shown(name)
            )),
        }
    };
    match verb {
        b"SUBSCRIBE" => Ok(Command::Subscribe(channel(rest)?)),
        b"UNSUBSCRIBE" => Ok(Command::Unsubscribe(channel(rest)?)),
        b"PUBLISH" => {
            let Some(colon) = rest.iter().position(|&b| b == b':') else {
                return Err(format!(
                    "PUBLISH needs a channel and content: PUBLISH:<channel>:<content> (a `:` in the channel is written %3A), got `{}`",
                    shown(frame)
                ));
            };
            Ok(Command::Publish(
                channel(&rest[..colon])?,
                &rest[colon + 1..],
            ))
        }
        _ => Err(format!("unknown command `{}`; {USAGE}", shown(verb))),
    }
}

/// The first [`SHOWN`] characters of what a client sent, escaped for a log or an
/// `ERROR:` line.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN * 4)]);
    let mut out: String = text
        .chars()
        .take(SHOWN)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().count() > SHOWN || bytes.len() > SHOWN * 4 {
        out.push('…');
    }
    out
}

/// `channel` as `MSG` lines write it: `%` and `:` percent-encoded.
fn encode_channel(channel: &str) -> String {
    let mut out = String::with_capacity(channel.len());
    for c in channel.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    out
}

/// The frame that delivers `payload` on the channel whose `MSG:<channel>:` is `prefix`.
fn delivery(prefix: &str, payload: &[u8], text: bool) -> Frame {
    match std::str::from_utf8(payload) {
        Ok(content) if text => {
            let mut line = String::with_capacity(prefix.len() + content.len());
            line.push_str(prefix);
            line.push_str(content);
            Frame::Text(line.into())
        }
        _ => {
            let mut bytes = Vec::with_capacity(prefix.len() + payload.len());
            bytes.extend_from_slice(prefix.as_bytes());
            bytes.extend_from_slice(payload);
            Frame::Binary(bytes.into())
        }
    }
}

/// Frames on their way to one client, bounded in bytes: subscriptions fill it without
/// blocking, the socket's writer task empties it.
struct Outbox {
    queue: Mutex<Queue>,
    /// Wakes the writer: a frame was queued, or the socket is closing.
    ready: Notify,
    /// Wakes the connection's task: the queue overflowed or a write failed.
    trouble: Notify,
    limit: usize,
}

struct Queue {
    frames: VecDeque<Frame>,
    bytes: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    Open,
    /// The client fell `limit` bytes behind; what was queued is dropped.
    Overflowed,
    /// Writing failed: the connection is gone.
    Failed,
    /// The writer sends this close frame (if any), flushes and ends.
    Closing(Option<Frame>),
}

/// What the writer does next.
enum Next {
    Write(Frame),
    Flush,
    Close(Option<Frame>),
}

impl Outbox {
    fn new(limit: usize) -> Self {
        Self {
            queue: Mutex::new(Queue {
                frames: VecDeque::new(),
                bytes: 0,
                state: State::Open,
            }),
            ready: Notify::new(),
            trouble: Notify::new(),
            limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `frame`, unless the client is already `limit` bytes behind: then nothing
    /// more is queued and the connection's task is told.
    fn push(&self, frame: Frame) {
        let mut queue = self.lock();
        if !matches!(queue.state, State::Open) {
            return;
        }
        let len = frame.len();
        if queue.bytes + len > self.limit {
            queue.state = State::Overflowed;
            queue.frames.clear();
            queue.bytes = 0;
            drop(queue);
            self.trouble.notify_one();
            return;
        }
        queue.frames.push_back(frame);
        queue.bytes += len;
        drop(queue);
        self.ready.notify_one();
    }

    /// Drops what is queued; the writer sends `close` (if any) and ends.
    fn close(&self, close: Option<Frame>) {
        let mut queue = self.lock();
        queue.frames.clear();
        queue.bytes = 0;
        if !matches!(queue.state, State::Failed) {
            queue.state = State::Closing(close);
        }
        drop(queue);
        self.ready.notify_one();
    }

    fn next(&self) -> Next {
        let mut queue = self.lock();
        if let State::Closing(close) = &mut queue.state {
            return Next::Close(close.take());
        }
        match queue.frames.pop_front() {
            Some(frame) => {
                queue.bytes -= frame.len();
                Next::Write(frame)
            }
            None => Next::Flush,
        }
    }

    fn failed(&self) {
        self.lock().state = State::Failed;
        self.trouble.notify_one();
    }

    fn overflowed(&self) -> bool {
        matches!(self.lock().state, State::Overflowed)
    }
}

/// Writes a socket's frames from its outbox until it closes or a write fails. Only this
/// task writes, so a client that does not read never stalls the commands it sends.
async fn write(outbox: Arc<Outbox>, mut sink: SplitSink<Socket, Frame>) {
    loop {
        let written = match outbox.next() {
            Next::Write(frame) => sink.feed(frame).await,
            // Also sends what tungstenite queued itself: pongs and close replies.
            Next::Flush => match sink.flush().await {
                Ok(()) => {
                    outbox.ready.notified().await;
                    continue;
                }
                Err(error) => Err(error),
            },
            Next::Close(frame) => {
                if let Some(frame) = frame {
                    let _ = sink.feed(frame).await;
                }
                let _ = sink.flush().await;
                return;
            }
        };
        if let Err(error) = written {
            tracing::debug!(%error, "WebSocket write failed");
            return outbox.failed();
        }
    }
}

/// One channel subscription of one socket: formats the channel's messages as `MSG`
/// lines into the socket's outbox.
struct Subscription {
    id: u64,
    /// `MSG:<channel>:`
    prefix: String,
    outbox: Arc<Outbox>,
    /// While its kept messages are read (cluster mode): the live ones that came meanwhile,
    /// at most [`MAX_HELD`] (past it, the rest are dropped and the client told).
    held: Mutex<Option<VecDeque<Arc<Message>>>>,
}

/// Live messages a subscription holds while its kept ones are read, at most.
pub const MAX_HELD: usize = 10_000;

impl Sink for Subscription {
    fn id(&self) -> SinkId {
        SinkId::Socket(self.id)
    }

    fn deliver(&self, message: &Arc<Message>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match held.as_mut() {
            Some(held) if held.len() < MAX_HELD => held.push_back(message.clone()),
            // Told when released (see `release`).
            Some(_) => {}
            None => self
                .outbox
                .push(delivery(&self.prefix, &message.payload, message.text)),
        }
    }
}

impl Subscription {
    fn replay(&self, entry: &LogEntry) {
        self.outbox
            .push(delivery(&self.prefix, &entry.data, entry.text));
    }

    /// Holds live messages from now until [`Self::release`].
    fn hold(&self) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(VecDeque::new());
    }

    /// Sends what was held, but for the messages up to offset `replayed` (which the
    /// replay had), and goes live.
    fn release(&self, replayed: Option<u64>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let Some(messages) = held.take() else {
            return;
        };
        if messages.len() >= MAX_HELD {
            self.outbox.push(Frame::Text(
                format!("ERROR:live messages were dropped while {MAX_HELD} waited for the channel's history").into(),
            ));
        }
        for message in messages {
            let offset = message.kept.as_ref().map(|kept| kept.offset);
            if offset
                .zip(replayed)
                .is_some_and(|(offset, upto)| offset <= upto)
            {
                continue;
            }
            self.outbox
                .push(delivery(&self.prefix, &message.payload, message.text));
        }
    }
}

/// A socket's subscriptions, by channel; all left when dropped, even on a panic.
struct Subscriptions<'a> {
    app: &'a App,
    scope: usize,
    outbox: Arc<Outbox>,
    /// Channel to (topic, subscription id).
    channels: HashMap<String, (String, u64)>,
}

impl Subscriptions<'_> {
    /// Subscribes to `channel` after queueing its kept messages.
    async fn subscribe(&mut self, channel: String) -> Result<(), String> {
        if self.channels.contains_key(&channel) {
            return Ok(());
        }
        if self.channels.len() >= MAX_CHANNELS {
            return Err(format!(
                "a socket may subscribe to at most {MAX_CHANNELS} channels; UNSUBSCRIBE from one first"
            ));
        }
        let scope = self.app.hub.scopes.get(self.scope);
        scope.check(&channel, true).map_err(|e| e.to_string())?;
        let topic = scope.topic(&channel);
        let subscription = Arc::new(Subscription {
            id: super::feed::next_id(),
            prefix: format!("MSG:{}:", encode_channel(&channel)),
            outbox: self.outbox.clone(),
            held: Mutex::new(None),
        });
        let id = subscription.id;
        let broker = &self.app.hub.broker;
        let history = &self.app.hub.history;
        let reach = scope.reach(&channel);
        match scope.history(&channel) {
            None => broker.subscribe(&topic, subscription, reach),
            // Cluster mode: one log for every node. Subscribed first, holding the live
            // messages, then the kept ones read; the held ones the read had are dropped by
            // their offset (every node's messages carry it).
            Some(kept) if !history.immediate() && reach == Reach::Cluster => {
                let log = history.space(&topic, kept);
                subscription.hold();
                broker.subscribe(&topic, subscription.clone(), reach);
                let read = history.read_later(&log, Range::Last(kept.size)).await;
                let replayed = match read {
                    Ok(read) => {
                        read.entries.iter().for_each(|e| subscription.replay(e));
                        read.entries.last().map(|e| e.offset)
                    }
                    Err(error) => {
                        tracing::warn!(topic = %topic.escape_debug(), %error, "channel history could not be read; the client gets live messages only");
                        None
                    }
                };
                subscription.release(replayed);
            }
            Some(kept) => {
                // Read and subscribed under the lock every publish on the channel takes,
                // so that the kept and the live messages meet without a gap or a repeat.
                let log = history.space(&topic, kept);
                let _order = history.lock(&topic);
                match history.read(&log, Range::Last(kept.size)) {
                    Ok(read) => read.entries.iter().for_each(|e| subscription.replay(e)),
                    Err(error) => {
                        tracing::warn!(topic = %topic.escape_debug(), %error, "channel history could not be read; the client gets live messages only");
                    }
                }
                broker.subscribe(&topic, subscription, reach);
            }
        }
        self.channels.insert(channel, (topic, id));
        Ok(())
    }

    fn unsubscribe(&mut self, channel: &str) -> Result<(), String> {
        let Some((topic, id)) = self.channels.remove(channel) else {
            return Err(format!("not subscribed to `{}`", shown(channel.as_bytes())));
        };
        self.app.hub.broker.unsubscribe(&topic, SinkId::Socket(id));
        Ok(())
    }
}

impl Drop for Subscriptions<'_> {
    fn drop(&mut self) {
        for (topic, id) in self.channels.values() {
            self.app.hub.broker.unsubscribe(topic, SinkId::Socket(*id));
        }
    }
}

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
    let mut subscriptions = Subscriptions {
        app,
        scope,
        outbox: outbox.clone(),
        channels: HashMap::new(),
    };
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
            Ok(Command::Subscribe(channel)) => subscriptions.subscribe(channel).await,
            Ok(Command::Unsubscribe(channel)) => subscriptions.unsubscribe(&channel),
            Ok(Command::Publish(channel, content)) => {
                publish(app, scope, &channel, bytes.slice_ref(content), is_text)
            }
            Err(reason) => Err(reason),
        };
        if let Err(reason) = done {
            tracing::debug!(%peer, command = %shown(&bytes), reason, "broker protocol command refused");
            outbox.push(Frame::Text(format!("ERROR:{reason}").into()));
        }
    };
    drop(subscriptions);
    if tokio::time::timeout(CLOSE_WAIT, &mut writer).await.is_err() {
        writer.abort();
    }
    tracing::debug!(%peer, reason, "broker protocol client left");
}

/// Publishes a client's `content` on `channel`, which must have the WebSocket bridge.
/// The publisher's own subscription gets it too.
fn publish(
    app: &App,
    scope: usize,
    channel: &str,
    content: Bytes,
    text: bool,
) -> Result<(), String> {
    let hub = &app.hub;
    hub.scopes
        .get(scope)
        .check(channel, true)
        .map_err(|e| e.to_string())?;
    hub.publish(scope, channel, content, Some(text), None)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_the_channel_rule() {
        assert_eq!(
            parse(b"SUBSCRIBE:news"),
            Ok(Command::Subscribe("news".into()))
        );
        assert_eq!(
            parse(b"SUBSCRIBE:a:b%20c"),
            Ok(Command::Subscribe("a:b c".into()))
        );
        assert_eq!(
            parse(b"UNSUBSCRIBE:news"),
            Ok(Command::Unsubscribe("news".into()))
        );
        assert_eq!(
            parse(b"PUBLISH:news:Hello: world!"),
            Ok(Command::Publish("news".into(), b"Hello: world!"))
        );
        assert_eq!(
            parse(b"PUBLISH:a%3Ab:"),
            Ok(Command::Publish("a:b".into(), b""))
        );
        for bad in [
            &b"SUBSCRIBE"[..],
            b"SUBSCRIBE:",
            b"subscribe:news",
            b"PUBLISH:news",
            b"PUBLISH::x",
            b"SUBSCRIBE:%zz",
            b"SUBSCRIBE:\xff",
            b"HELLO:x",
        ] {
            assert!(parse(bad).is_err(), "{}", shown(bad));
        }
    }

    #[test]
    fn deliveries_encode_what_would_make_the_channel_ambiguous() {
        let prefix = format!("MSG:{}:", encode_channel("a:b%c"));
        assert_eq!(prefix, "MSG:a%3Ab%25c:");
        assert_eq!(
            delivery(&prefix, b"hi", true),
            Frame::Text("MSG:a%3Ab%25c:hi".into())
        );
        assert_eq!(
            delivery("MSG:x:", &[0xff], false),
            Frame::Binary(Bytes::from_static(b"MSG:x:\xff"))
        );
    }

    #[test]
    fn what_is_shown_of_a_command_is_short_and_escaped() {
        assert_eq!(shown(b"a\nb"), "a\\nb");
        let long = shown(&[b'x'; 10_000]);
        assert_eq!(long.chars().count(), SHOWN + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn an_outbox_past_its_limit_drops_everything_and_says_so() {
        let outbox = Outbox::new(10);
        outbox.push(Frame::Text("12345".into()));
        outbox.push(Frame::Text("12345".into()));
        assert!(!outbox.overflowed());
        outbox.push(Frame::Text("1".into()));
        assert!(outbox.overflowed());
        assert!(matches!(outbox.next(), Next::Flush));
    }
}
