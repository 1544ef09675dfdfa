//! `messaging/*.yaml`: which channels exist, and whether WebSocket clients may join them.
//!
//! Two forms are read. Taubyte's:
//!
//! ```yaml
//! local: false
//! channel: {match: notifications/.*, regex: true}
//! bridges: {mqtt: {enable: false}, websocket: {enable: true}}
//! ```
//!
//! and the short form of the seed document (`regex` may be left out: see [`ChannelMatcher::new`]):
//!
//! ```yaml
//! matcher: /ws/chan
//! websocket: true
//! ```
//!
//! Either form may add a Wisp-only block: `wisp: {self-echo: true}` sends a WebSocket client's
//! messages back to it as well (an echo channel; Autobahn's conformance cases need one);
//! `wisp: {history: {size: 100, ttl: 24h}}` keeps each matching channel's messages (see
//! [`History`]); `wisp: {private: true}` admits a WebSocket client only with a token;
//! `wisp: {presence: true}` keeps who is on each matching channel and tells its clients.

use std::path::PathBuf;
use std::time::Duration;

use super::matcher::ChannelMatcher;
use super::units::parse_duration;
use super::yaml::Map;

/// `wisp.history.size` when not given.
pub const DEFAULT_HISTORY_SIZE: usize = 100;
/// The most messages one channel's history may keep.
pub const MAX_HISTORY_SIZE: usize = 100_000;

/// Wisp only (`wisp.history`): every message on a matching channel is kept, with an offset
/// (per channel, from 1) and a time, whether or not anyone is subscribed; the oldest go
/// past `size` messages or past `ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// Messages kept per channel, 1 to [`MAX_HISTORY_SIZE`].
    pub size: usize,
    /// How long a message is kept; `None`: until `size` pushes it out.
    pub ttl: Option<Duration>,
}

/// A messaging resource: the channels it covers and the bridges enabled on them.
#[derive(Debug, Clone)]
pub struct Messaging {
    pub name: String,
    pub application: Option<String>,
    /// Relative to the project root.
    pub file: PathBuf,
    pub id: String,
    pub description: String,
    pub matcher: ChannelMatcher,
    /// WebSocket clients may join the channels.
    pub websocket: bool,
    /// Taubyte's MQTT bridge setting; Wisp does not serve MQTT.
    pub mqtt: bool,
    pub local: bool,
    /// Wisp only (`wisp.self-echo`): a WebSocket client also receives its own messages.
    pub self_echo: bool,
    /// Wisp only (`wisp.history`): the channels' messages are kept.
    pub history: Option<History>,
    /// Wisp only (`wisp.private`): a WebSocket client needs a token, which the URL a
    /// function hands out carries (see `messaging::token`).
    pub private: bool,
    /// Wisp only (`wisp.presence`): who is on a channel is kept, listed and announced
    /// (see `messaging::presence`).
    pub presence: bool,
}

/// Reads a messaging file in either form; `None` when no matcher could be built.
pub(crate) fn parse(
    top: Map,
    name: &str,
    application: Option<&str>,
    file: PathBuf,
) -> Option<Messaging> {
    let id = top.string("id").unwrap_or_default();
    let description = top.string("description").unwrap_or_default();
    top.strings("tags");
    top.strings("smartops");
    let local = top.bool("local").unwrap_or(false);
    let wisp = top.section("wisp");
    let self_echo = wisp.bool("self-echo").unwrap_or(false);
    let private = wisp.bool("private").unwrap_or(false);
    let presence = wisp.bool("presence").unwrap_or(false);
    let history = wisp.has_key("history").then(|| history(&wisp)).flatten();
    wisp.finish();

    // Both forms' fields are always read, so that mixing them is reported as such rather than
    // as unknown fields.
    let short = top.has_key("matcher");
    let long = top.has_key("channel") || top.has_key("bridges");
    let matcher = top.string("matcher");
    let short_websocket = top.bool("websocket");
    let short_regex = top.bool("regex");
    let channel = top.section("channel");
    let channel_match = channel.string("match");
    let channel_regex = channel.bool("regex");
    let bridges = top.section("bridges");
    let mqtt = bridge(&bridges, "mqtt");
    let long_websocket = bridge(&bridges, "websocket");
    bridges.finish();

    let form = match (short, long) {
        (true, true) => {
            top.error(
                "matcher",
                "use either `matcher` (short form) or `channel`/`bridges` (Taubyte form), not both",
            );
            None
        }
        (true, false) => Some((
            pattern(&top, "matcher", matcher),
            short_regex,
            short_websocket.unwrap_or(false),
            false,
            (&top, "matcher"),
        )),
        (false, true) => {
            for (key, instead) in [
                ("websocket", "bridges.websocket.enable"),
                ("regex", "channel.regex"),
            ] {
                if top.has_key(key) {
                    let message = format!(
                        "`{key}` belongs to the short form; with `channel`, use `{instead}`"
                    );
                    top.error(key, message);
                }
            }
            if !channel.has_key("match") && !channel.wrong_type() {
                channel.error("", "missing `match`");
            }
            Some((
                pattern(&channel, "match", channel_match),
                Some(channel_regex.unwrap_or(false)),
                long_websocket,
                mqtt,
                (&channel, "match"),
            ))
        }
        (false, false) => {
            if !top.wrong_type() {
                top.error("", "missing channel.match (or matcher)");
            }
            None
        }
    };
    let messaging = form.and_then(|(pattern, regex, websocket, mqtt, (map, key))| {
        match ChannelMatcher::new(&pattern?, regex) {
            Ok(matcher) => Some(Messaging {
                name: name.to_string(),
                application: application.map(str::to_string),
                file,
                id,
                description,
                matcher,
                websocket,
                mqtt,
                local,
                self_echo,
                history,
                private,
                presence,
            }),
            Err(message) => {
                map.error(key, message);
                None
            }
        }
    });
    channel.finish();
    top.finish();
    messaging
}

/// The matcher string, reporting an empty one; `None` also when absent or of the wrong type,
/// which were reported already.
fn pattern(map: &Map, key: &str, value: Option<String>) -> Option<String> {
    match value {
        Some(pattern) if !pattern.is_empty() => Some(pattern),
        None if map.has(key) || !map.has_key(key) => None,
        _ => {
            map.error(key, "the channel matcher must not be empty");
            None
        }
    }
}

/// `wisp.history`: `{size: N, ttl: DURATION}`, both optional.
fn history(wisp: &Map) -> Option<History> {
    let section = wisp.section("history");
    let size = match section.string("size") {
        None => Some(DEFAULT_HISTORY_SIZE),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(size @ 1..=MAX_HISTORY_SIZE) => Some(size),
            _ => {
                let message = format!(
                    "`{text}` is not a message count; give 1 to {MAX_HISTORY_SIZE} (messages kept per channel)"
                );
                section.error("size", message);
                None
            }
        },
    };
    let ttl = match section.string("ttl") {
        None => Some(None),
        Some(text) => match parse_duration(&text) {
            Ok(ttl) if !ttl.is_zero() => Some(Some(ttl)),
            Ok(_) => {
                section.error(
                    "ttl",
                    "`ttl` must be greater than zero (or left out: no age limit)",
                );
                None
            }
            Err(message) => {
                section.error("ttl", message);
                None
            }
        },
    };
    section.finish();
    Some(History {
        size: size?,
        ttl: ttl?,
    })
}

/// `bridges.<name>.enable`, false when absent.
fn bridge(bridges: &Map, name: &'static str) -> bool {
    let section = bridges.section(name);
    let enable = section.bool("enable").unwrap_or(false);
    section.finish();
    enable
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::yaml::read_str;

    fn messaging(source: &str) -> (Option<Messaging>, Vec<String>) {
        read_str(source, |top| parse(top, "m", None, "f.yaml".into()))
    }

    #[test]
    fn seed_form_with_each_matcher_style() {
        let (m, problems) = messaging("matcher: /ws/chan\nwebsocket: true\n");
        let m = m.unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert!(m.websocket && !m.mqtt && !m.local);
        assert!(m.matcher.matches("/ws/chan") && !m.matcher.matches("/ws/chan/x"));

        let (m, _) = messaging("matcher: /chat/[^/]+\n");
        let m = m.unwrap();
        assert_eq!(m.matcher.style(), "regex");
        assert!(m.matcher.matches("/chat/room") && !m.matcher.matches("/chat/a/b"));
        assert!(!m.websocket);

        let (m, _) = messaging("matcher: /notifications/*\n");
        let m = m.unwrap().matcher;
        assert!(m.matches("/notifications/alice") && !m.matches("/notifications/a/b"));
    }

    #[test]
    fn taubyte_form() {
        let source = "local: true\nchannel:\n  regex: true\n  match: notifications/.*\n\
                      bridges:\n  mqtt: {enable: true}\n  websocket:\n    enable: true\n";
        let (m, problems) = messaging(source);
        assert!(problems.is_empty(), "{problems:?}");
        let m = m.unwrap();
        assert!(m.local && m.mqtt && m.websocket);
        assert!(m.matcher.matches("notifications/a/b"));
        // Without `regex: true`, regex characters are literal in the Taubyte form.
        let (m, _) = messaging("channel:\n  match: a+b\n");
        assert!(m.unwrap().matcher.matches("a+b"));
    }

    #[test]
    fn history_in_both_forms() {
        let (m, problems) = messaging("matcher: chat/*\nwisp:\n  history: {size: 50, ttl: 24h}\n");
        assert!(problems.is_empty(), "{problems:?}");
        let history = m.unwrap().history.unwrap();
        assert_eq!(history.size, 50);
        assert_eq!(history.ttl, Some(Duration::from_secs(24 * 3600)));
        let (m, problems) = messaging("channel: {match: news}\nwisp: {history: {}}\n");
        assert!(problems.is_empty(), "{problems:?}");
        let history = m.unwrap().history.unwrap();
        assert_eq!((history.size, history.ttl), (DEFAULT_HISTORY_SIZE, None));
        let (m, _) = messaging("matcher: x\n");
        assert_eq!(m.unwrap().history, None, "off unless asked for");
        let (m, problems) = messaging("matcher: x\nwisp:\n  history: {size: 0, ttl: soon}\n");
        assert!(m.unwrap().history.is_none());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("history.size: `0` is not a message count"),
            "{problems:?}"
        );
        assert!(problems[1].contains("history.ttl"), "{problems:?}");
    }

    #[test]
    fn problems() {
        let (m, problems) = messaging("matcher: x\nbridges: {}\n");
        assert!(m.is_none());
        assert_eq!(
            problems,
            ["f.yaml:1: error: matcher: use either `matcher` (short form) or `channel`/`bridges` \
              (Taubyte form), not both"]
        );
        let (_, problems) = messaging("channel:\n  mach: x\n");
        assert_eq!(
            problems,
            [
                "f.yaml:1: error: channel: missing `match`",
                "f.yaml:2: error: channel.mach: unknown field `mach`, did you mean `match`?",
            ]
        );
        let (_, problems) = messaging("matcher: '[x'\n");
        assert_eq!(
            problems,
            ["f.yaml:1: error: matcher: invalid regex `[x`: unclosed character class"]
        );
    }
}
