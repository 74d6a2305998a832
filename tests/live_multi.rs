//! `mmbot run --live` with `[[symbols]]`, end to end against the simulator's exchange (one
//! account, three symbols on one WebSocket API session): the real binary, the real combined
//! market stream, signed orders and the shared user-data subscription. Every run must end with
//! each symbol's journal, exchange orders and position in agreement, no order on a symbol left
//! open, no symbol trading on another's budget and the account's limits held across symbols.
//!
//! The simulator's exchange double models what these runs rely on as Binance documents it:
//! one user-data subscription carries every symbol's `executionReport` (`s` names the symbol)
//! and an `outboundAccountPosition` with the balances of the assets a fill changed
//! (user-data-stream.md §Order Update, §Account Update); balances are the account's, shared by
//! its symbols (rest-api.md §Account information); `MAX_NUM_ORDERS` and orders are per symbol
//! (filters.md §MAX_NUM_ORDERS). The same routing is checked on the independent double in
//! tests/live_hub.rs.
//!
//! Each run is bounded (`--duration`, and a hard deadline that kills the child); nothing leaves
//! 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mmbot::exec::Side;
use mmbot::sim::exchange::SimAccount;
use mmbot::sim::{Sim, SimConfig, SimSource};

const KEY: &str = "liveMultiKey0123456789abcdefghijklmnopqrs";
const SECRET: &str = "liveMultiSecret9876543210zyxwvutsrqponmlk";
const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "BNBUSDT"];

fn sim() -> Sim {
    let balances = [("BTC", "1"), ("ETH", "1"), ("BNB", "1"), ("USDT", "100000")];
    Sim::start(SimConfig {
        symbols: SYMBOLS.iter().map(|s| s.to_string()).collect(),
        source: SimSource::Synthetic { seed: 11, events_per_sec: 300.0 },
        accounts: vec![SimAccount::hmac(KEY, SECRET, &balances, "0.001")],
        ..SimConfig::default()
    })
    .expect("the simulator starts on an ephemeral port")
}

/// Quotes at the touch (the synthetic flow fills them), small sizes, `[live]` aimed at the
/// simulator. BTCUSDT one level, ETHUSDT a ladder of two with its own live limits, BNBUSDT a
/// quote budget too small for one order (every level it wants is the allocator's to refuse).
/// `account` is the `[account]` body, `eth_live` more of ETHUSDT's `[symbols.live]`.
fn write_config(dir: &Path, sim: &Sim, account: &str, eth_live: &str) -> PathBuf {
    let text = format!(
        "[strategy]\ntarget_spread_pct = 0.0\nmin_order_size = \"0.002\"\nmax_position = \"0.01\"\n\
         [risk]\nmin_spread_bps = 0.0\n\
         [ai]\nprovider = \"offline\"\n\
         [live]\nbase_url = \"{}\"\nws_api_url = \"{}/ws-api/v3\"\nmax_position = \"0.01\"\n\
         max_order_notional = \"1000\"\nmax_open_orders = 2\ndaily_loss_limit = \"1000\"\n\
         journal = \"{}\"\nenv_file = \"{}\"\nmax_order_age_ms = 1500\nreconcile_every_s = 2\n\
         [account]\nbalances = {{ USDT = \"100000\", BTC = \"1\", ETH = \"1\" }}\n{account}\n\
         [[symbols]]\nsymbol = \"BTCUSDT\"\nbudget_quote = \"2000\"\nbudget_base = \"0.01\"\n\
         [[symbols]]\nsymbol = \"ETHUSDT\"\nbudget_quote = \"3000\"\nbudget_base = \"0.01\"\n\
         [symbols.strategy]\nlevels = 2\nlevel_spacing_ticks = 1\n\
         [symbols.live]\nmax_open_orders = 4\n{eth_live}\n\
         [[symbols]]\nsymbol = \"BNBUSDT\"\nbudget_quote = \"50\"\n",
        sim.http_base(),
        sim.ws_base(),
        dir.join("journal.sqlite").display(),
        dir.join("no.env").display(),
    );
    let path = dir.join("mmbot.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What one run left behind.
struct Outcome {
    code: i32,
    stderr: String,
    report: serde_json::Value,
    journal: PathBuf,
}

impl Outcome {
    fn symbol(&self, name: &str) -> &serde_json::Value {
        let list = self.report["symbols"].as_array().unwrap_or_else(|| panic!("no symbols:\n{}", self.stderr));
        list.iter().find(|s| s["symbol"] == name).unwrap_or_else(|| panic!("{name} not in the report"))
    }

    fn live(&self, name: &str, key: &str) -> &serde_json::Value {
        &self.symbol(name)["live"][key]
    }
}

fn run_live(name: &str, account: &str, eth_live: &str, duration: &str) -> (Sim, Outcome) {
    let (sim, out) = run_edited(name, account, eth_live, duration, |t| t);
    let out = out.unwrap_or_else(|(status, stderr)| panic!("no report.json (exit {status:?}):\n{stderr}"));
    (sim, out)
}

/// A run that wrote no report (it stopped at start): its exit status and stderr.
type StoppedAtStart = (Option<i32>, String);

/// [`run_live`] with the config text edited first.
fn run_edited(
    name: &str,
    account: &str,
    eth_live: &str,
    duration: &str,
    edit: impl FnOnce(String) -> String,
) -> (Sim, Result<Outcome, StoppedAtStart>) {
    let sim = sim();
    let out = run_on(&sim, name, duration, (account, eth_live), edit);
    (sim, out)
}

/// A run against `sim` with [`write_config`]'s config (given its `account` and `eth_live`)
/// edited by `edit`.
fn run_on(
    sim: &Sim,
    name: &str,
    duration: &str,
    (account, eth_live): (&str, &str),
    edit: impl FnOnce(String) -> String,
) -> Result<Outcome, StoppedAtStart> {
    let dir = common::temp_dir(&format!("live-multi-{name}"));
    let config = write_config(&dir, sim, account, eth_live);
    std::fs::write(&config, edit(std::fs::read_to_string(&config).unwrap())).unwrap();
    let child = common::live_run_cmd(&dir, (&sim.ws_base(), &sim.http_base()), &config, duration, (KEY, SECRET))
        .spawn()
        .expect("mmbot starts");
    let (status, stderr) = common::finish_child(child, Duration::from_secs(90));
    let report = std::fs::read_to_string(dir.join("report.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
    let Some(report) = report else { return Err((status.code(), stderr)) };
    Ok(Outcome { code: status.code().unwrap_or(-1), stderr, report, journal: dir.join("journal.sqlite") })
}

/// Each journaled order's final (status, filled, symbol), by client id.
fn journal_orders(path: &Path) -> HashMap<String, (String, i64, String)> {
    let db = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut q = db.prepare("SELECT client_id, status, filled_e8, symbol FROM order_state").unwrap();
    let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))).unwrap();
    rows.map(Result::unwrap).collect()
}

/// Journaled fills as (symbol, trade id, signed qty net of base commission).
fn journal_fills(path: &Path) -> Vec<(String, i64, i64)> {
    let db = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut q = db.prepare("SELECT symbol, trade_id, side, qty_e8 FROM fills").unwrap();
    let rows = q
        .query_map([], |r| {
            let (sym, id, side, qty): (String, i64, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            Ok((sym, id, if side == "BUY" { qty } else { -qty }))
        })
        .unwrap();
    let mut v: Vec<_> = rows.map(Result::unwrap).collect();
    v.sort();
    v
}

/// Per symbol: every exchange order journaled under that symbol with the exchange's final state,
/// the journal's fills the exchange's trades, nothing left open.
fn assert_agreement(sim: &Sim, out: &Outcome) {
    let ctx = &out.stderr;
    let jorders = journal_orders(&out.journal);
    for o in sim.all_orders(KEY) {
        let (status, filled, symbol) = jorders.get(&o.client_order_id).unwrap_or_else(|| {
            panic!("exchange order {} ({}) is not in the journal:\n{ctx}", o.client_order_id, o.symbol)
        });
        assert_eq!(symbol, &o.symbol, "{} journaled under another symbol", o.client_order_id);
        assert_eq!(status, common::journal_status(&o.status), "{}: {o:?}:\n{ctx}", o.client_order_id);
        assert_eq!(*filled, o.executed_qty.0, "{}: filled differs:\n{ctx}", o.client_order_id);
    }
    assert!(sim.orders(KEY).is_empty(), "orders still rest: {:?}:\n{ctx}", sim.orders(KEY));
    let mut exchange: Vec<(String, i64, i64)> = sim
        .fills(KEY)
        .iter()
        .map(|f| (f.symbol.clone(), f.trade_id as i64, if f.side == Side::Buy { f.qty.0 } else { -f.qty.0 }))
        .collect();
    exchange.sort();
    assert_eq!(journal_fills(&out.journal), exchange, "the journal's fills are not the exchange's:\n{ctx}");
}

/// Three symbols trade from one account on one session: each symbol's orders carry its own
/// client-id prefix and are journaled under it; the ladder rests two orders a side; BNBUSDT's
/// quote budget (50 USDT) is too small for an order of 0.002 at about 60,000 although the
/// account holds 100,000 USDT: the allocator refuses every level it wants and it sends nothing
/// (no symbol trades on another's budget); the account's open-order limit (5) holds on the
/// exchange, which never sees more than the two symbols' 2 + 4 would otherwise reach.
#[test]
fn three_symbols_trade_live_from_one_account_and_agree() {
    let (sim, out) = run_live("three", "max_open_orders = 5", "", "8s");
    assert_eq!(out.code, 0, "exit status:\n{}", out.stderr);
    assert!(out.stderr.contains("trading BTCUSDT, ETHUSDT, BNBUSDT on testnet or simulator"), "{}", out.stderr);
    for s in SYMBOLS {
        assert_eq!(out.live(s, "stop").as_str(), Some("ok"), "{s}:\n{}", out.stderr);
    }
    let orders = |s: &str| sim.all_orders(KEY).into_iter().filter(|o| o.symbol == s).collect::<Vec<_>>();
    for s in ["BTCUSDT", "ETHUSDT"] {
        assert!(!orders(s).is_empty(), "{s} placed nothing:\n{}", out.stderr);
        let prefix = format!("{}-", out.live(s, "client_prefix").as_str().unwrap());
        assert!(orders(s).iter().all(|o| o.client_order_id.starts_with(&prefix)), "{s}: ids lack {prefix}");
    }
    assert_ne!(out.live("BTCUSDT", "client_prefix"), out.live("ETHUSDT", "client_prefix"));
    // The budget binds BNBUSDT alone.
    assert!(orders("BNBUSDT").is_empty(), "BNBUSDT traded beyond its budget: {:?}", orders("BNBUSDT"));
    let refused = &out.symbol("BNBUSDT")["refused"];
    assert!(refused["symbol_quote_budget"].as_u64().unwrap_or(0) > 0, "BNBUSDT refusals: {refused}");
    assert_eq!(out.symbol("BTCUSDT")["refused"]["symbol_quote_budget"].as_u64().unwrap_or(0), 0);
    // The account's limit across symbols, as the exchange saw it.
    assert!(sim.max_open_orders(KEY) <= 5, "{} orders open at once:\n{}", sim.max_open_orders(KEY), out.stderr);
    assert!(out.report["symbols"].as_array().unwrap().iter().any(|s| s["live"]["fills"].as_u64() > Some(0)));
    assert_agreement(&sim, &out);
}

/// The account's daily loss limit counts every symbol's PnL together and stops them all: with a
/// limit of 0.00000001 USDT the first losing mark (fees at the touch) trips it, every symbol
/// cancels what it has open and stops, and the run ends before its duration with the journal
/// and the exchange in agreement.
#[test]
fn the_accounts_daily_loss_stops_every_symbol() {
    let started = Instant::now();
    let (sim, out) = run_live("kill", "daily_loss_limit = { USDT = \"0.00000001\" }", "", "40s");
    assert!(out.report["killed"].is_string(), "no account kill in the report:\n{}", out.stderr);
    for s in SYMBOLS {
        assert_eq!(out.live(s, "stop").as_str(), Some("killed: daily loss limit"), "{s}:\n{}", out.stderr);
    }
    assert!(started.elapsed() < Duration::from_secs(35), "the run went on after every symbol stopped");
    assert_ne!(out.code, 0);
    assert_agreement(&sim, &out);
}

/// A symbol's own limits stop only that symbol: ETHUSDT's `[symbols.live] daily_loss_limit` of
/// 0.00000001 USDT trips its kill switch at its first losing mark; it cancels and stops, while
/// BTCUSDT goes on to the end of the run. The exit status says a symbol was killed.
#[test]
fn a_symbols_own_kill_stops_only_that_symbol() {
    let (sim, out) = run_live("own-kill", "", "daily_loss_limit = \"0.00000001\"", "8s");
    assert_eq!(out.live("ETHUSDT", "stop").as_str(), Some("killed: daily loss limit"), "{}", out.stderr);
    assert_eq!(out.live("BTCUSDT", "stop").as_str(), Some("ok"), "{}", out.stderr);
    assert!(out.report["killed"].is_null(), "the account was not killed: {}", out.report["killed"]);
    assert!(out.live("BTCUSDT", "orders").as_u64() > out.live("ETHUSDT", "orders").as_u64(), "{}", out.stderr);
    assert_ne!(out.code, 0);
    assert_agreement(&sim, &out);
}

/// Refused at start, before any order, each naming what to fix: a symbol the exchange does not
/// list (rest-api.md §Exchange information), and budgets the account's real balances cannot
/// cover (the config's `[account] balances` said 5 BTC; the exchange holds 1).
#[test]
fn a_symbol_the_exchange_lacks_and_budgets_beyond_the_real_balances_stop_the_start() {
    type Edit = fn(String) -> String;
    let cases: [(&str, Edit, &str); 2] = [
        ("unlisted", |t| t.replace("symbol = \"BNBUSDT\"", "symbol = \"XRPUSDT\""), "[[symbols]] entry 2 (XRPUSDT)"),
        (
            "budgets",
            |t| {
                t.replace("BTC = \"1\"", "BTC = \"5\"").replace("budget_base = \"0.01\"\n[[", "budget_base = \"2\"\n[[")
            },
            "account.balances.BTC",
        ),
    ];
    for (name, edit, needle) in cases {
        let (sim, out) = run_edited(name, "", "", "5s", edit);
        let Err((code, stderr)) = out else { panic!("{name}: the run started") };
        assert!(code.is_some_and(|c| c != 0) && stderr.contains(needle), "{name}: {code:?}\n{stderr}");
        assert!(stderr.contains("nothing was sent"), "{name}: {stderr}");
        assert!(sim.all_orders(KEY).is_empty(), "{name}: orders were sent");
    }
}

/// user-data-stream.md §Account Update: `outboundAccountPosition` carries the account's one
/// balance of an asset, whichever symbol's fill moved it. BTCUSDT and BTCFDUSD share the
/// account's BTC: each symbol's balance check must count the
/// other's fills (the BTC balance moves with both), or a fill on one looks like a drift on the
/// other and trips its kill switch. Both trade to the end with their checks clean, and the
/// journal agrees with the exchange.
#[test]
fn symbols_sharing_a_base_asset_keep_their_balance_checks_clean() {
    let sim = Sim::start(SimConfig {
        symbols: vec!["BTCUSDT".into(), "BTCFDUSD".into()],
        source: SimSource::Synthetic { seed: 5, events_per_sec: 300.0 },
        accounts: vec![SimAccount::hmac(
            KEY,
            SECRET,
            &[("BTC", "1"), ("USDT", "100000"), ("FDUSD", "100000")],
            "0.001",
        )],
        ..SimConfig::default()
    })
    .unwrap();
    let out = run_on(&sim, "shared-base", "8s", ("", ""), |t| {
        t.replace("symbol = \"ETHUSDT\"", "symbol = \"BTCFDUSD\"")
            .replace("budget_quote = \"3000\"", "budget_quote = \"3000\"\nbudget_base = \"0.01\"")
            .replace("budget_base = \"0.01\"\nbudget_base = \"0.01\"", "budget_base = \"0.01\"")
            .replace(
                "USDT = \"100000\", BTC = \"1\", ETH = \"1\"",
                "USDT = \"100000\", BTC = \"1\", FDUSD = \"100000\"",
            )
            .replace("[[symbols]]\nsymbol = \"BNBUSDT\"\nbudget_quote = \"50\"\n", "")
    });
    let out = out.unwrap_or_else(|(status, stderr)| panic!("no report (exit {status:?}):\n{stderr}"));
    for s in ["BTCUSDT", "BTCFDUSD"] {
        assert_eq!(out.live(s, "stop").as_str(), Some("ok"), "{s}:\n{}", out.stderr);
        assert_eq!(out.live(s, "balance_drifts").as_u64(), Some(0), "{s}:\n{}", out.stderr);
        assert!(out.live(s, "balance_checks").as_u64() > Some(0), "{s}: never checked");
    }
    let fills = |s: &str| out.live(s, "fills").as_u64().unwrap_or(0);
    assert!(
        fills("BTCUSDT") > 0 && fills("BTCFDUSD") > 0,
        "both must fill for the check to mean anything:\n{}",
        out.stderr
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_agreement(&sim, &out);
}
