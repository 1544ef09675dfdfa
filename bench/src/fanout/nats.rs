//! NATS core over its text protocol: a minimal client for CONNECT, SUB, PUB and MSG.
//!
//! The server pings every client now and then and drops one that does not answer, so both
//! clients answer `PING` with `PONG`. A client's own `PING` is answered by `PONG` only after
//! the server has processed everything sent before it, which makes it the readiness check.

use crate::net;
use anyhow::{bail, Context};
use bytes::{Buf, Bytes, BytesMut};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex;

/// Sent on connect: no `+OK` after every command, and no echo of a client's own messages.
const CONNECT: &str = "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,\"lang\":\"rust\",\"version\":\"0\"}\r\n";

/// What the server sent, as far as these clients care.
enum Line {
    /// `MSG <subject> <sid> [reply-to] <bytes>`, followed by that many bytes.
    Msg(usize),
    Ping,
    Pong,
    /// `INFO`, `+OK`: nothing to do.
    Other,
}

fn parse(line: &str) -> anyhow::Result<Line> {
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix("MSG ") {
        let size = rest.rsplit(' ').next().unwrap_or("");
        return Ok(Line::Msg(size.parse().context("bad MSG size")?));
    }
    Ok(match line {
        "PING" => Line::Ping,
        "PONG" => Line::Pong,
        _ if line.starts_with("-ERR") => bail!("nats answered {line}"),
        _ => Line::Other,
    })
}

/// A connection: reads lines, answers pings.
struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    line: String,
}

impl Connection {
    /// Connects, sends CONNECT and `setup`, then PING, and waits for the PONG.
    async fn open(addr: &str, index: usize, setup: &str) -> anyhow::Result<Self> {
        let (reader, writer) = net::connect(addr, index).await?.into_split();
        let mut connection = Self {
            reader: BufReader::new(reader),
            writer: Arc::new(Mutex::new(writer)),
            line: String::new(),
        };
        connection
            .write(format!("{CONNECT}{setup}PING\r\n").as_bytes())
            .await?;
        loop {
            match connection.read_line().await? {
                Some(Line::Pong) => return Ok(connection),
                Some(Line::Msg(size)) => {
                    connection.read_payload(size).await?;
                }
                Some(_) => {}
                None => bail!("nats closed the connection during setup"),
            }
        }
    }

    async fn write(&self, bytes: &[u8]) -> anyhow::Result<()> {
        self.writer.lock().await.write_all(bytes).await?;
        Ok(())
    }

    /// The next line, having answered it if it was a PING.
    async fn read_line(&mut self) -> anyhow::Result<Option<Line>> {
        self.line.clear();
        if self.reader.read_line(&mut self.line).await? == 0 {
            return Ok(None);
        }
        let line = parse(&self.line)?;
        if let Line::Ping = line {
            self.write(b"PONG\r\n").await?;
        }
        Ok(Some(line))
    }

    async fn read_payload(&mut self, size: usize) -> anyhow::Result<Bytes> {
        let mut data = vec![0; size + 2];
        self.reader.read_exact(&mut data).await?;
        data.truncate(size);
        Ok(data.into())
    }
}

pub struct Subscriber {
    reader: OwnedReadHalf,
    /// Read but not yet parsed.
    buf: BytesMut,
    writer: Arc<Mutex<OwnedWriteHalf>>,
}

impl Subscriber {
    /// Connects and subscribes; returns once the server has the subscription.
    pub async fn connect(addr: &str, subject: &str, index: usize) -> anyhow::Result<Self> {
        let connection = Connection::open(addr, index, &format!("SUB {subject} 1\r\n")).await?;
        // From here on, messages are parsed straight out of one buffer (as the WebSocket and
        // Redis subscribers do), starting with what the setup's reader had read ahead.
        Ok(Self {
            buf: BytesMut::from(connection.reader.buffer()),
            reader: connection.reader.into_inner(),
            writer: connection.writer,
        })
    }

    /// Hands `on` the payloads of the next MSGs, straight out of the read buffer (pings
    /// are answered on the way); `false` once the server closes.
    pub async fn batch(&mut self, on: &mut impl FnMut(&[u8])) -> anyhow::Result<bool> {
        loop {
            let (mut at, mut any, mut pings) = (0, false, 0);
            while let Some(line_end) = self.buf[at..].windows(2).position(|w| w == b"\r\n") {
                let line =
                    std::str::from_utf8(&self.buf[at..at + line_end]).context("not a NATS line")?;
                let mut whole = line_end + 2;
                match parse(line)? {
                    Line::Msg(size) => {
                        if self.buf.len() < at + whole + size + 2 {
                            break;
                        }
                        on(&self.buf[at + whole..at + whole + size]);
                        any = true;
                        whole += size + 2;
                    }
                    Line::Ping => pings += 1,
                    Line::Pong | Line::Other => {}
                }
                at += whole;
            }
            self.buf.advance(at);
            for _ in 0..pings {
                self.writer.lock().await.write_all(b"PONG\r\n").await?;
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

pub struct Publisher {
    writer: Arc<Mutex<OwnedWriteHalf>>,
    /// `PUB <subject> `: the same for every message.
    head: String,
}

impl Publisher {
    pub async fn connect(addr: &str, subject: &str, index: usize) -> anyhow::Result<Self> {
        let mut connection = Connection::open(addr, index, "").await?;
        let writer = connection.writer.clone();
        // Keep answering the server's pings for as long as the connection lives.
        tokio::spawn(async move { while let Ok(Some(_)) = connection.read_line().await {} });
        Ok(Self {
            writer,
            head: format!("PUB {subject} "),
        })
    }

    /// Sends one PUB per payload, in a single write.
    pub async fn publish(&mut self, payloads: &[String]) -> anyhow::Result<()> {
        let mut commands = String::new();
        for payload in payloads {
            commands.push_str(&format!("{}{}\r\n{payload}\r\n", self.head, payload.len()));
        }
        self.writer
            .lock()
            .await
            .write_all(commands.as_bytes())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_msg_with_and_without_reply_subject() {
        assert!(matches!(parse("MSG a 1 64\r\n").unwrap(), Line::Msg(64)));
        assert!(matches!(
            parse("MSG a 1 inbox 5\r\n").unwrap(),
            Line::Msg(5)
        ));
        assert!(matches!(parse("PING\r\n").unwrap(), Line::Ping));
        assert!(parse("-ERR 'Authorization Violation'\r\n").is_err());
    }
}
