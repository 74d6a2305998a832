//! The trading journal on real SQLite files in temp dirs: schema and
//! migration (a version-1 file brought to version 2), every order state,
//! fills committed before `record_fill` returns, duplicate fills,
//! reconciliation queries (commissions in base, quote and BNB), balance and
//! reconciliation rows, and what survives a dropped writer and a crashed
//! process.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use mmbot::exec::inventory::{BalanceCheck, BalanceSource, BalanceTolerance};
use mmbot::exec::journal::{
    BalanceSnapshot, FillOutcome, FillRecord, Journal, JournalError, OrderEvent, OrderStatus, PnlSnapshot, RunId,
    RunInfo, RunMode, SCHEMA_VERSION,
};
use mmbot::exec::position::{BnbPrice, BnbPriceSource, Position};
use mmbot::exec::risk::Balance;
use mmbot::exec::{FeeAsset, Fill, Side};
use mmbot::hot::advice::{Advice, AdviceSource, Direction, SpreadState, Volatility};
use mmbot::hot::fixed::{Price, Qty, SCALE};
use mmbot::hot::msg::Symbol;
use rusqlite::Connection;

fn btc() -> Symbol {
    Symbol::new(b"BTCUSDT")
}

fn px(s: &str) -> Price {
    s.parse().unwrap()
}

fn qty(s: &str) -> Qty {
    s.parse().unwrap()
}

fn run_info(mode: RunMode) -> RunInfo {
    RunInfo { mode, symbols: vec!["BTCUSDT".into()], config_hash: "abc123".into(), started_ns: 1_000 }
}

fn order(run: RunId, client_id: &str, status: OrderStatus, filled: &str, time_ns: i64) -> OrderEvent {
    OrderEvent {
        run,
        client_id: client_id.into(),
        exchange_id: Some(42),
        symbol: btc(),
        side: Side::Buy,
        price: px("61837.63"),
        qty: qty("0.00123"),
        filled: qty(filled),
        status,
        reason: None,
        time_ns,
    }
}

fn fill(run: RunId, trade_id: i64, side: Side, price: &str, q: &str, fee: i64, fee_asset: &str) -> FillRecord {
    FillRecord {
        run,
        client_id: format!("c{trade_id}"),
        exchange_order_id: Some(7),
        symbol: btc(),
        trade_id,
        side,
        price: px(price),
        qty: qty(q),
        fee,
        fee_asset: fee_asset.into(),
        maker: true,
        time_ns: trade_id,
    }
}

/// A plain second connection, as an operator's sqlite3 shell would be.
fn peek(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn money(s: &str) -> i64 {
    px(s).0
}

#[test]
fn schema_is_created_and_reopening_migrates_nothing() {
    let dir = common::temp_dir("journal-schema");
    let path = dir.join("j.db");
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.schema_version().unwrap(), SCHEMA_VERSION);
    let run = j.start_run(run_info(RunMode::Paper)).unwrap();
    drop(j);

    let c = peek(&path);
    for name in
        ["schema_version", "runs", "orders", "fills", "advice", "pnl", "order_state", "balances", "reconciliations"]
    {
        let n = count(&c, &format!("SELECT COUNT(*) FROM sqlite_master WHERE name = '{name}'"));
        assert_eq!(n, 1, "{name} missing");
    }
    drop(c);

    // Opening again (twice) applies nothing and keeps the data.
    for _ in 0..2 {
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.schema_version().unwrap(), SCHEMA_VERSION);
        drop(j);
    }
    let c = peek(&path);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM schema_version"), SCHEMA_VERSION);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM runs"), 1);
    assert_eq!(count(&c, "SELECT MAX(id) FROM runs"), run.0);
}

#[test]
fn a_newer_schema_is_refused_not_migrated() {
    let dir = common::temp_dir("journal-newer");
    let path = dir.join("j.db");
    drop(Journal::open(&path).unwrap());
    peek(&path).execute("INSERT INTO schema_version (version, applied_ns) VALUES (99, 0)", []).unwrap();
    match Journal::open(&path) {
        Err(e @ JournalError::NewerSchema { found: 99, .. }) => {
            assert!(e.to_string().contains("newer"), "{e}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer schema opened"),
    }
}

#[test]
fn wal_mode_is_on() {
    let dir = common::temp_dir("journal-wal");
    let path = dir.join("j.db");
    let _j = Journal::open(&path).unwrap();
    let mode: String = peek(&path).query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn every_order_state_change_is_kept_and_the_latest_is_queryable() {
    let dir = common::temp_dir("journal-orders");
    let path = dir.join("j.db");
    let j = Journal::open(&path).unwrap();
    let run = j.start_run(run_info(RunMode::Live)).unwrap();

    // One order through NEW -> PARTIALLY_FILLED -> FILLED, and one order
    // ending in each other status.
    j.record_order(order(run, "a", OrderStatus::New, "0", 1)).unwrap();
    j.record_order(order(run, "a", OrderStatus::PartiallyFilled, "0.0005", 2)).unwrap();
    j.record_order(order(run, "a", OrderStatus::Filled, "0.00123", 3)).unwrap();
    for (i, status) in [OrderStatus::Canceled, OrderStatus::Rejected, OrderStatus::Expired, OrderStatus::Unknown]
        .into_iter()
        .enumerate()
    {
        let id = format!("o{i}");
        j.record_order(order(run, &id, OrderStatus::New, "0", 10)).unwrap();
        let mut e = order(run, &id, status, "0", 11);
        e.reason = Some(format!("why {}", status.as_str()));
        j.record_order(e).unwrap();
    }

    let a = j.last_state("a").unwrap().unwrap();
    assert_eq!(a.event, order(run, "a", OrderStatus::Filled, "0.00123", 3));
    for (i, status) in [OrderStatus::Canceled, OrderStatus::Rejected, OrderStatus::Expired, OrderStatus::Unknown]
        .into_iter()
        .enumerate()
    {
        let s = j.last_state(&format!("o{i}")).unwrap().unwrap();
        assert_eq!(s.event.status, status);
        assert_eq!(s.event.reason.as_deref(), Some(format!("why {}", status.as_str()).as_str()));
    }
    assert_eq!(j.last_state("never-sent").unwrap(), None);

    let c = peek(&path);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM orders WHERE client_id = 'a'"), 3);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM orders"), 11);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM order_state"), 5);
    let (status, filled): (String, String) = c
        .query_row("SELECT status, filled FROM order_state WHERE client_id = 'a'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((status.as_str(), filled.as_str()), ("FILLED", "0.00123"));
    // Exact decimal text beside the integer 1e-8 value.
    let (p, p8, q, q8): (String, i64, String, i64) = c
        .query_row("SELECT price, price_e8, qty, qty_e8 FROM orders WHERE client_id = 'a' LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!((p.as_str(), p8, q.as_str(), q8), ("61837.63", 6_183_763_000_000, "0.00123", 123_000));
}

#[test]
fn a_fill_is_committed_before_record_fill_returns() {
    let dir = common::temp_dir("journal-fill-commit");
    let path = dir.join("j.db");
    let j = Journal::open(&path).unwrap();
    let run = j.start_run(run_info(RunMode::Live)).unwrap();
    let other = peek(&path);
    for t in 1..=50 {
        // Queued order states ride along; the fill waits for its commit.
        j.record_order(order(run, &format!("c{t}"), OrderStatus::New, "0", t)).unwrap();
        assert_eq!(j.record_fill(fill(run, t, Side::Buy, "100", "0.01", 1, "BTC")).unwrap(), FillOutcome::Recorded);
        // A different connection sees the row at once: it is on disk.
        assert_eq!(count(&other, &format!("SELECT COUNT(*) FROM fills WHERE trade_id = {t}")), 1);
        // Everything queued before the fill is committed with it.
        assert_eq!(count(&other, "SELECT COUNT(*) FROM orders"), t);
    }
    let s = j.close();
    assert_eq!(s.failed, 0);
    assert_eq!(s.refused, 0);
}

#[test]
fn a_replayed_fill_is_ignored() {
    let dir = common::temp_dir("journal-dup");
    let path = dir.join("j.db");
    let j = Journal::open(&path).unwrap();
    let run = j.start_run(run_info(RunMode::Live)).unwrap();
    let f = fill(run, 900, Side::Buy, "100", "1", 100_000, "BTC");
    assert_eq!(j.record_fill(f.clone()).unwrap(), FillOutcome::Recorded);
    // After a reconnect the same execution report arrives again, even with
    // other fields differing (a later run, a new local time).
    let mut again = f.clone();
    again.time_ns += 5;
    assert_eq!(j.record_fill(again).unwrap(), FillOutcome::Duplicate);
    // Trade ids are per symbol: the same id on another symbol is a new fill.
    let mut eth = f.clone();
    eth.symbol = Symbol::new(b"ETHUSDT");
    assert_eq!(j.record_fill(eth).unwrap(), FillOutcome::Recorded);

    let totals = j.position_from_fills(btc()).unwrap();
    // The 0.001 BTC commission came out of the 1 BTC bought.
    assert_eq!(totals.position.qty(), qty("0.999"));
    assert_eq!(totals.position.fills(), 1);
    assert_eq!(totals.fee_in("BTC"), 100_000);
    assert_eq!(count(&peek(&path), "SELECT COUNT(*) FROM fills"), 2);
    // A fill that cannot be written (no such run) is an error the caller
    // sees, not a silent loss.
    match j.record_fill(fill(RunId(run.0 + 100), 901, Side::Buy, "100", "1", 0, "BTC")) {
        Err(JournalError::Write(msg)) => assert!(msg.contains("FOREIGN KEY"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let s = j.stats();
    assert_eq!(s.duplicate_fills, 1);
    // start_run and three fills written (the duplicate counts: it was
    // answered); the failed one is not.
    assert_eq!(s.committed, 4);
}

#[test]
fn reconciliation_queries_find_open_orders_and_rebuild_the_position() {
    let dir = common::temp_dir("journal-reconcile");
    let path = dir.join("j.db");
    let j = Journal::open(&path).unwrap();
    let old = j.start_run(run_info(RunMode::Live)).unwrap();
    let run = j.start_run(run_info(RunMode::Live)).unwrap();
    assert!(run.0 > old.0);

    j.record_order(order(old, "old-open", OrderStatus::New, "0", 1)).unwrap();
    j.record_order(order(run, "new", OrderStatus::New, "0", 2)).unwrap();
    j.record_order(order(run, "partial", OrderStatus::New, "0", 3)).unwrap();
    j.record_order(order(run, "partial", OrderStatus::PartiallyFilled, "0.0001", 4)).unwrap();
    j.record_order(order(run, "done", OrderStatus::New, "0", 5)).unwrap();
    j.record_order(order(run, "done", OrderStatus::Filled, "0.00123", 6)).unwrap();
    j.record_order(order(run, "timed-out", OrderStatus::Unknown, "0", 7)).unwrap();
    j.record_order(order(run, "gone", OrderStatus::New, "0", 8)).unwrap();
    j.record_order(order(run, "gone", OrderStatus::Canceled, "0", 9)).unwrap();

    let open: Vec<(String, OrderStatus)> =
        j.open_orders(run).unwrap().into_iter().map(|s| (s.event.client_id, s.event.status)).collect();
    assert_eq!(
        open,
        [
            ("new".to_string(), OrderStatus::New),
            ("partial".to_string(), OrderStatus::PartiallyFilled),
            ("timed-out".to_string(), OrderStatus::Unknown),
        ]
    );
    let old_open = j.open_orders(old).unwrap();
    assert_eq!(old_open.len(), 1);
    assert_eq!(old_open[0].event.client_id, "old-open");

    // Position: buy 1 @ 100, buy 3 @ 104 (avg 103), sell 2 @ 110 (realize
    // 2 * 7 = 14); fees in two assets.
    j.record_fill(fill(old, 1, Side::Buy, "100", "1", 100_000, "BTC")).unwrap();
    j.record_fill(fill(run, 2, Side::Buy, "104", "3", 300_000, "BTC")).unwrap();
    j.record_fill(fill(run, 3, Side::Sell, "110", "2", 22_000_000, "USDT")).unwrap();
    // The buys' 0.004 BTC of commission is not inventory: 4 - 0.004 - 2.
    let t = j.position_from_fills(btc()).unwrap();
    assert_eq!(t.position.qty(), qty("1.996"));
    assert_eq!(t.position.avg_entry(), px("103"));
    assert_eq!(t.position.realized(), 14 * SCALE);
    // Base fees at their fills' prices (0.001 x 100 + 0.003 x 104 = 0.412)
    // plus the quote fee 0.22.
    assert_eq!(t.position.fees(), 63_200_000);
    let by = t.position.fees_by_asset();
    assert_eq!((by.base, by.base_value, by.quote, by.bnb), (400_000, 41_200_000, 22_000_000, 0));
    assert_eq!(t.fees, [("BTC".to_string(), 400_000), ("USDT".to_string(), 22_000_000)]);
    assert_eq!(j.position_from_fills_in(btc(), "BTC", "USDT").unwrap(), t);

    // The same replay in memory gives the same position.
    let mut p = Position::new();
    for f in j.fills(btc()).unwrap() {
        let as_fill: Fill = f.to_fill("BTC", "USDT");
        p.on_fill(&as_fill);
    }
    assert_eq!(p, t.position);
    // Net PnL is the balances' change: -100 - 312 + 220 - 0.22 USDT and
    // 1.996 BTC at 110.
    assert_eq!(p.pnl(px("110")), p.equity_change(px("110")));
    assert_eq!(p.pnl(px("110")), money("27.34"));
    assert!(j.position_from_fills(Symbol::new(b"ETHUSDT")).unwrap().position.qty().is_zero());
}

#[test]
fn runs_advice_and_pnl_are_written() {
    let dir = common::temp_dir("journal-rows");
    let path = dir.join("j.db");
    let j = Journal::open(&path).unwrap();
    let run = j.start_run(run_info(RunMode::Testnet)).unwrap();
    let advice = Advice {
        spread: SpreadState::Wide,
        volatility: Volatility::High,
        direction: Direction::Up,
        confidence: 80,
        multiplier: 1.25,
        source: AdviceSource::Llm,
        received_ns: 5_000,
        ttl_ns: 30_000_000_000,
        apply_multiplier: false,
    };
    j.record_advice(run, &advice, Some(0.0012)).unwrap();
    let mut pos = Position::new();
    pos.on_fill(&Fill {
        symbol: btc(),
        order_id: 1,
        side: Side::Buy,
        price: px("100"),
        qty: qty("0.5"),
        fee: 5_000_000,
        fee_asset: FeeAsset::Quote,
        time_ns: 0,
        maker: true,
    });
    j.record_pnl(PnlSnapshot::of(run, btc(), &pos, px("101.5"), 6_000)).unwrap();
    j.end_run(run, "ok", 9_000).unwrap();
    assert!(j.end_run(RunId(run.0 + 100), "ok", 9_000).is_err(), "ending a run that does not exist");

    let c = peek(&path);
    let row: (String, String, String, String, i64, f64, f64) = c
        .query_row(
            "SELECT source, spread, volatility, direction, confidence, multiplier, cost_usd FROM advice",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )
        .unwrap();
    assert_eq!(row, ("llm".into(), "wide".into(), "high".into(), "up".into(), 80, 1.25, 0.0012));
    let pnl: (String, String, i64, String) = c
        .query_row("SELECT position, unrealized, unrealized_e8, fees FROM pnl", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!(pnl, ("0.5".into(), "0.75".into(), 75_000_000, "0.05".into()));
    let fees: (i64, i64, i64, i64, i64, Option<i64>) = c
        .query_row(
            "SELECT fee_quote_e8, fee_base_e8, fee_base_value_e8, fee_bnb_e8, fee_other_e8, bnb_price_e8 FROM pnl",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .unwrap();
    assert_eq!(fees, (5_000_000, 0, 0, 0, 0, None));
    let (mode, ended, status): (String, i64, String) = c
        .query_row("SELECT mode, ended_ns, exit_status FROM runs WHERE id = ?1", [run.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((mode.as_str(), ended, status.as_str()), ("testnet", 9_000, "ok"));
}

#[test]
fn dropping_the_journal_mid_stream_loses_nothing_queued() {
    let dir = common::temp_dir("journal-drop");
    let path = dir.join("j.db");
    let j = Journal::open(&path).unwrap();
    let run = j.start_run(run_info(RunMode::Live)).unwrap();
    let mut fills = 0;
    for i in 0..2_000i64 {
        j.record_order(order(run, &format!("o{i}"), OrderStatus::New, "0", i)).unwrap();
        if i % 100 == 0 {
            j.record_fill(fill(run, i, Side::Buy, "1", "1", 0, "BTC")).unwrap();
            fills += 1;
        }
    }
    // Dropped with records still queued: the writer drains them first.
    drop(j);

    let j = Journal::open(&path).unwrap();
    assert_eq!(j.position_from_fills(btc()).unwrap().position.fills(), fills);
    assert_eq!(j.last_state("o1999").unwrap().unwrap().event.status, OrderStatus::New);
    assert_eq!(count(&peek(&path), "SELECT COUNT(*) FROM orders"), 2_000);
}

#[test]
fn a_full_queue_refuses_records_instead_of_waiting_on_the_disk() {
    let dir = common::temp_dir("journal-backlog");
    let path = dir.join("j.db");
    let j = Journal::open_with_queue(&path, 4).unwrap();
    let run = j.start_run(run_info(RunMode::Live)).unwrap();

    // Another connection holds the write lock: the writer is stuck waiting
    // for it, as it would be on a stalled disk.
    let blocker = peek(&path);
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let start = Instant::now();
    let mut refused = 0;
    for i in 0..100 {
        match j.record_order(order(run, &format!("o{i}"), OrderStatus::New, "0", i)) {
            Ok(()) => {}
            Err(JournalError::Backlog { capacity: 4 }) => refused += 1,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert!(start.elapsed() < Duration::from_secs(2), "record_order waited: {:?}", start.elapsed());
    assert!(refused > 0, "a queue of 4 took 100 records while the writer was blocked");
    blocker.execute_batch("COMMIT").unwrap();

    j.flush().unwrap();
    let s = j.stats();
    assert_eq!(s.refused, refused);
    assert_eq!(s.failed, 0, "{:?}", s.last_error);
    assert_eq!(count(&peek(&path), "SELECT COUNT(*) FROM orders"), 100 - refused as i64);
}

/// Env var that turns [`crash_child`] into the crashing child process.
const CRASH_DIR: &str = "MMBOT_JOURNAL_CRASH_DIR";

/// Not a test on its own: the child process of
/// [`a_crash_loses_no_acknowledged_fill`]. Without its env var it returns.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR) else { return };
    let dir = Path::new(&dir);
    let j = Journal::open(dir.join("j.db")).unwrap();
    let run = j.start_run(run_info(RunMode::Live)).unwrap();
    let mut acked = std::fs::File::create(dir.join("acked.txt")).unwrap();
    for t in 1..=200i64 {
        for k in 0..5 {
            let _ = j.record_order(order(run, &format!("o{t}-{k}"), OrderStatus::New, "0", t));
        }
        j.record_fill(fill(run, t, Side::Buy, "1", "1", 0, "BTC")).unwrap();
        // Unbuffered: each line is a write(2), so it survives the abort.
        writeln!(acked, "{t}").unwrap();
    }
    // Queue more and die before the writer can commit it all.
    for k in 0..1_000 {
        let _ = j.record_order(order(run, &format!("late{k}"), OrderStatus::New, "0", 0));
    }
    std::process::abort();
}

#[test]
fn a_crash_loses_no_acknowledged_fill() {
    let dir = common::temp_dir("journal-crash");
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CRASH_DIR, &dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was meant to abort");

    let acked: Vec<i64> =
        std::fs::read_to_string(dir.join("acked.txt")).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(acked.len(), 200, "the child died before its last fill");

    let path = dir.join("j.db");
    let j = Journal::open(&path).unwrap();
    let c = peek(&path);
    for t in &acked {
        assert_eq!(count(&c, &format!("SELECT COUNT(*) FROM fills WHERE trade_id = {t}")), 1, "fill {t} lost");
    }
    // Every order queued before an acknowledged fill was committed with it.
    assert!(count(&c, "SELECT COUNT(*) FROM orders WHERE client_id NOT LIKE 'late%'") >= 1_000);
    assert_eq!(j.position_from_fills(btc()).unwrap().position.qty(), qty("200"));
}

/// Every example query in docs/journal.md runs on a filled journal and
/// returns rows (the DDL block is skipped: its tables exist).
#[test]
fn the_documented_queries_run() {
    let dir = common::temp_dir("journal-docs");
    let path = dir.join("j.db");
    let j = Journal::open(&path).unwrap();
    let run = j.start_run(run_info(RunMode::Live)).unwrap();
    j.record_order(order(run, "mm-42-17", OrderStatus::New, "0", 1_000_000_000)).unwrap();
    j.record_order(order(run, "mm-42-17", OrderStatus::PartiallyFilled, "0.0001", 2_000_000_000)).unwrap();
    j.record_fill(fill(run, 1, Side::Buy, "61837.63", "0.0001", 100, "BTC")).unwrap();
    j.record_advice(run, &Advice { received_ns: 3_000_000_000, ..Advice::neutral() }, Some(0.001)).unwrap();
    let mut pos = Position::new();
    pos.set_bnb_price(Some(BnbPrice { price: px("600"), source: BnbPriceSource::Mid }));
    pos.on_fill(&j.fills(btc()).unwrap()[0].to_fill("BTC", "USDT"));
    j.record_pnl(PnlSnapshot::of(run, btc(), &pos, px("61837.63"), 4_000_000_000)).unwrap();
    record_balances(&j, run, &pos);
    j.flush().unwrap();

    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/journal.md")).unwrap();
    let blocks: Vec<&str> = doc
        .split("```sql\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .filter(|b| !b.contains("CREATE"))
        .collect();
    assert!(blocks.len() >= 8, "found {} example queries", blocks.len());
    let c = peek(&path);
    for sql in blocks {
        let mut stmt = c.prepare(sql).unwrap_or_else(|e| panic!("{sql}\n{e}"));
        let n = stmt.query_map([], |_| Ok(())).unwrap().count();
        assert!(n > 0, "no rows from\n{sql}");
    }
}

/// What a live run journals on every balance refresh: the base and quote
/// balances, and the comparison of the position with the base balance.
fn record_balances(j: &Journal, run: RunId, pos: &Position) {
    let start = Balance { free: money("0.5"), locked: 0 };
    let tol = BalanceTolerance { warn: qty("0.00001"), kill: qty("0.0001") };
    let mut check = BalanceCheck::new("BTC", tol, start, Qty::ZERO);
    j.record_balance(BalanceSnapshot {
        run,
        time_ns: 1_000_000_000,
        asset: "BTC".into(),
        balance: start,
        source: BalanceSource::Start,
    })
    .unwrap();
    // The fill added its quantity less the base commission.
    let now = Balance { free: start.free + pos.base_delta().0 - 5_000, locked: 5_000 };
    for (asset, balance) in [("BTC", now), ("USDT", Balance { free: money("1000"), locked: money("6.18") })] {
        let source = BalanceSource::Stream;
        j.record_balance(BalanceSnapshot { run, time_ns: 5_000_000_000, asset: asset.into(), balance, source })
            .unwrap();
    }
    let r = check.observe(pos.qty(), now, BalanceSource::Stream, 5_000_000_000);
    j.record_reconciliation(run, btc(), &r).unwrap();
    let drifted = Balance { free: now.free - 2, ..now };
    j.record_reconciliation(run, btc(), &check.observe(pos.qty(), drifted, BalanceSource::Rest, 6_000_000_000))
        .unwrap();
    // And the order requests' round trips.
    for (method, via, ms) in [("place", "ws_api", 3), ("place", "ws_api", 5), ("cancel", "rest", 9)] {
        let sample =
            mmbot::exec::journal::RttSample { run, time_ns: 7_000_000_000, method, via, rtt_ns: ms * 1_000_000 };
        j.record_rtt(sample).unwrap();
    }
}

#[test]
fn balances_and_reconciliations_are_rows() {
    let dir = common::temp_dir("journal-balances");
    let path = dir.join("j.db");
    let j = Journal::open(&path).unwrap();
    let run = j.start_run(run_info(RunMode::Live)).unwrap();
    j.record_fill(fill(run, 1, Side::Buy, "100", "0.01", 1_000, "BTC")).unwrap();
    let pos = j.position_from_fills(btc()).unwrap().position;
    assert_eq!(pos.qty(), qty("0.00999"));
    record_balances(&j, run, &pos);

    let b = j.balances(run).unwrap();
    assert_eq!(b.len(), 3);
    assert_eq!((b[0].asset.as_str(), b[0].source, b[0].balance.free), ("BTC", BalanceSource::Start, money("0.5")));
    assert_eq!((b[2].asset.as_str(), b[2].balance.locked), ("USDT", money("6.18")));
    let c = peek(&path);
    let rows: Vec<(String, String, String, i64, String)> = c
        .prepare("SELECT source, position, account, drift_e8, verdict FROM reconciliations ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [
            ("stream".into(), "0.00999".into(), "0.00999".into(), 0, "ok".into()),
            ("rest".into(), "0.00999".into(), "0.00998998".into(), 2, "ok".into()),
        ]
    );
    let (balance, start): (String, i64) = c
        .query_row("SELECT balance, start_balance_e8 FROM reconciliations LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((balance.as_str(), start), ("0.50999", money("0.5")));
}

/// BNB commissions: inventory untouched, fees valued at the BNB price the
/// snapshot records.
#[test]
fn bnb_commissions_reach_the_pnl_snapshot() {
    let dir = common::temp_dir("journal-bnb");
    let path = dir.join("j.db");
    let j = Journal::open(&path).unwrap();
    let run = j.start_run(run_info(RunMode::Live)).unwrap();
    j.record_fill(fill(run, 1, Side::Buy, "100", "1", 50_000, "BNB")).unwrap();
    let mut pos = j.position_from_fills(btc()).unwrap().position;
    assert_eq!(pos.qty(), qty("1"));
    assert!(pos.has_unpriced_fees());
    pos.set_bnb_price(Some(BnbPrice { price: px("600"), source: BnbPriceSource::Config }));
    j.record_pnl(PnlSnapshot::of(run, btc(), &pos, px("100"), 1)).unwrap();
    j.flush().unwrap();
    let row: (i64, i64, String, String) = peek(&path)
        .query_row("SELECT fees_e8, fee_bnb_e8, bnb_price, bnb_price_source FROM pnl", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!(row, (money("0.3"), 50_000, "600".into(), "config".into()));
}
