//! Redis pub/sub over RESP: a minimal client, just enough for SUBSCRIBE and PUBLISH.

use crate::net;
use anyhow::{bail, Context};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// One RESP reply (RESP2, which Redis speaks unless asked for RESP3).
#[derive(Debug)]
enum Reply {
    Simple,
    Integer,
    Bulk,
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
                    Reply::Bulk
                }
                Err(_) => Reply::Bulk,
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
    reader: OwnedReadHalf,
    /// Read but not yet parsed.
    buf: BytesMut,
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
        // From here on, pushes are parsed straight out of one buffer (as the WebSocket
        // subscribers do), starting with whatever the confirmation's reader had read ahead.
        let buf = BytesMut::from(reader.buffer());
        Ok(Self {
            reader: reader.into_inner(),
            buf,
            _writer: writer,
        })
    }

    /// Hands `on` the payloads of the next `message` pushes, straight out of the read
    /// buffer; `false` once Redis closes.
    pub async fn batch(&mut self, on: &mut impl FnMut(&[u8])) -> anyhow::Result<bool> {
        loop {
            let (mut at, mut any) = (0, false);
            while let Some((length, payload)) = push(&self.buf[at..])? {
                if let Some(range) = payload {
                    on(&self.buf[at + range.start..at + range.end]);
                    any = true;
                }
                at += length;
            }
            self.buf.advance(at);
            if any {
                return Ok(true);
            }
            if !net::read_more(&mut self.reader, &mut self.buf).await? {
                return Ok(false);
            }
        }
    }
}

/// One whole push at the start of `buf`, if it holds one: its length, and where its payload
/// is if it is a `message` push (`*3 $7 message $n <channel> $n <payload>`).
fn push(buf: &[u8]) -> anyhow::Result<Option<(usize, Option<std::ops::Range<usize>>)>> {
    fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((&buf[at..end], end + 2))
    }
    fn number(digits: &[u8]) -> anyhow::Result<usize> {
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .with_context(|| format!("not a RESP length: {:?}", String::from_utf8_lossy(digits)))
    }
    let Some((head, mut at)) = line(buf, 0) else {
        return Ok(None);
    };
    if head.first() != Some(&b'*') {
        bail!("not a RESP push: {:?}", String::from_utf8_lossy(head));
    }
    let count = number(&head[1..])?;
    let (mut message, mut last) = (false, None);
    for item in 0..count {
        let Some((head, start)) = line(buf, at) else {
            return Ok(None);
        };
        match head.first() {
            Some(b'$') => {
                let end = start + number(&head[1..])?;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                message |= item == 0 && &buf[start..end] == b"message";
                last = Some(start..end);
                at = end + 2;
            }
            // The subscription count in (un)subscribe confirmations.
            Some(b':') => at = start,
            _ => bail!(
                "unexpected in a RESP push: {:?}",
                String::from_utf8_lossy(head)
            ),
        }
    }
    Ok(Some((at, last.filter(|_| message && count == 3))))
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

    /// Sends one PUBLISH per payload, pipelined in a single write.
    pub async fn publish(&mut self, payloads: &[String]) -> anyhow::Result<()> {
        let mut out = Vec::new();
        for payload in payloads {
            out.extend_from_slice(&self.head);
            out.extend_from_slice(format!("${}\r\n{payload}\r\n", payload.len()).as_bytes());
        }
        self.writer.write_all(&out).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{command, push};

    #[test]
    fn message_pushes_are_found_whole_or_not_at_all() {
        let wire = b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n";
        let (length, payload) = push(wire).unwrap().unwrap();
        assert_eq!(length, wire.len());
        assert_eq!(&wire[payload.unwrap()], b"hello");
        for cut in 0..wire.len() {
            assert_eq!(push(&wire[..cut]).unwrap(), None, "{cut} bytes");
        }
        let confirmation = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n";
        assert_eq!(
            push(confirmation).unwrap(),
            Some((confirmation.len(), None))
        );
        assert!(push(b"+OK\r\n").is_err());
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            command(&[b"SUBSCRIBE", b"news"]),
            b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n"
        );
    }
}
