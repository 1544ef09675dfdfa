//! Durations in Go's syntax (`500ms`, `1h15m`) and byte sizes (`64MB`, `64MiB`).
//!
//! [`GoDuration`] and [`Size`] carry a value both ways: parsed from text, and shown in
//! text the same parser reads back (for instance a flag's default in `--help`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Parses a Go duration such as `500ms`, `20s`, `1.5s` or `2h45m30s`.
///
/// Units are `ns`, `us` (or `µs`), `ms`, `s`, `m` and `h`; every number needs one, except a lone
/// `0`. Negative durations are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Err(format!("invalid duration `{text}`: must not be negative"));
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(format!("invalid duration `{text}`"));
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        if unit.contains(char::is_whitespace) {
            return Err(format!(
                "invalid duration `{text}`: no spaces allowed, as in `1m30s`"
            ));
        }
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "invalid duration `{text}`: missing unit (ns, us, ms, s, m or h), as in `{number}s`"
                ))
            }
            _ => {
                return Err(format!(
                    "invalid duration `{text}`: unknown unit `{unit}` (use ns, us, ms, s, m or h)"
                ))
            }
        };
        let too_large = || format!("invalid duration `{text}`: too large");
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        // Digits past the 18th are below a nanosecond for every unit.
        let fraction = &fraction[..fraction.len().min(18)];
        let fraction_nanos = if fraction.is_empty() {
            0
        } else {
            let digits: u128 = fraction.parse().map_err(|_| too_large())?;
            digits * scale / 10u128.pow(fraction.len() as u32)
        };
        nanos = whole
            .checked_mul(scale)
            .and_then(|n| n.checked_add(fraction_nanos))
            .and_then(|n| n.checked_add(nanos))
            .filter(|&n| n <= u128::from(u64::MAX))
            .ok_or_else(too_large)?;
        rest = tail;
    }
    // The filter above keeps `nanos` within u64.
    Ok(Duration::from_nanos(nanos as u64))
}

/// Parses a byte size: `100B`, `512KB`, `32MB`, `1GB` (powers of 1000) or `64KiB`, `64MiB`,
/// `1GiB` (powers of 1024). Units are case-insensitive; a bare integer counts bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty size".into());
    }
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let unit = unit.trim_start();
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size `{text}`: unknown unit `{unit}` (use B, KB, MB, GB, KiB, MiB or GiB)"
            ))
        }
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || number.ends_with('.') {
        return Err(format!(
            "invalid size `{text}`: expected a number and a unit, as in `64MB`"
        ));
    }
    let too_large = || format!("invalid size `{text}`: too large");
    let whole: u128 = whole.parse().map_err(|_| too_large())?;
    let mut bytes = whole * u128::from(scale);
    if !fraction.is_empty() {
        let fraction = &fraction[..fraction.len().min(18)];
        let digits: u128 = fraction.parse().map_err(|_| too_large())?;
        let denominator = 10u128.pow(fraction.len() as u32);
        if digits * u128::from(scale) % denominator != 0 {
            return Err(format!(
                "invalid size `{text}`: not a whole number of bytes"
            ));
        }
        bytes += digits * u128::from(scale) / denominator;
    }
    u64::try_from(bytes).map_err(|_| too_large())
}

/// A byte count, read by [`parse_size`] and shown in the largest binary unit that
/// holds it exactly: `4MiB`, `1536KiB`, `1000B`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

impl Size {
    /// The count as a `usize`, saturating where `usize` is narrower.
    pub fn to_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl From<usize> for Size {
    fn from(bytes: usize) -> Self {
        Self(u64::try_from(bytes).unwrap_or(u64::MAX))
    }
}

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_size(s).map(Self)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        let bytes = self.0;
        match UNITS
            .iter()
            .find(|(scale, _)| bytes != 0 && bytes % scale == 0)
        {
            Some((scale, unit)) => write!(f, "{}{unit}", bytes / scale),
            None => write!(f, "{bytes}B"),
        }
    }
}

/// A duration, read by [`parse_duration`] and shown as Go shows one: `10s`, `500ms`,
/// `1.5s`, `1m30s`, `2h0m0s`, `0s` (with `us` for microseconds, which Go spells `µs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub Duration);

impl FromStr for GoDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(Self)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// `nanos` in units of `scale` nanoseconds, with as many decimals as it needs.
        fn decimal(f: &mut fmt::Formatter<'_>, nanos: u128, scale: u128) -> fmt::Result {
            write!(f, "{}", nanos / scale)?;
            let fraction = nanos % scale;
            if fraction != 0 {
                let width = scale.ilog10() as usize;
                let digits = format!("{fraction:0width$}");
                write!(f, ".{}", digits.trim_end_matches('0'))?;
            }
            Ok(())
        }
        let nanos = self.0.as_nanos();
        let (second, minute, hour) = (1_000_000_000, 60_000_000_000, 3_600_000_000_000);
        if nanos == 0 {
            return f.write_str("0s");
        }
        if nanos < second {
            let (scale, unit) = match nanos {
                0..1_000 => (1, "ns"),
                1_000..1_000_000 => (1_000, "us"),
                _ => (1_000_000, "ms"),
            };
            decimal(f, nanos, scale)?;
            return f.write_str(unit);
        }
        if nanos >= hour {
            write!(f, "{}h", nanos / hour)?;
        }
        if nanos >= minute {
            write!(f, "{}m", nanos % hour / minute)?;
        }
        decimal(f, nanos % minute, second)?;
        f.write_str("s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("20s"), Ok(ms(20_000)));
        assert_eq!(parse_duration("1h15m"), Ok(ms(4_500_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("2m30s"), Ok(ms(150_000)));
        assert_eq!(parse_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_duration("+3s"), Ok(ms(3_000)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("1.000000001s"), Ok(Duration::new(1, 1)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 1m "), Ok(ms(60_000)));
    }

    #[test]
    fn bad_durations() {
        let err = |s| parse_duration(s).unwrap_err();
        assert!(err("20").contains("missing unit"), "{}", err("20"));
        assert!(err("1h20").contains("missing unit"));
        assert!(err("20 s").contains("no spaces"));
        assert!(err("20sec").contains("unknown unit `sec`"));
        assert!(err("-1s").contains("negative"));
        assert!(err("1..2s").contains("invalid duration"));
        assert!(err("s").contains("invalid duration"));
        assert!(err(".s").contains("invalid duration"));
        assert!(err("").contains("empty"));
        assert!(err("9999999999999h").contains("too large"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("32MB"), Ok(32_000_000));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("1gib"), Ok(1 << 30));
        assert_eq!(parse_size("512KB"), Ok(512_000));
        assert_eq!(parse_size("512kib"), Ok(512 << 10));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64 MB"), Ok(64_000_000));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
    }

    #[test]
    fn sizes_show_in_the_largest_exact_binary_unit() {
        let shown = |bytes: u64| Size(bytes).to_string();
        assert_eq!(shown(4 << 20), "4MiB");
        assert_eq!(shown(16 << 20), "16MiB");
        assert_eq!(shown(64 << 20), "64MiB");
        assert_eq!(shown(1 << 30), "1GiB");
        assert_eq!(shown(3 << 29), "1536MiB");
        assert_eq!(shown(1536), "1536B");
        assert_eq!(shown(1000), "1000B");
        assert_eq!(shown(0), "0B");
        for bytes in [0, 1, 1000, 1024, 1536, 4 << 20, 3 << 29, 1 << 40, u64::MAX] {
            assert_eq!(Size::from_str(&shown(bytes)), Ok(Size(bytes)), "{bytes}");
        }
    }

    #[test]
    fn durations_show_as_go_shows_them() {
        let shown = |d: Duration| GoDuration(d).to_string();
        assert_eq!(shown(ms(10_000)), "10s");
        assert_eq!(shown(ms(5_000)), "5s");
        assert_eq!(shown(ms(500)), "500ms");
        assert_eq!(shown(ms(1_500)), "1.5s");
        assert_eq!(shown(ms(90_000)), "1m30s");
        assert_eq!(shown(ms(3_600_000)), "1h0m0s");
        assert_eq!(shown(ms(4_500_000)), "1h15m0s");
        assert_eq!(shown(Duration::from_micros(1_500)), "1.5ms");
        assert_eq!(shown(Duration::from_micros(10)), "10us");
        assert_eq!(shown(Duration::from_nanos(7)), "7ns");
        assert_eq!(shown(Duration::new(1, 1)), "1.000000001s");
        assert_eq!(shown(Duration::ZERO), "0s");
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(1_001),
            ms(999),
            Duration::new(59, 999_999_999),
            ms(3_599_999),
            Duration::new(7_322, 5),
            Duration::from_nanos(u64::MAX),
        ] {
            assert_eq!(GoDuration::from_str(&shown(d)), Ok(GoDuration(d)), "{d:?}");
        }
    }

    #[test]
    fn bad_sizes() {
        let err = |s| parse_size(s).unwrap_err();
        assert!(err("12XB").contains("unknown unit `XB`"));
        assert!(err("MB").contains("expected a number"));
        assert!(err("1.5B").contains("whole number"));
        assert!(err("1.B").contains("expected a number"));
        assert!(err("99999999999GB").contains("too large"));
        assert!(err("").contains("empty"));
    }
}
