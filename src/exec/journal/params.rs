//! Live changes of `[strategy.params]` (and the native `[strategy]`
//! settings) in a live run's journal: table `params(id, run, time_ns, name,
//! old, new, who)`, one row per changed key. `old` is NULL for a key that
//! was added, `new` NULL for one that was removed; `who` says where the
//! change came from (`"config file"` today, the control API later).
//!
//! Written by the params watcher thread on a connection of its own (WAL:
//! one more writer waits on SQLite's lock for a moment, never on the exec
//! thread), a few rows per edit of the config file. The table is created on
//! the first change, so journals without one read as before.

use std::path::Path;

use rusqlite::{params, Connection};

use super::{JournalError, RunId};

const TABLE: &str = "CREATE TABLE IF NOT EXISTS params (
    id      INTEGER PRIMARY KEY,
    run     INTEGER NOT NULL REFERENCES runs(id),
    time_ns INTEGER NOT NULL,
    name    TEXT NOT NULL,
    old     REAL,
    new     REAL,
    who     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS params_by_run ON params (run, id);";

/// One changed key: its name and its value before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamRow {
    pub name: String,
    pub old: Option<f64>,
    pub new: Option<f64>,
}

/// Appends `rows` (one edit) to the journal at `path` for `run`, in one
/// transaction.
pub fn record_params(path: &Path, run: RunId, time_ns: i64, rows: &[ParamRow], who: &str) -> Result<(), JournalError> {
    let mut conn = Connection::open(path).map_err(|source| JournalError::Open { path: path.to_path_buf(), source })?;
    conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;")?;
    conn.execute_batch(TABLE)?;
    let tx = conn.transaction()?;
    for r in rows {
        tx.execute(
            "INSERT INTO params (run, time_ns, name, old, new, who) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![run.0, time_ns, r.name, r.old, r.new, who],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The rows of `run`, oldest first (for reports and tests).
pub fn params_of(path: &Path, run: RunId) -> Result<Vec<(i64, ParamRow, String)>, JournalError> {
    let conn = Connection::open(path).map_err(|source| JournalError::Open { path: path.to_path_buf(), source })?;
    conn.execute_batch(TABLE)?;
    let mut stmt = conn.prepare("SELECT time_ns, name, old, new, who FROM params WHERE run = ?1 ORDER BY id")?;
    let rows = stmt
        .query_map([run.0], |r| {
            Ok((r.get(0)?, ParamRow { name: r.get(1)?, old: r.get(2)?, new: r.get(3)? }, r.get(4)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::journal::{Journal, RunInfo, RunMode};

    #[test]
    fn a_change_is_journaled_per_key_beside_the_exec_threads_writer() {
        let dir = std::env::temp_dir().join(format!("mmbot-journal-params-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.sqlite");
        let _ = std::fs::remove_file(&path);
        let j = Journal::open(&path).unwrap();
        let run = j
            .start_run(RunInfo {
                mode: RunMode::Paper,
                symbols: vec!["BTCUSDT".into()],
                config_hash: "x".into(),
                started_ns: 1,
            })
            .unwrap();
        let rows = [
            ParamRow { name: "gamma".into(), old: Some(1.5), new: Some(2.0) },
            ParamRow { name: "k".into(), old: None, new: Some(3.0) },
        ];
        record_params(&path, run, 7, &rows, "config file").unwrap();
        let back = params_of(&path, run).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].0, &back[0].1, back[0].2.as_str()), (7, &rows[0], "config file"));
        drop(j);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
