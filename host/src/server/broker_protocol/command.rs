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
    /// `PUBLISH:@<user>:<content>`: to a user's sockets.
    Private(String, &'a [u8]),
    /// `SIGNAL:<channel>:<content>`: published live, never kept.
    Signal(String, &'a [u8]),
    Typing(String),
    Presence(String),
    Auth(String),
}

/// The command in `frame`, or the reason for its `ERROR:` line.
pub(super) fn parse<'a>(frame: &'a [u8]) -> Result<Command<'a>, String> {
    const USAGE: &str = "the commands are SUBSCRIBE:<channel>, UNSUBSCRIBE:<channel>, \
        PUBLISH:<channel>:<content>, PUBLISH:@<user>:<content>, SIGNAL:<channel>:<content>, \
        USER_TYPING:<channel>, PRESENCE:<channel> and AUTH:<token>";
    let Some(colon) = frame.iter().position(|&b| b == b':') else {
        return Err(format!("`{}` is not a command; {USAGE}", shown(frame)));
    };
    let (verb, rest) = (&frame[..colon], &frame[colon + 1..]);
    let name = |what: &str, name: &[u8]| -> Result<String, String> {
        let decoded = std::str::from_utf8(name).ok().and_then(decode_path);
        match decoded {
            Some(name) if !name.is_empty() => Ok(name),
            Some(_) => Err(format!("the {what} name is empty")),
            None => Err(format!(
                "{what} `{}` is not valid percent-encoded UTF-8",
                shown(name)
            )),
        }
    };
    let channel = |bytes: &[u8]| name("channel", bytes);
    // `<name>:<content>`, the name ending at the first `:`.
    let split = |rest: &'a [u8]| -> Result<(&'a [u8], &'a [u8]), String> {
        match rest.iter().position(|&b| b == b':') {
            Some(colon) => Ok((&rest[..colon], &rest[colon + 1..])),
            None => {
                let verb = String::from_utf8_lossy(verb);
                Err(format!(
                    "{verb} needs a channel and content: {verb}:<channel>:<content> (a `:` in the channel is written %3A), got `{}`",
                    shown(frame),
                ))
            }
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
        b"PUBLISH" => match rest.strip_prefix(b"@") {
            Some(rest) => {
                let (user, content) = split(rest)?;
                Ok(Command::Private(name("user", user)?, content))
            }
            None => {
                let (name, content) = split(rest)?;
                Ok(Command::Publish(channel(name)?, content))
            }
        },
        b"SIGNAL" => {
            let (name, content) = split(rest)?;
            Ok(Command::Signal(channel(name)?, content))
        }
        b"USER_TYPING" => Ok(Command::Typing(channel(rest)?)),
        b"PRESENCE" => Ok(Command::Presence(channel(rest)?)),
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
        assert_eq!(
            parse(b"PUBLISH:@user2:Hi there!"),
            Ok(Command::Private("user2".into(), b"Hi there!"))
        );
        assert_eq!(
            parse(b"PUBLISH:%40room:x"),
            Ok(Command::Publish("@room".into(), b"x"))
        );
        assert_eq!(
            parse(b"SIGNAL:news:cursor 3"),
            Ok(Command::Signal("news".into(), b"cursor 3"))
        );
        assert_eq!(
            parse(b"USER_TYPING:general"),
            Ok(Command::Typing("general".into()))
        );
        assert_eq!(
            parse(b"PRESENCE:general"),
            Ok(Command::Presence("general".into()))
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
            b"PUBLISH:@:x",
            b"PUBLISH:@bob",
            b"SIGNAL:news",
            b"USER_TYPING:",
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
