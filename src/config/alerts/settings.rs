//! The validated `[alerts]` ([`AlertsConfig`]) and its targets: where
//! each sends ([`Destination`], its secret held in a [`Secret`] that never
//! shows), what it takes (`on`) and how it is rate-limited and retried;
//! `describe` for `mmbot config check`. Read and checked by the parent
//! module.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::Triggers;

/// A webhook URL or bot token: `Debug` and `Display` show nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret as read (from the environment, `.env` or the file).
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
    pub fn from_raw(raw: &super::RawAlerts) -> Result<Self, super::AlertsError> {
        super::validate_alerts(raw)
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
