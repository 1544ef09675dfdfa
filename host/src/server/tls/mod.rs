//! HTTPS and WSS on the server's own listeners (`--tls-cert`, `--tls-key`), and the
//! plain-HTTP listener that sends browsers there (`--redirect-http`).
//!
//! # Layout
//! - [`certificates`]: the certificate and key, from PEM files, reloaded when they
//!   change.
//! - [`redirect`]: the 308 answers of `--redirect-http`'s listener.
//!
//! The handshake runs in the connection's own task, under its slot of the connection
//! limits and within [`HANDSHAKE_TIMEOUT`]; then the connection is served as a plain one
//! is, over the session. A WebSocket upgrade takes the session back from hyper (see
//! [`stream`](super::stream)). ALPN offers HTTP/1.1 only, which is all the server
//! speaks. A client that sends plain HTTP to a TLS port gets a plain 400 saying so.

pub mod certificates;
pub mod redirect;

use super::{App, Connection};
use certificates::{CertError, Certificates, TlsFiles};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// How long a client may take over its TLS handshake, from its first byte on, before
/// the connection closes. A handshake is one or two round trips; a client that holds
/// its slot without finishing one is a client trickling bytes, as with a request
/// head (see `HEADER_READ_TIMEOUT`), and lets it go sooner.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of a TLS record carrying a handshake message: every ClientHello
/// starts with it.
const HANDSHAKE_RECORD: u8 = 0x16;

/// What a plain HTTP request to a TLS port is told.
const PLAIN_ON_TLS: &str = "this port speaks HTTPS: use https:// (and wss:// for WebSockets)\n";

/// The server's TLS: its certificates and the rustls settings handshakes use.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    certificates: Arc<Certificates>,
}

impl Tls {
    /// TLS with the certificate and key in `files`, or what is wrong with them.
    pub fn load(files: TlsFiles) -> Result<Self, CertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certificates = Arc::new(Certificates::load(files, provider.clone())?);
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports rustls's default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(certificates.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificates,
        })
    }

    /// The certificate files, and the pair served now.
    pub fn certificates(&self) -> &Arc<Certificates> {
        &self.certificates
    }

    /// Starts the task that reloads the certificate files when they change.
    pub(super) fn start_reloading(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.certificates.clone().watch())
    }
}

/// Serves a connection accepted on a TLS listener: the handshake, then HTTP over it.
pub(super) async fn serve(app: Arc<App>, tls: Tls, stream: TcpStream, connection: Arc<Connection>) {
    let peer = connection.peer;
    let mut shutdown = app.shutdown.subscribe();
    let accepted = tokio::select! {
        accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&tls, stream)) => accepted,
        () = super::stopping(&mut shutdown) => return,
    };
    match accepted {
        Ok(Ok(Some(stream))) => super::serve_connection(app, stream, connection).await,
        Ok(Ok(None)) => tracing::debug!(%peer, "plain HTTP on the TLS port; answered 400"),
        // rustls's errors name what was wrong, never the bytes; escaped all the same.
        Ok(Err(error)) => {
            tracing::debug!(%peer, error = %error.to_string().escape_debug(), "TLS handshake failed")
        }
        Err(_) => tracing::debug!(%peer, timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake timed out"),
    }
}

/// The handshake, or `None` for a client that spoke plain HTTP (and was answered).
async fn handshake(
    tls: &Tls,
    mut stream: TcpStream,
) -> std::io::Result<Option<tokio_rustls::server::TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if first[0] != HANDSHAKE_RECORD && first[0].is_ascii_uppercase() {
        // A request line (`GET / HTTP/1.1`): say where to go rather than answer with
        // an alert no HTTP client shows.
        answer_plain(&mut stream).await;
        return Ok(None);
    }
    tls.acceptor.accept(stream).await.map(Some)
}

/// The most of a plain request read before it is answered, and read after, so that
/// closing with its bytes unread does not reset the connection under the answer.
const PLAIN_READ: usize = 16 << 10;

/// Answers a plain HTTP request with 400 and closes.
async fn answer_plain(stream: &mut TcpStream) {
    let mut head = vec![0u8; PLAIN_READ];
    let _ = stream.read(&mut head).await;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{PLAIN_ON_TLS}",
        PLAIN_ON_TLS.len()
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut rest = 0;
    while rest < PLAIN_READ {
        match stream.read(&mut head).await {
            Ok(0) | Err(_) => break,
            Ok(n) => rest += n,
        }
    }
}
