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
//! The validated types are in `settings`, the tests in `tests`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod kinds;
use crate::feed::endpoint::Url;
pub use kinds::{AlertKind, Triggers};

mod settings;

pub use settings::{
    AlertFormat, AlertTarget, AlertsConfig, ChatId, Destination, Secret, MAX_PER_MINUTE, MIN_INTERVAL_S, RETRIES,
    RETRY_BACKOFF_MS, TELEGRAM_API_URL, TELEGRAM_TOKEN_VAR, TIMEOUT_MS,
};

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
        Ok(Some(found)) => Ok(Secret::new(found.key.secret())),
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
                (Some(u), None) => (Secret::new(u.trim()), None, key("url")),
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
mod tests;
