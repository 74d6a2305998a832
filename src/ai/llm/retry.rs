//! When to ask again, and after how long.
//!
//! * `Retry-After` (RFC 9110 section 10.2.3) is either delay-seconds or an
//!   HTTP-date; a recipient must accept all three HTTP-date forms (section
//!   5.6.7: IMF-fixdate, RFC 850, asctime). Parsed by hand here.
//! * `retry-after-ms` is OpenAI's finer header; the official SDKs read it
//!   first (openai-python `_base_client.py`, `_parse_retry_after_header`),
//!   and so does this client.
//! * A 429 whose error is `insufficient_quota` (OpenAI "Error codes": "You
//!   exceeded your current quota, please check your plan and billing
//!   details") is not a rate limit: waiting does not end it, so it is never
//!   retried. Anthropic's monthly spend limit (429 with
//!   `error.details.error_code = "enforced_spend_limit_reached"`, "Errors")
//!   is the same case.
//! * Backoff otherwise: exponential from `[ai] backoff_ms`, with jitter
//!   (0.5x to 1.5x) so that many bots do not retry in step.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::feed::synthetic::Rng;

/// Longest single backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest wait a server may ask for (anything above is read as this).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The wait a response asks for: `retry-after-ms` when it parses, else
/// `retry-after` as seconds or an HTTP-date (relative to `now`; a date in
/// the past is no wait).
pub fn retry_after(ms: Option<&str>, header: Option<&str>, now: SystemTime) -> Option<Duration> {
    let from_ms = ms
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        // Clamped before the conversion: a server may send any number
        // (`1e300` would not fit a Duration).
        .map(|v| Duration::from_secs_f64((v / 1e3).min(MAX_RETRY_AFTER.as_secs_f64())));
    from_ms.or_else(|| header.and_then(|h| parse_retry_after(h, now))).map(|d| d.min(MAX_RETRY_AFTER))
}

/// One `Retry-After` value: delay-seconds (fractions tolerated) or an
/// HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER.as_secs_f64())));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

fn month(s: &str) -> Option<u32> {
    MONTHS.iter().position(|m| s.eq_ignore_ascii_case(m)).map(|i| i as u32 + 1)
}

/// An HTTP-date in any of RFC 9110's three forms:
/// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT`,
/// `Sun Nov  6 08:49:37 1994`.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let tokens: Vec<&str> = s.split([' ', ',', '-']).filter(|t| !t.is_empty()).collect();
    // The day name comes first in every form; it is redundant.
    let rest = tokens.get(1..)?;
    let (day, mon, year, time) = match rest {
        // asctime: month day time year
        [m, d, t, y] if month(m).is_some() => (*d, month(m)?, *y, *t),
        // IMF-fixdate / RFC 850: day month year time GMT
        [d, m, y, t, z] if z.eq_ignore_ascii_case("GMT") => (*d, month(m)?, *y, *t),
        _ => return None,
    };
    let day: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let mut year: i64 = year.parse().ok()?;
    if year < 100 {
        // RFC 850's two-digit year (RFC 9110 5.6.7: the most recent year with
        // those digits that is not more than 50 years ahead).
        year += if year < 70 { 2000 } else { 1900 };
    }
    let hms: Vec<u32> = time.split(':').map(|x| x.parse().ok()).collect::<Option<Vec<u32>>>()?;
    let [h, mi, se] = hms[..] else { return None };
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(year, mon, day);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se);
    u64::try_from(secs).ok().map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// `t` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), whole seconds.
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let month = MONTHS[(m - 1) as usize];
    let month = format!("{}{}", month[..1].to_ascii_uppercase(), &month[1..]);
    format!(
        "{}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Whether an error body's code/type says the account is out of credit
/// (never retried), as opposed to rate-limited.
pub fn quota_exhausted(code: Option<&str>, kind: Option<&str>, detail_code: Option<&str>) -> bool {
    [code, kind].iter().flatten().any(|c| c.eq_ignore_ascii_case("insufficient_quota"))
        || detail_code.is_some_and(|c| c.eq_ignore_ascii_case("enforced_spend_limit_reached"))
}

/// Exponential backoff with jitter.
pub struct Backoff {
    first: Duration,
    rng: Rng,
}

impl Backoff {
    pub fn new(first: Duration) -> Self {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Self { first, rng: Rng(seed | 1) }
    }

    /// The wait before retry `n` (1-based): `first x 2^(n-1)`, at most 30 s,
    /// times 0.5 to 1.5.
    pub fn wait(&mut self, n: u32) -> Duration {
        let base = self.first.saturating_mul(1u32 << n.saturating_sub(1).min(16)).min(MAX_BACKOFF);
        base.mul_f64(0.5 + self.rng.below(1_000) as f64 / 1_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_in_all_three_forms() {
        // RFC 9110 5.6.7's example: 784111777 s after the epoch.
        let want = UNIX_EPOCH + Duration::from_secs(784_111_777);
        for s in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(parse_http_date(s), Some(want), "{s}");
        }
        assert_eq!(http_date(want), "Sun, 06 Nov 1994 08:49:37 GMT");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(parse_http_date(&http_date(t)), Some(t));
        for bad in
            ["", "soon", "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 8:49 GMT"]
        {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_prefers_milliseconds_then_seconds_then_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(retry_after(Some("1500"), Some("9"), now), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(Some("x"), Some("9"), now), Some(Duration::from_secs(9)));
        assert_eq!(retry_after(None, Some(" 2.5 "), now), Some(Duration::from_millis(2500)));
        assert_eq!(retry_after(None, Some("Sun, 06 Nov 1994 08:49:40 GMT"), now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(None, Some("Sun, 06 Nov 1994 08:00:00 GMT"), now), Some(Duration::ZERO));
        assert_eq!(retry_after(None, Some("-1"), now), None);
        assert_eq!(retry_after(None, None, now), None);
        assert_eq!(retry_after(None, Some("999999"), now), Some(MAX_RETRY_AFTER));
        // Whatever a server sends, never a panic: huge, odd, negative.
        for v in ["1e300", "99999999999999999999999", "inf", "NaN", "-5", "1e-300", "0x10", ""] {
            let d = retry_after(Some(v), Some(v), now);
            assert!(d.is_none_or(|d| d <= MAX_RETRY_AFTER), "{v}: {d:?}");
        }
        assert_eq!(retry_after(Some("1e300"), None, now), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn quota_is_told_from_rate_limits() {
        assert!(quota_exhausted(Some("insufficient_quota"), None, None));
        assert!(quota_exhausted(None, Some("insufficient_quota"), None));
        assert!(quota_exhausted(None, Some("rate_limit_error"), Some("enforced_spend_limit_reached")));
        assert!(!quota_exhausted(Some("rate_limit_exceeded"), Some("requests"), None));
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let mut b = Backoff::new(Duration::from_millis(100));
        for n in 1..=3 {
            let w = b.wait(n);
            let base = 100.0 * f64::from(1u32 << (n - 1));
            assert!(w.as_secs_f64() * 1e3 >= base * 0.5 && w.as_secs_f64() * 1e3 <= base * 1.5, "{n}: {w:?}");
        }
        assert!(b.wait(40) <= MAX_BACKOFF.mul_f64(1.5));
    }
}
