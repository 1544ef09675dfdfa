//! What a request's conditional and range headers ask of a public file: a 304
//! when the client's copy is current, one byte range, or the whole file.
//!
//! Only what clients send in practice is understood: `If-None-Match` (weak
//! comparison, `*`), `If-Modified-Since` and `If-Range` as IMF-fixdate (the
//! obsolete date formats count as absent, so the client gets the whole file), and
//! one `bytes` range. Several ranges are answered with the whole file, which RFC
//! 9110 allows and which spares building a multipart body.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A file's validators, from its metadata: no read of its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Validators {
    /// `"<size hex>-<mtime ns hex>"`: changes whenever an edit changes the size or
    /// the modification time.
    pub etag: String,
    /// The modification time as an IMF-fixdate (whole seconds).
    pub last_modified: String,
    /// The modification time in whole seconds since the epoch.
    modified_secs: u64,
}

impl Validators {
    pub fn new(size: u64, modified: SystemTime) -> Self {
        let since_epoch = modified
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self {
            etag: format!("\"{size:x}-{:x}\"", since_epoch.as_nanos()),
            last_modified: http_date(since_epoch.as_secs()),
            modified_secs: since_epoch.as_secs(),
        }
    }

    /// Whether a GET or HEAD with these headers gets 304 Not Modified. If-None-Match
    /// decides when present; If-Modified-Since is looked at only without it.
    pub fn not_modified(
        &self,
        if_none_match: Option<&str>,
        if_modified_since: Option<&str>,
    ) -> bool {
        if let Some(tags) = if_none_match {
            return tags
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == self.etag);
        }
        if_modified_since
            .and_then(parse_http_date)
            .is_some_and(|since| self.modified_secs <= since)
    }

    /// Whether a Range may be honoured under `If-Range`: without one always; with
    /// one only if it names this version (the strong ETag, or the exact date).
    pub fn range_applies(&self, if_range: Option<&str>) -> bool {
        match if_range.map(str::trim) {
            None => true,
            Some(tag) if tag.starts_with('"') => tag == self.etag,
            Some(date) => parse_http_date(date) == Some(self.modified_secs),
        }
    }
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wanted {
    /// No range, or one to ignore (several, another unit, bad syntax): 200.
    Whole,
    /// Bytes `first..=last`, both inside the file: 206.
    Part { first: u64, last: u64 },
    /// A well-formed range that starts past the end: 416.
    Unsatisfiable,
}

pub(super) fn wanted(range: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first, last) {
        ("", suffix) => match number(suffix) {
            None => Wanted::Whole,
            Some(0) => Wanted::Unsatisfiable,
            Some(_) if size == 0 => Wanted::Unsatisfiable,
            Some(n) => Wanted::Part {
                first: size.saturating_sub(n),
                last: size - 1,
            },
        },
        (first, last) => {
            let Some(first) = number(first) else {
                return Wanted::Whole;
            };
            let last = match last {
                "" => u64::MAX,
                last => match number(last) {
                    Some(last) if last >= first => last,
                    _ => return Wanted::Whole,
                },
            };
            if first >= size {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part {
                    first,
                    last: last.min(size - 1),
                }
            }
        }
    }
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `secs` since the epoch as an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(secs: u64) -> String {
    let days = secs / 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let rest = secs % 86_400;
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[month as usize - 1],
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// An IMF-fixdate as seconds since the epoch; `None` for anything else.
fn parse_http_date(date: &str) -> Option<u64> {
    let (_weekday, rest) = date.trim().split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u32 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as u32 + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|n| n.parse::<u64>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    if parts.next()? != "GMT" || parts.next().is_some() || !(1..=31).contains(&day) {
        return None;
    }
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_and_parse_as_imf_fixdate() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        for secs in [0, 784_111_777, 951_782_400, 1_798_761_599, 4_102_444_800] {
            assert_eq!(parse_http_date(&http_date(secs)), Some(secs));
        }
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
    }

    #[test]
    fn ranges() {
        let part = |first, last| Wanted::Part { first, last };
        assert_eq!(wanted(None, 10), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-0"), 10), part(0, 0));
        assert_eq!(wanted(Some("bytes=2-"), 10), part(2, 9));
        assert_eq!(wanted(Some("bytes=2-100"), 10), part(2, 9));
        assert_eq!(wanted(Some("bytes=-3"), 10), part(7, 9));
        assert_eq!(wanted(Some("bytes=-30"), 10), part(0, 9));
        assert_eq!(wanted(Some("bytes=10-"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-"), 0), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-5"), 0), Wanted::Unsatisfiable);
        for ignored in [
            "bytes=3-2",
            "bytes=0-1,4-5",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
        ] {
            assert_eq!(wanted(Some(ignored), 10), Wanted::Whole, "{ignored}");
        }
        assert_eq!(
            wanted(Some("bytes=99999999999999999999999-"), 10),
            Wanted::Whole
        );
    }

    #[test]
    fn conditions() {
        let v = Validators::new(10, UNIX_EPOCH + Duration::from_secs(784_111_777));
        let date = v.last_modified.clone();
        assert!(v.not_modified(Some(&v.etag), None));
        assert!(v.not_modified(Some(&format!("\"x\", W/{}", v.etag)), None));
        assert!(v.not_modified(Some("*"), None));
        assert!(!v.not_modified(Some("\"x\""), Some(&date)));
        assert!(v.not_modified(None, Some(&date)));
        assert!(v.not_modified(None, Some("Mon, 07 Nov 1994 00:00:00 GMT")));
        assert!(!v.not_modified(None, Some("Sat, 05 Nov 1994 00:00:00 GMT")));
        assert!(!v.not_modified(None, Some("yesterday")));
        assert!(v.range_applies(None));
        assert!(v.range_applies(Some(&v.etag)));
        assert!(v.range_applies(Some(&date)));
        assert!(!v.range_applies(Some(&format!("W/{}", v.etag))));
        assert!(!v.range_applies(Some("\"x\"")));
    }
}
