//! The live order manager ([`LiveExchange`]) on the independent Binance double
//! (tests/binance_double/), as the conformance tests drive it: start, hand quotes over, poll
//! until the double's answers are in, compare the journal with the double's trades, stop clean.
//! Shared by tests/live_conformance.rs and tests/live_ladders.rs; a test crate including it also
//! includes `common` and `binance_double`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::binance_double::config::{DOC_HMAC_KEY, DOC_HMAC_SECRET};
use crate::binance_double::{BinanceDouble, Commission, DoubleConfig, Side as DSide};
use crate::common;
use mmbot::exec::binance::{Credentials, RestClient, RestConfig};
use mmbot::exec::journal::{Journal, OrderStatus};
use mmbot::exec::live::{LiveError, LiveExchange, LiveParts};
use mmbot::exec::live_config::{LiveConfig, RawLiveConfig};
use mmbot::exec::risk::{KillConfig, KillSwitch, RiskCheck};
use mmbot::exec::{Fill, Quote, Side};
use mmbot::hot::fixed::{parse_fixed, Price};
use mmbot::hot::msg::{Level, Symbol};

/// Fixed point (1e-8) from a decimal literal; both mmbot and the double use 1e-8.
pub fn fx(s: &str) -> i64 {
    parse_fixed(s.as_bytes()).unwrap()
}

pub fn sym() -> Symbol {
    Symbol::new(b"BTCUSDT")
}

pub fn wall_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

/// Says something in the test's output even when libtest captures (numbers for the report).
pub fn say(msg: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// A double with no commission (positions then equal the base traded, whichever way mmbot
/// counts commission) and a market of others at 99.00 / 101.00, so our quotes between rest.
pub fn double_cfg() -> DoubleConfig {
    DoubleConfig { commission: Commission { maker: 0, taker: 0, ..Commission::default() }, ..DoubleConfig::default() }
}

pub fn start_double(cfg: DoubleConfig) -> BinanceDouble {
    let d = BinanceDouble::start(cfg).unwrap();
    d.set_market(Some((fx("99.00"), fx("5"))), Some((fx("101.00"), fx("5"))));
    d
}

/// The manager under test with the double it trades on.
pub struct Rig {
    pub d: BinanceDouble,
    pub ex: LiveExchange,
    pub fills: Vec<Fill>,
    pub journal_path: PathBuf,
}

pub fn start(name: &str, d: BinanceDouble, tweak: impl FnOnce(&mut RawLiveConfig)) -> Rig {
    start_levels(name, d, 1, tweak)
}

/// [`start`] working `levels` orders a side (`[strategy] levels`).
pub fn start_levels(name: &str, d: BinanceDouble, levels: usize, tweak: impl FnOnce(&mut RawLiveConfig)) -> Rig {
    try_start_levels(name, d, levels, tweak).unwrap()
}

/// [`start_levels`], returning why the manager refused to start.
pub fn try_start_levels(
    name: &str,
    d: BinanceDouble,
    levels: usize,
    tweak: impl FnOnce(&mut RawLiveConfig),
) -> Result<Rig, LiveError> {
    let dir = common::temp_dir(&format!("conform-{name}"));
    let mut raw = RawLiveConfig {
        base_url: Some(d.rest_url()),
        ws_api_url: Some(d.ws_api_url()),
        recv_window_ms: Some(5000),
        max_position: Some(toml::Value::String("1".into())),
        max_order_notional: Some(toml::Value::String("1000".into())),
        max_open_orders: Some(4),
        daily_loss_limit: Some(toml::Value::String("1000".into())),
        orphans: Some("cancel".into()),
        reconcile_every_s: Some(3600.0),
        journal: Some(dir.join("journal.sqlite")),
        refresh_ticks: Some(1),
        max_order_age_ms: Some(3_600_000),
        run_prefix: Some("cf".into()),
        ban_wait_max_s: Some(10.0),
        ..RawLiveConfig::default()
    };
    tweak(&mut raw);
    let mut cfg = LiveConfig::from_raw(raw).unwrap();
    cfg.levels = levels;
    let mut rc = RestConfig::with_base(&cfg.rest_url);
    rc.timeout = cfg.timeout;
    let rest = RestClient::new(&rc, Credentials::hmac(DOC_HMAC_KEY, DOC_HMAC_SECRET).unwrap()).unwrap();
    let journal = Journal::open(&cfg.journal).unwrap();
    // The double's default maker commission is 0.001 (100_000 in 1e-8).
    let risk = RiskCheck::new(cfg.limits, "BTC", "USDT", 100_000, wall_ns()).unwrap();
    let kill = KillSwitch::new(KillConfig {
        max_rejects: 50,
        reject_window_ns: 1_000_000_000,
        stale_feed_ns: i64::MAX,
        unsynced_ns: i64::MAX,
    });
    let parts = LiveParts {
        rest,
        stream_creds: Credentials::hmac(DOC_HMAC_KEY, DOC_HMAC_SECRET).unwrap(),
        journal,
        risk,
        kill,
    };
    let mut ex = LiveExchange::start(&cfg, sym(), parts)?;
    assert!(ex.wait_subscribed(1, Duration::from_secs(5)), "the user-data stream never subscribed");
    Ok(Rig { d, ex, fills: Vec::new(), journal_path: cfg.journal.clone() })
}

pub type Lv<'a> = Option<(&'a str, &'a str)>;

pub fn quote(bid: Lv<'_>, ask: Lv<'_>) -> Quote {
    let lv = |(p, q): (&str, &str)| Level::new(fx(p), fx(q));
    Quote { symbol: sym(), bid: bid.map(lv), ask: ask.map(lv), time_ns: 0, update_id: 0, deeper: Default::default() }
}

pub fn to_mm(s: DSide) -> Side {
    match s {
        DSide::Buy => Side::Buy,
        DSide::Sell => Side::Sell,
    }
}

impl Rig {
    /// Hands a quote over (asynchronous order entry) without waiting.
    pub fn send_quote(&mut self, bid: Lv<'_>, ask: Lv<'_>) {
        self.ex.on_quote(&quote(bid, ask), Price(fx("0.01")), 0);
    }

    /// Hands a quote over and polls until everything it caused is answered (15 s at most).
    pub fn quote(&mut self, bid: Lv<'_>, ask: Lv<'_>) {
        self.send_quote(bid, ask);
        self.poll_until("the quote's requests to be answered", Duration::from_secs(15), |r| {
            r.ex.is_quiet() || r.ex.stopped().is_some()
        });
    }

    pub fn poll(&mut self) {
        let fills = &mut self.fills;
        self.ex.poll(&mut |f| fills.push(f));
    }

    /// Polls until `done` or `limit` (then fails, saying what it waited for).
    pub fn poll_until(&mut self, what: &str, limit: Duration, done: impl Fn(&Rig) -> bool) {
        let end = Instant::now() + limit;
        loop {
            self.poll();
            if done(self) {
                return;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}: stats {:?}, bid {}, ask {}",
                self.ex.stats(),
                self.ex.side_state(Side::Buy),
                self.ex.side_state(Side::Sell)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Polls for `d` whatever happens (bounded by `d`).
    pub fn poll_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.poll();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Order requests (new orders and cancelReplace) the double received for `side`.
    pub fn order_requests(&self, side: &str) -> usize {
        self.d
            .request_log()
            .iter()
            .filter(|r| {
                (r.method == "order.place" || r.method == "order.cancelReplace")
                    && r.params.get("side").map(String::as_str) == Some(side)
            })
            .count()
    }

    /// Every status the journal recorded for `client_id`, oldest first.
    pub fn journal_statuses(&self, client_id: &str) -> Vec<String> {
        self.ex.journal().flush().unwrap();
        let c = rusqlite::Connection::open_with_flags(&self.journal_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
        let mut st = c.prepare("SELECT status FROM orders WHERE client_id = ?1 ORDER BY id").unwrap();
        let rows = st.query_map([client_id], |r| r.get::<_, String>(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    pub fn last_status(&self, client_id: &str) -> OrderStatus {
        self.ex
            .journal()
            .last_state(client_id)
            .unwrap()
            .unwrap_or_else(|| panic!("{client_id} never journaled"))
            .event
            .status
    }

    /// The journal's fills and the double's trades are the same set: trade id, side, price,
    /// quantity, commission and its asset (user-data-stream.md §Order Update `t l L n N`;
    /// rest-api.md §Account trade list).
    pub fn fills_match_trades(&self) {
        let mut journal: Vec<(i64, Side, i64, i64, i64, String)> = self
            .ex
            .journal()
            .fills(sym())
            .unwrap()
            .into_iter()
            .map(|f| (f.trade_id, f.side, f.price.0, f.qty.0, f.fee, f.fee_asset))
            .collect();
        let mut double: Vec<(i64, Side, i64, i64, i64, String)> = self
            .d
            .trades()
            .into_iter()
            .map(|t| (t.id, to_mm(t.side), t.price, t.qty, t.commission, t.commission_asset))
            .collect();
        journal.sort_by_key(|f| (f.0, f.1 == Side::Sell));
        double.sort_by_key(|f| (f.0, f.1 == Side::Sell));
        assert_eq!(journal, double, "the journal's fills and the exchange's trades differ");
    }

    /// Net base bought on the double (no commission in these doubles unless the test sets it).
    pub fn double_net(&self) -> i64 {
        self.d.trades().iter().map(|t| if t.side == DSide::Buy { t.qty } else { -t.qty }).sum()
    }

    /// Stops and checks that nothing of ours rests and the double never panicked.
    pub fn stop_clean(&mut self) {
        self.ex.stop();
        assert!(self.d.open_orders().is_empty(), "orders left open after stop: {:?}", self.d.open_orders());
        assert_eq!(self.ex.stats().left_open, 0);
        assert!(
            self.ex.journal().open_orders(self.ex.run_id()).unwrap().is_empty(),
            "the journal still has open orders"
        );
        assert_eq!(self.d.server_panics(), 0);
    }
}

pub const BID: Lv<'static> = Some(("100.00", "0.1"));
pub const ASK: Lv<'static> = Some(("100.50", "0.1"));
