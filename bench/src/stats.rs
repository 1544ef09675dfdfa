//! Latency histograms (HdrHistogram, microseconds) and their JSON summary.

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::time::Duration;

/// A latency histogram in microseconds, from 1 µs to 100 s at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts (low ≥ 1, high ≥ 2·low, 3 digits).
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// Records `latency`, clamped into the histogram's range (a sample is never lost).
pub fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}

/// p50, p99, p99.9 and max in microseconds, plus the sample count.
pub fn summary(histogram: &Histogram<u64>) -> Value {
    if histogram.is_empty() {
        return json!({"samples": 0});
    }
    json!({
        "samples": histogram.len(),
        "p50_us": histogram.value_at_quantile(0.50),
        "p99_us": histogram.value_at_quantile(0.99),
        "p999_us": histogram.value_at_quantile(0.999),
        "max_us": histogram.max(),
    })
}
