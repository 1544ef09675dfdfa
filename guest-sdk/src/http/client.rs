//! Outbound HTTP requests, as Taubyte's go-sdk `http/client` package.
//!
//! The host sends the request: over its shared connection pool, HTTP/1.1 or HTTP/2, within
//! the function's deadline, following up to 10 redirects. By default only public addresses
//! are reached; loopback, private, link-local and cloud-metadata addresses are refused
//! (errno 13) unless the server's `--egress-allow` or the function's `wisp.egress` opens
//! them. A 4xx or 5xx answer is a response, not an error: check [`Response::status`].
//!
//! ```no_run
//! use wisp_sdk::http::client;
//! use wisp_sdk::{Event, Result};
//!
//! #[wisp_sdk::function]
//! fn quote(event: Event) -> Result<()> {
//!     let http = event.http()?;
//!     let response = client::new()?
//!         .request("https://api.example.com/quote")?
//!         .header("Accept", "text/plain")?
//!         .send()?;
//!     if response.status()? != 200 {
//!         return http.return_code(502);
//!     }
//!     // Or read it piecewise: `Response` is a `std::io::Read`.
//!     let quote = response.bytes()?;
//!     http.write(&quote)?;
//!     http.return_code(200)
//! }
//! ```
//!
//! [`Response::status`] is a Wisp call (import module `wisp`): Taubyte's host has none, so
//! a module that uses it runs on Wisp only. Everything else is Taubyte's ABI.

use std::io;

use crate::error::{check, Errno, Error, Result};
use crate::fetch::{self, split_names};
use crate::sys::safe;

/// Taubyte's method codes, in order from 1.
const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT",
];

/// A client: a handle on the host's connection pool. Make one and send many requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    id: u32,
}

/// A new client.
pub fn new() -> Result<Client> {
    let mut id = 0;
    check(safe::new_http_client(&mut id), || {
        "making an HTTP client".into()
    })?;
    Ok(Client { id })
}

/// Sends a GET to `url` on a new client.
pub fn get(url: &str) -> Result<Response> {
    new()?.request(url)?.send()
}

impl Client {
    /// A GET request to `url` (an absolute `http` or `https` URL), to change and send.
    pub fn request(&self, url: &str) -> Result<Request> {
        let mut id = 0;
        check(safe::new_http_request(self.id, &mut id), || {
            format!("making a request to `{url}`")
        })?;
        let request = Request {
            client: self.id,
            id,
            url: url.to_owned(),
        };
        check(safe::set_http_request_url(self.id, id, url), || {
            format!("setting the URL `{url}` (is it absolute http or https?)")
        })?;
        Ok(request)
    }
}

/// A request being built. Each setter returns the request, so calls chain.
#[derive(Debug)]
pub struct Request {
    client: u32,
    id: u32,
    url: String,
}

impl Request {
    /// Sets the method (`GET`, `POST`, `PUT`, `DELETE`, `HEAD`, `OPTIONS`, `PATCH`,
    /// `TRACE`, `CONNECT`; any case).
    pub fn method(self, method: &str) -> Result<Self> {
        let upper = method.to_ascii_uppercase();
        let code = METHODS
            .iter()
            .position(|m| *m == upper)
            .ok_or_else(|| Error::call(Errno::InvalidMethod, format!("method `{method}`")))?;
        check(
            safe::set_http_request_method(self.client, self.id, code as u32 + 1),
            || format!("setting method `{method}` for `{}`", self.url),
        )?;
        Ok(self)
    }

    /// Adds a header value (a header may have several).
    pub fn header(self, name: &str, value: &str) -> Result<Self> {
        check(
            safe::add_http_request_header(self.client, self.id, name, value),
            || format!("adding header `{name}` for `{}`", self.url),
        )?;
        Ok(self)
    }

    /// Sets the body (copied now; sent with its `Content-Length`).
    pub fn body(self, body: &[u8]) -> Result<Self> {
        check(
            safe::set_http_request_body(self.client, self.id, body),
            || format!("setting the body for `{}`", self.url),
        )?;
        Ok(self)
    }

    /// Sends the request and waits for the response's status and headers.
    pub fn send(self) -> Result<Response> {
        check(safe::do_http_request(self.client, self.id), || {
            format!(
                "sending the request to `{}` (the host logs why: a refused address, \
                 a timeout, too many redirects...)",
                self.url
            )
        })?;
        Ok(Response {
            client: self.client,
            id: self.id,
            url: self.url,
            done: false,
        })
    }
}

/// A response. Read its body with [`std::io::Read`]; the end reads as 0 bytes.
#[derive(Debug)]
pub struct Response {
    client: u32,
    id: u32,
    url: String,
    done: bool,
}

impl Response {
    /// The status code (a Wisp call, see the module's docs).
    pub fn status(&self) -> Result<u16> {
        let mut status = 0;
        check(
            safe::http_response_status(self.client, self.id, &mut status),
            || format!("reading the status of `{}`", self.url),
        )?;
        Ok(status as u16)
    }

    /// The values of header `name` (any case); empty when it is absent.
    pub fn header(&self, name: &str) -> Result<Vec<String>> {
        let list = fetch::bytes(
            || format!("header `{name}` of `{}`", self.url),
            |size| safe::http_response_header_size(self.client, self.id, name, size),
            |buf| safe::http_response_header(self.client, self.id, name, buf),
        )?;
        Ok(split_names(&list))
    }

    /// The names of the headers, as Go writes them (`Content-Type`).
    pub fn header_names(&self) -> Result<Vec<String>> {
        let list = fetch::bytes(
            || format!("the header names of `{}`", self.url),
            |size| safe::http_response_keys_size(self.client, self.id, size),
            |buf| safe::http_response_keys(self.client, self.id, buf),
        )?;
        Ok(split_names(&list))
    }

    /// The whole body.
    pub fn bytes(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        io::Read::read_to_end(&mut self, &mut out).map_err(|e| {
            // Keep the host's errno: the reader wrapped the SDK's own error.
            let inner = e.get_ref().and_then(|inner| inner.downcast_ref::<Error>());
            inner
                .cloned()
                .unwrap_or_else(|| Error::new(format!("reading the body of `{}`: {e}", self.url)))
        })?;
        Ok(out)
    }

    /// Drops the rest of the body, freeing the connection for other requests.
    pub fn close(self) -> Result<()> {
        check(safe::close_http_response(self.client, self.id), || {
            format!("closing the body of `{}`", self.url)
        })
    }
}

impl io::Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (client, id, url) = (self.client, self.id, &self.url);
        fetch::stream_read(
            buf,
            &mut self.done,
            || format!("reading the body of `{url}`"),
            |buf, count| safe::read_http_response(client, id, buf, count),
        )
    }
}
