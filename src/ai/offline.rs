//! The offline advisor: the LLM's advice shape, derived deterministically
//! from book features. It is the default when no LLM is configured, and what
//! backtests use, so reports stay reproducible. Its advice is labelled
//! [`AdviceSource::Offline`] wherever it is shown.
//!
//! The rules, each a plain reading of the features the LLM prompt carries:
//! * volatility: the mid's EWMA realized volatility per event, against
//!   `low_vol_bps` / `high_vol_bps`;
//! * spread state: the current spread against its own slow average
//!   (narrow below 0.8x, wide above 1.25x);
//! * direction: the microprice's lean from the mid, in bps, confirmed by
//!   the sign of the trade flow (sideways when they disagree or are small);
//! * confidence: how far the readings sit beyond their thresholds, 0-100;
//! * multiplier: the product of the tutorial's multipliers for that view.
//!
//! The first two readings are the market's [`Regime`]; [`RegimeReader`]
//! makes them, for these rules and for the LLM advisor's
//! `call_on = "regime_change"` (which asks only when the regime moved), so
//! both read the market the same way.

use crate::hot::advice::{Advice, AdviceSource, Direction, SpreadState, Volatility};
use crate::hot::features::Features;

/// Thresholds of the offline rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OfflineConfig {
    pub low_vol_bps: f64,
    pub high_vol_bps: f64,
    /// Microprice lean from the mid that counts as a direction, bps.
    pub lean_bps: f64,
    /// How long advice stays valid, ns (3 x the interval by default).
    pub ttl_ns: i64,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        Self { low_vol_bps: 0.5, high_vol_bps: 3.0, lean_bps: 0.5, ttl_ns: 15_000_000_000 }
    }
}

/// The market's regime: its volatility and spread state, as the offline
/// rules read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Regime {
    pub volatility: Volatility,
    pub spread: SpreadState,
}

/// Reads [`Regime`]s from features: volatility against `low_vol_bps` /
/// `high_vol_bps`, the spread against its own slow average (so it keeps
/// state: feed it every snapshot, in order).
#[derive(Debug, Clone, Copy)]
pub struct RegimeReader {
    low_vol_bps: f64,
    high_vol_bps: f64,
    avg_spread_bps: Option<f64>,
}

impl RegimeReader {
    pub fn new(cfg: &OfflineConfig) -> Self {
        Self { low_vol_bps: cfg.low_vol_bps, high_vol_bps: cfg.high_vol_bps, avg_spread_bps: None }
    }

    /// The regime of `f` against the average as it stands, without moving it.
    pub fn peek(&self, f: &Features) -> Regime {
        let mut copy = *self;
        copy.read(f).0
    }

    /// The regime of `f`, and the spread's ratio to its average before `f`
    /// (1.0 at first); moves the average towards `f`'s spread.
    pub fn read(&mut self, f: &Features) -> (Regime, f64) {
        let volatility = if f.volatility_bps >= self.high_vol_bps {
            Volatility::High
        } else if f.volatility_bps <= self.low_vol_bps {
            Volatility::Low
        } else {
            Volatility::Medium
        };
        let avg = *self.avg_spread_bps.get_or_insert(f.spread_bps);
        let ratio = if avg > 0.0 { f.spread_bps / avg } else { 1.0 };
        let spread = if ratio < 0.8 {
            SpreadState::Narrow
        } else if ratio > 1.25 {
            SpreadState::Wide
        } else {
            SpreadState::Normal
        };
        self.avg_spread_bps = Some(avg * 0.9 + f.spread_bps * 0.1);
        (Regime { volatility, spread }, ratio)
    }
}

/// The advisor's state: its regime reader (a slow average of the spread).
#[derive(Debug, Clone, Copy)]
pub struct OfflineAdvisor {
    cfg: OfflineConfig,
    regime: RegimeReader,
}

impl OfflineAdvisor {
    pub fn new(cfg: OfflineConfig) -> Self {
        Self { cfg, regime: RegimeReader::new(&cfg) }
    }

    /// Advice for the market described by `f`, dated `now_ns` (the time of
    /// the market state it describes).
    pub fn advise(&mut self, f: &Features, now_ns: i64) -> Advice {
        let c = &self.cfg;
        let (Regime { volatility, spread }, ratio) = self.regime.read(f);
        let lean_bps = if f.mid > 0.0 { (f.microprice - f.mid) / f.mid * 1e4 } else { 0.0 };
        let direction = if lean_bps > c.lean_bps && f.trade_flow >= 0.0 {
            Direction::Up
        } else if lean_bps < -c.lean_bps && f.trade_flow <= 0.0 {
            Direction::Down
        } else {
            Direction::Sideways
        };
        // Confidence: how clearly the strongest reading clears its threshold.
        let strength = [
            (f.volatility_bps - c.high_vol_bps).max(c.low_vol_bps - f.volatility_bps).max(0.0)
                / c.high_vol_bps.max(1e-9),
            (ratio - 1.0).abs(),
            (lean_bps.abs() - c.lean_bps).max(0.0) / c.lean_bps.max(1e-9),
        ]
        .into_iter()
        .fold(0.0f64, f64::max);
        let confidence = (50.0 + 50.0 * strength.min(1.0)).round() as u8;
        let mut advice = Advice {
            spread,
            volatility,
            direction,
            confidence,
            multiplier: 1.0,
            source: AdviceSource::Offline,
            received_ns: now_ns,
            ttl_ns: c.ttl_ns,
            apply_multiplier: false,
        };
        let (s, v, d) = advice.multipliers();
        advice.multiplier = s * v * d;
        advice
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(spread_bps: f64, vol: f64, lean_bps: f64, flow: f64) -> Features {
        Features {
            mid: 100.0,
            microprice: 100.0 * (1.0 + lean_bps / 1e4),
            spread_bps,
            volatility_bps: vol,
            trade_flow: flow,
            ..Features::default()
        }
    }

    #[test]
    fn readings_map_to_the_tutorials_states() {
        let mut a = OfflineAdvisor::new(OfflineConfig::default());
        let calm = a.advise(&features(2.0, 0.1, 0.0, 0.0), 7);
        assert_eq!(
            (calm.spread, calm.volatility, calm.direction),
            (SpreadState::Normal, Volatility::Low, Direction::Sideways)
        );
        assert_eq!((calm.source, calm.received_ns, calm.ttl_ns), (AdviceSource::Offline, 7, 15_000_000_000));
        assert!((calm.multiplier - 0.7 * 0.9).abs() < 1e-12);
        let wild = a.advise(&features(4.0, 5.0, 2.0, 1.0), 8);
        assert_eq!(
            (wild.spread, wild.volatility, wild.direction),
            (SpreadState::Wide, Volatility::High, Direction::Up)
        );
        assert!(wild.confidence > calm.confidence);
        let down = a.advise(&features(1.0, 1.0, -2.0, -3.0), 9);
        assert_eq!(
            (down.spread, down.volatility, down.direction),
            (SpreadState::Narrow, Volatility::Medium, Direction::Down)
        );
        // Lean and flow disagree: no direction.
        let mixed = a.advise(&features(2.0, 1.0, 2.0, -1.0), 10);
        assert_eq!(mixed.direction, Direction::Sideways);
    }

    #[test]
    fn the_same_features_give_the_same_advice() {
        let fs: Vec<Features> =
            (0..50).map(|i| features(1.0 + (i % 7) as f64, (i % 5) as f64, (i % 3) as f64 - 1.0, 0.5)).collect();
        let run = || {
            let mut a = OfflineAdvisor::new(OfflineConfig::default());
            fs.iter().enumerate().map(|(i, f)| a.advise(f, i as i64)).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
