//! `call_on = "regime_change"`: has the market's regime moved since the
//! advice in force? The regime is read exactly as the offline rules read it
//! ([`RegimeReader`]: volatility against `[ai.offline]`'s thresholds, the
//! spread against its own slow average). Every snapshot is classified, but
//! the average moves once per advisor interval of hot-path time, as the
//! offline rules move it: fed at the snapshot rate it would forget in a
//! few seconds, and its memory would change with `--speed`.

use crate::ai::offline::{OfflineConfig, Regime, RegimeReader};
use crate::hot::features::Features;

/// The newest regime, and the one the advice in force was asked about.
#[derive(Debug, Clone, Copy)]
pub struct RegimeWatch {
    reader: RegimeReader,
    /// Hot-path ns between moves of the spread's average (the interval).
    step_ns: i64,
    /// When the average last moved.
    moved_ns: Option<i64>,
    latest: Option<Regime>,
    /// The regime of the snapshot behind the advice last handed to the hot
    /// thread (`None`: none yet, so any regime is a change).
    advised: Option<Regime>,
}

impl RegimeWatch {
    pub fn new(rules: &OfflineConfig, step_ns: i64) -> Self {
        Self { reader: RegimeReader::new(rules), step_ns, moved_ns: None, latest: None, advised: None }
    }

    /// Reads a new snapshot's features at hot-path time `now_ns`; returns
    /// its regime.
    pub fn observe(&mut self, f: &Features, now_ns: i64) -> Regime {
        let r = if self.moved_ns.is_none_or(|t| now_ns.saturating_sub(t) >= self.step_ns) {
            self.moved_ns = Some(now_ns);
            self.reader.read(f).0
        } else {
            self.reader.peek(f)
        };
        self.latest = Some(r);
        r
    }

    /// Whether the newest regime differs from the advised one.
    pub fn changed(&self) -> bool {
        self.latest.is_some() && self.latest != self.advised
    }

    /// Advice about a market in regime `r` reached the hot thread.
    pub fn advised(&mut self, r: Regime) {
        self.advised = Some(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::advice::{SpreadState, Volatility};

    fn f(vol: f64) -> Features {
        Features { mid: 100.0, microprice: 100.0, spread_bps: 2.0, volatility_bps: vol, ..Features::default() }
    }

    #[test]
    fn a_change_is_against_the_advised_regime() {
        let mut w = RegimeWatch::new(&OfflineConfig::default(), 5_000);
        assert!(!w.changed(), "nothing seen yet");
        let calm = w.observe(&f(0.1), 0);
        assert_eq!(calm.volatility, Volatility::Low);
        assert!(w.changed(), "no advice yet");
        w.advised(calm);
        assert!(!w.changed());
        w.observe(&f(0.2), 5_000);
        assert!(!w.changed(), "still low volatility, normal spread");
        let wild = w.observe(&f(5.0), 10_000);
        assert_eq!(wild.volatility, Volatility::High);
        assert!(w.changed());
        w.observe(&f(0.1), 15_000);
        assert!(!w.changed(), "back where the advice was");
    }

    #[test]
    fn the_spreads_average_moves_once_per_interval_not_per_snapshot() {
        let wide =
            |s| Features { mid: 100.0, microprice: 100.0, spread_bps: s, volatility_bps: 1.0, ..Features::default() };
        let mut w = RegimeWatch::new(&OfflineConfig::default(), 5_000);
        w.observe(&wide(2.0), 0);
        // The spread doubles and stays: a hundred snapshots within one
        // interval do not teach the average that it is normal.
        for t in 1..=100 {
            assert_eq!(w.observe(&wide(4.0), t * 10).spread, SpreadState::Wide, "snapshot {t}");
        }
        // Interval by interval the average catches up (weight 0.1 each).
        let mut t = 5_000;
        let mut intervals = 0;
        while w.observe(&wide(4.0), t).spread == SpreadState::Wide {
            t += 5_000;
            intervals += 1;
            assert!(intervals < 20);
        }
        assert!(intervals >= 2, "{intervals}");
    }
}
