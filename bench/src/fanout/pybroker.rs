//! The Python broker of seed 003 (`bench/pybroker.py`): one WebSocket per client, text
//! commands `SUBSCRIBE:<channel>` and `PUBLISH:<channel>:<message>`, deliveries as
//! `MSG:<channel>:<message>`.

use super::rawws::RawWebSocket;
use super::wisp::spawn_reader;
use crate::net::{self, WebSocket};
use anyhow::bail;
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

    /// Hands `on` the messages of the next deliveries (without the `MSG:<channel>:`
    /// prefix); `false` once the broker closes.
    pub async fn batch(&mut self, on: &mut impl FnMut(&[u8])) -> anyhow::Result<bool> {
        let prefix = self.prefix.as_bytes();
        let mut stray = None;
        let open = self
            .socket
            .batch(&mut |data| match data.strip_prefix(prefix) {
                Some(message) => on(message),
                None => stray = Some(String::from_utf8_lossy(data).into_owned()),
            })
            .await?;
        if let Some(stray) = stray {
            bail!("the broker sent {stray:?}, not a MSG");
        }
        Ok(open)
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

    /// Sends one PUBLISH command per payload, together, and flushes them.
    pub async fn publish(&mut self, payloads: &[String]) -> anyhow::Result<()> {
        for payload in payloads {
            let command = format!("{}{payload}", self.prefix);
            self.sink.feed(Message::text(command)).await?;
        }
        self.sink.flush().await?;
        Ok(())
    }
}
