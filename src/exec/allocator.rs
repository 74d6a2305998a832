//! The account allocator: many symbols trading from one account, each
//! within its own budget, all within the account's limits.
//!
//! Why: two market makers on one account fail each other. One symbol's
//! bids lock the quote asset another symbol was counting on, and Binance
//! answers the second with "insufficient balance" (or, worse, both fill and
//! the account holds twice the inventory either meant to). So before a
//! symbol's quote becomes orders, [`Allocator::admit`] asks, level by
//! level:
//!
//! - **the symbol's budget**: a bid needs `price x qty` (rounded up) of the
//!   symbol's free quote, `budget_quote + quote bought and sold so far -
//!   its other bids`; an ask needs `qty` of its free base, `budget_base +
//!   base bought and sold so far - its other asks`. Commissions count in
//!   the asset they were charged in (the received one on spot), through
//!   [`Position`]'s balance deltas. A symbol can never spend what another
//!   symbol's budget holds;
//! - **the account's free balance** of that asset: what it held at start,
//!   plus every symbol's trading in that asset, minus everything locked by
//!   every symbol's working orders (BTCUSDT's asks and BTCFDUSD's asks both
//!   lock BTC; ETH is the quote of BLZETH and the base of ETHUSDT);
//! - **account limits**: open orders across all symbols, gross notional per
//!   quote asset (open positions at their mids plus working orders),
//!   inventory per base asset across the symbols that share it (bought
//!   less sold, plus what working orders would add), and the day's loss per
//!   quote asset across symbols, which stops every symbol (the kill is
//!   latched; [`Allocator::killed`]).
//!
//! Levels are admitted best first, alternating sides (best bid, best ask,
//! second bid, ...); once a level of a side is refused, the deeper ones of
//! that side are too, so a ladder stays contiguous from the touch. Every
//! refused level is counted per symbol and reason ([`Refused`]).
//!
//! What a symbol has working, as far as the allocator knows, is what it
//! last admitted, less what has filled since: the new quote replaces the
//! symbol's old one in the sums, since cancel-replace releases the old
//! order first. Money is `i64` 1e-8 units; products go through `i128`
//! ([`notional`], [`notional_ceil`]).
//!
//! This runs beside the exchange side (the backtest loop, the exec thread),
//! never on the hot thread.

use crate::exec::position::Position;
use crate::exec::{Fill, Quote, Side};
use crate::hot::fixed::{notional, notional_ceil, Price, Qty};
use crate::hot::msg::{Level, Symbol};
use crate::hot::strategy::MAX_LEVELS;

/// Nanoseconds in a UTC day.
const DAY_NS: i64 = 86_400_000_000_000;

/// One symbol's place in the account: its assets and budget (1e-8 units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolBudget {
    pub symbol: Symbol,
    pub base: String,
    pub quote: String,
    /// Quote asset this symbol may commit (bids working plus what it spent
    /// net of what it sold).
    pub quote_budget: i64,
    /// Base asset this symbol may sell beyond what it bought.
    pub base_budget: i64,
}

/// Limits over the whole account (1e-8 units; an asset not listed has no
/// limit of that kind).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountLimits {
    /// What the account holds at start, per asset (free).
    pub balances: Vec<(String, i64)>,
    /// Orders working at once across all symbols (`None`: no limit).
    pub max_open_orders: Option<u32>,
    /// Per quote asset: open positions at their mids plus working orders'
    /// notional, over the symbols quoted in it.
    pub max_gross_notional: Vec<(String, i64)>,
    /// Per base asset: |bought - sold| over the symbols that share it,
    /// working orders included.
    pub max_inventory: Vec<(String, i64)>,
    /// Per quote asset: the day's loss (UTC) over the symbols quoted in it,
    /// marked to their mids, that stops every symbol.
    pub daily_loss_limit: Vec<(String, i64)>,
}

/// Why a level was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The symbol's own quote budget would be overdrawn.
    SymbolQuoteBudget,
    /// The symbol's own base budget would be overdrawn.
    SymbolBaseBudget,
    /// The account's free balance of the asset would go below zero.
    AccountBalance,
    /// The account's inventory limit of the base asset.
    Inventory,
    /// Open orders across all symbols.
    OpenOrders,
    /// Gross notional of the quote asset across symbols.
    GrossNotional,
    /// The account's daily loss limit was hit: nothing is admitted.
    Killed,
}

impl Refusal {
    pub const ALL: [Refusal; 7] = [
        Refusal::SymbolQuoteBudget,
        Refusal::SymbolBaseBudget,
        Refusal::AccountBalance,
        Refusal::Inventory,
        Refusal::OpenOrders,
        Refusal::GrossNotional,
        Refusal::Killed,
    ];

    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::SymbolQuoteBudget => "symbol_quote_budget",
            Refusal::SymbolBaseBudget => "symbol_base_budget",
            Refusal::AccountBalance => "account_balance",
            Refusal::Inventory => "inventory",
            Refusal::OpenOrders => "open_orders",
            Refusal::GrossNotional => "gross_notional",
            Refusal::Killed => "killed",
        }
    }
}

/// Levels refused, per reason (indexed like [`Refusal::ALL`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused([u64; 7]);

impl Refused {
    pub fn get(&self, r: Refusal) -> u64 {
        self.0[r as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    fn add(&mut self, r: Refusal) {
        self.0[r as usize] += 1;
    }
}

/// Why the account stopped every symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKill {
    /// The quote asset whose daily loss hit its limit.
    pub asset: String,
    /// The day's PnL of that asset when it did (negative), 1e-8 units.
    pub pnl: i64,
    pub time_ns: i64,
}

impl AccountKill {
    /// The kill in words, as reports and the dashboard say it.
    pub fn describe(&self) -> String {
        format!("{} day loss {} at {} ns: every symbol stopped", self.asset, Price(self.pnl), self.time_ns)
    }
}

/// How many levels of each side of a quote were admitted (best first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub bids: usize,
    pub asks: usize,
}

/// One symbol's account.
#[derive(Debug, Clone)]
struct Desk {
    budget: SymbolBudget,
    /// Its fills: balance deltas per asset, PnL.
    position: Position,
    /// Working orders as admitted, less their fills: price, remaining.
    bids: [Level; MAX_LEVELS],
    asks: [Level; MAX_LEVELS],
    n_bids: usize,
    n_asks: usize,
    mid: Price,
    refused: Refused,
}

impl Desk {
    fn working(&self, side: Side) -> &[Level] {
        match side {
            Side::Buy => &self.bids[..self.n_bids],
            Side::Sell => &self.asks[..self.n_asks],
        }
    }

    fn bid_cost(&self) -> i64 {
        self.working(Side::Buy).iter().map(|l| notional_ceil(l.price.0, l.qty.0)).sum()
    }

    fn ask_qty(&self) -> i64 {
        self.working(Side::Sell).iter().map(|l| l.qty.0).sum()
    }

    fn orders_notional(&self) -> i64 {
        self.working(Side::Buy).iter().chain(self.working(Side::Sell)).map(|l| notional(l.price.0, l.qty.0)).sum()
    }

    /// What its trading changed of `asset`'s balance.
    fn flow(&self, asset: &str) -> i64 {
        let mut f = 0;
        if self.budget.base == asset {
            f += self.position.base_delta().0;
        }
        if self.budget.quote == asset {
            f += self.position.quote_delta();
        }
        if asset == "BNB" && self.budget.base != "BNB" && self.budget.quote != "BNB" {
            f += self.position.bnb_delta();
        }
        f
    }

    /// Its PnL marked to its mid; with no mid known yet, the open position
    /// counts at its cost (realized less fees only), not at a price of 0.
    fn pnl(&self) -> i64 {
        if self.mid.0 > 0 {
            self.position.pnl(self.mid)
        } else {
            self.position.realized().saturating_sub(self.position.fees())
        }
    }

    /// What its working orders lock of `asset`.
    fn locked(&self, asset: &str) -> i64 {
        let mut l = 0;
        if self.budget.quote == asset {
            l += self.bid_cost();
        }
        if self.budget.base == asset {
            l += self.ask_qty();
        }
        l
    }
}

/// The account-level view shared by every symbol of a process. See the
/// module docs.
#[derive(Debug, Clone)]
pub struct Allocator {
    limits: AccountLimits,
    desks: Vec<Desk>,
    /// The UTC day being counted, and each quote asset's PnL at its start.
    day: Option<i64>,
    day_start: Vec<(String, i64)>,
    killed: Option<AccountKill>,
}

/// `list`'s value for `asset`, if listed.
fn lookup(list: &[(String, i64)], asset: &str) -> Option<i64> {
    list.iter().find(|(a, _)| a == asset).map(|(_, v)| *v)
}

impl Allocator {
    /// An allocator for `symbols` (desk `i` is `symbols[i]`) under `limits`.
    pub fn new(symbols: Vec<SymbolBudget>, limits: AccountLimits) -> Self {
        let desks = symbols
            .into_iter()
            .map(|budget| Desk {
                budget,
                position: Position::new(),
                bids: [Level::default(); MAX_LEVELS],
                asks: [Level::default(); MAX_LEVELS],
                n_bids: 0,
                n_asks: 0,
                mid: Price::ZERO,
                refused: Refused::default(),
            })
            .collect();
        Self { limits, desks, day: None, day_start: Vec::new(), killed: None }
    }

    pub fn symbols(&self) -> impl Iterator<Item = &SymbolBudget> {
        self.desks.iter().map(|d| &d.budget)
    }

    /// Desk index of `symbol`.
    pub fn desk_of(&self, symbol: Symbol) -> Option<usize> {
        self.desks.iter().position(|d| d.budget.symbol == symbol)
    }

    /// Levels of desk `desk` refused so far, per reason.
    pub fn refused(&self, desk: usize) -> Refused {
        self.desks[desk].refused
    }

    /// Desk `desk`'s fills as the allocator counted them.
    pub fn position(&self, desk: usize) -> &Position {
        &self.desks[desk].position
    }

    /// The daily-loss kill, once hit (latched).
    pub fn killed(&self) -> Option<&AccountKill> {
        self.killed.as_ref()
    }

    /// The account's free balance of `asset` now: start + every symbol's
    /// trading - every working order's lock.
    pub fn free(&self, asset: &str) -> i64 {
        let start = lookup(&self.limits.balances, asset).unwrap_or(0);
        self.desks.iter().fold(start, |f, d| f.saturating_add(d.flow(asset)).saturating_sub(d.locked(asset)))
    }

    /// Desk `desk`'s free quote and base within its budget.
    pub fn budget_free(&self, desk: usize) -> (i64, i64) {
        let d = &self.desks[desk];
        let q = d.budget.quote_budget + d.position.quote_delta() - d.bid_cost();
        let b = d.budget.base_budget + d.position.base_delta().0 - d.ask_qty();
        (q, b)
    }

    /// The day's PnL of quote asset `asset` over its symbols, marked to
    /// their mids (1e-8 units).
    pub fn day_pnl(&self, asset: &str) -> i64 {
        let total = self.pnl(asset);
        total - lookup(&self.day_start, asset).unwrap_or(0)
    }

    fn pnl(&self, asset: &str) -> i64 {
        self.desks.iter().filter(|d| d.budget.quote == asset).map(Desk::pnl).sum()
    }

    /// Sets desk `desk`'s mid (what positions are marked to), then checks
    /// the daily loss.
    pub fn mark(&mut self, desk: usize, mid: Price, now_ns: i64) {
        self.desks[desk].mid = mid;
        self.check_loss(now_ns);
    }

    /// One fill of desk `desk`: its balances move, and the working level it
    /// came from (same side and price) has that much less left.
    pub fn on_fill(&mut self, desk: usize, f: &Fill) {
        let d = &mut self.desks[desk];
        d.position.on_fill(f);
        let (levels, n) = match f.side {
            Side::Buy => (&mut d.bids, d.n_bids),
            Side::Sell => (&mut d.asks, d.n_asks),
        };
        if let Some(l) = levels[..n].iter_mut().find(|l| l.price == f.price) {
            l.qty = Qty((l.qty.0 - f.qty.0).max(0));
        }
        self.check_loss(f.time_ns);
    }

    fn check_loss(&mut self, now_ns: i64) {
        let day = now_ns.div_euclid(DAY_NS);
        if self.day != Some(day) {
            self.day = Some(day);
            let quotes: Vec<String> = self.quote_assets();
            self.day_start = quotes.into_iter().map(|a| (a.clone(), self.pnl(&a))).collect();
        }
        if self.killed.is_some() {
            return;
        }
        for (asset, limit) in &self.limits.daily_loss_limit {
            let pnl = self.day_pnl(asset);
            if pnl <= -limit {
                self.killed = Some(AccountKill { asset: asset.clone(), pnl, time_ns: now_ns });
                return;
            }
        }
    }

    fn quote_assets(&self) -> Vec<String> {
        let mut v: Vec<String> = self.desks.iter().map(|d| d.budget.quote.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Admits what fits of a quote for desk `desk` (levels best first on
    /// each side) and makes it the desk's working set; returns how many
    /// levels of each side were admitted. Refused levels are counted.
    pub fn admit(&mut self, desk: usize, bids: &[Level], asks: &[Level], now_ns: i64) -> Admitted {
        let bids = &bids[..bids.len().min(MAX_LEVELS)];
        let asks = &asks[..asks.len().min(MAX_LEVELS)];
        self.check_loss(now_ns);
        // The desk's old orders make way for the new ones.
        self.desks[desk].n_bids = 0;
        self.desks[desk].n_asks = 0;
        let mut admitted = Admitted { bids: 0, asks: 0 };
        if self.killed.is_some() {
            for _ in 0..bids.len() + asks.len() {
                self.desks[desk].refused.add(Refusal::Killed);
            }
            return admitted;
        }
        // The reason a side's first refused level was refused: its deeper
        // levels are refused (and counted) for it too.
        let (mut bid_shut, mut ask_shut) = (None, None);
        for i in 0..bids.len().max(asks.len()) {
            for (side, levels) in [(Side::Buy, bids), (Side::Sell, asks)] {
                let Some(&level) = levels.get(i) else { continue };
                let shut = match side {
                    Side::Buy => &mut bid_shut,
                    Side::Sell => &mut ask_shut,
                };
                if let Some(why) = *shut {
                    self.desks[desk].refused.add(why);
                    continue;
                }
                match self.fits(desk, side, level) {
                    Ok(()) => {
                        let d = &mut self.desks[desk];
                        match side {
                            Side::Buy => {
                                d.bids[d.n_bids] = level;
                                d.n_bids += 1;
                                admitted.bids += 1;
                            }
                            Side::Sell => {
                                d.asks[d.n_asks] = level;
                                d.n_asks += 1;
                                admitted.asks += 1;
                            }
                        }
                    }
                    Err(why) => {
                        self.desks[desk].refused.add(why);
                        *shut = Some(why);
                    }
                }
            }
        }
        admitted
    }

    /// Makes desk `desk`'s working set what its exchange has committed to:
    /// per order slot, the order it has out (remaining quantity), else the
    /// level it will place. For a venue where orders leave late: a live
    /// order being cancelled or replaced still locks its funds and counts
    /// as open until the exchange confirms, so another symbol must not be
    /// admitted into its place before that. At most [`MAX_LEVELS`] a side
    /// are kept, best first as given.
    pub fn set_working(&mut self, desk: usize, orders: impl IntoIterator<Item = (Side, Level)>) {
        let d = &mut self.desks[desk];
        (d.n_bids, d.n_asks) = (0, 0);
        for (side, level) in orders {
            let (levels, n) = match side {
                Side::Buy => (&mut d.bids, &mut d.n_bids),
                Side::Sell => (&mut d.asks, &mut d.n_asks),
            };
            if *n < MAX_LEVELS {
                levels[*n] = level;
                *n += 1;
            }
        }
    }

    /// [`Allocator::admit`] of a [`Quote`] (its ladder included): the quote
    /// with its refused levels taken off.
    pub fn admit_quote(&mut self, desk: usize, quote: Quote) -> Quote {
        let (mut bids, mut asks) = ([Level::ZERO; MAX_LEVELS], [Level::ZERO; MAX_LEVELS]);
        let nb = quote.levels_into(Side::Buy, &mut bids);
        let na = quote.levels_into(Side::Sell, &mut asks);
        let a = self.admit(desk, &bids[..nb], &asks[..na], quote.time_ns);
        let mut deeper = quote.deeper;
        deeper.truncate(Side::Buy, a.bids.saturating_sub(1));
        deeper.truncate(Side::Sell, a.asks.saturating_sub(1));
        Quote { bid: quote.bid.filter(|_| a.bids >= 1), ask: quote.ask.filter(|_| a.asks >= 1), deeper, ..quote }
    }

    /// Whether `level` on `side` can be added to desk `desk`'s working set.
    fn fits(&self, desk: usize, side: Side, level: Level) -> Result<(), Refusal> {
        let d = &self.desks[desk];
        let (base, quote) = (d.budget.base.as_str(), d.budget.quote.as_str());
        let cost = notional_ceil(level.price.0, level.qty.0);
        let (quote_free, base_free) = self.budget_free(desk);
        match side {
            Side::Buy if cost > quote_free => return Err(Refusal::SymbolQuoteBudget),
            Side::Sell if level.qty.0 > base_free => return Err(Refusal::SymbolBaseBudget),
            _ => {}
        }
        let (asset, need) = match side {
            Side::Buy => (quote, cost),
            Side::Sell => (base, level.qty.0),
        };
        if need > self.free(asset) {
            return Err(Refusal::AccountBalance);
        }
        if let Some(max) = self.limits.max_open_orders {
            let open: usize = self.desks.iter().map(|d| d.n_bids + d.n_asks).sum();
            if open + 1 > max as usize {
                return Err(Refusal::OpenOrders);
            }
        }
        if let Some(max) = lookup(&self.limits.max_inventory, base) {
            let sharing = self.desks.iter().filter(|d| d.budget.base == base);
            let held: i64 = sharing.clone().map(|d| d.position.base_delta().0).sum();
            let (buying, selling) = sharing.fold((0i64, 0i64), |(b, s), d| {
                (b + d.working(Side::Buy).iter().map(|l| l.qty.0).sum::<i64>(), s + d.ask_qty())
            });
            let reach = match side {
                Side::Buy => (held + buying + level.qty.0).abs(),
                Side::Sell => (held - selling - level.qty.0).abs(),
            };
            if reach > max {
                return Err(Refusal::Inventory);
            }
        }
        if let Some(max) = lookup(&self.limits.max_gross_notional, quote) {
            let gross: i64 = self
                .desks
                .iter()
                .filter(|d| d.budget.quote == quote)
                .map(|d| notional(d.mid.0, d.position.base_delta().0).abs() + d.orders_notional())
                .sum();
            if gross + notional(level.price.0, level.qty.0) > max {
                return Err(Refusal::GrossNotional);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
