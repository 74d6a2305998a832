//! What the market did: the recording walked once through the real hot path
//! (the same book building and features a backtest and a live run use),
//! keeping the traded symbol's mid and spread after every depth event, and,
//! at each asked-for snapshot time, the market as the advisor would have
//! seen it and the offline rules' advice on it.
//!
//! Realised labels over a window `(t0, t0 + ttl]` after a snapshot at `t0`
//! (the definitions the report prints):
//! * volatility: the per-event realised volatility of the mid, `1e4 x
//!   sqrt(mean of squared log mid returns between consecutive depth events)`
//!   (the first return from the snapshot's mid), in bps: the unweighted
//!   counterpart of the feature `volatility_bps` the model and the offline
//!   rules were shown; low at or below the offline rules' `low_vol_bps`
//!   (0.5), high at or above `high_vol_bps` (3.0), else medium;
//! * spread: the mean spread over the window's depth events (the snapshot's
//!   spread when none) against the offline rules' slow average of the spread
//!   at the snapshot (an EWMA, weight 0.1 per advisor interval): narrow
//!   below 0.8x, wide above 1.25x, else normal;
//! * direction: the mid at the window's end against the snapshot's mid, in
//!   bps: up above `+direction_bps`, down below `-direction_bps`, else
//!   sideways (the model's "neutral" counts as sideways).

use std::path::PathBuf;

use crate::ai::advisor::MarketSnapshot;
use crate::ai::eval::EvalError;
use crate::ai::offline::{OfflineAdvisor, OfflineConfig};
use crate::config::Config;
use crate::feed::recording::{split_line, LineChunks, Piece};
use crate::hot::advice::{Advice, Direction, SpreadState, Volatility};
use crate::hot::engine::{HotEvent, HotPath};
use crate::hot::fixed::Qty;
use crate::hot::strategy::NativeStrategy;
use crate::stats::clock::Clock;

/// The traded book after one depth event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarketPoint {
    pub time_ns: i64,
    pub mid: f64,
    pub spread_bps: f64,
}

/// The market at one asked-for snapshot time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    /// As the advisor would have been handed it (position flat).
    pub snapshot: MarketSnapshot,
    /// The offline rules' advice on it, with their state at that time.
    pub offline: Advice,
    /// The offline rules' slow average of the spread then, bps.
    pub spread_ref_bps: f64,
}

/// The recording, as far as judging advice needs it.
#[derive(Debug, Clone, Default)]
pub struct MarketPath {
    pub symbol: String,
    pub frames: u64,
    /// Receive times of the first and last frame, ns.
    pub first_frame_ns: i64,
    pub last_frame_ns: i64,
    /// Every depth event of the traded symbol, in time order.
    pub points: Vec<MarketPoint>,
    /// Per asked-for time, in the order asked: `None` before the book had
    /// its first depth event.
    pub seen: Vec<Option<Seen>>,
}

/// The thresholds realised labels use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    pub low_vol_bps: f64,
    pub high_vol_bps: f64,
    pub narrow_below: f64,
    pub wide_above: f64,
    /// A mid move beyond this, in bps, over the TTL is a direction.
    pub direction_bps: f64,
}

/// Default `direction_bps`: a move under 2 bps over a TTL is sideways.
pub const DIRECTION_BPS: f64 = 2.0;

impl Rules {
    pub fn from_offline(o: &OfflineConfig, direction_bps: f64) -> Self {
        Self {
            low_vol_bps: o.low_vol_bps,
            high_vol_bps: o.high_vol_bps,
            narrow_below: 0.8,
            wide_above: 1.25,
            direction_bps,
        }
    }
}

/// What happened over one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Realised {
    pub volatility: Volatility,
    pub spread: SpreadState,
    pub direction: Direction,
    /// Realised per-event volatility, bps.
    pub vol_bps: f64,
    /// Mean spread over the window / the slow average at the snapshot.
    pub spread_ratio: f64,
    /// Mid move over the window, bps.
    pub move_bps: f64,
    /// Depth events in the window.
    pub events: usize,
}

/// The offline rules a run of `config` uses (its `[ai]` lifetime).
pub fn offline_rules(config: &Config) -> OfflineConfig {
    config.ai_offline.unwrap_or(OfflineConfig { ttl_ns: config.ai.ttl_ns(), ..OfflineConfig::default() })
}

/// Walks `files` once; `at` are the snapshot times wanted (any order).
pub fn walk(files: &[PathBuf], config: &Config, at: &[i64]) -> Result<MarketPath, EvalError> {
    let mut order: Vec<usize> = (0..at.len()).collect();
    order.sort_by_key(|&i| (at[i], i));
    let mut next = 0usize;
    let mut hot = HotPath::new(config.hot, NativeStrategy, Clock::instant());
    let mut advisor = OfflineAdvisor::new(offline_rules(config));
    let mut slow: Option<f64> = None;
    let mut next_advice_ns = i64::MIN;
    let interval = config.ai_interval_ns.max(1);
    let max_position = config.hot.guard.max_position;
    let mut path = MarketPath { seen: vec![None; at.len()], ..MarketPath::default() };
    let mut chunks = LineChunks::start(files.to_vec());
    while let Some(piece) = chunks.next_piece() {
        let buf = match piece {
            Piece::Lines(buf) => buf,
            Piece::FileError { path, error } => {
                return Err(EvalError::Recording { path: path.display().to_string(), detail: error })
            }
            // Everything before the damage is used, as backtests do.
            Piece::Truncated { .. } => continue,
        };
        for raw in buf.split(|&b| b == b'\n') {
            let Some((recv, json)) = split_line(raw) else { continue };
            let now = recv as i64;
            if path.frames == 0 {
                path.first_frame_ns = now;
            }
            path.frames += 1;
            path.last_frame_ns = path.last_frame_ns.max(now);
            // Snapshots taken before this frame: the market as of then.
            while let Some(&i) = order.get(next).filter(|&&i| at[i] < now) {
                path.seen[i] = seen_now(&hot, &advisor, slow, max_position, at[i]);
                next += 1;
            }
            let mut depth = false;
            hot.on_frame(json, now, 0, &mut |ev| {
                if let HotEvent::Depth { .. } = ev {
                    depth = true;
                }
            });
            let Some(f) = hot.last_features().filter(|_| depth) else { continue };
            path.points.push(MarketPoint { time_ns: now, mid: f.mid, spread_bps: f.spread_bps });
            // The offline rules on their backtest schedule, their slow
            // average of the spread mirrored (it is the spread reference).
            if now >= next_advice_ns {
                advisor.advise(&f, now);
                let avg = *slow.get_or_insert(f.spread_bps);
                slow = Some(avg * 0.9 + f.spread_bps * 0.1);
                next_advice_ns = now.saturating_add(interval);
            }
        }
        chunks.recycle(buf);
    }
    while let Some(&i) = order.get(next) {
        path.seen[i] = seen_now(&hot, &advisor, slow, max_position, at[i]);
        next += 1;
    }
    path.symbol = hot.traded_symbol().map(|s| s.to_string()).unwrap_or_default();
    Ok(path)
}

fn seen_now(
    hot: &HotPath<NativeStrategy>,
    advisor: &OfflineAdvisor,
    slow: Option<f64>,
    max_position: Qty,
    time_ns: i64,
) -> Option<Seen> {
    let f = hot.last_features()?;
    let symbol = hot.traded_symbol()?;
    let snapshot = match hot.market().book(symbol) {
        Some(b) => MarketSnapshot::from_book(symbol, b.book(), f, Qty::ZERO, max_position, time_ns),
        None => MarketSnapshot { symbol, features: f, max_position, time_ns, ..MarketSnapshot::default() },
    };
    // A copy: asking about this snapshot must not move the schedule's state.
    let offline = { *advisor }.advise(&f, time_ns);
    Some(Seen { snapshot, offline, spread_ref_bps: slow.unwrap_or(f.spread_bps) })
}

impl MarketPath {
    /// Whether a window `(t0, t0 + ttl]` ends inside the recording.
    pub fn covers(&self, t0: i64, ttl_ns: i64) -> bool {
        t0.saturating_add(ttl_ns) <= self.last_frame_ns
    }

    /// The realised labels over `(seen's time, + ttl_ns]`.
    pub fn realise(&self, seen: &Seen, ttl_ns: i64, rules: &Rules) -> Realised {
        let t0 = seen.snapshot.time_ns;
        let t1 = t0.saturating_add(ttl_ns);
        let f = &seen.snapshot.features;
        let lo = self.points.partition_point(|p| p.time_ns <= t0);
        let hi = self.points.partition_point(|p| p.time_ns <= t1);
        let window = &self.points[lo..hi.max(lo)];
        let (mut prev, mut sq, mut spread_sum) = (f.mid, 0.0f64, 0.0f64);
        for p in window {
            if prev > 0.0 && p.mid > 0.0 {
                let r = (p.mid / prev).ln();
                sq += r * r;
            }
            prev = p.mid;
            spread_sum += p.spread_bps;
        }
        let n = window.len();
        let vol_bps = if n > 0 { 1e4 * (sq / n as f64).sqrt() } else { 0.0 };
        let mean_spread = if n > 0 { spread_sum / n as f64 } else { f.spread_bps };
        let spread_ratio = if seen.spread_ref_bps > 0.0 { mean_spread / seen.spread_ref_bps } else { 1.0 };
        let end_mid = window.last().map_or(f.mid, |p| p.mid);
        let move_bps = if f.mid > 0.0 { (end_mid - f.mid) / f.mid * 1e4 } else { 0.0 };
        let volatility = if vol_bps >= rules.high_vol_bps {
            Volatility::High
        } else if vol_bps <= rules.low_vol_bps {
            Volatility::Low
        } else {
            Volatility::Medium
        };
        let spread = if spread_ratio < rules.narrow_below {
            SpreadState::Narrow
        } else if spread_ratio > rules.wide_above {
            SpreadState::Wide
        } else {
            SpreadState::Normal
        };
        let direction = if move_bps > rules.direction_bps {
            Direction::Up
        } else if move_bps < -rules.direction_bps {
            Direction::Down
        } else {
            Direction::Sideways
        };
        Realised { volatility, spread, direction, vol_bps, spread_ratio, move_bps, events: n }
    }

    /// The span of depth events, (first, last); `None` without any.
    pub fn depth_span(&self) -> Option<(i64, i64)> {
        Some((self.points.first()?.time_ns, self.points.last()?.time_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(points: &[(i64, f64, f64)]) -> MarketPath {
        MarketPath {
            points: points.iter().map(|&(t, mid, s)| MarketPoint { time_ns: t, mid, spread_bps: s }).collect(),
            last_frame_ns: points.last().map_or(0, |p| p.0),
            ..MarketPath::default()
        }
    }

    fn seen(t: i64, mid: f64, spread: f64, reference: f64) -> Seen {
        let mut snapshot = MarketSnapshot { time_ns: t, ..MarketSnapshot::default() };
        snapshot.features.mid = mid;
        snapshot.features.spread_bps = spread;
        Seen { snapshot, offline: Advice::neutral(), spread_ref_bps: reference }
    }

    #[test]
    fn a_window_reads_volatility_spread_and_direction() {
        let rules = Rules::from_offline(&OfflineConfig::default(), 2.0);
        // Mid 100 -> 100.1 (10 bps) -> 100.05 in the window; one point after it.
        let p = path(&[(0, 100.0, 1.0), (10, 100.1, 3.0), (20, 100.05, 3.0), (40, 90.0, 9.0)]);
        let r = p.realise(&seen(0, 100.0, 1.0, 2.0), 30, &rules);
        assert_eq!(r.events, 2);
        assert_eq!((r.volatility, r.spread, r.direction), (Volatility::High, SpreadState::Wide, Direction::Up));
        assert!((r.move_bps - 5.0).abs() < 1e-9);
        assert!((r.spread_ratio - 1.5).abs() < 1e-12);
        // No event in the window: nothing moved, the spread as it was.
        let calm = p.realise(&seen(20, 100.05, 3.0, 3.0), 10, &rules);
        assert_eq!(
            (calm.volatility, calm.spread, calm.direction, calm.events),
            (Volatility::Low, SpreadState::Normal, Direction::Sideways, 0)
        );
        assert!(p.covers(10, 30) && !p.covers(11, 30));
    }
}
