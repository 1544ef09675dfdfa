//! HTTP client calls: a guest's outbound requests (Taubyte's `http/client`), sent through
//! the egress client of its function (`crate::egress`).
//!
//! Where Taubyte's host is wrong Wisp is not: `addHttpRequestHeader` adds the one value
//! both SDKs pass (Taubyte decodes it as a NUL list and adds nothing); the body is copied
//! when set and sent with a `Content-Length` (Taubyte reads guest memory at send time and
//! sends it chunked, once); an unknown request is errno 10, and the response calls before
//! a send are an errno, not a host crash; the key lists honour their buffer length; every
//! response is closed at the end of the invocation; the response status can be read
//! (`wisp::httpResponseStatus`, a Wisp call).
//!
//! Bounds, per invocation: [`MAX_CLIENTS`] clients, [`MAX_REQUESTS`] requests,
//! [`MAX_OPEN_RESPONSES`] responses whose body is still open (each holds a connection),
//! [`MAX_REQUEST_BODIES`] bytes of request bodies held; and per response the server's
//! `--egress-max-response` bytes of body.

use super::handles::Handles;
use super::http_event::{BodyReader, BoxError};
use super::memory::{hand_over, GuestMemory};
use super::state::AbiState;
use super::{call, split, Errno, HostFuture, View, SDK_MODULE};
use crate::egress::{Failure, Outbound};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Uri};
use wasmtime::{Caller, Linker};
use wisp_abi::imports::name;
use wisp_abi::WISP_MODULE;

/// Clients one invocation may make (a client is only a handle on the shared pool; Taubyte's
/// Rust SDK makes one per request).
pub const MAX_CLIENTS: usize = 1024;
/// Requests one invocation may make.
pub const MAX_REQUESTS: usize = 1024;
/// Responses whose body is still open, per invocation; past it `doHttpRequest` is errno 13
/// until one is read to its end or closed.
pub const MAX_OPEN_RESPONSES: usize = 16;
/// Request bodies held at once, per invocation; past it `setHttpRequestBody` is errno 17.
pub const MAX_REQUEST_BODIES: usize = 32 << 20;

/// A guest's clients and requests during one invocation.
pub struct HttpClients {
    clients: Handles<()>,
    requests: Handles<ClientRequest>,
    body_bytes: usize,
}

impl Default for HttpClients {
    fn default() -> Self {
        Self {
            clients: Handles::new(MAX_CLIENTS),
            requests: Handles::new(MAX_REQUESTS),
            body_bytes: 0,
        }
    }
}

/// A request being built, and the response it got.
pub struct ClientRequest {
    client: i32,
    method: Method,
    uri: Option<Uri>,
    headers: HeaderMap,
    body: Bytes,
    response: Option<Received>,
}

/// A response, its body read as the guest asks for it.
pub struct Received {
    status: u16,
    headers: HeaderMap,
    body: BodyReader,
}

impl HttpClients {
    fn request(&mut self, client: i32, request: i32) -> Result<&mut ClientRequest, Errno> {
        self.clients.get(client).ok_or(Errno::ClientNotFound)?;
        self.requests
            .get_mut(request)
            .filter(|r| r.client == client)
            .ok_or(Errno::ClientNotFound)
    }

    fn open_responses(&self) -> usize {
        self.requests
            .iter()
            .filter(|r| r.response.as_ref().is_some_and(|r| !r.body.finished()))
            .count()
    }
}

/// Taubyte's method codes.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::PATCH,
    Method::TRACE,
    Method::CONNECT,
];

fn method_of(code: i32) -> Option<Method> {
    METHODS.get((code as u32 as usize).checked_sub(1)?).cloned()
}

fn code_of(method: &Method) -> u32 {
    METHODS
        .iter()
        .position(|m| m == method)
        .map_or(0, |i| i as u32 + 1)
}

/// A header name as Go writes it (`content-type` → `Content-Type`), which is what
/// Taubyte's guests see in key lists.
fn canonical(name: &HeaderName) -> String {
    let mut upper = true;
    name.as_str()
        .chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c };
            upper = c == '-';
            out
        })
        .collect()
}

/// A header's values, each followed by a NUL.
fn values(headers: &HeaderMap, key: &[u8]) -> Vec<u8> {
    let Ok(name) = HeaderName::from_bytes(key) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for value in headers.get_all(name) {
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

/// The header names, canonical, each followed by a NUL.
fn keys(headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::new();
    for name in headers.keys() {
        out.extend_from_slice(canonical(name).as_bytes());
        out.push(0);
    }
    out
}

/// A URL as a guest gives it, made a URI the way Go's client would send it (spaces and
/// other bytes a URI may not hold are percent-encoded); only absolute `http` and `https`.
fn parse_url(text: &[u8]) -> Result<Uri, Errno> {
    let text = std::str::from_utf8(text).map_err(|_| Errno::ParseUrlFailed)?;
    let url = url::Url::parse(text.trim()).map_err(|_| Errno::ParseUrlFailed)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Errno::ParseUrlFailed);
    }
    url.as_str().parse().map_err(|_| Errno::ParseUrlFailed)
}

fn header_name(mem: &GuestMemory<'_>, ptr: i32, len: i32) -> Result<HeaderName, Errno> {
    HeaderName::from_bytes(mem.slice(ptr, len)?).map_err(|_| Errno::NewRequestFailed)
}

fn header_value(bytes: &[u8]) -> Result<HeaderValue, Errno> {
    HeaderValue::from_bytes(bytes).map_err(|_| Errno::NewRequestFailed)
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    add_request_calls(linker, view)?;
    add_header_calls(linker, view)?;
    add_send_calls(linker, view)?;
    add_response_calls(linker, view)?;
    Ok(())
}

fn add_request_calls<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    linker.func_wrap(
        SDK_MODULE,
        name::newHttpClient,
        move |mut c: Caller<'_, T>, id_ptr: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                mem.check_u32(id_ptr).map_err(|_| Errno::MemoryWriteFailed)?;
                let id = st.http_clients.clients.insert(()).ok_or_else(|| {
                    tracing::warn!(function = %st.function, "more than {MAX_CLIENTS} HTTP clients in one invocation; refused");
                    Errno::NewRequestFailed
                })?;
                mem.write_u32(id_ptr, id).map_err(|_| Errno::MemoryWriteFailed)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::newHttpRequest,
        move |mut c: Caller<'_, T>, client: i32, id_ptr: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                st.http_clients.clients.get(client).ok_or(Errno::ClientNotFound)?;
                mem.check_u32(id_ptr).map_err(|_| Errno::MemoryWriteFailed)?;
                let request = ClientRequest {
                    client,
                    method: Method::GET,
                    uri: None,
                    headers: HeaderMap::new(),
                    body: Bytes::new(),
                    response: None,
                };
                let id = st.http_clients.requests.insert(request).ok_or_else(|| {
                    tracing::warn!(function = %st.function, "more than {MAX_REQUESTS} HTTP requests in one invocation; refused");
                    Errno::NewRequestFailed
                })?;
                mem.write_u32(id_ptr, id).map_err(|_| Errno::MemoryWriteFailed)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::setHttpRequestURL,
        move |mut c: Caller<'_, T>, client: i32, request: i32, url: i32, url_len: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let request = st.http_clients.request(client, request)?;
                request.uri = Some(parse_url(mem.slice(url, url_len)?)?);
                Ok(())
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::setHttpRequestMethod,
        move |mut c: Caller<'_, T>, client: i32, request: i32, code: i32| -> i32 {
            call(&mut c, view, |_, st| {
                let request = st.http_clients.request(client, request)?;
                request.method = method_of(code).ok_or(Errno::InvalidMethod)?;
                Ok(())
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::getHttpRequestMethod,
        move |mut c: Caller<'_, T>, client: i32, request: i32, code_ptr: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let request = st.http_clients.request(client, request)?;
                let code = code_of(&request.method);
                mem.write_u32(code_ptr, code)
                    .map_err(|_| Errno::MemoryWriteFailed)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::setHttpRequestBody,
        move |mut c: Caller<'_, T>, client: i32, request: i32, body: i32, body_len: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let bytes = mem.slice(body, body_len)?;
                let clients = &mut st.http_clients;
                let held = clients.request(client, request)?.body.len();
                let total = clients.body_bytes - held + bytes.len();
                if total > MAX_REQUEST_BODIES {
                    tracing::warn!(function = %st.function, "request bodies over {MAX_REQUEST_BODIES} bytes in one invocation; refused");
                    return Err(Errno::HttpWriteBodyFailed);
                }
                clients.body_bytes = total;
                clients.request(client, request)?.body = Bytes::copy_from_slice(bytes);
                Ok(())
            })
        },
    )?;
    Ok(())
}

fn add_header_calls<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    linker.func_wrap(
        SDK_MODULE,
        name::setHttpRequestHeader,
        move |mut c: Caller<'_, T>,
              client: i32,
              request: i32,
              key: i32,
              key_len: i32,
              vals: i32,
              vals_len: i32|
              -> i32 {
            call(&mut c, view, |mem, st| {
                let request = st.http_clients.request(client, request)?;
                let name = header_name(mem, key, key_len)?;
                let list = mem.slice(vals, vals_len)?;
                let values = list
                    .split_inclusive(|b| *b == 0)
                    .filter_map(|item| item.strip_suffix(&[0]))
                    .map(header_value)
                    .collect::<Result<Vec<_>, _>>()?;
                let mut values = values.into_iter();
                if let Some(first) = values.next() {
                    request.headers.insert(name.clone(), first);
                    for value in values {
                        request.headers.append(name.clone(), value);
                    }
                }
                Ok(())
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::addHttpRequestHeader,
        move |mut c: Caller<'_, T>,
              client: i32,
              request: i32,
              key: i32,
              key_len: i32,
              value: i32,
              value_len: i32|
              -> i32 {
            call(&mut c, view, |mem, st| {
                let request = st.http_clients.request(client, request)?;
                let name = header_name(mem, key, key_len)?;
                let value = mem.slice(value, value_len)?;
                let value = value.strip_suffix(&[0]).unwrap_or(value);
                request.headers.append(name, header_value(value)?);
                Ok(())
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::deleteHttpRequestHeader,
        move |mut c: Caller<'_, T>, client: i32, request: i32, key: i32, key_len: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let request = st.http_clients.request(client, request)?;
                if let Ok(name) = HeaderName::from_bytes(mem.slice(key, key_len)?) {
                    request.headers.remove(name);
                }
                Ok(())
            })
        },
    )?;
    let request_headers: Headers =
        |st, client, request| Ok(&st.http_clients.request(client, request)?.headers);
    add_header_reads(
        linker,
        view,
        [
            name::getHttpRequestHeaderSize,
            name::getHttpRequestHeader,
            name::getHttpRequestHeaderKeysSize,
            name::getHttpRequestHeaderKeys,
        ],
        request_headers,
    )?;
    Ok(())
}

/// Where a header-reading call finds its headers: a request's, or its response's.
type Headers = fn(&mut AbiState, i32, i32) -> Result<&HeaderMap, Errno>;

/// Defines `sized(client, req, key, keyLen, sizePtr)`, `value(client, req, key, keyLen,
/// buf)`, `keys_sized(client, req, sizePtr)` and `keys(client, req, buf, bufLen)` over the
/// headers `headers` finds. The value call has no length: it writes what the size gave,
/// which cannot change between the two (only the guest changes its request's headers).
fn add_header_reads<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
    [sized, value, keys_sized, key_list]: [&'static str; 4],
    headers: Headers,
) -> anyhow::Result<()> {
    linker.func_wrap(
        SDK_MODULE,
        sized,
        move |mut c: Caller<'_, T>,
              client: i32,
              request: i32,
              key: i32,
              key_len: i32,
              size_ptr: i32|
              -> i32 {
            call(&mut c, view, |mem, st| {
                let list = values(headers(st, client, request)?, mem.slice(key, key_len)?);
                mem.write_u32(size_ptr, list.len() as u32)
                    .map_err(|_| Errno::MemoryWriteFailed)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        value,
        move |mut c: Caller<'_, T>,
              client: i32,
              request: i32,
              key: i32,
              key_len: i32,
              buf: i32|
              -> i32 {
            call(&mut c, view, |mem, st| {
                let list = values(headers(st, client, request)?, mem.slice(key, key_len)?);
                mem.write(buf, &list)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        keys_sized,
        move |mut c: Caller<'_, T>, client: i32, request: i32, size_ptr: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let list = keys(headers(st, client, request)?);
                mem.write_u32(size_ptr, list.len() as u32)
                    .map_err(|_| Errno::MemoryWriteFailed)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        key_list,
        move |mut c: Caller<'_, T>, client: i32, request: i32, buf: i32, buf_len: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                mem.write_sized(buf, buf_len, &keys(headers(st, client, request)?))
            })
        },
    )?;
    Ok(())
}

fn add_send_calls<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    linker.func_wrap_async(
        SDK_MODULE,
        name::doHttpRequest,
        move |mut c: Caller<'_, T>, (client, request): (i32, i32)| -> HostFuture<'_> {
            Box::new(async move {
                let (_, st) = split(&mut c, view);
                let prepared = prepare(st, client, request);
                let (egress, outbound) = match prepared {
                    Ok(prepared) => prepared,
                    Err(errno) => return errno.code() as i32,
                };
                let function = st.function.clone();
                let deadline = tokio::time::Instant::from_std(st.deadline);
                let host = outbound.uri.host().unwrap_or_default().to_owned();
                let sent = egress.send(outbound, deadline).await;
                let response = match sent {
                    Ok(response) => response,
                    Err(failure) => {
                        failed(&function, &host, &failure);
                        return Errno::HttpRequestFailed.code() as i32;
                    }
                };
                let (parts, body) = response.into_parts();
                let body = body.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync();
                let received = Received {
                    status: parts.status.as_u16(),
                    headers: parts.headers,
                    body: BodyReader::new(body, egress.max_response),
                };
                let (_, st) = split(&mut c, view);
                Errno::to_i32(st.http_clients.request(client, request).map(|r| {
                    r.response = Some(received);
                }))
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::readHttpResponseBody,
        move |mut c: Caller<'_, T>,
              (client, request, buf, cap, count_ptr): (i32, i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                let (mem, st) = split(&mut c, view);
                let function = st.function.clone();
                let deadline = tokio::time::Instant::from_std(st.deadline);
                let checked = mem
                    .slice(buf, cap)
                    .map(drop)
                    .and_then(|()| mem.check_u32(count_ptr))
                    .and_then(|()| st.http_clients.request(client, request));
                let received = match checked.map(|r| r.response.as_mut()) {
                    Ok(Some(received)) => received,
                    Ok(None) => return Errno::HttpReadBody.code() as i32,
                    Err(errno) => return errno.code() as i32,
                };
                let limit = received.body.limit();
                let reading = received.body.read(cap as u32 as usize);
                let read = match tokio::time::timeout_at(deadline, reading).await {
                    Ok(read) => read,
                    Err(_) => {
                        tracing::warn!(function = %function, "reading an HTTP response body passed the function's deadline");
                        Err(Errno::HttpReadBody)
                    }
                };
                if received.body.too_large {
                    tracing::warn!(function = %function, "an HTTP response body is over {limit} bytes (--egress-max-response); read refused");
                }
                call(&mut c, view, |mem, _| hand_over(mem, buf, count_ptr, read))
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::closeHttpResponseBody,
        move |mut c: Caller<'_, T>, client: i32, request: i32| -> i32 {
            call(&mut c, view, |_, st| {
                let request = st.http_clients.request(client, request)?;
                let received = request.response.as_mut().ok_or(Errno::CloseBody)?;
                received.body.close();
                Ok(())
            })
        },
    )?;
    Ok(())
}

/// The client and request to send for `doHttpRequest`, or its errno.
fn prepare(
    st: &mut AbiState,
    client: i32,
    request: i32,
) -> Result<(std::sync::Arc<crate::egress::Client>, Outbound), Errno> {
    let function = st.function.clone();
    let open = st.http_clients.open_responses();
    let egress = st.env.egress.clone();
    let built = st.http_clients.request(client, request)?;
    // A second send replaces the response; the old one no longer counts.
    let open = open - usize::from(built.response.as_ref().is_some_and(|r| !r.body.finished()));
    let Some(uri) = built.uri.clone() else {
        tracing::warn!(function = %function, "an HTTP request was sent with no URL");
        return Err(Errno::HttpRequestFailed);
    };
    if open >= MAX_OPEN_RESPONSES {
        tracing::warn!(function = %function, "{MAX_OPEN_RESPONSES} HTTP responses are open; read or close one before sending more");
        return Err(Errno::HttpRequestFailed);
    }
    let Some(egress) = egress else {
        tracing::warn!(function = %function, "outbound HTTP is not set up in this host");
        return Err(Errno::HttpRequestFailed);
    };
    built.response = None;
    let outbound = Outbound {
        method: built.method.clone(),
        uri,
        headers: built.headers.clone(),
        body: built.body.clone(),
    };
    Ok((egress, outbound))
}

/// Logs why `function`'s request to `host` got no response.
fn failed(function: &str, host: &str, failure: &Failure) {
    let host = host.escape_debug();
    match failure {
        Failure::Denied(_) => {
            tracing::warn!(function, %host, "outbound HTTP refused: {failure}")
        }
        _ => tracing::warn!(function, %host, "outbound HTTP failed: {failure}"),
    }
}

fn add_response_calls<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    fn received(st: &mut AbiState, client: i32, request: i32) -> Result<&Received, Errno> {
        let request = st.http_clients.request(client, request)?;
        request.response.as_ref().ok_or(Errno::ReadHeaders)
    }
    let response_headers: Headers =
        |st, client, request| Ok(&received(st, client, request)?.headers);
    add_header_reads(
        linker,
        view,
        [
            name::getHttpResponseHeaderSize,
            name::getHttpResponseHeader,
            name::getHttpResponseHeaderKeysSize,
            name::getHttpResponseHeaderKeys,
        ],
        response_headers,
    )?;
    linker.func_wrap(
        WISP_MODULE,
        name::httpResponseStatus,
        move |mut c: Caller<'_, T>, client: i32, request: i32, status_ptr: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let status = received(st, client, request)?.status;
                mem.write_u32(status_ptr, u32::from(status))
            })
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_codes_are_taubytes() {
        assert_eq!(method_of(1), Some(Method::GET));
        assert_eq!(method_of(9), Some(Method::CONNECT));
        for bad in [0, 10, -1] {
            assert_eq!(method_of(bad), None);
        }
        assert_eq!(code_of(&Method::PATCH), 7);
    }

    #[test]
    fn header_names_are_listed_as_go_writes_them() {
        let name = HeaderName::from_static("x-request-id");
        assert_eq!(canonical(&name), "X-Request-Id");
        let mut headers = HeaderMap::new();
        headers.append("content-type", "a".parse().unwrap());
        headers.append("accept", "b".parse().unwrap());
        headers.append("accept", "c".parse().unwrap());
        assert_eq!(keys(&headers), b"Content-Type\0Accept\0");
        assert_eq!(values(&headers, b"ACCEPT"), b"b\0c\0");
        assert!(values(&headers, b"bad name").is_empty());
    }

    #[test]
    fn urls_are_absolute_http_and_encoded_as_go_sends_them() {
        let uri = parse_url(b"http://example.com/a b?q=1 2").unwrap();
        assert_eq!(uri.to_string(), "http://example.com/a%20b?q=1%202");
        for bad in [
            &b"/relative"[..],
            b"ftp://x/",
            b"http://",
            b"\xff",
            b"mailto:a@b",
        ] {
            assert_eq!(parse_url(bad), Err(Errno::ParseUrlFailed), "{bad:?}");
        }
    }
}
