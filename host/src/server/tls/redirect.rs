//! `--redirect-http`'s listener: every request, whatever its method or path, is
//! answered 308 (Permanent Redirect, which keeps the method and body) to the same
//! host and path over `https://`, on the main listener's port. Nothing else is
//! served there.

use super::super::response::text;
use crate::abi::http_event::ResponseBody;
use hyper::header::{HeaderValue, LOCATION};
use hyper::http::uri::Authority;
use hyper::{Response, StatusCode, Uri};

/// The port `https://` URLs leave out.
const HTTPS_PORT: u16 = 443;

/// Answers a request for `uri` to `host` (its Host header, or the target's authority)
/// with a redirect to HTTPS on `port`.
pub fn handle(uri: &Uri, host: &str, port: u16) -> Response<ResponseBody> {
    let Some(location) = location(uri, host, port) else {
        return text(
            StatusCode::BAD_REQUEST,
            "a redirect to HTTPS needs the request's host: send a Host header\n".into(),
        );
    };
    let Ok(value) = HeaderValue::from_str(&location) else {
        return text(StatusCode::BAD_REQUEST, "bad request target\n".into());
    };
    let mut response = text(StatusCode::PERMANENT_REDIRECT, format!("{location}\n"));
    response.headers_mut().insert(LOCATION, value);
    response
}

/// `https://<host>[:port]<path and query>`, or `None` without a host.
fn location(uri: &Uri, host: &str, port: u16) -> Option<String> {
    let authority: Authority = host.parse().ok()?;
    let host = authority.host();
    if host.is_empty() {
        return None;
    }
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    // An absolute-form target's path may be empty (`http://example.com`).
    let path = if path.starts_with('/') { path } else { "/" };
    Some(match port {
        HTTPS_PORT => format!("https://{host}{path}"),
        port => format!("https://{host}:{port}{path}"),
    })
}

#[cfg(test)]
mod tests {
    use super::location;

    #[test]
    fn the_location_keeps_host_path_and_query_and_takes_the_https_port() {
        let uri = "/a/b?c=d&e".parse().unwrap();
        let at = |host, port| location(&uri, host, port);
        assert_eq!(
            at("example.com:8080", 8443).as_deref(),
            Some("https://example.com:8443/a/b?c=d&e")
        );
        assert_eq!(
            at("example.com", 443).as_deref(),
            Some("https://example.com/a/b?c=d&e")
        );
        assert_eq!(
            at("[::1]:80", 8443).as_deref(),
            Some("https://[::1]:8443/a/b?c=d&e")
        );
        assert_eq!(at("", 443), None);
        assert_eq!(at("a b", 443), None);
        let absolute = "http://example.com".parse().unwrap();
        assert_eq!(
            location(&absolute, "example.com", 443).as_deref(),
            Some("https://example.com/")
        );
    }
}
