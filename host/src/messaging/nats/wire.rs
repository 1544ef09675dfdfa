//! What Wisp puts on NATS: subjects for topics, queue groups for functions, and the
//! origin header (see the parent module's docs for the format).

use crate::messaging::broker::SinkId;
use crate::messaging::{Kept, Message};
use async_nats::{HeaderMap, HeaderName};
use std::sync::Arc;

/// The one header Wisp puts on a message (format in the parent module's docs).
pub(super) const ORIGIN: HeaderName = HeaderName::from_static("Wisp-Origin");

/// Where a message of a channel that keeps history was kept: `<offset> <epoch> <time ms>`.
pub(super) const KEPT: HeaderName = HeaderName::from_static("Wisp-Kept");
/// The messaging resource a message was published under (see `metrics`), when counting.
pub(super) const RESOURCE: HeaderName = HeaderName::from_static("Wisp-Resource");

/// A `Wisp-Kept` header's value.
fn parse_kept(value: &str) -> Option<Kept> {
    let mut parts = value.split(' ');
    let offset = parts.next()?.parse().ok()?;
    let epoch = parts.next()?;
    let time_ms = parts.next()?.parse().ok()?;
    if parts.next().is_some() || epoch.is_empty() {
        return None;
    }
    Some(Kept {
        offset,
        epoch: epoch.into(),
        time_ms,
    })
}

/// Room to leave for Wisp's headers under NATS's payload limit: the origin header's
/// framing (about 30 bytes) plus a node id of at most
/// [`MAX_NODE_ID`](super::MAX_NODE_ID) bytes, and the kept header (under 80 bytes).
pub(super) const HEADER_ROOM: usize = 256;

/// Escapes `name` to one NATS subject token of `A-Z a-z 0-9 - _` (see the parent
/// module's docs).
pub fn escape(name: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            out.push(char::from(byte));
        } else {
            out.push('_');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

/// The NATS subject of topic `<hash>/<channel>`: `wisp.<hash>.<channel>`, escaped.
pub fn subject(topic: &str) -> String {
    // Hashes are base58, so the first `/` ends the hash.
    let (hash, channel) = topic.split_once('/').unwrap_or(("", topic));
    let mut out = String::with_capacity(6 + hash.len() + channel.len() * 3);
    out.push_str("wisp.");
    escape(hash, &mut out);
    out.push('.');
    escape(channel, &mut out);
    out
}

/// The queue group of function `name` subscribed to `topic`: `wisp.<hash>.<name>`.
pub(super) fn queue_group(topic: &str, name: &str) -> String {
    let hash = topic.split_once('/').map_or("", |(hash, _)| hash);
    let mut out = String::with_capacity(6 + hash.len() + name.len() * 3);
    out.push_str("wisp.");
    escape(hash, &mut out);
    out.push('.');
    escape(name, &mut out);
    out
}

/// Who published a message that came from NATS, read from its header.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Origin<'a> {
    /// `None`: not from a Wisp node.
    pub(super) node: Option<&'a str>,
    /// `Some(true)`: a text frame; `None`: text if UTF-8.
    pub(super) text: Option<bool>,
    pub(super) function: Option<usize>,
}

impl<'a> Origin<'a> {
    pub(super) fn of(headers: Option<&'a HeaderMap>) -> Self {
        headers
            .and_then(|headers| headers.get(ORIGIN))
            .and_then(|value| Self::parse(value.as_str()))
            .unwrap_or(Origin {
                node: None,
                text: None,
                function: None,
            })
    }

    pub(super) fn parse(value: &'a str) -> Option<Self> {
        let mut parts = value.splitn(3, ' ');
        let text = match parts.next()? {
            "t" => true,
            "b" => false,
            _ => return None,
        };
        let function = match parts.next()? {
            "-" => None,
            index => Some(index.parse().ok()?),
        };
        Some(Origin {
            node: Some(parts.next()?),
            text: Some(text),
            function,
        })
    }

    pub(super) fn header(node: &str, message: &Message) -> HeaderMap {
        let kind = if message.text { "t" } else { "b" };
        let value = match message.origin {
            Some(SinkId::Function(index)) => format!("{kind} {index} {node}"),
            _ => format!("{kind} - {node}"),
        };
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, value.as_str());
        if let Some(kept) = &message.kept {
            let value = format!("{} {} {}", kept.offset, kept.epoch, kept.time_ms);
            headers.insert(KEPT, value.as_str());
        }
        if let Some(resource) = &message.resource {
            headers.insert(RESOURCE, &**resource);
        }
        headers
    }

    /// The message received with `headers`: its origin's, and where its channel's history
    /// keeps it, if the `Wisp-Kept` header says.
    pub(super) fn message(
        &self,
        channel: &Arc<str>,
        payload: bytes::Bytes,
        headers: Option<&HeaderMap>,
    ) -> Arc<Message> {
        let origin = self.function.map(SinkId::Function);
        let mut message = Message::new(channel.clone(), payload, self.text, origin);
        message.kept = headers
            .and_then(|headers| headers.get(KEPT))
            .and_then(|value| parse_kept(value.as_str()));
        // The sender's resource, for this node's delivery counts; only when counting, as
        // a peer names it (cluster peers are trusted, and names are short).
        if crate::metrics::get().is_some() {
            message.resource = headers
                .and_then(|headers| headers.get(RESOURCE))
                .map(|value| value.as_str())
                .filter(|name| name.len() <= 256)
                .map(Arc::from);
        }
        Arc::new(message)
    }
}

/// The channel part of a topic `<hash>/<channel>`.
pub(super) fn channel_of(topic: &str) -> Arc<str> {
    Arc::from(topic.split_once('/').map_or(topic, |(_, channel)| channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unescape(token: &str) -> Option<String> {
        crate::messaging::scope::unescape(token, b'_')
    }

    fn escaped(name: &str) -> String {
        let mut out = String::new();
        escape(name, &mut out);
        out
    }

    const NAMES: &[&str] = &[
        "chat",
        "/chat/room",
        "_2fchat_2froom",
        "a.b",
        "a_2eb",
        "a b",
        "*",
        ">",
        "a.*.>",
        "ünï/cödé",
        "日本語",
        "tab\there",
        "new\nline",
        "_",
        "__",
        "-",
        "A-Z",
        "a-z",
        "%2f",
    ];

    #[test]
    fn escaping_gives_one_safe_token_and_reverses() {
        for name in NAMES {
            let token = escaped(name);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{name:?} → {token:?}"
            );
            assert_eq!(unescape(&token).as_deref(), Some(*name), "{token:?}");
        }
        assert_eq!(escaped("/chat/room"), "_2fchat_2froom");
        assert_eq!(escaped("a-b_c"), "a-b_5fc");
    }

    #[test]
    fn distinct_channels_get_distinct_subjects() {
        let mut seen = std::collections::HashSet::new();
        for name in NAMES {
            assert!(seen.insert(subject(&format!("QmHash/{name}"))), "{name:?}");
        }
        // Every byte value, alone and in pairs, maps to its own token.
        let mut tokens = std::collections::HashSet::new();
        for a in 0..=255u8 {
            for b in [None, Some(b'x'), Some(b'_'), Some(0xff)] {
                let mut bytes = vec![a];
                bytes.extend(b);
                let name = String::from_utf8_lossy(&bytes).into_owned();
                let token = escaped(&name);
                assert_eq!(unescape(&token).as_deref(), Some(name.as_str()));
                tokens.insert((name, token));
            }
        }
        let distinct: std::collections::HashSet<_> = tokens.iter().map(|(_, t)| t).collect();
        let names: std::collections::HashSet<_> = tokens.iter().map(|(n, _)| n).collect();
        assert_eq!(distinct.len(), names.len());
    }

    #[test]
    fn subjects_have_three_tokens_and_no_wildcards() {
        for name in NAMES {
            let subject = subject(&format!("QmHash/{name}"));
            let tokens: Vec<&str> = subject.split('.').collect();
            assert_eq!(tokens.len(), 3, "{subject}");
            assert_eq!(tokens[..2], ["wisp", "QmHash"]);
            assert!(tokens.iter().all(|t| !t.is_empty()), "{subject}");
            assert!(!subject.contains(['*', '>', ' ', '\t', '\n']), "{subject}");
            assert!(subject.is_ascii(), "{subject}");
        }
        assert_eq!(subject("QmHash//ws/chan"), "wisp.QmHash._2fws_2fchan");
        assert_eq!(queue_group("QmHash/chat", "my fn"), "wisp.QmHash.my_20fn");
    }

    #[test]
    fn kept_header_round_trips_and_refuses_garbage() {
        let mut message = Message::new("c", "x".into(), None, None);
        message.kept = Some(Kept {
            offset: 7,
            epoch: "e1".into(),
            time_ms: 42,
        });
        let headers = Origin::header("node-1", &message);
        let got = Origin::of(Some(&headers)).message(&"c".into(), "x".into(), Some(&headers));
        let kept = got.kept.as_ref().expect("kept");
        assert_eq!((kept.offset, &*kept.epoch, kept.time_ms), (7, "e1", 42));
        for bad in ["", "7", "7 e", "x e 1", "7 e 1 extra", "7  1"] {
            assert!(parse_kept(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn origin_header_round_trips() {
        let text = Message::new("c", bytes::Bytes::from_static(b"hi"), None, None);
        let binary = Message::new(
            "c",
            bytes::Bytes::from_static(b"\xff"),
            None,
            Some(SinkId::Function(7)),
        );
        let socket = Message::new(
            "c",
            bytes::Bytes::from_static(b"x"),
            Some(false),
            Some(SinkId::Socket(3)),
        );
        for (message, expected) in [
            (&text, "t - node-1"),
            (&binary, "b 7 node-1"),
            (&socket, "b - node-1"),
        ] {
            let headers = Origin::header("node-1", message);
            let value = headers.get(ORIGIN).expect("the header").as_str();
            assert_eq!(value, expected);
            let origin = Origin::parse(value).expect("parses");
            assert_eq!(origin.node, Some("node-1"));
        }
        assert_eq!(
            Origin::parse("b 7 node-1"),
            Some(Origin {
                node: Some("node-1"),
                text: Some(false),
                function: Some(7)
            })
        );
        for bad in ["", "t", "t -", "x - n", "t x n"] {
            assert_eq!(Origin::parse(bad), None, "{bad:?}");
        }
    }
}
