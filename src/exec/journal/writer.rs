//! The journal's writer thread: it owns the read-write connection, takes
//! commands from a bounded channel, commits them in batches (one
//! transaction and one fsync per batch) and answers the callers that wait
//! for a commit. See the parent module's docs for the guarantees.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Mutex;

use rusqlite::{params, Connection, Transaction};

use super::records::{BalanceSnapshot, FillOutcome, FillRecord, OrderEvent, PnlSnapshot, RttSample, RunId, RunInfo};
use super::{side_str, JournalError};
use crate::exec::inventory::Reconciliation;
use crate::hot::advice::{Advice, AdviceSource, Direction, SpreadState, Volatility};
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::Symbol;

/// Most records committed in one transaction: bounds the time a fill waits
/// behind queued records.
const MAX_BATCH: usize = 512;

#[derive(Default)]
pub(super) struct SharedStats {
    pub(super) committed: AtomicU64,
    pub(super) batches: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) duplicate_fills: AtomicU64,
    pub(super) last_error: Mutex<Option<String>>,
}

impl SharedStats {
    pub(super) fn fail(&self, n: u64, msg: String) {
        self.failed.fetch_add(n, Ordering::Relaxed);
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(msg);
        }
    }
}

pub(super) type Reply<T> = SyncSender<Result<T, JournalError>>;

/// A unit of work for the writer thread.
pub(super) enum Cmd {
    Order(OrderEvent),
    Advice { run: RunId, advice: Advice, cost_usd: Option<f64> },
    Pnl(PnlSnapshot),
    Balance(BalanceSnapshot),
    Rtt(RttSample),
    Reconciliation { run: RunId, symbol: Symbol, check: Reconciliation },
    Fill(FillRecord, Reply<FillOutcome>),
    StartRun(RunInfo, Reply<RunId>),
    EndRun { run: RunId, exit_status: String, ended_ns: i64, reply: Reply<()> },
    Flush(Reply<()>),
}

/// The writer thread: takes a command, gathers what else is queued (up to
/// [`MAX_BATCH`]), commits them in one transaction, then answers waiters.
pub(super) fn writer_loop(mut conn: Connection, rx: Receiver<Cmd>, stats: &SharedStats) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        write_batch(&mut conn, &mut batch, stats);
    }
    // Leave the WAL folded into the main file when the journal closes
    // cleanly (a reader elsewhere may keep it from truncating; harmless).
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

/// A reply owed once the batch's commit is known.
enum Pending {
    Fill(Reply<FillOutcome>, Result<FillOutcome, String>),
    Run(Reply<RunId>, Result<RunId, String>),
    Unit(Reply<()>, Result<(), String>),
    Flush(Reply<()>),
}

fn write_batch(conn: &mut Connection, batch: &mut Vec<Cmd>, stats: &SharedStats) {
    let n = batch.len() as u64;
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let msg = e.to_string();
            for cmd in batch.drain(..) {
                answer_failed(cmd, &msg);
            }
            stats.fail(n, msg);
            return;
        }
    };
    let mut pending = Vec::new();
    let mut queued_ok = 0u64;
    let mut dups = 0u64;
    for cmd in batch.drain(..) {
        match cmd {
            Cmd::Order(e) => match insert_order(&tx, &e) {
                Ok(()) => queued_ok += 1,
                Err(e) => stats.fail(1, format!("order: {e}")),
            },
            Cmd::Advice { run, advice, cost_usd } => match insert_advice(&tx, run, &advice, cost_usd) {
                Ok(()) => queued_ok += 1,
                Err(e) => stats.fail(1, format!("advice: {e}")),
            },
            Cmd::Pnl(p) => match insert_pnl(&tx, &p) {
                Ok(()) => queued_ok += 1,
                Err(e) => stats.fail(1, format!("pnl: {e}")),
            },
            Cmd::Balance(b) => match insert_balance(&tx, &b) {
                Ok(()) => queued_ok += 1,
                Err(e) => stats.fail(1, format!("balance: {e}")),
            },
            Cmd::Rtt(r) => match insert_rtt(&tx, &r) {
                Ok(()) => queued_ok += 1,
                Err(e) => stats.fail(1, format!("order_rtt: {e}")),
            },
            Cmd::Reconciliation { run, symbol, check } => match insert_reconciliation(&tx, run, symbol, &check) {
                Ok(()) => queued_ok += 1,
                Err(e) => stats.fail(1, format!("reconciliation: {e}")),
            },
            Cmd::Fill(f, reply) => {
                let r = insert_fill(&tx, &f).map_err(|e| e.to_string());
                if r == Ok(FillOutcome::Duplicate) {
                    dups += 1;
                }
                pending.push(Pending::Fill(reply, r));
            }
            Cmd::StartRun(info, reply) => {
                let r = insert_run(&tx, &info).map_err(|e| e.to_string());
                pending.push(Pending::Run(reply, r));
            }
            Cmd::EndRun { run, exit_status, ended_ns, reply } => {
                let r = tx
                    .execute(
                        "UPDATE runs SET ended_ns = ?2, exit_status = ?3 WHERE id = ?1",
                        params![run.0, ended_ns, exit_status],
                    )
                    .map_err(|e| e.to_string())
                    .and_then(|n| if n == 1 { Ok(()) } else { Err(format!("no run {}", run.0)) });
                pending.push(Pending::Unit(reply, r));
            }
            Cmd::Flush(reply) => pending.push(Pending::Flush(reply)),
        }
    }
    match tx.commit() {
        Ok(()) => {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            // Flushes are barriers, not records.
            let answered_ok = pending.iter().filter(|p| p.is_ok() && !p.is_flush()).count() as u64;
            stats.committed.fetch_add(queued_ok + answered_ok, Ordering::Relaxed);
            stats.duplicate_fills.fetch_add(dups, Ordering::Relaxed);
            for p in pending {
                p.answer(None);
            }
        }
        Err(e) => {
            // Nothing of this batch is on disk: everyone hears so.
            let msg = format!("commit: {e}");
            stats.fail(queued_ok, msg.clone());
            for p in pending {
                p.answer(Some(&msg));
            }
        }
    }
}

impl Pending {
    fn is_ok(&self) -> bool {
        match self {
            Pending::Fill(_, r) => r.is_ok(),
            Pending::Run(_, r) => r.is_ok(),
            Pending::Unit(_, r) => r.is_ok(),
            Pending::Flush(_) => true,
        }
    }

    fn is_flush(&self) -> bool {
        matches!(self, Pending::Flush(_))
    }

    /// Sends the result, or `commit_failed` when the batch did not commit.
    /// A waiter that has gone away is no one's concern.
    fn answer(self, commit_failed: Option<&str>) {
        fn out<T>(r: Result<T, String>, commit_failed: Option<&str>) -> Result<T, JournalError> {
            match commit_failed {
                Some(m) => Err(JournalError::Write(m.to_string())),
                None => r.map_err(JournalError::Write),
            }
        }
        match self {
            Pending::Fill(tx, r) => drop(tx.send(out(r, commit_failed))),
            Pending::Run(tx, r) => drop(tx.send(out(r, commit_failed))),
            Pending::Unit(tx, r) => drop(tx.send(out(r, commit_failed))),
            Pending::Flush(tx) => drop(tx.send(out(Ok(()), commit_failed))),
        }
    }
}

/// Answers a command's waiter, if it has one, with a failure.
fn answer_failed(cmd: Cmd, msg: &str) {
    fn err<T>(msg: &str) -> Result<T, JournalError> {
        Err(JournalError::Write(msg.to_string()))
    }
    match cmd {
        Cmd::Fill(_, r) => drop(r.send(err(msg))),
        Cmd::StartRun(_, r) => drop(r.send(err(msg))),
        Cmd::EndRun { reply, .. } | Cmd::Flush(reply) => drop(reply.send(err(msg))),
        Cmd::Order(_)
        | Cmd::Advice { .. }
        | Cmd::Pnl(_)
        | Cmd::Balance(_)
        | Cmd::Rtt(_)
        | Cmd::Reconciliation { .. } => {}
    }
}

fn insert_run(tx: &Transaction<'_>, info: &RunInfo) -> rusqlite::Result<RunId> {
    tx.execute(
        "INSERT INTO runs (started_ns, mode, symbols, config_hash) VALUES (?1, ?2, ?3, ?4)",
        params![info.started_ns, info.mode.as_str(), info.symbols.join(","), info.config_hash],
    )?;
    Ok(RunId(tx.last_insert_rowid()))
}

fn insert_order(tx: &Transaction<'_>, e: &OrderEvent) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO orders (run, client_id, exchange_id, symbol, side, price, price_e8, qty, qty_e8, filled,
                             filled_e8, status, reason, time_ns)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    stmt.execute(params![
        e.run.0,
        e.client_id,
        e.exchange_id,
        e.symbol.as_str(),
        side_str(e.side),
        e.price.to_string(),
        e.price.0,
        e.qty.to_string(),
        e.qty.0,
        e.filled.to_string(),
        e.filled.0,
        e.status.as_str(),
        e.reason,
        e.time_ns,
    ])?;
    Ok(())
}

fn insert_fill(tx: &Transaction<'_>, f: &FillRecord) -> rusqlite::Result<FillOutcome> {
    // OR IGNORE: the UNIQUE (symbol, trade_id) constraint turns a replayed
    // fill into a no-op, seen as zero rows changed.
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO fills (run, client_id, exchange_order_id, symbol, trade_id, side, price, price_e8, qty,
                                      qty_e8, fee, fee_e8, fee_asset, maker, time_ns)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    let n = stmt.execute(params![
        f.run.0,
        f.client_id,
        f.exchange_order_id,
        f.symbol.as_str(),
        f.trade_id,
        side_str(f.side),
        f.price.to_string(),
        f.price.0,
        f.qty.to_string(),
        f.qty.0,
        Price(f.fee).to_string(),
        f.fee,
        f.fee_asset,
        f.maker,
        f.time_ns,
    ])?;
    Ok(if n == 0 { FillOutcome::Duplicate } else { FillOutcome::Recorded })
}

fn insert_advice(tx: &Transaction<'_>, run: RunId, a: &Advice, cost_usd: Option<f64>) -> rusqlite::Result<()> {
    let source = match a.source {
        AdviceSource::None => "none",
        AdviceSource::Offline => "offline",
        AdviceSource::Llm => "llm",
    };
    let spread = match a.spread {
        SpreadState::Narrow => "narrow",
        SpreadState::Normal => "normal",
        SpreadState::Wide => "wide",
    };
    let volatility = match a.volatility {
        Volatility::Low => "low",
        Volatility::Medium => "medium",
        Volatility::High => "high",
    };
    let direction = match a.direction {
        Direction::Up => "up",
        Direction::Down => "down",
        Direction::Sideways => "sideways",
        Direction::Neutral => "neutral",
    };
    let mut stmt = tx.prepare_cached(
        "INSERT INTO advice (run, time_ns, source, spread, volatility, direction, confidence, multiplier, ttl_ns,
                             cost_usd)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    stmt.execute(params![
        run.0,
        a.received_ns,
        source,
        spread,
        volatility,
        direction,
        a.confidence,
        a.multiplier,
        a.ttl_ns,
        cost_usd
    ])?;
    Ok(())
}

fn insert_pnl(tx: &Transaction<'_>, p: &PnlSnapshot) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO pnl (run, time_ns, symbol, position, position_e8, avg_entry, avg_entry_e8, mark, mark_e8,
                          realized, realized_e8, unrealized, unrealized_e8, fees, fees_e8,
                          fee_quote, fee_quote_e8, fee_base, fee_base_e8, fee_base_value, fee_base_value_e8,
                          fee_bnb, fee_bnb_e8, fee_other, fee_other_e8, bnb_price, bnb_price_e8,
                          bnb_price_source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                 ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)",
    )?;
    let money = |v: i64| Price(v).to_string();
    let f = &p.fees_by_asset;
    stmt.execute(params![
        p.run.0,
        p.time_ns,
        p.symbol.as_str(),
        p.position.to_string(),
        p.position.0,
        p.avg_entry.to_string(),
        p.avg_entry.0,
        p.mark.to_string(),
        p.mark.0,
        money(p.realized),
        p.realized,
        money(p.unrealized),
        p.unrealized,
        money(p.fees),
        p.fees,
        money(f.quote),
        f.quote,
        money(f.base),
        f.base,
        money(f.base_value),
        f.base_value,
        money(f.bnb),
        f.bnb,
        money(f.other),
        f.other,
        p.bnb_price.map(|b| b.price.to_string()),
        p.bnb_price.map(|b| b.price.0),
        p.bnb_price.map(|b| b.source.as_str()),
    ])?;
    Ok(())
}

fn insert_rtt(tx: &Transaction<'_>, r: &RttSample) -> rusqlite::Result<()> {
    let mut stmt =
        tx.prepare_cached("INSERT INTO order_rtt (run, time_ns, method, via, rtt_ns) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    stmt.execute(params![r.run.0, r.time_ns, r.method, r.via, r.rtt_ns])?;
    Ok(())
}

fn insert_balance(tx: &Transaction<'_>, b: &BalanceSnapshot) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO balances (run, time_ns, asset, free, free_e8, locked, locked_e8, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    stmt.execute(params![
        b.run.0,
        b.time_ns,
        b.asset,
        Qty(b.balance.free).to_string(),
        b.balance.free,
        Qty(b.balance.locked).to_string(),
        b.balance.locked,
        b.source.as_str(),
    ])?;
    Ok(())
}

fn insert_reconciliation(tx: &Transaction<'_>, run: RunId, symbol: Symbol, r: &Reconciliation) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO reconciliations (run, time_ns, symbol, asset, source, balance, balance_e8, start_balance,
                                      start_balance_e8, carried, carried_e8, position, position_e8, account,
                                      account_e8, drift, drift_e8, verdict)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?;
    let balance = r.balance.free.saturating_add(r.balance.locked);
    let amount = |v: i64| Qty(v).to_string();
    stmt.execute(params![
        run.0,
        r.time_ns,
        symbol.as_str(),
        r.asset,
        r.source.as_str(),
        amount(balance),
        balance,
        amount(r.start_balance),
        r.start_balance,
        amount(r.carried.0),
        r.carried.0,
        amount(r.position.0),
        r.position.0,
        amount(r.account.0),
        r.account.0,
        amount(r.drift),
        r.drift,
        r.verdict.as_str(),
    ])?;
    Ok(())
}
