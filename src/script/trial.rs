//! The reload check: before a new version may reach the hot thread, the
//! reload thread test-runs it, the way the hot thread would run it (a
//! [`ScriptStrategy`] of its own, compiled fast form included), on
//! * the sample state ([`reload::sample_state`]);
//! * edge states ([`edge_states`]) built from the newest real state: the
//!   position at +max and at -max, zero and extreme volatility, each side of
//!   the book at its thinnest, and expired advice;
//! * the last real states the hot thread saw ([`crate::script::samples`]).
//!
//! It refuses the version, with a message that names the state and the
//! value, when
//! * any sample or edge state makes it fail: a runtime error, an output of
//!   the wrong shape, a price that is NaN, infinite or not above zero, or a
//!   size that is NaN, infinite or negative;
//! * more than [`MAX_BAD_SHARE`] of the real states do;
//! * its median call time over the real states (over every call of the
//!   check while fewer than [`MIN_TIMED`] real states are kept) is over
//!   `[script] max_call_us`.
//!
//! "Pull" (or `()`) is a valid answer anywhere. The time is measured with
//! `Instant` on the reload thread (off the hot path); the median shrugs off
//! a call the OS interrupted.

use std::time::Instant;

use crate::hot::strategy::{Decision, SideIntent};
use crate::script::{engine, reload, CompiledScript, MarketState, Params, ScriptError, ScriptLimits, ScriptStrategy};

/// Share of real states that may fail (a rare corner the hot path pulls on
/// and counts) before the version is refused.
pub const MAX_BAD_SHARE: f64 = 0.01;

/// Real states needed to time on them; with fewer, every call of the check
/// is timed.
pub const MIN_TIMED: usize = 10;

/// The least volatility of the "extreme volatility" edge state, bps per
/// event: ~10x a busy BTCUSDT book at Binance's 100 ms depth events.
pub const EXTREME_VOLATILITY_FLOOR_BPS: f64 = 10.0;

/// Volatility of the "extreme volatility" edge state: 10x the highest the
/// real states saw, and at least [`EXTREME_VOLATILITY_FLOOR_BPS`]. Relative,
/// because a model whose spread grows with volatility squared (as
/// Avellaneda-Stoikov's does) is bound to quote nonsense at some volatility;
/// the check asks that it hold at ten times what the market has shown.
pub fn extreme_volatility_bps(real: &[MarketState]) -> f64 {
    let seen = real.iter().map(|m| m.volatility_bps).filter(|v| v.is_finite()).fold(0.0, f64::max);
    (10.0 * seen).max(EXTREME_VOLATILITY_FLOOR_BPS)
}

/// What a version did in a check it passed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialReport {
    /// Real states run (and how many failed, within [`MAX_BAD_SHARE`]).
    pub real_states: usize,
    pub real_failed: usize,
    /// Sample and edge states run (all passed).
    pub edge_states: usize,
    /// Median call time, ns, and whether over real states.
    pub median_call_ns: u64,
    pub timed_on_real: bool,
}

/// The edge states, named, built from `base` (the newest real state, or
/// [`reload::sample_state`] before any): what the hot path can pass at the
/// edges of its range (`extreme_bps`: [`extreme_volatility_bps`]).
///
/// A one-sided book never reaches a script: features need both touches
/// ([`crate::hot::features::FeatureState::on_book`] returns none without
/// them) and the hot path pulls instead. So "one-sided" here is the thinnest
/// side it does pass: the touch only, of one unit (1e-8), the imbalance and
/// microprice that go with it.
pub fn edge_states(base: &MarketState, extreme_bps: f64) -> [(&'static str, MarketState); 7] {
    let b = *base;
    let tiny = 1e-8;
    // Built by assignment: struct-update syntax with the level arrays in a
    // closure trips a compiler bug (rustc ICE, "broken MIR").
    let with = |f: &dyn Fn(&mut MarketState)| {
        let mut s = b;
        f(&mut s);
        s
    };
    let thin = |bid_qty: f64, ask_qty: f64| {
        with(&|s: &mut MarketState| {
            s.microprice = (b.best_bid * ask_qty + b.best_ask * bid_qty) / (bid_qty + ask_qty);
            s.imbalance = (bid_qty - ask_qty) / (bid_qty + ask_qty);
            s.bid_qty = bid_qty;
            s.ask_qty = ask_qty;
            // The level getters show the same touch: only it, of that size.
            for (levels, n, qty) in
                [(&mut s.bids, &mut s.bid_levels, bid_qty), (&mut s.asks, &mut s.ask_levels, ask_qty)]
            {
                if *n > 0 && qty < 1.0 {
                    levels[0].qty = crate::hot::fixed::Qty((qty * 1e8).round() as i64);
                    levels[1..].iter_mut().for_each(|l| *l = Default::default());
                    *n = 1;
                }
            }
            s.depth = s.bid_levels.min(s.ask_levels) as f64;
        })
    };
    let big = (b.bid_qty + b.ask_qty).max(1.0);
    // Volatility per second scales with the per-event figure.
    let per_s = |bps: f64| if b.volatility_bps > 0.0 { b.volatility_bps_per_s * bps / b.volatility_bps } else { bps };
    [
        ("position at +max", with(&|s: &mut MarketState| s.position = b.max_position)),
        ("position at -max", with(&|s: &mut MarketState| s.position = -b.max_position)),
        (
            "zero volatility",
            with(&|s: &mut MarketState| {
                (s.volatility_bps, s.volatility_bps_per_s, s.volatility_state, s.vol_mult) = (0.0, 0.0, "low", 0.7)
            }),
        ),
        (
            "extreme volatility",
            with(&|s: &mut MarketState| {
                (s.volatility_bps, s.volatility_bps_per_s, s.volatility_state, s.vol_mult) =
                    (extreme_bps, per_s(extreme_bps), "high", 1.5)
            }),
        ),
        ("bid side nearly empty", thin(tiny, big)),
        ("ask side nearly empty", thin(big, tiny)),
        (
            "advice expired",
            // What `Advice::at` gives once the advice's time to live has
            // passed: neutral, no confidence, no age.
            with(&|s: &mut MarketState| {
                (s.spread_state, s.volatility_state, s.direction) = ("normal", "medium", "neutral");
                (s.confidence, s.advice_multiplier, s.advice_age_s) = (0.0, 1.0, 0.0);
                (s.spread_mult, s.vol_mult, s.dir_mult) = (1.0, 1.0, 1.0);
                s.advice_expired = 1.0;
            }),
        ),
    ]
}

/// What was wrong with one call.
enum Flaw {
    Error(ScriptError),
    /// An output of the wrong shape; what `quote(m)` returned.
    Shape(String),
    /// A price or size out of range: which, and the value.
    Value(String),
}

impl Flaw {
    fn describe(&self) -> String {
        match self {
            Flaw::Error(e) => e.message.clone(),
            Flaw::Shape(out) => {
                format!("quote(m) returned {out}, which is not a quote (a map of prices, bid()/ask(), \"pull\" or ())")
            }
            Flaw::Value(v) => v.clone(),
        }
    }

    /// The refusal: a runtime error keeps its line and column.
    fn refuse(self, file: &str, context: String) -> ScriptError {
        let message = format!("{context}: {}", self.describe());
        match self {
            Flaw::Error(e) => ScriptError { message, ..e },
            _ => ScriptError { file: file.to_string(), line: 0, column: 0, message },
        }
    }
}

/// The first price or size out of range in `d`, said.
fn bad_value(d: &Decision) -> Option<String> {
    if d.pull {
        return None;
    }
    let sides = [("bid", &d.bid), ("ask", &d.ask)]
        .into_iter()
        .chain(d.deeper.bids.iter().map(|l| ("deeper bid", l)))
        .chain(d.deeper.asks.iter().map(|l| ("deeper ask", l)));
    for (side, level) in sides {
        let Some(SideIntent { price, size }) = *level else { continue };
        if !price.is_finite() || price <= 0.0 {
            return Some(format!("the {side} price is {price} (must be a finite number above 0)"));
        }
        if !size.is_finite() || size < 0.0 {
            return Some(format!("the {side} size is {size} (must be a finite number, 0 or more)"));
        }
    }
    None
}

/// The check's own strategy, and the times of its calls.
struct Trial {
    s: ScriptStrategy,
    times: Vec<u64>,
}

impl Trial {
    /// One call on `m`: its flaw, if any (timed into `times`).
    fn run(&mut self, m: MarketState) -> Option<Flaw> {
        let before = self.s.stats();
        let t = Instant::now();
        let d = self.s.decide_market(m);
        self.times.push(t.elapsed().as_nanos().min(u64::MAX as u128) as u64);
        let after = self.s.stats();
        if after.errors > before.errors {
            let e = self.s.last_error().cloned().unwrap_or_else(|| ScriptError {
                file: self.s.script().path.display().to_string(),
                line: 0,
                column: 0,
                message: "a runtime error".into(),
            });
            return Some(Flaw::Error(e));
        }
        if after.bad_outputs > before.bad_outputs {
            let kind = crate::script::BadOutput::ALL
                .into_iter()
                .find(|k| after.bad_by_kind[k.index()] > before.bad_by_kind[k.index()]);
            // A quote with a value out of range: name the value.
            if let Some(kind) = kind.filter(|k| *k != crate::script::BadOutput::NotAQuote) {
                let (returned, value) = self.returned_value(m);
                let v = value.map_or_else(|| kind.as_str().to_string(), |v| format!("{} ({v})", kind.as_str()));
                return Some(Flaw::Value(format!("{v}; quote(m) returned {returned}")));
            }
            return Some(Flaw::Shape(self.returned(m)));
        }
        bad_value(&d).map(|v| Flaw::Value(format!("{v}; quote(m) returned {}", self.returned(m))))
    }

    /// What `quote(m)` returns for `m` and its first value out of range,
    /// said ([`bad_value`]).
    fn returned_value(&mut self, m: MarketState) -> (String, Option<String>) {
        let v = self.s.eval(m);
        let set = crate::script::output::take();
        let intent =
            set.or_else(|| v.as_ref().ok().and_then(|v| crate::script::output::intent_from(v, &m, m.min_order_size)));
        let value = intent.and_then(|i| bad_value(&i.decision));
        let returned = match (v, set) {
            (_, Some(i)) => format!("bid()/ask() quotes {}", show(&i.decision)),
            (Ok(v), None) => format!("{v:?}"),
            (Err(e), None) => format!("an error ({e})"),
        };
        (returned, value)
    }

    /// What `quote(m)` returns for `m`, for a message (run once more, in
    /// the interpreter, to see the value itself).
    fn returned(&mut self, m: MarketState) -> String {
        let v = self.s.eval(m);
        let set = crate::script::output::take().map(|i| i.decision);
        match (v, set) {
            (_, Some(d)) => format!("bid()/ask() quotes {}", show(&d)),
            (Ok(v), None) => format!("{v:?}"),
            (Err(e), None) => format!("an error ({e})"),
        }
    }
}

/// A decision, short: `bid NaN x 1, ask 100.1 x 1`.
fn show(d: &Decision) -> String {
    let side = |name: &str, l: &Option<SideIntent>| l.map(|l| format!("{name} {} x {}", l.price, l.size));
    let parts: Vec<String> = [side("bid", &d.bid), side("ask", &d.ask)].into_iter().flatten().collect();
    if d.pull || parts.is_empty() {
        "pull".into()
    } else {
        parts.join(", ")
    }
}

/// A state, short, for messages.
fn state_of(m: &MarketState) -> String {
    format!(
        "mid {}, bid {} x {}, ask {} x {}, position {} of max {}, volatility_bps {}",
        m.mid, m.best_bid, m.bid_qty, m.best_ask, m.ask_qty, m.position, m.max_position, m.volatility_bps
    )
}

fn median(times: &mut [u64]) -> u64 {
    if times.is_empty() {
        return 0;
    }
    times.sort_unstable();
    times[times.len() / 2]
}

/// Test-runs `script` (compiled with `limits` and `params`) on the sample
/// state, the edge states and `real` (oldest first), against a time
/// budget of `max_call_ns` per call (`[script] max_call_us`).
/// `Err`: why the version must not run, with the state and the value.
pub fn check(
    script: &CompiledScript,
    limits: &ScriptLimits,
    params: &Params,
    max_call_ns: u64,
    real: &[MarketState],
) -> Result<TrialReport, ScriptError> {
    let file = script.path.display().to_string();
    let mut trial = Trial { s: ScriptStrategy::new(engine(limits, params, None), script.clone()), times: Vec::new() };
    let sample = reload::sample_state();
    if let Some(flaw) = trial.run(sample) {
        return Err(flaw.refuse(&file, format!("on the sample state ({})", state_of(&sample))));
    }
    let base = real.last().copied().unwrap_or(sample);
    for (kind, m) in edge_states(&base, extreme_volatility_bps(real)) {
        if let Some(flaw) = trial.run(m) {
            return Err(flaw.refuse(&file, format!("on the edge state \"{kind}\" ({})", state_of(&m))));
        }
    }
    let synthetic = trial.times.len();
    let timed_on_real = real.len() >= MIN_TIMED;
    let mut first_bad = None;
    let (mut failed, mut over) = (0, 0);
    for (i, m) in real.iter().enumerate() {
        if let Some(flaw) = trial.run(*m) {
            failed += 1;
            first_bad.get_or_insert((i, flaw));
        }
        over += (trial.times[trial.times.len() - 1] > max_call_ns) as usize;
        // More than half over budget: the median is, whatever the rest
        // take; a slow version is not run 1000 times to say so.
        if timed_on_real && over > real.len() / 2 {
            break;
        }
    }
    if failed as f64 > MAX_BAD_SHARE * real.len() as f64 {
        let (i, flaw) = first_bad.expect("a failed state");
        let context = format!(
            "on {failed} of the last {} real states ({:.1}%, more than the {}% allowed); the first, real state {} \
             ({})",
            real.len(),
            100.0 * failed as f64 / real.len() as f64,
            MAX_BAD_SHARE * 100.0,
            i + 1,
            state_of(&real[i])
        );
        return Err(flaw.refuse(&file, context));
    }
    let ran = trial.times.len() - synthetic;
    let median_call_ns = if timed_on_real { median(&mut trial.times[synthetic..]) } else { median(&mut trial.times) };
    if median_call_ns > max_call_ns {
        let over = if timed_on_real && ran < real.len() {
            format!("{ran} of the last {} real states, more than half of them over budget", real.len())
        } else if timed_on_real {
            format!("the last {} real states", real.len())
        } else {
            format!("the sample and edge states ({} real states seen so far)", real.len())
        };
        return Err(ScriptError {
            file,
            line: 0,
            column: 0,
            message: format!(
                "quote(m) took {:.1} us per call (median over {over}), over the time budget [script] max_call_us = \
                 {} us; make it cheaper or raise max_call_us",
                median_call_ns as f64 / 1e3,
                max_call_ns as f64 / 1e3
            ),
        });
    }
    Ok(TrialReport {
        real_states: real.len(),
        real_failed: failed,
        edge_states: synthetic,
        median_call_ns,
        timed_on_real,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_states_are_what_they_say() {
        let base = reload::sample_state();
        let edges = edge_states(&base, 42.0);
        let get = |k: &str| edges.iter().find(|(n, _)| *n == k).unwrap().1;
        assert_eq!(get("position at +max").position, base.max_position);
        assert_eq!(get("position at -max").position, -base.max_position);
        assert_eq!(get("zero volatility").volatility_bps, 0.0);
        assert_eq!(get("extreme volatility").volatility_bps, 42.0);
        let calm = MarketState { volatility_bps: 0.3, ..base };
        assert_eq!(extreme_volatility_bps(&[calm]), EXTREME_VOLATILITY_FLOOR_BPS);
        let wild = MarketState { volatility_bps: 4.0, ..base };
        assert_eq!(extreme_volatility_bps(&[calm, wild, calm]), 40.0);
        let thin_bid = get("bid side nearly empty");
        assert!(thin_bid.bid_qty < 1e-7 && thin_bid.imbalance < -0.99);
        assert!((thin_bid.microprice - base.best_bid).abs() < 1e-6, "{}", thin_bid.microprice);
        let thin_ask = get("ask side nearly empty");
        assert!(thin_ask.ask_qty < 1e-7 && thin_ask.imbalance > 0.99);
        assert_eq!(get("advice expired").confidence, 0.0);
        // Both touches stay: the hot path never passes an empty side.
        assert!(edges.iter().all(|(_, m)| m.best_bid > 0.0 && m.best_ask > m.best_bid));
    }

    #[test]
    fn bad_values_are_named() {
        let q = |price, size| Some(SideIntent { price, size });
        let d = |bid, ask| Decision { bid, ask, ..Decision::default() };
        assert_eq!(bad_value(&d(q(1.0, 1.0), q(2.0, 0.0))), None);
        assert_eq!(bad_value(&Decision { pull: true, bid: q(f64::NAN, 1.0), ..Decision::default() }), None);
        assert!(bad_value(&d(q(f64::NAN, 1.0), None)).unwrap().starts_with("the bid price is NaN"));
        assert!(bad_value(&d(None, q(f64::INFINITY, 1.0))).unwrap().starts_with("the ask price is inf"));
        assert!(bad_value(&d(q(-3.0, 1.0), None)).unwrap().starts_with("the bid price is -3"));
        assert!(bad_value(&d(q(1.0, -1.0), None)).unwrap().starts_with("the bid size is -1"));
        assert_eq!(median(&mut [5, 1, 3]), 3);
        assert_eq!(median(&mut []), 0);
    }
}
