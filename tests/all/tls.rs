//! HTTPS and WSS on one port (`--tls-cert`, `--tls-key`), with real rustls clients
//! trusting self-signed certificates made for each test: functions and channels over
//! TLS, plain HTTP to the TLS port, certificates replaced while the server runs, and
//! the `--redirect-http` listener.

use bytes::Bytes;
use futures_util::SinkExt;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use wisp::server::tls::certificates::TlsFiles;
use wisp::server::tls::Tls;
use wisp_e2e::{next_text, probe_project, raw_exchange, raw_get, ws_path, Listening, Server};

/// How long anything here may take: a handshake, a message, a reload (two looks a second
/// apart, then the load).
const WAIT: Duration = Duration::from_secs(10);

/// A self-signed certificate for `localhost` and 127.0.0.1, its subject's common name
/// `name`, with its key.
struct Cert {
    pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Cert {
    fn new(name: &str) -> Self {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("valid names");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().expect("a key pair");
        let cert = params.self_signed(&key).expect("a self-signed certificate");
        Self {
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// The certificate files of a server, in a folder of their own.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn with(cert: &Cert) -> Self {
        let files = Self {
            dir: tempfile::tempdir().expect("a temporary folder"),
        };
        files.write(&cert.pem, &cert.key_pem);
        files
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// Replaces the files as a renewal would: the certificate, then the key.
    fn write(&self, cert: &str, key: &str) {
        std::fs::write(self.cert(), cert).expect("writing the certificate");
        std::fs::write(self.key(), key).expect("writing the key");
    }

    fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.cert(),
            key: self.key(),
        }
    }

    fn tls(&self) -> Tls {
        Tls::load(self.tls_files()).expect("the test certificate loads")
    }
}

/// The probe project (`POST /publish`, channels `room/*`) with `GET /ok` answering `ok`.
fn project() -> wisp_e2e::Project {
    let p = probe_project();
    let ok = p.wat("ok", wisp_e2e::OK_WAT);
    p.http_function("ok", "GET", "/ok", "handler", &ok);
    p
}

async fn tls_server(project: &Path, files: &Files, redirect: bool) -> Server {
    let listening = Listening {
        tls: Some(files.tls()),
        redirect,
        ..Listening::default()
    };
    Server::start_listening(project, listening).await
}

/// A TLS connection to `addr` as `localhost`, trusting `roots` only, offering HTTP/1.1.
async fn connect(addr: SocketAddr, roots: &[&Cert]) -> std::io::Result<TlsStream<TcpStream>> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.der.clone()).expect("a valid root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("a server name");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("a handshake in time")
}

/// The certificate a connection was served.
fn served(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let (_, session) = stream.get_ref();
    session.peer_certificates().expect("a server certificate")[0].clone()
}

/// A response over TLS, read whole.
struct Reply {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: String,
}

/// One request over `stream`.
async fn request(stream: TlsStream<TcpStream>, method: Method, path: &str, body: &str) -> Reply {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("an HTTP/1.1 connection");
    tokio::spawn(connection);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("a valid request");
    let response = tokio::time::timeout(WAIT, sender.send_request(req))
        .await
        .expect("an answer in time")
        .expect("an answer");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("the body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// `GET path` over HTTPS trusting `roots`.
async fn get(addr: SocketAddr, roots: &[&Cert], path: &str) -> Reply {
    let stream = connect(addr, roots).await.expect("a TLS connection");
    request(stream, Method::GET, path, "").await
}

/// Publishes `body` on `channel` over HTTPS (the probe's `POST /publish`).
async fn publish(addr: SocketAddr, roots: &[&Cert], channel: &str, body: &str) {
    let stream = connect(addr, roots).await.expect("a TLS connection");
    let path = format!("/publish?channel={channel}");
    let reply = request(stream, Method::POST, &path, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// A WSS client of `channel`, and the certificate its connection was served.
async fn wss(addr: SocketAddr, roots: &[&Cert], channel: &str) -> (Wss, CertificateDer<'static>) {
    let stream = connect(addr, roots).await.expect("a TLS connection");
    let cert = served(&stream);
    let url = format!("wss://localhost:{}/{}", addr.port(), ws_path(channel));
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("a WebSocket over TLS");
    (ws, cert)
}

/// Waits until a new connection is served `cert`; panics after [`WAIT`].
async fn until_served(addr: SocketAddr, roots: &[&Cert], cert: &Cert) {
    let deadline = Instant::now() + WAIT;
    loop {
        let stream = connect(addr, roots).await.expect("a TLS connection");
        if served(&stream) == cert.der {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn https_and_wss_share_the_port() {
    let p = project();
    let cert = Cert::new("wisp test");
    let files = Files::with(&cert);
    let server = tls_server(p.path(), &files, false).await;
    let roots = [&cert];

    let stream = connect(server.addr, &roots).await.unwrap();
    assert_eq!(served(&stream), cert.der);
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let reply = request(stream, Method::GET, "/ok", "").await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ok"));

    // The browser client works out wss:// from an https:// page by itself.
    let script = get(server.addr, &roots, "/_wisp/client.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("\"wss://\""), "the client knows wss");

    let (mut alice, _) = wss(server.addr, &roots, "room/tls").await;
    let (mut bob, _) = wss(server.addr, &roots, "room/tls").await;
    publish(server.addr, &roots, "room/tls", "from https").await;
    for ws in [&mut alice, &mut bob] {
        assert_eq!(next_text(ws, WAIT).await.as_deref(), Some("from https"));
    }
    alice.send(Message::text("from alice")).await.unwrap();
    assert_eq!(
        next_text(&mut bob, WAIT).await.as_deref(),
        Some("from alice")
    );

    // A burst larger than the session holds for a socket: all of it, in order.
    let frames: Vec<String> = (0..400)
        .map(|i| format!("{i:04}{}", "x".repeat(2000)))
        .collect();
    for frame in &frames {
        alice.feed(Message::text(frame.clone())).await.unwrap();
    }
    alice.flush().await.unwrap();
    for frame in &frames {
        assert_eq!(next_text(&mut bob, WAIT).await.as_ref(), Some(frame));
    }
}

#[tokio::test]
async fn plain_http_to_the_tls_port_is_told_to_use_https_and_harms_nothing() {
    let p = project();
    let cert = Cert::new("wisp test");
    let files = Files::with(&cert);
    let server = tls_server(p.path(), &files, false).await;

    let (status, answer) = raw_get(server.addr, "/ok").await;
    assert_eq!(status, Some(400), "{answer}");
    assert!(answer.contains("use https://"), "{answer}");

    // Bytes that are neither HTTP nor TLS: the connection ends.
    let (status, _) = raw_exchange(server.addr, b"\x00\x01\x02 nonsense", WAIT).await;
    assert_eq!(status, None);

    // A client that does not trust the certificate fails its handshake, alone.
    let stranger = Cert::new("someone else");
    assert!(connect(server.addr, &[&stranger]).await.is_err());

    let reply = get(server.addr, &[&cert], "/ok").await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn a_replaced_certificate_reaches_new_connections_and_open_ones_stay() {
    let p = project();
    let (old, new) = (Cert::new("wisp old"), Cert::new("wisp new"));
    let files = Files::with(&old);
    let server = tls_server(p.path(), &files, false).await;
    let roots = [&old, &new];

    let (mut open, first) = wss(server.addr, &roots, "room/reload").await;
    assert_eq!(first, old.der);

    files.write(&new.pem, &new.key_pem);
    until_served(server.addr, &roots, &new).await;
    let reply = get(server.addr, &[&new], "/ok").await;
    assert_eq!(reply.status, StatusCode::OK);

    // The socket opened under the old certificate still works both ways.
    publish(server.addr, &roots, "room/reload", "after the swap").await;
    assert_eq!(
        next_text(&mut open, WAIT).await.as_deref(),
        Some("after the swap")
    );
    let (mut later, cert) = wss(server.addr, &roots, "room/reload").await;
    assert_eq!(cert, new.der);
    open.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        next_text(&mut later, WAIT).await.as_deref(),
        Some("still here")
    );
}

#[tokio::test]
async fn broken_replacements_keep_the_old_certificate() {
    let p = project();
    let (old, new) = (Cert::new("wisp old"), Cert::new("wisp new"));
    let files = Files::with(&old);
    let server = tls_server(p.path(), &files, false).await;
    let roots = [&old, &new];

    // Garbage, then a certificate with another's key: each is looked at, refused and
    // logged, and the old pair goes on being served.
    for (cert, key) in [
        ("not a certificate\n", old.key_pem.as_str()),
        (new.pem.as_str(), old.key_pem.as_str()),
    ] {
        files.write(cert, key);
        // Two looks a second apart, then the load.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let stream = connect(server.addr, &roots).await.unwrap();
        assert_eq!(served(&stream), old.der, "the old certificate is kept");
        let reply = request(stream, Method::GET, "/ok", "").await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    // Still watching: a good pair is taken.
    files.write(&new.pem, &new.key_pem);
    until_served(server.addr, &roots, &new).await;
}

#[tokio::test]
async fn the_redirect_listener_answers_308_to_https_on_the_main_port() {
    let p = project();
    let cert = Cert::new("wisp test");
    let files = Files::with(&cert);
    let server = tls_server(p.path(), &files, true).await;
    let redirect = server.redirect_addr.expect("a redirect listener");

    let request = "POST /publish?channel=room/a HTTP/1.1\r\nHost: example.com:8080\r\n\
                   Content-Length: 2\r\nConnection: close\r\n\r\nhi";
    let (status, answer) = raw_exchange(redirect, request.as_bytes(), WAIT).await;
    assert_eq!(status, Some(308), "{answer}");
    let location = format!(
        "location: https://example.com:{}/publish?channel=room/a\r\n",
        server.addr.port()
    );
    assert!(answer.to_lowercase().contains(&location), "{answer}");

    // Nothing is served there itself, functions or not.
    let (status, answer) = raw_get(redirect, "/ok").await;
    assert_eq!(status, Some(308), "{answer}");
    let reply = get(server.addr, &[&cert], "/ok").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.get("location").is_none());
}

#[tokio::test]
async fn unusable_certificate_files_are_refused_with_the_file_named() {
    let cert = Cert::new("wisp test");
    let other = Cert::new("wisp other");
    let files = Files::with(&cert);
    let refusal = |cert: &str, key: &str| {
        files.write(cert, key);
        match Tls::load(files.tls_files()) {
            Ok(_) => panic!("loaded a broken pair"),
            Err(error) => error.to_string(),
        }
    };
    let (cert_file, key_file) = (
        files.cert().display().to_string(),
        files.key().display().to_string(),
    );

    let message = refusal("not a certificate\n", &cert.key_pem);
    assert_eq!(
        message,
        format!("{cert_file}: no `BEGIN CERTIFICATE` block; --tls-cert takes the certificate (and its chain) in PEM")
    );
    let message = refusal(&cert.pem, &cert.pem);
    assert!(
        message.starts_with(&format!("{key_file}: no private key")),
        "{message}"
    );
    let message = refusal(&cert.pem, &other.key_pem);
    assert_eq!(
        message,
        format!("{key_file} is not the private key of the certificate in {cert_file}")
    );
    let truncated = &cert.pem[..cert.pem.len() / 2];
    let message = refusal(truncated, &cert.key_pem);
    assert!(message.starts_with(&format!("{cert_file}: ")), "{message}");

    let missing = TlsFiles {
        cert: files.dir.path().join("missing.pem"),
        key: files.key(),
    };
    let message = Tls::load(missing).err().expect("no such file").to_string();
    assert!(
        message.starts_with("cannot read ") && message.contains("missing.pem"),
        "{message}"
    );
}

#[tokio::test]
async fn a_handshake_left_unfinished_is_closed_after_its_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wisp::server::tls::HANDSHAKE_TIMEOUT;
    let p = project();
    let cert = Cert::new("wisp test");
    let files = Files::with(&cert);
    let server = tls_server(p.path(), &files, false).await;

    let started = Instant::now();
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    // The start of a TLS record, and nothing more.
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(HANDSHAKE_TIMEOUT + WAIT, stalled.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = started.elapsed();
    assert!(
        waited >= HANDSHAKE_TIMEOUT - Duration::from_millis(100),
        "{waited:?}"
    );

    let reply = get(server.addr, &[&cert], "/ok").await;
    assert_eq!(reply.status, StatusCode::OK);
}
