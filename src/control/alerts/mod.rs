//! Alert webhooks (`[alerts]`): tell an operator who is not watching the
//! dashboard that something needs them: the kill switch fired, the feed is
//! down, the book keeps resyncing, the script was reverted, the AI budget
//! ran out, the position nears its limit, the session ended.
//!
//! Three parts, each off the hot path:
//! * [`watch`]: [`AlertWatch`] turns the snapshots the hot and exchange
//!   threads already publish into edge-triggered [`Alert`]s;
//! * [`format`](mod@format): the request each target takes (generic JSON, a Slack
//!   incoming webhook, Telegram's Bot API `sendMessage`);
//! * [`send`]: [`Notifier`], one thread that delivers them with rate
//!   limits and retries, never blocking the caller; `target` is one
//!   target's queue, limits and HTTP exchange.
//!
//! The settings are `crate::config::alerts` (`[alerts]`, `[[alerts.webhook]]`).

pub mod format;
pub mod send;
mod target;
pub mod watch;

pub use send::{AlertStats, Notifier, TargetStats};
pub use watch::{stopped, AlertWatch};

/// The kinds and the `on = [...]` sets are `[alerts]`'s vocabulary, so
/// they live with its settings.
pub use crate::config::alerts::{AlertKind, Triggers};

/// One alert: what, for which symbol, said how, and when (wall clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    /// The traded symbol (empty when the alert is about the whole process).
    pub symbol: String,
    /// One line for a person: `trading stopped (kill switch)`.
    pub text: String,
    /// Wall-clock milliseconds since the Unix epoch.
    pub at_ms: i64,
}

impl Alert {
    /// An alert stamped with the wall clock now.
    pub fn new(kind: AlertKind, symbol: &str, text: impl Into<String>) -> Self {
        Self { kind, symbol: symbol.to_string(), text: text.into(), at_ms: wall_ms() }
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_triggers_name_each_other() {
        for (i, k) in AlertKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
            assert!(AlertKind::TRIGGERS.contains(&k.trigger()), "{k:?}");
        }
        let d = Triggers::parse("disconnect").unwrap();
        assert!(d.contains(AlertKind::Disconnect) && d.contains(AlertKind::Reconnect) && !d.contains(AlertKind::Kill));
        assert_eq!(Triggers::parse("reconnect"), None, "not an `on` name: it follows disconnect");
        assert_eq!(Triggers::ALL.names(), AlertKind::TRIGGERS.to_vec());
        let on = Triggers::parse("kill").unwrap().with(Triggers::parse("stop").unwrap());
        assert_eq!(on.names(), ["kill", "stop"]);
        assert!(Triggers::NONE.is_empty() && Triggers::default() == Triggers::ALL);
    }
}
