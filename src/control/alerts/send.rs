//! Delivering alerts: [`Notifier`] owns one thread (`mmbot-alerts`) that
//! posts each alert to every target whose `on` takes it, so that no
//! trading thread ever waits on a webhook.
//!
//! * [`Notifier::notify`] never blocks: alerts go through a bounded queue
//!   ([`QUEUE`]); a full queue drops the alert and counts it.
//! * Rate limits per target: the same kind is not sent again within
//!   `min_interval_s` (the next one of that kind says how many were
//!   suppressed meanwhile), and at most `max_per_minute` go out in any
//!   minute. The session's `stop` alert passes both: it is the last.
//! * Retries: a connection failure, a timeout, a 5xx or a 429 is tried
//!   again up to `retries` times, after an exponential backoff from
//!   `retry_backoff_ms` (with jitter, [`crate::ai::llm::retry::Backoff`]) or
//!   the wait the server asked for: Slack's `Retry-After` header on its 429
//!   (<https://api.slack.com/apis/rate-limits>, "Responding to rate limiting
//!   conditions"), Telegram's `parameters.retry_after` on its 429 (Bot API
//!   "ResponseParameters"), capped at 60 s. A target waiting
//!   out a retry holds its own later alerts (they stay in order) but not
//!   the other targets'.
//! * Failures are counted per target and logged with `tracing::warn!` at
//!   most once per target per minute, naming the target by its `name` or
//!   format and host: never a webhook URL's path (Slack's is its secret) or
//!   a bot token, which are also scrubbed from any error text.
//! * [`Notifier::finish`] sends what is queued (the `stop` alert above
//!   all) until its deadline, then ends the thread.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::target::{Admit, Outcome, Target, TARGET_QUEUE};
use super::{Alert, AlertKind, Triggers};
use crate::config::alerts::{AlertsConfig, ChatId};

/// Alerts waiting for the thread (more are dropped and counted).
pub const QUEUE: usize = 256;
/// How long a dropped [`Notifier`] (never finished) keeps sending.
const DROP_DEADLINE: Duration = Duration::from_secs(2);

/// One target's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetStats {
    /// `name`, or the format and host (`slack hooks.slack.com`).
    pub name: String,
    /// Alerts the target accepted.
    pub sent: u64,
    /// Alerts given up on (retries spent, refused, or not sent by the
    /// finish deadline).
    pub failed: u64,
    /// Alerts held back by `min_interval_s` or `max_per_minute`.
    pub suppressed: u64,
    /// Alerts lost to a full queue.
    pub dropped: u64,
    /// Why the last failure failed (secrets scrubbed).
    pub last_error: Option<String>,
}

/// Every target's counters, in `[[alerts.webhook]]` order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertStats {
    pub targets: Vec<TargetStats>,
}

impl AlertStats {
    /// The target named `name`.
    pub fn target(&self, name: &str) -> Option<&TargetStats> {
        self.targets.iter().find(|t| t.name == name)
    }
}

/// What the caller and the thread share.
struct Shared {
    stats: Mutex<AlertStats>,
    /// Set by [`Notifier::finish`] (or a drop): send until then, then end.
    finish_at: Mutex<Option<Instant>>,
}

impl Shared {
    fn stats(&self) -> MutexGuard<'_, AlertStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finish_at(&self) -> Option<Instant> {
        *self.finish_at.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends alerts to the configured targets on a thread of its own.
pub struct Notifier {
    tx: Option<SyncSender<Alert>>,
    /// Each target's `on`, to count a dropped alert where it was due.
    on: Vec<Triggers>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Closed when the thread ends (in a mutex: the notifier is shared
    /// between threads, a receiver is not `Sync`).
    ended: Mutex<Option<Receiver<()>>>,
}

impl Notifier {
    /// Starts the `mmbot-alerts` thread (none without targets: then
    /// [`Notifier::notify`] does nothing).
    pub fn start(cfg: &AlertsConfig) -> Notifier {
        let stats = AlertStats {
            targets: cfg
                .targets
                .iter()
                .map(|t| TargetStats { name: t.name.clone(), ..TargetStats::default() })
                .collect(),
        };
        let shared = Arc::new(Shared { stats: Mutex::new(stats), finish_at: Mutex::new(None) });
        let on = cfg.targets.iter().map(|t| t.on).collect();
        if cfg.targets.is_empty() {
            return Notifier { tx: None, on, shared, thread: None, ended: Mutex::new(None) };
        }
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let (ended_tx, ended) = mpsc::channel::<()>();
        let mut worker = Worker {
            rx,
            open: true,
            shared: Arc::clone(&shared),
            targets: cfg.targets.iter().enumerate().map(|(i, t)| Target::new(i, t)).collect(),
        };
        let spawned = std::thread::Builder::new().name("mmbot-alerts".into()).spawn(move || {
            worker.run();
            drop(ended_tx);
        });
        match spawned {
            Ok(thread) => Notifier { tx: Some(tx), on, shared, thread: Some(thread), ended: Mutex::new(Some(ended)) },
            Err(e) => {
                tracing::warn!("alerts: cannot start the alert thread ({e}); no alert will be sent");
                Notifier { tx: None, on, shared, thread: None, ended: Mutex::new(None) }
            }
        }
    }

    /// Queues `alert` for every target whose `on` takes it. Never blocks: a
    /// full queue drops it (counted in [`TargetStats::dropped`]).
    pub fn notify(&self, alert: Alert) {
        let kind = alert.kind;
        let Some(tx) = &self.tx else {
            if !self.on.is_empty() {
                self.count_drop(kind);
            }
            return;
        };
        match tx.try_send(alert) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.count_drop(kind),
        }
    }

    fn count_drop(&self, kind: AlertKind) {
        let mut stats = self.shared.stats();
        for (t, on) in stats.targets.iter_mut().zip(&self.on) {
            if on.contains(kind) {
                t.dropped += 1;
            }
        }
    }

    /// Every target's counters now.
    pub fn stats(&self) -> AlertStats {
        self.shared.stats().clone()
    }

    /// Sends what is queued, waiting at most `deadline` (what is left then
    /// is counted failed), and ends the thread.
    pub fn finish(self, deadline: Duration) {
        self.finish_with_stats(deadline);
    }

    /// [`Notifier::finish`], returning the final counters.
    pub fn finish_with_stats(mut self, deadline: Duration) -> AlertStats {
        self.close(deadline);
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(ended) = ended {
            // Requests started while finishing end by the deadline; one
            // already in flight may run to its own timeout_ms: after a
            // little slack the thread is left to end on its own.
            let slack = Duration::from_millis(500);
            if ended.recv_timeout(deadline + slack) == Err(RecvTimeoutError::Disconnected) {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
        }
        self.stats()
    }

    /// Tells the thread to send what it has until `after` from now, then end.
    fn close(&mut self, after: Duration) {
        let mut at = self.shared.finish_at.lock().unwrap_or_else(|e| e.into_inner());
        at.get_or_insert(Instant::now() + after);
        drop(at);
        self.tx = None;
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // Not finished: the thread gets a short while, unwaited.
        self.close(DROP_DEADLINE);
    }
}

/// The thread's state.
struct Worker {
    rx: Receiver<Alert>,
    /// The sending side still exists.
    open: bool,
    shared: Arc<Shared>,
    targets: Vec<Target>,
}

impl Worker {
    fn run(&mut self) {
        loop {
            let now = Instant::now();
            let finish_at = self.shared.finish_at();
            if finish_at.is_some_and(|at| now >= at) {
                self.give_up_all("not sent before the finish deadline");
                return;
            }
            // Everything queued now, then what is due.
            while self.open {
                match self.rx.try_recv() {
                    Ok(alert) => self.admit(alert),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => self.open = false,
                }
            }
            for i in 0..self.targets.len() {
                if self.targets[i].queue.front().is_some_and(|p| p.due <= Instant::now()) {
                    self.deliver(i, finish_at);
                }
            }
            let next_due = self.targets.iter().filter_map(|t| t.queue.front().map(|p| p.due)).min();
            if !self.open && next_due.is_none() {
                return;
            }
            let now = Instant::now();
            let until = [next_due, finish_at, Some(now + Duration::from_secs(1))].into_iter().flatten().min();
            let wait = until.map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
            if !self.open {
                std::thread::sleep(wait);
                continue;
            }
            match self.rx.recv_timeout(wait) {
                Ok(alert) => self.admit(alert),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.open = false,
            }
        }
    }

    fn admit(&mut self, alert: Alert) {
        let now = Instant::now();
        for i in 0..self.targets.len() {
            if !self.targets[i].cfg.on.contains(alert.kind) {
                continue;
            }
            match self.targets[i].admit(&alert, now) {
                Ok(()) => {}
                Err(Admit::Suppressed) => self.shared.stats().targets[i].suppressed += 1,
                Err(Admit::Full) => {
                    self.shared.stats().targets[i].dropped += 1;
                    let why =
                        format!("{TARGET_QUEUE} alerts already wait for it; dropped a {} alert", alert.kind.name());
                    self.targets[i].warn(&why);
                }
            }
        }
    }

    /// One attempt at target `i`'s front alert, and what follows from it.
    fn deliver(&mut self, i: usize, finish_at: Option<Instant>) {
        let limit = finish_at.map(|at| at.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
        let t = &mut self.targets[i];
        let outcome = t.attempt(limit);
        let Some(p) = t.queue.front_mut() else { return };
        p.attempts += 1;
        match outcome {
            Outcome::Sent => {
                tracing::debug!("alerts: {} took a {} alert", t.cfg.name, p.alert.kind.name());
                t.queue.pop_front();
                self.shared.stats().targets[t.index].sent += 1;
            }
            Outcome::Migrate(id) if p.attempts <= t.cfg.retries + 1 => {
                tracing::warn!(
                    "alerts: {}: Telegram moved the chat to the supergroup {id}; sending there (set chat_id = {id} \
                     in its [[alerts.webhook]])",
                    t.cfg.name
                );
                t.chat_id = Some(ChatId::Id(id));
            }
            Outcome::Migrate(id) => fail(t, &self.shared, format!("Telegram keeps moving the chat (now {id})")),
            Outcome::Fail(why) => fail(t, &self.shared, why),
            Outcome::Retry(asked, why) => {
                if p.attempts > t.cfg.retries {
                    let why = format!("{why} ({} attempt{})", p.attempts, if p.attempts == 1 { "" } else { "s" });
                    return fail(t, &self.shared, why);
                }
                let wait = asked.unwrap_or_else(|| t.backoff.wait(p.attempts));
                p.due = Instant::now() + wait;
                if finish_at.is_some_and(|at| p.due > at) {
                    let why =
                        format!("{why}; the next attempt ({:.1} s) would pass the finish deadline", wait.as_secs_f64());
                    return fail(t, &self.shared, why);
                }
                tracing::debug!("alerts: {}: {}; again in {:.2} s", t.cfg.name, t.scrub(&why), wait.as_secs_f64());
            }
        }
    }

    /// Counts everything still queued as failed.
    fn give_up_all(&mut self, why: &str) {
        for t in &mut self.targets {
            let n = t.queue.len() as u64;
            if n > 0 {
                t.queue.clear();
                let mut stats = self.shared.stats();
                stats.targets[t.index].failed += n;
                stats.targets[t.index].last_error = Some(why.to_string());
                drop(stats);
                t.warn(&format!("{n} alert{} {why}", if n == 1 { "" } else { "s" }));
            }
        }
    }
}

/// Gives up on `t`'s front alert.
fn fail(t: &mut Target, shared: &Shared, why: String) {
    let Some(p) = t.queue.pop_front() else { return };
    let why = t.scrub(&why);
    {
        let mut stats = shared.stats();
        stats.targets[t.index].failed += 1;
        stats.targets[t.index].last_error = Some(why.clone());
    }
    t.warn(&format!("a {} alert was not sent: {why}", p.alert.kind.name()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::alerts::target::tests::target;

    fn alert(kind: AlertKind) -> Alert {
        Alert::new(kind, "BTCUSDT", "x")
    }

    #[test]
    fn without_targets_nothing_starts_and_finish_returns_at_once() {
        let n = Notifier::start(&AlertsConfig::default());
        assert!(n.thread.is_none());
        n.notify(alert(AlertKind::Kill));
        let t0 = Instant::now();
        assert_eq!(n.finish_with_stats(Duration::from_secs(5)), AlertStats::default());
        assert!(t0.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn an_unreachable_target_is_retried_then_counted_failed_and_finish_is_bounded() {
        // Nothing listens on the discard port of loopback (almost surely).
        let mut cfg = AlertsConfig::default();
        let mut t = target(Triggers::ALL, 0.0, 100).cfg;
        t.retries = 2;
        cfg.targets.push(t);
        let n = Notifier::start(&cfg);
        n.notify(alert(AlertKind::Kill));
        let t0 = Instant::now();
        let stats = n.finish_with_stats(Duration::from_secs(3));
        assert!(t0.elapsed() < Duration::from_secs(4));
        let s = &stats.targets[0];
        assert_eq!((s.sent, s.failed), (0, 1), "{s:?}");
        let e = s.last_error.as_deref().unwrap();
        assert!(e.contains("3 attempts") && !e.contains("SEKRIT"), "{e}");
    }
}
