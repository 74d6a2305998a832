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
//!   (https://api.slack.com/apis/rate-limits, "Responding to rate limiting
//!   conditions"), Telegram's `parameters.retry_after` on its 429 (Bot API
//!   "ResponseParameters"), capped at [`MAX_SERVER_WAIT`]. A target waiting
//!   out a retry holds its own later alerts (they stay in order) but not
//!   the other targets'.
//! * Failures are counted per target and logged with `tracing::warn!` at
//!   most once per target per minute, naming the target by its `name` or
//!   format and host: never a webhook URL's path (Slack's is its secret) or
//!   a bot token, which are also scrubbed from any error text.
//! * [`Notifier::finish`] sends what is queued (the `stop` alert above
//!   all) until its deadline, then ends the thread.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::format;
use super::{Alert, AlertKind, Triggers};
use crate::ai::llm::retry::{parse_retry_after, Backoff};
use crate::config::alerts::{AlertTarget, AlertsConfig, ChatId, Destination};

/// Alerts waiting for the thread (more are dropped and counted).
pub const QUEUE: usize = 256;
/// Alerts one target may hold while it waits out retries.
const TARGET_QUEUE: usize = 64;
/// The longest wait a server may ask for before a retry.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(60);
/// At most one failure log line per target this often.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// The window of `max_per_minute`.
const MINUTE: Duration = Duration::from_secs(60);
/// The most of an error answer's body kept in a message.
const DETAIL_CHARS: usize = 200;
/// The most of an answer's body read.
const MAX_BODY: u64 = 64 * 1024;
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
            // A request in flight at the deadline ends by its own timeout,
            // which finishing caps at the deadline: a little slack.
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

/// One alert on its way to one target.
struct Pending {
    alert: Alert,
    /// Of its kind, held back since the last one sent.
    suppressed: u64,
    /// Attempts made so far.
    attempts: u32,
    /// Not before.
    due: Instant,
}

/// What one attempt came to.
enum Outcome {
    Sent,
    /// Worth another attempt, after the server's wait if it gave one.
    Retry(Option<Duration>, String),
    Fail(String),
    /// Telegram: the group became a supergroup with this id; resend there.
    Migrate(i64),
}

/// One target as the thread keeps it.
struct Target {
    index: usize,
    cfg: AlertTarget,
    agent: ureq::Agent,
    queue: VecDeque<Pending>,
    /// When each kind was last let through (`min_interval_s`).
    last: [Option<Instant>; AlertKind::ALL.len()],
    /// Held back per kind since, for the next one's note.
    held: [u64; AlertKind::ALL.len()],
    /// Alerts let through in the last minute (`max_per_minute`).
    minute: VecDeque<Instant>,
    /// A chat id Telegram moved the chat to.
    chat_id: Option<ChatId>,
    backoff: Backoff,
    last_warn: Option<Instant>,
    unwarned: u64,
}

impl Target {
    fn new(index: usize, cfg: &AlertTarget) -> Target {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            // A webhook that redirects is misconfigured; following it
            // would send the alert (and a Slack URL's secret path as the
            // Referer of nothing) somewhere else.
            .max_redirects(0)
            .user_agent(concat!("mmbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Target {
            index,
            cfg: cfg.clone(),
            agent,
            queue: VecDeque::new(),
            last: [None; AlertKind::ALL.len()],
            held: [0; AlertKind::ALL.len()],
            minute: VecDeque::new(),
            chat_id: None,
            backoff: Backoff::new(cfg.retry_backoff),
            last_warn: None,
            unwarned: 0,
        }
    }

    /// Queues `alert` unless a rate limit holds it back (`Err`: how).
    fn admit(&mut self, alert: &Alert, now: Instant) -> Result<(), Admit> {
        let k = alert.kind.index();
        if alert.kind != AlertKind::Stop {
            if self.last[k].is_some_and(|t| now.duration_since(t) < self.cfg.min_interval) {
                self.held[k] += 1;
                return Err(Admit::Suppressed);
            }
            while self.minute.front().is_some_and(|&t| now.duration_since(t) >= MINUTE) {
                self.minute.pop_front();
            }
            if self.minute.len() >= self.cfg.max_per_minute as usize {
                self.held[k] += 1;
                return Err(Admit::Suppressed);
            }
        }
        if self.queue.len() >= TARGET_QUEUE {
            return Err(Admit::Full);
        }
        self.last[k] = Some(now);
        self.minute.push_back(now);
        let suppressed = std::mem::take(&mut self.held[k]);
        self.queue.push_back(Pending { alert: alert.clone(), suppressed, attempts: 0, due: now });
        Ok(())
    }

    /// The secrets that must never appear in a message: a webhook URL (and
    /// its path), a bot token.
    fn secrets(&self) -> Vec<&str> {
        match &self.cfg.destination {
            Destination::Json { url } | Destination::Slack { url } => {
                let u = url.expose();
                let path = u.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]));
                [Some(u), path.filter(|p| p.len() > 1)].into_iter().flatten().collect()
            }
            Destination::Telegram { token, .. } => vec![token.expose()],
        }
    }

    fn scrub(&self, text: &str) -> String {
        self.secrets().iter().filter(|s| s.len() >= 4).fold(text.to_string(), |t, s| t.replace(s, "[secret]"))
    }

    /// One attempt at the front alert; `limit` caps the request's time.
    fn attempt(&mut self, limit: Option<Duration>) -> Outcome {
        let Some(p) = self.queue.front() else { return Outcome::Sent };
        let (url, body) = match &self.cfg.destination {
            Destination::Json { url } => (url.expose().to_string(), format::json_body(&p.alert, p.suppressed)),
            Destination::Slack { url } => (url.expose().to_string(), format::slack_body(&p.alert, p.suppressed)),
            Destination::Telegram { api_url, token, chat_id } => (
                format::telegram_url(api_url, token.expose()),
                format::telegram_body(self.chat_id.as_ref().unwrap_or(chat_id), &p.alert, p.suppressed),
            ),
        };
        let mut req = self.agent.post(&url).content_type("application/json");
        if let Some(limit) = limit {
            req = req.config().timeout_global(Some(limit.min(self.cfg.timeout))).build();
        }
        let mut resp = match req.send(body.to_string().as_bytes()) {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(None, self.transport_error(e)),
        };
        let status = resp.status().as_u16();
        let header = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        let asked = header.and_then(|h| parse_retry_after(&h, SystemTime::now())).map(|d| d.min(MAX_SERVER_WAIT));
        // An unreadable body reads as empty: the status is what counts for
        // Slack and JSON targets, and Telegram's is then no Bot API answer.
        let text = resp.body_mut().with_config().limit(MAX_BODY).read_to_string().unwrap_or_default();
        match &self.cfg.destination {
            Destination::Telegram { .. } => self.telegram_outcome(status, &text, asked),
            _ => self.http_outcome(status, &text, asked),
        }
    }

    /// Slack and generic JSON: the status says it (Slack answers `ok`, or a
    /// short error code such as `invalid_payload` or `no_service`).
    fn http_outcome(&self, status: u16, text: &str, asked: Option<Duration>) -> Outcome {
        let detail = || format!("HTTP {status}{}", self.excerpt(text));
        match status {
            200..=299 => Outcome::Sent,
            429 => Outcome::Retry(asked, detail()),
            408 | 500..=599 => Outcome::Retry(asked, detail()),
            _ => Outcome::Fail(detail()),
        }
    }

    /// Telegram: `ok` says it; `error_code` 429 carries `retry_after`.
    fn telegram_outcome(&self, status: u16, text: &str, asked: Option<Duration>) -> Outcome {
        let Some(a) = format::telegram_answer(text) else {
            let detail = format!("HTTP {status}: not a Bot API answer{}", self.excerpt(text));
            return match status {
                429 | 500..=599 => Outcome::Retry(asked, detail),
                _ => Outcome::Fail(detail),
            };
        };
        if a.ok && (200..300).contains(&status) {
            return Outcome::Sent;
        }
        if let Some(id) = a.migrate_to_chat_id {
            return Outcome::Migrate(id);
        }
        let code = a.error_code.unwrap_or(i64::from(status));
        let description = a.description.as_deref().map_or(String::new(), |d| format!(": {}", self.clip(d)));
        let detail = format!("Telegram error {code}{description}");
        match code {
            429 => Outcome::Retry(a.retry_after.map(|d| d.min(MAX_SERVER_WAIT)).or(asked), detail),
            500..=599 => Outcome::Retry(asked, detail),
            401 | 404 => Outcome::Fail(format!("{detail} (check the bot token in {})", self.token_var())),
            _ => Outcome::Fail(detail),
        }
    }

    fn token_var(&self) -> &str {
        self.cfg.secret_var.as_deref().unwrap_or(crate::config::alerts::TELEGRAM_TOKEN_VAR)
    }

    /// `: <first line of the body>`, scrubbed and cut (an HTML page is
    /// described, not pasted).
    fn excerpt(&self, text: &str) -> String {
        let t = text.trim();
        if t.is_empty() {
            String::new()
        } else if t.starts_with('<') {
            " (an HTML page)".to_string()
        } else {
            format!(": {}", self.clip(t.lines().next().unwrap_or_default()))
        }
    }

    fn clip(&self, s: &str) -> String {
        let s = self.scrub(s);
        match s.char_indices().nth(DETAIL_CHARS) {
            Some((i, _)) => format!("{}…", &s[..i]),
            None => s,
        }
    }

    /// A request that got no answer, in words (the error's own text may
    /// name the URL: scrubbed).
    fn transport_error(&self, e: ureq::Error) -> String {
        match e {
            ureq::Error::Timeout(_) => {
                format!("no answer within {} ms (timeout_ms)", self.cfg.timeout.as_millis())
            }
            ureq::Error::HostNotFound => "the host name does not resolve (DNS)".to_string(),
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused (nothing listens there)".to_string()
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                format!("no answer within {} ms (timeout_ms)", self.cfg.timeout.as_millis())
            }
            other => self.scrub(&format!("request failed: {other}")),
        }
    }
}

/// Why an alert was not queued for a target.
enum Admit {
    Suppressed,
    Full,
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
                    let t = &mut self.targets[i];
                    let why =
                        format!("{TARGET_QUEUE} alerts already wait for it; dropped a {} alert", alert.kind.name());
                    warn(t, &why);
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
                tracing::debug!("alerts: {}: {why}; again in {:.2} s", t.cfg.name, wait.as_secs_f64());
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
                warn(t, &format!("{n} alert{} {why}", if n == 1 { "" } else { "s" }));
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
    warn(t, &format!("a {} alert was not sent: {why}", p.alert.kind.name()));
}

/// A warning for `t`, at most once per [`WARN_EVERY`] (the skipped ones
/// are counted in the next).
fn warn(t: &mut Target, what: &str) {
    let now = Instant::now();
    if t.last_warn.is_some_and(|w| now.duration_since(w) < WARN_EVERY) {
        t.unwarned += 1;
        return;
    }
    let more = match std::mem::take(&mut t.unwarned) {
        0 => String::new(),
        n => format!(" ({n} more problem{} since the last warning)", if n == 1 { "" } else { "s" }),
    };
    t.last_warn = Some(now);
    tracing::warn!("alerts: {}: {}{more}", t.cfg.name, t.scrub(what));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::alerts::Secret;

    fn target(on: Triggers, min_interval_s: f64, max_per_minute: u32) -> Target {
        Target::new(
            0,
            &AlertTarget {
                name: "t".into(),
                named: true,
                destination: Destination::Slack { url: Secret::new("http://127.0.0.1:9/services/T0/B0/SEKRIT") },
                secret_var: None,
                on,
                min_interval: Duration::from_secs_f64(min_interval_s),
                max_per_minute,
                retries: 0,
                retry_backoff: Duration::from_millis(10),
                timeout: Duration::from_millis(200),
            },
        )
    }

    fn alert(kind: AlertKind) -> Alert {
        Alert::new(kind, "BTCUSDT", "x")
    }

    #[test]
    fn min_interval_holds_repeats_of_a_kind_and_counts_them_into_the_next() {
        let mut t = target(Triggers::ALL, 60.0, 100);
        let t0 = Instant::now();
        assert!(t.admit(&alert(AlertKind::Kill), t0).is_ok());
        assert!(matches!(t.admit(&alert(AlertKind::Kill), t0 + Duration::from_secs(1)), Err(Admit::Suppressed)));
        assert!(matches!(t.admit(&alert(AlertKind::Kill), t0 + Duration::from_secs(59)), Err(Admit::Suppressed)));
        assert!(t.admit(&alert(AlertKind::Disconnect), t0 + Duration::from_secs(2)).is_ok(), "another kind");
        assert!(t.admit(&alert(AlertKind::Kill), t0 + Duration::from_secs(60)).is_ok());
        let held: Vec<u64> = t.queue.iter().map(|p| p.suppressed).collect();
        assert_eq!(held, [0, 0, 2]);
        // The stop alert passes every limit.
        assert!(t.admit(&alert(AlertKind::Stop), t0 + Duration::from_secs(61)).is_ok());
        assert!(t.admit(&alert(AlertKind::Stop), t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn max_per_minute_caps_every_kind_together() {
        let mut t = target(Triggers::ALL, 0.0, 2);
        let t0 = Instant::now();
        assert!(t.admit(&alert(AlertKind::Kill), t0).is_ok());
        assert!(t.admit(&alert(AlertKind::ResyncStorm), t0).is_ok());
        assert!(matches!(t.admit(&alert(AlertKind::AiBudget), t0), Err(Admit::Suppressed)));
        assert!(t.admit(&alert(AlertKind::AiBudget), t0 + MINUTE).is_ok());
        assert_eq!(t.queue.back().map(|p| p.suppressed), Some(1));
    }

    #[test]
    fn secrets_are_scrubbed_from_any_text() {
        let t = target(Triggers::ALL, 0.0, 2);
        let s = t.scrub("POST http://127.0.0.1:9/services/T0/B0/SEKRIT failed; path /services/T0/B0/SEKRIT");
        assert!(!s.contains("SEKRIT"), "{s}");
        assert!(t.clip(&"y".repeat(500)).chars().count() <= DETAIL_CHARS + 1);
        assert_eq!(t.excerpt("<html><body>502</body></html>"), " (an HTML page)");
        assert_eq!(t.excerpt("no_service\n"), ": no_service");
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
