//! Which alerts the run's state calls for, from the snapshots the hot
//! thread ([`HotStatus`]), the exchange side ([`ExecStatus`]) and the AI
//! advisor ([`AdvisorStats`]) already publish for the dashboard.
//!
//! The snapshots are running totals and states, latest wins, so every
//! trigger is an edge: an alert is raised when a condition starts (a
//! counter rises, a flag turns on, a threshold is crossed), not while it
//! lasts, and the trigger re-arms when the condition ends. Time comes from
//! the caller (`now_s`, any monotonic seconds), so the tests drive it.

use std::collections::VecDeque;

use super::{Alert, AlertKind};
use crate::ai::advisor::AdvisorStats;
use crate::config::alerts::AlertsConfig;
use crate::hot::fixed::Qty;
use crate::runtime::{ExecStatus, HotStatus};

/// A position trigger re-arms this many percentage points below its
/// threshold (so a position wobbling at the threshold does not alert on
/// every wobble).
const REARM_POINTS: f64 = 10.0;

/// Turns snapshots into edge-triggered alerts for one symbol. Call
/// [`AlertWatch::observe`] a few times a second with the latest snapshots.
#[derive(Debug)]
pub struct AlertWatch {
    symbol: String,
    max_position: Qty,
    disconnect_after_s: f64,
    storm_count: u64,
    storm_window_s: f64,
    near_pct: f64,
    /// `ExecStatus.stopped` as last seen.
    stopped: bool,
    /// Since when the feed is down (`now_s`), and whether that was said.
    down_since: Option<f64>,
    down_alerted: bool,
    /// Resyncs as last seen (`None` before the first hot snapshot), and the
    /// rises within the window: (when, how many).
    resyncs: Option<u64>,
    rises: VecDeque<(f64, u64)>,
    storm: bool,
    reverts: u64,
    /// The advisor: budget skips and today's cost as last seen, whether the
    /// budget was said (re-armed when today's cost falls: a new UTC day),
    /// and the quota flag.
    skipped_budget: u64,
    cost_today: f64,
    budget_alerted: bool,
    quota: bool,
    /// The position trigger fired and has not re-armed.
    near: bool,
}

impl AlertWatch {
    /// A watch for `symbol` with the thresholds of `cfg`; `max_position` is
    /// `[strategy] max_position` (0: no position alert).
    pub fn new(cfg: &AlertsConfig, symbol: &str, max_position: Qty) -> Self {
        Self {
            symbol: symbol.to_string(),
            max_position,
            disconnect_after_s: cfg.disconnect_after.as_secs_f64(),
            storm_count: u64::from(cfg.resync_storm_count.max(1)),
            storm_window_s: cfg.resync_storm_window.as_secs_f64(),
            near_pct: cfg.position_near_pct,
            stopped: false,
            down_since: None,
            down_alerted: false,
            resyncs: None,
            rises: VecDeque::new(),
            storm: false,
            reverts: 0,
            skipped_budget: 0,
            cost_today: 0.0,
            budget_alerted: false,
            quota: false,
            near: false,
        }
    }

    /// The alerts the latest snapshots call for (usually none). `hot` is
    /// `None` until the hot thread's first snapshot, `ai` when there is no
    /// advisor.
    pub fn observe(
        &mut self,
        now_s: f64,
        hot: Option<&HotStatus>,
        exec: &ExecStatus,
        ai: Option<&AdvisorStats>,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        self.kill(exec, &mut out);
        if let Some(h) = hot {
            self.feed(now_s, h, &mut out);
            self.resync_storm(now_s, h, &mut out);
            self.script(h, &mut out);
        }
        if let Some(a) = ai {
            self.ai(a, &mut out);
        }
        self.position(exec, &mut out);
        out
    }

    /// The session's end (for the last message a run sends).
    pub fn stopped(&self, reason: &str) -> Alert {
        stopped(&self.symbol, reason)
    }

    fn alert(&self, kind: AlertKind, text: String) -> Alert {
        Alert::new(kind, &self.symbol, text)
    }

    /// `ExecStatus.stopped` turning on: the kill switch (or a ban, or
    /// rejected credentials) stopped trading.
    fn kill(&mut self, exec: &ExecStatus, out: &mut Vec<Alert>) {
        if exec.stopped && !self.stopped {
            out.push(self.alert(
                AlertKind::Kill,
                format!(
                    "trading stopped (kill switch); position {}, {} orders in flight",
                    exec.position, exec.in_flight
                ),
            ));
        }
        self.stopped = exec.stopped;
    }

    /// `HotStatus.connected` off for longer than `disconnect_after_s`; a
    /// recovery message when it comes back after that alert.
    fn feed(&mut self, now_s: f64, h: &HotStatus, out: &mut Vec<Alert>) {
        if h.connected {
            if let Some(since) = self.down_since.take() {
                if self.down_alerted {
                    out.push(
                        self.alert(AlertKind::Reconnect, format!("feed reconnected after {:.1} s down", now_s - since)),
                    );
                }
            }
            self.down_alerted = false;
            return;
        }
        let since = *self.down_since.get_or_insert(now_s);
        let down = now_s - since;
        if self.down_alerted || down <= self.disconnect_after_s {
            return;
        }
        self.down_alerted = true;
        let text = match (h.connects, h.feed.last_disconnect) {
            (0, _) => format!("feed not connected {down:.0} s after the start"),
            (_, Some(reason)) => format!(
                "feed disconnected for {down:.0} s (last cause: {}; {} disconnects so far); quoting waits for it",
                reason.name(),
                h.feed.disconnects
            ),
            (_, None) => format!("feed disconnected for {down:.0} s; quoting waits for it"),
        };
        out.push(self.alert(AlertKind::Disconnect, text));
    }

    /// `resync_storm_count` or more resyncs within the window; re-armed
    /// once the window holds fewer.
    fn resync_storm(&mut self, now_s: f64, h: &HotStatus, out: &mut Vec<Alert>) {
        // Resyncs before the first snapshot have no time: not counted.
        let prev = self.resyncs.replace(h.resyncs).unwrap_or(h.resyncs);
        let rose = h.resyncs.saturating_sub(prev);
        if rose > 0 {
            self.rises.push_back((now_s, rose));
        }
        while self.rises.front().is_some_and(|&(t, _)| now_s - t > self.storm_window_s) {
            self.rises.pop_front();
        }
        let within: u64 = self.rises.iter().map(|&(_, n)| n).sum();
        if within < self.storm_count {
            self.storm = false;
            return;
        }
        if !self.storm {
            self.storm = true;
            out.push(self.alert(
                AlertKind::ResyncStorm,
                format!(
                    "resync storm: {within} book resyncs in the last {:.0} s ({} so far, {} gaps; now {})",
                    self.storm_window_s,
                    h.resyncs,
                    h.gaps,
                    if h.synced { "synced".to_string() } else { format!("unsynced: {}", h.unsynced_cause.name()) }
                ),
            ));
        }
    }

    /// `ScriptStatus.reverts` rising: a reloaded script kept failing and
    /// the previous version runs again.
    fn script(&mut self, h: &HotStatus, out: &mut Vec<Alert>) {
        let s = &h.script;
        if s.reverts > self.reverts {
            let last = s.last_error.as_ref().map_or(String::new(), |e| format!("; last error: {}", e.as_str()));
            out.push(self.alert(
                AlertKind::ScriptReverted,
                format!(
                    "strategy script reverted to its previous version after repeated failures ({} revert{} so far){last}",
                    s.reverts,
                    if s.reverts == 1 { "" } else { "s" }
                ),
            ));
        }
        self.reverts = s.reverts;
    }

    /// The advisor's daily budget reached (a call skipped for it, or
    /// today's cost at the budget), once a UTC day; its provider's quota
    /// exhausted, once.
    fn ai(&mut self, a: &AdvisorStats, out: &mut Vec<Alert>) {
        if a.cost_today_usd < self.cost_today {
            // Today's cost fell: a new UTC day, calls resume.
            self.budget_alerted = false;
        }
        let skipped = a.skipped_budget > self.skipped_budget;
        let spent = a.budget_usd.is_some_and(|b| a.cost_today_usd >= b);
        if (skipped || spent) && !self.budget_alerted {
            self.budget_alerted = true;
            let budget = a.budget_usd.map_or("?".to_string(), |b| format!("${b:.4}"));
            out.push(self.alert(
                AlertKind::AiBudget,
                format!(
                    "AI daily budget reached: ${:.4} of {budget} spent today; no advisor calls until 00:00 UTC \
                     (advice falls back to neutral as it expires)",
                    a.cost_today_usd
                ),
            ));
        }
        if a.quota_exhausted && !self.quota {
            let who = if a.route.is_empty() { &a.label } else { &a.route };
            out.push(self.alert(
                AlertKind::AiBudget,
                format!("AI provider quota exhausted ({who}): it is not called again this session"),
            ));
        }
        self.quota = a.quota_exhausted;
        self.skipped_budget = a.skipped_budget;
        self.cost_today = a.cost_today_usd;
    }

    /// |position| at `position_near_pct` of `max_position` or more;
    /// re-armed below that less [`REARM_POINTS`].
    fn position(&mut self, exec: &ExecStatus, out: &mut Vec<Alert>) {
        let max = self.max_position.0;
        if max <= 0 {
            return;
        }
        let pct = exec.position.0.unsigned_abs() as f64 / max as f64 * 100.0;
        if self.near {
            if pct < self.near_pct - REARM_POINTS || exec.position.0 == 0 {
                self.near = false;
            }
            return;
        }
        if pct >= self.near_pct {
            self.near = true;
            out.push(self.alert(
                AlertKind::PositionNearLimit,
                format!(
                    "position {} is {pct:.0}% of max_position {} (alert at {}%)",
                    exec.position, self.max_position, self.near_pct
                ),
            ));
        }
    }
}

/// The alert a run sends as it ends (`reason`: why it stopped).
pub fn stopped(symbol: &str, reason: &str) -> Alert {
    Alert::new(AlertKind::Stop, symbol, format!("stopped: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::connector::Reason;
    use std::time::Duration;

    fn cfg() -> AlertsConfig {
        AlertsConfig::default()
    }

    /// A watch with `max_position` 1.0.
    fn watch() -> AlertWatch {
        AlertWatch::new(&cfg(), "BTCUSDT", Qty(100_000_000))
    }

    fn hot() -> HotStatus {
        HotStatus { connected: true, connects: 1, synced: true, ..HotStatus::default() }
    }

    fn kinds(alerts: &[Alert]) -> Vec<AlertKind> {
        alerts.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn the_kill_switch_is_said_once_per_stop() {
        let mut w = watch();
        let mut exec = ExecStatus::default();
        assert!(w.observe(0.0, Some(&hot()), &exec, None).is_empty());
        exec.stopped = true;
        let a = w.observe(0.25, Some(&hot()), &exec, None);
        assert_eq!(kinds(&a), [AlertKind::Kill]);
        assert!(a[0].text.starts_with("trading stopped (kill switch)") && a[0].symbol == "BTCUSDT");
        assert!(a[0].at_ms > 1_600_000_000_000, "wall-clock ms");
        assert!(w.observe(0.5, Some(&hot()), &exec, None).is_empty(), "edge-triggered");
        exec.stopped = false;
        assert!(w.observe(0.75, Some(&hot()), &exec, None).is_empty());
        exec.stopped = true;
        assert_eq!(kinds(&w.observe(1.0, Some(&hot()), &exec, None)), [AlertKind::Kill], "re-armed");
    }

    #[test]
    fn a_disconnect_is_said_after_the_delay_and_its_recovery_after_that() {
        let mut w = watch();
        let exec = ExecStatus::default();
        let mut h = hot();
        assert!(w.observe(0.0, Some(&h), &exec, None).is_empty());
        h.connected = false;
        h.feed.disconnects = 1;
        h.feed.last_disconnect = Some(Reason::Closed);
        // A short drop: neither alert nor recovery.
        assert!(w.observe(1.0, Some(&h), &exec, None).is_empty());
        assert!(w.observe(10.9, Some(&h), &exec, None).is_empty());
        h.connected = true;
        assert!(w.observe(11.0, Some(&h), &exec, None).is_empty(), "back within disconnect_after_s");
        h.connected = false;
        assert!(w.observe(20.0, Some(&h), &exec, None).is_empty());
        assert!(w.observe(30.0, Some(&h), &exec, None).is_empty(), "10 s is not more than 10 s");
        let a = w.observe(30.5, Some(&h), &exec, None);
        assert_eq!(kinds(&a), [AlertKind::Disconnect]);
        assert!(a[0].text.contains("10 s") && a[0].text.contains(Reason::Closed.name()), "{}", a[0].text);
        assert!(w.observe(45.0, Some(&h), &exec, None).is_empty(), "said once");
        h.connected = true;
        let a = w.observe(50.0, Some(&h), &exec, None);
        assert_eq!(kinds(&a), [AlertKind::Reconnect]);
        assert!(a[0].text.contains("30.0 s"), "{}", a[0].text);
        assert!(w.observe(51.0, Some(&h), &exec, None).is_empty());
        // Never connected since the start.
        let mut w = watch();
        let h = HotStatus::default();
        assert!(w.observe(0.0, Some(&h), &exec, None).is_empty());
        let a = w.observe(12.0, Some(&h), &exec, None);
        assert!(a[0].text.contains("not connected"), "{}", a[0].text);
        // No hot snapshot yet: nothing is known about the feed.
        assert!(watch().observe(100.0, None, &exec, None).is_empty());
    }

    #[test]
    fn a_resync_storm_is_counts_within_the_window() {
        let mut c = cfg();
        (c.resync_storm_count, c.resync_storm_window) = (3, Duration::from_secs(10));
        let mut w = AlertWatch::new(&c, "ETHUSDT", Qty(0));
        let exec = ExecStatus::default();
        let mut h = hot();
        h.resyncs = 7; // before the watch: not counted
        assert!(w.observe(0.0, Some(&h), &exec, None).is_empty());
        h.resyncs = 9;
        assert!(w.observe(1.0, Some(&h), &exec, None).is_empty());
        h.resyncs = 10;
        let a = w.observe(2.0, Some(&h), &exec, None);
        assert_eq!(kinds(&a), [AlertKind::ResyncStorm]);
        assert!(a[0].text.contains("3 book resyncs in the last 10 s"), "{}", a[0].text);
        h.resyncs = 12;
        assert!(w.observe(3.0, Some(&h), &exec, None).is_empty(), "still the same storm");
        // The window drains (the rises at 1, 2 and 3 s age out)...
        assert!(w.observe(13.5, Some(&h), &exec, None).is_empty());
        // ...and a new burst is a new storm.
        h.resyncs = 15;
        assert_eq!(kinds(&w.observe(14.0, Some(&h), &exec, None)), [AlertKind::ResyncStorm]);
        // Spread out more thinly than the window: never a storm.
        let mut w = AlertWatch::new(&c, "ETHUSDT", Qty(0));
        let mut h = hot();
        for i in 0..10 {
            h.resyncs = i;
            assert!(w.observe(i as f64 * 6.0, Some(&h), &exec, None).is_empty());
        }
    }

    #[test]
    fn each_script_revert_is_said() {
        let mut w = watch();
        let exec = ExecStatus::default();
        let mut h = hot();
        h.script.active = true;
        assert!(w.observe(0.0, Some(&h), &exec, None).is_empty());
        h.script.reverts = 1;
        let a = w.observe(1.0, Some(&h), &exec, None);
        assert_eq!(kinds(&a), [AlertKind::ScriptReverted]);
        assert!(a[0].text.contains("(1 revert so far)"), "{}", a[0].text);
        assert!(w.observe(2.0, Some(&h), &exec, None).is_empty());
        h.script.reverts = 2;
        assert!(w.observe(3.0, Some(&h), &exec, None)[0].text.contains("2 reverts"));
    }

    #[test]
    fn the_ai_budget_is_said_once_a_day_and_the_quota_once() {
        let mut w = watch();
        let exec = ExecStatus::default();
        let mut ai = AdvisorStats { budget_usd: Some(1.0), cost_today_usd: 0.5, ..AdvisorStats::default() };
        assert!(w.observe(0.0, None, &exec, Some(&ai)).is_empty());
        // A call skipped because it would pass the budget.
        ai.skipped_budget = 1;
        let a = w.observe(1.0, None, &exec, Some(&ai));
        assert_eq!(kinds(&a), [AlertKind::AiBudget]);
        assert!(a[0].text.contains("$0.5000 of $1.0000"), "{}", a[0].text);
        ai.skipped_budget = 5;
        ai.cost_today_usd = 1.0;
        assert!(w.observe(2.0, None, &exec, Some(&ai)).is_empty(), "once a day");
        // A new UTC day: today's cost starts again, and so does the alert.
        ai.cost_today_usd = 0.0;
        assert!(w.observe(3.0, None, &exec, Some(&ai)).is_empty());
        ai.cost_today_usd = 1.2;
        assert_eq!(kinds(&w.observe(4.0, None, &exec, Some(&ai))), [AlertKind::AiBudget], "spent reaches the budget");
        ai.quota_exhausted = true;
        ai.route = "openai gpt-5-mini".into();
        let a = w.observe(5.0, None, &exec, Some(&ai));
        assert!(a.len() == 1 && a[0].text.contains("quota exhausted (openai gpt-5-mini)"), "{a:?}");
        assert!(w.observe(6.0, None, &exec, Some(&ai)).is_empty());
        // No budget set and nothing skipped: never.
        let mut w = watch();
        let ai = AdvisorStats { cost_today_usd: 100.0, ..AdvisorStats::default() };
        assert!(w.observe(0.0, None, &exec, Some(&ai)).is_empty());
    }

    #[test]
    fn the_position_alert_fires_at_the_threshold_and_rearms_ten_points_below() {
        let mut w = watch(); // max 1.0, alert at 80%
        let mut exec = ExecStatus::default();
        let at = |w: &mut AlertWatch, exec: &mut ExecStatus, pos: i64| {
            exec.position = Qty(pos);
            kinds(&w.observe(0.0, None, exec, None))
        };
        assert!(at(&mut w, &mut exec, 79_000_000).is_empty());
        assert_eq!(at(&mut w, &mut exec, -80_000_000), [AlertKind::PositionNearLimit], "either side");
        assert!(at(&mut w, &mut exec, 95_000_000).is_empty(), "edge-triggered");
        assert!(at(&mut w, &mut exec, 75_000_000).is_empty(), "not re-armed at 75%");
        assert!(at(&mut w, &mut exec, 85_000_000).is_empty());
        assert!(at(&mut w, &mut exec, 69_000_000).is_empty(), "re-armed below 70%");
        let mut w2 = watch();
        exec.position = Qty(90_000_000);
        let a = w2.observe(0.0, None, &exec, None);
        assert!(a[0].text.contains("position 0.9 is 90% of max_position 1"), "{}", a[0].text);
        assert_eq!(at(&mut w, &mut exec, 81_000_000), [AlertKind::PositionNearLimit]);
        // No limit: no alert.
        let mut w = AlertWatch::new(&cfg(), "BTCUSDT", Qty(0));
        assert!(at(&mut w, &mut exec, 1).is_empty());
    }

    #[test]
    fn the_stop_alert_names_the_reason() {
        let a = watch().stopped("operator stop (POST /api/stop)");
        assert_eq!((a.kind, a.symbol.as_str()), (AlertKind::Stop, "BTCUSDT"));
        assert_eq!(a.text, "stopped: operator stop (POST /api/stop)");
    }
}
