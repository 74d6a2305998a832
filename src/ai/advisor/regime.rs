//! `call_on = "regime_change"`: has the market's regime moved since the
//! advice in force? The regime is read exactly as the offline rules read it
//! ([`RegimeReader`]: volatility against `[ai.offline]`'s thresholds, the
//! spread against its own slow average), from every snapshot the advisor
//! sees, so the spread's average follows the market between calls.

use crate::ai::offline::{OfflineConfig, Regime, RegimeReader};
use crate::hot::features::Features;

/// The newest regime, and the one the advice in force was asked about.
#[derive(Debug, Clone, Copy)]
pub struct RegimeWatch {
    reader: RegimeReader,
    latest: Option<Regime>,
    /// The regime of the snapshot behind the advice last handed to the hot
    /// thread (`None`: none yet, so any regime is a change).
    advised: Option<Regime>,
}

impl RegimeWatch {
    pub fn new(rules: &OfflineConfig) -> Self {
        Self { reader: RegimeReader::new(rules), latest: None, advised: None }
    }

    /// Reads a new snapshot's features; returns its regime.
    pub fn observe(&mut self, f: &Features) -> Regime {
        let (r, _) = self.reader.read(f);
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
    use crate::hot::advice::Volatility;

    fn f(vol: f64) -> Features {
        Features { mid: 100.0, microprice: 100.0, spread_bps: 2.0, volatility_bps: vol, ..Features::default() }
    }

    #[test]
    fn a_change_is_against_the_advised_regime() {
        let mut w = RegimeWatch::new(&OfflineConfig::default());
        assert!(!w.changed(), "nothing seen yet");
        let calm = w.observe(&f(0.1));
        assert_eq!(calm.volatility, Volatility::Low);
        assert!(w.changed(), "no advice yet");
        w.advised(calm);
        assert!(!w.changed());
        w.observe(&f(0.2));
        assert!(!w.changed(), "still low volatility, normal spread");
        let wild = w.observe(&f(5.0));
        assert_eq!(wild.volatility, Volatility::High);
        assert!(w.changed());
        w.observe(&f(0.1));
        assert!(!w.changed(), "back where the advice was");
    }
}
