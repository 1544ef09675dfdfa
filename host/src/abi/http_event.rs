//! The state of one HTTP event: the request a guest reads and the response it builds.
//!
//! The response is held in a buffer until the function returns or calls `Flush()`,
//! so a status set after writing still wins (Taubyte writes straight through and
//! loses it). After a flush the head is sent and later writes stream out on each
//! flush and at return.

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Body, Frame};
use hyper::header::{HeaderName, HeaderValue, LOCATION};
use hyper::{HeaderMap, Response, StatusCode};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use wisp_abi::Errno;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A request body as the runtime sees it (hyper's `Incoming` in the server).
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;
/// A response body: a buffer, or a stream once the guest has flushed.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// Size and time limits for one HTTP exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request body a guest may read; past it the client gets 413.
    pub max_request_body: u64,
    /// Largest response body a guest may write; past it writes fail with `HttpWrite`.
    pub max_response_body: u64,
    /// How long a client may take to send a whole request body; past it, 408. See
    /// [`REQUEST_BODY_TIME`].
    pub request_body_time: Duration,
    /// How long a client may go without sending a byte of its request body; past
    /// it, 408. See [`REQUEST_BODY_IDLE`].
    pub request_body_idle: Duration,
    /// Request bodies held in memory at once, in bytes, across all connections: a body
    /// is read whole before its function runs, so without this 10,000 connections could
    /// hold 10,000 bodies. Past it a request gets 503 and `Retry-After`.
    pub max_buffered_bodies: u64,
}

/// The default whole-body deadline. The body is read before the request takes an
/// invocation slot, so a client trickling its body holds only its connection, never
/// a wasm instance; this bounds how long it holds even that. 30 s lets a 4 MiB body
/// through at about 140 KiB/s, the same allowance the head gets.
pub const REQUEST_BODY_TIME: Duration = Duration::from_secs(30);

/// The default longest pause between two pieces of a request body: a client that
/// stops sending is let go long before the whole-body deadline.
pub const REQUEST_BODY_IDLE: Duration = Duration::from_secs(10);

/// Query parameters a request may carry; past it the client gets 414 and no
/// function runs. Form posts and API calls use tens; a thousand leaves room for
/// generated ones while a guest listing the names does bounded work.
pub const MAX_QUERY_PARAMS: usize = 1000;

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            // Function payloads are JSON and form posts; 4 MiB leaves room for
            // uploads without letting one client hold much memory.
            max_request_body: 4 << 20,
            max_response_body: 16 << 20,
            request_body_time: REQUEST_BODY_TIME,
            request_body_idle: REQUEST_BODY_IDLE,
            // 64 bodies at the 4 MiB limit; typical bodies are far smaller, so many
            // more requests than that are read at once.
            max_buffered_bodies: 256 << 20,
        }
    }
}

/// How many query parameters `query` holds, counted as the parser splits it (empty
/// pieces between `&`s are skipped): what [`MAX_QUERY_PARAMS`] bounds.
pub fn query_params(query: &str) -> usize {
    query.split('&').filter(|pair| !pair.is_empty()).count()
}

/// A request's query, parsed once: the names in order of first appearance, and each
/// name's first value (what Taubyte's `Get` returns), so that listing the names and
/// looking each up stays linear in the number of parameters.
#[derive(Default)]
struct Query {
    names: Vec<String>,
    first: HashMap<String, String>,
}

impl Query {
    fn parse(query: &str) -> Self {
        let mut parsed = Query::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if !parsed.first.contains_key(name.as_ref()) {
                parsed.names.push(name.clone().into_owned());
                parsed.first.insert(name.into_owned(), value.into_owned());
            }
        }
        parsed
    }
}

/// What the guest sees of the request, and the response it is building.
///
/// The request's parts are kept as hyper parsed them and read in place: nothing is
/// copied or parsed until a guest asks (the query is parsed on first use).
pub struct HttpEvent {
    method: hyper::Method,
    uri: hyper::Uri,
    headers: HeaderMap,
    query: std::cell::OnceCell<Query>,
    pub body: BodyReader,
    pub response: ResponseWriter,
}

impl HttpEvent {
    /// Builds the event from the request's `parts`; `on_flush` receives the
    /// response head if the guest flushes before returning.
    pub fn new(
        parts: hyper::http::request::Parts,
        body: RequestBody,
        limits: HttpLimits,
        on_flush: oneshot::Sender<Response<ResponseBody>>,
    ) -> Self {
        Self {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            query: std::cell::OnceCell::new(),
            body: BodyReader::new(body, limits.max_request_body),
            response: ResponseWriter::new(limits.max_response_body, on_flush),
        }
    }

    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    /// The host the request was routed by: an absolute-form target's authority,
    /// which wins over the Host header (RFC 9112 section 3.2.2), else the Host header.
    pub fn host(&self) -> &[u8] {
        match (self.uri.authority(), self.headers.get(hyper::header::HOST)) {
            (Some(authority), _) => authority.as_str().as_bytes(),
            (None, Some(host)) => host.as_bytes(),
            (None, None) => &[],
        }
    }

    pub fn path(&self) -> &str {
        self.uri.path()
    }

    pub fn user_agent(&self) -> &[u8] {
        self.header_value(hyper::header::USER_AGENT.as_str())
    }

    /// The query, form-decoded as Go's `URL.Query()` does.
    fn query(&self) -> &Query {
        self.query
            .get_or_init(|| self.uri.query().map(Query::parse).unwrap_or_default())
    }

    /// Query names in order of first appearance, each once.
    pub fn query_names(&self) -> Vec<&str> {
        self.query().names.iter().map(String::as_str).collect()
    }

    /// The first value of query parameter `name`; empty if absent (as in Taubyte).
    pub fn query_value(&self, name: &str) -> &str {
        self.query().first.get(name).map_or("", String::as_str)
    }

    /// The first value of request header `name`; empty if absent (as in Taubyte).
    pub fn header_value(&self, name: &str) -> &[u8] {
        self.headers
            .get(name)
            .map(|v| v.as_bytes())
            .unwrap_or_default()
    }

    /// Request header names in Go's canonical form (`X-Test`), each once.
    pub fn header_names(&self) -> Vec<String> {
        self.headers
            .keys()
            .map(|k| canonical_header(k.as_str()))
            .collect()
    }
}

/// `x-forwarded-for` → `X-Forwarded-For`, as Go's `textproto` presents names.
fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

/// Streams a body to the guest (an HTTP event's request, an outbound call's response),
/// enforcing a size limit.
pub struct BodyReader {
    body: Option<RequestBody>,
    pending: Bytes,
    received: u64,
    limit: u64,
    done: bool,
    /// Set once the client sent more than the limit; the response becomes 413.
    pub too_large: bool,
}

impl BodyReader {
    /// Reads `body`, refusing it past `limit` bytes.
    pub fn new(body: RequestBody, limit: u64) -> Self {
        let done = body.is_end_stream();
        Self {
            body: Some(body),
            pending: Bytes::new(),
            received: 0,
            limit,
            done,
            too_large: false,
        }
    }

    /// Reads up to `cap` bytes. The flag is true when these are the last bytes.
    pub async fn read(&mut self, cap: usize) -> Result<(Bytes, bool), Errno> {
        loop {
            if !self.pending.is_empty() {
                let n = cap.min(self.pending.len());
                let chunk = self.pending.split_to(n);
                return Ok((chunk, self.done && self.pending.is_empty()));
            }
            if self.done {
                return Ok((Bytes::new(), true));
            }
            let Some(body) = self.body.as_mut() else {
                return Err(Errno::HttpReadBody);
            };
            match body.frame().await {
                None => {
                    self.done = true;
                    self.body = None;
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.received += data.len() as u64;
                        if self.received > self.limit {
                            self.too_large = true;
                            self.close();
                            return Err(Errno::HttpReadBody);
                        }
                        self.pending = data;
                    }
                    self.done = body.is_end_stream();
                    if self.done {
                        // Dropped at its end: an outbound response's connection goes back
                        // to the pool now, not when the invocation ends.
                        self.body = None;
                    }
                }
                Some(Err(error)) => {
                    tracing::debug!(%error, "reading request body failed");
                    self.close();
                    return Err(Errno::HttpReadBody);
                }
            }
        }
    }

    /// Whether the body was read to its end or closed.
    pub fn finished(&self) -> bool {
        self.done && self.pending.is_empty()
    }

    /// The most bytes it lets through.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Drops the rest of the body; later reads report end of body.
    pub fn close(&mut self) {
        self.body = None;
        self.pending = Bytes::new();
        self.done = true;
    }
}

/// Response headers only the server sets (names as `HeaderName` lower-cases them).
const RESERVED_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

type FrameSender = mpsc::Sender<Result<Frame<Bytes>, BoxError>>;

/// Frames in flight between a flushing guest and a slow client.
const STREAM_FRAMES: usize = 16;

/// Builds the response: buffered until a flush, streamed after.
pub struct ResponseWriter {
    status: StatusCode,
    headers: HeaderMap,
    buffer: BytesMut,
    written: u64,
    limit: u64,
    on_flush: Option<oneshot::Sender<Response<ResponseBody>>>,
    stream: Option<StreamSender>,
}

impl ResponseWriter {
    fn new(limit: u64, on_flush: oneshot::Sender<Response<ResponseBody>>) -> Self {
        Self {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            buffer: BytesMut::new(),
            written: 0,
            limit,
            on_flush: Some(on_flush),
            stream: None,
        }
    }

    fn flushed(&self) -> bool {
        self.stream.is_some()
    }

    /// Sets the status (200 to 999: a 1xx is not a final answer); ignored, with a
    /// log line, once the head has been sent.
    pub fn set_status(&mut self, code: u32) -> Result<(), Errno> {
        let status = u16::try_from(code)
            .ok()
            .filter(|c| *c >= 200)
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or(Errno::HttpWrite)?;
        if self.flushed() {
            tracing::debug!(code, "status set after flush is ignored");
        }
        self.status = status;
        Ok(())
    }

    /// Adds a response header (a second value for the same name is kept too).
    /// Framing and hop-by-hop headers are the server's to set, not a function's:
    /// a wrong `Content-Length` would break the connection for the client.
    pub fn add_header(&mut self, name: &[u8], value: &[u8]) -> Result<(), Errno> {
        let name = HeaderName::from_bytes(name).map_err(|_| Errno::HttpWrite)?;
        if RESERVED_HEADERS.contains(&name.as_str()) {
            tracing::debug!(header = %name, "a function may not set this header");
            return Err(Errno::HttpWrite);
        }
        let value = HeaderValue::from_bytes(value).map_err(|_| Errno::HttpWrite)?;
        self.headers.append(name, value);
        Ok(())
    }

    /// Redirects to `url` with `code` (a 3xx).
    pub fn redirect(&mut self, url: &[u8], code: u32) -> Result<(), Errno> {
        if !(300..400).contains(&code) {
            return Err(Errno::HttpWrite);
        }
        let location = HeaderValue::from_bytes(url).map_err(|_| Errno::HttpWrite)?;
        self.headers.insert(LOCATION, location);
        self.set_status(code)
    }

    /// Appends to the body.
    pub fn write(&mut self, data: &[u8]) -> Result<(), Errno> {
        let total = self.written + data.len() as u64;
        if total > self.limit {
            tracing::warn!(
                limit = self.limit,
                "response body limit reached; write refused"
            );
            return Err(Errno::HttpWrite);
        }
        self.written = total;
        self.buffer.extend_from_slice(data);
        Ok(())
    }

    /// Sends the head (on the first flush) and what was written so far.
    pub async fn flush(&mut self) -> Result<(), Errno> {
        if let Some(on_flush) = self.on_flush.take() {
            let (tx, rx) = mpsc::channel(STREAM_FRAMES);
            let body = StreamBody::new(tokio_stream_from(rx)).boxed_unsync();
            let mut response = Response::new(body);
            *response.status_mut() = self.status;
            *response.headers_mut() = std::mem::take(&mut self.headers);
            // The receiver is gone only if the client hung up; the guest carries on.
            let _ = on_flush.send(response);
            self.stream = Some(StreamSender {
                tx,
                finished: false,
            });
        }
        let chunk = self.buffer.split().freeze();
        match self.stream.as_mut() {
            Some(stream) if !chunk.is_empty() => stream.send(chunk).await,
            _ => Ok(()),
        }
    }

    /// Completes the exchange after the function returned: the whole response if
    /// nothing was flushed, else `None` after the last bytes were streamed.
    pub async fn finish(mut self) -> Option<Response<ResponseBody>> {
        if self.flushed() {
            // A failed send means the client left; nothing more to do.
            let _ = self.flush().await;
            if let Some(stream) = self.stream.as_mut() {
                stream.finished = true;
            }
            return None;
        }
        let body = Full::new(self.buffer.freeze())
            .map_err(|never| match never {})
            .boxed_unsync();
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        Some(response)
    }
}

/// The sending half of a streamed body. Dropped before `finished` (the guest
/// trapped or timed out after flushing), it ends the body with an error so the
/// client sees a broken response instead of a silently truncated one.
struct StreamSender {
    tx: FrameSender,
    finished: bool,
}

impl StreamSender {
    async fn send(&mut self, chunk: Bytes) -> Result<(), Errno> {
        self.tx
            .send(Ok(Frame::data(chunk)))
            .await
            .map_err(|_| Errno::HttpWrite)
    }
}

impl Drop for StreamSender {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self
                .tx
                .try_send(Err("function failed after flushing its response".into()));
        }
    }
}

/// Adapts an mpsc receiver to the `Stream` that `StreamBody` wants.
fn tokio_stream_from(
    rx: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, BoxError>> + Send {
    ReceiverStream(rx)
}

struct ReceiverStream(mpsc::Receiver<Result<Frame<Bytes>, BoxError>>);

impl futures_core::Stream for ReceiverStream {
    type Item = Result<Frame<Bytes>, BoxError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_come_once_in_order_and_values_are_the_first() {
        let query = Query::parse("b=1&a=x+y&b=2&&c=%2F");
        assert_eq!(query.names, ["b", "a", "c"]);
        assert_eq!(query.first["b"], "1");
        assert_eq!(query.first["a"], "x y");
        assert_eq!(query.first["c"], "/");
        assert_eq!(query_params("b=1&a=x+y&b=2&&c=%2F"), 4);
    }

    #[test]
    fn canonical_header_names_match_go() {
        assert_eq!(canonical_header("x-forwarded-for"), "X-Forwarded-For");
        assert_eq!(canonical_header("host"), "Host");
    }
}
