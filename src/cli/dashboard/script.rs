//! The dashboard's script lines: the running version (hash, compiled or
//! interpreted), errors per minute, and the last error with its place, from
//! the fixed-size [`ScriptStatus`] the hot thread publishes.

use std::collections::VecDeque;

use crate::script::health::ScriptStatus;

/// Errors per minute over the last minute, from the running error count
/// sampled at each redraw.
#[derive(Debug, Default)]
pub struct ErrorRate {
    /// (seconds since start, errors so far), oldest first, at most a
    /// minute back (plus the one sample just before it).
    samples: VecDeque<(f64, u64)>,
}

impl ErrorRate {
    /// Notes `errors` at `t_s` and returns errors per minute over the last
    /// minute (over the time seen so far while under a minute).
    pub fn observe(&mut self, t_s: f64, errors: u64) -> f64 {
        self.samples.push_back((t_s, errors));
        while self.samples.len() > 2 && self.samples[1].0 <= t_s - 60.0 {
            self.samples.pop_front();
        }
        let (t0, e0) = self.samples[0];
        let span = (t_s - t0).max(1.0);
        errors.saturating_sub(e0) as f64 * 60.0 / span
    }
}

/// `script fnv1a 1a2b3c4d, compiled: 1200 calls, 12 errors (3.0/min), ...`
/// and the last error, or nothing for the native strategy.
pub fn script_lines(s: &ScriptStatus, per_min: f64) -> Vec<String> {
    if !s.active {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "  running fnv1a {:08x}, {}: {} calls, {} errors ({per_min:.1}/min), {} outputs of the wrong shape, {} reverts",
        (s.hash >> 32) as u32,
        if s.compiled { "compiled" } else { "interpreted" },
        s.calls,
        s.errors,
        s.bad_outputs,
        s.reverts
    )];
    if let Some(e) = &s.last_error {
        lines.push(format!("  last error: {}", e.as_str()));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::health::ScriptLineCopy;
    use crate::script::ScriptLine;

    #[test]
    fn the_rate_is_over_the_last_minute() {
        let mut r = ErrorRate::default();
        assert_eq!(r.observe(0.0, 0), 0.0);
        assert_eq!(r.observe(30.0, 30), 60.0);
        // 120 errors in the last minute (none before t = 60).
        assert!((r.observe(90.0, 150) - 120.0).abs() < 1e-9, "{}", r.observe(90.0, 150));
    }

    #[test]
    fn the_lines_name_the_version_and_the_last_error_with_its_place() {
        let s = ScriptStatus {
            active: true,
            hash: 0x1a2b_3c4d_0000_0000,
            compiled: true,
            calls: 10,
            errors: 4,
            last_error: Some(ScriptLineCopy(ScriptLine::new("s.rhai:3:9: boom (line 3, position 9)"))),
            ..Default::default()
        };
        let l = script_lines(&s, 2.0);
        assert!(l[0].contains("fnv1a 1a2b3c4d, compiled") && l[0].contains("4 errors (2.0/min)"), "{l:?}");
        assert_eq!(l[1], "  last error: s.rhai:3:9: boom (line 3, position 9)");
        assert!(script_lines(&ScriptStatus::default(), 0.0).is_empty());
    }
}
