//! The protocol's words: commands parsed from frames, channel names as `MSG` lines write
//! them, and what of a client's bytes a log or an `ERROR:` line repeats.

use super::SHOWN;
use crate::messaging::scope::decode_path;
use tokio_tungstenite::tungstenite::Message as Frame;

/// A command, parsed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Command<'a> {
    Subscribe(String),
    Unsubscribe(String),
    Publish(String, &'a [u8]),
    Auth(String),
}

/// The command in `frame`, or the reason for its `ERROR:` line.
pub(super) fn parse(frame: &[u8]) -> Result<Command<'_>, String> {
    const USAGE: &str =
        "the commands are SUBSCRIBE:<channel>, UNSUBSCRIBE:<channel>, PUBLISH:<channel>:<content> and AUTH:<token>";
    let Some(colon) = frame.iter().position(|&b| b == b':') else {
        return Err(format!("`{}` is not a command; {USAGE}", shown(frame)));
    };
    let (verb, rest) = (&frame[..colon], &frame[colon + 1..]);
    let channel = |name: &[u8]| -> Result<String, String> {
        let decoded = std::str::from_utf8(name).ok().and_then(decode_path);
        match decoded {
            Some(channel) if !channel.is_empty() => Ok(channel),
            Some(_) => Err("the channel name is empty".into()),
            None => Err(format!(
                "channel `{}` is not valid percent-encoded UTF-8",
                shown(name)
            )),
        }
    };
    match verb {
        b"SUBSCRIBE" => Ok(Command::Subscribe(channel(rest)?)),
        b"UNSUBSCRIBE" => Ok(Command::Unsubscribe(channel(rest)?)),
        b"AUTH" => match std::str::from_utf8(rest).map(str::trim) {
            Ok(token) if !token.is_empty() => Ok(Command::Auth(token.to_owned())),
            Ok(_) => Err("AUTH needs a token: AUTH:<token>".into()),
            Err(_) => Err("a token is text".into()),
        },
        b"PUBLISH" => {
            let Some(colon) = rest.iter().position(|&b| b == b':') else {
                return Err(format!(
                    "PUBLISH needs a channel and content: PUBLISH:<channel>:<content> (a `:` in the channel is written %3A), got `{}`",
                    shown(frame)
                ));
            };
            Ok(Command::Publish(
                channel(&rest[..colon])?,
                &rest[colon + 1..],
            ))
        }
        _ => Err(format!("unknown command `{}`; {USAGE}", shown(verb))),
    }
}

/// The first [`SHOWN`] characters of what a client sent, escaped for a log or an
/// `ERROR:` line.
pub(super) fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN * 4)]);
    let mut out: String = text
        .chars()
        .take(SHOWN)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().count() > SHOWN || bytes.len() > SHOWN * 4 {
        out.push('…');
    }
    out
}

/// `channel` as `MSG` lines write it: `%` and `:` percent-encoded.
pub(super) fn encode_channel(channel: &str) -> String {
    let mut out = String::with_capacity(channel.len());
    for c in channel.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    out
}

/// The frame that delivers `payload` on the channel whose `MSG:<channel>:` is `prefix`.
pub(super) fn delivery(prefix: &str, payload: &[u8], text: bool) -> Frame {
    match std::str::from_utf8(payload) {
        Ok(content) if text => {
            let mut line = String::with_capacity(prefix.len() + content.len());
            line.push_str(prefix);
            line.push_str(content);
            Frame::Text(line.into())
        }
        _ => {
            let mut bytes = Vec::with_capacity(prefix.len() + payload.len());
            bytes.extend_from_slice(prefix.as_bytes());
            bytes.extend_from_slice(payload);
            Frame::Binary(bytes.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn commands_parse_with_the_channel_rule() {
        assert_eq!(
            parse(b"SUBSCRIBE:news"),
            Ok(Command::Subscribe("news".into()))
        );
        assert_eq!(
            parse(b"SUBSCRIBE:a:b%20c"),
            Ok(Command::Subscribe("a:b c".into()))
        );
        assert_eq!(
            parse(b"UNSUBSCRIBE:news"),
            Ok(Command::Unsubscribe("news".into()))
        );
        assert_eq!(
            parse(b"PUBLISH:news:Hello: world!"),
            Ok(Command::Publish("news".into(), b"Hello: world!"))
        );
        assert_eq!(
            parse(b"PUBLISH:a%3Ab:"),
            Ok(Command::Publish("a:b".into(), b""))
        );
        for bad in [
            &b"SUBSCRIBE"[..],
            b"SUBSCRIBE:",
            b"subscribe:news",
            b"PUBLISH:news",
            b"PUBLISH::x",
            b"SUBSCRIBE:%zz",
            b"SUBSCRIBE:\xff",
            b"HELLO:x",
        ] {
            assert!(parse(bad).is_err(), "{}", shown(bad));
        }
    }

    #[test]
    fn deliveries_encode_what_would_make_the_channel_ambiguous() {
        let prefix = format!("MSG:{}:", encode_channel("a:b%c"));
        assert_eq!(prefix, "MSG:a%3Ab%25c:");
        assert_eq!(
            delivery(&prefix, b"hi", true),
            Frame::Text("MSG:a%3Ab%25c:hi".into())
        );
        assert_eq!(
            delivery("MSG:x:", &[0xff], false),
            Frame::Binary(Bytes::from_static(b"MSG:x:\xff"))
        );
    }

    #[test]
    fn what_is_shown_of_a_command_is_short_and_escaped() {
        assert_eq!(shown(b"a\nb"), "a\\nb");
        let long = shown(&[b'x'; 10_000]);
        assert_eq!(long.chars().count(), SHOWN + 1);
        assert!(long.ends_with('…'));
    }
}
