//! The outbound HTTP client guests' requests go through: hyper's pooled client over
//! rustls (HTTP/1.1, and HTTP/2 where the server offers it by ALPN), dialling through the
//! [`GuardedConnector`], following redirects itself so that each hop is dialled (and so
//! checked) again.
//!
//! One [`Client`], with one connection pool, per distinct egress policy: every function
//! that has no `wisp.egress` of its own shares the serve settings' client, and a function
//! with its own list gets a pool no other function can reuse connections from.

use super::connector::{denial, BoxError, Denied, GuardedConnector};
use super::policy::{Allow, EgressPolicy};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Redirects one request may follow.
pub const MAX_REDIRECTS: usize = 10;

/// How long an idle pooled connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Idle connections kept per host.
const IDLE_PER_HOST: usize = 8;

/// The serve settings for guests' outbound HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressSettings {
    /// Opened for every function, beyond public addresses (`--egress-allow`).
    pub allow: Vec<Allow>,
    /// The largest response body a guest may read, in bytes.
    pub max_response: u64,
    /// Certificates (DER) trusted besides Mozilla's roots (`--egress-ca`): a private CA, or
    /// a test server's own certificate.
    pub extra_roots: Vec<Vec<u8>>,
}

/// The default response body limit: 16 MiB.
pub const DEFAULT_MAX_RESPONSE: u64 = 16 << 20;

impl Default for EgressSettings {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            max_response: DEFAULT_MAX_RESPONSE,
            extra_roots: Vec::new(),
        }
    }
}

/// A request as a guest built it.
#[derive(Clone, Debug)]
pub struct Outbound {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a request got no response. A guest sees errno 13 for each; the host logs this.
#[derive(Debug)]
pub enum Failure {
    Denied(Denied),
    /// More than [`MAX_REDIRECTS`].
    Redirects,
    /// A redirect to a URL that is not `http` or `https`, or not a URL.
    BadRedirect(String),
    /// The function's deadline came first.
    Timeout,
    /// The response declares a body larger than the limit.
    TooLarge {
        declared: u64,
        limit: u64,
    },
    /// Connecting, TLS, or the exchange failed.
    Transport(BoxError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Denied(denied) => denied.fmt(f),
            Failure::Redirects => write!(f, "more than {MAX_REDIRECTS} redirects"),
            Failure::BadRedirect(to) => write!(f, "a redirect to `{}`", to.escape_debug()),
            Failure::Timeout => f.write_str("the function's deadline passed"),
            Failure::TooLarge { declared, limit } => write!(
                f,
                "the response declares {declared} bytes, over the {limit}-byte limit \
                 (`--egress-max-response`)"
            ),
            Failure::Transport(error) => {
                write!(f, "{error}")?;
                let mut source = error.source();
                while let Some(error) = source {
                    write!(f, ": {error}")?;
                    source = error.source();
                }
                Ok(())
            }
        }
    }
}

type Pool = legacy::Client<HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// A connection pool under one egress policy.
pub struct Client {
    pool: Pool,
    /// The largest response body a guest may read.
    pub max_response: u64,
}

impl Client {
    fn new(policy: EgressPolicy, tls: rustls::ClientConfig, max_response: u64) -> Self {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(GuardedConnector::new(Arc::new(policy)));
        let pool = legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .build(https);
        Self { pool, max_response }
    }

    /// Sends `request`, following redirects, until `deadline`.
    pub async fn send(
        &self,
        request: Outbound,
        deadline: tokio::time::Instant,
    ) -> Result<Response<Incoming>, Failure> {
        let response = tokio::time::timeout_at(deadline, self.follow(request))
            .await
            .unwrap_or(Err(Failure::Timeout))?;
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        match declared {
            Some(declared) if declared > self.max_response => Err(Failure::TooLarge {
                declared,
                limit: self.max_response,
            }),
            _ => Ok(response),
        }
    }

    async fn follow(&self, mut request: Outbound) -> Result<Response<Incoming>, Failure> {
        for _ in 0..=MAX_REDIRECTS {
            let mut sent = Request::new(Full::new(request.body.clone()));
            *sent.method_mut() = request.method.clone();
            *sent.uri_mut() = request.uri.clone();
            *sent.headers_mut() = request.headers.clone();
            let response = self
                .pool
                .request(sent)
                .await
                .map_err(|error| match denial(&error) {
                    Some(denied) => Failure::Denied(denied.clone()),
                    None => Failure::Transport(Box::new(error)),
                })?;
            let Some(next) = redirect(&request.uri, &response)? else {
                return Ok(response);
            };
            redirect_request(&mut request, response.status(), next);
        }
        Err(Failure::Redirects)
    }
}

/// Where `response` redirects to, if it is a redirect with a `Location`.
fn redirect(from: &Uri, response: &Response<Incoming>) -> Result<Option<Uri>, Failure> {
    let status = response.status();
    let redirects = [301, 302, 303, 307, 308].contains(&status.as_u16());
    let location = response.headers().get(header::LOCATION);
    let (true, Some(location)) = (redirects, location) else {
        return Ok(None);
    };
    let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
    let base =
        url::Url::parse(&from.to_string()).map_err(|_| Failure::BadRedirect(location.clone()))?;
    let next = base
        .join(&location)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .and_then(|url| url.as_str().parse::<Uri>().ok())
        .ok_or(Failure::BadRedirect(location))?;
    Ok(Some(next))
}

/// Turns `request` into the one a redirect with `status` to `next` asks for, as browsers
/// and Go do: 303 (and 301/302 after a POST) becomes a GET without a body; credentials
/// are not sent to another origin.
fn redirect_request(request: &mut Outbound, status: StatusCode, next: Uri) {
    let to_get = status == StatusCode::SEE_OTHER && request.method != Method::HEAD
        || matches!(status.as_u16(), 301 | 302) && request.method == Method::POST;
    if to_get {
        request.method = Method::GET;
        request.body = Bytes::new();
        for name in [
            header::CONTENT_LENGTH,
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::TRANSFER_ENCODING,
        ] {
            request.headers.remove(name);
        }
    }
    let same_origin =
        request.uri.scheme() == next.scheme() && request.uri.authority() == next.authority();
    if !same_origin {
        for name in [
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ] {
            request.headers.remove(name);
        }
    }
    request.headers.remove(header::HOST);
    request.uri = next;
}

/// The clients of one server: one per distinct policy, made on first use.
pub struct Clients {
    settings: EgressSettings,
    tls: rustls::ClientConfig,
    made: Mutex<HashMap<EgressPolicy, Arc<Client>>>,
}

impl Clients {
    pub fn new(settings: EgressSettings) -> Self {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for der in &settings.extra_roots {
            let cert = rustls::pki_types::CertificateDer::from(der.clone());
            if let Err(error) = roots.add(cert) {
                // The flag's reader already parsed each one; this is a certificate
                // rustls will not take as a root.
                tracing::warn!(%error, "an --egress-ca certificate is not usable as a root; skipped");
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Self {
            settings,
            tls,
            made: Mutex::default(),
        }
    }

    /// The client for a function whose own allow list is `own`.
    pub fn for_function(&self, own: &[Allow]) -> Arc<Client> {
        let mut allow = self.settings.allow.clone();
        allow.extend(
            own.iter()
                .filter(|a| !self.settings.allow.contains(a))
                .cloned(),
        );
        let policy = EgressPolicy { allow };
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        made.entry(policy.clone())
            .or_insert_with(|| {
                Arc::new(Client::new(
                    policy,
                    self.tls.clone(),
                    self.settings.max_response,
                ))
            })
            .clone()
    }
}

/// The certificates of a PEM file, as DER, for [`EgressSettings::extra_roots`].
pub fn read_pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .map(|cert| cert.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("not a PEM certificate file: {error}"))?;
    if certs.is_empty() {
        return Err("no `BEGIN CERTIFICATE` block in it".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(method: Method, uri: &str) -> Outbound {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        Outbound {
            method,
            uri: uri.parse().unwrap(),
            headers,
            body: Bytes::from_static(b"body"),
        }
    }

    #[test]
    fn a_see_other_becomes_a_get_and_credentials_stay_on_their_origin() {
        let mut request = outbound(Method::POST, "http://a.example/form");
        redirect_request(
            &mut request,
            StatusCode::SEE_OTHER,
            "http://a.example/done".parse().unwrap(),
        );
        assert_eq!(request.method, Method::GET);
        assert!(request.body.is_empty());
        assert!(request.headers.get(header::CONTENT_TYPE).is_none());
        assert!(
            request.headers.get(header::AUTHORIZATION).is_some(),
            "same origin"
        );

        let mut request = outbound(Method::PUT, "http://a.example/x");
        redirect_request(
            &mut request,
            StatusCode::TEMPORARY_REDIRECT,
            "http://b.example/y".parse().unwrap(),
        );
        assert_eq!(request.method, Method::PUT, "307 keeps the method");
        assert_eq!(request.body, "body");
        assert!(
            request.headers.get(header::AUTHORIZATION).is_none(),
            "another origin"
        );
    }

    #[test]
    fn functions_with_the_same_list_share_a_client() {
        let clients = Clients::new(EgressSettings {
            allow: vec!["127.0.0.1".parse().unwrap()],
            ..Default::default()
        });
        let plain = clients.for_function(&[]);
        assert!(Arc::ptr_eq(&plain, &clients.for_function(&[])));
        let own = ["10.0.0.0/8".parse().unwrap()];
        let opened = clients.for_function(&own);
        assert!(!Arc::ptr_eq(&plain, &opened));
        assert!(Arc::ptr_eq(&opened, &clients.for_function(&own)));
        // Naming an entry the settings already open is the same policy.
        assert!(Arc::ptr_eq(
            &plain,
            &clients.for_function(&["127.0.0.1".parse().unwrap()])
        ));
    }
}
