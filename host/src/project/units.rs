//! Durations in Go's syntax (`500ms`, `1h15m`) and byte sizes (`64MB`, `64MiB`).

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
