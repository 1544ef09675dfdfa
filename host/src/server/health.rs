//! `GET /_wisp/health`: is this node up, and is its cluster link.
//!
//! The one built-in endpoint. It answers before any function route, reads no
//! state beyond the cluster link, and says nothing a stranger should not know:
//! `{"status":"ok","cluster":"off"|"connected"|"disconnected"}`. A node whose
//! cluster link is down still answers `ok`: it keeps serving HTTP and local
//! delivery, and reconnects on its own.

use super::response::text;
use super::App;
use crate::abi::http_event::ResponseBody;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};

/// The path of the health endpoint.
pub const PATH: &str = crate::load::HEALTH_PATH;

/// Answers a request for [`PATH`].
pub fn handle(app: &App, method: &Method) -> Response<ResponseBody> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{PATH} takes GET\n"),
        );
        response
            .headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let cluster = app.hub().broker.cluster_link().as_str();
    let mut response = text(
        StatusCode::OK,
        format!("{{\"status\":\"ok\",\"cluster\":\"{cluster}\"}}\n"),
    );
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
