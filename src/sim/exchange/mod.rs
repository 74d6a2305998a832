//! The simulator's trading side: a Binance spot double that accepts signed
//! orders over REST and the WebSocket API, rests them against the simulated
//! market and fills them from its trades, so the live-trading path (signing,
//! clock sync, rate limits, bans, error actions, fills, the user-data
//! stream, the journal) can be tested without the internet and without real
//! money. It follows Binance's documents (binance-spot-api-docs), not
//! mmbot's own reading of them: each rule cites the doc section it models.
//!
//! [`Exchange`] holds the accounts ([`SimAccount`]: an API key with an HMAC
//! secret or an Ed25519 public key, balances and a commission rate), their
//! orders ([`SimOrder`]) and fills ([`SimFill`]); [`ExchangeConfig`] holds
//! what is not a fault (rate limits, BNB fees, the symbol's order cap).
//! The work is split by responsibility:
//! - [`wire`]: parameters, signatures, timestamps, number formats;
//! - [`rules`]: the symbol's filters, written once (exchangeInfo is printed
//!   from the same [`rules::SymbolSpec`] the engine checks against);
//! - [`limits`]: REQUEST_WEIGHT / RAW_REQUESTS per IP, ORDERS per account,
//!   the IP ban (rest-api.md §LIMITS, web-socket-api.md §Rate limits);
//! - [`money`]: locks, releases and commission (faqs/commission_faq.md);
//! - [`engine`]: the trading operations both APIs share (place, cancel,
//!   cancelReplace, queries) and the order faults;
//! - [`matching`]: fills from market trades, late orders reaching the
//!   engine, self-trades (faqs/stp_faq.md);
//! - [`answers`]: the JSON Binance answers with and pushes
//!   (executionReport, outboundAccountPosition);
//! - [`rest`]: the REST endpoints; [`ws_api`]: the WebSocket API methods
//!   and sessions.
//!
//! Matching: only resting orders exist (`LIMIT_MAKER` is all mmbot sends).
//! A resting order fills when a market trade trades *through* its price, or
//! *at* its price once the quantity that was on that level when the order
//! arrived (its queue) has been traded away. A trade's quantity is shared
//! among our orders, so one trade never fills more than it printed.
//!
//! Money (faqs/commission_faq.md §How is the commission calculated?): a BUY
//! locks `price x qty` of quote (rounded up), a SELL the base quantity;
//! nothing more is locked for fees. Commission is charged in the asset
//! received: a BUY pays `rate x filled qty` in base, a SELL pays
//! `rate x notional` in quote, both rounded toward zero to 1e-8. With BNB
//! fees on ([`BnbFees`]), the commission is converted to BNB at the
//! configured price and multiplied by the discount, as the FAQ's worked
//! example does; without enough free BNB the full commission is taken from
//! the received asset instead.
//!
//! This is a test double: it locks freely, allocates freely and answers
//! anything a client sends without panicking.

pub mod answers;
pub mod engine;
pub mod limits;
pub mod matching;
pub mod money;
pub mod rest;
pub mod rules;
pub mod wire;
pub mod ws_api;

use std::collections::BTreeMap;
use std::sync::mpsc::SyncSender;
use std::sync::Mutex;

use crate::exec::binance::model::OrderStatus;
use crate::exec::Side;
use crate::hot::fixed::{Price, Qty};
use crate::sim::faults::Faults;

pub use limits::SimLimits;
pub use money::BnbFees;
pub use rest::{Reply, Request};
pub use rules::ORDER_TYPES;
pub use wire::{fmt8, ApiError};
pub use ws_api::WsSession;

/// How an account's requests are authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum SimKey {
    /// The HMAC secret (the signature is its hex HMAC-SHA256).
    Hmac(String),
    /// The raw 32-byte Ed25519 public key (the signature is base64).
    Ed25519(Vec<u8>),
}

impl std::fmt::Debug for SimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Even a test secret is not printed: logs get pasted into issues.
        match self {
            Self::Hmac(_) => f.write_str("SimKey::Hmac(..)"),
            Self::Ed25519(_) => f.write_str("SimKey::Ed25519(..)"),
        }
    }
}

/// One simulated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAccount {
    /// What the client sends in `X-MBX-APIKEY`.
    pub api_key: String,
    pub key: SimKey,
    /// Starting free balances, e.g. `[("BTC", 1 BTC), ("USDT", 10000 USDT)]`.
    pub balances: Vec<(String, Qty)>,
    /// Maker (and taker) commission rate in fixed-point (0.001 = 100_000).
    pub commission: i64,
}

impl SimAccount {
    /// An HMAC account with `balances` given as decimal strings.
    pub fn hmac(api_key: &str, secret: &str, balances: &[(&str, &str)], commission: &str) -> Self {
        Self {
            api_key: api_key.into(),
            key: SimKey::Hmac(secret.into()),
            balances: balances.iter().map(|(a, v)| ((*a).into(), v.parse().unwrap_or(Qty::ZERO))).collect(),
            commission: commission.parse::<Qty>().map(|q| q.0).unwrap_or(0),
        }
    }
}

/// What the exchange is besides its faults: limits, fee payment, order cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeConfig {
    pub limits: SimLimits,
    /// Pay commission in BNB (BNB burn on); `None`: in the received asset.
    pub bnb_fees: Option<BnbFees>,
    /// The symbol's `MAX_NUM_ORDERS` filter (open orders per account).
    pub max_num_orders: u32,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        // 200: the value in filters.md §MAX_NUM_ORDERS's example.
        Self { limits: SimLimits::default(), bnb_fees: None, max_num_orders: 200 }
    }
}

/// One asset's balance as the exchange holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimBalance {
    pub asset: String,
    pub free: Qty,
    pub locked: Qty,
}

/// One order as the exchange holds it (open or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrder {
    pub symbol: String,
    pub order_id: u64,
    pub client_order_id: String,
    pub side: Side,
    pub price: Price,
    pub orig_qty: Qty,
    pub executed_qty: Qty,
    /// Sum of price x quantity filled (quote, 1e-8).
    pub cum_quote: i64,
    pub status: OrderStatus,
    pub time_ms: i64,
    pub update_ms: i64,
    /// `LIMIT_MAKER` for ours; `LIMIT` for the self-trade fault's takers.
    pub order_type: &'static str,
    /// `GTC`, or `IOC` for the self-trade fault's takers.
    pub time_in_force: &'static str,
    /// `selfTradePreventionMode` (the symbol's default when not sent).
    pub stp_mode: &'static str,
    /// Quantity expired by self-trade prevention (stp_faq.md §What is
    /// "prevented quantity?"): available = orig - executed - prevented.
    pub prevented_qty: Qty,
    /// The last prevented match's id (`None`: never prevented).
    pub prevented_match_id: Option<u64>,
}

impl SimOrder {
    /// What may still execute.
    pub fn available(&self) -> i64 {
        self.orig_qty.0 - self.executed_qty.0 - self.prevented_qty.0
    }
}

/// One fill of one of the account's orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFill {
    pub symbol: String,
    pub order_id: u64,
    pub client_order_id: String,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    /// Charged in [`SimFill::commission_asset`]: the received asset (base
    /// for a BUY, quote for a SELL), or BNB with BNB fees on.
    pub commission: i64,
    pub commission_asset: String,
    pub trade_id: u64,
    pub time_ms: i64,
    /// Maker side of the trade (false only for the self-trade fault's taker).
    pub is_maker: bool,
}

/// Counts of what arrived during IP bans (a client that honours
/// `Retry-After` sends none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BanCounts {
    /// REST requests, any endpoint.
    pub requests: u64,
    /// WebSocket connection attempts (market streams and `/ws-api/v3`).
    pub connects: u64,
}

/// What an order keeps besides its public state.
pub(crate) struct OrderState {
    pub(crate) order: SimOrder,
    /// Quantity ahead of us at our price (the book's level when we arrived),
    /// consumed by trades at our price before we fill.
    pub(crate) queue_ahead: i64,
    /// What is still locked for this order (quote for a BUY, base for a SELL).
    pub(crate) locked: i64,
}

pub(crate) struct Account {
    pub(crate) cfg: SimAccount,
    /// asset -> (free, locked), 1e-8.
    pub(crate) balances: BTreeMap<String, (i64, i64)>,
    pub(crate) orders: Vec<OrderState>,
    pub(crate) fills: Vec<SimFill>,
    /// User-data subscribers: raw event JSON goes to each.
    pub(crate) subs: Vec<SyncSender<String>>,
    /// The most orders this account ever had open at once.
    pub(crate) max_open: usize,
    /// The same per side (BUY, SELL).
    pub(crate) max_open_per_side: [usize; 2],
    /// ORDERS counters (rest-api.md §Unfilled Order Count: per account).
    pub(crate) order_counts: limits::OrderCounts,
}

/// An order request that reaches the matching engine late (the -1007 fault).
pub(crate) struct LateOrder {
    pub(crate) due_ms: i64,
    pub(crate) acct: usize,
    pub(crate) new: engine::NewOrder,
}

pub(crate) struct Inner {
    pub(crate) accounts: Vec<Account>,
    pub(crate) next_order_id: u64,
    pub(crate) next_trade_id: u64,
    pub(crate) next_exec_id: u64,
    pub(crate) next_prevented_id: u64,
    /// Order requests so far (the every-Nth order faults count these).
    pub(crate) order_requests: u64,
    /// Requests so far (the every-Nth weight fault counts these).
    pub(crate) requests: u64,
    pub(crate) ip: limits::IpUsage,
    pub(crate) late: Vec<LateOrder>,
    /// When the self-trade fault last struck, exchange ms.
    pub(crate) last_self_trade_ms: i64,
    /// The last market trade's price per symbol (PERCENT_PRICE_BY_SIDE).
    pub(crate) last_price: Vec<Option<i64>>,
}

/// The trading side of the simulator. Shared by every connection thread
/// and the market thread; all state is under one lock.
pub struct Exchange {
    pub(crate) markets: Vec<rules::SymbolSpec>,
    pub(crate) faults: Faults,
    pub(crate) cfg: ExchangeConfig,
    pub(crate) inner: Mutex<Inner>,
}

/// Events queued per user-data subscriber before it counts as too slow.
pub(crate) const SUB_QUEUE: usize = 4096;

impl Exchange {
    pub fn new(symbols: &[String], accounts: &[SimAccount], faults: Faults) -> Self {
        Self::with_config(symbols, accounts, faults, ExchangeConfig::default())
    }

    pub fn with_config(symbols: &[String], accounts: &[SimAccount], faults: Faults, cfg: ExchangeConfig) -> Self {
        let markets: Vec<rules::SymbolSpec> =
            symbols.iter().map(|s| rules::SymbolSpec::for_symbol(s, cfg.max_num_orders)).collect();
        let last_price = vec![None; markets.len()];
        let accounts = accounts
            .iter()
            .map(|a| {
                let mut balances = BTreeMap::new();
                for (asset, q) in &a.balances {
                    balances.insert(asset.to_ascii_uppercase(), (q.0, 0));
                }
                Account {
                    cfg: a.clone(),
                    balances,
                    orders: Vec::new(),
                    fills: Vec::new(),
                    subs: Vec::new(),
                    max_open: 0,
                    max_open_per_side: [0, 0],
                    order_counts: Default::default(),
                }
            })
            .collect();
        Self {
            markets,
            faults,
            cfg,
            inner: Mutex::new(Inner {
                accounts,
                next_order_id: 1,
                next_trade_id: 1,
                next_exec_id: 1,
                next_prevented_id: 0,
                order_requests: 0,
                requests: 0,
                ip: Default::default(),
                late: Vec::new(),
                last_self_trade_ms: 0,
                last_price,
            }),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The exchange's clock: the wall clock plus the clock-offset fault.
    pub fn now_ms(&self) -> i64 {
        crate::feed::snapshot::wall_ns() / 1_000_000 + self.faults.clock_offset_ms
    }

    /// The faults this exchange injects.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Balances of the account with `api_key` (`None`: no such account).
    pub fn account(&self, api_key: &str) -> Option<Vec<SimBalance>> {
        let g = self.lock();
        let a = g.accounts.iter().find(|a| a.cfg.api_key == api_key)?;
        Some(
            a.balances
                .iter()
                .map(|(k, &(f, l))| SimBalance { asset: k.clone(), free: Qty(f), locked: Qty(l) })
                .collect(),
        )
    }

    /// Open orders of the account with `api_key`.
    pub fn orders(&self, api_key: &str) -> Vec<SimOrder> {
        self.all_orders(api_key).into_iter().filter(|o| o.status.is_open()).collect()
    }

    /// Every order the account with `api_key` ever placed, open or not,
    /// oldest first.
    pub fn all_orders(&self, api_key: &str) -> Vec<SimOrder> {
        let g = self.lock();
        g.accounts
            .iter()
            .find(|a| a.cfg.api_key == api_key)
            .map(|a| a.orders.iter().map(|o| o.order.clone()).collect())
            .unwrap_or_default()
    }

    /// The most orders the account with `api_key` ever had open at once.
    pub fn max_open_orders(&self, api_key: &str) -> usize {
        let g = self.lock();
        g.accounts.iter().find(|a| a.cfg.api_key == api_key).map_or(0, |a| a.max_open)
    }

    /// The most orders the account ever had open at once on each side
    /// (BUY, SELL): a market maker's "one order per side" seen from the
    /// exchange.
    pub fn max_open_per_side(&self, api_key: &str) -> [usize; 2] {
        let g = self.lock();
        g.accounts.iter().find(|a| a.cfg.api_key == api_key).map_or([0, 0], |a| a.max_open_per_side)
    }

    /// Requests and WebSocket connects that arrived while the IP was banned.
    pub fn requests_during_ban(&self) -> u64 {
        let c = self.ban_counts();
        c.requests + c.connects
    }

    /// [`Exchange::requests_during_ban`], split by kind.
    pub fn ban_counts(&self) -> BanCounts {
        self.lock().ip.during_ban
    }

    /// Every fill of the account with `api_key`, oldest first.
    pub fn fills(&self, api_key: &str) -> Vec<SimFill> {
        let g = self.lock();
        g.accounts.iter().find(|a| a.cfg.api_key == api_key).map(|a| a.fills.clone()).unwrap_or_default()
    }

    /// Credits (or debits) `delta` of `asset` to the account, as a deposit
    /// or withdrawal would: sends `balanceUpdate` and the new position.
    pub fn adjust_balance(&self, api_key: &str, asset: &str, delta: i64) -> bool {
        let now = self.now_ms();
        let mut g = self.lock();
        let Some(a) = g.accounts.iter_mut().find(|a| a.cfg.api_key == api_key) else { return false };
        let asset = asset.to_ascii_uppercase();
        let b = a.balances.entry(asset.clone()).or_insert((0, 0));
        b.0 = b.0.saturating_add(delta);
        let ev =
            format!("{{\"e\":\"balanceUpdate\",\"E\":{now},\"a\":\"{asset}\",\"d\":\"{}\",\"T\":{now}}}", fmt8(delta));
        answers::push(a, ev);
        answers::position(a, &[asset.as_str()], now);
        true
    }

    /// exchangeInfo for the simulated symbols, from the specs the engine
    /// checks orders against.
    pub fn exchange_info_json(&self) -> String {
        rules::exchange_info(&self.markets, &self.cfg.limits, self.now_ms())
    }
}
