//! Markouts: how each fill looked some time after it, from the mid then.
//! [`Markouts`] keeps, per horizon, a queue of fills waiting for their
//! horizon to pass (bounded: past [`MAX_PENDING`] a fill is not measured,
//! and counted as skipped), and settles them against the mid in force at
//! `fill time + h` as book events go by. Fills whose horizon the run never
//! reaches are not measured.

use std::collections::VecDeque;

use crate::backtest::outputs::stats::MarkoutStats;
use crate::exec::Side;

/// Horizons reported: 1 s, 10 s, 60 s.
pub const HORIZONS_NS: [i64; 3] = [1_000_000_000, 10_000_000_000, 60_000_000_000];

/// Fills waiting per horizon, at most (a fill storm cannot grow memory).
pub const MAX_PENDING: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Pending {
    due_ns: i64,
    /// +1 buy, -1 sell.
    sign: f64,
    price: f64,
    mid_at_fill: f64,
}

#[derive(Debug, Clone, Default)]
struct Horizon {
    ns: i64,
    pending: VecDeque<Pending>,
    n: u64,
    sum: f64,
    sum_bps: f64,
    sum_move: f64,
    sum_move_bps: f64,
}

impl Horizon {
    fn settle(&mut self, p: Pending, mid: f64) {
        let m = p.sign * (mid - p.price);
        let mv = p.sign * (mid - p.mid_at_fill);
        self.n += 1;
        self.sum += m;
        self.sum_move += mv;
        if p.price > 0.0 {
            self.sum_bps += m / p.price * 1e4;
            self.sum_move_bps += mv / p.price * 1e4;
        }
    }
}

/// Markouts at [`HORIZONS_NS`], fed fills and mids in time order.
#[derive(Debug, Clone)]
pub struct Markouts {
    horizons: Vec<Horizon>,
    mid: Option<f64>,
    /// Fills not measured because a queue was full.
    pub skipped: u64,
}

impl Default for Markouts {
    fn default() -> Self {
        Self::new(&HORIZONS_NS)
    }
}

impl Markouts {
    pub fn new(horizons_ns: &[i64]) -> Self {
        Self {
            horizons: horizons_ns.iter().map(|&ns| Horizon { ns, ..Horizon::default() }).collect(),
            mid: None,
            skipped: 0,
        }
    }

    /// A fill at `time_ns`, measured against the mid last seen (none yet:
    /// not measured).
    pub fn on_fill(&mut self, time_ns: i64, side: Side, price: f64) {
        let Some(mid) = self.mid else { return };
        let sign = if side == Side::Buy { 1.0 } else { -1.0 };
        for h in &mut self.horizons {
            if h.pending.len() >= MAX_PENDING {
                self.skipped += 1;
                continue;
            }
            h.pending.push_back(Pending { due_ns: time_ns.saturating_add(h.ns), sign, price, mid_at_fill: mid });
        }
    }

    /// The mid from `time_ns` on.
    pub fn on_mid(&mut self, time_ns: i64, mid: f64) {
        for h in &mut self.horizons {
            // Due before now: the previous mid was the one in force.
            if let Some(prev) = self.mid {
                while h.pending.front().is_some_and(|p| p.due_ns < time_ns) {
                    let p = h.pending.pop_front().expect("front checked");
                    h.settle(p, prev);
                }
            }
            // Due exactly now: this mid.
            while h.pending.front().is_some_and(|p| p.due_ns == time_ns) {
                let p = h.pending.pop_front().expect("front checked");
                h.settle(p, mid);
            }
        }
        self.mid = Some(mid);
    }

    /// The averages so far, one per horizon.
    pub fn stats(&self) -> Vec<MarkoutStats> {
        self.horizons
            .iter()
            .map(|h| {
                let avg = |sum: f64| (h.n > 0).then(|| sum / h.n as f64);
                MarkoutStats {
                    horizon_s: h.ns as f64 / 1e9,
                    fills: h.n,
                    per_unit: avg(h.sum),
                    bps: avg(h.sum_bps),
                    mid_move_per_unit: avg(h.sum_move),
                    mid_move_bps: avg(h.sum_move_bps),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn fills_settle_against_the_mid_in_force_at_their_horizon() {
        let mut m = Markouts::new(&[S, 10 * S]);
        m.on_mid(0, 100.0);
        m.on_fill(0, Side::Buy, 99.5); // bought below mid
        m.on_mid(S / 2, 101.0);
        m.on_fill(S / 2, Side::Sell, 101.5);
        // At 1 s the mid in force is 101 (set at 0.5 s; 102 only from 1.2 s).
        m.on_mid(S + S / 5, 102.0);
        // 1.5 s: the sell's 1 s horizon; mid 103 set exactly then.
        m.on_mid(S + S / 2, 103.0);
        m.on_mid(20 * S, 90.0);
        let s = m.stats();
        // 1 s: buy 101 - 99.5 = 1.5; sell -(103 - 101.5) = -1.5.
        assert_eq!(s[0].fills, 2);
        assert_eq!(s[0].per_unit, Some(0.0));
        // Mid moves: buy 101 - 100 = 1; sell -(103 - 101) = -2.
        assert_eq!(s[0].mid_move_per_unit, Some(-0.5));
        let bps = (1.5 / 99.5 * 1e4 - 1.5 / 101.5 * 1e4) / 2.0;
        assert!((s[0].bps.unwrap() - bps).abs() < 1e-9);
        // 10 s: both settle at 103 (set at 1.5 s, in force until 20 s).
        assert_eq!(s[1].fills, 2);
        assert_eq!(s[1].per_unit, Some(((103.0 - 99.5) + -(103.0 - 101.5)) / 2.0));
    }

    #[test]
    fn fills_before_any_mid_or_past_the_end_are_not_measured() {
        let mut m = Markouts::new(&[S]);
        m.on_fill(0, Side::Buy, 1.0);
        m.on_mid(1, 1.0);
        m.on_fill(2, Side::Buy, 1.0);
        let s = m.stats();
        assert_eq!((s[0].fills, s[0].per_unit), (0, None));
    }
}
