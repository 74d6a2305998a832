//! One account, several symbols: the order gateway (one WebSocket API
//! session with its user-data subscription, one set of REST workers) shared
//! by every symbol's [`LiveExchange`](super::LiveExchange) on the exec
//! thread.
//!
//! Why one gateway: Binance counts request weight per IP and orders per
//! account, and sends every symbol's `executionReport`s and every asset's
//! balance to each user-data subscription. A gateway per symbol would open
//! as many sessions, subscribe as many times (each getting all the
//! account's events) and react to the shared limits one symbol at a time.
//! Here each symbol's manager holds a [`Port`]: its calls go out on the
//! shared gateway naming its symbol, and polling routes what comes back:
//!
//! - an answer to the port that sent the request;
//! - an `executionReport` to the port trading its symbol (one this process
//!   does not trade is nobody's: dropped, as a single-symbol run ignores
//!   other symbols);
//! - balances, subscriptions, disconnections and session changes to every
//!   port (each symbol checks its own assets and reconciles after a
//!   resubscription).
//!
//! Symbols that share an asset (BTCUSDT and BTCFDUSD share BTC; ETH is the
//! quote of BLZETH and the base of ETHUSDT) each see the account's one
//! balance of it move with the others' fills. So the hub keeps, in stream
//! order, how far each symbol's trades have moved each asset (base and
//! quote, less commissions in the asset charged), and hands every balance
//! event to each port with what the *other* symbols had moved that asset
//! by then ([`Port::others_flow`]): a symbol's balance check counts that as
//! if it were its own, exact whichever symbol's manager polls first.
//!
//! The hub sits behind a mutex only so the managers can move to the exec
//! thread together; only that thread uses it, so it is never contended.
//! The gateway stops when the last port stops.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::exec::binance::filters::SymbolRules;
use crate::exec::binance::gateway::{Call, GatewayConfig, GatewayEvent, GatewayStats, OrderGateway, RequestId};
use crate::exec::binance::keys::Credentials;
use crate::exec::binance::rest::RestClient;
use crate::exec::live_config::{LiveConfig, OrderEntry};
use crate::exec::userdata::{ExecType, ExecutionReport, UserEvent};
use crate::exec::Side;
use crate::hot::fixed::notional;
use crate::hot::msg::Symbol;
use crate::ipguard::IpGuard;

use super::LiveError;

/// The shared gateway; clone it to hand to each symbol's start.
#[derive(Clone)]
pub struct AccountHub {
    inner: Arc<Mutex<Hub>>,
}

impl std::fmt::Debug for AccountHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = self.lock();
        f.debug_struct("AccountHub").field("ports", &h.ports.len()).field("in_flight", &h.owners.len()).finish()
    }
}

struct Hub {
    gateway: OrderGateway,
    /// Which port sent each request still unanswered.
    owners: HashMap<RequestId, usize>,
    ports: Vec<PortState>,
    /// `executionReport`s of symbols no port trades.
    unrouted: u64,
}

struct PortState {
    symbol: Symbol,
    base: String,
    quote: String,
    /// Events waiting to be polled; a balance event carries the other
    /// ports' flow in its asset as of that event.
    inbox: VecDeque<(GatewayEvent, Option<i64>)>,
    in_flight: usize,
    /// Its manager has stopped trading (the gateway stops when every port
    /// has); what still comes for it is kept for its last drain.
    stopped: bool,
    /// Its manager is gone: nothing is kept for it any more.
    gone: bool,
    /// How far its trades on the stream have moved each asset's balance
    /// since the port opened (1e-8, signed).
    flows: Vec<(String, i64)>,
    /// The other ports' flow carried by the balance event last polled.
    others_at_last: Option<i64>,
}

/// Adds `delta` to `asset`'s entry of `flows` (a new entry the first time).
fn add_flow(flows: &mut Vec<(String, i64)>, asset: &str, delta: i64) {
    match flows.iter_mut().find(|(a, _)| a == asset) {
        Some(f) => f.1 = f.1.saturating_add(delta),
        None => flows.push((asset.to_string(), delta)),
    }
}

impl PortState {
    fn flow(&self, asset: &str) -> i64 {
        self.flows.iter().find(|(a, _)| a == asset).map_or(0, |(_, d)| *d)
    }

    /// A trade of its symbol: base in or out, the notional out or in, the
    /// commission out of the asset it was charged in (user-data-stream.md
    /// "Order Update": `l`, `L`, `n`, `N`).
    fn on_trade(&mut self, r: &ExecutionReport) {
        let value = notional(r.last_price.0, r.last_qty.0);
        let (base, quote) = match r.side {
            Side::Buy => (r.last_qty.0, value.saturating_neg()),
            Side::Sell => (r.last_qty.0.saturating_neg(), value),
        };
        add_flow(&mut self.flows, &self.base, base);
        add_flow(&mut self.flows, &self.quote, quote);
        if r.commission != 0 {
            add_flow(&mut self.flows, r.commission_asset.as_str(), r.commission.saturating_neg());
        }
    }
}

impl AccountHub {
    /// Starts the shared gateway for `cfg`'s account: the WebSocket API
    /// session carrying orders and the user-data subscription (REST while
    /// it is down), the REST workers on `rest`. `first` is the symbol the
    /// gateway names when a call has none of its own.
    pub fn start(
        cfg: &LiveConfig,
        first: Symbol,
        rest: RestClient,
        creds: Credentials,
        guard: IpGuard,
    ) -> Result<Self, LiveError> {
        if cfg.order_entry != OrderEntry::WsApi {
            return Err(LiveError::Setup(
                "several symbols share one WebSocket API session for orders and user data: [live] order_entry must \
                 be \"ws_api\" (the default)"
                    .into(),
            ));
        }
        let gcfg = GatewayConfig {
            recv_window: cfg.recv_window,
            timeout: cfg.timeout,
            user_data: true,
            ..GatewayConfig::new(first.as_str(), Some(cfg.ws_api_url.as_str()))
        };
        let gateway = OrderGateway::start(gcfg, rest, Some(creds), guard)
            .map_err(|e| LiveError::Setup(format!("the order gateway could not start: {e}")))?;
        Ok(Self::new(gateway))
    }

    /// A hub around a started gateway (its own symbol's rules, if any, stay
    /// its own; each [`AccountHub::port`] adds its symbol's).
    pub fn new(gateway: OrderGateway) -> Self {
        Self { inner: Arc::new(Mutex::new(Hub { gateway, owners: HashMap::new(), ports: Vec::new(), unrouted: 0 })) }
    }

    fn lock(&self) -> MutexGuard<'_, Hub> {
        // Only the exec thread uses the hub: a poisoned lock means it
        // panicked, and the state is still the best there is.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A port for `symbol`, whose orders are checked against `rules`
    /// before sending.
    pub fn port(&self, symbol: Symbol, rules: SymbolRules) -> Port {
        let mut h = self.lock();
        h.ports.push(PortState {
            symbol,
            base: rules.base_asset.clone(),
            quote: rules.quote_asset.clone(),
            inbox: VecDeque::new(),
            in_flight: 0,
            stopped: false,
            gone: false,
            flows: Vec::new(),
            others_at_last: None,
        });
        h.gateway.add_symbol(rules);
        Port { hub: self.clone(), index: h.ports.len() - 1, name: symbol.as_str().into() }
    }

    /// `executionReport`s of symbols no port trades (another program's
    /// trading on the same account).
    pub fn unrouted(&self) -> u64 {
        self.lock().unrouted
    }
}

impl Hub {
    /// Moves everything the gateway has to the ports' inboxes, keeping each
    /// symbol's flows in stream order.
    fn pump(&mut self) {
        while let Some(ev) = self.gateway.poll() {
            match ev {
                GatewayEvent::Answer(a) => {
                    if let Some(p) = self.owners.remove(&a.id) {
                        let port = &mut self.ports[p];
                        port.in_flight = port.in_flight.saturating_sub(1);
                        if !port.gone {
                            port.inbox.push_back((GatewayEvent::Answer(a), None));
                        }
                    }
                }
                GatewayEvent::User(UserEvent::Execution(r)) => {
                    // A gone port's trades still moved the account's assets.
                    match self.ports.iter_mut().find(|p| p.symbol == r.symbol) {
                        Some(p) => {
                            if r.exec_type == ExecType::Trade && r.last_qty.0 > 0 {
                                p.on_trade(&r);
                            }
                            if !p.gone {
                                p.inbox.push_back((GatewayEvent::User(UserEvent::Execution(r)), None));
                            }
                        }
                        None => self.unrouted += 1,
                    }
                }
                GatewayEvent::User(UserEvent::Balance { asset, free, locked }) => {
                    let total: i64 = self.ports.iter().map(|p| p.flow(asset.as_str())).sum();
                    for p in self.ports.iter_mut().filter(|p| !p.gone) {
                        let others = total.saturating_sub(p.flow(asset.as_str()));
                        let ev = GatewayEvent::User(UserEvent::Balance { asset, free, locked });
                        p.inbox.push_back((ev, Some(others)));
                    }
                }
                other => {
                    for p in self.ports.iter_mut().filter(|p| !p.gone) {
                        p.inbox.push_back((other.clone(), None));
                    }
                }
            }
        }
    }
}

/// One symbol's end of the shared gateway: the calls and events of
/// [`OrderGateway`] that a [`LiveExchange`](super::LiveExchange) uses.
pub struct Port {
    hub: AccountHub,
    index: usize,
    name: Arc<str>,
}

impl Port {
    pub fn submit(&mut self, call: Call) -> RequestId {
        let mut h = self.hub.lock();
        let id = h.gateway.submit_for(&self.name, call);
        h.owners.insert(id, self.index);
        h.ports[self.index].in_flight += 1;
        id
    }

    pub fn poll(&mut self) -> Option<GatewayEvent> {
        let mut h = self.hub.lock();
        h.pump();
        let port = &mut h.ports[self.index];
        let (ev, others) = port.inbox.pop_front()?;
        port.others_at_last = others;
        Some(ev)
    }

    /// This symbol's requests not answered yet.
    pub fn in_flight(&self) -> usize {
        self.hub.lock().ports[self.index].in_flight
    }

    /// What the other symbols' trades had moved `asset`'s balance when the
    /// balance event last polled was sent; for a balance read otherwise
    /// (over REST), as of the latest event the hub has seen.
    pub fn others_flow(&self, asset: &str) -> i64 {
        let h = self.hub.lock();
        let me = &h.ports[self.index];
        if let Some(v) = me.others_at_last {
            return v;
        }
        let total: i64 = h.ports.iter().map(|p| p.flow(asset)).sum();
        total.saturating_sub(me.flow(asset))
    }

    /// The shared gateway's counters (all symbols').
    pub fn stats(&self) -> GatewayStats {
        self.hub.lock().gateway.stats()
    }

    /// This symbol is done; the gateway stops with the last one (calls in
    /// flight are answered and can still be polled).
    pub fn stop(&mut self) {
        let mut h = self.hub.lock();
        h.ports[self.index].stopped = true;
        if h.ports.iter().all(|p| p.stopped) {
            h.gateway.stop();
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.stop();
        let mut h = self.hub.lock();
        let port = &mut h.ports[self.index];
        port.gone = true;
        port.inbox.clear();
    }
}

/// The gateway a [`LiveExchange`](super::LiveExchange) talks through: its
/// own (one symbol), or its port on a shared one.
// Made once per manager, which lives boxed on the exec thread: boxing the
// owned gateway would only add an indirection to every call.
#[allow(clippy::large_enum_variant)]
pub(super) enum Gateway {
    Own(OrderGateway),
    Shared(Port),
}

impl Gateway {
    pub fn submit(&mut self, call: Call) -> RequestId {
        match self {
            Self::Own(g) => g.submit(call),
            Self::Shared(p) => p.submit(call),
        }
    }

    pub fn poll(&mut self) -> Option<GatewayEvent> {
        match self {
            Self::Own(g) => g.poll(),
            Self::Shared(p) => p.poll(),
        }
    }

    pub fn in_flight(&self) -> usize {
        match self {
            Self::Own(g) => g.in_flight(),
            Self::Shared(p) => p.in_flight(),
        }
    }

    pub fn stats(&self) -> GatewayStats {
        match self {
            Self::Own(g) => g.stats(),
            Self::Shared(p) => p.stats(),
        }
    }

    pub fn stop(&mut self) {
        match self {
            Self::Own(g) => g.stop(),
            Self::Shared(p) => p.stop(),
        }
    }

    /// What the account's other symbols' trades moved `asset` by, as of the
    /// balance being handled (0 alone).
    pub fn others_flow(&self, asset: &str) -> i64 {
        match self {
            Self::Own(_) => 0,
            Self::Shared(p) => p.others_flow(asset),
        }
    }
}
