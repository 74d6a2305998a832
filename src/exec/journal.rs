//! The trading journal: a SQLite file that records every run, every order
//! state change, every fill, every piece of advice and periodic PnL
//! snapshots, so that a live run can be audited afterwards and a restarted
//! run can reconcile against what it did before it stopped.
//!
//! Why SQLite: the journal must survive a crash with nothing committed lost,
//! be queryable by an operator with the `sqlite3` shell while the bot runs,
//! and need no server. WAL mode lets readers (reconciliation, reports, a
//! human) read beside the single writer without blocking it.
//!
//! # Threads
//!
//! [`Journal`] lives on the exec thread (never the hot thread). Writes go to
//! a journal writer thread through a bounded channel, and the writer commits
//! them in batches (one transaction and one fsync per batch):
//! - order states, advice and PnL snapshots are queued and the call returns
//!   at once; a full queue is refused with [`JournalError::Backlog`] rather
//!   than waited on, so the exec thread never waits on the disk for them;
//! - [`Journal::record_fill`] returns only once the fill is committed
//!   (`synchronous = FULL`), so each fill is on disk before the caller
//!   applies it to its in-memory position. A fill replayed after a reconnect
//!   (same symbol and trade id) is ignored and reported as
//!   [`FillOutcome::Duplicate`], so it is never counted twice;
//! - [`Journal::start_run`], [`Journal::end_run`] and [`Journal::flush`]
//!   also wait for their commit (they happen once per run).
//!
//! Queries ([`Journal::open_orders`], [`Journal::last_state`],
//! [`Journal::position_from_fills`]) first wait until everything queued
//! before them is committed, then read on a separate read-only connection,
//! so they see the caller's own writes.
//!
//! Dropping the [`Journal`] closes the channel; the writer commits what is
//! still queued and exits, and the drop waits for it.
//!
//! # Schema (version 1)
//!
//! Prices, quantities and money are stored twice: as the exact decimal text
//! of the fixed-point value (`price`, e.g. `"61837.63"`) for people, and as
//! the integer count of 1e-8 (`price_e8`) for queries and for reading back.
//! Times are integer ns since the Unix epoch (`time_ns`).
//!
//! - `schema_version(version, applied_ns)`: one row per applied migration.
//! - `runs(id, started_ns, ended_ns, mode, symbols, config_hash,
//!   exit_status)`: `mode` is `paper`/`live`/`testnet`; `ended_ns` and
//!   `exit_status` stay NULL for a run that never ended cleanly.
//! - `orders(id, run, client_id, exchange_id, symbol, side, price, price_e8,
//!   qty, qty_e8, filled, filled_e8, status, reason, time_ns)`: one row per
//!   state change; `status` is one of `NEW`, `PARTIALLY_FILLED`, `FILLED`,
//!   `CANCELED`, `REJECTED`, `EXPIRED`, `UNKNOWN`.
//! - view `order_state`: the latest row of each `client_id`.
//! - `fills(id, run, client_id, exchange_order_id, symbol, trade_id, side,
//!   price, price_e8, qty, qty_e8, fee, fee_e8, fee_asset, maker, time_ns)`,
//!   unique on `(symbol, trade_id)`.
//! - `advice(id, run, time_ns, source, spread, volatility, direction,
//!   confidence, multiplier, ttl_ns, cost_usd)`.
//! - `pnl(id, run, time_ns, symbol, position, position_e8, avg_entry,
//!   avg_entry_e8, mark, mark_e8, realized, realized_e8, unrealized,
//!   unrealized_e8, fees, fees_e8)`.
//!
//! `docs/journal.md` has the full DDL and example `sqlite3` queries.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};

use crate::exec::position::Position;
use crate::exec::{Fill, Side};
use crate::hot::advice::{Advice, AdviceSource, Direction, SpreadState, Volatility};
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::Symbol;

/// The schema version this build writes. Bump it and append to
/// `MIGRATIONS` to change the schema; never edit an applied migration.
pub const SCHEMA_VERSION: i64 = 1;

/// Default capacity of the writer's queue, in records. The exec thread
/// writes a handful of records per second; this absorbs a disk stall of
/// many seconds before [`JournalError::Backlog`] appears.
pub const DEFAULT_QUEUE: usize = 4096;

/// Most records committed in one transaction: bounds the time a fill waits
/// behind queued records.
const MAX_BATCH: usize = 512;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started_ns  INTEGER NOT NULL,
    ended_ns    INTEGER,
    mode        TEXT NOT NULL CHECK (mode IN ('paper', 'live', 'testnet')),
    symbols     TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    exit_status TEXT
);

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    run         INTEGER NOT NULL REFERENCES runs(id),
    client_id   TEXT NOT NULL,
    exchange_id INTEGER,
    symbol      TEXT NOT NULL,
    side        TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    price       TEXT NOT NULL,
    price_e8    INTEGER NOT NULL,
    qty         TEXT NOT NULL,
    qty_e8      INTEGER NOT NULL,
    filled      TEXT NOT NULL,
    filled_e8   INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN
                  ('NEW', 'PARTIALLY_FILLED', 'FILLED', 'CANCELED', 'REJECTED', 'EXPIRED', 'UNKNOWN')),
    reason      TEXT,
    time_ns     INTEGER NOT NULL
);
CREATE INDEX orders_by_client ON orders (client_id, id);
CREATE INDEX orders_by_run ON orders (run, client_id);

-- The latest state of each order: the row with the highest id per client id
-- (ids grow in commit order, which is the order the exec thread recorded).
CREATE VIEW order_state AS
    SELECT o.* FROM orders o
    WHERE o.id = (SELECT MAX(i.id) FROM orders i WHERE i.client_id = o.client_id);

CREATE TABLE fills (
    id                INTEGER PRIMARY KEY,
    run               INTEGER NOT NULL REFERENCES runs(id),
    client_id         TEXT NOT NULL,
    exchange_order_id INTEGER,
    symbol            TEXT NOT NULL,
    trade_id          INTEGER NOT NULL,
    side              TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    price             TEXT NOT NULL,
    price_e8          INTEGER NOT NULL,
    qty               TEXT NOT NULL,
    qty_e8            INTEGER NOT NULL,
    fee               TEXT NOT NULL,
    fee_e8            INTEGER NOT NULL,
    fee_asset         TEXT NOT NULL,
    maker             INTEGER NOT NULL CHECK (maker IN (0, 1)),
    time_ns           INTEGER NOT NULL,
    UNIQUE (symbol, trade_id)
);
CREATE INDEX fills_by_client ON fills (client_id);

CREATE TABLE advice (
    id         INTEGER PRIMARY KEY,
    run        INTEGER NOT NULL REFERENCES runs(id),
    time_ns    INTEGER NOT NULL,
    source     TEXT NOT NULL,
    spread     TEXT NOT NULL,
    volatility TEXT NOT NULL,
    direction  TEXT NOT NULL,
    confidence INTEGER NOT NULL,
    multiplier REAL NOT NULL,
    ttl_ns     INTEGER NOT NULL,
    cost_usd   REAL
);

CREATE TABLE pnl (
    id            INTEGER PRIMARY KEY,
    run           INTEGER NOT NULL REFERENCES runs(id),
    time_ns       INTEGER NOT NULL,
    symbol        TEXT NOT NULL,
    position      TEXT NOT NULL,
    position_e8   INTEGER NOT NULL,
    avg_entry     TEXT NOT NULL,
    avg_entry_e8  INTEGER NOT NULL,
    mark          TEXT NOT NULL,
    mark_e8       INTEGER NOT NULL,
    realized      TEXT NOT NULL,
    realized_e8   INTEGER NOT NULL,
    unrealized    TEXT NOT NULL,
    unrealized_e8 INTEGER NOT NULL,
    fees          TEXT NOT NULL,
    fees_e8       INTEGER NOT NULL
);
"#];

/// What went wrong with the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open journal {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("journal {path} did not switch to WAL mode (journal_mode is {mode:?}); is it on a network filesystem?")]
    NotWal { path: PathBuf, mode: String },
    #[error(
        "journal schema version {found} is newer than this build's {supported}: \
         run a newer mmbot or start a new journal file"
    )]
    NewerSchema { found: i64, supported: i64 },
    #[error("journal migration to version {version} failed: {source}")]
    Migrate { version: i64, source: rusqlite::Error },
    #[error("journal query failed: {0}")]
    Query(#[from] rusqlite::Error),
    /// A write or its commit failed on the writer thread (the message of the
    /// SQLite error: the error itself cannot be shared between waiters).
    #[error("journal write failed: {0}")]
    Write(String),
    #[error("journal queue is full ({capacity} records waiting): the disk is not keeping up; record refused")]
    Backlog { capacity: usize },
    #[error("journal writer thread has stopped")]
    WriterGone,
    #[error("cannot start the journal writer thread: {0}")]
    Spawn(std::io::Error),
    #[error("journal holds an unreadable value in {column}: {value:?}")]
    Corrupt { column: &'static str, value: String },
}

/// Id of a row in `runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub i64);

/// How a run trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Paper,
    Live,
    Testnet,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Paper => "paper",
            RunMode::Live => "live",
            RunMode::Testnet => "testnet",
        }
    }
}

/// An order's status as the journal records it: Binance's statuses, with
/// `EXPIRED_IN_MATCH` folded into `Expired` and `Unknown` for a request whose
/// outcome is not known (a timeout or 5xx: "execution status unknown").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
    Unknown,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::New,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Rejected,
        OrderStatus::Expired,
        OrderStatus::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "NEW",
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::Unknown => "UNKNOWN",
        }
    }

    /// Parses the journal's spelling, and Binance's (`EXPIRED_IN_MATCH`,
    /// `PENDING_NEW`, which is working from our side).
    pub fn parse(s: &str) -> Option<OrderStatus> {
        Some(match s {
            "NEW" | "PENDING_NEW" => OrderStatus::New,
            "PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
            "FILLED" => OrderStatus::Filled,
            "CANCELED" => OrderStatus::Canceled,
            "REJECTED" => OrderStatus::Rejected,
            "EXPIRED" | "EXPIRED_IN_MATCH" => OrderStatus::Expired,
            "UNKNOWN" => OrderStatus::Unknown,
            _ => return None,
        })
    }

    /// True when the order may still be working on the exchange. `Unknown`
    /// counts as open: until the exchange says otherwise, an order whose
    /// request timed out may be resting, and reconciliation must ask.
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::New | OrderStatus::PartiallyFilled | OrderStatus::Unknown)
    }
}

/// One state change of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    pub run: RunId,
    /// Our `newClientOrderId`.
    pub client_id: String,
    /// The exchange's `orderId`, once known.
    pub exchange_id: Option<i64>,
    pub symbol: Symbol,
    pub side: Side,
    pub price: Price,
    /// Original order quantity.
    pub qty: Qty,
    /// Cumulative filled quantity (`z` in an execution report).
    pub filled: Qty,
    pub status: OrderStatus,
    /// Why the state changed, when there is something to say (reject reason,
    /// "cancel: price moved", ...).
    pub reason: Option<String>,
    pub time_ns: i64,
}

/// An order's latest state, read back from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderState {
    /// Row id of the state change (grows in commit order).
    pub seq: i64,
    pub event: OrderEvent,
}

/// One fill as journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillRecord {
    pub run: RunId,
    pub client_id: String,
    pub exchange_order_id: Option<i64>,
    pub symbol: Symbol,
    /// Exchange trade id (`t`); with the symbol, the fill's identity. Paper
    /// fills need their own unique ids.
    pub trade_id: i64,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    /// Commission, in 1e-8 of `fee_asset`.
    pub fee: i64,
    /// Commission asset (`N`): often the base asset on a buy, or BNB.
    pub fee_asset: String,
    pub maker: bool,
    pub time_ns: i64,
}

impl FillRecord {
    /// The fill as the in-memory accounting sees it. `Fill::fee` is quote
    /// asset, so it is only carried over when `fee_asset` is `quote_asset`.
    pub fn to_fill(&self, quote_asset: &str) -> Fill {
        Fill {
            symbol: self.symbol,
            order_id: self.exchange_order_id.unwrap_or(0).max(0) as u64,
            side: self.side,
            price: self.price,
            qty: self.qty,
            fee: if self.fee_asset == quote_asset { self.fee } else { 0 },
            time_ns: self.time_ns,
            maker: self.maker,
        }
    }
}

/// What [`Journal::record_fill`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillOutcome {
    /// Committed: apply it in memory.
    Recorded,
    /// Already journaled (same symbol and trade id): do not apply it again.
    Duplicate,
}

/// A run's description, written when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub mode: RunMode,
    pub symbols: Vec<String>,
    /// Hash of the validated config (any stable hex string).
    pub config_hash: String,
    pub started_ns: i64,
}

/// A PnL snapshot of one symbol's position, marked at `mark`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PnlSnapshot {
    pub run: RunId,
    pub time_ns: i64,
    pub symbol: Symbol,
    pub position: Qty,
    pub avg_entry: Price,
    pub mark: Price,
    /// Quote asset, 1e-8, before fees.
    pub realized: i64,
    pub unrealized: i64,
    pub fees: i64,
}

impl PnlSnapshot {
    /// A snapshot of `pos` marked at `mark`.
    pub fn of(run: RunId, symbol: Symbol, pos: &Position, mark: Price, time_ns: i64) -> Self {
        Self {
            run,
            time_ns,
            symbol,
            position: pos.qty(),
            avg_entry: pos.avg_entry(),
            mark,
            realized: pos.realized(),
            unrealized: pos.unrealized(mark),
            fees: pos.fees(),
        }
    }
}

/// The position rebuilt from every journaled fill of one symbol.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FillTotals {
    /// Quantity, average entry, realized PnL and volume, replayed fill by
    /// fill in journal order. Its `fees()` is zero (and `pnl()` is before
    /// fees): fees are charged in various assets, listed in `fees`.
    pub position: Position,
    /// Total commission per asset, 1e-8 units, sorted by asset.
    pub fees: Vec<(String, i64)>,
}

impl FillTotals {
    /// Total commission paid in `asset` (0 when none).
    pub fn fee_in(&self, asset: &str) -> i64 {
        self.fees.iter().find(|(a, _)| a == asset).map_or(0, |(_, v)| *v)
    }
}

/// Counters of the writer thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records committed (fills counted once, duplicates included).
    pub committed: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Queued records whose write or commit failed (lost; see `last_error`).
    pub failed: u64,
    /// Records refused because the queue was full.
    pub refused: u64,
    /// Fills ignored as duplicates.
    pub duplicate_fills: u64,
    pub last_error: Option<String>,
}

#[derive(Default)]
struct SharedStats {
    committed: AtomicU64,
    batches: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    duplicate_fills: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl SharedStats {
    fn fail(&self, n: u64, msg: String) {
        self.failed.fetch_add(n, Ordering::Relaxed);
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(msg);
        }
    }
}

type Reply<T> = SyncSender<Result<T, JournalError>>;

/// A unit of work for the writer thread.
enum Cmd {
    Order(OrderEvent),
    Advice { run: RunId, advice: Advice, cost_usd: Option<f64> },
    Pnl(PnlSnapshot),
    Fill(FillRecord, Reply<FillOutcome>),
    StartRun(RunInfo, Reply<RunId>),
    EndRun { run: RunId, exit_status: String, ended_ns: i64, reply: Reply<()> },
    Flush(Reply<()>),
}

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
    /// runs), with fees per asset. See [`FillTotals`].
    pub fn position_from_fills(&self, symbol: Symbol) -> Result<FillTotals, JournalError> {
        let mut totals = FillTotals::default();
        for f in self.fills(symbol)? {
            // Fees go per asset, not into the Position (whose fees are quote
            // asset): pass a fee asset nothing is named after.
            totals.position.on_fill(&f.to_fill("\0"));
            match totals.fees.binary_search_by(|(a, _)| a.as_str().cmp(&f.fee_asset)) {
                Ok(i) => totals.fees[i].1 = totals.fees[i].1.saturating_add(f.fee),
                Err(i) => totals.fees.insert(i, (f.fee_asset, f.fee)),
            }
        }
        Ok(totals)
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

/// Brings the schema to [`SCHEMA_VERSION`], one migration per transaction.
fn migrate(conn: &mut Connection) -> Result<(), JournalError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_ns INTEGER NOT NULL)",
    )
    .map_err(|source| JournalError::Migrate { version: 0, source })?;
    let current: i64 = conn
        .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))
        .map_err(|source| JournalError::Migrate { version: 0, source })?;
    if current > SCHEMA_VERSION {
        return Err(JournalError::NewerSchema { found: current, supported: SCHEMA_VERSION });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let version = i as i64 + 1;
        let err = |source| JournalError::Migrate { version, source };
        // IMMEDIATE: take the write lock first, so two processes opening the
        // same new file cannot both apply the migration.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let now: i64 =
            tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0)).map_err(err)?;
        if now >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(err)?;
        tx.execute("INSERT INTO schema_version (version, applied_ns) VALUES (?1, ?2)", params![version, wall_ns()])
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}

/// Wall-clock ns since the Unix epoch (0 if the clock is before it).
fn wall_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// The writer thread: takes a command, gathers what else is queued (up to
/// [`MAX_BATCH`]), commits them in one transaction, then answers waiters.
fn writer_loop(mut conn: Connection, rx: Receiver<Cmd>, stats: &SharedStats) {
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
        Cmd::Order(_) | Cmd::Advice { .. } | Cmd::Pnl(_) => {}
    }
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

fn parse_side(s: &str) -> Result<Side, JournalError> {
    match s {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        _ => Err(JournalError::Corrupt { column: "side", value: s.to_string() }),
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
                          realized, realized_e8, unrealized, unrealized_e8, fees, fees_e8)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    let money = |v: i64| Price(v).to_string();
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
    ])?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_folds_binance_spellings() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("EXPIRED_IN_MATCH"), Some(OrderStatus::Expired));
        assert_eq!(OrderStatus::parse("PENDING_NEW"), Some(OrderStatus::New));
        assert_eq!(OrderStatus::parse("bogus"), None);
        let open: Vec<_> = OrderStatus::ALL.into_iter().filter(|s| s.is_open()).collect();
        assert_eq!(open, [OrderStatus::New, OrderStatus::PartiallyFilled, OrderStatus::Unknown]);
    }

    #[test]
    fn migrations_cover_the_schema_version() {
        assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION);
    }
}
