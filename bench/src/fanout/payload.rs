//! The fan-out message: who sent it when, in printable ASCII so every target carries it as
//! is (Redis and NATS are binary-safe, but the Python broker and Wisp's text frames are not).
//!
//! Layout, padded with `.` to the message size (64 bytes in the benchmark):
//!
//! ```text
//! M sssssss nnnnnnnnnnnnnnnn tttttttttttttttt ....
//! │ step    sequence number  intended send time, ns since the run's epoch (all hex)
//! └ kind: M = measured message, P = probe (step = probe round)
//! ```

use std::fmt::Write as _;

/// Bytes before the padding; the smallest allowed message size.
pub const HEADER: usize = 1 + 8 + 16 + 16;

/// What a received message says.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A message of step `step`, meant to be sent `sent_ns` after the epoch.
    Message { step: u32, sent_ns: u64 },
    /// A readiness probe of round `round`.
    Probe { round: u32 },
}

/// A measured message of `size` bytes.
pub fn message(step: u32, seq: u64, sent_ns: u64, size: usize) -> String {
    encode('M', step, seq, sent_ns, size)
}

/// A probe of `size` bytes.
pub fn probe(round: u32, size: usize) -> String {
    encode('P', round, 0, 0, size)
}

fn encode(kind: char, step: u32, seq: u64, sent_ns: u64, size: usize) -> String {
    let mut text = String::with_capacity(size.max(HEADER));
    // Writing into a String cannot fail.
    let _ = write!(text, "{kind}{step:08x}{seq:016x}{sent_ns:016x}");
    while text.len() < size {
        text.push('.');
    }
    text
}

/// Reads a message; `None` for anything else.
pub fn decode(bytes: &[u8]) -> Option<Decoded> {
    let header = bytes.get(..HEADER)?;
    let step = u32::try_from(hex(&header[1..9])?).ok()?;
    match header[0] {
        b'M' => Some(Decoded::Message {
            step,
            sent_ns: hex(&header[25..41])?,
        }),
        b'P' => Some(Decoded::Probe { round: step }),
        _ => None,
    }
}

/// Up to 16 lower-case hex digits (as [`encode`] writes them).
fn hex(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |value, &digit| {
        let nibble = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u64::from(nibble))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_the_requested_size() {
        let text = message(7, 42, 123_456_789, 64);
        assert_eq!(text.len(), 64);
        assert_eq!(
            decode(text.as_bytes()),
            Some(Decoded::Message {
                step: 7,
                sent_ns: 123_456_789
            })
        );
        assert_eq!(
            decode(probe(3, 64).as_bytes()),
            Some(Decoded::Probe { round: 3 })
        );
        assert_eq!(decode(b"MSG:short"), None);
    }
}
