//! A minimal HTTP/1.1 keep-alive client: one pre-built GET written per request, the answer
//! parsed in place.
//!
//! A general client (hyper's) spends more per request than a hello server does, and the load
//! generator has one core, like the server: with it the native ceiling would measure the
//! client. Like wrk, this writes a fixed request and reads just enough of the answer to find
//! its end (`content-length` or chunked encoding).

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most headers an answer may have.
const MAX_HEADERS: usize = 32;

/// One keep-alive connection.
pub struct Connection {
    stream: TcpStream,
    request: std::sync::Arc<[u8]>,
    buffer: Vec<u8>,
}

/// How an answer's body ends.
enum Body {
    Length(usize),
    Chunked,
}

impl Connection {
    pub fn new(stream: TcpStream, request: std::sync::Arc<[u8]>) -> Self {
        Self {
            stream,
            request,
            buffer: Vec::with_capacity(4096),
        }
    }

    /// The request every connection sends.
    pub fn request(host: &str, path: &str) -> std::sync::Arc<[u8]> {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")
            .into_bytes()
            .into()
    }

    /// Sends the GET and reads the whole answer; returns its status.
    pub async fn get(&mut self) -> anyhow::Result<u16> {
        self.stream.write_all(&self.request).await?;
        let (status, head_len, body) = loop {
            if let Some(head) = parse_head(&self.buffer)? {
                break head;
            }
            self.fill().await?;
        };
        self.buffer.drain(..head_len);
        match body {
            Body::Length(len) => {
                while self.buffer.len() < len {
                    self.fill().await?;
                }
                self.buffer.drain(..len);
            }
            Body::Chunked => self.skip_chunks().await?,
        }
        Ok(status)
    }

    /// Reads more bytes into the buffer; the server closing is an error mid-answer.
    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.stream.read_buf(&mut self.buffer).await? == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }

    /// Skips a chunked body up to and including its last chunk and trailers.
    async fn skip_chunks(&mut self) -> anyhow::Result<()> {
        loop {
            let line_end = loop {
                if let Some(at) = find(&self.buffer, b"\r\n") {
                    break at;
                }
                self.fill().await?;
            };
            let size_text = std::str::from_utf8(&self.buffer[..line_end])?;
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).context("bad chunk size")?;
            if size == 0 {
                // The last chunk: skip trailers up to the empty line.
                let end = loop {
                    if let Some(at) = find(&self.buffer[line_end..], b"\r\n\r\n") {
                        break line_end + at + 4;
                    }
                    self.fill().await?;
                };
                self.buffer.drain(..end);
                return Ok(());
            }
            let total = line_end + 2 + size + 2;
            while self.buffer.len() < total {
                self.fill().await?;
            }
            self.buffer.drain(..total);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The status, head length and body framing, once the whole head is in `buffer`.
fn parse_head(buffer: &[u8]) -> anyhow::Result<Option<(u16, usize, Body)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = response.parse(buffer)? else {
        return Ok(None);
    };
    let status = response.code.unwrap_or(0);
    let mut body = Body::Length(0);
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)?.trim();
            body = Body::Length(value.parse().context("bad content-length")?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding")
            && header.value.eq_ignore_ascii_case(b"chunked")
        {
            body = Body::Chunked;
        }
    }
    Ok(Some((status, len, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_heads() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\nHello, World!";
        let (status, len, body) = parse_head(head).unwrap().unwrap();
        assert_eq!((status, len), (200, head.len() - 13));
        assert!(matches!(body, Body::Length(13)));
        let head = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (status, _, body) = parse_head(head).unwrap().unwrap();
        assert_eq!(status, 404);
        assert!(matches!(body, Body::Chunked));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap().is_none());
    }
}
