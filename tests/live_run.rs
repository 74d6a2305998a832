//! `mmbot run --live` end to end, against the simulator's exchange double
//! (`mmbot sim` in-process on an ephemeral loopback port): the real binary,
//! the real WebSocket market feed, signed REST orders and the WebSocket API
//! user-data stream, one run per fault. Every run must end with the
//! journal, the exchange and the bot's position in agreement, no order
//! sent twice, and no limit ever exceeded on the exchange.
//!
//! Each run is bounded (`--duration`, and a hard deadline that kills the
//! child); nothing leaves 127.0.0.1.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mmbot::exec::binance::OrderStatus as ExStatus;
use mmbot::exec::Side;
use mmbot::hot::fixed::{notional, parse_fixed};
use mmbot::sim::exchange::money::BnbFees;
use mmbot::sim::exchange::{ExchangeConfig, SimAccount, SimOrder};
use mmbot::sim::faults::Faults;
use mmbot::sim::{Sim, SimConfig, SimSource};

const KEY: &str = "liveRunKey0123456789abcdefghijklmnopqrstu";
const SECRET: &str = "liveRunSecret9876543210zyxwvutsrqponmlkji";
const BTC0: &str = "1";
const MAX_POSITION: &str = "0.01";
const MAX_NOTIONAL: &str = "1000";
const MAX_OPEN: usize = 2;

fn fx(s: &str) -> i64 {
    match s.strip_prefix('-') {
        Some(abs) => -parse_fixed(abs.as_bytes()).unwrap(),
        None => parse_fixed(s.as_bytes()).unwrap(),
    }
}

fn sim(faults: Faults) -> Sim {
    Sim::start(sim_config(faults, &[])).expect("the simulator starts on an ephemeral port")
}

/// The simulated market and the bot's account (`more` balances besides
/// BTC and USDT, as "ASSET=amount").
fn sim_config(faults: Faults, more: &[&str]) -> SimConfig {
    let mut balances = vec![("BTC", BTC0), ("USDT", "100000")];
    balances.extend(more.iter().filter_map(|b| b.split_once('=')));
    SimConfig {
        source: SimSource::Synthetic { seed: 7, events_per_sec: 300.0 },
        faults,
        accounts: vec![SimAccount::hmac(KEY, SECRET, &balances, "0.001")],
        ..SimConfig::default()
    }
}

/// The config: quotes at the touch (so the synthetic flow fills them),
/// small sizes, and `[live]` aimed at the simulator. `extra` goes into
/// `[live]`.
fn write_config(dir: &Path, sim: &Sim, extra: &str) -> PathBuf {
    let text = format!(
        "[strategy]\ntarget_spread_pct = 0.0\nmin_order_size = \"0.002\"\nmax_position = \"{MAX_POSITION}\"\n\
         [risk]\nmin_spread_bps = 0.0\n\
         [ai]\nprovider = \"offline\"\n\
         [live]\nbase_url = \"{}\"\nws_api_url = \"{}/ws-api/v3\"\nmax_position = \"{MAX_POSITION}\"\n\
         max_order_notional = \"{MAX_NOTIONAL}\"\nmax_open_orders = {MAX_OPEN}\ndaily_loss_limit = \"1000\"\n\
         journal = \"{}\"\nenv_file = \"{}\"\nmax_order_age_ms = 1500\nreconcile_every_s = 2\n{extra}\n",
        sim.http_base(),
        sim.ws_base(),
        dir.join("journal.sqlite").display(),
        dir.join("no.env").display(),
    );
    let path = dir.join("mmbot.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn(dir: &Path, sim: &Sim, config: &Path, duration: &str) -> Child {
    spawn_cmd(dir, sim, config, duration).spawn().expect("mmbot starts")
}

fn spawn_cmd(dir: &Path, sim: &Sim, config: &Path, duration: &str) -> Command {
    let mut cmd = common::live_run_cmd(dir, (&sim.ws_base(), &sim.http_base()), config, duration, (KEY, SECRET));
    cmd.args(["--symbol", "BTCUSDT"]);
    cmd
}

/// What one run left behind.
struct Outcome {
    code: i32,
    stderr: String,
    report: serde_json::Value,
    journal: PathBuf,
    /// `[strategy] levels` of the run: never more may rest on a side at
    /// once, nor more than `max_open_orders` (`MAX_OPEN` a level) in all.
    levels: usize,
}

impl Outcome {
    fn live(&self, key: &str) -> &serde_json::Value {
        &self.report["live"][key]
    }

    fn count(&self, key: &str) -> u64 {
        self.live(key).as_u64().unwrap_or_else(|| panic!("report live.{key} missing:\n{}", self.stderr))
    }

    fn run_id(&self) -> i64 {
        self.live("run_id").as_i64().unwrap()
    }
}

/// Waits for the child (killing it past `deadline`) and reads its outputs.
fn finish(child: Child, dir: &Path, deadline: Duration) -> Outcome {
    let (status, stderr) = common::finish_child(child, deadline);
    let report = std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("no report.json (exit {status:?}):\n{stderr}"));
    Outcome { code: status.code().unwrap_or(-1), stderr, report, journal: dir.join("journal.sqlite"), levels: 1 }
}

fn run_live(name: &str, faults: Faults, extra: &str, duration: &str) -> (Sim, Outcome) {
    let dir = common::temp_dir(&format!("live-run-{name}"));
    let sim = sim(faults);
    let config = write_config(&dir, &sim, extra);
    let child = spawn(&dir, &sim, &config, duration);
    let out = finish(child, &dir, Duration::from_secs(90));
    (sim, out)
}

/// One order's final state in the journal.
#[derive(Debug)]
struct JOrder {
    /// The run that first journaled it (a later run may settle it).
    run: i64,
    exchange_id: Option<i64>,
    status: String,
    filled_e8: i64,
}

/// One journaled fill.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct JFill {
    trade_id: i64,
    client_id: String,
    side: String,
    price_e8: i64,
    qty_e8: i64,
    /// Commission and its asset (Binance charges it in the received asset).
    fee_e8: i64,
    fee_asset: String,
}

fn journal(path: &Path) -> (HashMap<String, JOrder>, Vec<JFill>) {
    let db = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut orders = HashMap::new();
    let mut q = db
        .prepare(
            "SELECT s.client_id, (SELECT MIN(o.run) FROM orders o WHERE o.client_id = s.client_id), \
             s.exchange_id, s.status, s.filled_e8 FROM order_state s",
        )
        .unwrap();
    let rows = q
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                JOrder { run: r.get(1)?, exchange_id: r.get(2)?, status: r.get(3)?, filled_e8: r.get(4)? },
            ))
        })
        .unwrap();
    for row in rows {
        let (id, o) = row.unwrap();
        orders.insert(id, o);
    }
    let mut q = db
        .prepare("SELECT trade_id, client_id, side, price_e8, qty_e8, fee_e8, fee_asset FROM fills ORDER BY trade_id")
        .unwrap();
    let fills = q
        .query_map([], |r| {
            Ok(JFill {
                trade_id: r.get(0)?,
                client_id: r.get(1)?,
                side: r.get(2)?,
                price_e8: r.get(3)?,
                qty_e8: r.get(4)?,
                fee_e8: r.get(5)?,
                fee_asset: r.get(6)?,
            })
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    (orders, fills)
}

fn signed(side: Side, qty: i64) -> i64 {
    if side == Side::Buy {
        qty
    } else {
        -qty
    }
}

/// The journal, the exchange and the bot agree, nothing was sent twice and
/// no limit was exceeded. With `open_left` (a ban too long to wait out),
/// orders the journal still has open may rest on the exchange, and may have
/// filled further after the bot left: the journal then trails the exchange
/// for exactly those orders, until the next start settles them. The bot's position
/// carries over from earlier runs in the same journal, so it is always the
/// account's whole traded position.
fn assert_agreement(sim: &Sim, out: &Outcome, open_left: bool) {
    let ctx = &out.stderr;
    let (jorders, jfills) = journal(&out.journal);
    // The self-trade fault's taker orders are another program's on the
    // same account (client ids `other-program-N`): not the bot's to journal.
    let theirs = |id: &str| id.starts_with("other-program-");
    let sorders: Vec<SimOrder> = sim.all_orders(KEY).into_iter().filter(|o| !theirs(&o.client_order_id)).collect();
    let sfills: Vec<_> = sim.fills(KEY).into_iter().filter(|f| !theirs(&f.client_order_id)).collect();

    // Never a duplicate: one exchange order per client id, each journaled.
    let mut ids = HashSet::new();
    for o in &sorders {
        assert!(ids.insert(o.client_order_id.clone()), "client id {} sent twice:\n{ctx}", o.client_order_id);
        let j = jorders
            .get(&o.client_order_id)
            .unwrap_or_else(|| panic!("exchange order {} is not in the journal:\n{ctx}", o.client_order_id));
        let jopen = ["NEW", "PARTIALLY_FILLED", "UNKNOWN"].contains(&j.status.as_str());
        if open_left && jopen {
            // Left resting: the exchange may have gone on filling it.
            assert!(o.executed_qty.0 >= j.filled_e8, "{}: journal {j:?}, exchange {o:?}:\n{ctx}", o.client_order_id);
            continue;
        }
        // The journal's final state is the exchange's.
        assert_eq!(
            j.status,
            common::journal_status(&o.status),
            "{}: journal {j:?}, exchange {o:?}:\n{ctx}",
            o.client_order_id
        );
        assert_eq!(j.filled_e8, o.executed_qty.0, "{}: filled differs:\n{ctx}", o.client_order_id);
        if let Some(x) = j.exchange_id {
            assert_eq!(x as u64, o.order_id, "{}: exchange id differs", o.client_order_id);
        }
    }
    // Journaled orders the exchange never saw ended as refused, never open.
    for (id, j) in &jorders {
        if !ids.contains(id) {
            assert_eq!(j.status, "REJECTED", "{id} is {j:?} in the journal but unknown to the exchange:\n{ctx}");
        }
    }
    // Open at the end only when a stop could not cancel.
    let open = sim.orders(KEY);
    if !open_left {
        assert!(open.is_empty(), "orders still rest on the exchange: {open:?}:\n{ctx}");
    }
    let jopen: HashSet<&String> = jorders
        .iter()
        .filter(|(_, j)| ["NEW", "PARTIALLY_FILLED", "UNKNOWN"].contains(&j.status.as_str()))
        .map(|(id, _)| id)
        .collect();
    for o in &open {
        assert!(
            jopen.contains(&o.client_order_id),
            "{} rests but the journal has it closed:\n{ctx}",
            o.client_order_id
        );
    }
    if !open_left {
        assert!(jopen.is_empty(), "the journal has orders open the exchange does not: {jopen:?}:\n{ctx}");
    }

    // Fills: the same trades, each once.
    let mut want: Vec<JFill> = sfills
        .iter()
        .map(|f| JFill {
            trade_id: f.trade_id as i64,
            client_id: f.client_order_id.clone(),
            side: if f.side == Side::Buy { "BUY".into() } else { "SELL".into() },
            price_e8: f.price.0,
            qty_e8: f.qty.0,
            fee_e8: f.commission,
            fee_asset: f.commission_asset.clone(),
        })
        .collect();
    want.sort();
    if open_left {
        // Fills after the bot left are the exchange's alone, for now.
        let left_behind: HashSet<&str> = jopen.iter().map(|s| s.as_str()).collect();
        want.retain(|f| !left_behind.contains(f.client_id.as_str()) || jfills.contains(f));
    }
    assert_eq!(jfills, want, "journal fills differ from the exchange's:\n{ctx}");

    // Position: Binance charges a buy's commission in the base asset
    // (faqs/commission_faq.md), so the position is base received net of
    // base commission: exchange fills = journal = the bot's report = the
    // change in the BTC balance.
    let counted: HashSet<i64> = want.iter().map(|f| f.trade_id).collect();
    let kept = |f: &&mmbot::sim::exchange::SimFill| counted.contains(&(f.trade_id as i64));
    let position: i64 = sfills
        .iter()
        .filter(kept)
        .map(|f| {
            let base_fee = if f.commission_asset == "BTC" { f.commission } else { 0 };
            signed(f.side, f.qty.0) - base_fee
        })
        .sum();
    let reported = fx(out.report["trading"]["position"].as_str().unwrap());
    assert_eq!(reported, position, "the bot's position is not the exchange's:\n{ctx}");
    assert_eq!(fx(out.live("position").as_str().unwrap()), reported);
    let btc = sim.account(KEY).unwrap().into_iter().find(|b| b.asset == "BTC").unwrap();
    let exchange_position: i64 = sfills
        .iter()
        .map(|f| signed(f.side, f.qty.0) - if f.commission_asset == "BTC" { f.commission } else { 0 })
        .sum();
    assert_eq!(btc.free.0 + btc.locked.0 - fx(BTC0), exchange_position, "BTC balance change is not the fills");
    if !open_left {
        assert_eq!(reported, btc.free.0 + btc.locked.0 - fx(BTC0), "position is not the BTC balance change:\n{ctx}");
    }

    // Limits, as the exchange saw them: never more orders on a side than
    // levels.
    let max_open = MAX_OPEN * out.levels;
    assert!(sim.max_open_orders(KEY) <= max_open, "{} orders open at once:\n{ctx}", sim.max_open_orders(KEY));
    let per_side = sim.max_open_per_side(KEY);
    assert!(
        per_side[0] <= out.levels && per_side[1] <= out.levels,
        "more orders than levels open on a side at once {per_side:?}:\n{ctx}"
    );
    // The position is what the account holds: base received net of base
    // commission.
    let mut running = 0i64;
    for f in &sfills {
        running += signed(f.side, f.qty.0) - if f.commission_asset == "BTC" { f.commission } else { 0 };
        assert!(running.abs() <= fx(MAX_POSITION), "position {running} passed the limit:\n{ctx}");
    }
    for o in &sorders {
        assert!(notional(o.price.0, o.orig_qty.0) <= fx(MAX_NOTIONAL), "order {o:?} over the notional limit");
    }
    // The run's ids carry its prefix.
    let prefix = format!("{}-", out.live("client_prefix").as_str().unwrap());
    for o in &sorders {
        let j = &jorders[&o.client_order_id];
        if j.run == out.run_id() {
            assert!(o.client_order_id.starts_with(&prefix), "{} lacks {prefix}", o.client_order_id);
        }
    }
}

fn assert_exit(out: &Outcome, code: i32) {
    assert_eq!(out.code, code, "exit status (stop: {}):\n{}", out.live("stop"), out.stderr);
}

#[test]
fn clean_run_places_replaces_cancels_and_agrees() {
    let (sim, out) = run_live("clean", Faults::default(), "", "7s");
    assert_exit(&out, 0);
    assert_eq!(out.live("stop").as_str(), Some("ok"));
    assert!(out.count("orders") >= 3, "{}", out.stderr);
    assert!(out.count("replaces") >= 1, "cancelReplace never used:\n{}", out.stderr);
    assert!(out.count("fills") >= 1, "no fills at the touch in 7 s:\n{}", out.stderr);
    assert_eq!((out.count("rejected"), out.count("lookups")), (0, 0), "{}", out.stderr);
    assert!(out.stderr.contains("trading BTCUSDT on testnet or simulator"), "start-up print:\n{}", out.stderr);
    assert!(!out.stderr.contains(SECRET) && !out.stderr.contains(KEY), "a key was printed");
    assert_agreement(&sim, &out, false);
    // The run, its advice and PnL snapshots are journaled too.
    let db = rusqlite::Connection::open(&out.journal).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [out.run_id()], |r| r.get(0)).unwrap() };
    assert!(count("SELECT COUNT(*) FROM pnl WHERE run = ?1") >= 1);
    assert!(count("SELECT COUNT(*) FROM advice WHERE run = ?1") >= 1);
    assert_eq!(count("SELECT COUNT(*) FROM runs WHERE id = ?1 AND exit_status = 'ok' AND mode = 'testnet'"), 1);
}

/// `[strategy] levels = 3`: three orders a side on the simulator's exchange, each kept,
/// replaced and filled on its own; the journal agrees with the exchange order by order, never
/// more than the six orders rest, and the position stays within max_position.
#[test]
fn a_ladder_trades_live_and_agrees() {
    let dir = common::temp_dir("live-run-ladder");
    let sim = sim(Faults::default());
    let config = write_config(&dir, &sim, "");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("[strategy]\n", "[strategy]\nlevels = 3\nlevel_spacing_ticks = 1\n")
        .replace(&format!("max_open_orders = {MAX_OPEN}\n"), "max_open_orders = 6\n");
    std::fs::write(&config, text).unwrap();
    let child = spawn(&dir, &sim, &config, "7s");
    let mut out = finish(child, &dir, Duration::from_secs(90));
    out.levels = 3;
    assert_exit(&out, 0);
    assert_eq!(out.live("stop").as_str(), Some("ok"));
    assert!(out.stderr.contains("ladder:   3 orders a side"), "start-up print:\n{}", out.stderr);
    let per_side = sim.max_open_per_side(KEY);
    assert!(per_side[0] > 1 || per_side[1] > 1, "the ladder never rested two orders on a side:\n{}", out.stderr);
    assert!(out.count("fills") >= 1, "no fills in 7 s:\n{}", out.stderr);
    assert_agreement(&sim, &out, false);
}

#[test]
fn throttled_orders_wait_out_retry_after() {
    let faults = Faults { throttle_order_every: 4, ..Faults::default() };
    let (sim, out) = run_live("429", faults, "", "7s");
    assert_exit(&out, 0);
    assert!(out.count("waits") >= 1, "no 429 seen:\n{}", out.stderr);
    assert_agreement(&sim, &out, false);
}

#[test]
fn late_orders_block_their_side_until_the_exchange_deadline() {
    // -1007 at once, the order reaches the engine 2 s later (errors.md
    // -1007; FACTS.md §3.4): the side waits, sees it on the stream or by
    // lookup, and never sends a second order beside it.
    let faults = Faults { late_order_every: 3, late_order_by: Duration::from_secs(2), ..Faults::default() };
    let (sim, out) = run_live("late", faults, "", "10s");
    assert_exit(&out, 0);
    assert!(out.count("unknown_fates") >= 1, "no -1007 seen:\n{}", out.stderr);
    // An order given up too early would show up on the exchange while the
    // journal calls it REJECTED: the agreement check catches that (a late
    // order the engine itself refused, e.g. post-only by then crossing, is
    // rightly absent).
    assert_agreement(&sim, &out, false);
}

#[test]
fn unexpected_responses_are_unknown_fates() {
    // -1006 with the order placed (errors.md): looked up, never resent.
    let faults = Faults { unexpected_resp_every: 4, ..Faults::default() };
    let (sim, out) = run_live("1006", faults, "", "7s");
    assert_exit(&out, 0);
    assert!(out.count("unknown_fates") + out.count("overtaken_by_stream") >= 1, "no -1006 seen:\n{}", out.stderr);
    assert_agreement(&sim, &out, false);
}

#[test]
fn request_weight_429s_back_everything_off() {
    // -1003 (rest-api.md §LIMITS): nothing at all until Retry-After.
    let faults = Faults { throttle_weight_every: 15, ..Faults::default() };
    let (sim, out) = run_live("weight", faults, "", "7s");
    assert_exit(&out, 0);
    assert!(out.count("waits") >= 1, "no -1003 seen:\n{}", out.stderr);
    assert_agreement(&sim, &out, false);
}

#[test]
fn self_trades_expire_our_maker_order() {
    // Another program on the same account takes our order; with
    // EXPIRE_MAKER (the default we send) ours expires (faqs/stp_faq.md).
    let faults = Faults { self_trade_every: Some(Duration::from_millis(700)), ..Faults::default() };
    let (sim, out) = run_live("stp", faults, "", "7s");
    assert_exit(&out, 0);
    let expired = sim.all_orders(KEY).iter().filter(|o| o.status == ExStatus::ExpiredInMatch).count();
    assert!(expired >= 1, "no self-trade happened:\n{}", out.stderr);
    assert_eq!(out.count("stp_expired") as usize, expired, "{}", out.stderr);
    assert_agreement(&sim, &out, false);
}

#[test]
fn a_server_shutdown_moves_to_a_new_session() {
    // serverShutdown on the WebSocket API (web-socket-api.md): a new
    // session is opened before the old one closes; nothing is lost.
    let faults = Faults { ws_api_shutdown_after: Some(Duration::from_secs(2)), ..Faults::default() };
    let (sim, out) = run_live("shutdown", faults, "", "7s");
    assert_exit(&out, 0);
    let g = &out.report["live"]["gateway"];
    assert!(g["shutdowns_handled"].as_u64().unwrap() >= 1, "no serverShutdown handled: {g}\n{}", out.stderr);
    assert_eq!(g["reconnects"].as_u64(), Some(0), "the session dropped instead of switching: {g}");
    assert_agreement(&sim, &out, false);
}

#[test]
fn bnb_fees_are_valued_and_kept_out_of_the_position() {
    // Commission in BNB (faqs/commission_faq.md): the position is the
    // whole quantity, and fees are valued at the configured BNB price.
    let dir = common::temp_dir("live-run-bnb");
    let sim = Sim::start_with(
        sim_config(Faults::default(), &["BNB=10"]),
        ExchangeConfig {
            bnb_fees: Some(BnbFees { price: fx("600"), discount: fx("0.25") }),
            ..ExchangeConfig::default()
        },
    )
    .unwrap();
    let config = write_config(&dir, &sim, "bnb_price = \"600\"");
    let out = finish(spawn(&dir, &sim, &config, "7s"), &dir, Duration::from_secs(90));
    assert_exit(&out, 0);
    let fills = sim.fills(KEY);
    assert!(fills.iter().any(|f| f.commission_asset == "BNB"), "no BNB commission charged:\n{}", out.stderr);
    let bnb_fees: i64 = fills.iter().filter(|f| f.commission_asset == "BNB").map(|f| f.commission).sum();
    let fees = &out.report["live"]["fees_by_asset"];
    assert_eq!(fx(fees["bnb"].as_str().unwrap()), bnb_fees, "BNB fees differ:\n{}", out.stderr);
    assert_eq!(out.report["live"]["bnb_price"]["source"], "config", "{}", out.stderr);
    assert_agreement(&sim, &out, false);
}

#[test]
fn a_slow_exchange_keeps_quoting_both_sides() {
    // Every answer 3 s late: the stream's executionReports move each side
    // on, so the order rate stays within 2x of a clean run.
    let (_, clean) = run_live("slow-clean", Faults::default(), "", "10s");
    let faults = Faults { slow_answers: Duration::from_secs(3), ..Faults::default() };
    let (sim, slow) = run_live("slow", faults, "", "10s");
    assert_exit(&slow, 0);
    let (c, s) = (clean.count("orders"), slow.count("orders"));
    eprintln!("live_run slow exchange: {s} orders with 3 s answers vs {c} clean in 10 s");
    assert!(s * 2 >= c, "slow run placed {s} orders vs {c} clean:\n{}", slow.stderr);
    let sides: HashSet<Side> = sim.all_orders(KEY).iter().map(|o| o.side).collect();
    assert_eq!(sides.len(), 2, "only one side quoted:\n{}", slow.stderr);
    assert_agreement(&sim, &slow, false);
}

/// Nothing is sent once the process knows of the ban: no REST request of
/// any kind, and at most one WebSocket connect per connection that was
/// open when the ban began (the simulator drops them all at once, so the
/// market stream may retry before the 418 answer has reached the guard;
/// that retry is refused with 418 and reported to the guard).
fn assert_ban_respected(sim: &Sim, stderr: &str) {
    let c = sim.ban_counts();
    assert!(c.requests == 0 && c.connects <= 2, "requests during the ban: {c:?}\n{stderr}");
}

#[test]
fn ip_ban_stops_trading_waits_and_cancels() {
    let faults = Faults { ban_order_every: 5, ban_for: Some(Duration::from_secs(2)), ..Faults::default() };
    let (sim, out) = run_live("418", faults, "ban_wait_max_s = 10", "20s");
    assert_exit(&out, 4);
    assert!(out.live("stop").as_str().unwrap().contains("418"), "{}", out.stderr);
    // The stop waits out the 2 s ban before cancelling, unless it first
    // waited out an unknown fate's deadline (a request in flight when the
    // ban dropped the connection: 10.5 s), by which time the ban is over.
    let (waits, unknown) = (out.count("ban_waits"), out.count("unknown_fates"));
    assert!(waits == 1 || (waits == 0 && unknown >= 1), "ban waits {waits}, unknown fates {unknown}:\n{}", out.stderr);
    assert_eq!(out.count("left_open"), 0);
    assert_ban_respected(&sim, &out.stderr);
    assert_agreement(&sim, &out, false);
}

#[test]
fn long_ban_leaves_orders_to_the_next_start() {
    // The ban outlasts what the bot may wait: it exits saying orders may
    // rest; the next start (after the ban) cancels them before quoting.
    let faults = Faults { ban_order_every: 3, ban_for: Some(Duration::from_secs(3)), ..Faults::default() };
    let dir = common::temp_dir("live-run-long-ban");
    let sim = sim(faults);
    let config = write_config(&dir, &sim, "ban_wait_max_s = 0");
    let first = finish(spawn(&dir, &sim, &config, "20s"), &dir, Duration::from_secs(90));
    assert_ban_respected(&sim, &first.stderr);
    let left = first.count("left_open");
    assert_exit(&first, if left > 0 { 7 } else { 4 });
    if left > 0 {
        assert!(first.stderr.contains("ALERT"), "{}", first.stderr);
    }
    assert_agreement(&sim, &first, true);
    // What was left may have filled since.
    assert!(sim.orders(KEY).len() as u64 <= left);

    std::thread::sleep(Duration::from_secs(3));
    // The sim keeps banning every 3rd order request; the second run only
    // needs to start, reconcile and stop.
    let _ = std::fs::remove_file(dir.join("report.json"));
    let second = finish(spawn(&dir, &sim, &config, "1500ms"), &dir, Duration::from_secs(90));
    assert!(second.run_id() > first.run_id());
    // What still rested is cancelled as an orphan; what the market filled
    // meanwhile is settled from the journal, its fills recovered.
    assert!(second.count("orphans_canceled") <= left, "{}", second.stderr);
    // The second run starts from the first one's position (journal).
    assert_agreement(&sim, &second, false);
    let (jorders, _) = journal(&second.journal);
    assert!(
        jorders.values().all(|j| !["NEW", "PARTIALLY_FILLED", "UNKNOWN"].contains(&j.status.as_str())),
        "{jorders:?}"
    );
}

#[test]
fn server_error_after_placing_is_looked_up_never_resent() {
    let faults = Faults { error_after_order_every: 3, ..Faults::default() };
    let (sim, out) = run_live("5xx", faults, "", "7s");
    assert_exit(&out, 0);
    assert!(out.count("lookups_found") >= 1, "no unknown fate settled:\n{}", out.stderr);
    assert_agreement(&sim, &out, false);
}

#[test]
fn timed_out_orders_are_looked_up() {
    let faults = Faults { delay_order_every: 4, order_delay: Duration::from_millis(2500), ..Faults::default() };
    let (sim, out) = run_live("timeout", faults, "timeout_ms = 800\nrecv_window_ms = 800", "8s");
    assert_exit(&out, 0);
    // The order is on the book at once and its executionReport comes on
    // the stream while the answer is held: the side moves on from the
    // stream (or, if the answer timed out first, from a lookup).
    assert!(out.count("lookups") + out.count("overtaken_by_stream") >= 1, "no held answer seen:\n{}", out.stderr);
    assert_agreement(&sim, &out, false);
}

#[test]
fn dropped_user_data_is_resubscribed_and_fills_recovered() {
    let faults = Faults { drop_user_data_every: Some(Duration::from_millis(1500)), ..Faults::default() };
    let (sim, out) = run_live("userdata", faults, "", "8s");
    assert_exit(&out, 0);
    assert!(out.count("resubscribes") >= 1, "{}", out.stderr);
    assert_agreement(&sim, &out, false);
}

#[test]
fn skewed_exchange_clock_is_measured() {
    // 3 s ahead with a 1 s recvWindow: unsigned by the measured offset,
    // every request would be refused (-1021).
    let faults = Faults { clock_offset_ms: 3000, ..Faults::default() };
    let (sim, out) = run_live("clock", faults, "recv_window_ms = 1000", "5s");
    assert_exit(&out, 0);
    assert!(out.count("orders") >= 1 && out.count("clock_resyncs") == 0, "{}", out.stderr);
    assert_agreement(&sim, &out, false);
}

#[test]
fn sigterm_cancels_everything_and_exits_cleanly() {
    let dir = common::temp_dir("live-run-sigterm");
    let sim = sim(Faults::default());
    let config = write_config(&dir, &sim, "");
    let child = spawn(&dir, &sim, &config, "60s");
    // Wait (bounded) until an order rests, then SIGTERM.
    let end = Instant::now() + Duration::from_secs(30);
    while sim.orders(KEY).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!sim.orders(KEY).is_empty(), "no order rested within 30 s");
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let out = finish(child, &dir, Duration::from_secs(60));
    assert_exit(&out, 0);
    assert!(out.live("stop").as_str().unwrap().contains("signal"), "{}", out.stderr);
    assert_agreement(&sim, &out, false);
    let db = rusqlite::Connection::open(&out.journal).unwrap();
    let status: String =
        db.query_row("SELECT exit_status FROM runs WHERE id = ?1", [out.run_id()], |r| r.get(0)).unwrap();
    assert!(status.contains("signal"), "{status}");
}

#[test]
fn stale_feed_trips_the_kill_switch() {
    let dir = common::temp_dir("live-run-stale");
    let sim = sim(Faults::default());
    let config = write_config(&dir, &sim, "kill_stale_feed_s = 1");
    let child = spawn(&dir, &sim, &config, "60s");
    let end = Instant::now() + Duration::from_secs(30);
    while sim.orders(KEY).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!sim.orders(KEY).is_empty(), "no order rested within 30 s");
    // The market stops sending; the connection stays up.
    sim.pause();
    let out = finish(child, &dir, Duration::from_secs(60));
    assert_exit(&out, 3);
    assert!(out.live("stop").as_str().unwrap().contains("stale"), "{}", out.stderr);
    assert_agreement(&sim, &out, false);
}

#[test]
fn live_needs_confirmation_keys_and_limits() {
    let dir = common::temp_dir("live-run-guards");
    let sim = sim(Faults::default());
    let config = write_config(&dir, &sim, "");
    let base = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mmbot"));
        c.args(["run", "--live", "--symbol", "BTCUSDT", "--duration", "1s", "--no-dashboard"])
            .arg("--stream-url")
            .arg(sim.ws_base())
            .arg("--rest-url")
            .arg(sim.http_base())
            .args(extra)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .env_remove("BINANCE_API_KEY")
            .env_remove("BINANCE_SECRET_KEY")
            .env_remove("BINANCE_ED25519_KEY_FILE");
        c
    };
    let cfg = config.to_str().unwrap();
    // No [live] section (./mmbot.toml, which has one, would be read by
    // default: name a file without it).
    let bare = dir.join("bare.toml");
    std::fs::write(&bare, "").unwrap();
    let o = base(&["--yes", "--config", bare.to_str().unwrap()]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("[live]"), "{e}");
    // No keys.
    let o = base(&["--yes", "--config", cfg]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("BINANCE_API_KEY"), "{e}");
    // Keys, but no --yes and no terminal to type on.
    let o = base(&["--config", cfg]).env("BINANCE_API_KEY", KEY).env("BINANCE_SECRET_KEY", SECRET).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("--yes"), "{e}");
    assert!(!e.contains(SECRET) && !e.contains(KEY), "a key was printed: {e}");
    // A wrong key: refused at start, nothing sent.
    let o = base(&["--yes", "--config", cfg])
        .env("BINANCE_API_KEY", "wrongKey0123456789abcdefghijklmnopqrstuv")
        .env("BINANCE_SECRET_KEY", SECRET)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("nothing was sent"), "{e}");
    // `mmbot paper --live` is not a thing.
    let o =
        Command::new(env!("CARGO_BIN_EXE_mmbot")).args(["paper", "--live", "--symbol", "BTCUSDT"]).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("mmbot run --live"));
    assert!(sim.all_orders(KEY).is_empty());
}

#[test]
fn dry_run_only_asks_the_exchange_to_check_orders() {
    use mmbot::exec::binance::{Credentials, RestClient, RestConfig};
    let dir = common::temp_dir("live-run-dry");
    let sim = sim(Faults::default());
    // Someone else's order on the symbol: a dry run must leave it alone.
    let mut rc = RestConfig::with_base(&sim.http_base());
    rc.timeout = Duration::from_secs(5);
    let mut client = RestClient::new(&rc, Credentials::hmac(KEY, SECRET).unwrap()).unwrap();
    client.sync_clock().unwrap();
    let far = mmbot::hot::fixed::Price(fx("50000"));
    let theirs = mmbot::exec::binance::ClientOrderId::new("manual-1").unwrap();
    client.new_limit_maker("BTCUSDT", Side::Buy, far, mmbot::hot::fixed::Qty(fx("0.001")), &theirs).unwrap();
    let config = write_config(&dir, &sim, "");
    let mut cmd = spawn_cmd(&dir, &sim, &config, "4s");
    let out = finish(cmd.arg("--dry-run").spawn().unwrap(), &dir, Duration::from_secs(90));
    assert_exit(&out, 0);
    assert!(out.count("dry_run_tested") >= 1, "{}", out.stderr);
    assert_eq!((out.count("fills"), out.count("cancels")), (0, 0), "{}", out.stderr);
    assert!(out.stderr.contains("DRY RUN"), "{}", out.stderr);
    let all = sim.all_orders(KEY);
    assert_eq!(all.len(), 1, "a dry run placed orders: {all:?}");
    assert_eq!(sim.orders(KEY).len(), 1, "a dry run cancelled someone else's order");
    let db = rusqlite::Connection::open(&out.journal).unwrap();
    let (mode, orders): (String, i64) = db
        .query_row(
            "SELECT mode, (SELECT COUNT(*) FROM orders WHERE run = ?1) FROM runs WHERE id = ?1",
            [out.run_id()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((mode.as_str(), orders), ("paper", 0));
}

use common::tmux;

fn wait_for(socket: &str, text: &str, limit: Duration) -> Result<String, String> {
    common::tmux_wait_for(socket, "live", text, limit)
}

/// On a terminal, `--live` without `--yes` asks for the symbol: anything
/// else quits with nothing sent; the symbol starts trading, with the
/// dashboard's live line, and `q` cancels everything.
#[test]
fn typed_confirmation_on_a_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        common::skip(format_args!("typed_confirmation_on_a_terminal: tmux is not installed"));
        return;
    }
    let dir = common::temp_dir("live-run-tty");
    let sim = sim(Faults::default());
    let config = write_config(&dir, &sim, "");
    let session = |answer: &str| -> Result<String, String> {
        // A server per session: a killed one can still hold its socket
        // for a moment.
        let socket = format!("mmbot-live-{}-{answer}", std::process::id());
        let socket = socket.as_str();
        let cmd = format!(
            "env BINANCE_API_KEY={KEY} BINANCE_SECRET_KEY={SECRET} {} run --live --symbol BTCUSDT --duration 60s \
             --stream-url {} --rest-url {} --config {} --out {}; echo EXITED $?; sleep 30",
            env!("CARGO_BIN_EXE_mmbot"),
            sim.ws_base(),
            sim.http_base(),
            config.display(),
            dir.join("out").display()
        );
        let started = Command::new("tmux")
            .args(["-L", socket, "new-session", "-d", "-s", "live", "-x", "160", "-y", "45"])
            .arg("-c")
            .arg(&dir)
            .arg(&cmd)
            .env("TERM", "xterm-256color")
            .status()
            .unwrap();
        assert!(started.success());
        let r = (|| {
            wait_for(socket, "Type the symbol (BTCUSDT)", Duration::from_secs(30))?;
            tmux(socket, &["send-keys", "-t", "live", answer, "Enter"]);
            if answer != "BTCUSDT" {
                return wait_for(socket, "EXITED 1", Duration::from_secs(20));
            }
            let screen = wait_for(socket, "LIVE ORDERS", Duration::from_secs(30))?;
            let end = Instant::now() + Duration::from_secs(30);
            while sim.orders(KEY).is_empty() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
            tmux(socket, &["send-keys", "-t", "live", "q"]);
            wait_for(socket, "EXITED 0", Duration::from_secs(30)).map(|_| screen)
        })();
        tmux(socket, &["kill-server"]);
        r
    };
    let screen = session("ETHUSDT").unwrap_or_else(|s| panic!("refusal not seen; last screen:\n{s}"));
    assert!(screen.contains("not confirmed"), "{screen}");
    assert!(sim.all_orders(KEY).is_empty(), "an order went out without confirmation");
    let screen = session("BTCUSDT").unwrap_or_else(|s| panic!("confirmed run failed; last screen:\n{s}"));
    assert!(screen.contains("mmbot live BTCUSDT"), "{screen}");
    assert!(!sim.all_orders(KEY).is_empty(), "no order was placed after confirming");
    assert!(sim.orders(KEY).is_empty(), "q left orders resting: {:?}", sim.orders(KEY));
}
