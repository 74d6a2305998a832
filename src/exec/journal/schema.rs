//! The journal's schema and its migrations: each version's DDL, applied
//! once per file in order, one transaction each, recorded in
//! `schema_version`. Opening an older file brings it up to
//! [`SCHEMA_VERSION`]; a newer file is refused.
//!
//! Version 2 (fees per asset and balance reconciliation) only adds: columns
//! to `pnl` (NULL in rows written before it) and the `balances` and
//! `reconciliations` tables. It adds each column or table only if it is
//! missing, so a file that already has some of them (a hand-patched or
//! half-migrated one) still migrates.

use rusqlite::{params, Connection, Transaction};

use super::{wall_ns, JournalError};

/// The schema version this build writes. Bump it and append to
/// `MIGRATIONS` to change the schema; never edit an applied migration.
pub const SCHEMA_VERSION: i64 = 2;

/// One migration step.
type Step = fn(&Transaction<'_>) -> rusqlite::Result<()>;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[Step] = &[v1, v2];

/// Version 1: runs, orders, fills, advice, pnl.
const V1: &str = r#"
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
"#;

fn v1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(V1)
}

/// Version 2's new columns, per table: (name, type). Money is text +
/// `_e8` as everywhere. `fills` had its fee columns since version 1; they
/// are listed so that a file without them gets them.
const V2_COLUMNS: &[(&str, &[(&str, &str)])] = &[
    (
        "fills",
        &[
            ("fee", "TEXT NOT NULL DEFAULT '0'"),
            ("fee_e8", "INTEGER NOT NULL DEFAULT 0"),
            ("fee_asset", "TEXT NOT NULL DEFAULT ''"),
        ],
    ),
    (
        "pnl",
        &[
            ("fee_quote", "TEXT"),
            ("fee_quote_e8", "INTEGER"),
            ("fee_base", "TEXT"),
            ("fee_base_e8", "INTEGER"),
            ("fee_base_value", "TEXT"),
            ("fee_base_value_e8", "INTEGER"),
            ("fee_bnb", "TEXT"),
            ("fee_bnb_e8", "INTEGER"),
            ("fee_other", "TEXT"),
            ("fee_other_e8", "INTEGER"),
            ("bnb_price", "TEXT"),
            ("bnb_price_e8", "INTEGER"),
            ("bnb_price_source", "TEXT CHECK (bnb_price_source IN ('mid', 'config'))"),
        ],
    ),
];

/// Version 2's new tables.
const V2_TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS balances (
    id        INTEGER PRIMARY KEY,
    run       INTEGER NOT NULL REFERENCES runs(id),
    time_ns   INTEGER NOT NULL,
    asset     TEXT NOT NULL,
    free      TEXT NOT NULL,
    free_e8   INTEGER NOT NULL,
    locked    TEXT NOT NULL,
    locked_e8 INTEGER NOT NULL,
    source    TEXT NOT NULL CHECK (source IN ('start', 'rest', 'stream'))
);
CREATE INDEX IF NOT EXISTS balances_by_asset ON balances (asset, id);

CREATE TABLE IF NOT EXISTS reconciliations (
    id               INTEGER PRIMARY KEY,
    run              INTEGER NOT NULL REFERENCES runs(id),
    time_ns          INTEGER NOT NULL,
    symbol           TEXT NOT NULL,
    asset            TEXT NOT NULL,
    source           TEXT NOT NULL CHECK (source IN ('start', 'rest', 'stream')),
    balance          TEXT NOT NULL,
    balance_e8       INTEGER NOT NULL,
    start_balance    TEXT NOT NULL,
    start_balance_e8 INTEGER NOT NULL,
    carried          TEXT NOT NULL,
    carried_e8       INTEGER NOT NULL,
    position         TEXT NOT NULL,
    position_e8      INTEGER NOT NULL,
    account          TEXT NOT NULL,
    account_e8       INTEGER NOT NULL,
    drift            TEXT NOT NULL,
    drift_e8         INTEGER NOT NULL,
    verdict          TEXT NOT NULL CHECK (verdict IN ('ok', 'drift', 'kill'))
);
CREATE INDEX IF NOT EXISTS reconciliations_by_run ON reconciliations (run, id);

CREATE TABLE IF NOT EXISTS order_rtt (
    id      INTEGER PRIMARY KEY,
    run     INTEGER NOT NULL REFERENCES runs(id),
    time_ns INTEGER NOT NULL,
    method  TEXT NOT NULL,
    via     TEXT NOT NULL CHECK (via IN ('ws_api', 'rest')),
    rtt_ns  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS order_rtt_by_run ON order_rtt (run, method, id);
"#;

fn v2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for (table, columns) in V2_COLUMNS {
        let have = column_names(tx, table)?;
        for (name, ty) in *columns {
            if !have.iter().any(|c| c == name) {
                tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {name} {ty}"))?;
            }
        }
    }
    tx.execute_batch(V2_TABLES)
}

/// The columns `table` has now.
fn column_names(tx: &Transaction<'_>, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?.collect::<Result<Vec<_>, _>>()?;
    Ok(names)
}

/// Brings the schema to [`SCHEMA_VERSION`], one migration per transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), JournalError> {
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
    for (i, step) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
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
        step(&tx).map_err(err)?;
        tx.execute("INSERT INTO schema_version (version, applied_ns) VALUES (?1, ?2)", params![version, wall_ns()])
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_cover_the_schema_version() {
        assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION);
    }

    /// A version-1 file with a PnL row: migrating keeps the row (new
    /// columns NULL) and adds the tables; migrating again changes nothing.
    #[test]
    fn a_version_1_journal_migrates_to_version_2() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL, applied_ns INTEGER NOT NULL);
             INSERT INTO schema_version VALUES (1, 0);",
        )
        .unwrap();
        c.execute_batch(V1).unwrap();
        c.execute_batch(
            "INSERT INTO runs (id, started_ns, mode, symbols, config_hash) VALUES (1, 0, 'live', 'BTCUSDT', 'x');
             INSERT INTO pnl (run, time_ns, symbol, position, position_e8, avg_entry, avg_entry_e8, mark, mark_e8,
                              realized, realized_e8, unrealized, unrealized_e8, fees, fees_e8)
             VALUES (1, 5, 'BTCUSDT', '1', 100000000, '100', 1, '100', 1, '0', 0, '0', 0, '0.1', 10000000);
             -- Somebody already added one of the new columns by hand.
             ALTER TABLE pnl ADD COLUMN bnb_price TEXT;",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let version: i64 = c.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 2);
        let (fees, quote): (i64, Option<i64>) =
            c.query_row("SELECT fees_e8, fee_quote_e8 FROM pnl", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((fees, quote), (10_000_000, None));
        for table in ["balances", "reconciliations"] {
            let n: i64 = c
                .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(n, 1, "{table}");
        }
        migrate(&mut c).unwrap();
        let rows: i64 = c.query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 2);
    }
}
