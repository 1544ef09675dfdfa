//! A lean WebSocket client for the fan-out subscribers: the handshake, then frames parsed
//! straight out of one reusable read buffer.
//!
//! At a million deliveries a second the load generator's own cost per message decides how
//! much it can measure. tungstenite's per-message work (a message object, a buffer split, a
//! UTF-8 check) made the WebSocket subscribers the load generator's heaviest, heavier than
//! the Redis and NATS clients; this reader does what those do: find the payload in the
//! buffer and hand out a slice of it. Server frames are never masked; the only frames sent
//! (commands, pongs) are masked, as clients must.

use crate::net;
use anyhow::{bail, Context};
use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Largest frame accepted (the benchmark's are 64 bytes).
const MAX_FRAME: usize = 1 << 20;

pub struct RawWebSocket {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buf: BytesMut,
}

impl RawWebSocket {
    /// Connects as connection `index` (see [`net::connect`]) and upgrades `path`.
    pub async fn connect(addr: &str, path: &str, index: usize) -> anyhow::Result<Self> {
        let stream = net::connect(addr, index)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let (mut reader, mut writer) = stream.into_split();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: d2lzcC1iZW5jaC1rZXkhIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        writer.write_all(request.as_bytes()).await?;
        let mut buf = BytesMut::new();
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > 16 << 10 {
                bail!("ws://{addr}{path}: no end to the handshake response");
            }
            if !net::read_more(&mut reader, &mut buf).await? {
                bail!("ws://{addr}{path}: closed during the handshake");
            }
        };
        let head = buf.split_to(head_end);
        let status = head[..].split(|&b| b == b'\r').next().unwrap_or_default();
        if !status.starts_with(b"HTTP/1.1 101") {
            bail!(
                "ws://{addr}{path}: the server answered {:?}",
                String::from_utf8_lossy(status)
            );
        }
        Ok(Self {
            reader,
            writer,
            buf,
        })
    }

    /// Sends one text frame.
    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.send(0x1, text.as_bytes()).await
    }

    /// Sends a masked frame (the mask is zero: the bytes go as they are).
    async fn send(&mut self, opcode: u8, payload: &[u8]) -> anyhow::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            len @ 0..=125 => frame.push(0x80 | len as u8),
            len @ 126..=0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(payload);
        self.writer.write_all(&frame).await?;
        Ok(())
    }

    /// Waits for what the server sends next, then hands `on` the payload of every whole
    /// text or binary message in the buffer, in order, straight out of it (no copy, no
    /// allocation per message); pings are answered on the way. `false` once the server
    /// closes.
    pub async fn batch(&mut self, on: &mut impl FnMut(&[u8])) -> anyhow::Result<bool> {
        loop {
            let (mut at, mut any, mut closed) = (0, false, false);
            let mut pings = Vec::new();
            while let Some((header, len, opcode)) = frame_at(&self.buf[at..])? {
                let payload = &self.buf[at + header..at + header + len];
                match opcode {
                    0x1 | 0x2 => {
                        on(payload);
                        any = true;
                    }
                    0x8 => closed = true,
                    0x9 => pings.push(payload.to_vec()),
                    _ => {}
                }
                at += header + len;
                if closed {
                    break;
                }
            }
            self.buf.advance(at);
            for ping in pings {
                self.send(0xA, &ping).await?;
            }
            if closed {
                return Ok(false);
            }
            if any {
                return Ok(true);
            }
            if !net::read_more(&mut self.reader, &mut self.buf).await? {
                return Ok(false);
            }
        }
    }
}

/// The whole frame at the start of `buf`, if there is one: its header length, payload
/// length and opcode.
fn frame_at(buf: &[u8]) -> anyhow::Result<Option<(usize, usize, u8)>> {
    let Some(&[first, second]) = buf.get(..2) else {
        return Ok(None);
    };
    if first & 0x80 == 0 {
        bail!("the server fragmented a message; this client takes whole frames only");
    }
    if second & 0x80 != 0 {
        bail!("the server masked a frame");
    }
    let (header, len) = match second & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (4, usize::from(u16::from_be_bytes([b[0], b[1]]))),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (
                10,
                usize::try_from(u64::from_be_bytes(b.try_into().expect("8 bytes")))
                    .unwrap_or(usize::MAX),
            ),
            None => return Ok(None),
        },
        len => (2, usize::from(len)),
    };
    if len > MAX_FRAME {
        bail!("a {len}-byte frame: more than this client takes");
    }
    if buf.len() < header + len {
        return Ok(None);
    }
    Ok(Some((header, len, first & 0x0F)))
}
