//! How a node joins the cluster: the NATS servers, the node's id and the bounds
//! of its outbound queue, with the checks and defaults for them and the redaction
//! of credentials from URLs for logs.

/// The longest node id accepted; ids travel in every message's header.
pub const MAX_NODE_ID: usize = 64;

/// How much the outbound queue holds while NATS is unreachable or slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Messages waiting to go to NATS.
    pub messages: usize,
    /// Payload bytes waiting to go to NATS.
    pub bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            // A few seconds of a busy node's traffic: rides out a NATS restart or a
            // failover without holding more than a bounded amount of memory.
            messages: 10_000,
            bytes: 64 << 20,
        }
    }
}

/// How a node joins the cluster.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// NATS server URLs (`nats://host:port`); the client also learns the other
    /// servers of a NATS cluster from the one it reaches.
    pub servers: Vec<String>,
    /// This node's id, carried in every message's header (see [`check_node_id`]).
    pub node_id: String,
    pub queue: QueueLimits,
}

/// A node id: 1 to [`MAX_NODE_ID`] bytes of `A-Z a-z 0-9 . _ -`.
pub fn check_node_id(id: &str) -> Result<(), String> {
    let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if id.is_empty() || id.len() > MAX_NODE_ID || !id.bytes().all(valid) {
        return Err(format!(
            "node id `{id}` must be 1 to {MAX_NODE_ID} characters of A-Z, a-z, 0-9, `.`, `_` or `-`"
        ));
    }
    Ok(())
}

/// A node id for a node not given one: host name, process id and a random part,
/// so that two nodes on one host (or two runs of one node) differ.
pub fn default_node_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let host = if host.is_empty() { "wisp".into() } else { host };
    // RandomState is seeded from the OS: enough to tell two runs apart.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u16;
    format!("{host}-{}-{random:04x}", std::process::id())
}

/// `url` with its credentials (`user:password@` or `token@`) replaced by `***`,
/// for logs.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_checked() {
        assert!(check_node_id("node-1.example_2").is_ok());
        assert!(check_node_id(&default_node_id()).is_ok());
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(MAX_NODE_ID + 1)] {
            assert!(check_node_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_are_redacted_from_urls() {
        assert_eq!(redact("nats://u:p@h:4222"), "nats://***@h:4222");
        assert_eq!(redact("nats://h:4222"), "nats://h:4222");
    }
}
