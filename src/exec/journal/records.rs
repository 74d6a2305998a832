//! The journal's records: what the exec thread writes (runs, order states,
//! fills, PnL snapshots, balances) and what queries give back.

use crate::exec::inventory::BalanceSource;
use crate::exec::position::{BnbPrice, FeesByAsset, Position};
use crate::exec::risk::Balance;
use crate::exec::{FeeAsset, Fill, Side};
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::Symbol;

/// Id of a row in `runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub i64);

/// How a run trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Paper,
    Live,
    Testnet,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Paper => "paper",
            RunMode::Live => "live",
            RunMode::Testnet => "testnet",
        }
    }
}

/// An order's status as the journal records it: Binance's statuses, with
/// `EXPIRED_IN_MATCH` folded into `Expired` and `Unknown` for a request whose
/// outcome is not known (a timeout or 5xx: "execution status unknown").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
    Unknown,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::New,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Rejected,
        OrderStatus::Expired,
        OrderStatus::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "NEW",
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::Unknown => "UNKNOWN",
        }
    }

    /// Parses the journal's spelling, and Binance's (`EXPIRED_IN_MATCH`,
    /// `PENDING_NEW`, which is working from our side).
    pub fn parse(s: &str) -> Option<OrderStatus> {
        Some(match s {
            "NEW" | "PENDING_NEW" => OrderStatus::New,
            "PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
            "FILLED" => OrderStatus::Filled,
            "CANCELED" => OrderStatus::Canceled,
            "REJECTED" => OrderStatus::Rejected,
            "EXPIRED" | "EXPIRED_IN_MATCH" => OrderStatus::Expired,
            "UNKNOWN" => OrderStatus::Unknown,
            _ => return None,
        })
    }

    /// True when the order may still be working on the exchange. `Unknown`
    /// counts as open: until the exchange says otherwise, an order whose
    /// request timed out may be resting, and reconciliation must ask.
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::New | OrderStatus::PartiallyFilled | OrderStatus::Unknown)
    }
}

/// One state change of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    pub run: RunId,
    /// Our `newClientOrderId`.
    pub client_id: String,
    /// The exchange's `orderId`, once known.
    pub exchange_id: Option<i64>,
    pub symbol: Symbol,
    pub side: Side,
    pub price: Price,
    /// Original order quantity.
    pub qty: Qty,
    /// Cumulative filled quantity (`z` in an execution report).
    pub filled: Qty,
    pub status: OrderStatus,
    /// Why the state changed, when there is something to say (reject reason,
    /// "cancel: price moved", ...).
    pub reason: Option<String>,
    pub time_ns: i64,
}

/// An order's latest state, read back from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderState {
    /// Row id of the state change (grows in commit order).
    pub seq: i64,
    pub event: OrderEvent,
}

/// One fill as journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillRecord {
    pub run: RunId,
    pub client_id: String,
    pub exchange_order_id: Option<i64>,
    pub symbol: Symbol,
    /// Exchange trade id (`t`); with the symbol, the fill's identity. Paper
    /// fills need their own unique ids.
    pub trade_id: i64,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    /// Commission, in 1e-8 of `fee_asset`.
    pub fee: i64,
    /// Commission asset (`N`): often the base asset on a buy, or BNB.
    pub fee_asset: String,
    pub maker: bool,
    pub time_ns: i64,
}

impl FillRecord {
    /// The fill as the in-memory accounting sees it, for a symbol trading
    /// `base_asset` against `quote_asset`: the commission keeps its amount
    /// and says which of them (or BNB, or another asset) it is in
    /// ([`FeeAsset::classify`]).
    pub fn to_fill(&self, base_asset: &str, quote_asset: &str) -> Fill {
        Fill {
            symbol: self.symbol,
            order_id: self.exchange_order_id.unwrap_or(0).max(0) as u64,
            side: self.side,
            price: self.price,
            qty: self.qty,
            fee: self.fee,
            fee_asset: FeeAsset::classify(&self.fee_asset, base_asset, quote_asset),
            time_ns: self.time_ns,
            maker: self.maker,
        }
    }
}

/// What [`Journal::record_fill`](super::Journal::record_fill) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillOutcome {
    /// Committed: apply it in memory.
    Recorded,
    /// Already journaled (same symbol and trade id): do not apply it again.
    Duplicate,
}

/// A run's description, written when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub mode: RunMode,
    pub symbols: Vec<String>,
    /// Hash of the validated config (any stable hex string).
    pub config_hash: String,
    pub started_ns: i64,
}

/// A PnL snapshot of one symbol's position, marked at `mark`. Money is
/// quote asset, 1e-8 (see [`crate::exec::position`] for what each means).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PnlSnapshot {
    pub run: RunId,
    pub time_ns: i64,
    pub symbol: Symbol,
    /// Base position net of base commissions.
    pub position: Qty,
    pub avg_entry: Price,
    pub mark: Price,
    /// Before fees.
    pub realized: i64,
    pub unrealized: i64,
    /// Value of the commissions ([`Position::fees`]).
    pub fees: i64,
    /// Commissions per asset, each in its own units.
    pub fees_by_asset: FeesByAsset,
    /// The BNB price `fees` valued BNB commissions at, and its source
    /// (`None`: unpriced).
    pub bnb_price: Option<BnbPrice>,
}

impl PnlSnapshot {
    /// A snapshot of `pos` marked at `mark`.
    pub fn of(run: RunId, symbol: Symbol, pos: &Position, mark: Price, time_ns: i64) -> Self {
        Self {
            run,
            time_ns,
            symbol,
            position: pos.qty(),
            avg_entry: pos.avg_entry(),
            mark,
            realized: pos.realized(),
            unrealized: pos.unrealized(mark),
            fees: pos.fees(),
            fees_by_asset: pos.fees_by_asset(),
            bnb_price: pos.bnb_price(),
        }
    }
}

/// The position rebuilt from every journaled fill of one symbol.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FillTotals {
    /// Every fill replayed in journal order, commissions included: the
    /// quantity is net of base commissions, and `fees()` values quote and
    /// base commissions (BNB ones need [`Position::set_bnb_price`]).
    pub position: Position,
    /// Total commission per asset, 1e-8 units, sorted by asset.
    pub fees: Vec<(String, i64)>,
}

impl FillTotals {
    /// Total commission paid in `asset` (0 when none).
    pub fn fee_in(&self, asset: &str) -> i64 {
        self.fees.iter().find(|(a, _)| a == asset).map_or(0, |(_, v)| *v)
    }
}

/// Counters of the writer thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records committed (fills counted once, duplicates included).
    pub committed: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Queued records whose write or commit failed (lost; see `last_error`).
    pub failed: u64,
    /// Records refused because the queue was full.
    pub refused: u64,
    /// Fills ignored as duplicates.
    pub duplicate_fills: u64,
    pub last_error: Option<String>,
}

/// One asset's balance as the exchange reported it, for the `balances`
/// table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceSnapshot {
    pub run: RunId,
    pub time_ns: i64,
    pub asset: String,
    pub balance: Balance,
    pub source: BalanceSource,
}

/// One order request's round trip (send to answer) as the exchange answered
/// it: a row of `order_rtt`, so backtests can replay real latencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RttSample {
    pub run: RunId,
    /// Wall clock at the answer, ns.
    pub time_ns: i64,
    /// `place`, `cancel`, `cancel_replace`, `query`, ...
    pub method: &'static str,
    /// `ws_api` or `rest`.
    pub via: &'static str,
    pub rtt_ns: i64,
}
