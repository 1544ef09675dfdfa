//! The Python broker of seed 003 (`bench/pybroker.py`): one WebSocket per client, text
//! commands `SUBSCRIBE:<channel>` and `PUBLISH:<channel>:<message>`, deliveries as
//! `MSG:<channel>:<message>`.

use super::rawws::RawWebSocket;
use super::wisp::spawn_reader;
use crate::net::{self, WebSocket};
use anyhow::bail;
use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

pub struct Subscriber {
    socket: RawWebSocket,
    /// `MSG:<channel>:`, stripped from every delivery.
    prefix: String,
}

impl Subscriber {
    pub async fn connect(addr: &str, channel: &str, index: usize) -> anyhow::Result<Self> {
        let mut socket = RawWebSocket::connect(addr, "/", index).await?;
        socket.send_text(&format!("SUBSCRIBE:{channel}")).await?;
        Ok(Self {
            socket,
            prefix: format!("MSG:{channel}:"),
        })
    }

    pub async fn next(&mut self) -> anyhow::Result<Option<Bytes>> {
        let Some(data) = self.socket.next().await? else {
            return Ok(None);
        };
        if !data.starts_with(self.prefix.as_bytes()) {
            bail!(
                "the broker sent {:?}, not a MSG",
                String::from_utf8_lossy(&data)
            );
        }
        Ok(Some(data.slice(self.prefix.len()..)))
    }
}

pub struct Publisher {
    sink: SplitSink<WebSocket, Message>,
    /// `PUBLISH:<channel>:`, put before every message.
    prefix: String,
}

impl Publisher {
    pub async fn connect(addr: &str, channel: &str, index: usize) -> anyhow::Result<Self> {
        let socket = net::websocket(addr, "/", index, None).await?;
        Ok(Self {
            sink: spawn_reader(socket),
            prefix: format!("PUBLISH:{channel}:"),
        })
    }

    pub async fn publish(&mut self, payload: &str) -> anyhow::Result<()> {
        let command = format!("{}{payload}", self.prefix);
        self.sink.send(Message::text(command)).await?;
        Ok(())
    }
}
