//! The network side: one listener, HTTP/1.1 with keep-alive, functions by route.
//!
//! # Layout
//! - [`router`]: method + path + Host → function.
//! - [`http`]: one request → one invocation → one response.

pub mod http;
pub mod router;

use crate::runtime::function::GuestFunction;
use crate::runtime::http_event::HttpLimits;
use crate::runtime::Runtime;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use router::Router;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a client may take to send a request head before the connection closes.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Server settings, each with a default a small deployment can keep.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub http: HttpLimits,
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
        }
    }
}

/// Everything a request handler needs, shared by all connections.
pub struct App {
    pub runtime: Runtime,
    pub router: Router,
    pub functions: Vec<Arc<GuestFunction>>,
    pub config: ServerConfig,
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
