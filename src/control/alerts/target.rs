//! One target as the alert thread keeps it: its own queue (alerts stay in
//! order while it waits out a retry), its rate limits (`min_interval_s`,
//! `max_per_minute`), one HTTP attempt and what each format's answer means
//! (sent, try again after a wait, give up), the secrets scrubbed from every
//! message, and its warnings, at most one a minute.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use super::format;
use super::{Alert, AlertKind};
use crate::ai::llm::retry::{parse_retry_after, Backoff};
use crate::config::alerts::{AlertTarget, ChatId, Destination};

/// Alerts one target may hold while it waits out retries.
pub(super) const TARGET_QUEUE: usize = 64;
/// The longest wait a server may ask for before a retry.
const MAX_SERVER_WAIT: Duration = Duration::from_secs(60);
/// At most one warning per target this often.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// The window of `max_per_minute`.
const MINUTE: Duration = Duration::from_secs(60);
/// The most of an error answer's body kept in a message.
const DETAIL_CHARS: usize = 200;
/// The most of an answer's body read.
const MAX_BODY: u64 = 64 * 1024;

/// One alert on its way to one target.
pub(super) struct Pending {
    pub(super) alert: Alert,
    /// Of its kind, held back since the last one sent.
    pub(super) suppressed: u64,
    /// Attempts made so far.
    pub(super) attempts: u32,
    /// Not before.
    pub(super) due: Instant,
}

/// What one attempt came to.
pub(super) enum Outcome {
    Sent,
    /// Worth another attempt, after the server's wait if it gave one.
    Retry(Option<Duration>, String),
    Fail(String),
    /// Telegram: the group became a supergroup with this id; resend there.
    Migrate(i64),
}

/// One target as the thread keeps it.
pub(super) struct Target {
    /// Its place in `[[alerts.webhook]]` (and in the stats).
    pub(super) index: usize,
    pub(super) cfg: AlertTarget,
    agent: ureq::Agent,
    pub(super) queue: VecDeque<Pending>,
    /// When each kind was last let through (`min_interval_s`).
    last: [Option<Instant>; AlertKind::ALL.len()],
    /// Held back per kind since, for the next one's note.
    held: [u64; AlertKind::ALL.len()],
    /// Alerts let through in the last minute (`max_per_minute`).
    minute: VecDeque<Instant>,
    /// A chat id Telegram moved the chat to.
    pub(super) chat_id: Option<ChatId>,
    pub(super) backoff: Backoff,
    last_warn: Option<Instant>,
    unwarned: u64,
}

impl Target {
    pub(super) fn new(index: usize, cfg: &AlertTarget) -> Target {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            // A webhook that redirects is misconfigured: the 3xx is an
            // answer (a failure), not a reason to post the alert elsewhere.
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
    pub(super) fn admit(&mut self, alert: &Alert, now: Instant) -> Result<(), Admit> {
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

    pub(super) fn scrub(&self, text: &str) -> String {
        self.secrets().iter().filter(|s| s.len() >= 4).fold(text.to_string(), |t, s| t.replace(s, "[secret]"))
    }

    /// One attempt at the front alert; `limit` caps the request's time.
    pub(super) fn attempt(&mut self, limit: Option<Duration>) -> Outcome {
        // Nothing queued: nothing to send.
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
            408 | 429 | 500..=599 => Outcome::Retry(asked, detail()),
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

    /// A warning about this target, at most once per [`WARN_EVERY`] (the
    /// skipped ones are counted in the next).
    pub(super) fn warn(&mut self, what: &str) {
        let now = Instant::now();
        if self.last_warn.is_some_and(|w| now.duration_since(w) < WARN_EVERY) {
            self.unwarned += 1;
            return;
        }
        let more = match std::mem::take(&mut self.unwarned) {
            0 => String::new(),
            n => format!(" ({n} more problem{} since the last warning)", if n == 1 { "" } else { "s" }),
        };
        self.last_warn = Some(now);
        tracing::warn!("alerts: {}: {}{more}", self.cfg.name, self.scrub(what));
    }
}

/// Why an alert was not queued for a target.
pub(super) enum Admit {
    Suppressed,
    Full,
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::alerts::Secret;
    use crate::control::alerts::Triggers;

    pub(in crate::control::alerts) fn target(on: Triggers, min_interval_s: f64, max_per_minute: u32) -> Target {
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
}
