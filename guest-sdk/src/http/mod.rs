//! HTTP events: read the request, write the response; and [`client`], requests a function
//! sends.
//!
//! Wisp buffers the response until the function returns or calls [`HttpEvent::flush`], so a
//! status set after writing still counts (on Taubyte it would be lost: set it first there).

mod body;
pub mod client;
mod request;

pub use body::Body;
pub use request::{Headers, Query};

use crate::error::{check, Error, Result};
use crate::fetch;
use crate::sys::safe::{self, HttpField};

/// An HTTP request being served, and its response.
///
/// ```no_run
/// use wisp_sdk::{Event, Result};
///
/// #[wisp_sdk::function]
/// fn greet(event: Event) -> Result<()> {
///     let http = event.http()?;
///     let name = http.query().get("name")?;
///     http.headers().set("Content-Type", "text/plain")?;
///     http.write(format!("hello {name} from {}", http.path()?).as_bytes())?;
///     http.return_code(200)
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HttpEvent {
    id: u32,
}

impl HttpEvent {
    pub(crate) fn from_id(id: u32) -> Self {
        HttpEvent { id }
    }

    /// The event id.
    pub fn id(&self) -> u32 {
        self.id
    }

    fn field(&self, field: HttpField, what: &'static str) -> Result<String> {
        fetch::string(
            || what.to_owned(),
            |size| safe::http_field_size(self.id, field, size),
            |buf| safe::http_field(self.id, field, buf),
        )
    }

    /// The request method, e.g. `GET`.
    pub fn method(&self) -> Result<String> {
        self.field(HttpField::Method, "http method")
    }

    /// The `Host` the request was sent to, as received (it may include a port).
    pub fn host(&self) -> Result<String> {
        self.field(HttpField::Host, "http host")
    }

    /// The URL path, without the query string.
    pub fn path(&self) -> Result<String> {
        self.field(HttpField::Path, "http path")
    }

    /// The `User-Agent` request header.
    pub fn user_agent(&self) -> Result<String> {
        self.field(HttpField::UserAgent, "http user agent")
    }

    /// The query parameters of the URL.
    pub fn query(&self) -> Query {
        Query::new(self.id)
    }

    /// Request headers to read, response headers to set.
    pub fn headers(&self) -> Headers {
        Headers::new(self.id)
    }

    /// The request body, as a [`std::io::Read`].
    ///
    /// ```no_run
    /// use std::io::Read;
    ///
    /// # fn f(http: wisp_sdk::HttpEvent) -> std::io::Result<()> {
    /// let mut body = Vec::new();
    /// http.body().read_to_end(&mut body)?;
    /// # Ok(()) }
    /// ```
    pub fn body(&self) -> Body {
        Body::new(self.id)
    }

    /// Appends `data` to the response body; returns how many bytes the host took.
    pub fn write(&self, data: &[u8]) -> Result<usize> {
        let mut written = 0;
        check(safe::write(self.id, data, &mut written), || {
            "writing the response body".into()
        })?;
        Ok(written)
    }

    /// Sends the status, headers and everything written so far to the client now.
    ///
    /// After a flush the status and headers are fixed; later writes are streamed.
    pub fn flush(&self) -> Result<()> {
        check(safe::flush(self.id), || "flushing the response".into())
    }

    /// Sets the response status code, 200 to 999 (a 1xx is no final answer; the host refuses it
    /// with [`Errno::HttpWrite`](crate::Errno::HttpWrite)). Go's `Return(code)`.
    pub fn return_code(&self, code: u16) -> Result<()> {
        check(safe::return_code(self.id, code.into()), || {
            format!("setting status code {code}")
        })
    }

    /// Starts a redirect to `url`; finish it with [`Redirect::temporary`],
    /// [`Redirect::permanent`] or [`Redirect::code`].
    ///
    /// ```no_run
    /// # fn f(http: wisp_sdk::HttpEvent) -> wisp_sdk::Result<()> {
    /// http.redirect("/login").temporary()
    /// # }
    /// ```
    pub fn redirect<'a>(&self, url: &'a str) -> Redirect<'a> {
        Redirect { id: self.id, url }
    }
}

/// Lets `write!` and `std::io::copy` write the response body.
impl std::io::Write for HttpEvent {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(HttpEvent::write(self, buf)?)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Flushing the real response fixes its status; `io::Write` users flush casually, so
        // this is a no-op. Call `HttpEvent::flush` to send early on purpose.
        Ok(())
    }
}

/// A redirect that has a target but no status yet. Nothing happens until it is finished.
#[derive(Clone, Copy, Debug)]
#[must_use = "a redirect does nothing until `.temporary()`, `.permanent()` or `.code(n)`"]
pub struct Redirect<'a> {
    id: u32,
    url: &'a str,
}

impl Redirect<'_> {
    /// Redirects with 307 Temporary Redirect.
    pub fn temporary(self) -> Result<()> {
        self.code(307)
    }

    /// Redirects with 308 Permanent Redirect.
    pub fn permanent(self) -> Result<()> {
        self.code(308)
    }

    /// Redirects with any status code, e.g. 302 or 303.
    pub fn code(self, code: u16) -> Result<()> {
        if self.url.is_empty() {
            return Err(Error::new("redirect url cannot be empty"));
        }
        check(safe::redirect(self.id, self.url, code.into()), || {
            format!("redirecting to `{}` with {code}", self.url)
        })
    }
}
