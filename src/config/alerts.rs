//! `[alerts]` validated: where alerts go (`[[alerts.webhook]]` entries:
//! generic JSON, a Slack incoming webhook, Telegram's Bot API), which
//! events raise them (`on`, and the thresholds of the watch in
//! `crate::control::alerts::watch`), and how each target is rate-limited
//! and retried.
//!
//! Secrets never need to live in `mmbot.toml`: a Slack webhook URL (its
//! path is the credential) may come from the environment or `.env`
//! (`url_env`), and a Telegram bot token always does (`bot_token_env`).
//! They are read here, once, with the advisor's reader
//! ([`crate::ai::key::find`]: the environment first, then `.env`, without
//! setting process variables), kept in [`Secret`] (whose `Debug` shows
//! nothing), and never echoed in a message: a refused URL or token is
//! described, not quoted.
//!
//! The rate-limit, retry and trigger keys may be set for the whole section
//! and overridden per webhook; the watch's thresholds are the section's.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::control::alerts::{AlertKind, Triggers};
use crate::feed::endpoint::Url;

/// `[alerts]` as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    /// Where `url_env` and `bot_token_env` are looked up after the
    /// environment (default `.env`).
    pub env_file: Option<String>,
    pub disconnect_after_s: Option<f64>,
    pub resync_storm_count: Option<i64>,
    pub resync_storm_window_s: Option<f64>,
    pub position_near_pct: Option<f64>,
    /// Defaults for every webhook (each may set its own).
    pub on: Option<Vec<String>>,
    pub min_interval_s: Option<f64>,
    pub max_per_minute: Option<i64>,
    pub retries: Option<i64>,
    pub retry_backoff_ms: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub webhook: Option<Vec<RawWebhook>>,
}

/// One `[[alerts.webhook]]` entry as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: Option<String>,
    pub format: Option<String>,
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub bot_token_env: Option<String>,
    pub chat_id: Option<RawChatId>,
    pub api_url: Option<String>,
    pub on: Option<Vec<String>>,
    pub min_interval_s: Option<f64>,
    pub max_per_minute: Option<i64>,
    pub retries: Option<i64>,
    pub retry_backoff_ms: Option<i64>,
    pub timeout_ms: Option<i64>,
}

/// A Telegram `chat_id` as written: a number, or a string (`"@channel"`,
/// or a number in quotes).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawChatId {
    Int(i64),
    Text(String),
}

/// Why `[alerts]` was refused. Each message starts with the key.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("{key}: {why}")]
    Invalid { key: String, why: String },
    #[error(
        "{key}: {var} is not set in the environment nor in {env_file}; add a line `{var}=...` to {env_file} \
         or export it ({what}), or remove the [[alerts.webhook]] entry"
    )]
    MissingEnv { key: String, var: String, env_file: String, what: &'static str },
}

fn bad(key: &str, why: impl Into<String>) -> AlertsError {
    AlertsError::Invalid { key: key.to_string(), why: why.into() }
}

/// A webhook URL or bot token: `Debug` and `Display` show nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret given directly (tests).
    pub fn new(value: &str) -> Self {
        Self(value.to_string())
    }

    /// The value, for the request only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} characters)", self.0.chars().count())
    }
}

/// A Telegram chat: its numeric id or a public `@channelusername`
/// (Bot API "sendMessage": "Integer or String").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatId {
    Id(i64),
    Name(String),
}

impl ChatId {
    /// As sent in the request body: a JSON number or string.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ChatId::Id(i) => serde_json::Value::from(*i),
            ChatId::Name(n) => serde_json::Value::from(n.as_str()),
        }
    }
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatId::Id(i) => write!(f, "{i}"),
            ChatId::Name(n) => f.write_str(n),
        }
    }
}

/// What a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertFormat {
    Json,
    Slack,
    Telegram,
}

impl AlertFormat {
    pub const NAMES: &'static str = "json, slack, telegram";

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "json" => Some(Self::Json),
            "slack" => Some(Self::Slack),
            "telegram" => Some(Self::Telegram),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Slack => "slack",
            Self::Telegram => "telegram",
        }
    }
}

/// Where a target's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// POST the generic JSON body to `url`.
    Json { url: Secret },
    /// POST `{"text": ...}` to a Slack incoming webhook `url`.
    Slack { url: Secret },
    /// POST `{api_url}/bot{token}/sendMessage`.
    Telegram { api_url: String, token: Secret, chat_id: ChatId },
}

/// One validated `[[alerts.webhook]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertTarget {
    /// How logs and stats name it: `name`, else the format and host
    /// (`slack hooks.slack.com`); never a URL path or a token.
    pub name: String,
    /// Whether `name` was given.
    pub named: bool,
    pub destination: Destination,
    /// The variable the secret came from (`url_env`, `bot_token_env`);
    /// `None`: `url` was written in the file.
    pub secret_var: Option<String>,
    pub on: Triggers,
    /// The same kind is not sent again to this target within this.
    pub min_interval: Duration,
    pub max_per_minute: u32,
    pub retries: u32,
    /// The first retry's wait; doubled each retry.
    pub retry_backoff: Duration,
    /// One request's whole time.
    pub timeout: Duration,
}

impl AlertTarget {
    pub fn format(&self) -> AlertFormat {
        match self.destination {
            Destination::Json { .. } => AlertFormat::Json,
            Destination::Slack { .. } => AlertFormat::Slack,
            Destination::Telegram { .. } => AlertFormat::Telegram,
        }
    }
}

/// `[alerts]` validated. The default has no target: alerts are off.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    pub targets: Vec<AlertTarget>,
    pub env_file: PathBuf,
    /// A feed down longer than this raises `disconnect`.
    pub disconnect_after: Duration,
    /// This many resyncs within `resync_storm_window` raise `resync_storm`.
    pub resync_storm_count: u32,
    pub resync_storm_window: Duration,
    /// |position| at this percentage of `max_position` raises
    /// `position_near_limit` (1 to 100).
    pub position_near_pct: f64,
}

/// Defaults of the per-webhook keys.
pub const MIN_INTERVAL_S: f64 = 60.0;
pub const MAX_PER_MINUTE: u32 = 20;
pub const RETRIES: u32 = 3;
pub const RETRY_BACKOFF_MS: u64 = 500;
pub const TIMEOUT_MS: u64 = 5000;
/// Telegram's Bot API host (Bot API "Making requests").
pub const TELEGRAM_API_URL: &str = "https://api.telegram.org";
pub const TELEGRAM_TOKEN_VAR: &str = "TELEGRAM_BOT_TOKEN";

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            env_file: PathBuf::from(".env"),
            disconnect_after: Duration::from_secs(10),
            resync_storm_count: 5,
            resync_storm_window: Duration::from_secs(60),
            position_near_pct: 80.0,
        }
    }
}

impl AlertsConfig {
    /// Whether any target is configured.
    pub fn enabled(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Validates `[alerts]` (reads the secrets it names from the
    /// environment or `env_file`).
    pub fn from_raw(raw: &RawAlerts) -> Result<Self, AlertsError> {
        validate_alerts(raw)
    }

    /// The `[alerts]` part of `mmbot config check`: secrets by the variable
    /// they come from, a URL written in the file as `(not shown)`.
    pub fn describe(&self) -> String {
        let mut out = String::from("[alerts]\n");
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!("env_file = {:?}", self.env_file.display().to_string()));
        line(format!("disconnect_after_s = {}", self.disconnect_after.as_secs_f64()));
        line(format!("resync_storm_count = {}", self.resync_storm_count));
        line(format!("resync_storm_window_s = {}", self.resync_storm_window.as_secs_f64()));
        line(format!("position_near_pct = {}", self.position_near_pct));
        for t in &self.targets {
            line("\n[[alerts.webhook]]".into());
            if t.named {
                line(format!("name = {:?}", t.name));
            }
            line(format!("format = \"{}\"", t.format().name()));
            match (&t.destination, &t.secret_var) {
                (Destination::Telegram { api_url, chat_id, .. }, var) => {
                    line(format!("bot_token_env = {:?}", var.as_deref().unwrap_or(TELEGRAM_TOKEN_VAR)));
                    line(match chat_id {
                        ChatId::Id(i) => format!("chat_id = {i}"),
                        ChatId::Name(n) => format!("chat_id = {n:?}"),
                    });
                    line(format!("api_url = {api_url:?}"));
                }
                (_, Some(var)) => line(format!("url_env = {var:?}")),
                (_, None) => line("url = \"(not shown)\"".into()),
            }
            line(format!("on = {:?}", t.on.names()));
            line(format!("min_interval_s = {}", t.min_interval.as_secs_f64()));
            line(format!("max_per_minute = {}", t.max_per_minute));
            line(format!("retries = {}", t.retries));
            line(format!("retry_backoff_ms = {}", t.retry_backoff.as_millis()));
            line(format!("timeout_ms = {}", t.timeout.as_millis()));
        }
        out
    }
}

fn int_in(key: &str, v: Option<i64>, default: i64, lo: i64, hi: i64) -> Result<i64, AlertsError> {
    match v {
        None => Ok(default),
        Some(v) if (lo..=hi).contains(&v) => Ok(v),
        Some(v) => Err(bad(key, format!("{v} is not an integer from {lo} to {hi}"))),
    }
}

fn num_in(key: &str, v: Option<f64>, default: f64, lo: f64, hi: f64) -> Result<f64, AlertsError> {
    match v {
        None => Ok(default),
        Some(v) if v.is_finite() && (lo..=hi).contains(&v) => Ok(v),
        Some(v) => Err(bad(key, format!("{v} is not a number from {lo} to {hi}"))),
    }
}

fn triggers(key: &str, names: &[String]) -> Result<Triggers, AlertsError> {
    let mut on = Triggers::NONE;
    for n in names {
        let t = Triggers::parse(n.trim())
            .ok_or_else(|| bad(key, format!("{n:?} is not one of {}", AlertKind::TRIGGERS.join(", "))))?;
        on = on.with(t);
    }
    if on.is_empty() {
        return Err(bad(key, "is empty: list what to be told about, or remove the [[alerts.webhook]] entry"));
    }
    Ok(on)
}

/// The keys a webhook may override from the section, as written.
struct RawDelivery<'a> {
    on: &'a Option<Vec<String>>,
    min_interval_s: Option<f64>,
    max_per_minute: Option<i64>,
    retries: Option<i64>,
    retry_backoff_ms: Option<i64>,
    timeout_ms: Option<i64>,
}

/// The per-webhook keys, validated: the entry's value (named
/// `alerts.webhook[i].key`) over the section's (`alerts.key`).
#[derive(Clone, Copy)]
struct Delivery {
    on: Triggers,
    min_interval: Duration,
    max_per_minute: u32,
    retries: u32,
    retry_backoff: Duration,
    timeout: Duration,
}

impl Delivery {
    fn read(prefix: &str, d: &RawDelivery<'_>, base: Option<&Delivery>) -> Result<Delivery, AlertsError> {
        let key = |k: &str| format!("{prefix}.{k}");
        let base = base.copied().unwrap_or_else(Delivery::defaults);
        Ok(Delivery {
            on: match d.on {
                None => base.on,
                Some(names) => triggers(&key("on"), names)?,
            },
            min_interval: Duration::from_secs_f64(num_in(
                &key("min_interval_s"),
                d.min_interval_s,
                base.min_interval.as_secs_f64(),
                0.0,
                86_400.0,
            )?),
            max_per_minute: int_in(&key("max_per_minute"), d.max_per_minute, base.max_per_minute.into(), 1, 600)?
                as u32,
            retries: int_in(&key("retries"), d.retries, base.retries.into(), 0, 10)? as u32,
            retry_backoff: Duration::from_millis(int_in(
                &key("retry_backoff_ms"),
                d.retry_backoff_ms,
                base.retry_backoff.as_millis() as i64,
                1,
                60_000,
            )? as u64),
            timeout: Duration::from_millis(int_in(
                &key("timeout_ms"),
                d.timeout_ms,
                base.timeout.as_millis() as i64,
                100,
                120_000,
            )? as u64),
        })
    }

    fn defaults() -> Delivery {
        Delivery {
            on: Triggers::ALL,
            min_interval: Duration::from_secs_f64(MIN_INTERVAL_S),
            max_per_minute: MAX_PER_MINUTE,
            retries: RETRIES,
            retry_backoff: Duration::from_millis(RETRY_BACKOFF_MS),
            timeout: Duration::from_millis(TIMEOUT_MS),
        }
    }
}

/// An environment variable's name (never its value: people paste the
/// secret itself where its variable's name goes, so it is not echoed).
fn var_name(key: &str, v: &str) -> Result<String, AlertsError> {
    let v = v.trim();
    if !v.is_empty()
        && v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Ok(v.to_string());
    }
    Err(bad(
        key,
        "(not shown: it may be a secret) must be the NAME of an environment variable, e.g. \"SLACK_WEBHOOK_URL\"; \
         the secret itself goes in the environment or .env",
    ))
}

/// The value of `var` from the environment or `env_file`.
fn secret_of(key: &str, var: &str, env_file: &Path, what: &'static str) -> Result<Secret, AlertsError> {
    match crate::ai::key::find(var, env_file) {
        Ok(Some(found)) => Ok(Secret(found.key.secret().to_string())),
        Ok(None) => Err(AlertsError::MissingEnv {
            key: key.to_string(),
            var: var.to_string(),
            env_file: env_file.display().to_string(),
            what,
        }),
        Err(crate::ai::AiError::BadKey { var, source_of_key, why }) => {
            Err(bad(key, format!("the value of {var} ({source_of_key}) is unusable: {why}")))
        }
        Err(e) => Err(bad(key, e.to_string())),
    }
}

/// A webhook URL: http(s), and https unless on loopback where the format
/// carries a secret. Refused URLs are described, never quoted.
fn http_url(key: &str, u: &str, format: AlertFormat) -> Result<Url, AlertsError> {
    let parsed = Url::parse(u.trim()).map_err(|_| {
        bad(key, "(not shown) is not a URL: write it in full, e.g. \"https://hooks.slack.com/services/...\"")
    })?;
    if parsed.websocket {
        return Err(bad(key, "(not shown) must be an http:// or https:// URL"));
    }
    if !parsed.tls && format != AlertFormat::Json && !is_loopback(&parsed.host) {
        return Err(bad(
            key,
            format!(
                "(not shown) must be https:// (a {} request carries a secret; plain http:// is for 127.0.0.1 only)",
                format.name()
            ),
        ));
    }
    Ok(parsed)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn chat_id_of(key: &str, c: &RawChatId) -> Result<ChatId, AlertsError> {
    let username = |s: &str| {
        s.strip_prefix('@')
            .is_some_and(|n| (4..=32).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    match c {
        RawChatId::Int(0) => Err(bad(key, "0 is not a chat id")),
        RawChatId::Int(i) => Ok(ChatId::Id(*i)),
        RawChatId::Text(s) => match s.trim() {
            t if t.parse::<i64>().is_ok_and(|i| i != 0) => Ok(ChatId::Id(t.parse().unwrap_or_default())),
            t if username(t) => Ok(ChatId::Name(t.to_string())),
            _ => Err(bad(
                key,
                format!(
                    "{s:?} is not a chat id: give the chat's number (e.g. -1001234567890) or a public channel as \
                     \"@channelusername\""
                ),
            )),
        },
    }
}

/// A Telegram bot token's shape: `123456789:AA...` (the bot's id, a colon,
/// the secret part).
fn token_shape(t: &str) -> bool {
    t.split_once(':').is_some_and(|(id, rest)| {
        !id.is_empty()
            && id.chars().all(|c| c.is_ascii_digit())
            && !rest.is_empty()
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

fn webhook(i: usize, w: &RawWebhook, base: &Delivery, env_file: &Path) -> Result<AlertTarget, AlertsError> {
    let prefix = format!("alerts.webhook[{i}]");
    let key = |k: &str| format!("{prefix}.{k}");
    let format = match w.format.as_deref() {
        None => return Err(bad(&key("format"), format!("is missing: give one of {}", AlertFormat::NAMES))),
        Some(f) => AlertFormat::parse(f.trim())
            .ok_or_else(|| bad(&key("format"), format!("{f:?} is not one of {}", AlertFormat::NAMES)))?,
    };
    let not_for = |k: &str, set: bool, hint: &str| -> Result<(), AlertsError> {
        match set {
            true => Err(bad(&key(k), format!("is not used by format = \"{}\"; {hint}", format.name()))),
            false => Ok(()),
        }
    };
    let (destination, secret_var, host) = match format {
        AlertFormat::Telegram => {
            let hint = "a telegram target takes bot_token_env, chat_id and (optionally) api_url";
            not_for("url", w.url.is_some(), hint)?;
            not_for("url_env", w.url_env.is_some(), hint)?;
            let var = var_name(&key("bot_token_env"), w.bot_token_env.as_deref().unwrap_or(TELEGRAM_TOKEN_VAR))?;
            let chat_id = match &w.chat_id {
                None => {
                    return Err(bad(
                        &key("chat_id"),
                        "is missing: give the chat's number (e.g. -1001234567890) or \"@channelusername\"",
                    ))
                }
                Some(c) => chat_id_of(&key("chat_id"), c)?,
            };
            let api_url = w.api_url.as_deref().unwrap_or(TELEGRAM_API_URL).trim().trim_end_matches('/').to_string();
            let host = http_url(&key("api_url"), &api_url, format)?.host;
            let token = secret_of(&key("bot_token_env"), &var, env_file, "the bot token @BotFather gave")?;
            if !token_shape(token.expose()) {
                return Err(bad(
                    &key("bot_token_env"),
                    format!(
                        "the value of {var} (not shown) is not a bot token: it looks like 123456789:AAE..., as \
                         @BotFather gives it"
                    ),
                ));
            }
            (Destination::Telegram { api_url, token, chat_id }, Some(var), host)
        }
        AlertFormat::Json | AlertFormat::Slack => {
            let hint = "bot_token_env, chat_id and api_url are for format = \"telegram\"";
            not_for("bot_token_env", w.bot_token_env.is_some(), hint)?;
            not_for("chat_id", w.chat_id.is_some(), hint)?;
            not_for("api_url", w.api_url.is_some(), hint)?;
            let (url, var, url_key) = match (&w.url, &w.url_env) {
                (Some(_), Some(_)) => {
                    return Err(bad(&key("url"), "is set with url_env: give one of them (url_env keeps it secret)"))
                }
                (None, None) => {
                    return Err(bad(
                        &key("url"),
                        "is missing: give url = \"https://...\", or url_env = \"NAME\" to read it from the \
                         environment or .env (a Slack webhook URL is a secret)",
                    ))
                }
                (Some(u), None) => (Secret(u.trim().to_string()), None, key("url")),
                (None, Some(v)) => {
                    let var = var_name(&key("url_env"), v)?;
                    let what = "the webhook's URL";
                    (secret_of(&key("url_env"), &var, env_file, what)?, Some(var), key("url_env"))
                }
            };
            let host = http_url(&url_key, url.expose(), format)?.host;
            let destination = match format {
                AlertFormat::Slack => Destination::Slack { url },
                _ => Destination::Json { url },
            };
            (destination, var, host)
        }
    };
    let (name, named) = match w.name.as_deref().map(str::trim) {
        None => (format!("{} {host}", format.name()), false),
        Some(n) if !n.is_empty() && n.chars().count() <= 64 && !n.chars().any(char::is_control) => {
            (n.to_string(), true)
        }
        Some(n) => return Err(bad(&key("name"), format!("{n:?} must be 1 to 64 printable characters"))),
    };
    let d = RawDelivery {
        on: &w.on,
        min_interval_s: w.min_interval_s,
        max_per_minute: w.max_per_minute,
        retries: w.retries,
        retry_backoff_ms: w.retry_backoff_ms,
        timeout_ms: w.timeout_ms,
    };
    let d = Delivery::read(&prefix, &d, Some(base))?;
    Ok(AlertTarget {
        name,
        named,
        destination,
        secret_var,
        on: d.on,
        min_interval: d.min_interval,
        max_per_minute: d.max_per_minute,
        retries: d.retries,
        retry_backoff: d.retry_backoff,
        timeout: d.timeout,
    })
}

/// `[alerts]` validated; every refusal names its key.
pub(super) fn validate_alerts(raw: &RawAlerts) -> Result<AlertsConfig, AlertsError> {
    let d = AlertsConfig::default();
    let env_file = match raw.env_file.as_deref().map(str::trim) {
        None => d.env_file.clone(),
        Some("") => return Err(bad("alerts.env_file", "\"\": give a path such as \".env\", or leave the key out")),
        Some(p) => PathBuf::from(p),
    };
    let secs = |key: &str, v: Option<f64>, default: Duration, lo: f64, hi: f64| {
        num_in(key, v, default.as_secs_f64(), lo, hi).map(Duration::from_secs_f64)
    };
    let each = RawDelivery {
        on: &raw.on,
        min_interval_s: raw.min_interval_s,
        max_per_minute: raw.max_per_minute,
        retries: raw.retries,
        retry_backoff_ms: raw.retry_backoff_ms,
        timeout_ms: raw.timeout_ms,
    };
    let base = Delivery::read("alerts", &each, None)?;
    let mut targets: Vec<AlertTarget> = Vec::new();
    for (i, w) in raw.webhook.iter().flatten().enumerate() {
        let mut t = webhook(i, w, &base, &env_file)?;
        if targets.iter().any(|o| o.name == t.name) {
            if t.named {
                return Err(bad(
                    &format!("alerts.webhook[{i}].name"),
                    format!("{:?} names another entry too: give each its own name", t.name),
                ));
            }
            t.name = format!("{} #{i}", t.name);
        }
        targets.push(t);
    }
    Ok(AlertsConfig {
        targets,
        env_file,
        disconnect_after: secs("alerts.disconnect_after_s", raw.disconnect_after_s, d.disconnect_after, 1.0, 3600.0)?,
        resync_storm_count: int_in(
            "alerts.resync_storm_count",
            raw.resync_storm_count,
            d.resync_storm_count.into(),
            1,
            10_000,
        )? as u32,
        resync_storm_window: secs(
            "alerts.resync_storm_window_s",
            raw.resync_storm_window_s,
            d.resync_storm_window,
            1.0,
            86_400.0,
        )?,
        position_near_pct: num_in("alerts.position_near_pct", raw.position_near_pct, d.position_near_pct, 1.0, 100.0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[alerts]` text (the section's keys, then webhooks) validated.
    fn read(text: &str) -> Result<AlertsConfig, String> {
        #[derive(Deserialize)]
        struct Doc {
            alerts: RawAlerts,
        }
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        validate_alerts(&doc.alerts).map_err(|e| e.to_string())
    }

    fn env_file(name: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mmbot-alerts-cfg-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join(".env");
        std::fs::write(&f, body).unwrap();
        f
    }

    #[test]
    fn defaults_mean_no_targets_and_documented_thresholds() {
        let c = read("[alerts]\n").unwrap();
        assert_eq!(c, AlertsConfig::default());
        assert!(!c.enabled());
        assert_eq!((c.disconnect_after.as_secs(), c.resync_storm_count, c.resync_storm_window.as_secs()), (10, 5, 60));
        assert_eq!(c.position_near_pct, 80.0);
    }

    #[test]
    fn json_and_slack_targets_with_defaults_and_overrides() {
        let c = read(
            "[alerts]\nretries = 1\nmin_interval_s = 5\n\
             [[alerts.webhook]]\nformat = \"json\"\nurl = \"http://10.0.0.5:9000/hook\"\n\
             [[alerts.webhook]]\nname = \"ops\"\nformat = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/x\"\n\
             on = [\"kill\", \"disconnect\"]\nretries = 0\ntimeout_ms = 800\n",
        )
        .unwrap();
        let [j, s] = &c.targets[..] else { panic!("{c:?}") };
        assert_eq!((j.name.as_str(), j.format(), j.retries), ("json 10.0.0.5", AlertFormat::Json, 1));
        assert_eq!((j.min_interval.as_secs(), j.max_per_minute, j.on), (5, 20, Triggers::ALL));
        assert_eq!((j.retry_backoff.as_millis(), j.timeout.as_millis()), (500, 5000));
        assert_eq!(
            (s.name.as_str(), s.format(), s.retries, s.timeout.as_millis()),
            ("ops", AlertFormat::Slack, 0, 800)
        );
        assert!(s.on.contains(AlertKind::Kill) && s.on.contains(AlertKind::Reconnect));
        assert!(!s.on.contains(AlertKind::Stop));
        // Neither Debug nor describe shows the URL.
        let shown = format!("{c:?}\n{}", c.describe());
        assert!(!shown.contains("/services/T/B/x") && !shown.contains("/hook"), "{shown}");
    }

    #[test]
    fn secrets_come_from_the_environment_or_env_file_and_are_never_shown() {
        let f = env_file(
            "ok",
            "MMBOT_ALERTS_TEST_SLACK=https://hooks.slack.com/services/T0/B0/sekrit\n\
             MMBOT_ALERTS_TEST_TG=123456:AAE-secret_token\n",
        );
        let text = format!(
            "[alerts]\nenv_file = {:?}\n\
             [[alerts.webhook]]\nformat = \"slack\"\nurl_env = \"MMBOT_ALERTS_TEST_SLACK\"\n\
             [[alerts.webhook]]\nformat = \"slack\"\nurl_env = \"MMBOT_ALERTS_TEST_SLACK\"\n\
             [[alerts.webhook]]\nformat = \"telegram\"\nbot_token_env = \"MMBOT_ALERTS_TEST_TG\"\nchat_id = \"@mmbot_ops\"\n\
             [[alerts.webhook]]\nformat = \"telegram\"\nbot_token_env = \"MMBOT_ALERTS_TEST_TG\"\nchat_id = -100123\n\
             api_url = \"http://127.0.0.1:9/\"\n",
            f.display().to_string()
        );
        let c = read(&text).unwrap();
        assert!(std::env::var("MMBOT_ALERTS_TEST_SLACK").is_err(), "no process variable is set");
        let names: Vec<&str> = c.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["slack hooks.slack.com", "slack hooks.slack.com #1", "telegram api.telegram.org", "telegram 127.0.0.1"]
        );
        match &c.targets[0].destination {
            Destination::Slack { url } => assert_eq!(url.expose(), "https://hooks.slack.com/services/T0/B0/sekrit"),
            d => panic!("{d:?}"),
        }
        match &c.targets[3].destination {
            Destination::Telegram { api_url, token, chat_id } => {
                assert_eq!((api_url.as_str(), token.expose()), ("http://127.0.0.1:9", "123456:AAE-secret_token"));
                assert_eq!(chat_id, &ChatId::Id(-100123));
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(c.targets[2].secret_var.as_deref(), Some("MMBOT_ALERTS_TEST_TG"));
        let shown = format!("{c:?}\n{}", c.describe());
        assert!(!shown.contains("sekrit") && !shown.contains("secret_token"), "{shown}");
        assert!(shown.contains("url_env = \"MMBOT_ALERTS_TEST_SLACK\"") && shown.contains("chat_id = \"@mmbot_ops\""));
        // The description reads back as the same settings.
        let again = read(&c.describe().replace("[alerts]\n", &format!("[alerts]\n# {}\n", "again"))).unwrap();
        assert_eq!(again, c);
        let _ = std::fs::remove_dir_all(f.parent().unwrap());
    }

    #[test]
    fn a_missing_variable_says_where_it_was_looked_for() {
        let f = env_file("missing", "OTHER=1\n");
        let e = read(&format!(
            "[alerts]\nenv_file = {:?}\n[[alerts.webhook]]\nformat = \"telegram\"\nchat_id = 42\n",
            f.display().to_string()
        ))
        .unwrap_err();
        assert!(
            e.starts_with("alerts.webhook[0].bot_token_env: TELEGRAM_BOT_TOKEN is not set")
                && e.contains(&f.display().to_string())
                && e.contains("TELEGRAM_BOT_TOKEN=..."),
            "{e}"
        );
        std::fs::write(&f, "MMBOT_ALERTS_TEST_BADTOKEN=not-a-token-at-all\n").unwrap();
        let e = read(&format!(
            "[alerts]\nenv_file = {:?}\n[[alerts.webhook]]\nformat = \"telegram\"\nchat_id = 42\n\
             bot_token_env = \"MMBOT_ALERTS_TEST_BADTOKEN\"\n",
            f.display().to_string()
        ))
        .unwrap_err();
        assert!(e.contains("bot_token_env") && e.contains("@BotFather") && !e.contains("not-a-token"), "{e}");
        let _ = std::fs::remove_dir_all(f.parent().unwrap());
    }

    #[test]
    fn bad_values_name_the_key() {
        let hook =
            |extra: &str| format!("[alerts]\n[[alerts.webhook]]\nformat = \"json\"\nurl = \"http://h/\"\n{extra}");
        let two = "[alerts]\n[[alerts.webhook]]\nformat = \"json\"\nurl = \"http://h/\"\n[[alerts.webhook]]\n";
        for (text, start, hint) in [
            (format!("{two}format = \"teams\"\n"), "alerts.webhook[1].format: \"teams\"", "is not one of json, slack, telegram"),
            (format!("{two}url = \"http://h/\"\n"), "alerts.webhook[1].format", "is missing"),
            (hook("on = [\"kill\", \"fire\"]\n"), "alerts.webhook[0].on: \"fire\"", "position_near_limit"),
            (hook("on = []\n"), "alerts.webhook[0].on", "is empty"),
            ("[alerts]\non = [\"reconnect\"]\n".into(), "alerts.on: \"reconnect\"", "is not one of"),
            (hook("retries = 11\n"), "alerts.webhook[0].retries", "from 0 to 10"),
            ("[alerts]\nretries = -1\n".into(), "alerts.retries", "from 0 to 10"),
            (hook("retry_backoff_ms = 0\n"), "alerts.webhook[0].retry_backoff_ms", "from 1"),
            (hook("timeout_ms = 50\n"), "alerts.webhook[0].timeout_ms", "from 100"),
            (hook("max_per_minute = 0\n"), "alerts.webhook[0].max_per_minute", "from 1"),
            (hook("min_interval_s = -1\n"), "alerts.webhook[0].min_interval_s", "from 0"),
            ("[alerts]\ndisconnect_after_s = 0\n".into(), "alerts.disconnect_after_s", "from 1 to 3600"),
            ("[alerts]\ndisconnect_after_s = 3601\n".into(), "alerts.disconnect_after_s", "from 1 to 3600"),
            ("[alerts]\nresync_storm_count = 0\n".into(), "alerts.resync_storm_count", "from 1"),
            ("[alerts]\nresync_storm_window_s = 0\n".into(), "alerts.resync_storm_window_s", "from 1"),
            ("[alerts]\nposition_near_pct = 101\n".into(), "alerts.position_near_pct", "from 1 to 100"),
            ("[alerts]\nposition_near_pct = 0\n".into(), "alerts.position_near_pct", "from 1 to 100"),
            ("[alerts]\nenv_file = \"\"\n".into(), "alerts.env_file", "path"),
            (hook("url_env = \"X\"\n"), "alerts.webhook[0].url", "is set with url_env"),
            (hook("chat_id = 5\n"), "alerts.webhook[0].chat_id", "format = \"telegram\""),
            (hook("name = \"\"\n"), "alerts.webhook[0].name", "1 to 64"),
            ("[alerts]\n[[alerts.webhook]]\nformat = \"slack\"\n".into(), "alerts.webhook[0].url", "url_env"),
            (
                "[alerts]\n[[alerts.webhook]]\nformat = \"slack\"\nurl = \"http://hooks.slack.com/services/x\"\n".into(),
                "alerts.webhook[0].url",
                "must be https://",
            ),
            (
                "[alerts]\n[[alerts.webhook]]\nformat = \"json\"\nurl = \"hooks.example.com/x\"\n".into(),
                "alerts.webhook[0].url",
                "not a URL",
            ),
            (
                "[alerts]\n[[alerts.webhook]]\nformat = \"slack\"\nurl_env = \"https://hooks.slack.com/x\"\n".into(),
                "alerts.webhook[0].url_env",
                "NAME of an environment variable",
            ),
            (
                "[alerts]\n[[alerts.webhook]]\nformat = \"telegram\"\nurl = \"https://x/\"\n".into(),
                "alerts.webhook[0].url",
                "bot_token_env, chat_id",
            ),
            (
                "[alerts]\n[[alerts.webhook]]\nformat = \"telegram\"\n".into(),
                "alerts.webhook[0].chat_id",
                "is missing",
            ),
            (
                "[alerts]\n[[alerts.webhook]]\nformat = \"telegram\"\nchat_id = \"my channel\"\n".into(),
                "alerts.webhook[0].chat_id",
                "@channelusername",
            ),
            (
                "[alerts]\n[[alerts.webhook]]\nformat = \"telegram\"\nchat_id = 1\napi_url = \"http://api.telegram.org\"\n"
                    .into(),
                "alerts.webhook[0].api_url",
                "must be https://",
            ),
            (
                format!("{two}name = \"a\"\nformat = \"json\"\nurl = \"http://h/\"\n[[alerts.webhook]]\nname = \"a\"\n\
                         format = \"json\"\nurl = \"http://h/\"\n"),
                "alerts.webhook[2].name",
                "names another entry",
            ),
        ] {
            let e = read(&text).unwrap_err();
            assert!(e.starts_with(start) && e.contains(hint), "{text}\n=> {e}");
        }
        // Unknown keys are refused by name, in the section and in an entry.
        assert!(read("[alerts]\nfrequency = 1\n").unwrap_err().contains("frequency"));
        assert!(read(&hook("colour = 1\n")).unwrap_err().contains("colour"));
        // A URL refused is never quoted (a Slack URL's path is its secret).
        let e =
            read("[alerts]\n[[alerts.webhook]]\nformat = \"slack\"\nurl = \"http://h/services/SEKRIT\"\n").unwrap_err();
        assert!(!e.contains("SEKRIT"), "{e}");
    }

    #[test]
    fn chat_ids_and_token_shapes() {
        let id = |c: RawChatId| chat_id_of("k", &c).map_err(|e| e.to_string());
        assert_eq!(id(RawChatId::Int(-100)).unwrap(), ChatId::Id(-100));
        assert_eq!(id(RawChatId::Text(" -1001234 ".into())).unwrap(), ChatId::Id(-1_001_234));
        assert_eq!(id(RawChatId::Text("@mmbot_alerts".into())).unwrap(), ChatId::Name("@mmbot_alerts".into()));
        assert_eq!(ChatId::Name("@abcd".into()).to_json(), serde_json::json!("@abcd"));
        assert_eq!(ChatId::Id(7).to_json(), serde_json::json!(7));
        for bad in [RawChatId::Int(0), RawChatId::Text("@ab".into()), RawChatId::Text("chan".into())] {
            assert!(id(bad).is_err());
        }
        assert!(token_shape("123456789:AAE_x-Y") && !token_shape(":x") && !token_shape("12:") && !token_shape("a:b"));
        assert!(!token_shape("12:a b") && !token_shape("12345"));
    }
}
