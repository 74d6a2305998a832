//! The trading journal: a SQLite file that records every run, every order
//! state change, every fill (with its commission and commission asset),
//! every piece of advice, periodic PnL snapshots (fees per asset), the
//! account's balances and each comparison of the position with them, so
//! that a live run can be audited afterwards and a restarted
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
//! # Files
//!
//! - this file: the public records' re-exports, errors, shared helpers;
//! - `records.rs`: what is written and read back ([`FillRecord`],
//!   [`PnlSnapshot`], [`BalanceSnapshot`], ...);
//! - `schema.rs`: the DDL per version and the migrations;
//! - `writer.rs`: the writer thread, batching and the INSERTs;
//! - `handle.rs`: [`Journal`], the exec thread's handle, and the queries.
//!
//! # Schema (version 2)
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
//!   unique on `(symbol, trade_id)`; `fee` is in `fee_asset` (`N`).
//! - `advice(id, run, time_ns, source, spread, volatility, direction,
//!   confidence, multiplier, ttl_ns, cost_usd)`.
//! - `pnl(id, run, time_ns, symbol, position, position_e8, avg_entry,
//!   avg_entry_e8, mark, mark_e8, realized, realized_e8, unrealized,
//!   unrealized_e8, fees, fees_e8, fee_quote[_e8], fee_base[_e8],
//!   fee_base_value[_e8], fee_bnb[_e8], fee_other[_e8], bnb_price[_e8],
//!   bnb_price_source)`: `fees` is the commissions' quote value; the `fee_*`
//!   columns (version 2; NULL in older rows) are per asset, `bnb_price`
//!   NULL when BNB fees were unpriced, else `bnb_price_source` says `mid`
//!   or `config`.
//! - `balances(id, run, time_ns, asset, free, free_e8, locked, locked_e8,
//!   source)`: `source` is `start`, `rest` or `stream` (version 2).
//! - `reconciliations(id, run, time_ns, symbol, asset, source, balance,
//!   balance_e8, start_balance, start_balance_e8, carried, carried_e8,
//!   position, position_e8, account, account_e8, drift, drift_e8,
//!   verdict)`: [`crate::exec::inventory::Reconciliation`]; `verdict` is
//!   `ok`, `drift` or `kill` (version 2).
//!
//! `docs/journal.md` has the full DDL and example `sqlite3` queries.

mod handle;
mod params;
mod records;
mod schema;
mod writer;

pub use handle::Journal;
pub use params::{params_of, record_params, ParamRow};
pub use records::{
    BalanceSnapshot, FillOutcome, FillRecord, FillTotals, JournalStats, OrderEvent, OrderState, OrderStatus,
    PnlSnapshot, RttSample, RunId, RunInfo, RunMode,
};
pub use schema::SCHEMA_VERSION;

use std::path::PathBuf;

use crate::exec::Side;

/// Default capacity of the writer's queue, in records. The exec thread
/// writes a handful of records per second; this absorbs a disk stall of
/// many seconds before [`JournalError::Backlog`] appears.
pub const DEFAULT_QUEUE: usize = 4096;

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

/// Wall-clock ns since the Unix epoch (0 if the clock is before it).
fn wall_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
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
}
