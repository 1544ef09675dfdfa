//! Wisp's WebSocket bridge: every client of `ws://ADDR/ws-<hash>/<channel>` is a subscriber,
//! and what a client sends is published to the channel's other clients (never back to it).

use super::rawws::RawWebSocket;
use crate::net::{self, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

pub struct Subscriber {
    socket: RawWebSocket,
}

impl Subscriber {
    pub async fn connect(addr: &str, path: &str, index: usize) -> anyhow::Result<Self> {
        let socket = RawWebSocket::connect(addr, path, index).await?;
        Ok(Self { socket })
    }

    /// Hands `on` the payloads of the next messages; `false` once the server closes.
    pub async fn batch(&mut self, on: &mut impl FnMut(&[u8])) -> anyhow::Result<bool> {
        self.socket.batch(on).await
    }
}

/// A WebSocket client on the channel that only sends.
pub struct Publisher {
    sink: SplitSink<WebSocket, Message>,
}

impl Publisher {
    pub async fn connect(addr: &str, path: &str, index: usize) -> anyhow::Result<Self> {
        let socket = net::websocket(addr, path, index, None).await?;
        Ok(Self {
            sink: spawn_reader(socket),
        })
    }

    /// Sends one text frame per payload, together, and flushes them.
    pub async fn publish(&mut self, payloads: &[String]) -> anyhow::Result<()> {
        for payload in payloads {
            self.sink.feed(Message::text(payload.as_str())).await?;
        }
        self.sink.flush().await?;
        Ok(())
    }
}

/// Splits `socket` and keeps reading its incoming half in a task of its own, so the server's
/// pings are answered and nothing it sends piles up; returns the sending half.
pub fn spawn_reader(socket: WebSocket) -> SplitSink<WebSocket, Message> {
    let (sink, mut stream) = socket.split();
    tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    sink
}
