//! The network side: one listener, HTTP/1.1 with keep-alive, functions by route.
//!
//! # Layout
//! - [`router`]: method + path + Host → function.
//! - [`http`]: one request → one invocation → one response.
//! - [`websocket`]: the WebSocket bridge to channels.
//! - [`static_files`]: the project's `public/` folder.

pub mod http;
pub mod router;
pub mod static_files;
pub mod websocket;

use crate::load::Loaded;
use crate::messaging::broker::Broker;
use crate::messaging::Hub;
use crate::runtime::http_event::HttpLimits;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use router::Router;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a client may take to send a request head before the connection closes.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Server settings, each with a default a small deployment can keep.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub http: HttpLimits,
    pub websocket: websocket::WebSocketLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http: HttpLimits {
                // Function payloads are JSON and form posts; 4 MiB leaves room for
                // uploads without letting one client hold much memory.
                max_request_body: 4 << 20,
                max_response_body: 16 << 20,
            },
            websocket: websocket::WebSocketLimits::default(),
        }
    }
}

/// Everything a request handler needs, shared by all connections.
pub struct App {
    /// Messaging, and through it the deployed functions.
    pub hub: Arc<Hub>,
    pub router: Router,
    pub config: ServerConfig,
    /// The project's `public/` folder, if it has one.
    pub public: Option<PathBuf>,
}

impl App {
    /// Wires a loaded project to `broker` and subscribes its pub/sub functions.
    /// Must run inside the tokio runtime (subscriptions start tasks).
    pub fn start(loaded: Loaded, broker: Arc<dyn Broker>, config: ServerConfig) -> Arc<Self> {
        let public = Some(loaded.project.root.join("public")).filter(|p| p.is_dir());
        let hub = Hub::new(loaded.scopes, broker, Arc::new(loaded.deployment));
        for (function, channel) in &loaded.triggers {
            if let Err(error) = hub.subscribe_function(*function, channel) {
                // Load already checked every trigger channel against the resources.
                tracing::error!(%channel, %error, "subscribing a trigger failed");
            }
        }
        Arc::new(Self {
            hub,
            router: loaded.router,
            config,
            public,
        })
    }
}

/// Accepts connections on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => {
                tracing::info!("shutting down");
                return Ok(());
            }
        };
        // Small responses must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| http::handle(app.clone(), req));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(error) = conn.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}
