//! A WebSocket connection's socket as tungstenite sees it ([`SocketIo`]).
//!
//! Reads come straight from the socket; tungstenite's own frames (pongs, pings,
//! closes) join the client's [`Outbound`], so that every frame leaves whole and
//! in order among the channel's messages.

use super::cursor::Outbound;
use bytes::{Buf, Bytes};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The socket as tungstenite sees it: reads come straight from the socket (after
/// whatever hyper read past the upgrade request); writes join the client's own frames.
pub struct SocketIo {
    outbound: Arc<Outbound>,
    read_ahead: Bytes,
}

impl SocketIo {
    pub fn new(outbound: Arc<Outbound>, read_ahead: Bytes) -> Self {
        let mut io = Self {
            outbound,
            read_ahead,
        };
        io.release_read_ahead();
        io
    }

    /// `read_ahead` is a view of hyper's read buffer: once it is used up, let the
    /// buffer go, so an idle connection does not hold it.
    fn release_read_ahead(&mut self) {
        if self.read_ahead.is_empty() {
            self.read_ahead = Bytes::new();
        }
    }
}

impl AsyncRead for SocketIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read_ahead.is_empty() {
            let n = self.read_ahead.len().min(buf.remaining());
            buf.put_slice(&self.read_ahead[..n]);
            self.read_ahead.advance(n);
            self.release_read_ahead();
            return Poll::Ready(Ok(()));
        }
        self.outbound.stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for SocketIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.outbound.push_own(Bytes::copy_from_slice(buf));
        Poll::Ready(Ok(buf.len()))
    }

    /// Queued bytes are on their way (a flusher or the connection's task writes
    /// them); tungstenite never waits for the client here.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fixture, message, pair, payloads};
    use super::*;
    use crate::messaging::broker::Reach;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_of_its_own_leave_between_the_messages_around_them() {
        let (broker, feeds, listener) = fixture(2).await;
        let (server, mut client) = pair(&listener).await;
        let outbound = feeds.join("t", false, Reach::Cluster, server, 1 << 20);
        let mut io = SocketIo::new(outbound.clone(), Bytes::new());
        // As a WebSocket's task would: a message, a pong, a message, a pong, in that order,
        // many times over, while the flushers write concurrently.
        let mut expected = Vec::new();
        for i in 0..500 {
            let text = format!("m{i}");
            broker
                .publish("t", message(&text, None), Reach::Cluster)
                .unwrap();
            expected.push(text.into_bytes());
            let pong = format!("p{i}");
            let frame = [&[0x8A, pong.len() as u8][..], pong.as_bytes()].concat();
            tokio::io::AsyncWriteExt::write_all(&mut io, &frame)
                .await
                .unwrap();
            expected.push(pong.into_bytes());
        }
        assert_eq!(payloads(&mut client, expected.len()).await, expected);
        feeds.leave(&outbound);
    }
}
