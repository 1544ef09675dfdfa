//! One HTTP request: check its head, route it, read its body, run the function,
//! answer.
//!
//! The body is read whole (up to the limit, within its deadlines) before the request
//! asks for an invocation slot: a slot is a wasm instance, and a client trickling
//! its body must not hold one while it does.

use super::limits::BodyHold;
use super::response::text;
use super::router::RouteMatch;
use super::{App, Connection, Generation};
use crate::abi::http_event::{query_params, HttpEvent, HttpLimits, ResponseBody, MAX_QUERY_PARAMS};
use crate::abi::EventData;
use crate::runtime::invoke::InvokeError;
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONNECTION, HOST, ORIGIN, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode, Version};
use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Answers a request on `--broker-listen`'s listener: the broker protocol at `/`, for the
/// project's own channels (not an application's); nothing else is served there.
fn broker_listener(
    app: Arc<App>,
    connection: Arc<Connection>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    if req.uri().path() != "/" {
        return text(
            StatusCode::NOT_FOUND,
            "this listener serves the broker protocol at / only (ws://HOST:PORT/)\n".into(),
        );
    }
    let scope = app.hub().scopes.index_of(None);
    super::broker_protocol::handle(app, connection, req, scope)
}

/// Header naming why Wisp, not the function, produced an error response.
pub const WISP_ERROR_HEADER: &str = "x-wisp-error";

pub async fn handle(
    app: Arc<App>,
    connection: Arc<Connection>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let access = app
        .config
        .access_log
        .then(|| super::access::Request::begin(req.method(), req.uri().path()));
    let metrics = crate::metrics::get().map(|metrics| (metrics, std::time::Instant::now()));
    let peer = connection.peer;
    let (response, function) = answer(app, connection, req).await;
    if let Some((metrics, started)) = metrics {
        let status = response.status().as_u16();
        metrics.request(function.as_deref(), status, started.elapsed());
    }
    if let Some(access) = access {
        access.end(peer, response.status(), function.as_deref());
    }
    Ok(response)
}

/// The response to `req`, and the function that made it, if one did.
async fn answer(
    app: Arc<App>,
    connection: Arc<Connection>,
    req: Request<Incoming>,
) -> (Response<ResponseBody>, Option<Arc<str>>) {
    let host = match routing_host(&req) {
        Ok(host) => host,
        Err(problem) => {
            tracing::warn!(
                peer = %connection.peer,
                path = %req.uri().path().escape_debug(),
                problem,
                "bad request head"
            );
            let response = text(StatusCode::BAD_REQUEST, format!("bad request: {problem}\n"));
            return (closing(response), None);
        }
    };
    if connection.listener == super::Listener::Broker {
        return (broker_listener(app, connection, req), None);
    }
    if let super::Listener::Redirect { port } = connection.listener {
        return (super::tls::redirect::handle(req.uri(), host, port), None);
    }
    if req.uri().path().starts_with("/ws-") {
        return (super::websocket::handle(app, connection, req), None);
    }
    if req.uri().path() == super::health::PATH {
        return (super::health::handle(&app, req.method()), None);
    }
    if req.uri().path() == super::client_js::PATH {
        return (super::client_js::handle(req.method(), req.headers()), None);
    }
    // One deployment for the whole request: its route's index is into its functions.
    let generation = app.generation();
    if req.method() == Method::OPTIONS {
        if let Some(response) = super::cors::preflight(&generation, &req, host) {
            return (response, None);
        }
    }
    let target = generation
        .router
        .find(req.method().as_str(), host, req.uri().path());
    let mut function = None;
    let response = match target {
        RouteMatch::Found(index) => {
            function = Some(generation.hub.deployment().functions[index].name.clone());
            match generation.cors[index].clone() {
                None => invoke(app, generation, &connection, index, req).await,
                Some(cors) => {
                    let origin = req.headers().get(ORIGIN).cloned();
                    let mut response = invoke(app, generation, &connection, index, req).await;
                    super::cors::answer(&cors, origin.as_ref(), &mut response);
                    response
                }
            }
        }
        RouteMatch::NotFound => not_found(&generation, &req).await,
        RouteMatch::MethodNotAllowed(allow) => {
            let mut response = text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} {} is not served; allowed: {}\n",
                    req.method(),
                    req.uri().path(),
                    allow.join(", ")
                ),
            );
            if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                response.headers_mut().insert(ALLOW, value);
            }
            response
        }
    };
    (response, function)
}

/// The host a request is routed by, as RFC 9112 section 3.2 has it: an HTTP/1.1
/// request must carry one Host header (HTTP/1.0 may carry none), never two, and an
/// absolute-form target's authority wins over it. Without either, the empty host
/// (which only routes bound to no domain match).
fn routing_host(req: &Request<Incoming>) -> Result<&str, &'static str> {
    let mut headers = req.headers().get_all(HOST).iter();
    let header = headers.next();
    if headers.next().is_some() {
        return Err("more than one Host header");
    }
    let header = match header {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| "a Host header that is not ASCII")?,
        ),
        None if req.version() == Version::HTTP_11 => return Err("no Host header"),
        None => None,
    };
    Ok(req
        .uri()
        .authority()
        .map(|authority| authority.as_str())
        .or(header)
        .unwrap_or(""))
}

/// A public file for GET and HEAD, else 404.
async fn not_found(generation: &Generation, req: &Request<Incoming>) -> Response<ResponseBody> {
    let path = req.uri().path();
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Some(public) = &generation.public {
            if let Some(response) =
                super::static_files::serve(public, req.method(), path, req.headers()).await
            {
                return response;
            }
        }
    }
    text(
        StatusCode::NOT_FOUND,
        format!("no function serves {path}\n"),
    )
}

async fn invoke(
    app: Arc<App>,
    generation: Arc<Generation>,
    connection: &Connection,
    index: usize,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let limits = app.config.http;
    let limit = limits.max_request_body;
    let hub = generation.hub.clone();
    let name = hub.deployment().functions[index].name.clone();
    let function = name.clone();
    if req.body().size_hint().lower() > limit {
        return too_large(limit);
    }
    if let Some(query) = req.uri().query() {
        let count = query_params(query);
        if count > MAX_QUERY_PARAMS {
            tracing::warn!(
                %function,
                peer = %connection.peer,
                count,
                max = MAX_QUERY_PARAMS,
                "too many query parameters"
            );
            return text(
                StatusCode::URI_TOO_LONG,
                format!("more than {MAX_QUERY_PARAMS} query parameters\n"),
            );
        }
    }
    let (parts, body) = req.into_parts();
    // The body's bytes count against the budget until the invocation is over.
    let mut hold = app.bodies.hold();
    let body = match read_body(body, &limits, &mut hold).await {
        Ok(body) => body,
        Err(refused) => {
            tracing::warn!(
                %function,
                peer = %connection.peer,
                %refused,
                "request body refused"
            );
            return refused.response();
        }
    };
    let (flush_tx, flush_rx) = oneshot::channel();
    let event = HttpEvent::new(
        parts,
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
        limits,
        flush_tx,
    );

    let run = async move {
        let _hold = hold;
        let deployment = hub.deployment();
        match deployment
            .invoke_http(hub.clone(), index, EventData::Http(Box::new(event)))
            .await
        {
            Ok(EventData::Http(http)) => {
                if http.body.too_large {
                    tracing::warn!(%function, limit, "request body over the limit");
                    return Some(too_large(limit));
                }
                http.response.finish().await
            }
            // An invocation hands back the event it was given.
            Ok(_) => Some(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error\n".into(),
            )),
            Err(error) => {
                match error {
                    // The guest's own bug, told once: not the host's error.
                    InvokeError::Panic(_) => tracing::warn!(target: "guest", %function,
                        "function {}", error.to_string().escape_debug()),
                    _ => tracing::error!(%function, %error, "function failed"),
                }
                Some(failure(&function, &error))
            }
        }
    };
    let response = respond(name, run, flush_rx).await;
    // Let the other connections' ready requests run before this response is written,
    // so that under load responses leave in bursts: a client woken by one response
    // finds the next ones already there, instead of going back to sleep and being
    // woken again for each (on loopback the writer pays for every wake-up). With
    // nothing else ready this returns at once.
    yield_to_queued().await;
    response
}

/// Why a request body was not read whole.
#[derive(Debug, thiserror::Error)]
enum BodyRefused {
    #[error("the body is over the limit of {0} bytes")]
    TooLarge(u64),
    #[error("no byte of the body came for {0:?}")]
    Stalled(Duration),
    #[error("the body took longer than {0:?}")]
    TooSlow(Duration),
    #[error("the body is malformed: {0}")]
    Malformed(hyper::Error),
    #[error(transparent)]
    Busy(#[from] super::limits::BudgetSpent),
}

impl BodyRefused {
    /// 413 past the size limit, 408 past a deadline, 400 for a body hyper could not
    /// parse (a bad chunk size, say). The connection closes after a 408 or 400: the
    /// rest of the body is unread, or unreadable.
    fn response(&self) -> Response<ResponseBody> {
        match self {
            BodyRefused::TooLarge(limit) => too_large(*limit),
            BodyRefused::Stalled(_) | BodyRefused::TooSlow(_) => closing(text(
                StatusCode::REQUEST_TIMEOUT,
                format!("request body not received: {self}\n"),
            )),
            BodyRefused::Malformed(_) => closing(text(
                StatusCode::BAD_REQUEST,
                "malformed request body\n".into(),
            )),
            BodyRefused::Busy(_) => {
                let mut response = closing(text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many request bodies in flight; retry shortly\n".into(),
                ));
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
        }
    }
}

/// Reads `body` whole: at most `max_request_body` bytes, all of them within
/// `request_body_time`, with no pause longer than `request_body_idle`. A body that
/// came in one piece (most do) is handed on without a copy.
async fn read_body(
    mut body: Incoming,
    limits: &HttpLimits,
    hold: &mut BodyHold,
) -> Result<Bytes, BodyRefused> {
    let deadline = Instant::now() + limits.request_body_time;
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    let mut received = 0u64;
    while !body.is_end_stream() {
        let wait = deadline.min(Instant::now() + limits.request_body_idle);
        let frame = match tokio::time::timeout_at(wait, body.frame()).await {
            Err(_) if Instant::now() >= deadline => {
                return Err(BodyRefused::TooSlow(limits.request_body_time))
            }
            Err(_) => return Err(BodyRefused::Stalled(limits.request_body_idle)),
            Ok(None) => break,
            Ok(Some(Err(error))) => return Err(BodyRefused::Malformed(error)),
            Ok(Some(Ok(frame))) => frame,
        };
        // Trailers are not passed on.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len() as u64;
        if received > limits.max_request_body {
            return Err(BodyRefused::TooLarge(limits.max_request_body));
        }
        hold.grow(data.len() as u64)?;
        match joined.as_mut() {
            None if first.is_empty() => first = data,
            None => {
                let mut all = BytesMut::with_capacity(first.len() + data.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&data);
                joined = Some(all);
            }
            Some(all) => all.extend_from_slice(&data),
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

/// Marks `response` as the connection's last.
fn closing(mut response: Response<ResponseBody>) -> Response<ResponseBody> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Host panics in invocations (a Wisp bug, never a guest's fault), since start.
static PANICS: AtomicU64 = AtomicU64::new(0);

/// How many invocations have panicked in the host since the process started.
pub fn invocation_panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

/// Runs the invocation `run` of function `name` to its response, or to the head it
/// flushed (`flush_rx`). A host bug must cost one request, not the connection: a panic
/// is logged and counted on either path, and answers 500 where the head is not out yet.
async fn respond(
    name: Arc<str>,
    run: impl Future<Output = Option<Response<ResponseBody>>> + Send + 'static,
    mut flush_rx: oneshot::Receiver<Response<ResponseBody>>,
) -> Response<ResponseBody> {
    let mut run = Box::pin(AssertUnwindSafe(run).catch_unwind());
    // The invocation runs right here, in the connection's task. Only if the guest
    // flushes does it move to a task of its own, so the head can go out while the
    // guest keeps writing.
    tokio::select! {
        biased;
        Ok(streamed) = &mut flush_rx => {
            tokio::spawn(async move {
                if let Err(panic) = run.await {
                    // The head is out: the client sees the body cut short.
                    panicked(&name, &*panic);
                }
            });
            streamed
        }
        finished = &mut run => match finished {
            Ok(Some(response)) => response,
            // `None` comes only after a flush: the head is waiting.
            Ok(None) => flush_rx
                .await
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response lost\n".into())),
            Err(panic) => {
                panicked(&name, &*panic);
                text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into())
            }
        },
    }
}

fn panicked(function: &str, panic: &(dyn Any + Send)) {
    PANICS.fetch_add(1, Ordering::Relaxed);
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(%function, panic = %message.escape_debug(), "an invocation panicked in the host");
}

/// Lets the tasks already queued on this worker run once before this one goes on.
/// Unlike `tokio::task::yield_now`, it does not first make the worker poll for I/O (a
/// system call that, below full load, finds nothing new); the runtime still polls for
/// I/O on its own schedule.
async fn yield_to_queued() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// The short answer a client gets when a function fails; the details are logged.
fn failure(function: &str, error: &InvokeError) -> Response<ResponseBody> {
    let (status, kind, message) = match error {
        InvokeError::Trap(_) | InvokeError::Panic(_) | InvokeError::Exit(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "trap",
            format!("function `{function}` failed\n"),
        ),
        InvokeError::Deadline(timeout) => (
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("function `{function}` timed out after {timeout:?}\n"),
        ),
        InvokeError::MemoryLimit(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "memory",
            format!("function `{function}` exceeded its memory limit\n"),
        ),
        InvokeError::Instantiate(_) | InvokeError::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many concurrent invocations; retry shortly\n".to_owned(),
        ),
    };
    let mut response = text(status, message);
    response
        .headers_mut()
        .insert(WISP_ERROR_HEADER, HeaderValue::from_static(kind));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn too_large(limit: u64) -> Response<ResponseBody> {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body exceeds the limit of {limit} bytes\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Wisp bug that panics while an invocation runs, before or after its flush.
    async fn panicking(
        flush: Option<oneshot::Sender<Response<ResponseBody>>>,
    ) -> Option<Response<ResponseBody>> {
        if let Some(flush) = flush {
            let _ = flush.send(text(StatusCode::OK, "head\n".into()));
            tokio::task::yield_now().await;
        }
        panic!("injected\nsecond line");
    }

    #[tokio::test]
    async fn a_panic_before_or_after_a_flush_is_logged_and_counted() {
        let before = invocation_panics();
        let (_flush_tx, flush_rx) = oneshot::channel();
        let response = respond("probe".into(), panicking(None), flush_rx).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(invocation_panics(), before + 1);

        let (flush_tx, flush_rx) = oneshot::channel();
        let response = respond("probe".into(), panicking(Some(flush_tx)), flush_rx).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "the flushed head went out"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while invocation_panics() < before + 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the flushed invocation's panic was lost"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}
