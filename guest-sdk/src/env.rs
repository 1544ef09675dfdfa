//! What the host offers besides events: logging and sleeping.

use std::time::Duration;

use crate::sys::safe;

/// Writes `message` to the host's log (Wisp logs it under target `guest`).
///
/// ```no_run
/// wisp_sdk::log("cache miss, fetching");
/// ```
pub fn log(message: &str) {
    safe::log(message);
}

/// Pauses the function for `duration` (the host's timeout still applies).
///
/// ```no_run
/// wisp_sdk::sleep(std::time::Duration::from_millis(50));
/// ```
pub fn sleep(duration: Duration) {
    safe::sleep(nanos(duration));
}

/// Nanoseconds as the host takes them: an i64, saturating for absurdly long durations.
fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_saturate() {
        assert_eq!(nanos(Duration::from_millis(3)), 3_000_000);
        assert_eq!(nanos(Duration::MAX), i64::MAX);
    }
}
