//! Guest stdout and stderr, re-emitted as host log lines.
//!
//! A guest's `println!` (or TinyGo's `fmt.Printf`) goes to WASI stdout. Wisp grants no
//! terminal: each complete line becomes a `tracing` event under target `guest`, tagged
//! with the function's name and the stream, so operators see what their functions
//! print without the guest reaching the host's own stdout. Each line goes out as
//! `env._log` lines do ([`log_line`]): escaped, and within the function's budget of
//! lines a second.
//!
//! A Rust guest's panic writes `thread '…' panicked at <place>:`, its message, and advice
//! about `RUST_BACKTRACE` that no guest can follow. Those lines are not logged: they go
//! to the invocation's [`PanicSlot`], and the failed invocation is logged once, at warn,
//! as a panic with that place and message.

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

/// Where an invocation's guest panic is told, `<place>: <message>`.
#[derive(Clone, Default)]
pub struct PanicSlot(Arc<std::sync::Mutex<Option<String>>>);

impl PanicSlot {
    /// The panic told, if any.
    pub fn take(&self) -> Option<String> {
        self.lock().take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Past this, a panic message is cut (its lines still count against [`MAX_LINE`]).
const MAX_PANIC: usize = 4096;

/// A `StdoutStream` for `WasiCtxBuilder` that logs what the guest writes.
#[derive(Clone)]
pub struct GuestLog {
    function: Arc<str>,
    stream: Stream,
    panic: PanicSlot,
}

impl GuestLog {
    pub fn new(function: Arc<str>, stream: Stream, panic: PanicSlot) -> Self {
        Self {
            function,
            stream,
            panic,
        }
    }

    fn writer(&self) -> LineWriter {
        LineWriter {
            function: self.function.clone(),
            stream: self.stream,
            pending: Vec::new(),
            panic: self.panic.clone(),
            in_panic: false,
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
    panic: PanicSlot,
    /// Between a panic's first line and its advice line.
    in_panic: bool,
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
        let pending = std::mem::take(&mut self.pending);
        let line = String::from_utf8_lossy(&pending);
        let line = line.trim_end_matches('\r');
        // A blank line says nothing in a log (a panic's report starts with one).
        if !line.trim().is_empty() && !self.told_of_panic(line) {
            log_line(&self.function, Some(self.stream.as_str()), line);
        }
        self.pending = pending;
        self.pending.clear();
    }

    /// Whether `line` is part of a Rust panic's report on stderr, kept in the slot.
    fn told_of_panic(&mut self, line: &str) -> bool {
        if !matches!(self.stream, Stream::Stderr) {
            return false;
        }
        if let Some(place) = line
            .strip_prefix("thread '")
            // `thread 'main' panicked at`, or with its id: `thread 'main' (1) panicked at`.
            .and_then(|rest| rest.split_once(" panicked at "))
            .map(|(_, place)| place.trim_end_matches(':'))
        {
            *self.panic.lock() = Some(place.to_owned());
            self.in_panic = true;
            return true;
        }
        if !self.in_panic {
            return false;
        }
        if line.starts_with("note: run with `RUST_BACKTRACE=1`") {
            self.in_panic = false;
            return true;
        }
        let mut panic = self.panic.lock();
        if let Some(told) = panic.as_mut() {
            if told.len() < MAX_PANIC {
                told.push_str(if told.contains(": ") { "\n" } else { ": " });
                told.push_str(line);
                let mut end = told.len().min(MAX_PANIC);
                while !told.is_char_boundary(end) {
                    end -= 1;
                }
                told.truncate(end);
            }
        }
        true
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
