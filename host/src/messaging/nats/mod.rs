//! The cluster broker: Wisp nodes share channels through NATS.
//!
//! `wisp serve --cluster nats://HOST:PORT[,...]` puts a [`NatsBroker`] behind the
//! [`Broker`] seam; without `--cluster` none of this runs. Every node connects to
//! NATS with the official client (async-nats), which reconnects on its own and
//! re-subscribes everything it had.
//!
//! # Delivery
//! - **Publish** stays synchronous and never waits on NATS: the message goes at once
//!   to this node's WebSocket clients and `local: true` functions (inner
//!   [`LocalBroker`]s), then into a bounded outbound queue that one task drains into
//!   NATS. A full queue refuses the publish for the cluster
//!   ([`PublishError::ClusterBacklog`], errno 21 for a guest): this node's clients
//!   and `local: true` functions already have it; no other node and no function
//!   subscribed cluster-wide (this node's included) gets it.
//! - **WebSocket clients**: per topic with a client on this node, one plain NATS
//!   subscription feeds this node's clients. A message whose origin header names
//!   this node is skipped there (its clients got it when it was published).
//! - **Pub/sub functions** are not fed by local publishes: each (function, topic)
//!   has a NATS *queue* subscription in group `wisp.<hash>.<function>`, so that one
//!   node of the cluster, not every node, runs the function for each message. The
//!   origin function travels in a header, so a function still never receives its
//!   own publishes (function indices agree across nodes running one project).
//! - **`local: true`** ([`Reach::Node`]): a channel so marked never goes to NATS (its
//!   clients and functions get this node's messages); a trigger so marked keeps its
//!   function on this node's messages only.
//!
//! # Subjects
//! A topic `<hash>/<channel>` is NATS subject `wisp.<hash>.<channel>`, each part
//! escaped to one NATS token ([`escape`]): bytes `A-Z a-z 0-9 -` stand as they are,
//! every other byte (`_` itself included) becomes `_` and two lower-case hex digits.
//! So `/chat/room` is `_2fchat_2froom`: no `.`, `*`, `>`, space or non-ASCII byte
//! ever reaches a subject, a name cannot widen a subscription, and two names never
//! share a subject (the escape is reversible). A 1 KiB channel name (the limit)
//! escapes to at most 3 KiB, inside NATS's 4 KiB protocol line.
//!
//! # Headers
//! One header, `Wisp-Origin: <kind> <function> <node>`: kind `t` (text) or `b`
//! (binary), the publishing function's index or `-`, the publishing node's id. A
//! message without it (published by another NATS client on a `wisp.` subject) is
//! delivered as from outside Wisp: text when it is UTF-8, else binary.
//!
//! # Faults
//! While NATS is unreachable, publishes wait in the outbound queue, up to
//! [`QueueLimits`] (10,000 messages or 64 MiB by default), then are refused for the
//! cluster. The queue drains, in order, once the link is back. NATS core delivery is
//! at most once: messages in the socket's buffers when a connection dies are lost,
//! and so are messages published while a subscriber's node is cut off.
//!
//! # Layout
//! - `nats/settings.rs`: [`NatsConfig`], [`QueueLimits`], node ids, URL redaction.
//! - `nats/link.rs`: the connection to NATS, the outbound queue and the
//!   subscription tasks.
//! - `nats/broker.rs`: [`NatsBroker`], which subscriber is fed from where.
//! - `nats/wire.rs`: the wire format (subjects, queue groups, the header).
//!
//! [`Broker`]: crate::messaging::broker::Broker
//! [`LocalBroker`]: crate::messaging::broker::LocalBroker
//! [`PublishError::ClusterBacklog`]: crate::messaging::broker::PublishError::ClusterBacklog
//! [`Reach::Node`]: crate::messaging::broker::Reach::Node

mod broker;
mod link;
mod settings;
mod wire;

pub use broker::NatsBroker;
pub use settings::{check_node_id, default_node_id, redact, NatsConfig, QueueLimits, MAX_NODE_ID};
pub use wire::{escape, subject};
