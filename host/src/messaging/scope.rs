//! Which channels a function or WebSocket client may use.
//!
//! The project's messaging resources form one scope; each application forms
//! another, with its own resources plus the project's. A scope's hash prefixes its
//! topics and WebSocket URLs, so two applications' `chat` channels never meet.

use super::broker::Reach;
use super::hash::project_hash;
use crate::project::{ChannelMatcher, History, Project};
use std::collections::HashMap;
use std::sync::Arc;

/// The longest channel name accepted, in bytes. Names are routing keys and URL
/// parts; 1 KiB is far past any real one and keeps per-message overhead bounded.
pub const MAX_CHANNEL_LEN: usize = 1024;

/// Why a channel was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("channel name is empty")]
    EmptyChannel,
    #[error("channel name is {0} bytes long; the limit is {MAX_CHANNEL_LEN}")]
    TooLong(usize),
    #[error("channel name is not valid UTF-8")]
    NotUtf8,
    #[error("no messaging resource matches channel `{0}`")]
    NoResource(String),
    #[error(
        "channel `{0}` is matched, but no matching messaging resource enables the websocket bridge"
    )]
    NoWebSocket(String),
}

struct Resource {
    /// Its name, `application/name` in an application: the metrics' label.
    name: Arc<str>,
    matcher: ChannelMatcher,
    websocket: bool,
    self_echo: bool,
    history: Option<History>,
    /// `local: true`: the channel's messages stay on the node they are published on.
    local: bool,
    /// `wisp.private`: WebSocket clients need a token.
    private: bool,
    /// `wisp.presence`: who is on the channel is kept.
    presence: bool,
}

/// The messaging resources visible from one place (the project or an application).
pub struct Scope {
    pub hash: String,
    pub application: Option<String>,
    resources: Vec<Resource>,
    /// Some resource is `local: true` (else [`Scope::reach`] needs no matching).
    any_local: bool,
}

impl Scope {
    /// Whether pub/sub on `channel` is allowed here; `websocket` also asks for the bridge.
    pub fn check(&self, channel: &str, websocket: bool) -> Result<(), AccessError> {
        if channel.is_empty() {
            return Err(AccessError::EmptyChannel);
        }
        if channel.len() > MAX_CHANNEL_LEN {
            return Err(AccessError::TooLong(channel.len()));
        }
        let mut matching = self
            .resources
            .iter()
            .filter(|r| r.matcher.matches(channel))
            .peekable();
        if matching.peek().is_none() {
            return Err(AccessError::NoResource(channel.to_owned()));
        }
        if websocket && !matching.any(|r| r.websocket) {
            return Err(AccessError::NoWebSocket(channel.to_owned()));
        }
        Ok(())
    }

    /// The name of the first resource (in file order) that allows `channel`.
    pub fn resource_of(&self, channel: &str) -> Option<&Arc<str>> {
        self.resources
            .iter()
            .find(|r| r.matcher.matches(channel))
            .map(|r| &r.name)
    }

    /// Whether a WebSocket client on `channel` also receives its own messages.
    pub fn self_echo(&self, channel: &str) -> bool {
        self.resources
            .iter()
            .any(|r| r.self_echo && r.matcher.matches(channel))
    }

    /// Whether a WebSocket client of `channel` needs a token: any matching resource says
    /// `wisp.private`.
    pub fn private(&self, channel: &str) -> bool {
        self.resources
            .iter()
            .any(|r| r.private && r.matcher.matches(channel))
    }

    /// Whether who is on `channel` is kept: any matching resource says `wisp.presence`.
    pub fn presence(&self, channel: &str) -> bool {
        self.resources
            .iter()
            .any(|r| r.presence && r.matcher.matches(channel))
    }

    /// How much of `channel` is kept (`wisp.history`), if any matching resource keeps it
    /// (the first that does, in file order).
    pub fn history(&self, channel: &str) -> Option<History> {
        self.resources
            .iter()
            .filter(|r| r.matcher.matches(channel))
            .find_map(|r| r.history)
    }

    /// How far messages on `channel` go: this node only if a matching messaging
    /// resource says `local: true`, else the whole cluster.
    pub fn reach(&self, channel: &str) -> Reach {
        let local = self.any_local
            && self
                .resources
                .iter()
                .any(|r| r.local && r.matcher.matches(channel));
        if local {
            Reach::Node
        } else {
            Reach::Cluster
        }
    }

    /// The broker topic for `channel` in this scope.
    pub fn topic(&self, channel: &str) -> String {
        format!("{}/{channel}", self.hash)
    }

    /// The broker topic of the private messages to `user` in this scope (the broker
    /// protocol's `PUBLISH:@<user>:`). A `\0` follows the hash, so no channel's topic is
    /// ever one of these.
    pub fn user_topic(&self, user: &str) -> String {
        format!("{}\0user/{user}", self.hash)
    }

    /// The broker topic of `channel`'s typing indicators (`USER_TYPING:`), beside its own.
    pub fn typing_topic(&self, channel: &str) -> String {
        format!("{}\0typing/{channel}", self.hash)
    }

    /// The broker topic of `channel`'s joins and leaves for functions (`wisp.presence-events`).
    pub fn presence_events_topic(&self, channel: &str) -> String {
        presence_events_topic(&self.hash, channel)
    }

    /// The WebSocket path for `channel`, without a leading slash, as Taubyte returns
    /// it: `ws-<hash>/<channel>`, with characters outside a URL path percent-encoded.
    pub fn websocket_path(&self, channel: &str) -> String {
        format!("ws-{}/{}", self.hash, encode_path(channel))
    }
}

/// The topic of the joins and leaves of `channel` of scope `hash`, for functions.
pub fn presence_events_topic(hash: &str, channel: &str) -> String {
    format!("{hash}\0presence-events/{channel}")
}

/// All scopes of a project: index 0 is the project, then one per application.
pub struct Scopes {
    scopes: Vec<Scope>,
    by_hash: HashMap<String, usize>,
}

impl Scopes {
    pub fn from_project(project: &Project) -> Self {
        let resources_of = |app: Option<&str>| -> Vec<Resource> {
            project
                .messaging
                .iter()
                .filter(|m| m.application.is_none() || m.application.as_deref() == app)
                .map(|m| Resource {
                    name: match &m.application {
                        Some(application) => format!("{application}/{}", m.name).into(),
                        None => m.name.as_str().into(),
                    },
                    matcher: m.matcher.clone(),
                    websocket: m.websocket,
                    self_echo: m.self_echo,
                    history: m.history,
                    local: m.local,
                    private: m.private,
                    presence: m.presence,
                })
                .collect()
        };
        let scope = |application: Option<&String>| {
            let resources = resources_of(application.map(String::as_str));
            Scope {
                hash: project_hash(&project.id, application.map(String::as_str)),
                application: application.cloned(),
                any_local: resources.iter().any(|r| r.local),
                resources,
            }
        };
        let mut scopes = vec![scope(None)];
        scopes.extend(project.applications.iter().map(|app| scope(Some(app))));
        let by_hash = scopes
            .iter()
            .enumerate()
            .map(|(i, s)| (s.hash.clone(), i))
            .collect();
        Self { scopes, by_hash }
    }

    /// The scope index for resources of `application` (`None`: the project).
    pub fn index_of(&self, application: Option<&str>) -> usize {
        self.scopes
            .iter()
            .position(|s| s.application.as_deref() == application)
            .unwrap_or(0)
    }

    pub fn get(&self, index: usize) -> &Scope {
        &self.scopes[index]
    }

    /// The index of the scope a WebSocket URL's hash names.
    pub fn by_hash(&self, hash: &str) -> Option<usize> {
        self.by_hash.get(hash).copied()
    }

    /// Whether `other` has the same scopes, hash for hash, in the same order: what a
    /// reload needs, as open WebSockets hold a scope by its index.
    pub fn same_hashes(&self, other: &Scopes) -> bool {
        self.scopes.len() == other.scopes.len()
            && self
                .scopes
                .iter()
                .zip(&other.scopes)
                .all(|(a, b)| a.hash == b.hash)
    }
}

/// Percent-encodes what cannot stand in a URL path; `/` stays, so a channel like
/// `/chat/room` reads naturally in the URL.
fn encode_path(channel: &str) -> String {
    let mut out = String::with_capacity(channel.len());
    for byte in channel.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'/'
            | b':'
            | b'@' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Reverses [`encode_path`] (and any other percent-encoding a client used).
pub fn decode_path(path: &str) -> Option<String> {
    unescape(path, b'%')
}

/// Decodes `<escape><two hex digits>` sequences in `text` back to bytes; `None` for a
/// broken escape or a result that is not UTF-8.
pub(crate) fn unescape(text: &str, escape: u8) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == escape {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip_through_the_url() {
        for channel in ["/ws/chan", "chat room", "a%b", "ünï/cödé", "x?y#z"] {
            let encoded = encode_path(channel);
            assert!(!encoded.contains(' ') && !encoded.contains('?') && !encoded.contains('#'));
            assert_eq!(decode_path(&encoded).as_deref(), Some(channel));
        }
        assert_eq!(decode_path("%zz"), None);
    }
}
