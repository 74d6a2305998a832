//! The process's exit statuses, one table for every command (README
//! "Exit statuses"), and the one place an error becomes a status and a
//! message.
//!
//! Why one table: scripts and supervisors act on the status (restart,
//! alert, leave alone), so a given status must mean the same thing whatever
//! the command, and a failure must never exit 0.

use crate::config::ConfigError;
use crate::script::health::NEVER_QUOTED_MIN_CALLS;

/// Done as asked.
pub const OK: i32 = 0;
/// An error stopped the command (a file it cannot read or write, a failed
/// check); the message says what and what to do.
pub const ERROR: i32 = 1;
/// The market-data feed failed: never connected, never synced, or lost
/// for good.
pub const FEED: i32 = 2;
/// Live: the kill switch tripped.
pub const KILL: i32 = 3;
/// Live: the exchange refuses us (HTTP 418 ban or 403).
pub const REFUSED: i32 = 4;
/// Live: the API key or signature was refused.
pub const KEY: i32 = 5;
/// Live: a fill could not be written to the journal.
pub const JOURNAL: i32 = 6;
/// Live: orders may still rest on the exchange.
pub const ORDERS_LEFT: i32 = 7;
/// Nothing was traded: the configured symbol is not in the data, or no
/// quote was ever made.
pub const NOTHING_TRADED: i32 = 8;
/// The strategy script failed (errored on too many calls, or never quoted).
pub const SCRIPT: i32 = 9;
/// The command line was wrong (BSD sysexits `EX_USAGE`).
pub const USAGE: i32 = 64;
/// The configuration is invalid, in any command (sysexits `EX_CONFIG`).
pub const CONFIG: i32 = 78;

/// Why a run's strategy failed, if its script failed on more than
/// `max_share` of its calls (`[script] max_error_share`), or never quoted a
/// side over at least [`NEVER_QUOTED_MIN_CALLS`] calls: exit [`SCRIPT`].
pub fn script_failed(t: &crate::backtest::TradingReport, max_share: f64) -> Option<String> {
    let failed = t.strategy_errors + t.strategy_bad_outputs;
    if t.strategy_calls == 0 || failed as f64 <= max_share * t.strategy_calls as f64 {
        return never_quoted(t);
    }
    Some(format!(
        "the strategy {} failed on {failed} of its {} calls ({} errors, {} wrong-shaped outputs; more than \
         [script] max_error_share = {max_share}), and each failure pulled the quote: fix the script (mmbot script \
         check FILE) and run again",
        t.strategy, t.strategy_calls, t.strategy_errors, t.strategy_bad_outputs
    ))
}

/// Why a run's strategy failed, if it never quoted a side over at least
/// [`NEVER_QUOTED_MIN_CALLS`] calls (every decision pulled, or both sides
/// left out): such a run did nothing, whatever else it counted.
fn never_quoted(t: &crate::backtest::TradingReport) -> Option<String> {
    if t.strategy_calls < NEVER_QUOTED_MIN_CALLS || t.strategy_quoted > 0 {
        return None;
    }
    Some(format!(
        "the strategy {} never quoted: none of its {} calls asked for a bid or an ask (every decision was a pull \
         or left both sides out; {} errors, {} wrong-shaped outputs): check the script's conditions and outputs \
         (mmbot script check FILE) and run again",
        t.strategy, t.strategy_calls, t.strategy_errors, t.strategy_bad_outputs
    ))
}

/// The status for an error that ended a command.
pub fn status_of(e: &anyhow::Error) -> i32 {
    let config = |c: &(dyn std::error::Error + 'static)| {
        c.downcast_ref::<ConfigError>().is_some() || c.downcast_ref::<crate::config::ParamError>().is_some()
    };
    if e.chain().any(config) {
        CONFIG
    } else {
        ERROR
    }
}

/// An error and its causes on one line, each said once: a cause whose
/// text the message already holds (an error that prints its source, then
/// the source itself) is not repeated.
pub fn message_of(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let e = anyhow::Error::new(ConfigError::Read { path: "x.toml".into(), source: io })
            .context("loading the configuration");
        let m = message_of(&e);
        assert_eq!(m.matches("No such file").count(), 1, "{m}");
        assert!(m.starts_with("loading the configuration: cannot read config file x.toml"), "{m}");
        assert_eq!(status_of(&e), CONFIG);
        assert_eq!(status_of(&anyhow::anyhow!("disk full")), ERROR);
    }
}
