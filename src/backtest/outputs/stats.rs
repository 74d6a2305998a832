//! The statistics a quant judges a backtest by, and how each is computed:
//! [`Stats`] (what `report.json` carries under `stats` and `mmbot backtest`
//! prints) and [`EquityStats`], which folds the equity and position seen at
//! every book event and fill into them with constant memory (one float per
//! simulated minute for the return series).
//!
//! # Method (also in `Stats::method`)
//!
//! - *Equity* is the PnL marked to the mid, net of fees, in quote units
//!   ([`crate::exec::position::Position::pnl`]); 0 at the start.
//! - *Capital base* `B` = `max_position` x the first mid seen (quote units):
//!   the notional the strategy may hold. Returns and drawdown % are relative
//!   to it; Sharpe and Sortino do not depend on it (a ratio of returns).
//! - *Per-minute returns*: the equity in force at each whole minute after
//!   the first book event (`t0 + 60 s k`); `r_k = (E_k - E_{k-1}) / B`.
//!   Only complete minutes count; a quiet minute is a return of 0.
//! - *Sharpe* = `mean(r) / sd(r) x sqrt(525600)` (`sd` the sample standard
//!   deviation, n - 1; 525600 minutes per year, no risk-free rate).
//!   *Sortino* = `mean(r) / dd x sqrt(525600)` with the downside deviation
//!   `dd = sqrt(sum(min(r, 0)^2) / n)` (target 0). Both are absent with
//!   fewer than 2 minutes or no dispersion.
//! - *Max drawdown*: the largest fall of equity from its running peak, over
//!   every book event and fill, in quote units and as % of `B + peak`.
//! - *Inventory*: time-weighted mean of the position (signed and absolute),
//!   the largest |position|, and the share of time with |position| >=
//!   `max_position` (time at limit).

use serde::{Deserialize, Serialize};

/// Minutes per year: the annualisation factor of per-minute Sharpe/Sortino is
/// its square root (markets that trade around the clock, like crypto).
pub const MINUTES_PER_YEAR: f64 = 525_600.0;

const MINUTE_NS: i64 = 60_000_000_000;

/// The method text stored with the numbers, so a report explains itself.
pub const METHOD: &str = "equity = PnL marked to mid, net of fees (quote); \
capital base B = max_position x first mid (quote); per-minute returns r = change of equity over each complete \
minute after the first book event / B; sharpe = mean(r)/sd(r, n-1) x sqrt(525600); sortino = mean(r)/sqrt(sum(min(r,0)^2)/n) \
x sqrt(525600); no risk-free rate; max drawdown over every book event and fill, % of (B + peak equity); \
inventory time-weighted; markouts = side x (mid at fill time + h - fill price), mean over fills";

/// Markouts at one horizon after fills, averaged over the fills whose
/// horizon the run reached.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MarkoutStats {
    /// Seconds after the fill.
    pub horizon_s: f64,
    /// Fills measured (fills too close to the end, or past the pending cap,
    /// are not).
    pub fills: u64,
    /// Mean of `side x (mid(t + h) - fill price)`, quote per unit of base:
    /// what the fill was worth `h` later, spread captured included.
    pub per_unit: Option<f64>,
    /// The same in basis points of the fill price.
    pub bps: Option<f64>,
    /// Mean of `side x (mid(t + h) - mid(t))`, quote per unit: the mid's move
    /// in the fill's favour (negative: adverse selection).
    pub mid_move_per_unit: Option<f64>,
    /// The same in basis points of the fill price.
    pub mid_move_bps: Option<f64>,
}

/// Statistics of one backtest (see the module docs for each definition).
/// Money is in quote units, positions in base units, as floats: exact
/// fixed-point totals are in the report's `trading` section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// How the numbers below were computed.
    pub method: String,
    /// Capital base B, quote units.
    pub capital_base: f64,
    /// Net PnL (after fees), marked to the last mid.
    pub pnl_net: f64,
    /// PnL before fees.
    pub pnl_gross: f64,
    /// Fees paid (negative: rebates earned).
    pub fees: f64,
    /// Sum of |price x qty| over fills.
    pub volume: f64,
    pub fills: u64,
    /// New orders sent.
    pub orders: u64,
    /// Orders with at least one fill.
    pub filled_orders: u64,
    /// Net PnL per fill, quote units.
    pub return_per_trade: Option<f64>,
    /// Net PnL per unit of volume, basis points.
    pub return_per_trade_bps: Option<f64>,
    /// Net PnL / B, percent.
    pub return_pct: Option<f64>,
    /// Complete minutes in the return series.
    pub minutes: u64,
    /// Mean and standard deviation of the per-minute equity change, quote.
    pub pnl_per_minute_mean: Option<f64>,
    pub pnl_per_minute_sd: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    /// Largest fall from a peak, quote units (>= 0).
    pub max_drawdown: f64,
    /// The largest fall as % of (B + peak equity).
    pub max_drawdown_pct: Option<f64>,
    /// filled_orders / orders.
    pub fill_ratio: Option<f64>,
    /// orders / fills.
    pub order_to_fill: Option<f64>,
    /// Time-weighted mean position (signed), base units.
    pub inventory_mean: f64,
    /// Time-weighted mean |position|, base units.
    pub inventory_abs_mean: f64,
    /// Largest |position|, base units.
    pub inventory_max: f64,
    /// The limit the time at limit is measured against, base units.
    pub max_position: f64,
    /// Share of time (0..1) with |position| >= max_position.
    pub time_at_limit: f64,
    /// Markouts at 1 s, 10 s and 60 s.
    pub markouts: Vec<MarkoutStats>,
    /// Post-only (LIMIT_MAKER) orders the exchange rejected because they
    /// would have crossed on arrival.
    pub rejected_post_only: u64,
    /// Rows written to `timeline.csv` (every N ms and every fill).
    pub timeline_samples: u64,
    /// Simulated seconds from the first to the last book event or fill.
    pub duration_s: f64,
}

impl Stats {
    /// The short block `mmbot backtest` prints (a few lines, no trailing
    /// newline).
    pub fn summary(&self) -> String {
        let o = |v: Option<f64>, dec: usize| v.map_or("n/a".to_string(), |x| format!("{x:.dec$}"));
        let marks: Vec<String> = self
            .markouts
            .iter()
            .map(|m| {
                format!("{}s {} bps (mid move {} bps, n={})", m.horizon_s, o(m.bps, 2), o(m.mid_move_bps, 2), m.fills)
            })
            .collect();
        format!(
            "stats: pnl net {:.4} gross {:.4} fees {:.4} (quote); {} fills of {} orders: fill ratio {}, order-to-fill {}, per trade {} quote ({} bps of volume)\n\
             \x20 per-minute returns on base {:.2} quote over {} minutes: sharpe {}, sortino {} (annualised x sqrt(525600)); max drawdown {:.4} quote ({}%)\n\
             \x20 inventory (base): mean {:.6}, mean |pos| {:.6}, max {:.6}, time at limit {:.1}% of {:.1} s; rejected post-only {}\n\
             \x20 markouts: {}",
            self.pnl_net,
            self.pnl_gross,
            self.fees,
            self.fills,
            self.orders,
            o(self.fill_ratio, 3),
            o(self.order_to_fill, 2),
            o(self.return_per_trade, 6),
            o(self.return_per_trade_bps, 2),
            self.capital_base,
            self.minutes,
            o(self.sharpe, 2),
            o(self.sortino, 2),
            self.max_drawdown,
            o(self.max_drawdown_pct, 3),
            self.inventory_mean,
            self.inventory_abs_mean,
            self.inventory_max,
            self.time_at_limit * 100.0,
            self.duration_s,
            self.rejected_post_only,
            if marks.is_empty() { "none".to_string() } else { marks.join("; ") },
        )
    }
}

/// Sharpe, Sortino and the mean and sd of `returns` (per period), annualised
/// with `periods_per_year`. `None` where undefined (fewer than 2 returns, or
/// zero deviation).
pub fn sharpe_sortino(returns: &[f64], periods_per_year: f64) -> (Option<f64>, Option<f64>) {
    let n = returns.len();
    if n < 2 {
        return (None, None);
    }
    let mean = returns.iter().sum::<f64>() / n as f64;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let down = (returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n as f64).sqrt();
    let ann = periods_per_year.sqrt();
    let ratio = |d: f64| (d > 0.0).then(|| mean / d * ann).filter(|x| x.is_finite());
    (ratio(var.sqrt()), ratio(down))
}

/// Mean and sample standard deviation (n - 1); `None` for too few values.
pub fn mean_sd(xs: &[f64]) -> (Option<f64>, Option<f64>) {
    let n = xs.len();
    if n == 0 {
        return (None, None);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let sd = (n >= 2).then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
    (Some(mean), sd)
}

/// Folds (time, equity, position) observations into drawdown, inventory
/// and per-minute equity figures. Observations are expected in time order;
/// a step back in time counts as no time passing.
#[derive(Debug, Clone, Default)]
pub struct EquityStats {
    /// Capital base B (quote); set by the owner once the first mid is known.
    pub base: f64,
    /// |position| at or above this is "at limit" (base units).
    pub max_position: f64,
    start_ns: Option<i64>,
    last_ns: i64,
    equity: f64,
    position: f64,
    peak: f64,
    max_dd: f64,
    max_dd_pct: f64,
    /// Integrals over time (unit x ns).
    pos_ns: f64,
    abs_pos_ns: f64,
    at_limit_ns: f64,
    inventory_max: f64,
    /// The next whole minute after the start to take the equity at.
    next_minute_ns: i64,
    /// Equity at each whole minute (index 0: at the start).
    minute_equity: Vec<f64>,
}

impl EquityStats {
    pub fn new(max_position: f64) -> Self {
        Self { max_position, ..Self::default() }
    }

    /// The equity (quote) and position (base) from `time_ns` on.
    pub fn observe(&mut self, time_ns: i64, equity: f64, position: f64) {
        let Some(_) = self.start_ns else {
            self.start_ns = Some(time_ns);
            self.last_ns = time_ns;
            self.next_minute_ns = time_ns.saturating_add(MINUTE_NS);
            self.minute_equity.push(equity);
            self.set(equity, position);
            return;
        };
        // The old values were in force until now, minutes before now included.
        while self.next_minute_ns < time_ns {
            self.minute_equity.push(self.equity);
            self.next_minute_ns = self.next_minute_ns.saturating_add(MINUTE_NS);
        }
        let dt = time_ns.saturating_sub(self.last_ns).max(0) as f64;
        self.pos_ns += self.position * dt;
        self.abs_pos_ns += self.position.abs() * dt;
        if self.max_position > 0.0 && self.position.abs() >= self.max_position {
            self.at_limit_ns += dt;
        }
        self.last_ns = self.last_ns.max(time_ns);
        self.set(equity, position);
        // A value that arrives exactly on a minute is the one in force then.
        if self.next_minute_ns == time_ns {
            self.minute_equity.push(equity);
            self.next_minute_ns = self.next_minute_ns.saturating_add(MINUTE_NS);
        }
    }

    fn set(&mut self, equity: f64, position: f64) {
        self.equity = equity;
        self.position = position;
        self.inventory_max = self.inventory_max.max(position.abs());
        // The peak starts at 0, the equity before any trade.
        self.peak = self.peak.max(equity);
        let dd = self.peak - equity;
        if dd > self.max_dd {
            self.max_dd = dd;
        }
        let denom = self.base + self.peak;
        if denom > 0.0 {
            self.max_dd_pct = self.max_dd_pct.max(dd / denom * 100.0);
        }
    }

    /// Per-minute returns (equity changes / B; quote units if B is 0).
    pub fn minute_returns(&self) -> Vec<f64> {
        let b = if self.base > 0.0 { self.base } else { 1.0 };
        self.minute_equity.windows(2).map(|w| (w[1] - w[0]) / b).collect()
    }

    /// Per-minute equity changes, quote units.
    pub fn minute_pnl(&self) -> Vec<f64> {
        self.minute_equity.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// Simulated time observed, ns.
    pub fn duration_ns(&self) -> i64 {
        self.start_ns.map_or(0, |s| self.last_ns - s)
    }

    /// Writes the equity, drawdown and inventory figures into `s`.
    pub fn fill_in(&self, s: &mut Stats) {
        let returns = self.minute_returns();
        let (sharpe, sortino) = sharpe_sortino(&returns, MINUTES_PER_YEAR);
        let (mean, sd) = mean_sd(&self.minute_pnl());
        let dur = self.duration_ns() as f64;
        s.capital_base = self.base;
        s.minutes = returns.len() as u64;
        s.sharpe = sharpe;
        s.sortino = sortino;
        s.pnl_per_minute_mean = mean;
        s.pnl_per_minute_sd = sd;
        s.max_drawdown = self.max_dd;
        s.max_drawdown_pct = (self.base > 0.0).then_some(self.max_dd_pct);
        s.inventory_mean = if dur > 0.0 { self.pos_ns / dur } else { self.position };
        s.inventory_abs_mean = if dur > 0.0 { self.abs_pos_ns / dur } else { self.position.abs() };
        s.inventory_max = self.inventory_max;
        s.max_position = self.max_position;
        s.time_at_limit = if dur > 0.0 { self.at_limit_ns / dur } else { 0.0 };
        s.duration_s = dur / 1e9;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn sharpe_and_sortino_match_the_hand_computation() {
        // r = 1, -1, 2, 0: mean 0.5, sample var (0.25+2.25+2.25+0.25)/3 = 5/3,
        // downside sqrt(1/4) = 0.5.
        let (sh, so) = sharpe_sortino(&[1.0, -1.0, 2.0, 0.0], 4.0);
        assert!((sh.unwrap() - 0.5 / (5.0f64 / 3.0).sqrt() * 2.0).abs() < 1e-12);
        assert!((so.unwrap() - 0.5 / 0.5 * 2.0).abs() < 1e-12);
        assert_eq!(sharpe_sortino(&[1.0], 4.0), (None, None));
        // No losing minute: Sortino undefined, Sharpe defined.
        let (sh, so) = sharpe_sortino(&[1.0, 2.0], 1.0);
        assert!(sh.is_some() && so.is_none());
    }

    #[test]
    fn minutes_take_the_equity_in_force_at_each_whole_minute() {
        let mut e = EquityStats::new(1.0);
        e.base = 100.0;
        e.observe(0, 0.0, 0.0);
        e.observe(30 * S, 5.0, 1.0); // in force at 60 s
        e.observe(60 * S, 7.0, 1.0); // exactly at 60 s: this one counts
        e.observe(150 * S, 4.0, 0.0); // 120 s: still 7; 150 s: 4
        e.observe(200 * S, 4.0, 0.0); // 180 s: 4; 200 s: end, minute incomplete
        assert_eq!(e.minute_pnl(), vec![7.0, 0.0, -3.0]);
        assert_eq!(e.minute_returns(), vec![0.07, 0.0, -0.03]);
        let mut s = Stats::default();
        e.fill_in(&mut s);
        assert_eq!(s.minutes, 3);
        // Peak 7, trough 4: drawdown 3, 3 / (100 + 7).
        assert_eq!(s.max_drawdown, 3.0);
        assert!((s.max_drawdown_pct.unwrap() - 300.0 / 107.0).abs() < 1e-12);
        // Position 1 from 30 s to 150 s, of 200 s; at the limit of 1 then too.
        assert!((s.inventory_mean - 0.6).abs() < 1e-12);
        assert!((s.time_at_limit - 0.6).abs() < 1e-12);
        assert_eq!(s.inventory_max, 1.0);
        assert_eq!(s.duration_s, 200.0);
    }
}
