//! `GET /_wisp/client.js`: the JavaScript client for channels, served by Wisp itself, so
//! that a page needs no build step and no dependency to connect, reconnect and resume
//! (see the script's own header for its API).

use super::response::whole;
use crate::abi::http_event::ResponseBody;
use bytes::Bytes;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use hyper::{HeaderMap, Method, Response, StatusCode};
use std::sync::OnceLock;

/// Where the client is served.
pub const PATH: &str = crate::load::CLIENT_JS_PATH;

/// The script, as it is in the repository.
const SCRIPT: &str = include_str!("client.js");

/// Answers a request for [`PATH`]: the script for GET and HEAD (304 when the page has it).
pub fn handle(method: &Method, headers: &HeaderMap) -> Response<ResponseBody> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        let mut response = super::response::text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{PATH} takes GET\n"),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let etag = etag();
    let fresh = headers
        .get(IF_NONE_MATCH)
        .is_some_and(|tags| tags.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        let mut response = Response::new(whole(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else if *method == Method::HEAD {
        Response::new(whole(Bytes::new()))
    } else {
        Response::new(whole(Bytes::from_static(SCRIPT.as_bytes())))
    };
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    // Pages revalidate, so a new Wisp's client is picked up at once.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(ETAG, etag.clone());
    response
}

/// The script's entity tag: a hash of its text, made once.
fn etag() -> &'static HeaderValue {
    static ETAG: OnceLock<HeaderValue> = OnceLock::new();
    ETAG.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        SCRIPT.hash(&mut hasher);
        let tag = format!("\"{:016x}\"", hasher.finish());
        HeaderValue::from_str(&tag).expect("hex in quotes is a header value")
    })
}
