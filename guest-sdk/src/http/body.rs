//! The request body of an HTTP event, as a reader.

use std::io;

use crate::error::{check, Result};
use crate::fetch;
use crate::sys::safe;

/// The request body. Read it with [`std::io::Read`]; the end of the body reads as 0 bytes.
///
/// ```no_run
/// use std::io::Read;
///
/// # fn f(http: wisp_sdk::HttpEvent) -> std::io::Result<()> {
/// let mut text = String::new();
/// let mut body = http.body();
/// body.read_to_string(&mut text)?;
/// body.close()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Body {
    id: u32,
    /// The host said EOF: every byte has been read.
    done: bool,
}

impl Body {
    pub(super) fn new(id: u32) -> Self {
        Body { id, done: false }
    }

    /// Closes the body; nothing more can be read from it.
    pub fn close(self) -> Result<()> {
        check(safe::close_body(self.id), || {
            "closing the request body".into()
        })
    }
}

impl io::Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let id = self.id;
        let read = |buf: &mut [u8], count: &mut u32| {
            let mut n = 0;
            let code = safe::read_body(id, buf, &mut n);
            *count = u32::try_from(n).unwrap_or(u32::MAX);
            code
        };
        fetch::stream_read(
            buf,
            &mut self.done,
            || "reading the request body".into(),
            read,
        )
    }
}
