//! Walk-forward: does the point that was best on the past stay good on the
//! next stretch? The recordings' time range (by receive timestamp) is split
//! into consecutive train/test windows; on each, the sweep's best point on
//! the training window is reported on the test window right after it, next
//! to the best point in hindsight on that test window. A large gap between
//! the two is overfitting, made visible.
//!
//! Windows roll forward by one test length, so the test windows are
//! consecutive and never overlap; a last test window under half the asked
//! length is dropped. Each window is a backtest of its own over
//! the lines in it, starting flat: the lines before the window are replayed
//! first without quoting (a recording's book is built from its one REST
//! snapshot at the start, and features need history), then trading starts
//! at the window's first line and the replay stops at its end.

use std::ops::Range;

use crate::feed::recording::{split_line, MemoryLines};
use crate::research::sweep::{Metric, Outcome};

/// Why windows could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("{flag} {text:?} is not a duration: write e.g. 90s, 15m, 1h, 500ms (a plain number is seconds)")]
    Duration { flag: &'static str, text: String },
    #[error(
        "the recordings span {span_s:.1} s, too short for one {train_s:.1} s training window and a test window after it; \
         use shorter --train/--test or fewer --windows"
    )]
    TooShort { span_s: f64, train_s: f64 },
    #[error("walk-forward needs --train and --test durations, or --windows N (N >= 1)")]
    NoSpec,
    #[error("the recordings hold no timestamped lines")]
    NoLines,
}

/// How to cut the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// Fixed lengths (ns).
    Durations { train_ns: i64, test_ns: i64 },
    /// `n` test windows: the range in `n + 1` equal slices; window k trains
    /// on slice k and tests on slice k + 1.
    Count(usize),
}

/// One train/test pair, receive times in ns (end exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub index: usize,
    pub train: Range<i64>,
    pub test: Range<i64>,
}

/// Parses `90s`, `15m`, `1h`, `500ms`, `2d`, or a plain number of seconds.
pub fn parse_duration(flag: &'static str, text: &str) -> Result<i64, WalkError> {
    let bad = || WalkError::Duration { flag, text: text.to_string() };
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "s" => 1e9,
        "ms" => 1e6,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        _ => return Err(bad()),
    };
    let ns = v * scale;
    if !(1.0..1e18).contains(&ns) {
        return Err(bad());
    }
    Ok(ns as i64)
}

/// The first and one past the last receive time in the lines.
pub fn time_range(parts: &[MemoryLines]) -> Option<Range<i64>> {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for p in parts {
        for line in p.data[p.range.clone()].split(|&b| b == b'\n') {
            if let Some((ts, _)) = split_line(line) {
                lo = lo.min(ts as i64);
                hi = hi.max(ts as i64);
            }
        }
    }
    (lo <= hi).then(|| lo..hi.saturating_add(1))
}

/// Splits `range` into windows.
pub fn split(range: Range<i64>, spec: WindowSpec) -> Result<Vec<Window>, WalkError> {
    let span = range.end - range.start;
    let (train_ns, test_ns) = match spec {
        WindowSpec::Durations { train_ns, test_ns } if train_ns > 0 && test_ns > 0 => (train_ns, test_ns),
        WindowSpec::Count(n) if n >= 1 => {
            let slice = span / (n as i64 + 1);
            if slice <= 0 {
                return Err(WalkError::TooShort { span_s: span as f64 / 1e9, train_s: 0.0 });
            }
            (slice, slice)
        }
        _ => return Err(WalkError::NoSpec),
    };
    let mut windows = Vec::new();
    let mut start = range.start;
    loop {
        let train = start..start.saturating_add(train_ns);
        if train.end >= range.end {
            break;
        }
        let mut test = train.end..train.end.saturating_add(test_ns).min(range.end);
        // The count split's last slice takes the remainder of the division.
        if matches!(spec, WindowSpec::Count(n) if windows.len() + 1 == n) {
            test.end = range.end;
        }
        // A last test window under half the asked length says too little to
        // judge by (and a range a hair past a whole window would end in a
        // window of a few lines).
        if matches!(spec, WindowSpec::Durations { .. }) && (test.end - test.start) * 2 < test_ns {
            break;
        }
        windows.push(Window { index: windows.len(), train, test });
        if matches!(spec, WindowSpec::Count(n) if windows.len() == n) {
            break;
        }
        start = start.saturating_add(test_ns);
    }
    if windows.is_empty() {
        return Err(WalkError::TooShort { span_s: span as f64 / 1e9, train_s: train_ns as f64 / 1e9 });
    }
    Ok(windows)
}

/// The lines received before `end_ns` (a prefix of each part: recordings are
/// in receive order; a part from after `end_ns` is left out whole).
pub fn lines_before(parts: &[MemoryLines], end_ns: i64) -> Vec<MemoryLines> {
    let mut out = Vec::new();
    for p in parts {
        let data = &p.data[..];
        let mut at = p.range.start;
        let mut cut = None;
        while at < p.range.end {
            let next = memchr::memchr(b'\n', &data[at..p.range.end]).map_or(p.range.end, |i| at + i + 1);
            if let Some((ts, _)) = split_line(data[at..next].strip_suffix(b"\n").unwrap_or(&data[at..next])) {
                if ts as i64 >= end_ns {
                    cut = Some(at);
                    break;
                }
            }
            at = next;
        }
        let end = cut.unwrap_or(p.range.end);
        if end > p.range.start {
            out.push(MemoryLines { data: p.data.clone(), range: p.range.start..end });
        }
        if cut.is_some() {
            break;
        }
    }
    out
}

/// One window's verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WindowResult {
    pub index: usize,
    pub train_ns: (i64, i64),
    pub test_ns: (i64, i64),
    /// The point best on the training window (index into the points).
    pub chosen: usize,
    pub chosen_train: f64,
    /// The chosen point's metric on the test window.
    pub chosen_test: f64,
    pub chosen_test_pnl: f64,
    /// The point best on the test window, in hindsight.
    pub hindsight: usize,
    pub hindsight_test: f64,
    pub hindsight_test_pnl: f64,
}

/// The best of `results` by `metric` (ties: the lowest index; failed points never).
pub fn best(results: &[&Result<Outcome, String>], metric: Metric) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, r) in results.iter().enumerate() {
        let Ok(o) = r else { continue };
        let v = o.metrics.get(metric);
        if v.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// Picks per window: `train[p]` and `test[p]` are point p's results on that
/// window's training and test stretch.
pub fn judge(
    window: &Window,
    train: &[&Result<Outcome, String>],
    test: &[&Result<Outcome, String>],
    metric: Metric,
) -> Option<WindowResult> {
    let chosen = best(train, metric)?;
    let hindsight = best(test, metric)?;
    let get = |r: &Result<Outcome, String>, m: Metric| r.as_ref().map_or(f64::NAN, |o| o.metrics.get(m));
    Some(WindowResult {
        index: window.index,
        train_ns: (window.train.start, window.train.end),
        test_ns: (window.test.start, window.test.end),
        chosen,
        chosen_train: get(train[chosen], metric),
        chosen_test: get(test[chosen], metric),
        chosen_test_pnl: get(test[chosen], Metric::Pnl),
        hindsight,
        hindsight_test: get(test[hindsight], metric),
        hindsight_test_pnl: get(test[hindsight], Metric::Pnl),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const S: i64 = 1_000_000_000;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("--train", "1h").unwrap(), 3600 * S);
        assert_eq!(parse_duration("--train", "15m").unwrap(), 900 * S);
        assert_eq!(parse_duration("--train", "90").unwrap(), 90 * S);
        assert_eq!(parse_duration("--train", "2.5s").unwrap(), 2_500_000_000);
        assert_eq!(parse_duration("--train", "500ms").unwrap(), 500_000_000);
        for bad in ["", "h", "5x", "-1s", "0s"] {
            assert!(parse_duration("--test", bad).unwrap_err().to_string().contains("is not a duration"), "{bad}");
        }
    }

    #[test]
    fn windows_roll_by_one_test_length() {
        let w = split(0..100 * S, WindowSpec::Durations { train_ns: 40 * S, test_ns: 20 * S }).unwrap();
        let pairs: Vec<_> = w.iter().map(|w| (w.train.start / S, w.train.end / S, w.test.end / S)).collect();
        assert_eq!(pairs, [(0, 40, 60), (20, 60, 80), (40, 80, 100)]);
        // A last test window shorter than asked is kept, clipped, down to half the length.
        let w = split(0..70 * S, WindowSpec::Durations { train_ns: 40 * S, test_ns: 20 * S }).unwrap();
        assert_eq!(w.iter().map(|w| (w.test.start / S, w.test.end / S)).collect::<Vec<_>>(), [(40, 60), (60, 70)]);
        let w = split(0..69 * S, WindowSpec::Durations { train_ns: 40 * S, test_ns: 20 * S }).unwrap();
        assert_eq!(w.len(), 1);
        let e = split(0..30 * S, WindowSpec::Durations { train_ns: 40 * S, test_ns: 20 * S }).unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
        let w = split(0..100, WindowSpec::Count(3)).unwrap();
        assert_eq!(
            w.iter().map(|w| (w.train.clone(), w.test.clone())).collect::<Vec<_>>(),
            [(0..25, 25..50), (25..50, 50..75), (50..75, 75..100)]
        );
        assert!(split(0..100, WindowSpec::Count(0)).is_err());
    }

    #[test]
    fn lines_are_cut_by_receive_time() {
        let a: Arc<[u8]> = Arc::from(&b"10 {}\n20 {}\n30 {}\n"[..]);
        let b: Arc<[u8]> = Arc::from(&b"40 {}\n50 {}"[..]);
        let parts = vec![MemoryLines::whole(a), MemoryLines::whole(b)];
        assert_eq!(time_range(&parts), Some(10..51));
        let text =
            |v: Vec<MemoryLines>| -> Vec<u8> { v.iter().flat_map(|p| p.data[p.range.clone()].to_vec()).collect() };
        assert_eq!(text(lines_before(&parts, 25)), b"10 {}\n20 {}\n");
        assert_eq!(text(lines_before(&parts, 45)), b"10 {}\n20 {}\n30 {}\n40 {}\n");
        assert_eq!(text(lines_before(&parts, 1000)), b"10 {}\n20 {}\n30 {}\n40 {}\n50 {}");
        assert!(lines_before(&parts, 5).is_empty());
    }
}
