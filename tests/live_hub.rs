//! Several symbols' order managers ([`LiveExchange`]) sharing one account's gateway
//! ([`AccountHub`]: one WebSocket API session, one user-data subscription), on the independent
//! Binance double (tests/binance_double/, written from binance-spot-api-docs alone) serving
//! BTCUSDT and ETHUSDT on one account.
//!
//! Binance numbers orders and trades per symbol (rest-api.md §Query order and §Account trade
//! list look an id up within a symbol), so the two symbols' first orders share an orderId here:
//! the hub must route by request and by the report's `s`, never by id alone. Every test has its
//! own double (127.0.0.1, ephemeral port) and temp dir; every loop is bounded in count and time.

mod common;

#[path = "binance_double/mod.rs"]
mod binance_double;

#[path = "conformance/rig.rs"]
mod rig;

use std::time::{Duration, Instant};

use binance_double::config::{DOC_HMAC_KEY, DOC_HMAC_SECRET};
use binance_double::{BinanceDouble, DoubleConfig, Side as DSide, SymbolRules};
use mmbot::exec::binance::{Credentials, RestClient, RestConfig};
use mmbot::exec::journal::Journal;
use mmbot::exec::live::hub::AccountHub;
use mmbot::exec::live::{LiveExchange, LiveParts};
use mmbot::exec::live_config::{LiveConfig, RawLiveConfig};
use mmbot::exec::risk::{KillConfig, KillSwitch, RiskCheck};
use mmbot::exec::{Fill, Quote, Side};
use mmbot::hot::fixed::Price;
use mmbot::hot::msg::{Level, Symbol};
use rig::{fx, wall_ns};

const SYMBOLS: [&str; 2] = ["BTCUSDT", "ETHUSDT"];

/// Both symbols' managers on one hub, and the fills each handed out.
struct Pair {
    d: BinanceDouble,
    hub: AccountHub,
    ex: Vec<LiveExchange>,
    fills: Vec<Vec<Fill>>,
    journal: Journal,
}

fn start(name: &str) -> Pair {
    let cfg = DoubleConfig {
        more_symbols: vec![SymbolRules::named("ETHUSDT", "ETH", "USDT")],
        balances: vec![("BTC".into(), fx("1")), ("ETH".into(), fx("10")), ("USDT".into(), fx("100000"))],
        ..rig::double_cfg()
    };
    let d = BinanceDouble::start(cfg).unwrap();
    d.set_market_for("BTCUSDT", Some((fx("99.00"), fx("5"))), Some((fx("101.00"), fx("5"))));
    d.set_market_for("ETHUSDT", Some((fx("99.00"), fx("5"))), Some((fx("101.00"), fx("5"))));
    let dir = common::temp_dir(&format!("live-hub-{name}"));
    let raw = RawLiveConfig {
        base_url: Some(d.rest_url()),
        ws_api_url: Some(d.ws_api_url()),
        max_position: Some(toml::Value::String("1".into())),
        max_order_notional: Some(toml::Value::String("1000".into())),
        max_open_orders: Some(2),
        daily_loss_limit: Some(toml::Value::String("1000".into())),
        reconcile_every_s: Some(3600.0),
        journal: Some(dir.join("journal.sqlite")),
        refresh_ticks: Some(1),
        max_order_age_ms: Some(3_600_000),
        run_prefix: Some("hub".into()),
        ..RawLiveConfig::default()
    };
    let cfg = LiveConfig::from_raw(raw).unwrap();
    let creds = || Credentials::hmac(DOC_HMAC_KEY, DOC_HMAC_SECRET).unwrap();
    let mut rc = RestConfig::with_base(&cfg.rest_url);
    rc.timeout = cfg.timeout;
    let rest = RestClient::new(&rc, creds()).unwrap();
    let hub = AccountHub::start(&cfg, Symbol::new(b"BTCUSDT"), rest.clone(), creds(), Default::default()).unwrap();
    let mut ex = Vec::new();
    for (i, name) in SYMBOLS.iter().enumerate() {
        let base = &name[..3];
        let parts = LiveParts {
            rest: rest.clone(),
            stream_creds: creds(),
            journal: Journal::open(&cfg.journal).unwrap(),
            risk: RiskCheck::new(cfg.limits, base, "USDT", 0, wall_ns()).unwrap(),
            kill: KillSwitch::new(KillConfig {
                max_rejects: 50,
                reject_window_ns: 1_000_000_000,
                stale_feed_ns: i64::MAX,
                unsynced_ns: i64::MAX,
            }),
        };
        ex.push(LiveExchange::start_shared(&cfg, Symbol::new(name.as_bytes()), parts, &hub, i).unwrap());
    }
    for e in &mut ex {
        assert!(e.wait_subscribed(1, Duration::from_secs(5)), "the shared subscription never came");
    }
    let journal = Journal::open(&cfg.journal).unwrap();
    Pair { d, hub, ex, fills: vec![Vec::new(), Vec::new()], journal }
}

fn quote(symbol: &str, bid: &str, ask: &str) -> Quote {
    let lv = |p: &str| Some(Level::new(fx(p), fx("0.1")));
    Quote {
        symbol: Symbol::new(symbol.as_bytes()),
        bid: lv(bid),
        ask: lv(ask),
        time_ns: 0,
        update_id: 0,
        deeper: Default::default(),
    }
}

impl Pair {
    fn poll(&mut self) {
        for (e, fills) in self.ex.iter_mut().zip(&mut self.fills) {
            e.poll(&mut |f| fills.push(f));
        }
    }

    fn poll_until(&mut self, what: &str, done: impl Fn(&Pair) -> bool) {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            self.poll();
            if done(self) {
                return;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn quiet(&self) -> bool {
        self.ex.iter().all(|e| e.is_quiet())
    }

    /// (price, client id) of `symbol`'s resting orders on `side`.
    fn resting(&self, symbol: &str, side: DSide) -> Vec<(i64, String)> {
        self.d
            .open_orders_on(symbol)
            .into_iter()
            .filter(|o| o.side == side)
            .map(|o| (o.price, o.client_order_id))
            .collect()
    }
}

/// rest-api.md §New order, §Current open orders; web-socket-api.md §User Data Stream requests
/// (one subscription gets every symbol's events); user-data-stream.md §Order Update (`s` names
/// the symbol). Two symbols quote on one session: each symbol's orders rest on its own book with
/// its own client-id prefix; a trade on ETHUSDT reaches ETHUSDT's manager only, though its
/// orderId is also a BTCUSDT order's; the stop cancels both symbols and the journal holds each
/// symbol's fills as the exchange's trades.
#[test]
fn two_symbols_share_one_session_and_each_gets_its_own_events() {
    let mut p = start("pair");
    p.ex[0].on_quote(&quote("BTCUSDT", "100.00", "100.50"), Price(fx("0.01")), 0);
    p.ex[1].on_quote(&quote("ETHUSDT", "100.10", "100.60"), Price(fx("0.01")), 0);
    p.poll_until("both symbols' orders", |p| {
        p.quiet() && p.d.open_orders_on("BTCUSDT").len() == 2 && p.d.open_orders_on("ETHUSDT").len() == 2
    });
    let (btc_bid, eth_bid) = (p.resting("BTCUSDT", DSide::Buy), p.resting("ETHUSDT", DSide::Buy));
    assert_eq!((btc_bid[0].0, eth_bid[0].0), (fx("100.00"), fx("100.10")));
    assert!(btc_bid[0].1.starts_with(p.ex[0].client_prefix()));
    assert!(eth_bid[0].1.starts_with(p.ex[1].client_prefix()));
    assert_ne!(p.ex[0].client_prefix(), p.ex[1].client_prefix());
    // Per-symbol numbering: the two bids' orderIds coincide.
    let id = |symbol: &str, client: &str| {
        p.d.open_orders_on(symbol).into_iter().find(|o| o.client_order_id == client).unwrap().order_id
    };
    assert_eq!(id("BTCUSDT", &btc_bid[0].1), id("ETHUSDT", &eth_bid[0].1), "the double numbers orders per symbol");

    // A seller trades through ETHUSDT's bid only.
    assert_eq!(p.d.market_trade_on("ETHUSDT", DSide::Sell, fx("100.10"), fx("0.04")), fx("0.04"));
    p.poll_until("the ETHUSDT fill", |p| p.ex[1].stats().fills == 1 && p.quiet());
    p.poll_for(Duration::from_millis(200));
    assert_eq!(p.ex[0].stats().fills, 0, "BTCUSDT's manager took ETHUSDT's trade");
    assert_eq!(p.fills[1].len(), 1);
    assert_eq!((p.fills[1][0].side, p.fills[1][0].price.0, p.fills[1][0].qty.0), (Side::Buy, fx("100.10"), fx("0.04")));
    assert_eq!(p.ex[0].position().qty().0, 0);
    assert_eq!(p.ex[0].level_state(Side::Buy, 0), "live", "BTCUSDT's bid is untouched");

    // One session, one subscription for both symbols.
    let subscriptions = p.d.request_log().iter().filter(|r| r.method.starts_with("userDataStream.subscribe")).count();
    assert_eq!(subscriptions, 1, "one user-data subscription for the account");
    assert_eq!(p.hub.unrouted(), 0);

    for e in &mut p.ex {
        e.stop();
    }
    assert!(p.d.open_orders().is_empty(), "left open: {:?}", p.d.open_orders());
    for (i, s) in SYMBOLS.iter().enumerate() {
        assert_eq!(p.ex[i].stats().left_open, 0, "{s}");
        let mut journal: Vec<(i64, i64)> =
            p.journal.fills(Symbol::new(s.as_bytes())).unwrap().into_iter().map(|f| (f.trade_id, f.qty.0)).collect();
        let mut trades: Vec<(i64, i64)> = p.d.trades_on(s).into_iter().map(|t| (t.id, t.qty)).collect();
        journal.sort();
        trades.sort();
        assert_eq!(journal, trades, "{s}: the journal's fills are not the exchange's trades");
    }
}

impl Pair {
    fn poll_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.poll();
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
