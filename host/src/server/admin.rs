//! The admin listener (`serve --admin-listen ADDR`): `/metrics` in the Prometheus text
//! format, and the console at `/` with what it reads:
//! - `GET /api/overview`: the deployment's functions and routes, messaging resources, and
//!   the channels with WebSocket clients on this node (how many each);
//! - `GET /api/recent`: the last invocations (function, outcome, milliseconds) and the
//!   last failures;
//! - `GET /api/tail?channel=NAME` (WebSocket): the channel's messages as they are
//!   published, each a text frame (binary ones in base64), at most [`TAIL_QUEUE`] behind
//!   (past it, messages are skipped and a `…N skipped` frame says so).
//!
//! Nothing of it is on the main listener. With `--admin-token`, every path but
//! `/metrics` needs the token, as `?token=` or `Authorization: Bearer`; `/metrics`
//! needs it too unless `--admin-metrics-open` (scrapers that cannot send headers).

use super::App;
use crate::abi::http_event::ResponseBody;
use crate::messaging::broker::{Reach, Sink, SinkId};
use crate::messaging::Message;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message as Frame;

/// Messages a console's tail may fall behind by before it skips.
pub const TAIL_QUEUE: usize = 256;

/// How the admin listener is guarded.
#[derive(Clone, Debug, Default)]
pub struct AdminSettings {
    /// Needed for the console and its API (and `/metrics` unless `metrics_open`).
    pub token: Option<String>,
    /// `/metrics` without the token.
    pub metrics_open: bool,
}

/// Serves the admin listener until the server shuts down.
pub async fn serve(listener: TcpListener, app: Arc<App>, settings: AdminSettings) {
    let settings = Arc::new(settings);
    let mut shutdown = app.shutdown.subscribe();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "admin listener: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = super::stopping(&mut shutdown) => return,
        };
        let (app, settings) = (app.clone(), settings.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (app, settings) = (app.clone(), settings.clone());
                async move { Ok::<_, std::convert::Infallible>(handle(&app, &settings, req)) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(super::HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "admin connection ended with an error");
            }
        });
    }
}

fn handle(
    app: &Arc<App>,
    settings: &AdminSettings,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let path = req.uri().path();
    let open = path == "/metrics" && settings.metrics_open;
    if !open && !allowed(settings, &req) {
        return text(
            StatusCode::UNAUTHORIZED,
            "the admin listener needs its token: ?token= or Authorization: Bearer\n",
        );
    }
    if req.method() != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "the admin listener answers GET only\n",
        );
    }
    match path {
        "/metrics" => metrics(app),
        "/" => reply(
            StatusCode::OK,
            "text/html; charset=utf-8",
            CONSOLE.as_bytes().to_vec(),
        ),
        "/api/overview" => json(&overview(app)),
        "/api/recent" => json(&recent()),
        "/api/tail" => tail(app, req),
        _ => text(
            StatusCode::NOT_FOUND,
            "not an admin path: /, /metrics, /api/overview, /api/recent, /api/tail\n",
        ),
    }
}

/// Whether `req` carries the token, if one is needed.
fn allowed(settings: &AdminSettings, req: &Request<Incoming>) -> bool {
    let Some(token) = &settings.token else {
        return true;
    };
    let from_header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let from_query = req.uri().query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "token")
            .map(|(_, value)| value.into_owned())
    });
    let given = from_header.map(str::to_owned).or(from_query);
    given.is_some_and(|given| same(given.as_bytes(), token.as_bytes()))
}

/// Compares in time that depends on the lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const CONSOLE: &str = include_str!("console.html");

fn metrics(app: &App) -> Response<ResponseBody> {
    let Some(metrics) = crate::metrics::get() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not being kept\n",
        );
    };
    metrics.link(app.hub().broker.cluster_link().as_str());
    let body = metrics.encode().into_bytes();
    reply(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        body,
    )
}

fn overview(app: &App) -> serde_json::Value {
    let generation = app.generation();
    let functions = &generation.hub.deployment().functions;
    let routes: Vec<_> = generation
        .router
        .routes()
        .into_iter()
        .map(|(method, path, host, target)| {
            serde_json::json!({"method": method, "path": path, "host": host, "function": functions[target].name.as_ref()})
        })
        .collect();
    let project = &generation.project;
    let listed: Vec<_> = project
        .functions
        .iter()
        .map(|f| {
            let trigger = match &f.trigger {
                crate::project::Trigger::Http { method, paths, .. } => format!("{method} {}", paths.join(", ")),
                crate::project::Trigger::PubSub { channel, .. } => format!("pubsub {channel}"),
                crate::project::Trigger::P2p { service, command } => format!("p2p {service}/{command} (not served)"),
            };
            serde_json::json!({"name": f.name, "application": f.application, "trigger": trigger, "timeout_ms": f.timeout.as_millis() as u64, "memory": f.memory})
        })
        .collect();
    let resources: Vec<_> = project
        .messaging
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name, "application": m.application, "match": m.matcher.pattern(),
                "websocket": m.websocket, "private": m.private, "presence": m.presence,
                "history": m.history.map(|h| h.size),
            })
        })
        .collect();
    let mut channels: Vec<_> = app
        .feeds
        .counts()
        .into_iter()
        .filter_map(|(topic, clients)| {
            let (_, channel) = topic.split_once('/')?;
            Some(serde_json::json!({"channel": channel, "subscribers": clients}))
        })
        .collect();
    channels.sort_by(|a, b| a["channel"].as_str().cmp(&b["channel"].as_str()));
    serde_json::json!({
        "project": project.name,
        "deployment": generation.number,
        "functions": listed,
        "routes": routes,
        "resources": resources,
        "channels": channels,
    })
}

fn recent() -> serde_json::Value {
    let (invocations, errors) = crate::metrics::get()
        .map(|m| m.recent())
        .unwrap_or_default();
    serde_json::json!({"invocations": invocations, "errors": errors})
}

/// A WebSocket of `?channel=`'s messages.
fn tail(app: &Arc<App>, req: Request<Incoming>) -> Response<ResponseBody> {
    let channel = req.uri().query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "channel")
            .map(|(_, value)| value.into_owned())
    });
    let Some(channel) = channel.filter(|c| !c.is_empty()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "name the channel: /api/tail?channel=NAME\n",
        );
    };
    let hub = app.hub();
    let scope = hub.scopes.get(0);
    if let Err(error) = scope.check(&channel, false) {
        return text(StatusCode::NOT_FOUND, format!("{error}\n"));
    }
    let Some(key) = req
        .headers()
        .get(hyper::header::SEC_WEBSOCKET_KEY)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
    else {
        return text(StatusCode::BAD_REQUEST, "/api/tail is a WebSocket\n");
    };
    let topic = scope.topic(&channel);
    let reach = scope.reach(&channel);
    let (app, shutdown) = (app.clone(), app.shutdown.subscribe());
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let io = TokioIo::new(upgraded);
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        follow(app, ws, topic, reach, shutdown).await;
    });
    super::websocket::switching_protocols(&key)
}

/// A console's tail, as the broker sees it.
struct Tail {
    id: u64,
    tx: tokio::sync::mpsc::Sender<Arc<Message>>,
    skipped: std::sync::atomic::AtomicU64,
}

impl Sink for Tail {
    fn id(&self) -> SinkId {
        SinkId::Socket(self.id)
    }

    fn deliver(&self, message: &Arc<Message>) {
        if self.tx.try_send(message.clone()).is_err() {
            self.skipped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

async fn follow<S>(
    app: Arc<App>,
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    topic: String,
    reach: Reach,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(TAIL_QUEUE);
    let tail = Arc::new(Tail {
        id: crate::messaging::broker::next_sink_id(),
        tx,
        skipped: Default::default(),
    });
    let broker = app.hub().broker.clone();
    broker.subscribe(&topic, tail.clone(), reach);
    loop {
        tokio::select! {
            message = rx.recv() => {
                let Some(message) = message else { break };
                let skipped = tail.skipped.swap(0, std::sync::atomic::Ordering::Relaxed);
                if skipped > 0 && ws.send(Frame::text(format!("…{skipped} skipped"))).await.is_err() {
                    break;
                }
                let frame = match std::str::from_utf8(&message.payload) {
                    Ok(text) => Frame::text(text),
                    Err(_) => {
                        use base64::Engine;
                        Frame::text(format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(&message.payload)))
                    }
                };
                if ws.send(frame).await.is_err() {
                    break;
                }
            }
            incoming = ws.next() => match incoming {
                Some(Ok(Frame::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            () = super::stopping(&mut shutdown) => break,
        }
    }
    broker.unsubscribe(&topic, SinkId::Socket(tail.id));
    let _ = ws.close(None).await;
}

fn json(value: &serde_json::Value) -> Response<ResponseBody> {
    reply(
        StatusCode::OK,
        "application/json",
        value.to_string().into_bytes(),
    )
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<ResponseBody> {
    super::response::text(status, body.into())
}

fn reply(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<ResponseBody> {
    let mut response = Response::new(super::response::whole(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}
