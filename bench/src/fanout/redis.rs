//! Redis pub/sub over RESP: a minimal client, just enough for SUBSCRIBE and PUBLISH.

use crate::net;
use anyhow::{bail, Context};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// One RESP reply (RESP2, which Redis speaks unless asked for RESP3).
#[derive(Debug)]
enum Reply {
    Simple,
    Integer,
    Bulk(Option<Bytes>),
    Array(Vec<Reply>),
}

/// A command as a RESP array of bulk strings.
fn command(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply; an error reply (`-ERR ...`) is an error.
async fn read_reply(reader: &mut BufReader<OwnedReadHalf>) -> anyhow::Result<Option<Reply>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(line.len().min(1));
    Ok(Some(match kind {
        "+" => Reply::Simple,
        ":" => Reply::Integer,
        "-" => bail!("redis answered an error: {rest}"),
        "$" => {
            let len: i64 = rest.parse().context("bad bulk length")?;
            match usize::try_from(len) {
                Ok(len) => {
                    let mut data = vec![0; len + 2];
                    reader.read_exact(&mut data).await?;
                    data.truncate(len);
                    Reply::Bulk(Some(data.into()))
                }
                Err(_) => Reply::Bulk(None),
            }
        }
        "*" => {
            let len: usize = rest.parse().unwrap_or(0);
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                // Box the recursion: arrays nest only one level in pub/sub replies.
                match Box::pin(read_reply(reader)).await? {
                    Some(item) => items.push(item),
                    None => bail!("connection closed inside a reply"),
                }
            }
            Reply::Array(items)
        }
        _ => bail!("not a RESP reply: {line:?}"),
    }))
}

pub struct Subscriber {
    reader: BufReader<OwnedReadHalf>,
    /// Kept open: closing it would end the subscription.
    _writer: OwnedWriteHalf,
}

impl Subscriber {
    /// Connects and subscribes; returns once Redis has confirmed the subscription.
    pub async fn connect(addr: &str, channel: &str, index: usize) -> anyhow::Result<Self> {
        let (reader, mut writer) = net::connect(addr, index).await?.into_split();
        writer
            .write_all(&command(&[b"SUBSCRIBE", channel.as_bytes()]))
            .await?;
        let mut reader = BufReader::new(reader);
        match read_reply(&mut reader).await? {
            Some(Reply::Array(items)) if items.len() == 3 => {}
            other => bail!("redis did not confirm SUBSCRIBE: {other:?}"),
        }
        Ok(Self {
            reader,
            _writer: writer,
        })
    }

    /// The next `message` push's payload.
    pub async fn next(&mut self) -> anyhow::Result<Option<Bytes>> {
        loop {
            let Some(reply) = read_reply(&mut self.reader).await? else {
                return Ok(None);
            };
            if let Reply::Array(mut items) = reply {
                if items.len() == 3 {
                    if let Some(Reply::Bulk(Some(payload))) = items.pop() {
                        return Ok(Some(payload));
                    }
                }
            }
        }
    }
}

pub struct Publisher {
    writer: OwnedWriteHalf,
    /// `*3 $7 PUBLISH $n <channel>`: the same for every message.
    head: Vec<u8>,
}

impl Publisher {
    pub async fn connect(addr: &str, channel: &str, index: usize) -> anyhow::Result<Self> {
        let (reader, writer) = net::connect(addr, index).await?.into_split();
        // Each PUBLISH answers the number of receivers; read and drop them so they never
        // fill the socket, and stop at the first error reply.
        tokio::spawn(async move {
            let mut reader = BufReader::new(reader);
            loop {
                match read_reply(&mut reader).await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(error) => {
                        eprintln!("redis publisher: {error:#}");
                        break;
                    }
                }
            }
        });
        let head = format!("*3\r\n$7\r\nPUBLISH\r\n${}\r\n{channel}\r\n", channel.len());
        Ok(Self {
            writer,
            head: head.into_bytes(),
        })
    }

    /// Sends one PUBLISH in a single write.
    pub async fn publish(&mut self, payload: &str) -> anyhow::Result<()> {
        let mut out = Vec::with_capacity(self.head.len() + payload.len() + 16);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(format!("${}\r\n{payload}\r\n", payload.len()).as_bytes());
        self.writer.write_all(&out).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::command;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            command(&[b"SUBSCRIBE", b"news"]),
            b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n"
        );
    }
}
