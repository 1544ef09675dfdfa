//! Clocks for guests, coarsened.
//!
//! A guest can tell time (`time.Now()`, `Instant::now()`), but only to
//! [`RESOLUTION`]: fine-grained timers are the raw material of timing side
//! channels between guests sharing a host, and no function needs better.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// What guests see of the clock, at best.
pub const RESOLUTION: Duration = Duration::from_micros(100);

fn coarse(d: Duration) -> Duration {
    let step = RESOLUTION.as_nanos();
    Duration::from_nanos((d.as_nanos() / step * step) as u64)
}

/// Wall-clock time, rounded down to [`RESOLUTION`].
pub struct CoarseWallClock;

impl HostWallClock for CoarseWallClock {
    fn resolution(&self) -> Duration {
        RESOLUTION
    }

    fn now(&self) -> Duration {
        coarse(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        )
    }
}

/// Monotonic time since the process started, rounded down to [`RESOLUTION`].
pub struct CoarseMonotonicClock;

impl HostMonotonicClock for CoarseMonotonicClock {
    fn resolution(&self) -> u64 {
        RESOLUTION.as_nanos() as u64
    }

    fn now(&self) -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        coarse(START.get_or_init(Instant::now).elapsed()).as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_whole_steps() {
        let step = RESOLUTION.as_nanos() as u64;
        assert_eq!(CoarseMonotonicClock.now() % step, 0);
        assert_eq!(CoarseWallClock.now().as_nanos() as u64 % step, 0);
        assert_eq!(
            coarse(Duration::from_nanos(250_123)),
            Duration::from_micros(200)
        );
    }
}
