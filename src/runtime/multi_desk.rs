//! One symbol's exchange side in a multi-symbol run: a paper ladder
//! (backtests, replays, paper trading) or the live order manager on the
//! account's shared gateway (`run --live` with `[[symbols]]`), driven the
//! same way by the exec thread (`runtime::multi`).

use crate::exec::live::LiveExchange;
use crate::exec::paper::{PaperConfig, PaperLadder, WorkingOrder};
use crate::exec::risk::KillReason;
use crate::exec::{ExecCounts, Fill, Quote};
use crate::hot::book::TopOfBook;
use crate::hot::fixed::Price;
use crate::hot::msg::Trade;

/// Where a symbol's orders go.
#[allow(clippy::large_enum_variant)]
pub(super) enum DeskVenue {
    /// Made at the first quote, with the symbol's `[strategy] levels`.
    Paper(Option<PaperLadder>),
    Live(Box<LiveExchange>),
}

impl DeskVenue {
    pub fn on_book(&mut self, top: &TopOfBook, time_ns: i64, sink: &mut impl FnMut(Fill)) {
        match self {
            Self::Paper(ex) => {
                if let Some(ex) = ex.as_mut() {
                    ex.on_book(top, time_ns, sink)
                }
            }
            Self::Live(ex) => ex.on_book(top, time_ns, sink),
        }
    }

    pub fn on_trade(&mut self, trade: &Trade, time_ns: i64, sink: &mut impl FnMut(Fill)) {
        match self {
            Self::Paper(ex) => {
                if let Some(ex) = ex.as_mut() {
                    ex.on_trade(trade, time_ns, sink)
                }
            }
            Self::Live(ex) => ex.on_trade(trade, time_ns, sink),
        }
    }

    /// The latest quote (as the allocator admitted it); `cfg` and `levels`
    /// make the paper ladder at the first quote.
    pub fn on_quote(&mut self, q: &Quote, tick: Price, cfg: PaperConfig, levels: usize) {
        match self {
            Self::Paper(ex) => {
                ex.get_or_insert_with(|| PaperLadder::new(q.symbol, cfg, levels)).on_quote(q, tick, q.time_ns)
            }
            Self::Live(ex) => ex.on_quote(q, tick, q.time_ns),
        }
    }

    /// Live only: answers, user data and timers, even without market data.
    pub fn poll(&mut self, sink: &mut impl FnMut(Fill)) {
        if let Self::Live(ex) = self {
            ex.poll(sink);
        }
    }

    /// The account's limits stopped every symbol: a live symbol cancels
    /// its orders and stops (a paper one just gets no more quotes).
    pub fn kill(&mut self, now_ns: i64, sink: &mut impl FnMut(Fill)) {
        if let Self::Live(ex) = self {
            if ex.stopped().is_none() {
                ex.kill_switch().trip(KillReason::LossLimit, now_ns);
                ex.poll(sink);
            }
        }
    }

    /// The end of the run: a live symbol cancels everything and settles.
    pub fn stop(&mut self, sink: &mut impl FnMut(Fill)) {
        if let Self::Live(ex) = self {
            ex.stop();
            ex.poll(sink);
        }
    }

    /// Stopped on its own limits (live only).
    pub fn stopped(&self) -> bool {
        matches!(self, Self::Live(ex) if ex.stopped().is_some())
    }

    /// Every working order, each side's best first.
    pub fn working(&self) -> impl Iterator<Item = WorkingOrder> + '_ {
        let (paper, live) = match self {
            Self::Paper(ex) => (ex.as_ref(), None),
            Self::Live(ex) => (None, Some(ex)),
        };
        paper.into_iter().flat_map(|e| e.working()).chain(live.into_iter().flat_map(|e| e.working_orders()))
    }

    pub fn counts(&self) -> ExecCounts {
        match self {
            Self::Paper(ex) => ex.as_ref().map(|e| e.counts()).unwrap_or_default(),
            Self::Live(ex) => {
                let s = ex.stats();
                ExecCounts { orders: s.orders, cancels: s.cancels, fills: s.fills }
            }
        }
    }

    pub fn paper(&self) -> Option<&PaperLadder> {
        match self {
            Self::Paper(ex) => ex.as_ref(),
            Self::Live(_) => None,
        }
    }

    pub fn live(&self) -> Option<&LiveExchange> {
        match self {
            Self::Live(ex) => Some(ex),
            Self::Paper(_) => None,
        }
    }
}
