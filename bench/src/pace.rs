//! Waiting until an intended send time, precisely.
//!
//! Open-loop load measures latency from when a message or request was *meant* to go out, so a
//! late timer would show up as server latency. tokio's timers have millisecond ticks and would
//! add up to a millisecond to every sample, which would swamp a sub-millisecond p50. So
//! [`wait_until`] sleeps on the timer only until shortly before the deadline and yields its way
//! through the rest: cheap in CPU (the other tasks and the I/O driver keep running) and
//! accurate to a few microseconds.

use std::time::{Duration, Instant};

/// How early the coarse timer sleep ends: more than one tick of tokio's timer wheel.
const SPIN_WINDOW: Duration = Duration::from_millis(2);

/// Returns at `deadline` (or at once if it has passed).
pub async fn wait_until(deadline: Instant) {
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    if deadline - now > SPIN_WINDOW {
        tokio::time::sleep_until((deadline - SPIN_WINDOW).into()).await;
    }
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

/// Seconds (from the command line) as a duration; negative or non-finite values are zero.
pub fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}
