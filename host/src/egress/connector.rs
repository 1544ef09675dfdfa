//! The connector under the outbound HTTP client: every address it dials is checked
//! against the [`EgressPolicy`] after DNS resolution, so a name that resolves to a denied
//! address (`localhost`, a rebinding record) is refused as the literal address would be.
//!
//! Pooled connections were checked when they were dialled, under the same policy (each
//! policy has a pool of its own), so reusing one needs no second check.

use super::policy::EgressPolicy;
use hyper::Uri;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tower_service::Service;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

/// How long a TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The policy refused every address of `host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub host: String,
    /// The first address refused.
    pub addr: IpAddr,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "egress to {} ({}) is denied: not a public address; allow it with \
             `--egress-allow` or the function's `wisp.egress`",
            self.host.escape_debug(),
            self.addr
        )
    }
}

impl std::error::Error for Denied {}

/// Resolves with the system resolver, keeping only the addresses the policy permits.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted = permitted(&policy, &host, resolved)?;
            Ok(permitted.into_iter())
        })
    }
}

/// The addresses of `resolved` that `policy` permits for `host`; if none, the refusal.
fn permitted(
    policy: &EgressPolicy,
    host: &str,
    resolved: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, BoxError> {
    let first = resolved.first().map(SocketAddr::ip);
    let kept: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|addr| policy.permits(host, addr.ip()))
        .collect();
    match (kept.is_empty(), first) {
        (false, _) => Ok(kept),
        (true, Some(addr)) => Err(Box::new(Denied {
            host: host.to_owned(),
            addr,
        })),
        (true, None) => Err(format!("{} resolved to no address", host.escape_debug()).into()),
    }
}

/// Hyper's TCP connector with the policy applied to names (through [`GuardedResolver`])
/// and to literal addresses, which hyper dials without resolving.
#[derive(Clone)]
pub struct GuardedConnector {
    http: HttpConnector<GuardedResolver>,
    policy: Arc<EgressPolicy>,
}

impl GuardedConnector {
    pub fn new(policy: Arc<EgressPolicy>) -> Self {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            policy: policy.clone(),
        });
        // TLS sits above; this connector dials `https` URLs too.
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        Self { http, policy }
    }
}

impl Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let host = uri.host().unwrap_or_default();
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(addr) = literal.parse::<IpAddr>() {
            if !self.policy.permits(literal, addr) {
                let denied = Denied {
                    host: host.to_owned(),
                    addr,
                };
                return Box::pin(std::future::ready(Err(denied.into())));
            }
        }
        let connecting = self.http.call(uri);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

/// The refusal somewhere in `error`'s chain of sources, if the policy refused.
pub fn denial<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Denied> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(denied) = error.downcast_ref::<Denied>() {
            return Some(denied);
        }
        next = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|a| SocketAddr::new(a.parse().unwrap(), 0))
            .collect()
    }

    #[test]
    fn denied_addresses_are_dropped_and_all_denied_is_a_refusal() {
        let policy = EgressPolicy::default();
        let kept = permitted(&policy, "mixed", addrs(&["127.0.0.1", "1.1.1.1"])).unwrap();
        assert_eq!(kept, addrs(&["1.1.1.1"]));
        let error = permitted(&policy, "localhost", addrs(&["127.0.0.1", "::1"])).unwrap_err();
        let denied = denial(&*error).expect("a denial");
        assert_eq!(denied.host, "localhost");
        assert_eq!(denied.addr, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert!(permitted(&policy, "none", vec![]).is_err());
    }

    #[tokio::test]
    async fn a_literal_denied_address_is_refused_before_dialling() {
        let mut connector = GuardedConnector::new(Arc::default());
        for uri in [
            "http://127.0.0.1:9/",
            "http://[::1]:9/",
            "http://169.254.169.254/",
        ] {
            let error = connector.call(uri.parse().unwrap()).await.unwrap_err();
            assert!(denial(&*error).is_some(), "{uri}: {error}");
        }
    }
}
