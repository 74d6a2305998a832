//! The [`Journal`] handle the exec thread holds: opening (migrate, WAL,
//! start the writer), queued and committed writes, and the queries that
//! read on a separate read-only connection.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::records::{
    BalanceSnapshot, FillOutcome, FillRecord, FillTotals, JournalStats, OrderEvent, OrderState, OrderStatus,
    PnlSnapshot, RttSample, RunId, RunInfo,
};
use super::schema::migrate;
use super::writer::{writer_loop, Cmd, Reply, SharedStats};
use super::{parse_side, JournalError, DEFAULT_QUEUE};
use crate::exec::inventory::{BalanceSource, Reconciliation};
use crate::exec::risk::Balance;
use crate::exec::Side;
use crate::hot::advice::Advice;
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::Symbol;

/// The journal: a handle owned by the exec thread. See the module docs.
pub struct Journal {
    path: PathBuf,
    /// `None` only while dropping.
    tx: Option<SyncSender<Cmd>>,
    capacity: usize,
    writer: Option<JoinHandle<()>>,
    /// Read-only connection for queries (WAL: reads never block the writer).
    reader: Connection,
    stats: Arc<SharedStats>,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`, migrates its schema
    /// to [`SCHEMA_VERSION`], switches it to WAL and starts the writer.
    pub fn open(path: impl AsRef<Path>) -> Result<Journal, JournalError> {
        Self::open_with_queue(path, DEFAULT_QUEUE)
    }

    /// [`Journal::open`] with a writer queue of `capacity` records (at
    /// least 1).
    pub fn open_with_queue(path: impl AsRef<Path>, capacity: usize) -> Result<Journal, JournalError> {
        let path = path.as_ref().to_path_buf();
        let capacity = capacity.max(1);
        let open_err = |source| JournalError::Open { path: path.clone(), source };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        // WAL: one writer beside any number of readers, and a commit is one
        // append + fsync. FULL: the fsync happens at every commit, which is
        // what "committed before acknowledged" needs (NORMAL could lose the
        // last commits on power loss). A busy timeout covers an operator's
        // sqlite3 shell holding a lock for a moment.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::NotWal { path, mode });
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
            .map_err(open_err)?;
        migrate(&mut conn)?;

        let reader =
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(open_err)?;
        reader.execute_batch("PRAGMA busy_timeout = 5000;").map_err(open_err)?;

        let stats = Arc::new(SharedStats::default());
        let (tx, rx) = mpsc::sync_channel(capacity);
        let writer_stats = stats.clone();
        let writer = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer_loop(conn, rx, &writer_stats))
            .map_err(JournalError::Spawn)?;
        Ok(Journal { path, tx: Some(tx), capacity, writer: Some(writer), reader, stats })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a new run and returns its id (waits for the commit).
    pub fn start_run(&self, info: RunInfo) -> Result<RunId, JournalError> {
        self.call(|reply| Cmd::StartRun(info, reply))
    }

    /// Marks `run` ended with `exit_status` (e.g. "ok", "killed: loss limit")
    /// and waits for the commit.
    pub fn end_run(&self, run: RunId, exit_status: &str, ended_ns: i64) -> Result<(), JournalError> {
        let exit_status = exit_status.to_string();
        self.call(|reply| Cmd::EndRun { run, exit_status, ended_ns, reply })
    }

    /// Queues one order state change; never waits on the disk.
    pub fn record_order(&self, event: OrderEvent) -> Result<(), JournalError> {
        self.queue(Cmd::Order(event))
    }

    /// Queues one piece of advice and what the call cost (USD, `None` when
    /// unpriced or offline); never waits on the disk.
    pub fn record_advice(&self, run: RunId, advice: &Advice, cost_usd: Option<f64>) -> Result<(), JournalError> {
        self.queue(Cmd::Advice { run, advice: *advice, cost_usd })
    }

    /// Queues a PnL snapshot; never waits on the disk.
    pub fn record_pnl(&self, snapshot: PnlSnapshot) -> Result<(), JournalError> {
        self.queue(Cmd::Pnl(snapshot))
    }

    /// Queues one request's round trip (a row of `order_rtt`); never waits
    /// on the disk.
    pub fn record_rtt(&self, sample: RttSample) -> Result<(), JournalError> {
        self.queue(Cmd::Rtt(sample))
    }

    /// Queues one asset's balance as the exchange reported it (a row of
    /// `balances`); never waits on the disk.
    pub fn record_balance(&self, snapshot: BalanceSnapshot) -> Result<(), JournalError> {
        self.queue(Cmd::Balance(snapshot))
    }

    /// Queues a comparison of `symbol`'s position with its base balance (a
    /// row of `reconciliations`); never waits on the disk.
    pub fn record_reconciliation(
        &self,
        run: RunId,
        symbol: Symbol,
        check: &Reconciliation,
    ) -> Result<(), JournalError> {
        self.queue(Cmd::Reconciliation { run, symbol, check: check.clone() })
    }

    /// Journals a fill and returns once it is committed to disk. A fill
    /// already journaled (same symbol and trade id) is left alone and
    /// reported as [`FillOutcome::Duplicate`]. This waits for queue space
    /// too: a fill is never refused for a backlog.
    pub fn record_fill(&self, fill: FillRecord) -> Result<FillOutcome, JournalError> {
        self.call(|reply| Cmd::Fill(fill, reply))
    }

    /// Waits until everything queued before this call is committed.
    pub fn flush(&self) -> Result<(), JournalError> {
        self.call(Cmd::Flush)
    }

    /// Latest state of every order of `run` that may still be working
    /// (`NEW`, `PARTIALLY_FILLED` or `UNKNOWN`), oldest first: what to ask
    /// the exchange about on start.
    pub fn open_orders(&self, run: RunId) -> Result<Vec<OrderState>, JournalError> {
        self.flush()?;
        let mut stmt = self.reader.prepare_cached(
            "SELECT id, run, client_id, exchange_id, symbol, side, price_e8, qty_e8, filled_e8, status, reason, time_ns
             FROM order_state WHERE run = ?1 AND status IN ('NEW', 'PARTIALLY_FILLED', 'UNKNOWN') ORDER BY id",
        )?;
        let rows = stmt.query_map([run.0], raw_order)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.decode()?);
        }
        Ok(out)
    }

    /// Latest state of the order with `client_id`, if it was ever journaled.
    pub fn last_state(&self, client_id: &str) -> Result<Option<OrderState>, JournalError> {
        self.flush()?;
        let mut stmt = self.reader.prepare_cached(
            "SELECT id, run, client_id, exchange_id, symbol, side, price_e8, qty_e8, filled_e8, status, reason, time_ns
             FROM orders WHERE client_id = ?1 ORDER BY id DESC LIMIT 1",
        )?;
        let raw = stmt.query_row([client_id], raw_order).optional()?;
        raw.map(RawOrder::decode).transpose()
    }

    /// Every journaled fill of `symbol`, in journal order (all runs).
    pub fn fills(&self, symbol: Symbol) -> Result<Vec<FillRecord>, JournalError> {
        self.flush()?;
        let mut stmt = self.reader.prepare_cached(
            "SELECT run, client_id, exchange_order_id, symbol, trade_id, side, price_e8, qty_e8, fee_e8, fee_asset,
                    maker, time_ns
             FROM fills WHERE symbol = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([symbol.as_str()], |r| {
            Ok((
                FillRecord {
                    run: RunId(r.get(0)?),
                    client_id: r.get(1)?,
                    exchange_order_id: r.get(2)?,
                    symbol,
                    trade_id: r.get(4)?,
                    side: Side::Buy,
                    price: Price(r.get(6)?),
                    qty: Qty(r.get(7)?),
                    fee: r.get(8)?,
                    fee_asset: r.get(9)?,
                    maker: r.get(10)?,
                    time_ns: r.get(11)?,
                },
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut f, side) = row?;
            f.side = parse_side(&side)?;
            out.push(f);
        }
        Ok(out)
    }

    /// The position of `symbol` rebuilt from every journaled fill (all
    /// runs), with fees per asset, for a symbol whose base and quote assets
    /// are not at hand: they are taken from the symbol's name and the fee
    /// assets seen (a fee asset the name ends with is the quote, one it
    /// starts with the base; Binance spot names are base + quote). When
    /// the assets are known (`SymbolRules`), prefer
    /// [`Journal::position_from_fills_in`].
    pub fn position_from_fills(&self, symbol: Symbol) -> Result<FillTotals, JournalError> {
        let fills = self.fills(symbol)?;
        let (base, quote) = split_symbol(symbol.as_str(), fills.iter().map(|f| f.fee_asset.as_str()));
        Ok(totals_of(fills, &base, &quote))
    }

    /// The position of `symbol` (trading `base_asset` against
    /// `quote_asset`) rebuilt from every journaled fill (all runs), with
    /// fees per asset. See [`FillTotals`].
    pub fn position_from_fills_in(
        &self,
        symbol: Symbol,
        base_asset: &str,
        quote_asset: &str,
    ) -> Result<FillTotals, JournalError> {
        Ok(totals_of(self.fills(symbol)?, base_asset, quote_asset))
    }

    /// Every balance snapshot of `run`, oldest first.
    pub fn balances(&self, run: RunId) -> Result<Vec<BalanceSnapshot>, JournalError> {
        self.flush()?;
        let mut stmt = self.reader.prepare_cached(
            "SELECT time_ns, asset, free_e8, locked_e8, source FROM balances WHERE run = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([run.0], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get::<_, String>(4)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (time_ns, asset, free, locked, source) = row?;
            let source = BalanceSource::parse(&source)
                .ok_or(JournalError::Corrupt { column: "balances.source", value: source })?;
            out.push(BalanceSnapshot { run, time_ns, asset, balance: Balance { free, locked }, source });
        }
        Ok(out)
    }

    /// The schema version the file is at.
    pub fn schema_version(&self) -> Result<i64, JournalError> {
        Ok(self.reader.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))?)
    }

    /// The writer's counters so far.
    pub fn stats(&self) -> JournalStats {
        let s = &self.stats;
        JournalStats {
            committed: s.committed.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            duplicate_fills: s.duplicate_fills.load(Ordering::Relaxed),
            last_error: s.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    /// Commits what is queued, stops the writer and returns its counters.
    /// Dropping the journal does the same, silently.
    pub fn close(mut self) -> JournalStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        // Closing the channel ends the writer's loop once it has drained it.
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }

    fn queue(&self, cmd: Cmd) -> Result<(), JournalError> {
        let tx = self.tx.as_ref().ok_or(JournalError::WriterGone)?;
        match tx.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                Err(JournalError::Backlog { capacity: self.capacity })
            }
            Err(TrySendError::Disconnected(_)) => Err(JournalError::WriterGone),
        }
    }

    /// Sends a command carrying a reply channel and waits for the reply.
    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, JournalError> {
        let tx = self.tx.as_ref().ok_or(JournalError::WriterGone)?;
        let (reply, answer) = mpsc::sync_channel(1);
        tx.send(make(reply)).map_err(|_| JournalError::WriterGone)?;
        answer.recv().map_err(|_| JournalError::WriterGone)?
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// An `orders` row as read, before its text columns are checked.
struct RawOrder {
    seq: i64,
    run: i64,
    client_id: String,
    exchange_id: Option<i64>,
    symbol: String,
    side: String,
    price: i64,
    qty: i64,
    filled: i64,
    status: String,
    reason: Option<String>,
    time_ns: i64,
}

fn raw_order(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawOrder> {
    Ok(RawOrder {
        seq: r.get(0)?,
        run: r.get(1)?,
        client_id: r.get(2)?,
        exchange_id: r.get(3)?,
        symbol: r.get(4)?,
        side: r.get(5)?,
        price: r.get(6)?,
        qty: r.get(7)?,
        filled: r.get(8)?,
        status: r.get(9)?,
        reason: r.get(10)?,
        time_ns: r.get(11)?,
    })
}

impl RawOrder {
    fn decode(self) -> Result<OrderState, JournalError> {
        let status = OrderStatus::parse(&self.status)
            .ok_or_else(|| JournalError::Corrupt { column: "orders.status", value: self.status.clone() })?;
        let symbol = Symbol::new(self.symbol.as_bytes());
        if symbol.is_empty() {
            return Err(JournalError::Corrupt { column: "orders.symbol", value: self.symbol });
        }
        Ok(OrderState {
            seq: self.seq,
            event: OrderEvent {
                run: RunId(self.run),
                client_id: self.client_id,
                exchange_id: self.exchange_id,
                symbol,
                side: parse_side(&self.side)?,
                price: Price(self.price),
                qty: Qty(self.qty),
                filled: Qty(self.filled),
                status,
                reason: self.reason,
                time_ns: self.time_ns,
            },
        })
    }
}

/// Replays `fills` into a position (commissions classified against `base`
/// and `quote`) and sums the commissions per asset.
fn totals_of(fills: Vec<FillRecord>, base: &str, quote: &str) -> FillTotals {
    let mut totals = FillTotals::default();
    for f in fills {
        totals.position.on_fill(&f.to_fill(base, quote));
        match totals.fees.binary_search_by(|(a, _)| a.as_str().cmp(&f.fee_asset)) {
            Ok(i) => totals.fees[i].1 = totals.fees[i].1.saturating_add(f.fee),
            Err(i) => totals.fees.insert(i, (f.fee_asset, f.fee)),
        }
    }
    totals
}

/// `symbol`'s (base, quote) guessed from its name and the commission
/// assets seen: one the name ends with is the quote, one it starts with
/// the base. Empty strings when nothing matches (fees then count as BNB or
/// other).
fn split_symbol<'a>(symbol: &str, fee_assets: impl Iterator<Item = &'a str> + Clone) -> (String, String) {
    let proper = |a: &&str| !a.is_empty() && a.len() < symbol.len();
    if let Some(q) = fee_assets.clone().filter(proper).find(|a| symbol.ends_with(*a)) {
        return (symbol[..symbol.len() - q.len()].to_string(), q.to_string());
    }
    if let Some(b) = fee_assets.filter(proper).find(|a| symbol.starts_with(*a)) {
        return (b.to_string(), symbol[b.len()..].to_string());
    }
    (String::new(), String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_split_from_fee_assets() {
        let s = |assets: &[&str]| split_symbol("BTCUSDT", assets.iter().copied());
        assert_eq!(s(&["BTC"]), ("BTC".into(), "USDT".into()));
        assert_eq!(s(&["BNB", "USDT"]), ("BTC".into(), "USDT".into()));
        assert_eq!(s(&["BNB"]), (String::new(), String::new()));
        assert_eq!(s(&["BTCUSDT", ""]), (String::new(), String::new()));
    }
}
