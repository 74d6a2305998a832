//! What a multi-symbol run shows while it runs: one row per symbol (mid,
//! spread, own orders, position, PnL, counts, status) and the account's
//! state, published by the exec thread a few times a second for the
//! symbols dashboard (`cli::dashboard::symbols`) and the status lines.
//!
//! The exec thread already holds everything a row needs (each symbol's top
//! of book, paper ladder, position and the allocator), so the hot threads
//! publish nothing for it. Publishing takes a `try_lock`: a reader drawing
//! the screen never makes the exec thread wait, it only skips a refresh.

use std::sync::{Arc, Mutex};

use crate::exec::paper::WorkingOrder;
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::Symbol;

/// Where a symbol stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SymbolState {
    /// No book yet.
    #[default]
    Waiting,
    /// Its last quote had orders on at least one side.
    Quoting,
    /// Its last quote was pulled (unsynced, stale or crossed book, the
    /// strategy, or nothing admitted by the allocator).
    Pulled,
    /// The account's daily-loss kill stopped every symbol.
    Killed,
}

impl SymbolState {
    pub fn name(self) -> &'static str {
        match self {
            SymbolState::Waiting => "waiting",
            SymbolState::Quoting => "quoting",
            SymbolState::Pulled => "pulled",
            SymbolState::Killed => "killed",
        }
    }
}

/// One symbol's row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SymbolRow {
    pub symbol: Symbol,
    /// Its quote asset (PnL and fees are in it).
    pub quote_asset: String,
    pub best_bid: Option<Price>,
    pub best_ask: Option<Price>,
    /// The orders working on the exchange, level by level (bid, ask).
    pub working: Vec<WorkingOrder>,
    pub position: Qty,
    /// Realized plus unrealized at the mid, quote asset (1e-8).
    pub pnl: i64,
    pub fees: i64,
    pub quotes: u64,
    pub orders: u64,
    pub fills: u64,
    /// Levels the allocator refused.
    pub refused: u64,
    pub state: SymbolState,
}

impl SymbolRow {
    pub fn mid(&self) -> Option<Price> {
        Some(Price((self.best_bid?.0 + self.best_ask?.0) / 2))
    }

    /// The book's spread in basis points of the mid.
    pub fn spread_bps(&self) -> Option<f64> {
        let (b, a) = (self.best_bid?.0 as f64, self.best_ask?.0 as f64);
        (b > 0.0 && a > b).then(|| (a - b) / ((a + b) / 2.0) * 1e4)
    }
}

/// Every symbol's row, in `[[symbols]]` order, and the account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MultiStatus {
    pub rows: Vec<SymbolRow>,
    /// Why the account's kill switch stopped every symbol, once it has.
    pub killed: Option<String>,
    /// Whether the allocator is on (`[account]`).
    pub allocator: bool,
    /// Wall seconds since the run started.
    pub elapsed_s: f64,
}

impl MultiStatus {
    /// Totals per quote asset: (asset, PnL, fees, fills), in first-listed
    /// order.
    pub fn totals(&self) -> Vec<(String, i64, i64, u64)> {
        let mut out: Vec<(String, i64, i64, u64)> = Vec::new();
        for r in &self.rows {
            match out.iter_mut().find(|t| t.0 == r.quote_asset) {
                Some(t) => {
                    t.1 += r.pnl;
                    t.2 += r.fees;
                    t.3 += r.fills;
                }
                None => out.push((r.quote_asset.clone(), r.pnl, r.fees, r.fills)),
            }
        }
        out
    }
}

/// Where the exec thread publishes and readers read.
pub type SharedStatus = Arc<Mutex<MultiStatus>>;

/// Replaces the shared status unless a reader holds it (then the next
/// refresh brings it).
pub fn publish(shared: &SharedStatus, status: &MultiStatus) {
    if let Ok(mut s) = shared.try_lock() {
        s.clone_from(status);
    }
}
