//! What a script's output means, and whether it is fit to quote.
//!
//! A script quotes in one of two ways, both giving an [`Intent`]:
//! * calling `bid(price, size)` / `ask(price, size)` (each call adds a
//!   level, the first call being the best) or `pull()`;
//! * returning a map of prices (`bid`, `ask`, `bid_size`, `ask_size`) or of
//!   distances from the mid (`bid_spread`, `ask_spread`), optionally with
//!   more levels as `bids: [[price, size], ...]` / `asks: [...]`; or
//!   `"pull"` / `()` to pull. Anything else is [`BadOutput::NotAQuote`].
//!
//! [`check`] then turns the intent into the [`Decision`] the guard sees: the
//! levels beyond `[strategy] levels` are dropped ([`BadOutput::TooManyLevels`],
//! the rest still quotes), and a quote with a NaN, infinite, non-positive
//! price, negative or absurd size pulls the whole call, counted by kind.
//! The interpreter and the compiled fast path both go through [`check`], so
//! the two cannot classify differently.

use std::cell::Cell;

use rhai::{Array, Dynamic, Engine, Map};

use crate::hot::strategy::{Decision, SideIntent, MAX_LEVELS};
use crate::script::MarketState;

/// Why an output was not used as it stood (SPEC17 §3). Every kind but
/// [`BadOutput::TooManyLevels`] pulls the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BadOutput {
    /// The wrong type: a number, a bool, a string other than `"pull"`, a
    /// map with `bids`/`asks` that are not arrays of `[price, size]`.
    NotAQuote,
    /// A price or size that is NaN (also a map value that is not a number).
    Nan,
    /// A price or size that is infinite.
    Infinite,
    /// A price at or below zero.
    NegativePrice,
    /// A size below zero.
    NegativeSize,
    /// A size over 1e9, or over 1000 x `max_position` (when that is set).
    AbsurdSize,
    /// More levels on a side than `[strategy] levels` (or [`MAX_LEVELS`]):
    /// the extra ones are dropped, the rest quotes.
    TooManyLevels,
}

impl BadOutput {
    pub const COUNT: usize = 7;
    /// Every kind, in [`BadOutput::index`] order.
    pub const ALL: [BadOutput; Self::COUNT] = [
        BadOutput::NotAQuote,
        BadOutput::Nan,
        BadOutput::Infinite,
        BadOutput::NegativePrice,
        BadOutput::NegativeSize,
        BadOutput::AbsurdSize,
        BadOutput::TooManyLevels,
    ];

    /// The name in reports and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BadOutput::NotAQuote => "not_a_quote",
            BadOutput::Nan => "nan",
            BadOutput::Infinite => "infinite",
            BadOutput::NegativePrice => "negative_price",
            BadOutput::NegativeSize => "negative_size",
            BadOutput::AbsurdSize => "absurd_size",
            BadOutput::TooManyLevels => "too_many_levels",
        }
    }

    /// Index into a `[u64; BadOutput::COUNT]` counter table.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the call is pulled (all kinds but too many levels).
    pub fn pulls(self) -> bool {
        self != BadOutput::TooManyLevels
    }
}

/// A size above this is absurd whatever the position limit.
pub const ABSURD_SIZE: f64 = 1e9;
/// A size above this many times `max_position` is absurd.
pub const ABSURD_POSITION_MULTIPLE: f64 = 1000.0;

/// The quotes a script asked for in one call, in call order, before
/// [`check`]. Small and `Copy`: built per call without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Intent {
    /// Level 0 in `bid`/`ask`, the next ones in `deeper`, up to [`MAX_LEVELS`].
    pub decision: Decision,
    /// Levels asked for per side, [`MAX_LEVELS`] and beyond included.
    pub bids: u32,
    pub asks: u32,
}

impl Intent {
    /// An intent that pulls.
    pub fn pull() -> Self {
        Self { decision: Decision { pull: true, ..Decision::default() }, ..Self::default() }
    }

    /// Adds a bid level behind the ones already asked for.
    pub fn bid(&mut self, price: f64, size: f64) {
        let q = SideIntent { price, size };
        let n = self.bids as usize;
        match n {
            0 => self.decision.bid = Some(q),
            n if n < MAX_LEVELS => self.decision.deeper.bids[n - 1] = Some(q),
            _ => {}
        }
        self.bids = self.bids.saturating_add(1);
    }

    /// Adds an ask level behind the ones already asked for.
    pub fn ask(&mut self, price: f64, size: f64) {
        let q = SideIntent { price, size };
        let n = self.asks as usize;
        match n {
            0 => self.decision.ask = Some(q),
            n if n < MAX_LEVELS => self.decision.deeper.asks[n - 1] = Some(q),
            _ => {}
        }
        self.asks = self.asks.saturating_add(1);
    }

    /// `pull()`: nothing quotes this event (levels asked for stay recorded,
    /// as in the decision, but the guard pulls).
    pub fn set_pull(&mut self) {
        self.decision.pull = true;
    }
}

/// Equal intents, prices and sizes compared bit for bit (NaN included).
pub fn same_intent(a: &Intent, b: &Intent) -> bool {
    a.bids == b.bids && a.asks == b.asks && same_decision(&a.decision, &b.decision)
}

/// Equal decisions, prices and sizes compared bit for bit (NaN included),
/// deeper levels included.
pub fn same_decision(a: &Decision, b: &Decision) -> bool {
    let side = |x: &Option<SideIntent>, y: &Option<SideIntent>| match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) => x.price.to_bits() == y.price.to_bits() && x.size.to_bits() == y.size.to_bits(),
        _ => false,
    };
    let deeper = |x: &[Option<SideIntent>], y: &[Option<SideIntent>]| x.iter().zip(y).all(|(x, y)| side(x, y));
    a.pull == b.pull
        && side(&a.bid, &b.bid)
        && side(&a.ask, &b.ask)
        && deeper(&a.deeper.bids, &b.deeper.bids)
        && deeper(&a.deeper.asks, &b.deeper.asks)
        && a.explain == b.explain
}

/// What one quote is wrong with, if anything.
fn bad_quote(q: &SideIntent, max_position: f64) -> Option<BadOutput> {
    let (p, s) = (q.price, q.size);
    if p.is_nan() || s.is_nan() {
        return Some(BadOutput::Nan);
    }
    if p.is_infinite() || s.is_infinite() {
        return Some(BadOutput::Infinite);
    }
    if p <= 0.0 {
        return Some(BadOutput::NegativePrice);
    }
    if s < 0.0 {
        return Some(BadOutput::NegativeSize);
    }
    if s > ABSURD_SIZE || (max_position > 0.0 && s > ABSURD_POSITION_MULTIPLE * max_position) {
        return Some(BadOutput::AbsurdSize);
    }
    None
}

/// The one classification both paths use: the decision to act on and the
/// bad kind to count, if any. `levels` is `[strategy] levels` (at least 1,
/// at most [`MAX_LEVELS`]). Levels beyond it are dropped first; then the
/// first bad quote (bids from the best out, then asks) pulls the call. A
/// pulled intent is passed through unchecked: nothing of it quotes. The
/// kind (or `None`) goes to `bad`, so that the decision is returned alone,
/// built in the caller's slot rather than copied out of a pair (perf: that
/// copy was about a tenth of the samples of a compiled decide).
pub fn check(intent: &Intent, m: &MarketState, levels: usize, bad: &mut Option<BadOutput>) -> Decision {
    *bad = None;
    let d = &intent.decision;
    if d.pull {
        return *d;
    }
    let cap = levels.clamp(1, MAX_LEVELS);
    // Only the levels kept are checked (those past `cap` are dropped), and
    // the decision is copied once, at the end: it is ~450 bytes.
    let (bids, asks) = (&d.deeper.bids[..cap - 1], &d.deeper.asks[..cap - 1]);
    let quotes = d.bid.iter().chain(bids.iter().flatten()).chain(d.ask.iter()).chain(asks.iter().flatten());
    for q in quotes {
        if let Some(kind) = bad_quote(q, m.max_position) {
            *bad = Some(kind);
            return Decision { pull: true, ..Decision::default() };
        }
    }
    let mut out = *d;
    if intent.bids as usize > cap || intent.asks as usize > cap {
        for l in out.deeper.bids[cap - 1..].iter_mut().chain(out.deeper.asks[cap - 1..].iter_mut()) {
            *l = None;
        }
        *bad = Some(BadOutput::TooManyLevels);
    }
    out
}

fn num(v: &Dynamic) -> f64 {
    v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64)).unwrap_or(f64::NAN)
}

fn get(map: &Map, key: &str) -> Option<f64> {
    map.get(key).map(num)
}

/// `bids: [[price, size], ...]` into `add`; `false` when not of that shape.
fn levels(v: &Dynamic, mut add: impl FnMut(f64, f64)) -> bool {
    let Some(list) = v.read_lock::<Array>() else { return false };
    for level in list.iter() {
        let Some(pair) = level.read_lock::<Array>() else { return false };
        let [p, s] = pair.as_slice() else { return false };
        add(num(p), num(s));
    }
    true
}

/// Turns the script's return value into an intent (`None`: not a quote).
/// A missing size is `default_size`.
pub fn intent_from(out: &Dynamic, m: &MarketState, default_size: f64) -> Option<Intent> {
    let pull = out.is_unit() || out.read_lock::<rhai::ImmutableString>().is_some_and(|s| s.as_str() == "pull");
    if pull {
        return Some(Intent::pull());
    }
    let map = out.read_lock::<Map>()?;
    let mut intent = Intent::default();
    // A price, or a distance from the mid.
    let bid = get(&map, "bid").or_else(|| get(&map, "bid_spread").map(|d| m.mid - d));
    let ask = get(&map, "ask").or_else(|| get(&map, "ask_spread").map(|d| m.mid + d));
    if let Some(p) = bid {
        intent.bid(p, get(&map, "bid_size").unwrap_or(default_size));
    }
    if let Some(p) = ask {
        intent.ask(p, get(&map, "ask_size").unwrap_or(default_size));
    }
    // More levels behind the ones above (or the first ones, without them).
    if let Some(v) = map.get("bids") {
        if !levels(v, |p, s| intent.bid(p, s)) {
            return None;
        }
    }
    if let Some(v) = map.get("asks") {
        if !levels(v, |p, s| intent.ask(p, s)) {
            return None;
        }
    }
    Some(intent)
}

thread_local! {
    /// What `bid`/`ask`/`pull` set during one interpreted call (per thread:
    /// each thread runs its own engine, so no lock is needed).
    static OUTPUT: Cell<Option<Intent>> = const { Cell::new(None) };
}

/// Clears the output slot before a call.
pub fn reset() {
    OUTPUT.with(|o| o.set(None));
}

/// What `bid`/`ask`/`pull` set during the last call, if they were called.
pub fn take() -> Option<Intent> {
    OUTPUT.with(|o| o.take())
}

fn update(f: impl FnOnce(&mut Intent)) {
    OUTPUT.with(|o| {
        let mut i = o.get().unwrap_or_default();
        f(&mut i);
        o.set(Some(i));
    });
}

/// `bid(price, size)`, `ask(price, size)` (each call one more level) and
/// `pull()`. Registered after `api::register`, so these replace the
/// single-level versions registered there (same names and signatures).
pub fn register(engine: &mut Engine) {
    engine.register_fn("bid", |price: f64, size: f64| update(|i| i.bid(price, size)));
    engine.register_fn("ask", |price: f64, size: f64| update(|i| i.ask(price, size)));
    engine.register_fn("pull", || update(|i| i.set_pull()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> MarketState {
        MarketState { max_position: 1.0, ..MarketState::default() }
    }

    fn ladder(n: usize) -> Intent {
        let mut i = Intent::default();
        for k in 0..n {
            i.bid(100.0 - k as f64, 0.1);
            i.ask(101.0 + k as f64, 0.1);
        }
        i
    }

    #[test]
    fn levels_past_the_cap_are_dropped_and_counted() {
        let mut bad = None;
        let d = check(&ladder(4), &state(), 2, &mut bad);
        assert_eq!(bad, Some(BadOutput::TooManyLevels));
        assert_eq!(d.deeper.count(), 2, "{d:?}");
        assert_eq!(d.deeper.bids[0], Some(SideIntent { price: 99.0, size: 0.1 }));
        assert!(!d.pull);

        let mut bad = None;
        let d = check(&ladder(2), &state(), 2, &mut bad);
        assert_eq!(bad, None);
        assert!(same_decision(&d, &ladder(2).decision));
    }

    #[test]
    fn a_bad_kept_level_pulls_and_a_bad_dropped_one_does_not() {
        let mut i = ladder(2);
        i.bid(f64::NAN, 0.1);
        // The third bid is past the cap of 2: dropped, not checked.
        let mut bad = None;
        let d = check(&i, &state(), 2, &mut bad);
        assert_eq!(bad, Some(BadOutput::TooManyLevels));
        assert!(!d.pull && d.deeper.count() == 2);
        // Within the cap it pulls.
        let mut bad = None;
        let d = check(&i, &state(), 3, &mut bad);
        assert_eq!(bad, Some(BadOutput::Nan));
        assert!(d.pull && d.bid.is_none() && d.ask.is_none());
        // Its kind wins over too many levels on the other side (a stale
        // kind in `bad` is overwritten).
        let mut wide = i;
        wide.ask(103.0, 0.1);
        wide.ask(104.0, 0.1);
        let mut bad = Some(BadOutput::AbsurdSize);
        let d = check(&wide, &state(), 3, &mut bad);
        assert_eq!(bad, Some(BadOutput::Nan));
        assert!(d.pull);
        let mut bad = None;
        let d = check(&i, &state(), 1, &mut bad);
        assert_eq!(bad, Some(BadOutput::TooManyLevels));
        assert!(d.deeper.count() == 0 && d.bid.is_some());
    }

    #[test]
    fn a_pulled_intent_passes_unchecked() {
        let mut i = ladder(1);
        i.bid(f64::NAN, 0.1);
        i.set_pull();
        let mut bad = Some(BadOutput::Nan);
        assert!(check(&i, &state(), 1, &mut bad).pull);
        assert_eq!(bad, None);
    }
}
