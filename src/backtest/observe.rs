//! What a backtest shows, as it happens, to whoever studies it: every quote,
//! every fill with the position after it, and the market and own orders
//! after every book event. The research outputs (fills and timeline files,
//! statistics, plots) are built from these calls, so they see exactly what
//! the paper exchange and the hot path did, in simulated time.

use crate::backtest::QuoteSeen;
use crate::exec::paper::{FillMeta, WorkingOrder};
use crate::exec::position::Position;
use crate::exec::Fill;
use crate::hot::fixed::Qty;
use crate::hot::msg::Level;

/// A fill as the paper exchange made it.
#[derive(Debug, Clone, Copy)]
pub struct FillRecord {
    pub fill: Fill,
    /// How the filled order was placed (queue ahead when it arrived,
    /// when it was sent and went live); `None` if the exchange no longer
    /// remembers the order.
    pub meta: Option<FillMeta>,
    /// Net position (base asset) after this fill.
    pub position_after: Qty,
}

/// The market and our side of it right after a book event.
#[derive(Debug, Clone, Copy)]
pub struct MarketSample<'a> {
    /// The book event's time (the recording's receive time), ns.
    pub time_ns: i64,
    pub best_bid: Option<Level>,
    pub best_ask: Option<Level>,
    /// Our orders resting on the paper exchange.
    pub own_bid: Option<WorkingOrder>,
    pub own_ask: Option<WorkingOrder>,
    /// Net position (base asset).
    pub position: Qty,
    /// The whole position (PnL at a mark, fees, volume).
    pub position_state: &'a Position,
}

/// Told everything a backtest does; every method defaults to nothing.
pub trait RunObserver {
    /// Whether the run may draw its own progress spinner on a terminal
    /// (not when many runs share one, as in a sweep).
    fn wants_progress(&self) -> bool {
        true
    }
    fn on_quote(&mut self, _q: &QuoteSeen) {}
    fn on_fill(&mut self, _f: &FillRecord) {}
    fn on_book(&mut self, _s: &MarketSample<'_>) {}
}

/// An observer of quotes only (what [`crate::backtest::run_observed`] takes).
pub struct QuotesOnly<'a>(pub &'a mut dyn FnMut(&QuoteSeen));

impl RunObserver for QuotesOnly<'_> {
    fn on_quote(&mut self, q: &QuoteSeen) {
        (self.0)(q)
    }
}
