//! The guide's live data updates: one channel every dashboard listens on.

use wisp_sdk::{pubsub, Event, Result};

use crate::reply;

/// The channel every update goes to.
const LIVE_UPDATES: &str = "live-updates";

/// `POST` with any body: publishes it unchanged to `live-updates`. Answers `Update broadcasted`.
#[wisp_sdk::function(name = "broadcastUpdate")]
fn broadcast_update(event: Event) -> Result<()> {
    reply::handle(event, |http| {
        let update = reply::body(http)?;
        pubsub::channel(LIVE_UPDATES)?.publish(&update)?;
        http.write(b"Update broadcasted")?;
        Ok(())
    })
}
