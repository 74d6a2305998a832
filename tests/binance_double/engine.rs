//! The double's matching engine for one account trading one or more symbols: our orders (each
//! on its symbol), each symbol's market best bid/ask set by the test, the account's shared
//! balances with Binance's locking, commission, self-trade prevention (within a symbol), and the
//! user-data events each change produces.
//!
//! Per symbol: orders, matching, the market, MAX_NUM_ORDERS (filters.md §MAX_NUM_ORDERS: "open
//! on a symbol") and the order, trade and prevented-match id sequences. The docs key every order
//! and trade lookup by `symbol` + id (rest-api.md §Query order, §Account trade list: "orderId ...
//! can only be used in combination with `symbol`") and never promise ids unique across symbols,
//! so each symbol counts its own from 1 (the double's choice: a client that keys orders by id
//! alone meets a collision at once). Account-wide: balances (rest-api.md §Account information),
//! commission, `canTrade`, and the events (web-socket-api.md §User Data Stream requests: a
//! subscription receives "all the events related to a given account").
//!
//! Sources: rest-api.md §New order (types, responses), §Cancel order, §Account trade list;
//! user-data-stream.md §Order Update / §Account Update; stp_faq.md; commission_faq.md;
//! enums.md §Execution types. The engine holds no locks itself: `State` is behind the
//! double's one mutex, and every method returns the events to push after it is released.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::config::{DoubleConfig, SymbolRules};
use super::fixed::{self, fmt};

/// Order side (enums.md §Order side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
    pub fn parse(s: &str) -> Option<Side> {
        match s {
            "BUY" => Some(Side::Buy),
            "SELL" => Some(Side::Sell),
            _ => None,
        }
    }
}

/// Order status (enums.md §Order status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
    ExpiredInMatch,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "NEW",
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::ExpiredInMatch => "EXPIRED_IN_MATCH",
        }
    }
    /// Still on the book.
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::New | OrderStatus::PartiallyFilled)
    }
}

/// One of our orders as the engine knows it (what `GET /api/v3/order` reports).
#[derive(Clone, Debug)]
pub struct Order {
    /// The symbol the order is on (rest-api.md §Query order `symbol`).
    pub symbol: String,
    /// Unique within its symbol (see the module notes).
    pub order_id: i64,
    pub client_order_id: String,
    pub side: Side,
    /// `LIMIT` or `LIMIT_MAKER`.
    pub order_type: String,
    /// `GTC`, `IOC`, `FOK` (LIMIT_MAKER reports `GTC`, as rest-api.md's cancelReplace example shows).
    pub time_in_force: String,
    pub price: i64,
    pub orig_qty: i64,
    pub executed_qty: i64,
    pub cum_quote: i64,
    pub status: OrderStatus,
    pub stp_mode: String,
    /// stp_faq.md §What is "prevented quantity?"
    pub prevented_qty: i64,
    pub prevented_match_id: Option<i64>,
    pub time: i64,
    pub update_time: i64,
    pub working_time: Option<i64>,
    /// Funds still locked for this order (quote for BUY, base for SELL).
    pub locked: i64,
    /// Time priority among our orders.
    pub seq: u64,
}

impl Order {
    /// stp_faq.md: "original order quantity - executed quantity - prevented quantity".
    pub fn available(&self) -> i64 {
        self.orig_qty - self.executed_qty - self.prevented_qty
    }
}

/// One fill of one of our orders (what `GET /api/v3/myTrades` reports).
#[derive(Clone, Debug)]
pub struct Trade {
    /// The symbol traded (rest-api.md §Account trade list `symbol`).
    pub symbol: String,
    /// Unique within its symbol.
    pub id: i64,
    pub order_id: i64,
    pub side: Side,
    pub price: i64,
    pub qty: i64,
    pub quote_qty: i64,
    pub commission: i64,
    pub commission_asset: String,
    pub time: i64,
    pub is_maker: bool,
}

/// Free and locked amounts of one asset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    pub free: i64,
    pub locked: i64,
}

/// One price level of the (other participants') market: price and quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    pub price: i64,
    pub qty: i64,
}

/// A new order that passed parameter and filter checks.
#[derive(Clone, Debug)]
pub struct NewOrder {
    pub side: Side,
    pub order_type: String,
    pub time_in_force: String,
    pub price: i64,
    pub qty: i64,
    pub client_order_id: Option<String>,
    pub stp_mode: String,
}

/// Identifies an order the way cancel and query do (rest-api.md §Cancel order, Notes).
#[derive(Clone, Debug, Default)]
pub struct OrderRef {
    pub order_id: Option<i64>,
    pub client_order_id: Option<String>,
}

/// A refusal: Binance error code and message (errors.md).
pub type Refusal = (i64, String);

/// Result of a placement: the order after matching and its fills (for `FULL` responses).
pub struct Placed {
    pub order: Order,
    pub fills: Vec<Trade>,
}

/// One symbol: its rules, the other participants' best bid/ask set by the test, and its own
/// id sequences.
pub struct Market {
    pub rules: SymbolRules,
    pub bid: Option<Level>,
    pub ask: Option<Level>,
    pub last_trade_price: Option<i64>,
    /// Most open orders per side ever seen at once on this symbol: [BUY, SELL].
    pub max_open: [usize; 2],
    next_order_id: i64,
    next_trade_id: i64,
    next_prevented_id: i64,
}

impl Market {
    fn new(rules: SymbolRules) -> Market {
        Market {
            rules,
            bid: None,
            ask: None,
            last_trade_price: None,
            max_open: [0, 0],
            next_order_id: 1,
            next_trade_id: 1,
            next_prevented_id: 0,
        }
    }

    pub fn symbol(&self) -> &str {
        &self.rules.symbol
    }

    /// The reference price for filters.md §PERCENT_PRICE_BY_SIDE: the double's choice is the last
    /// trade, else the market mid (the docs use a reference price or a volume-weighted average).
    pub fn reference_price(&self) -> Option<i64> {
        self.last_trade_price.or(match (self.bid, self.ask) {
            (Some(b), Some(a)) => Some((b.price + a.price) / 2),
            _ => None,
        })
    }
}

/// Index of a symbol in [`Engine::markets`]; 0 is the default symbol (`DoubleConfig::rules`).
pub type Sym = usize;

/// The engine state.
pub struct Engine {
    /// Every symbol served, the default first (`DoubleConfig::all_symbols`).
    pub markets: Vec<Market>,
    /// Every order ever accepted, all symbols, in placement order.
    pub orders: Vec<Order>,
    /// Every fill of ours, all symbols, in order.
    pub trades: Vec<Trade>,
    /// The account's balances, shared by every symbol.
    pub balances: BTreeMap<String, Balance>,
    pub can_trade: bool,
    pub commission: super::config::Commission,
    next_exec_id: i64,
    next_seq: u64,
    next_client_id: u64,
    /// Events to push to user-data subscribers, drained by the caller.
    pub events: Vec<Value>,
}

fn side_idx(s: Side) -> usize {
    match s {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

impl Engine {
    pub fn new(cfg: &DoubleConfig) -> Engine {
        let markets: Vec<Market> = cfg.all_symbols().into_iter().map(Market::new).collect();
        let mut balances = BTreeMap::new();
        for m in &markets {
            for a in [&m.rules.base, &m.rules.quote] {
                balances.insert(a.clone(), Balance::default());
            }
        }
        for (a, v) in &cfg.balances {
            balances.insert(a.clone(), Balance { free: *v, locked: 0 });
        }
        Engine {
            markets,
            orders: Vec::new(),
            trades: Vec::new(),
            balances,
            can_trade: cfg.can_trade,
            commission: cfg.commission.clone(),
            next_exec_id: 1,
            next_seq: 1,
            next_client_id: 1,
            events: Vec::new(),
        }
    }

    /// The index of `symbol` in `markets`, None when the double does not serve it.
    pub fn market(&self, symbol: &str) -> Option<Sym> {
        self.markets.iter().position(|m| m.rules.symbol == symbol)
    }

    /// The market of our order `i`.
    fn sym_of(&self, i: usize) -> Sym {
        self.market(&self.orders[i].symbol).unwrap_or(0)
    }

    fn on(&self, s: Sym, o: &Order) -> bool {
        o.symbol == self.markets[s].rules.symbol
    }

    /// Open orders on symbol `s` (on one side, or both).
    pub fn open_count(&self, s: Sym, side: Option<Side>) -> usize {
        self.orders.iter().filter(|o| self.on(s, o) && o.status.is_open() && side.is_none_or(|x| o.side == x)).count()
    }

    fn note_open_counts(&mut self, s: Sym) {
        for side in [Side::Buy, Side::Sell] {
            let n = self.open_count(s, Some(side));
            let i = side_idx(side);
            if n > self.markets[s].max_open[i] {
                self.markets[s].max_open[i] = n;
            }
        }
    }

    /// [`Market::reference_price`] of symbol `s`.
    pub fn reference_price(&self, s: Sym) -> Option<i64> {
        self.markets[s].reference_price()
    }

    fn bal(&mut self, asset: &str) -> &mut Balance {
        self.balances.entry(asset.to_string()).or_default()
    }

    /// The base and quote assets of symbol `s`.
    fn assets(&self, s: Sym) -> (String, String) {
        (self.markets[s].rules.base.clone(), self.markets[s].rules.quote.clone())
    }

    fn idx_of(&self, s: Sym, order_id: i64) -> Option<usize> {
        self.orders.iter().position(|o| self.on(s, o) && o.order_id == order_id)
    }

    /// Finds an order on symbol `s` by id and/or client id (rest-api.md §Cancel order Notes: "the
    /// `orderId` is searched first, then the `origClientOrderId` from that result is checked").
    pub fn find(&self, s: Sym, r: &OrderRef, open_only: bool) -> Option<usize> {
        if let Some(id) = r.order_id {
            let i = self.idx_of(s, id)?;
            if let Some(c) = &r.client_order_id {
                if &self.orders[i].client_order_id != c {
                    return None;
                }
            }
            if open_only && !self.orders[i].status.is_open() {
                return None;
            }
            return Some(i);
        }
        let c = r.client_order_id.as_ref()?;
        // The open one first, else the latest with that id.
        let open = self.orders.iter().rposition(|o| self.on(s, o) && &o.client_order_id == c && o.status.is_open());
        if open.is_some() || open_only {
            return open;
        }
        self.orders.iter().rposition(|o| self.on(s, o) && &o.client_order_id == c)
    }

    /// Best price a taker on `side` of symbol `s` would meet: own opposite orders and the market level.
    fn best_opposite(&self, s: Sym, taker: Side) -> Option<i64> {
        let own = self
            .orders
            .iter()
            .filter(|o| self.on(s, o) && o.status.is_open() && o.side != taker && o.available() > 0)
            .map(|o| o.price);
        let own = match taker {
            Side::Buy => own.min(),
            Side::Sell => own.max(),
        };
        let m = &self.markets[s];
        let mkt = match taker {
            Side::Buy => m.ask.filter(|l| l.qty > 0).map(|l| l.price),
            Side::Sell => m.bid.filter(|l| l.qty > 0).map(|l| l.price),
        };
        match (own, mkt, taker) {
            (Some(a), Some(b), Side::Buy) => Some(a.min(b)),
            (Some(a), Some(b), Side::Sell) => Some(a.max(b)),
            (a, b, _) => a.or(b),
        }
    }

    fn crosses(taker: Side, limit: i64, price: i64) -> bool {
        match taker {
            Side::Buy => price <= limit,
            Side::Sell => price >= limit,
        }
    }

    fn new_client_id(&mut self) -> String {
        let n = self.next_client_id;
        self.next_client_id += 1;
        format!("dbl{n:019}")
    }

    /// Places a new order on symbol `s`: rest-api.md §New order. Refusals are -2010 messages (errors.md
    /// §Messages for -1010, -2010, -2011); on success the order is matched and, if GTC, rests.
    /// A refused placement pushes no execution report (UNVERIFIED; only cancelReplace's refused
    /// new order is documented to give REJECTED, see `report_rejected`).
    pub fn place(&mut self, s: Sym, n: NewOrder, now: i64) -> Result<Placed, Refusal> {
        if !self.can_trade {
            return Err((-2010, "This account may not place or cancel orders.".into()));
        }
        let client = match n.client_order_id.clone() {
            Some(c) => c,
            None => self.new_client_id(),
        };
        // rest-api.md §New order `newClientOrderId`: "A unique id among open orders". Checked
        // among the symbol's open orders, where lookups by client id search (the double's choice:
        // the docs do not say whether the uniqueness spans symbols).
        if self.orders.iter().any(|o| self.on(s, o) && o.status.is_open() && o.client_order_id == client) {
            return Err((-2010, "Duplicate order sent.".into()));
        }
        if n.order_type == "LIMIT_MAKER" {
            if let Some(best) = self.best_opposite(s, n.side) {
                if Self::crosses(n.side, n.price, best) {
                    return Err((-2010, "Order would immediately match and take.".into()));
                }
            }
        }
        // Locks as Binance does: a BUY locks price * quantity of the quote asset, a SELL locks
        // the quantity of the base asset (user-data-stream.md §Account Update shows `l`). The
        // balances are the account's: a BUY on BTCUSDT and one on ETHUSDT both lock USDT.
        let (base, quote) = self.assets(s);
        let (lock_asset, lock) = match n.side {
            Side::Buy => (quote, fixed::mul_ceil(n.price, n.qty)),
            Side::Sell => (base, n.qty),
        };
        if self.bal(&lock_asset).free < lock {
            return Err((-2010, "Account has insufficient balance for requested action.".into()));
        }
        if n.time_in_force == "FOK" && self.fillable(s, n.side, n.price, n.qty) < n.qty {
            // FOK with no full fill expires without trading (enums.md §Execution types EXPIRED).
            self.push_order(s, &n, client, now, 0);
            let i = self.orders.len() - 1;
            self.report(i, "NEW", None, now, "");
            self.orders[i].status = OrderStatus::Expired;
            self.report(i, "EXPIRED", None, now, "");
            return Ok(Placed { order: self.orders[i].clone(), fills: vec![] });
        }
        {
            let b = self.bal(&lock_asset);
            b.free -= lock;
            b.locked += lock;
        }
        self.push_order(s, &n, client, now, lock);
        let i = self.orders.len() - 1;
        self.report(i, "NEW", None, now, "");
        let fills = if n.order_type == "LIMIT" { self.match_taker(i, now) } else { Vec::new() };
        if self.orders[i].status.is_open() {
            if self.orders[i].available() <= 0 {
                // Only STP can bring available to zero without a fill status.
                self.orders[i].status = OrderStatus::ExpiredInMatch;
            } else if self.orders[i].time_in_force == "IOC" {
                self.orders[i].status = OrderStatus::Expired;
                self.release(i);
                self.report(i, "EXPIRED", None, now, "");
            }
        }
        if !self.orders[i].status.is_open() {
            self.release(i);
        }
        self.note_open_counts(s);
        self.push_positions(s, now);
        Ok(Placed { order: self.orders[i].clone(), fills })
    }

    fn push_order(&mut self, s: Sym, n: &NewOrder, client: String, now: i64, lock: i64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = self.markets[s].next_order_id;
        self.markets[s].next_order_id += 1;
        let o = Order {
            symbol: self.markets[s].rules.symbol.clone(),
            order_id: id,
            client_order_id: client,
            side: n.side,
            order_type: n.order_type.clone(),
            time_in_force: n.time_in_force.clone(),
            price: n.price,
            orig_qty: n.qty,
            executed_qty: 0,
            cum_quote: 0,
            status: OrderStatus::New,
            stp_mode: n.stp_mode.clone(),
            prevented_qty: 0,
            prevented_match_id: None,
            time: now,
            update_time: now,
            // Only orders that can rest work on the book (user-data-stream.md `W`).
            working_time: if n.order_type == "LIMIT_MAKER" || n.time_in_force == "GTC" { Some(now) } else { None },
            locked: lock,
            seq,
        };
        self.orders.push(o);
    }

    /// How much a taker on symbol `s` could fill now (for FOK), ignoring STP.
    fn fillable(&self, s: Sym, side: Side, limit: i64, qty: i64) -> i64 {
        let own: i64 = self
            .orders
            .iter()
            .filter(|o| self.on(s, o) && o.status.is_open() && o.side != side && Self::crosses(side, limit, o.price))
            .map(|o| o.available())
            .sum();
        let lvl = match side {
            Side::Buy => self.markets[s].ask,
            Side::Sell => self.markets[s].bid,
        };
        let mkt = lvl.filter(|l| Self::crosses(side, limit, l.price)).map_or(0, |l| l.qty);
        (own + mkt).min(qty)
    }

    /// Index of our best resting order on symbol `s` opposite `side` that crosses `limit`
    /// (price, then time).
    fn best_own_maker(&self, s: Sym, side: Side, limit: i64, exclude: usize) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, o) in self.orders.iter().enumerate() {
            if i == exclude || !self.on(s, o) || !o.status.is_open() || o.side == side || o.available() <= 0 {
                continue;
            }
            if !Self::crosses(side, limit, o.price) {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let bo = &self.orders[b];
                    let better = match side {
                        Side::Buy => o.price < bo.price || (o.price == bo.price && o.seq < bo.seq),
                        Side::Sell => o.price > bo.price || (o.price == bo.price && o.seq < bo.seq),
                    };
                    if better {
                        Some(i)
                    } else {
                        Some(b)
                    }
                }
            };
        }
        best
    }

    /// Matches our order `t` as taker against our own resting orders and the market level.
    /// At equal prices the market level goes first (the double's choice: the test set it before).
    fn match_taker(&mut self, t: usize, now: i64) -> Vec<Trade> {
        let s = self.sym_of(t);
        let mut fills = Vec::new();
        for _ in 0..10_000 {
            let side = self.orders[t].side;
            let limit = self.orders[t].price;
            let rem = self.orders[t].available();
            if rem <= 0 || !self.orders[t].status.is_open() {
                break;
            }
            let own = self.best_own_maker(s, side, limit, t);
            let lvl = match side {
                Side::Buy => self.markets[s].ask,
                Side::Sell => self.markets[s].bid,
            }
            .filter(|l| l.qty > 0 && Self::crosses(side, limit, l.price));
            let use_market = match (own, lvl) {
                (None, None) => break,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(m), Some(l)) => {
                    let p = self.orders[m].price;
                    match side {
                        Side::Buy => l.price <= p,
                        Side::Sell => l.price >= p,
                    }
                }
            };
            if use_market {
                let Some(l) = lvl else { break };
                let q = rem.min(l.qty);
                let tid = self.trade_id(s);
                let tr = self.fill(t, l.price, q, false, tid, now);
                fills.push(tr);
                let m = &mut self.markets[s];
                let lv = match side {
                    Side::Buy => &mut m.ask,
                    Side::Sell => &mut m.bid,
                };
                if let Some(x) = lv.as_mut() {
                    x.qty -= q;
                }
                m.last_trade_price = Some(l.price);
                continue;
            }
            let Some(m) = own else { break };
            let mode = effective_stp(&self.orders[t].stp_mode, &self.orders[m].stp_mode);
            if mode == "NONE" {
                let p = self.orders[m].price;
                let q = rem.min(self.orders[m].available());
                let tid = self.trade_id(s);
                fills.push(self.fill(t, p, q, false, tid, now));
                self.fill(m, p, q, true, tid, now);
                self.markets[s].last_trade_price = Some(p);
                continue;
            }
            self.prevent(t, m, &mode, now);
        }
        fills
    }

    /// Self-trade prevention between our taker `t` and our maker `m` (stp_faq.md §What happens
    /// when STP is triggered?). TRANSFER within one account behaves as DECREMENT.
    fn prevent(&mut self, t: usize, m: usize, mode: &str, now: i64) {
        let s = self.sym_of(t);
        let pid = self.markets[s].next_prevented_id;
        self.markets[s].next_prevented_id += 1;
        let (tr, mr) = (self.orders[t].available(), self.orders[m].available());
        let (t_prev, m_prev) = match mode {
            "EXPIRE_TAKER" => (tr, 0),
            "EXPIRE_MAKER" => (0, mr),
            "EXPIRE_BOTH" => (tr, mr),
            _ => {
                let q = tr.min(mr);
                (q, q)
            }
        };
        let counter = [(t, m, t_prev), (m, t, m_prev)];
        for (i, other, prev) in counter {
            if prev == 0 {
                continue;
            }
            let o = &mut self.orders[i];
            o.prevented_qty += prev;
            o.prevented_match_id = Some(pid);
            o.update_time = now;
            if o.available() <= 0 {
                o.status = OrderStatus::ExpiredInMatch;
            }
            let other_id = self.orders[other].order_id;
            let price = self.orders[m].price;
            let extra = json!({"v": pid, "A": fmt(self.orders[i].prevented_qty), "B": fmt(prev),
                "u": -1, "U": other_id, "Cs": self.markets[s].rules.symbol, "pl": fmt(prev), "pL": fmt(price),
                "pY": fmt(fixed::mul(prev, price))});
            if !self.orders[i].status.is_open() {
                self.release(i);
            }
            self.report_with(i, "TRADE_PREVENTION", None, now, "", Some(extra));
        }
        self.note_open_counts(s);
    }

    /// The next trade id of symbol `s`.
    fn trade_id(&mut self, s: Sym) -> i64 {
        let id = self.markets[s].next_trade_id;
        self.markets[s].next_trade_id += 1;
        id
    }

    /// Applies one fill to our order `i` at `price` for `qty`: balances, commission, record, event.
    fn fill(&mut self, i: usize, price: i64, qty: i64, is_maker: bool, trade_id: i64, now: i64) -> Trade {
        let side = self.orders[i].side;
        let (base, quote) = self.assets(self.sym_of(i));
        let quote_qty = fixed::mul(price, qty);
        let c = self.commission.clone();
        let rate = if is_maker { c.maker } else { c.taker } + if side == Side::Buy { c.buyer } else { c.seller };
        // commission_faq.md: "the received amount is multiplied with the sum of the rates";
        // BUY receives the base asset, SELL receives the notional in the quote asset.
        let (recv_asset, received) = match side {
            Side::Buy => (base.clone(), qty),
            Side::Sell => (quote.clone(), quote_qty),
        };
        // Rounded half up to 8 decimals: the rounding is UNVERIFIED (the docs do not say).
        let mut commission = fixed::mul(received, rate);
        let mut commission_asset = recv_asset.clone();
        if c.pay_in_bnb && commission > 0 {
            // commission_faq.md: converted at the BNB rate and discounted; paid in BNB only if
            // the account holds enough, otherwise the full commission comes out of the received asset.
            let std_quote = fixed::mul(quote_qty, rate);
            let bnb = fixed::div(fixed::mul(std_quote, c.bnb_discount_multiplier), c.bnb_price_in_quote);
            if self.bal("BNB").free >= bnb {
                self.bal("BNB").free -= bnb;
                commission = bnb;
                commission_asset = "BNB".into();
            }
        }
        let paid_from_received = commission_asset == recv_asset;
        match side {
            Side::Buy => {
                let rel = fixed::mul_ceil(self.orders[i].price, qty).min(self.orders[i].locked);
                self.orders[i].locked -= rel;
                let b = self.bal(&quote);
                b.locked -= rel;
                b.free += rel - quote_qty;
                self.bal(&base).free += qty - if paid_from_received { commission } else { 0 };
            }
            Side::Sell => {
                let rel = qty.min(self.orders[i].locked);
                self.orders[i].locked -= rel;
                self.bal(&base).locked -= rel;
                self.bal(&quote).free += quote_qty - if paid_from_received { commission } else { 0 };
            }
        }
        let o = &mut self.orders[i];
        o.executed_qty += qty;
        o.cum_quote += quote_qty;
        o.update_time = now;
        if o.working_time.is_none() && is_maker {
            o.working_time = Some(now);
        }
        o.status = if o.executed_qty >= o.orig_qty { OrderStatus::Filled } else { OrderStatus::PartiallyFilled };
        if o.available() <= 0 && o.status != OrderStatus::Filled {
            o.status = OrderStatus::ExpiredInMatch;
        }
        let t = Trade {
            symbol: o.symbol.clone(),
            id: trade_id,
            order_id: o.order_id,
            side,
            price,
            qty,
            quote_qty,
            commission,
            commission_asset,
            time: now,
            is_maker,
        };
        if !self.orders[i].status.is_open() {
            self.release(i);
        }
        self.trades.push(t.clone());
        self.report(i, "TRADE", Some(&t), now, "");
        t
    }

    /// Returns whatever is still locked for order `i` to free.
    fn release(&mut self, i: usize) {
        let left = self.orders[i].locked;
        if left == 0 {
            return;
        }
        self.orders[i].locked = 0;
        let (base, quote) = self.assets(self.sym_of(i));
        let asset = match self.orders[i].side {
            Side::Buy => quote,
            Side::Sell => base,
        };
        let b = self.bal(&asset);
        b.locked -= left;
        b.free += left;
    }

    /// Cancels one open order on symbol `s`: rest-api.md §Cancel order (incl. §Regarding
    /// `cancelRestrictions`). An order of another symbol is not found (-2011).
    pub fn cancel(
        &mut self,
        s: Sym,
        r: &OrderRef,
        cancel_client_id: Option<String>,
        restrictions: Option<&str>,
        now: i64,
    ) -> Result<(Order, String), Refusal> {
        if !self.can_trade {
            return Err((-2011, "This account may not place or cancel orders.".into()));
        }
        let Some(i) = self.find(s, r, true) else {
            return Err((-2011, "Unknown order sent.".into()));
        };
        match restrictions {
            Some("ONLY_NEW") if self.orders[i].status != OrderStatus::New => {
                return Err((-2011, "Order was not canceled due to cancel restrictions.".into()))
            }
            Some("ONLY_PARTIALLY_FILLED") if self.orders[i].status != OrderStatus::PartiallyFilled => {
                return Err((-2011, "Order was not canceled due to cancel restrictions.".into()))
            }
            _ => {}
        }
        let cid = match cancel_client_id {
            Some(c) => c,
            None => self.new_client_id(),
        };
        self.orders[i].status = OrderStatus::Canceled;
        self.orders[i].update_time = now;
        self.release(i);
        self.report(i, "CANCELED", None, now, &cid);
        self.push_positions(s, now);
        Ok((self.orders[i].clone(), cid))
    }

    /// Sends a REJECTED execution report for a new order refused inside a cancel-replace
    /// (enums.md §Execution types: REJECTED "e.g. Cancel Replace Orders wherein the new order
    /// placement is rejected but the request to cancel request succeeds").
    pub fn report_rejected(&mut self, s: Sym, n: &NewOrder, msg: &str, now: i64) {
        let reason = match msg {
            "Order would immediately match and take." => "WOULD_MATCH_IMMEDIATELY",
            "Account has insufficient balance for requested action." => "INSUFFICIENT_BALANCES",
            _ => "NONE",
        };
        let ev = json!({
            "e": "executionReport", "E": now, "s": self.markets[s].rules.symbol,
            "c": n.client_order_id.clone().unwrap_or_default(), "S": n.side.as_str(), "o": n.order_type,
            "f": n.time_in_force, "q": fmt(n.qty), "p": fmt(n.price), "P": fmt(0), "F": fmt(0), "g": -1,
            "C": "", "x": "REJECTED", "X": "REJECTED", "r": reason, "i": -1, "l": fmt(0), "z": fmt(0),
            "L": fmt(0), "n": "0", "N": null, "T": now, "t": -1, "I": self.exec_id(), "w": false, "m": false,
            "M": false, "O": now, "Z": fmt(0), "Y": fmt(0), "Q": fmt(0), "V": n.stp_mode,
        });
        self.events.push(ev);
    }

    fn exec_id(&mut self) -> i64 {
        let e = self.next_exec_id;
        self.next_exec_id += 1;
        e
    }

    fn report(&mut self, i: usize, x: &str, t: Option<&Trade>, now: i64, cancel_cid: &str) {
        self.report_with(i, x, t, now, cancel_cid, None);
    }

    /// Builds an `executionReport` (user-data-stream.md §Order Update). On cancel, `c` is the
    /// cancel's client id and `C` the canceled order's ("This is the ID of the order being canceled").
    fn report_with(&mut self, i: usize, x: &str, t: Option<&Trade>, now: i64, cancel_cid: &str, extra: Option<Value>) {
        let eid = self.exec_id();
        let o = &self.orders[i];
        let (c, cc) = if x == "CANCELED" {
            (cancel_cid.to_string(), o.client_order_id.clone())
        } else {
            (o.client_order_id.clone(), String::new())
        };
        let mut ev = json!({
            "e": "executionReport", "E": now, "s": o.symbol, "c": c, "S": o.side.as_str(),
            "o": o.order_type, "f": o.time_in_force, "q": fmt(o.orig_qty), "p": fmt(o.price),
            "P": fmt(0), "F": fmt(0), "g": -1, "C": cc, "x": x, "X": o.status.as_str(), "r": "NONE",
            "i": o.order_id, "l": fmt(t.map_or(0, |t| t.qty)), "z": fmt(o.executed_qty),
            "L": fmt(t.map_or(0, |t| t.price)), "n": t.map_or("0".to_string(), |t| fmt(t.commission)),
            "N": t.map(|t| t.commission_asset.clone()), "T": now, "t": t.map_or(-1, |t| t.id), "I": eid,
            "w": o.status.is_open() && o.working_time.is_some(), "m": t.is_some_and(|t| t.is_maker), "M": false,
            "O": o.time, "Z": fmt(o.cum_quote), "Y": fmt(t.map_or(0, |t| t.quote_qty)), "Q": fmt(0),
            "V": o.stp_mode,
        });
        if let (Some(w), Some(m)) = (o.working_time, ev.as_object_mut()) {
            m.insert("W".into(), json!(w));
        }
        if let (Some(Value::Object(e)), Some(m)) = (extra, ev.as_object_mut()) {
            for (k, v) in e {
                m.insert(k, v);
            }
        }
        self.events.push(ev);
    }

    /// `outboundAccountPosition` with symbol `s`'s two assets and BNB (user-data-stream.md
    /// §Account Update: "the assets that were possibly changed by the event"; an order or fill on
    /// a symbol can change only its base, its quote and the BNB that may pay the commission).
    pub fn push_positions(&mut self, s: Sym, now: i64) {
        let (base, quote) = self.assets(s);
        self.push_positions_of(&[base, quote, "BNB".to_string()], now);
    }

    /// `outboundAccountPosition` with these assets (those the account holds), each once.
    fn push_positions_of(&mut self, assets: &[String], now: i64) {
        let mut b = Vec::new();
        let mut seen: Vec<&String> = Vec::new();
        for a in assets {
            if seen.contains(&a) {
                continue;
            }
            seen.push(a);
            if let Some(x) = self.balances.get(a) {
                b.push(json!({"a": a, "f": fmt(x.free), "l": fmt(x.locked)}));
            }
        }
        self.events.push(json!({"e": "outboundAccountPosition", "E": now, "u": now, "B": b}));
    }

    /// A trade by another participant on symbol `s`: an aggressor on `taker_side` trading down
    /// (SELL) or up (BUY) to `price` for at most `qty`, filling our crossing resting orders on that
    /// symbol in price-time order. Returns the quantity of ours that filled.
    pub fn market_trade(&mut self, s: Sym, taker_side: Side, price: i64, qty: i64, now: i64) -> i64 {
        let mut left = qty;
        let mut filled = 0;
        for _ in 0..10_000 {
            if left <= 0 {
                break;
            }
            let Some(m) = self.best_own_maker(s, taker_side, price, usize::MAX) else { break };
            let q = left.min(self.orders[m].available());
            let p = self.orders[m].price;
            let tid = self.trade_id(s);
            self.fill(m, p, q, true, tid, now);
            left -= q;
            filled += q;
        }
        self.markets[s].last_trade_price = Some(price);
        if filled > 0 {
            self.push_positions(s, now);
        }
        filled
    }

    /// The exchange expires an open order of symbol `s` (enums.md §Execution types EXPIRED "by
    /// the exchange"; user-data-stream.md §Order Expiry Reason `EXCHANGE_CANCELED`). False when
    /// not open.
    pub fn expire(&mut self, s: Sym, order_id: i64, now: i64) -> bool {
        let Some(i) = self.idx_of(s, order_id).filter(|i| self.orders[*i].status.is_open()) else { return false };
        self.orders[i].status = OrderStatus::Expired;
        self.orders[i].update_time = now;
        self.release(i);
        self.report_with(i, "EXPIRED", None, now, "", Some(json!({"eR": "EXCHANGE_CANCELED"})));
        self.push_positions(s, now);
        true
    }

    /// A deposit or withdrawal: `balanceUpdate` then `outboundAccountPosition`
    /// (user-data-stream.md §Balance Update). The position lists the default symbol's assets and
    /// BNB, as before, and the changed asset when it is none of those ("the assets that were
    /// possibly changed", user-data-stream.md §Account Update).
    pub fn balance_delta(&mut self, asset: &str, delta: i64, now: i64) {
        self.bal(asset).free += delta;
        self.events.push(json!({"e": "balanceUpdate", "E": now, "a": asset, "d": fmt(delta), "T": now}));
        let (base, quote) = self.assets(0);
        self.push_positions_of(&[base, quote, "BNB".to_string(), asset.to_string()], now);
    }

    // ---- JSON shapes (rest-api.md §New order responses, §Cancel order, §Query order) ----

    pub fn ack_json(&self, o: &Order, transact: i64) -> Value {
        json!({"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
            "clientOrderId": o.client_order_id, "transactTime": transact})
    }

    fn add_stp_fields(o: &Order, v: &mut Value) {
        if let (Some(pid), Some(m)) = (o.prevented_match_id, v.as_object_mut()) {
            m.insert("preventedMatchId".into(), json!(pid));
            m.insert("preventedQuantity".into(), json!(fmt(o.prevented_qty)));
        }
    }

    pub fn result_json(&self, o: &Order, transact: i64) -> Value {
        let mut v = json!({"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
            "clientOrderId": o.client_order_id, "transactTime": transact, "price": fmt(o.price),
            "origQty": fmt(o.orig_qty), "executedQty": fmt(o.executed_qty), "origQuoteOrderQty": fmt(0),
            "cummulativeQuoteQty": fmt(o.cum_quote), "status": o.status.as_str(),
            "timeInForce": o.time_in_force, "type": o.order_type, "side": o.side.as_str(),
            "workingTime": o.working_time.unwrap_or(-1), "selfTradePreventionMode": o.stp_mode});
        Self::add_stp_fields(o, &mut v);
        v
    }

    pub fn full_json(&self, o: &Order, fills: &[Trade], transact: i64) -> Value {
        let mut v = self.result_json(o, transact);
        let f: Vec<Value> = fills
            .iter()
            .map(|t| {
                json!({"price": fmt(t.price), "qty": fmt(t.qty), "commission": fmt(t.commission),
                "commissionAsset": t.commission_asset, "tradeId": t.id})
            })
            .collect();
        if let Some(m) = v.as_object_mut() {
            m.insert("fills".into(), Value::Array(f));
        }
        v
    }

    pub fn cancel_json(&self, o: &Order, cancel_cid: &str, transact: i64) -> Value {
        let mut v = json!({"symbol": o.symbol, "origClientOrderId": o.client_order_id, "orderId": o.order_id,
            "orderListId": -1, "clientOrderId": cancel_cid, "transactTime": transact, "price": fmt(o.price),
            "origQty": fmt(o.orig_qty), "executedQty": fmt(o.executed_qty), "origQuoteOrderQty": fmt(0),
            "cummulativeQuoteQty": fmt(o.cum_quote), "status": o.status.as_str(),
            "timeInForce": o.time_in_force, "type": o.order_type, "side": o.side.as_str(),
            "selfTradePreventionMode": o.stp_mode});
        Self::add_stp_fields(o, &mut v);
        v
    }

    pub fn query_json(&self, o: &Order) -> Value {
        let mut v = json!({"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
            "clientOrderId": o.client_order_id, "price": fmt(o.price), "origQty": fmt(o.orig_qty),
            "executedQty": fmt(o.executed_qty), "cummulativeQuoteQty": fmt(o.cum_quote),
            "status": o.status.as_str(), "timeInForce": o.time_in_force, "type": o.order_type,
            "side": o.side.as_str(), "stopPrice": fmt(0), "icebergQty": fmt(0), "time": o.time,
            "updateTime": o.update_time, "isWorking": o.working_time.is_some(),
            "workingTime": o.working_time.unwrap_or(-1), "origQuoteOrderQty": fmt(0),
            "selfTradePreventionMode": o.stp_mode});
        Self::add_stp_fields(o, &mut v);
        v
    }

    pub fn trade_json(&self, t: &Trade) -> Value {
        json!({"symbol": t.symbol, "id": t.id, "orderId": t.order_id, "orderListId": -1,
            "price": fmt(t.price), "qty": fmt(t.qty), "quoteQty": fmt(t.quote_qty),
            "commission": fmt(t.commission), "commissionAsset": t.commission_asset, "time": t.time,
            "isBuyer": t.side == Side::Buy, "isMaker": t.is_maker, "isBestMatch": true})
    }
}

/// stp_faq.md §What happens when STP is triggered? (the summary table): the taker's mode
/// decides, except that TRANSFER needs both sides, else it is DECREMENT.
pub fn effective_stp(taker: &str, maker: &str) -> String {
    if taker == "TRANSFER" && maker != "TRANSFER" {
        return "DECREMENT".into();
    }
    taker.to_string()
}
