//! Query parameters and headers of an HTTP event.

use crate::error::{check, Error, Result};
use crate::fetch;
use crate::sys::safe;

/// The query parameters of an HTTP request. Get one from [`HttpEvent::query`](super::HttpEvent::query).
#[derive(Clone, Copy, Debug)]
pub struct Query {
    id: u32,
}

impl Query {
    pub(super) fn new(id: u32) -> Self {
        Query { id }
    }

    /// The value of query parameter `name` (the first one, if it repeats).
    ///
    /// ```no_run
    /// # fn f(http: wisp_sdk::HttpEvent) -> wisp_sdk::Result<()> {
    /// let room = http.query().get("room")?;
    /// # Ok(()) }
    /// ```
    pub fn get(&self, name: &str) -> Result<String> {
        fetch::string(
            || format!("query parameter `{name}`"),
            |size| safe::query_value_size(self.id, name, size),
            |buf| safe::query_value(self.id, name, buf),
        )
    }

    /// The names of all query parameters.
    pub fn list(&self) -> Result<Vec<String>> {
        let list = fetch::bytes(
            || "query parameter names".into(),
            |size| safe::query_keys_size(self.id, size),
            |buf| safe::query_keys(self.id, buf),
        )?;
        Ok(fetch::split_names(&list))
    }
}

/// Request headers (read) and response headers (set). Get them from
/// [`HttpEvent::headers`](super::HttpEvent::headers).
#[derive(Clone, Copy, Debug)]
pub struct Headers {
    id: u32,
}

impl Headers {
    pub(super) fn new(id: u32) -> Self {
        Headers { id }
    }

    /// The value of request header `name` (case-insensitive).
    ///
    /// ```no_run
    /// # fn f(http: wisp_sdk::HttpEvent) -> wisp_sdk::Result<()> {
    /// let token = http.headers().get("Authorization")?;
    /// # Ok(()) }
    /// ```
    pub fn get(&self, name: &str) -> Result<String> {
        fetch::string(
            || format!("request header `{name}`"),
            |size| safe::header_size(self.id, name, size),
            |buf| safe::header(self.id, name, buf),
        )
    }

    /// Adds a response header. Setting the same name twice sends both values.
    ///
    /// ```no_run
    /// # fn f(http: wisp_sdk::HttpEvent) -> wisp_sdk::Result<()> {
    /// http.headers().set("Content-Type", "application/json")?;
    /// # Ok(()) }
    /// ```
    pub fn set(&self, name: &str, value: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::new("response header name cannot be empty"));
        }
        check(safe::add_header(self.id, name, value), || {
            format!("setting response header `{name}`")
        })
    }

    /// The names of all request headers.
    pub fn list(&self) -> Result<Vec<String>> {
        let list = fetch::bytes(
            || "request header names".into(),
            |size| safe::header_keys_size(self.id, size),
            |buf| safe::header_keys(self.id, buf),
        )?;
        Ok(fetch::split_names(&list))
    }
}
