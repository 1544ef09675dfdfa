//! The network side: HTTP/1.1 with keep-alive, functions by route, on the main
//! listener; optionally a second one for the broker protocol alone (`--broker-listen`).
//! With TLS both speak HTTPS and WSS, and a third may send plain HTTP there ([`tls`]).
//!
//! # Layout
//! - [`router`]: method + path + Host → function.
//! - [`http`]: one request → one invocation → one response.
//! - [`cors`]: preflights and `Access-Control-Allow-Origin` (`wisp.cors`).
//! - [`websocket`]: the WebSocket bridge to channels.
//! - [`broker_protocol`]: the broker tutorial's text protocol, many channels on one socket.
//! - [`feed`]: a channel's WebSocket clients, as one subscriber of the broker.
//! - [`follow`]: in cluster mode, a history channel's clients fed from its log.
//! - [`socket_io`]: a client's socket as tungstenite reads and writes it.
//! - [`cursor`]: one client's place in its channel's frame log, and its own frames.
//! - [`flusher`]: the tasks that write clients out, one per worker thread.
//! - [`framelog`]: a channel's outgoing frames, written once for every client.
//! - [`stream`]: a client's connection, TCP or TLS, as the fan-out writes it.
//! - [`static_files`]: the project's `public/` folder.
//! - [`health`]: `GET /_wisp/health`, whether the node is up.
//! - [`client_js`]: `GET /_wisp/client.js`, the JavaScript client for channels.
//! - [`response`]: the responses the server makes itself (plain text).
//! - [`access`]: the access log, a line per request and per WebSocket closed.
//! - [`admin`]: the admin listener: `/metrics`, and the console with its API.
//! - [`limits`]: connection limits, total and per client address.
//! - [`tls`]: HTTPS and WSS (`--tls-cert`), and `--redirect-http`'s listener.
//!
//! The WebSocket fan-out's modules, [`feed`] to [`stream`], each use only the
//! ones listed after them.

pub mod access;
pub mod admin;
pub mod broker_protocol;
pub mod client_js;
pub mod cors;
pub mod cursor;
pub mod feed;
pub mod flusher;
pub mod follow;
pub mod framelog;
pub mod health;
pub mod http;
pub mod limits;
pub mod replay;
pub mod response;
pub mod router;
pub mod socket_io;
pub mod static_files;
pub mod stream;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod websocket;

use crate::abi::http_event::{BoxError, HttpLimits, ResponseBody};
use crate::egress::{Clients, EgressSettings};
use crate::load::Loaded;
use crate::messaging::broker::{Broker, Reach};
use crate::messaging::functions::SubscriptionLimits;
use crate::messaging::history::Histories;
use crate::messaging::Hub;
use crate::state::{Catalog, StateEngine};
use bytes::Bytes;
use futures_util::FutureExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use router::Router;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

/// How long a client may take to send a request head before the connection closes.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Header fields a request head may carry (hyper's own default, named here so the
/// bound is Wisp's): past it hyper answers 431 and closes the connection, and no
/// function runs. A guest's header list is never longer.
pub const MAX_HEADERS: usize = 100;

/// How long in-flight requests and WebSocket closes may take after a shutdown
/// signal before the server exits anyway.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(10);

/// How far the open-connection count must fall from its peak before the server
/// hands the allocator's free pages back to the kernel: 256 idle connections held
/// about 2.5 MiB.
const TRIM_AFTER_CLOSED: usize = 256;

/// How often the open-connection count is looked at for [`TRIM_AFTER_CLOSED`]: a
/// crowd that comes and goes between two looks is missed until the next one.
const TRIM_CHECK: Duration = Duration::from_secs(1);

/// Where `wisp serve` listens unless told otherwise: this host only, so a first run
/// exposes nothing to the network.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// Server settings, each with a default a small deployment can keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub http: HttpLimits,
    pub websocket: websocket::WebSocketLimits,
    pub connections: limits::ConnectionLimits,
    /// The subscriptions functions make themselves with `Subscribe()`.
    pub subscriptions: SubscriptionLimits,
    /// See [`DEFAULT_DRAIN`].
    pub drain: Duration,
    /// What one project's globals may hold, keys and values together.
    pub globals_size: u64,
    /// Where guests' outbound HTTP may go, and how much it may bring back.
    pub egress: EgressSettings,
    /// The key private channels' tokens are signed with (`--ws-token-secret`, or kept in
    /// the data dir); `None`: a key of this process only.
    pub tokens: Option<crate::messaging::token::Tokens>,
    /// Whether each request and each WebSocket closed is logged ([`access`]).
    pub access_log: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http: HttpLimits::default(),
            websocket: websocket::WebSocketLimits::default(),
            connections: limits::ConnectionLimits::default(),
            subscriptions: SubscriptionLimits::default(),
            drain: DEFAULT_DRAIN,
            globals_size: crate::state::DEFAULT_GLOBALS_SIZE,
            egress: EgressSettings::default(),
            tokens: None,
            access_log: true,
        }
    }
}

/// Everything a request handler needs, shared by all connections.
pub struct App {
    /// What the project deploys now: replaced whole by a reload ([`App::reload`]).
    current: arc_swap::ArcSwap<Generation>,
    pub config: ServerConfig,
    pub gate: Arc<limits::ConnectionGate>,
    /// Request bodies held in memory, across all connections (`--max-buffered-bodies`).
    pub bodies: Arc<limits::BodyBudget>,
    /// Flips to `true` when the server starts shutting down.
    pub shutdown: watch::Sender<bool>,
    /// Connection and WebSocket tasks, awaited (up to `drain`) at shutdown.
    pub tasks: TaskTracker,
    /// The WebSocket clients of each channel, and the flushers that write them. They
    /// outlive reloads: a channel's topic is the project's, whatever serves it.
    pub feeds: feed::Feeds,
    /// Where functions keep state, for the deployments reloads make.
    state: Arc<dyn StateEngine>,
    /// Reloads, one at a time.
    reloading: tokio::sync::Mutex<()>,
}

/// One deployment of the project: its functions, routes and resources. A request
/// takes the generation current when it arrives and keeps it to its end, so in-flight
/// work finishes on the code it started on.
pub struct Generation {
    /// Messaging, and through it the deployed functions.
    pub hub: Arc<Hub>,
    pub router: Router,
    /// The project's `public/` folder, if it has one.
    pub public: Option<PathBuf>,
    /// The origins whose pages may open WebSockets (`wisp.origins`); `None`: any.
    pub origins: Option<Vec<String>>,
    /// What each HTTP function allows other origins' pages (`wisp.cors`), by function.
    pub cors: Vec<Option<Arc<crate::project::cors::Cors>>>,
    /// 1 for the first deployment, one more for each reload.
    pub number: u64,
    /// The project it deploys, as loaded.
    pub project: Arc<crate::project::Project>,
}

/// Why a reload was refused: the deployment before it still serves.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the project's id or name changed; channels, tokens and stored state belong to the old one, so restart Wisp to serve the new")]
    OtherProject,
    #[error("the project's applications changed; restart Wisp to serve the new ones (open WebSockets are bound to the old list)")]
    Applications,
}

impl App {
    /// Wires a loaded project to `broker` and `state` and subscribes its pub/sub
    /// functions. Must run inside the tokio runtime (subscriptions start tasks).
    pub fn start(
        loaded: Loaded,
        broker: Arc<dyn Broker>,
        state: Arc<dyn StateEngine>,
        config: ServerConfig,
    ) -> Arc<Self> {
        // Counted when metrics are kept (`crate::metrics::enable` came first).
        let state = crate::state::metered::Metered::wrap(state);
        let project_key = Catalog::of(&loaded.project, config.globals_size).project;
        let history = Histories::new(Some(state.clone()), project_key);
        let (parts, deployment) = Parts::of(loaded, &state, &config);
        let hub = Hub::new(
            parts.scopes,
            broker,
            deployment,
            config.websocket.max_message,
            config.subscriptions,
            history,
            config
                .tokens
                .clone()
                .unwrap_or_else(crate::messaging::token::Tokens::random),
        );
        subscribe_triggers(&hub, &parts.triggers);
        let feeds = feed::Feeds::new(
            hub.broker.clone(),
            flusher::Flushers::start(worker_threads()),
        );
        let generation = Generation {
            hub,
            router: parts.router,
            public: parts.public,
            origins: parts.origins,
            cors: parts.cors,
            number: 1,
            project: parts.project,
        };
        Arc::new(Self {
            current: arc_swap::ArcSwap::from_pointee(generation),
            feeds,
            gate: limits::ConnectionGate::new(config.connections),
            bodies: limits::BodyBudget::new(config.http.max_buffered_bodies),
            config,
            shutdown: watch::channel(false).0,
            tasks: TaskTracker::new(),
            state,
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// The deployment serving now. Hold it for the length of one request or event.
    pub fn generation(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// The messaging hub of the deployment serving now. Its broker, history, tokens
    /// and presence are the same in every generation.
    pub fn hub(&self) -> Arc<Hub> {
        self.current.load().hub.clone()
    }

    /// Serves `loaded` in place of the current deployment, without a restart: new
    /// requests and events reach the new functions, those in flight finish on the old,
    /// WebSocket clients stay connected (channels belong to the project, not to a
    /// deployment), and each pub/sub trigger passes from the old function to the new
    /// without losing a message. A project with another id or other applications is
    /// refused, and the old deployment goes on serving. Returns the new generation.
    pub async fn reload(&self, loaded: Loaded) -> Result<Arc<Generation>, ReloadError> {
        let _one = self.reloading.lock().await;
        let old = self.generation();
        let key = Catalog::of(&loaded.project, self.config.globals_size).project;
        if key != *old.hub.history.project() {
            return Err(ReloadError::OtherProject);
        }
        if !old.hub.scopes.same_hashes(&loaded.scopes) {
            return Err(ReloadError::Applications);
        }
        let (parts, deployment) = Parts::of(loaded, &self.state, &self.config);
        let hub = old.hub.successor(parts.scopes, deployment);
        subscribe_triggers(&hub, &parts.triggers);
        hub.take_over(&old.hub);
        let generation = Arc::new(Generation {
            hub,
            router: parts.router,
            public: parts.public,
            origins: parts.origins,
            cors: parts.cors,
            number: old.number + 1,
            project: parts.project,
        });
        if let Some(metrics) = crate::metrics::get() {
            metrics.reloads.inc();
        }
        self.current.store(generation.clone());
        Ok(generation)
    }
}

/// What a generation is made of, out of a loaded project.
struct Parts {
    project: Arc<crate::project::Project>,
    scopes: crate::messaging::scope::Scopes,
    triggers: Vec<crate::load::PubSubTrigger>,
    router: Router,
    public: Option<PathBuf>,
    origins: Option<Vec<String>>,
    cors: Vec<Option<Arc<crate::project::cors::Cors>>>,
}

impl Parts {
    /// `loaded`'s parts, and its deployment wired to `state` and to outbound HTTP.
    fn of(
        loaded: Loaded,
        state: &Arc<dyn StateEngine>,
        config: &ServerConfig,
    ) -> (Self, Arc<crate::runtime::deployment::Deployment>) {
        let public = Some(loaded.project.root.join("public")).filter(|p| p.is_dir());
        let mut deployment = loaded.deployment;
        let catalog = Catalog::of(&loaded.project, config.globals_size);
        deployment.attach_state(state.clone(), Arc::new(catalog));
        let clients = Clients::new(config.egress.clone());
        deployment.attach_egress(
            loaded
                .egress
                .iter()
                .map(|own| clients.for_function(own))
                .collect(),
        );
        let parts = Self {
            router: Router::new(&loaded.routes),
            scopes: loaded.scopes,
            triggers: loaded.triggers,
            public,
            origins: loaded.project.origins.clone(),
            cors: loaded.cors,
            project: Arc::new(loaded.project),
        };
        (parts, Arc::new(deployment))
    }
}

/// Subscribes the pub/sub functions of `triggers`.
fn subscribe_triggers(hub: &Hub, triggers: &[crate::load::PubSubTrigger]) {
    for trigger in triggers {
        let reach = if trigger.local {
            Reach::Node
        } else {
            Reach::Cluster
        };
        let channel = &trigger.channel;
        let subscribed = match trigger.presence_events {
            true => hub.subscribe_presence_events(trigger.function, channel),
            false => hub.subscribe_function(trigger.function, channel, reach),
        };
        if let Err(error) = subscribed {
            // Load already checked every trigger channel against the resources.
            tracing::error!(%channel, %error, "subscribing a trigger failed");
        }
    }
}

/// How many threads the runtime schedules tasks on: one flusher for each.
fn worker_threads() -> usize {
    tokio::runtime::Handle::current().metrics().num_workers()
}

/// One accepted connection: who it is from, and its slot under the limits.
pub struct Connection {
    pub peer: SocketAddr,
    pub listener: Listener,
    _permit: limits::Permit,
}

/// Which listener a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// Functions, files, channels: everything.
    Main,
    /// The broker protocol at `/`, for the project's channels, and nothing else.
    Broker,
    /// Plain HTTP answered with redirects to HTTPS on the main listener's `port`.
    Redirect { port: u16 },
}

/// The listeners a server accepts on.
pub struct Listeners {
    pub main: TcpListener,
    /// `--broker-listen`'s, if given.
    pub broker: Option<TcpListener>,
    /// `--redirect-http`'s, if given (with `tls` only).
    pub redirect: Option<TcpListener>,
    /// With it, the main and broker listeners speak TLS (HTTPS and WSS).
    pub tls: Option<tls::Tls>,
}

impl From<TcpListener> for Listeners {
    fn from(main: TcpListener) -> Self {
        Self {
            main,
            broker: None,
            redirect: None,
            tls: None,
        }
    }
}

/// Accepts connections on the listeners until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish, closes WebSockets with 1001 (going
/// away), and returns once everything has ended or `drain` has passed.
pub async fn run(
    listeners: impl Into<Listeners>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Listeners {
        main,
        broker,
        redirect,
        tls,
    } = listeners.into();
    tokio::pin!(shutdown);
    let trimmer = tokio::spawn(trim_after_crowds(app.clone()));
    let reloader = tls.as_ref().map(tls::Tls::start_reloading);
    let https_port = main.local_addr()?.port();
    loop {
        let (accepted, listener) = tokio::select! {
            accepted = main.accept() => (accepted, Listener::Main),
            accepted = accept_on(broker.as_ref()) => (accepted, Listener::Broker),
            accepted = accept_on(redirect.as_ref()) => (accepted, Listener::Redirect { port: https_port }),
            () = &mut shutdown => break,
        };
        // The redirect listener's connections are plain; the others, TLS if it is on.
        let tls = tls
            .as_ref()
            .filter(|_| !matches!(listener, Listener::Redirect { .. }));
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(error) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match app.gate.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refused) => {
                tracing::warn!(%peer, %refused, "connection refused");
                // A TLS client could not read the plain 503, and a handshake is the
                // work the limit is there to refuse: it is closed.
                if tls.is_none() {
                    app.tasks.spawn(refuse(stream, refused));
                }
                continue;
            }
        };
        // Small responses must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let connection = Arc::new(Connection {
            peer,
            listener,
            _permit: permit,
        });
        match tls {
            None => app
                .tasks
                .spawn(serve_connection(app.clone(), stream, connection)),
            Some(tls) => app
                .tasks
                .spawn(tls::serve(app.clone(), tls.clone(), stream, connection)),
        };
    }

    drop((main, broker, redirect));
    trimmer.abort();
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    let open = app.gate.open();
    tracing::info!(open, drain = ?app.config.drain, "shutting down: no new connections; draining");
    app.shutdown.send_replace(true);
    app.tasks.close();
    let deadline = tokio::time::Instant::now() + app.config.drain;
    if tokio::time::timeout_at(deadline, app.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = app.gate.open(),
            "drain time over; closing what is left"
        );
    }
    // What the last requests published still has to reach the other nodes.
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    app.hub().broker.settle(left).await;
    Ok(())
}

/// The next connection on `listener`; never, without one.
async fn accept_on(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Gives the memory a crowd of connections held back to the kernel once the
/// open-connection count has fallen [`TRIM_AFTER_CLOSED`] below its peak: their
/// tasks and buffers were small blocks, whose freed pages glibc keeps inside its
/// arenas otherwise (10,000 idle connections: 134 MB, and it stayed). It looks
/// once a [`TRIM_CHECK`], not per connection or request; the trim runs on a
/// blocking thread.
async fn trim_after_crowds(app: Arc<App>) {
    let mut ticks = tokio::time::interval(TRIM_CHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut peak = app.gate.open();
    loop {
        ticks.tick().await;
        let open = app.gate.open();
        peak = peak.max(open);
        if peak - open >= TRIM_AFTER_CLOSED {
            tracing::debug!(
                peak,
                open,
                "connections fell back from a peak; trimming the heap"
            );
            let _ = tokio::task::spawn_blocking(crate::allocator::give_back_free_pages).await;
            peak = open;
        }
    }
}

/// Serves HTTP on `stream`: the accepted TCP stream, or the TLS session over it.
async fn serve_connection<S>(app: Arc<App>, stream: S, connection: Arc<Connection>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut shutdown = app.shutdown.subscribe();
    let peer = connection.peer;
    let handler = app.clone();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let service = service_fn(move |req| {
        // Counted from the moment hyper hands the head over, so that shutdown never
        // sees a request as not yet begun once it has.
        let in_flight = InFlight::start(&counter);
        let handled = http::handle(handler.clone(), connection.clone(), req);
        async move {
            let response = handled.await?;
            // Served as it is, not boxed again: no allocation per request for the count.
            Ok::<_, Infallible>(response.map(|body| Counted {
                body,
                _in_flight: in_flight,
            }))
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .keep_alive(true)
        // A client may shut down its sending side once its request is out and still
        // read the answer. It also keeps hyper from reading the socket (and taking a
        // fresh 8 KiB buffer) each time an invocation yields before its response.
        .half_close(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        // The connection first: it is what wakes this task, request after request.
        biased;
        result = conn.as_mut() => result,
        () = stopping(&mut shutdown) => {
            // Finish the request in flight (if any), then close.
            conn.as_mut().graceful_shutdown();
            if requests.load(Ordering::Relaxed) > 0 {
                conn.await
            } else {
                // Nothing in flight: the connection is idle on keep-alive, or its
                // client has sent part of a head or nothing at all. hyper closes only
                // the first by itself and would keep the others open until their head
                // came (up to the header timeout, longer than the drain). One more
                // poll lets it write out what it holds, and serve a head that has just
                // become whole; what is still waiting for a head is closed now.
                match conn.as_mut().now_or_never() {
                    Some(result) => result,
                    None if requests.load(Ordering::Relaxed) == 0 => {
                        tracing::debug!(%peer, "shutting down: closed a connection with no request in flight");
                        Ok(())
                    }
                    None => conn.await,
                }
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// One request of a connection, from its head to the end of its response.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(requests: &Arc<AtomicUsize>) -> Self {
        requests.fetch_add(1, Ordering::Relaxed);
        Self(requests.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request in flight until hyper has taken all of it
/// (or dropped it): a streamed response still being written is a request shutdown
/// waits for.
struct Counted {
    body: ResponseBody,
    _in_flight: InFlight,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Completes once the server starts shutting down.
pub(crate) async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await.
    let _ = shutdown.wait_for(|&stopping| stopping).await.map(drop);
}

/// Answers a connection over the limits with 503 and closes it.
async fn refuse(mut stream: tokio::net::TcpStream, refused: limits::Refused) {
    use tokio::io::AsyncWriteExt;
    let body = format!("{refused}\n");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        stream.write_all(response.as_bytes()),
    )
    .await;
    let _ = stream.shutdown().await;
}
