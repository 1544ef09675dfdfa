//! Guest stdout and stderr, re-emitted as host log lines.
//!
//! A guest's `println!` (or TinyGo's `fmt.Printf`) goes to WASI stdout. Wisp grants no
//! terminal: each complete line becomes a `tracing` event under target `guest`, tagged
//! with the function's name and the stream, so operators see what their functions
//! print without the guest reaching the host's own stdout. Each line goes out as
//! `env._log` lines do ([`log_line`]): escaped, and within the function's budget of
//! lines a second.

use crate::abi::env::log_line;
use bytes::Bytes;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// A line longer than this is emitted in pieces, so one guest cannot make the host
/// buffer without bound.
const MAX_LINE: usize = 4096;

/// Which WASI stream a line came from.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A `StdoutStream` for `WasiCtxBuilder` that logs what the guest writes.
#[derive(Clone)]
pub struct GuestLog {
    function: Arc<str>,
    stream: Stream,
}

impl GuestLog {
    pub fn new(function: Arc<str>, stream: Stream) -> Self {
        Self { function, stream }
    }

    fn writer(&self) -> LineWriter {
        LineWriter {
            function: self.function.clone(),
            stream: self.stream,
            pending: Vec::new(),
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }
}

/// Splits written bytes into lines and logs each one.
struct LineWriter {
    function: Arc<str>,
    stream: Stream,
    pending: Vec<u8>,
}

impl LineWriter {
    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.pending.extend_from_slice(&bytes[..end]);
                    self.emit();
                    bytes = &bytes[end + 1..];
                }
                None => {
                    self.pending.extend_from_slice(bytes);
                    bytes = &[];
                }
            }
            while self.pending.len() > MAX_LINE {
                let rest = self.pending.split_off(MAX_LINE);
                self.emit();
                self.pending = rest;
            }
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.pending);
        let line = line.trim_end_matches('\r');
        log_line(&self.function, Some(self.stream.as_str()), line);
        self.pending.clear();
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.emit();
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
