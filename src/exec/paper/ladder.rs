//! A ladder of paper orders: one [`PaperExchange`] per level of the
//! ladder, each working that level's order of each side with the whole
//! order and fill model (its own queue place, latencies, refresh and
//! replace rules), and all of them one symbol's account: they share the
//! position the `max_position` check sees, their order ids never collide,
//! and their counts add up.
//!
//! Level `i` of a [`Quote`] goes to the level-`i` exchange
//! ([`Quote::at_level`]); a level the quote no longer has is pulled there.
//! With one level this is exactly the single [`PaperExchange`]. Our paper
//! orders are not in the market's book, so the levels do not take volume
//! from each other: a trade that reaches two of our levels fills both, as
//! the module's "no market impact" optimism says.

use crate::exec::{ExecCounts, Fill, Quote, Side};
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::{Symbol, Trade};
use crate::hot::strategy::MAX_LEVELS;

use super::{FillMeta, LatencyModel, PaperBook, PaperConfig, PaperExchange, PaperStats, WorkingOrder};

/// One symbol's paper orders, `levels` per side.
#[derive(Debug, Clone)]
pub struct PaperLadder {
    /// Level 0 (the best quote of each side) first.
    levels: Vec<PaperExchange>,
}

impl PaperLadder {
    /// `levels` exchanges (1 to [`MAX_LEVELS`]) with the constant latencies
    /// of `cfg`.
    pub fn new(symbol: Symbol, cfg: PaperConfig, levels: usize) -> Self {
        Self::with_latency(symbol, cfg, cfg.constant_latency(), levels)
    }

    /// Exchanges whose delays come from `latency`; each level draws its own
    /// replayed delays (the seed plus the level).
    pub fn with_latency(symbol: Symbol, cfg: PaperConfig, latency: LatencyModel, levels: usize) -> Self {
        let n = levels.clamp(1, MAX_LEVELS);
        let levels = (0..n)
            .map(|i| {
                let seed = cfg.latency_seed.wrapping_add(i as u64);
                let lat = if i == 0 { latency.clone() } else { latency.reseeded(seed) };
                // Ids 1, 1 + n, ... for level 0; i + 1, i + 1 + n, ... for level i.
                PaperExchange::with_latency(symbol, cfg, lat).with_ids(i as u64 + 1, n as u64)
            })
            .collect();
        Self { levels }
    }

    /// Takes the latest desired quote, each level's to its exchange.
    pub fn on_quote(&mut self, q: &Quote, tick: Price, now_ns: i64) {
        if self.levels.len() == 1 {
            return self.levels[0].on_quote(q, tick, now_ns);
        }
        for (i, ex) in self.levels.iter_mut().enumerate() {
            ex.on_quote(&q.at_level(i), tick, now_ns);
        }
    }

    pub fn on_book(&mut self, book: &impl PaperBook, now_ns: i64, sink: &mut impl FnMut(Fill)) {
        self.each(sink, |ex, mut sink| ex.on_book(book, now_ns, &mut sink));
    }

    pub fn on_trade(&mut self, t: &Trade, now_ns: i64, sink: &mut impl FnMut(Fill)) {
        self.each(sink, |ex, mut sink| ex.on_trade(t, now_ns, &mut sink));
    }

    pub fn on_time(&mut self, now_ns: i64, sink: &mut impl FnMut(Fill)) {
        self.each(sink, |ex, mut sink| ex.on_time(now_ns, &mut sink));
    }

    /// Runs `f` on every level, telling it first what the other levels'
    /// orders can still fill; a level's fills move the position every other
    /// level's `max_position` check sees.
    fn each(&mut self, sink: &mut impl FnMut(Fill), mut f: impl FnMut(&mut PaperExchange, &mut dyn FnMut(Fill))) {
        if self.levels.len() == 1 {
            return f(&mut self.levels[0], sink);
        }
        for i in 0..self.levels.len() {
            let others = |side| -> i64 {
                let all: i64 = self.levels.iter().map(|e| e.working_qty(side)).sum();
                all - self.levels[i].working_qty(side)
            };
            let (buy, sell) = (others(Side::Buy), others(Side::Sell));
            self.levels[i].set_reserved(buy, sell);
            let mut moved = 0i64;
            f(&mut self.levels[i], &mut |fill: Fill| {
                moved += match fill.side {
                    Side::Buy => fill.qty.0,
                    Side::Sell => -fill.qty.0,
                };
                sink(fill)
            });
            if moved != 0 {
                for (j, other) in self.levels.iter_mut().enumerate() {
                    if j != i {
                        other.add_net(moved);
                    }
                }
            }
        }
    }

    /// The live bid of level 0, if any.
    pub fn working_bid(&self) -> Option<WorkingOrder> {
        self.levels[0].working_bid()
    }

    /// The live ask of level 0, if any.
    pub fn working_ask(&self) -> Option<WorkingOrder> {
        self.levels[0].working_ask()
    }

    /// Every live order, level by level (bid then ask), best first.
    pub fn working(&self) -> impl Iterator<Item = WorkingOrder> + '_ {
        self.levels.iter().flat_map(|e| e.working_bid().into_iter().chain(e.working_ask()))
    }

    /// The live order of `side` at level `i`.
    pub fn working_at(&self, side: Side, i: usize) -> Option<WorkingOrder> {
        let ex = self.levels.get(i)?;
        match side {
            Side::Buy => ex.working_bid(),
            Side::Sell => ex.working_ask(),
        }
    }

    /// The level an order id belongs to.
    fn level_of(&self, order_id: u64) -> Option<&PaperExchange> {
        let n = self.levels.len() as u64;
        self.levels.get((order_id.checked_sub(1)? % n) as usize)
    }

    pub fn fill_meta(&self, order_id: u64) -> Option<FillMeta> {
        self.level_of(order_id)?.fill_meta(order_id)
    }

    pub fn response_ns(&self, order_id: u64) -> Option<i64> {
        self.level_of(order_id)?.response_ns(order_id)
    }

    /// Every level's counters added up (`quotes` counts each quote once).
    pub fn stats(&self) -> PaperStats {
        let mut t = self.levels[0].stats();
        for s in self.levels[1..].iter().map(|e| e.stats()) {
            t.orders += s.orders;
            t.cancels += s.cancels;
            t.fills += s.fills;
            t.filled_qty = Qty(t.filled_qty.0.saturating_add(s.filled_qty.0));
            t.refused_by_limit += s.refused_by_limit;
            t.rejected_post_only += s.rejected_post_only;
            t.taker_fills += s.taker_fills;
        }
        t
    }

    pub fn counts(&self) -> ExecCounts {
        let s = self.stats();
        ExecCounts { orders: s.orders, cancels: s.cancels, fills: s.fills }
    }

    pub fn rejected_post_only(&self) -> u64 {
        self.stats().rejected_post_only
    }

    /// The fill model in words, with the ladder's depth when it has one.
    pub fn model(&self) -> String {
        let m = self.levels[0].model();
        match self.levels.len() {
            1 => m,
            n => format!("{m}, {n} levels a side"),
        }
    }
}
