//! Market-regime advice off the hot path. The hot thread only ever reads the
//! newest [`crate::hot::advice::Advice`] it has been handed (a small `Copy`
//! value, latest wins); everything slow lives here, on the ai side thread.
//!
//! * [`advisor`]: the ai thread ([`advisor::start_advisor`]): every
//!   `interval` it takes the newest [`advisor::MarketSnapshot`], asks the
//!   LLM (or the offline rules), and hands [`crate::hot::advice::Advice`] on.
//! * [`llm`]: the OpenAI-compatible chat client (ureq, blocking, rustls):
//!   timeouts, retries with backoff and jitter, `Retry-After`.
//! * [`key`]: the API key, from the environment or `.env` only, never printed.
//! * [`prompt`] / [`reply`]: what is asked, and the defensive reading of what
//!   comes back (code fences, prose, Korean values, clamping, defaults).
//! * [`cost`]: token prices and cost per call, per day, per month.
//! * [`log`]: the advice log (JSONL), and replaying it in simulated time.
//! * [`offline`]: the deterministic advisor that backtests use.
//!
//! [`AiConfig`] is the validated `[ai]` section; [`AiError`] says what went
//! wrong, where, and what to do, and maps to `mmbot ai` exit codes.

pub mod advisor;
pub mod cost;
pub mod key;
pub mod llm;
pub mod log;
pub mod offline;
pub mod prompt;
pub mod reply;

use std::path::PathBuf;
use std::time::Duration;

use crate::ai::cost::PriceTable;

/// `[ai] provider`: an OpenAI-compatible gateway preset, or no LLM at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// HolySheep when its key is set (environment or `.env`), else offline.
    Auto,
    Holysheep,
    OpenAi,
    DeepSeek,
    OpenRouter,
    Ollama,
    /// Any OpenAI-compatible server: `base_url` is required.
    Custom,
    /// Deterministic advice from book features; no LLM.
    Offline,
    /// Neutral advice.
    None,
}

impl Provider {
    pub const NAMES: &'static str =
        "\"auto\", \"holysheep\", \"openai\", \"deepseek\", \"openrouter\", \"ollama\", \"custom\", \"offline\" or \"none\"";

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "auto" => Self::Auto,
            "holysheep" => Self::Holysheep,
            "openai" => Self::OpenAi,
            "deepseek" => Self::DeepSeek,
            "openrouter" => Self::OpenRouter,
            "ollama" => Self::Ollama,
            "custom" => Self::Custom,
            "offline" => Self::Offline,
            "none" => Self::None,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Holysheep => "holysheep",
            Self::OpenAi => "openai",
            Self::DeepSeek => "deepseek",
            Self::OpenRouter => "openrouter",
            Self::Ollama => "ollama",
            Self::Custom => "custom",
            Self::Offline => "offline",
            Self::None => "none",
        }
    }

    /// The gateway an LLM provider talks to (`auto` talks to HolySheep when it
    /// talks to one at all).
    pub fn llm(self) -> Option<Self> {
        match self {
            Self::Auto => Some(Self::Holysheep),
            Self::Offline | Self::None => None,
            p => Some(p),
        }
    }

    /// The preset base URL (`/chat/completions` is appended).
    pub fn preset_base_url(self) -> Option<&'static str> {
        match self.llm()? {
            Self::Holysheep => Some("https://api.holysheep.ai/v1"),
            Self::OpenAi => Some("https://api.openai.com/v1"),
            Self::DeepSeek => Some("https://api.deepseek.com/v1"),
            Self::OpenRouter => Some("https://openrouter.ai/api/v1"),
            Self::Ollama => Some("http://localhost:11434/v1"),
            _ => None,
        }
    }

    /// The environment variable that holds the key by default.
    pub fn key_var(self) -> &'static str {
        match self.llm() {
            Some(Self::Holysheep) | None => "HOLYSHEEP_API_KEY",
            Some(Self::OpenAi) => "OPENAI_API_KEY",
            Some(Self::DeepSeek) => "DEEPSEEK_API_KEY",
            Some(Self::OpenRouter) => "OPENROUTER_API_KEY",
            Some(Self::Ollama) => "OLLAMA_API_KEY",
            Some(_) => "MMBOT_AI_API_KEY",
        }
    }

    /// Whether a request without a key makes sense (a local Ollama needs none).
    pub fn key_optional(self) -> bool {
        self.llm() == Some(Self::Ollama)
    }

    /// The model asked when `[ai] model` is not set: the tutorial's gpt-4.1
    /// where the gateway serves it under that name.
    pub fn default_model(self) -> &'static str {
        match self.llm() {
            Some(Self::DeepSeek) => "deepseek-chat",
            Some(Self::OpenRouter) => "openai/gpt-4.1",
            Some(Self::Ollama) => "llama3.1",
            _ => "gpt-4.1",
        }
    }
}

/// The validated `[ai]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct AiConfig {
    pub provider: Provider,
    /// Base URL of the OpenAI-compatible API, no trailing slash (the preset's
    /// unless overridden; `None` for offline/none).
    pub base_url: Option<String>,
    pub model: String,
    /// The environment variable (or `.env` entry) holding the key.
    pub key_var: String,
    /// Where `.env` is read from when the environment lacks the key.
    pub env_file: PathBuf,
    pub temperature: f64,
    pub max_tokens: u32,
    pub interval: Duration,
    /// Advice lives this many intervals, then reads as neutral.
    pub ttl_intervals: f64,
    pub connect_timeout: Duration,
    /// Whole request, per attempt.
    pub timeout: Duration,
    /// Retries on 429 and 5xx (and connection failures), never on other 4xx.
    pub retries: u32,
    /// First backoff; doubles per retry, with jitter.
    pub backoff: Duration,
    /// Send `response_format: {"type":"json_object"}`.
    pub json_mode: bool,
    /// Bounds of the model's recommended spread multiplier.
    pub min_multiplier: f64,
    pub max_multiplier: f64,
    /// The advice log (JSONL), if any.
    pub log: Option<PathBuf>,
    pub prices: PriceTable,
}

impl Default for AiConfig {
    fn default() -> Self {
        let provider = Provider::Auto;
        Self {
            provider,
            base_url: provider.preset_base_url().map(str::to_string),
            model: provider.default_model().to_string(),
            key_var: provider.key_var().to_string(),
            env_file: PathBuf::from(".env"),
            temperature: 0.3,
            max_tokens: 800,
            interval: Duration::from_secs(5),
            ttl_intervals: 3.0,
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(15),
            retries: 2,
            backoff: Duration::from_millis(500),
            json_mode: true,
            min_multiplier: 0.4,
            max_multiplier: 2.5,
            log: None,
            prices: PriceTable::tutorial(),
        }
    }
}

impl AiConfig {
    /// How long advice stays valid, ns.
    pub fn ttl_ns(&self) -> i64 {
        (self.interval.as_nanos() as f64 * self.ttl_intervals) as i64
    }

    /// `{base_url}/chat/completions`.
    pub fn endpoint(&self) -> Option<String> {
        self.base_url.as_ref().map(|b| format!("{b}/chat/completions"))
    }

    /// The same settings for another model (`mmbot ai compare`).
    pub fn with_model(&self, model: &str) -> Self {
        Self { model: model.to_string(), ..self.clone() }
    }
}

/// Why the advisor could not start, a call failed, or a reply was unusable.
/// Every message says what was wrong, where, and what to do; none contains
/// the key.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    #[error(
        "no API key for [ai] provider \"{provider}\": {var} is not set in the environment nor in {env_file}; \
         add a line `{var}=...` to {env_file} (see .env.example) or export it, \
         or set [ai] provider = \"offline\" to run without an LLM"
    )]
    MissingKey { provider: &'static str, var: String, env_file: String },
    #[error("the API key in {var} ({source_of_key}) is unusable: {why}; fix the value there")]
    BadKey { var: String, source_of_key: String, why: String },
    #[error(
        "{endpoint} rejected the API key from {var} (HTTP {status}{detail}): check that {var} holds a valid, \
         active key for this provider and that [ai] base_url points at the provider the key belongs to"
    )]
    KeyRejected { endpoint: String, var: String, status: u16, detail: String },
    #[error("{endpoint} is unreachable: {detail}; check [ai] base_url, that the server is up, and the network")]
    Unreachable { endpoint: String, detail: String },
    #[error(
        "{endpoint} did not answer within {timeout_s} s (model {model}): raise [ai] timeout_s, \
         lower [ai] max_tokens, or pick a faster model"
    )]
    TimedOut { endpoint: String, model: String, timeout_s: f64 },
    #[error(
        "{endpoint} is rate-limiting this key (HTTP 429 on {attempts} attempt(s){}): \
         lower the call rate ([ai] interval_s) or raise the key's limits",
        retry_after.map_or(String::new(), |d| format!("; the server asks to wait {} s", d.as_secs_f64()))
    )]
    RateLimited { endpoint: String, attempts: u32, retry_after: Option<Duration> },
    #[error(
        "{endpoint} failed with HTTP {status} on {attempts} attempt(s){detail}: the provider is having trouble; \
         the bot keeps the last valid advice until it expires"
    )]
    Server { endpoint: String, status: u16, attempts: u32, detail: String },
    #[error("{endpoint} refused the request with HTTP {status}{detail}: check [ai] model (\"{model}\") and base_url")]
    Refused { endpoint: String, model: String, status: u16, detail: String },
    #[error("the reply from {endpoint} (model {model}) is unusable: {detail}")]
    Unusable { endpoint: String, model: String, detail: String },
    #[error("the advice log {path} cannot be {action}: {source}; check the path in [ai] log")]
    Log { path: String, action: &'static str, source: std::io::Error },
    #[error("the advice log {path} line {line} is not an advice record: {detail}")]
    LogFormat { path: String, line: usize, detail: String },
    #[error("[ai] provider \"{provider}\" does not call an LLM; {what}")]
    NoLlm { provider: &'static str, what: &'static str },
}

impl AiError {
    /// `mmbot ai` exit codes: 2 configuration or missing key, 3 key rejected,
    /// 4 unreachable, timed out or not serving (429, 5xx), 5 reply unusable.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::MissingKey { .. }
            | Self::BadKey { .. }
            | Self::Refused { .. }
            | Self::Log { .. }
            | Self::LogFormat { .. }
            | Self::NoLlm { .. } => 2,
            Self::KeyRejected { .. } => 3,
            Self::Unreachable { .. } | Self::TimedOut { .. } | Self::RateLimited { .. } | Self::Server { .. } => 4,
            Self::Unusable { .. } => 5,
        }
    }
}
