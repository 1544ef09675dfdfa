//! The guest's view of messaging: the seam between the pub/sub host calls and the hub.
//!
//! The host calls only need to publish, subscribe, ask for a WebSocket path and know the
//! message limit; [`Channels`] is that much, and messaging's `Hub` implements it. So this
//! module never imports messaging, and the calls can be tested with any implementation.

use crate::state::{FunctionState, LogRead, Range};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// Why messaging refused a guest's call; logged by the host call, never shown to the guest
/// (which gets Taubyte's errno).
pub type Refusal = Box<dyn std::error::Error + Send + Sync>;

/// What a guest's pub/sub calls reach.
pub trait Channels: Send + Sync {
    /// Publishes `data` on `channel` from function `function` in messaging scope `scope`
    /// (the function does not receive its own message).
    fn publish(
        &self,
        function: usize,
        scope: usize,
        channel: &str,
        data: Bytes,
    ) -> Result<(), Refusal>;

    /// Subscribes function `function` to `channel`; idempotent.
    fn subscribe(&self, function: usize, channel: &str) -> Result<(), Refusal>;

    /// The WebSocket path of `channel` in messaging scope `scope`.
    fn websocket_path(&self, scope: usize, channel: &str) -> Result<String, Refusal>;

    /// The largest message a guest may publish, in bytes.
    fn max_message(&self) -> usize;

    /// The WebSocket path of `channel` with a token naming `user`, lasting `ttl` and
    /// allowing publishing if `can_publish` (the plain path where the channel is not private).
    fn websocket_url_for(
        &self,
        scope: usize,
        channel: &str,
        user: &str,
        ttl: std::time::Duration,
        can_publish: bool,
    ) -> Result<String, Refusal> {
        let _ = (scope, user, ttl, can_publish);
        Err(format!("channel `{channel}` hands out no tokens here").into())
    }

    /// Publishes `data` on `channel` as [`Self::publish`] does, but never keeps it in the
    /// channel's history (a Wisp call: an ephemeral message).
    fn publish_ephemeral(
        &self,
        function: usize,
        scope: usize,
        channel: &str,
        data: Bytes,
    ) -> Result<(), Refusal> {
        let _ = (function, scope, data);
        Err(format!("channel `{channel}` takes no ephemeral messages here").into())
    }

    /// Who is on `channel` (`wisp.presence`), by name: each user and its connections.
    fn presence(&self, scope: usize, channel: &str) -> Result<Vec<(String, u32)>, Refusal> {
        let _ = scope;
        Err(format!("channel `{channel}` keeps no presence here").into())
    }

    /// What `channel` (in messaging scope `scope`) keeps of its messages in `range`.
    fn history<'a>(
        &'a self,
        scope: usize,
        channel: &'a str,
        range: Range,
    ) -> BoxFuture<'a, Result<LogRead, Refusal>> {
        let _ = (scope, range);
        let refused = format!("channel `{channel}` keeps no history here");
        Box::pin(std::future::ready(Err(refused.into())))
    }
}

/// Where one invocation's pub/sub calls go, and who is calling.
#[derive(Clone)]
pub struct GuestEnv {
    pub channels: Arc<dyn Channels>,
    /// The calling function's index (it subscribes itself, and never receives its own
    /// publishes).
    pub function: usize,
    /// The function's messaging scope.
    pub scope: usize,
    /// Its databases, storages and globals; `None` when the host runs without a state
    /// engine, and every state call fails.
    pub state: Option<Arc<FunctionState>>,
    /// The client its outbound HTTP goes through; `None` when the host has none, and every
    /// send fails.
    pub egress: Option<Arc<crate::egress::Client>>,
}
