//! CORS for HTTP functions (`wisp.cors`, see [`crate::project::cors`]): Wisp answers
//! the browser's preflight `OPTIONS` itself, without running the function, and adds
//! `Access-Control-Allow-Origin` to the function's answers for the origins allowed.
//!
//! Nothing here runs for a function without settings, which is every function unless
//! the project asks: its requests go as they always have, and an `OPTIONS` request to
//! it gets what it always got (405, or the function that serves `OPTIONS`). A function
//! that sets `Access-Control-Allow-Origin` itself keeps its own headers: two would make
//! browsers refuse the answer.

use super::router::RouteMatch;
use super::Generation;
use crate::abi::http_event::ResponseBody;
use crate::project::cors::Cors;
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use hyper::{Request, Response, StatusCode};

/// The answer to `req` if it is a preflight (an `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`) for a route whose function has CORS settings:
/// 204, with the `Access-Control-Allow-*` headers when the origin is allowed and
/// without them when it is not (the browser then refuses the request). `None` for
/// anything else, which is routed as usual.
pub fn preflight(
    app: &Generation,
    req: &Request<Incoming>,
    host: &str,
) -> Option<Response<ResponseBody>> {
    let asked = req.headers();
    let origin = asked.get(ORIGIN)?;
    let method = asked.get(ACCESS_CONTROL_REQUEST_METHOD)?.to_str().ok()?;
    let RouteMatch::Found(index) = app.router.find(method, host, req.uri().path()) else {
        return None;
    };
    let cors = app.cors.get(index)?.as_deref()?;
    let mut response = Response::new(ResponseBody::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    // What the answer depends on, for caches between the browser and Wisp.
    headers.insert(
        VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ),
    );
    if !cors.allows(origin.as_bytes()) {
        tracing::debug!(origin = %String::from_utf8_lossy(origin.as_bytes()).escape_debug(),
            path = %req.uri().path().escape_debug(), "CORS preflight from an origin not allowed");
        return Some(response);
    }
    allow_origin(headers, cors, origin);
    let methods = match cors.methods.as_slice() {
        [] => HeaderValue::from_str(method).ok(),
        methods => HeaderValue::from_str(&methods.join(", ")).ok(),
    };
    if let Some(methods) = methods {
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, methods);
    }
    let allowed_headers = match cors.headers.as_slice() {
        [] => asked.get(ACCESS_CONTROL_REQUEST_HEADERS).cloned(),
        names => HeaderValue::from_str(&names.join(", ")).ok(),
    };
    if let Some(names) = allowed_headers {
        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, names);
    }
    headers.insert(
        ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(cors.max_age.as_secs()),
    );
    Some(response)
}

/// Adds to a function's `response` what `cors` allows a page from `origin` (the
/// request's `Origin`, if it had one).
pub fn answer(cors: &Cors, origin: Option<&HeaderValue>, response: &mut Response<ResponseBody>) {
    let headers = response.headers_mut();
    if headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
        return;
    }
    if cors.origins.is_some() || cors.credentials {
        // The answer names the origin it is for, so caches must tell origins apart.
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
    let Some(origin) = origin.filter(|origin| cors.allows(origin.as_bytes())) else {
        return;
    };
    allow_origin(headers, cors, origin);
    if !cors.expose_headers.is_empty() {
        if let Ok(names) = HeaderValue::from_str(&cors.expose_headers.join(", ")) {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, names);
        }
    }
}

/// `Access-Control-Allow-Origin` for an allowed `origin`: `*` when any origin may and
/// no credentials go with it, else the origin itself (browsers take no list), and
/// `Access-Control-Allow-Credentials` when they do.
fn allow_origin(headers: &mut HeaderMap, cors: &Cors, origin: &HeaderValue) {
    let value = match (&cors.origins, cors.credentials) {
        (None, false) => HeaderValue::from_static("*"),
        _ => origin.clone(),
    };
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
    if cors.credentials {
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}
