//! A small HTTP server for guests' outbound calls to reach: real hyper, on a loopback
//! address of the test's choosing, port 0.
//!
//! | path | answer |
//! |---|---|
//! | `/hello` | `hello`, `Content-Type: text/plain`, `X-Upstream: yes` |
//! | `/echo` | `method=`, `x-from=`, `x-compat=`, `content-length=`, `chunked=` lines, then `body=<body>` |
//! | `/status/<n>` | status n, body `status <n>` |
//! | `/redirect?to=<url>` | 302 to the URL |
//! | `/loop` | 302 to itself |
//! | `/big/<n>` | n bytes of `x` with a `Content-Length` |
//! | `/stream/<n>` | n bytes of `x` in 1 KiB chunks, no length |
//! | `/version` | the HTTP version the request came in, e.g. `HTTP/2.0` |
//!
//! [`Upstream::start_tls`] serves the same over TLS (HTTP/2 and HTTP/1.1 by ALPN) with a
//! self-signed certificate for `127.0.0.1` and `localhost`.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

type Body = BoxBody<Bytes, Infallible>;

/// A running upstream; it stops with the test's runtime.
pub struct Upstream {
    pub addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    /// The TLS server's certificate (DER), for the client to trust.
    pub certificate: Option<Vec<u8>>,
}

impl Upstream {
    /// Serves on `ip`, port 0.
    pub async fn start(ip: &str) -> Self {
        let ip: IpAddr = ip.parse().expect("an address");
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("binding the upstream");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        });
        Self {
            addr,
            scheme: "http",
            certificate: None,
        }
    }

    /// Serves over TLS on `ip`, port 0.
    pub async fn start_tls(ip: &str) -> Self {
        let ip: IpAddr = ip.parse().expect("an address");
        let made = rcgen::generate_simple_self_signed(vec![ip.to_string(), "localhost".into()])
            .expect("a self-signed certificate");
        let certificate = made.cert.der().to_vec();
        let key =
            tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(made.key_pair.serialize_der())
                .expect("the key in DER");
        let provider = tokio_rustls::rustls::crypto::ring::default_provider();
        let mut config =
            tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(provider))
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_no_client_auth()
                .with_single_cert(vec![certificate.clone().into()], key)
                .expect("a server certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("binding the upstream");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        serve(tls).await;
                    }
                });
            }
        });
        Self {
            addr,
            scheme: "https",
            certificate: Some(certificate),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }
}

async fn serve<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(answer);
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

fn full(status: u16, text: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(text.into()).boxed());
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("a status");
    response
}

async fn answer(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    };
    let response = match path.as_str() {
        "/hello" => {
            let mut response = full(200, "hello");
            let headers = response.headers_mut();
            headers.insert("content-type", "text/plain".parse().unwrap());
            headers.insert("x-upstream", "yes".parse().unwrap());
            response
        }
        "/echo" => {
            let head = format!(
                "method={}\nx-from={}\nx-compat={}\ncontent-length={}\nchunked={}\n",
                request.method(),
                header("x-from"),
                header("x-compat"),
                header("content-length"),
                header("transfer-encoding").contains("chunked"),
            );
            let body = request.into_body().collect().await.map(|b| b.to_bytes());
            let body = body.unwrap_or_default();
            full(
                200,
                format!("{head}body={}", String::from_utf8_lossy(&body)),
            )
        }
        "/redirect" => {
            let to = query.strip_prefix("to=").unwrap_or_default();
            let to: String = form_decode(to);
            let mut response = full(302, "");
            response
                .headers_mut()
                .insert("location", to.parse().unwrap());
            response
        }
        "/version" => full(200, format!("{:?}", request.version())),
        "/loop" => {
            let mut response = full(302, "");
            response
                .headers_mut()
                .insert("location", "/loop".parse().unwrap());
            response
        }
        _ => {
            let number = |prefix: &str| path.strip_prefix(prefix)?.parse::<usize>().ok();
            if let Some(status) = number("/status/") {
                full(status as u16, format!("status {status}"))
            } else if let Some(n) = number("/big/") {
                full(200, vec![b'x'; n])
            } else if let Some(n) = number("/stream/") {
                let chunks = (0..n.div_ceil(1024)).map(move |i| {
                    let len = 1024.min(n - i * 1024);
                    Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; len])))
                });
                let stream = futures_util::stream::iter(chunks);
                Response::new(BodyExt::boxed(StreamBody::new(stream)))
            } else {
                full(404, "no such path")
            }
        }
    };
    Ok(response)
}

/// Undoes `%XX` escapes (enough for the URLs tests pass).
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
