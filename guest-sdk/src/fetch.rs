//! The two-call pattern and the value encodings the host uses, as pure helpers.
//!
//! A value of unknown length is read with two host calls: `xxxSize` writes its size, then `xxx`
//! fills a buffer of that size. Name lists arrive as names each followed by a NUL byte.

use crate::error::{Errno, Error, Result};

/// Reads a value with the two-call pattern: `size` reports the length, `read` fills the buffer.
///
/// A size of zero skips the second call. On failure the errno of the failing call is returned,
/// for the caller to wrap with context.
pub(crate) fn two_call(
    size: impl FnOnce(&mut usize) -> u32,
    read: impl FnOnce(&mut [u8]) -> u32,
) -> std::result::Result<Vec<u8>, Errno> {
    let mut len = 0;
    ok(size(&mut len))?;
    if len == 0 {
        return Ok(Vec::new());
    }
    let mut buf = vec![0; len];
    ok(read(&mut buf))?;
    Ok(buf)
}

fn ok(code: u32) -> std::result::Result<(), Errno> {
    match Errno::from(code) {
        Errno::Ok => Ok(()),
        errno => Err(errno),
    }
}

/// Like [`two_call`], with the errno wrapped in an [`Error`] naming `what` was being read.
pub(crate) fn bytes(
    what: impl FnOnce() -> String,
    size: impl FnOnce(&mut usize) -> u32,
    read: impl FnOnce(&mut [u8]) -> u32,
) -> Result<Vec<u8>> {
    two_call(size, read).map_err(|errno| Error::call(errno, format!("reading {}", what())))
}

/// Like [`bytes`], for a value that must be UTF-8 text.
pub(crate) fn string(
    what: impl Fn() -> String,
    size: impl FnOnce(&mut usize) -> u32,
    read: impl FnOnce(&mut [u8]) -> u32,
) -> Result<String> {
    let raw = bytes(&what, size, read)?;
    String::from_utf8(raw).map_err(|_| Error::new(format!("{} is not valid utf-8", what())))
}

/// A streamed read for `std::io::Read`: `read(buf, count)` is the host call filling `buf`.
/// EOF (errno 8) comes with the last bytes and sets `done`; later reads give 0 without a
/// call. A count past the buffer is never trusted (`Read` callers index with it).
pub(crate) fn stream_read(
    buf: &mut [u8],
    done: &mut bool,
    what: impl FnOnce() -> String,
    read: impl FnOnce(&mut [u8], &mut u32) -> u32,
) -> std::io::Result<usize> {
    if *done || buf.is_empty() {
        return Ok(0);
    }
    let mut count = 0;
    let code = read(buf, &mut count);
    let count = (count as usize).min(buf.len());
    match Errno::from(code) {
        Errno::Ok => Ok(count),
        Errno::Eof => {
            *done = true;
            Ok(count)
        }
        errno => Err(Error::call(errno, what()).into()),
    }
}

/// Splits a NUL-terminated name list. An empty trailing piece (after the last NUL) is dropped;
/// a list whose last name lacks its NUL still yields that name.
pub(crate) fn split_names(list: &[u8]) -> Vec<String> {
    let list = list.strip_suffix(&[0]).unwrap_or(list);
    if list.is_empty() {
        return Vec::new();
    }
    list.split(|&b| b == 0)
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nul_terminated_names() {
        assert_eq!(split_names(b"a\0bc\0"), ["a", "bc"]);
        assert_eq!(split_names(b"a\0bc"), ["a", "bc"]);
        assert_eq!(split_names(b"only\0"), ["only"]);
        assert!(split_names(b"").is_empty());
        assert!(split_names(b"\0").is_empty());
    }

    #[test]
    fn keeps_empty_names_in_the_middle() {
        // `?=1&b=2` has a query parameter whose name is empty.
        assert_eq!(split_names(b"\0b\0"), ["", "b"]);
    }

    #[test]
    fn two_call_reads_the_reported_size() {
        let out = two_call(
            |size| {
                *size = 3;
                0
            },
            |buf| {
                buf.copy_from_slice(b"GET");
                0
            },
        );
        assert_eq!(out.unwrap(), b"GET");
    }

    #[test]
    fn two_call_skips_the_read_for_size_zero() {
        let out = two_call(|_| 0, |_| panic!("read must not be called"));
        assert_eq!(out.unwrap(), b"");
    }

    #[test]
    fn two_call_reports_the_failing_errno() {
        assert_eq!(two_call(|_| 16, |_| 0), Err(Errno::HeaderNotFound));
        let read_fails = two_call(
            |size| {
                *size = 1;
                0
            },
            |_| 2,
        );
        assert_eq!(read_fails, Err(Errno::BufferTooSmall));
    }

    #[test]
    fn string_names_what_failed() {
        let err = string(|| "http method".into(), |_| 1, |_| 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "reading http method: event not found (errno 1)"
        );

        let bad = string(
            || "http path".into(),
            |size| {
                *size = 1;
                0
            },
            |buf| {
                buf[0] = 0xff;
                0
            },
        )
        .unwrap_err();
        assert_eq!(bad.to_string(), "http path is not valid utf-8");
    }
}
