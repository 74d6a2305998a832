//! The local exchange simulator (`mmbot sim`): Binance-compatible market
//! data on loopback, so the live feed, the recorder and the whole bot can be
//! run and tested without the internet.
//!
//! [`flow`] is the seeded order-flow model behind `--synthetic`; [`market`]
//! holds the true book (model or replayed recording) that REST snapshots are
//! cut from; [`server`] speaks WebSocket and REST; [`faults`] are the
//! failures it can inject; [`exchange`] is the trading side, modelled on
//! Binance spot's documents (signed orders over REST and the WebSocket API,
//! rate limits and IP bans, a matching engine fed by the market's trades,
//! commission in the received asset or BNB, self-trade prevention, the
//! user-data stream). [`Sim::start`] (or [`Sim::start_with`], which also
//! takes the exchange's [`ExchangeConfig`]) runs it all on threads and
//! hands back a handle tests use to read the true book, the accounts and
//! the counters.

pub mod exchange;
pub mod faults;
pub mod flow;
pub mod market;
pub mod server;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sim::exchange::{BanCounts, Exchange, ExchangeConfig, SimAccount, SimBalance, SimFill, SimOrder};
use crate::sim::faults::{jump_ids, Faults};
use crate::sim::flow::{SimMarket, TopAt};
use crate::sim::market::{advance, MarketState, SimClock, TrueBook};
use crate::sim::server::{broadcast, serve, Shared, SimCounters};

/// Where the simulated market comes from.
#[derive(Debug, Clone)]
pub enum SimSource {
    /// The order-flow model: seed and order-flow events per second (calm).
    Synthetic { seed: u64, events_per_sec: f64 },
    /// A recording, `speed` times real time.
    Replay { files: Vec<PathBuf>, speed: f64 },
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    pub market: SimMarket,
    /// Upper case, e.g. `BTCUSDT`.
    pub symbols: Vec<String>,
    pub source: SimSource,
    pub faults: Faults,
    /// The server pings each client this often (Binance spot: 20 s).
    pub ping_every: Duration,
    /// Keep the top of book after every update id (tests check quotes).
    pub record_tops: bool,
    /// Trading accounts (none: every signed request is refused with -2015).
    pub accounts: Vec<SimAccount>,
    /// How the synthetic symbols move besides their seeds.
    pub dynamics: Dynamics,
}

/// How a synthetic simulator's symbols move besides their own seeds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dynamics {
    /// Correlation of any two symbols' fair-value walks, 0 (each on its
    /// own, the default) to 1 (one shared path), through a market factor
    /// every symbol follows (`mmbot sim --correlation`). Each symbol's own
    /// calm/volatile regime and the impact of its sweeps lower what is
    /// measured: 0.8 gives about 0.66 on one-second fair-value changes.
    pub correlation: f64,
    /// Where symbols start, (upper-case name, price in 1e-8); the rest at
    /// 60,000 (`mmbot sim --price ETHUSDT=3000`). Every symbol trades on
    /// the same grid (tick 0.01, step 0.00001), so any price from 0.01 up
    /// works.
    pub start_prices: Vec<(String, i64)>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            market: SimMarket::Spot,
            symbols: vec!["BTCUSDT".into()],
            source: SimSource::Synthetic { seed: 1, events_per_sec: 200.0 },
            faults: Faults::default(),
            ping_every: Duration::from_secs(20),
            record_tops: false,
            accounts: Vec::new(),
            dynamics: Dynamics::default(),
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}; pick another port or 127.0.0.1:0 for a free one")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("no symbols to simulate; give at least one --symbol")]
    NoSymbols,
}

/// A running simulator; stops when dropped.
pub struct Sim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    clock: Arc<Mutex<SimClock>>,
    stepper: Arc<Stepper>,
    threads: Vec<JoinHandle<()>>,
}

impl Sim {
    pub fn start(cfg: SimConfig) -> Result<Self, SimError> {
        Self::start_with(cfg, ExchangeConfig::default())
    }

    /// [`Sim::start`] with the exchange's limits, fee payment and order cap.
    pub fn start_with(cfg: SimConfig, exchange: ExchangeConfig) -> Result<Self, SimError> {
        if cfg.symbols.is_empty() {
            return Err(SimError::NoSymbols);
        }
        let listener = TcpListener::bind(cfg.listen).map_err(|source| SimError::Listen { addr: cfg.listen, source })?;
        let addr = listener.local_addr().map_err(|source| SimError::Listen { addr: cfg.listen, source })?;
        let state = match &cfg.source {
            SimSource::Synthetic { seed, events_per_sec } => MarketState::synthetic(
                cfg.market,
                &cfg.symbols,
                (*seed, *events_per_sec),
                cfg.record_tops,
                &cfg.dynamics,
            ),
            SimSource::Replay { files, speed } => MarketState::replay(cfg.market, &cfg.symbols, files.clone(), *speed),
        };
        let start_ms = state.now_ms;
        let shared = Arc::new(Shared {
            market: Arc::new(Mutex::new(state)),
            faults: cfg.faults.clone(),
            ping_every: cfg.ping_every,
            started: Instant::now(),
            counters: SimCounters::default(),
            stop: Default::default(),
            paused: Default::default(),
            clients: Mutex::new(Vec::new()),
            refusals_owed: Default::default(),
            exchange: Exchange::with_config(&cfg.symbols, &cfg.accounts, cfg.faults.clone(), exchange),
        });
        let clock = Arc::new(Mutex::new(SimClock::new(start_ms)));
        let mut threads = Vec::new();
        let sh = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("mmbot-sim-listen".into())
                .spawn(move || serve(listener, sh))
                .expect("spawning the sim listener"),
        );
        let stepper = Arc::new(Stepper {
            shared: shared.clone(),
            start_ms,
            drop_every: cfg.faults.drop_diff_every,
            diffs: Mutex::new(vec![0; cfg.symbols.len()]),
            sent_diffs: Mutex::new(vec![0; cfg.symbols.len()]),
        });
        let (st, clk) = (stepper.clone(), clock.clone());
        threads.push(
            std::thread::Builder::new()
                .name("mmbot-sim-market".into())
                .spawn(move || {
                    while !st.shared.stop.load(Ordering::Relaxed) {
                        let (now_ms, paused) = {
                            let c = clk.lock().unwrap_or_else(|p| p.into_inner());
                            (c.now_ms(), c.paused())
                        };
                        if !paused {
                            st.step(now_ms, true);
                        }
                        // Late orders and self-trades run on exchange time,
                        // frozen market or not.
                        let sh = &st.shared;
                        sh.exchange.tick(&|symbol: &str| {
                            let m = sh.market.lock().unwrap_or_else(|p| p.into_inner());
                            m.symbol_index(symbol).and_then(|i| m.true_book(i))
                        });
                        std::thread::sleep(market::TURN);
                    }
                })
                .expect("spawning the sim market"),
        );
        Ok(Self { addr, shared, clock, stepper, threads })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT` (append `/stream?streams=...` or `/ws/...`).
    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT` (the REST paths are Binance's).
    pub fn http_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn counters(&self) -> &SimCounters {
        &self.shared.counters
    }

    /// Freezes the market: no new events, and what changed since the last
    /// diff is flushed first (the model runs on to its next diff boundary),
    /// so the true book is exactly what a client that got every diff has.
    pub fn pause(&self) {
        let now_ms = {
            let mut c = self.clock.lock().unwrap_or_else(|p| p.into_inner());
            c.pause();
            c.now_ms()
        };
        self.shared.paused.store(true, Ordering::Relaxed);
        if matches!(self.shared.market.lock().unwrap_or_else(|p| p.into_inner()).source, market::Source::Synthetic(_)) {
            let interval = flow::FlowConfig::new("X", SimMarket::Spot, 0).depth_interval_ms;
            let start = self.stepper.start_ms;
            let boundary = start + ((now_ms - start) / interval + 1) * interval;
            // Never dropped: a client must be able to see every gap.
            self.stepper.step(boundary, false);
        }
    }

    pub fn resume(&self) {
        self.clock.lock().unwrap_or_else(|p| p.into_inner()).resume();
        self.shared.paused.store(false, Ordering::Relaxed);
    }

    /// The true book of `symbol` now (`None` for an unknown symbol or a
    /// replay whose book has not synced yet).
    pub fn true_book(&self, symbol: &str) -> Option<TrueBook> {
        let m = self.shared.market.lock().unwrap_or_else(|p| p.into_inner());
        let i = m.symbol_index(symbol)?;
        m.true_book(i)
    }

    /// Top of book of `symbol` after each update id (`record_tops`).
    pub fn tops(&self, symbol: &str) -> Vec<TopAt> {
        let m = self.shared.market.lock().unwrap_or_else(|p| p.into_inner());
        m.symbol_index(symbol).map(|i| m.tops(i)).unwrap_or_default()
    }

    /// A one-line description of the market (regime, trades; replay progress).
    pub fn describe(&self) -> String {
        self.shared.market.lock().unwrap_or_else(|p| p.into_inner()).describe()
    }

    /// Whether a replay has served its whole recording.
    pub fn finished(&self) -> bool {
        self.shared.market.lock().unwrap_or_else(|p| p.into_inner()).finished()
    }

    /// Balances of the account with `api_key` (`None`: no such account).
    pub fn account(&self, api_key: &str) -> Option<Vec<SimBalance>> {
        self.shared.exchange.account(api_key)
    }

    /// The open orders of the account with `api_key`.
    pub fn orders(&self, api_key: &str) -> Vec<SimOrder> {
        self.shared.exchange.orders(api_key)
    }

    /// Every order the account with `api_key` ever placed, oldest first.
    pub fn all_orders(&self, api_key: &str) -> Vec<SimOrder> {
        self.shared.exchange.all_orders(api_key)
    }

    /// The most orders the account ever had open at once.
    pub fn max_open_orders(&self, api_key: &str) -> usize {
        self.shared.exchange.max_open_orders(api_key)
    }

    /// The most orders the account ever had open at once per side (BUY, SELL).
    pub fn max_open_per_side(&self, api_key: &str) -> [usize; 2] {
        self.shared.exchange.max_open_per_side(api_key)
    }

    /// Requests (REST, any endpoint) and WebSocket connects that arrived
    /// while the IP was banned (the 418 fault).
    pub fn requests_during_ban(&self) -> u64 {
        self.shared.exchange.requests_during_ban()
    }

    /// [`Sim::requests_during_ban`], split into requests and connects.
    pub fn ban_counts(&self) -> BanCounts {
        self.shared.exchange.ban_counts()
    }

    /// Whether the simulated IP is banned now.
    pub fn banned(&self) -> bool {
        self.shared.exchange.banned()
    }

    /// The IP's REQUEST_WEIGHT used this minute.
    pub fn used_weight(&self) -> u64 {
        self.shared.exchange.used_weight()
    }

    /// Every fill of the account with `api_key`, oldest first.
    pub fn fills(&self, api_key: &str) -> Vec<SimFill> {
        self.shared.exchange.fills(api_key)
    }

    /// Deposits (`delta` > 0) or withdraws `delta` of `asset` (1e-8 units),
    /// pushing `balanceUpdate`; false for an unknown key.
    pub fn adjust_balance(&self, api_key: &str, asset: &str, delta: i64) -> bool {
        self.shared.exchange.adjust_balance(api_key, asset, delta)
    }

    /// Live WebSocket clients now.
    pub fn clients(&self) -> usize {
        self.shared.clients.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// One market step: advance, apply the drop-diff fault, broadcast. Serialised
/// so frames from the market thread and from [`Sim::pause`] never interleave.
struct Stepper {
    shared: Arc<Shared>,
    start_ms: i64,
    drop_every: u64,
    /// Diffs per symbol so far, under the lock that serialises steps.
    diffs: Mutex<Vec<u64>>,
    /// Diffs per symbol that survived the drop fault (the id-jump faults
    /// count these), locked inside `diffs`.
    sent_diffs: Mutex<Vec<u64>>,
}

impl Stepper {
    fn step(&self, now_ms: i64, faults: bool) {
        let mut diffs = self.diffs.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        advance(&self.shared.market, self.start_ms, now_ms, &mut out);
        // Trades fill resting orders before clients see them, so a fill's
        // user-data event never trails the trade that caused it by a turn.
        for f in out.iter().filter(|f| f.kind == flow::StreamKind::Trade) {
            self.shared.exchange.on_trade(f.symbol, &f.payload);
        }
        if faults && self.drop_every > 0 {
            out.retain(|f| {
                if f.kind != flow::StreamKind::Depth {
                    return true;
                }
                diffs[f.symbol] += 1;
                let keep = !diffs[f.symbol].is_multiple_of(self.drop_every);
                if !keep {
                    self.shared.counters.diffs_dropped.fetch_add(1, Ordering::Relaxed);
                }
                keep
            });
        }
        let f = &self.shared.faults;
        if faults && (f.id_jump_every > 0 || f.inverted_ids_every > 0) {
            let mut sent = self.sent_diffs.lock().unwrap_or_else(|p| p.into_inner());
            let mut with_jumps = Vec::with_capacity(out.len() + 1);
            for frame in out {
                if frame.kind == flow::StreamKind::Depth {
                    sent[frame.symbol] += 1;
                    let n = sent[frame.symbol];
                    let nth = |every: u64| every > 0 && n.is_multiple_of(every);
                    for (on, inverted) in [(nth(f.id_jump_every), false), (nth(f.inverted_ids_every), true)] {
                        if let Some(payload) = jump_ids(&frame.payload, inverted).filter(|_| on) {
                            self.shared.counters.ids_jumped.fetch_add(1, Ordering::Relaxed);
                            with_jumps.push(market::Outgoing { symbol: frame.symbol, kind: frame.kind, payload });
                        }
                    }
                }
                with_jumps.push(frame);
            }
            out = with_jumps;
        }
        broadcast(&self.shared, out);
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
