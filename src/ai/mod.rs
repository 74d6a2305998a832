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
pub mod ask;
pub mod cost;
pub mod eval;
pub mod key;
pub mod llm;
pub mod log;
pub mod offline;
pub mod prompt;
pub mod reply;
pub mod schema;

use std::collections::BTreeMap;
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
    /// Anthropic's Messages API directly (`x-api-key`, not OpenAI-compatible).
    Anthropic,
    /// Google Gemini through its OpenAI-compatible endpoint.
    Gemini,
    /// AWS Bedrock's OpenAI-compatible Chat Completions endpoint, with a
    /// Bedrock API key (`[ai] region` picks the endpoint).
    Bedrock,
    /// Any OpenAI-compatible server: `base_url` is required.
    Custom,
    /// Deterministic advice from book features; no LLM.
    Offline,
    /// Neutral advice.
    None,
}

impl Provider {
    pub const NAMES: &'static str =
        "\"auto\", \"holysheep\", \"openai\", \"anthropic\", \"gemini\", \"bedrock\", \"deepseek\", \"openrouter\", \"ollama\", \"custom\", \"offline\" or \"none\"";

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "auto" => Self::Auto,
            "holysheep" => Self::Holysheep,
            "openai" => Self::OpenAi,
            "deepseek" => Self::DeepSeek,
            "openrouter" => Self::OpenRouter,
            "ollama" => Self::Ollama,
            "anthropic" => Self::Anthropic,
            "gemini" => Self::Gemini,
            "bedrock" => Self::Bedrock,
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
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Bedrock => "bedrock",
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

    /// The preset base URL (`/chat/completions`, or `/messages` for
    /// Anthropic, is appended), as each provider documents it: OpenAI
    /// "API reference"; Anthropic "Messages" (`https://api.anthropic.com/v1/messages`);
    /// Gemini "OpenAI compatibility"
    /// (`https://generativelanguage.googleapis.com/v1beta/openai/`); DeepSeek
    /// "Your First API Call" (`https://api.deepseek.com/v1` is the
    /// OpenAI-compatible form); OpenRouter "Quickstart"; Ollama "OpenAI
    /// compatibility"; Bedrock "Invoke a model with the OpenAI Chat
    /// Completions API" (`https://bedrock-runtime.{region}.amazonaws.com/openai/v1`,
    /// a Bedrock API key as the bearer token), whose region is `[ai] region`
    /// (default us-east-1). Bedrock's newer `bedrock-mantle` endpoint
    /// (`https://bedrock-mantle.{region}.api.aws/v1`) works as a `base_url`.
    pub fn preset_base_url(self, region: Option<&str>) -> Option<String> {
        Some(match self.llm()? {
            Self::Holysheep => "https://api.holysheep.ai/v1".to_string(),
            Self::OpenAi => "https://api.openai.com/v1".to_string(),
            Self::DeepSeek => "https://api.deepseek.com/v1".to_string(),
            Self::OpenRouter => "https://openrouter.ai/api/v1".to_string(),
            Self::Ollama => "http://localhost:11434/v1".to_string(),
            Self::Anthropic => "https://api.anthropic.com/v1".to_string(),
            Self::Gemini => "https://generativelanguage.googleapis.com/v1beta/openai".to_string(),
            Self::Bedrock => {
                format!("https://bedrock-runtime.{}.amazonaws.com/openai/v1", region.unwrap_or("us-east-1"))
            }
            _ => return None,
        })
    }

    /// The strongest `response_format` the provider documents; `[ai]
    /// response_format` is capped at it (a refusal downgrades further at run
    /// time). OpenAI "Structured Outputs", Gemini "OpenAI compatibility"
    /// (structured output) and OpenRouter "Structured Outputs" take
    /// `json_schema`; DeepSeek "JSON Output" documents `json_object` only;
    /// Anthropic's Messages API has no `response_format` (the prompt asks
    /// for JSON). Unknown gateways start at `json_schema` and downgrade.
    pub fn best_response_format(self) -> ResponseFormat {
        match self.llm() {
            Some(Self::DeepSeek) => ResponseFormat::JsonObject,
            Some(Self::Anthropic) => ResponseFormat::None,
            _ => ResponseFormat::JsonSchema,
        }
    }

    /// Whether the provider's base URL serves `GET /models` (OpenAI
    /// "Models", Anthropic "List Models", Gemini and DeepSeek list models,
    /// OpenRouter and Ollama too). Bedrock's `bedrock-runtime` endpoint
    /// does not: AWS lists its models with `ListFoundationModels` on the
    /// control plane ("Get list of models"). Custom servers are tried (a
    /// 404 is a note).
    pub fn lists_models(self) -> bool {
        !matches!(self.llm(), Some(Self::Bedrock) | None)
    }

    /// The request format this provider speaks.
    pub fn wire(self) -> Wire {
        match self.llm() {
            Some(Self::Anthropic) => Wire::AnthropicMessages,
            _ => Wire::OpenAiChat,
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
            Some(Self::Anthropic) => "ANTHROPIC_API_KEY",
            Some(Self::Gemini) => "GEMINI_API_KEY",
            Some(Self::Bedrock) => "AWS_BEARER_TOKEN_BEDROCK",
            Some(_) => "MMBOT_AI_API_KEY",
        }
    }

    /// Whether a request without a key makes sense (a local Ollama needs none).
    pub fn key_optional(self) -> bool {
        self.llm() == Some(Self::Ollama)
    }

    /// The model asked when `[ai] model` is not set: the tutorial's gpt-4.1
    /// where the gateway serves it under that name, else a small current
    /// model each provider documents: OpenAI `gpt-5-mini` ("Models"),
    /// Anthropic's alias `claude-haiku-4-5` ("Models overview"), Gemini
    /// `gemini-2.5-flash` (stable, "Models"), DeepSeek `deepseek-chat`,
    /// Bedrock `openai.gpt-oss-120b-1:0` ("OpenAI models": the model IDs the
    /// Chat Completions endpoint serves).
    pub fn default_model(self) -> &'static str {
        match self.llm() {
            Some(Self::DeepSeek) => "deepseek-chat",
            Some(Self::OpenRouter) => "openai/gpt-4.1",
            Some(Self::Ollama) => "llama3.1",
            Some(Self::OpenAi) => "gpt-5-mini",
            Some(Self::Anthropic) => "claude-haiku-4-5",
            Some(Self::Gemini) => "gemini-2.5-flash",
            Some(Self::Bedrock) => "openai.gpt-oss-120b-1:0",
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
    /// AWS region of the Bedrock endpoint.
    pub region: Option<String>,
    pub temperature: f64,
    pub max_tokens: u32,
    pub interval: Duration,
    /// Advice lives this many intervals, then reads as neutral. The
    /// lifetime runs from the market snapshot the advice describes.
    pub ttl_intervals: f64,
    /// A reply whose snapshot is older than this when it arrives is dropped
    /// and counted (default: `interval`).
    pub max_age: Duration,
    /// When the advisor asks: every `interval`, or on a regime change.
    pub call_on: CallOn,
    /// `call_on = "regime_change"`: never sooner than this after the last
    /// call, and at least this often.
    pub min_interval: Duration,
    pub max_interval: Duration,
    pub connect_timeout: Duration,
    /// Whole request, per attempt.
    pub timeout: Duration,
    /// Retries on 429 and 5xx (and connection failures), never on other 4xx.
    pub retries: u32,
    /// First backoff; doubles per retry, with jitter.
    pub backoff: Duration,
    /// The `response_format` asked for first (downgraded automatically when
    /// the server refuses it: json_schema -> json_object -> none).
    pub response_format: ResponseFormat,
    /// Reasoning models' `reasoning_effort` (not sent when `None`).
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Bounds of the model's recommended spread multiplier.
    pub min_multiplier: f64,
    pub max_multiplier: f64,
    /// Whether the model's own `spread_multiplier` sizes the spread (true)
    /// or only its labels do, as in the original tutorial (false).
    pub apply_multiplier: bool,
    /// Calls stop for the UTC day when the projected spend would pass this.
    pub daily_budget_usd: Option<f64>,
    /// The advice log (JSONL), if any.
    pub log: Option<PathBuf>,
    /// Tried in order when the primary fails or is over budget.
    pub fallback: Vec<AiRoute>,
    /// `[ai.models."name"]`: per-model request parameters.
    pub models: BTreeMap<String, ModelParams>,
    pub prices: PriceTable,
}

impl Default for AiConfig {
    fn default() -> Self {
        let provider = Provider::Auto;
        Self {
            provider,
            base_url: provider.preset_base_url(None),
            model: provider.default_model().to_string(),
            key_var: provider.key_var().to_string(),
            env_file: PathBuf::from(".env"),
            region: None,
            temperature: 0.3,
            max_tokens: 800,
            interval: Duration::from_secs(5),
            ttl_intervals: 3.0,
            max_age: Duration::from_secs(5),
            call_on: CallOn::Interval,
            min_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(15),
            retries: 2,
            backoff: Duration::from_millis(500),
            response_format: ResponseFormat::JsonSchema,
            reasoning_effort: None,
            min_multiplier: 0.4,
            max_multiplier: 2.5,
            apply_multiplier: false,
            daily_budget_usd: None,
            log: None,
            fallback: Vec::new(),
            models: BTreeMap::new(),
            prices: PriceTable::defaults(),
        }
    }
}

impl AiConfig {
    /// How long advice stays valid, ns.
    pub fn ttl_ns(&self) -> i64 {
        (self.interval.as_nanos() as f64 * self.ttl_intervals) as i64
    }

    /// `{base_url}/chat/completions` (`{base_url}/messages` for Anthropic).
    pub fn endpoint(&self) -> Option<String> {
        let path = match self.provider.wire() {
            Wire::OpenAiChat => "chat/completions",
            Wire::AnthropicMessages => "messages",
        };
        self.base_url.as_ref().map(|b| format!("{b}/{path}"))
    }

    /// The same settings for another model (`mmbot ai compare`).
    pub fn with_model(&self, model: &str) -> Self {
        Self { model: model.to_string(), ..self.clone() }
    }

    /// The primary route: `provider`, `base_url`, `model`, `key_var`.
    pub fn primary_route(&self) -> AiRoute {
        AiRoute {
            provider: self.provider,
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            key_var: self.key_var.clone(),
        }
    }

    /// The primary route, then `[[ai.fallback]]` in order.
    pub fn routes(&self) -> Vec<AiRoute> {
        std::iter::once(self.primary_route()).chain(self.fallback.iter().cloned()).collect()
    }

    /// These settings with another route (one client per route).
    pub fn for_route(&self, r: &AiRoute) -> Self {
        Self {
            provider: r.provider,
            base_url: r.base_url.clone(),
            model: r.model.clone(),
            key_var: r.key_var.clone(),
            ..self.clone()
        }
    }

    /// `[ai.models."m"]` for `model`: exact name, then case-insensitive,
    /// then without a vendor prefix (`openai/gpt-5` reads `gpt-5`'s);
    /// empty (all defaults) when none matches.
    pub fn model_params(&self, model: &str) -> ModelParams {
        let find = |m: &str| {
            self.models
                .get(m)
                .or_else(|| self.models.iter().find(|(k, _)| k.eq_ignore_ascii_case(m)).map(|(_, p)| p))
                .cloned()
        };
        find(model).or_else(|| model.rsplit_once('/').and_then(|(_, m)| find(m))).unwrap_or_default()
    }

    /// Whether `model` is a reasoning model (sent `max_completion_tokens`,
    /// `reasoning_effort` and no `temperature`): `[ai.models."m"] reasoning`
    /// when given, else by name (OpenAI's gpt-5 family and o-series).
    pub fn is_reasoning(&self, model: &str) -> bool {
        self.model_params(model).reasoning.unwrap_or_else(|| reasoning_by_name(model))
    }
}

/// OpenAI's reasoning models by name: `gpt-5*` and `o1`/`o3`/`o4`...
/// (a vendor prefix such as OpenRouter's `openai/` is ignored).
pub fn reasoning_by_name(model: &str) -> bool {
    let m = model.rsplit_once('/').map_or(model, |(_, m)| m).to_ascii_lowercase();
    let b = m.as_bytes();
    m.starts_with("gpt-5") || (b.len() >= 2 && b[0] == b'o' && b[1].is_ascii_digit())
}

/// How a provider is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// `POST {base}/chat/completions`, `Authorization: Bearer`.
    OpenAiChat,
    /// `POST {base}/messages`, `x-api-key` and `anthropic-version`.
    AnthropicMessages,
}

/// One (provider, model) the advisor may ask: the primary or a fallback.
#[derive(Debug, Clone, PartialEq)]
pub struct AiRoute {
    pub provider: Provider,
    pub base_url: Option<String>,
    pub model: String,
    pub key_var: String,
}

impl AiRoute {
    /// "openai gpt-5-mini": how the route is shown.
    pub fn label(&self) -> String {
        format!("{} {}", self.provider.llm().unwrap_or(self.provider).name(), self.model)
    }
}

/// `[ai] call_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOn {
    /// Every `interval` (the tutorial's schedule).
    Interval,
    /// When the volatility or spread regime moved, no sooner than
    /// `min_interval` after the last call and at least every `max_interval`.
    RegimeChange,
}

impl CallOn {
    pub const NAMES: &'static str = "must be \"interval\" or \"regime_change\"";

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "interval" => Some(Self::Interval),
            "regime_change" | "regime" => Some(Self::RegimeChange),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Interval => "interval",
            Self::RegimeChange => "regime_change",
        }
    }
}

/// `response_format`: structured outputs where the provider has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `{"type":"json_schema","json_schema":{..., "strict": true}}`.
    JsonSchema,
    /// `{"type":"json_object"}`.
    JsonObject,
    /// Nothing sent: the prompt alone asks for JSON.
    None,
}

impl ResponseFormat {
    pub const NAMES: &'static str = "must be \"json_schema\", \"json_object\" or \"none\"";

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "json_schema" => Some(Self::JsonSchema),
            "json_object" => Some(Self::JsonObject),
            "none" | "text" => Some(Self::None),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::JsonSchema => "json_schema",
            Self::JsonObject => "json_object",
            Self::None => "none",
        }
    }

    /// The next format to try when a server refuses this one.
    pub fn downgrade(self) -> Option<Self> {
        match self {
            Self::JsonSchema => Some(Self::JsonObject),
            Self::JsonObject => Some(Self::None),
            Self::None => None,
        }
    }
}

/// `reasoning_effort` of OpenAI's reasoning models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningEffort {
    /// No reasoning (gpt-5.1 and later; their default).
    None,
    Minimal,
    Low,
    Medium,
    High,
    /// The most (newer gpt-5 models).
    XHigh,
}

impl ReasoningEffort {
    pub const NAMES: &'static str =
        "must be \"none\", \"minimal\", \"low\", \"medium\", \"high\" or \"xhigh\" (which a model takes: its page in \
         the provider's docs)";

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "minimal" => Some(Self::Minimal),
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            "xhigh" => Some(Self::XHigh),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::XHigh => "xhigh",
        }
    }
}

/// `[ai.models."name"]`: what differs for one model. Unset fields take the
/// `[ai]` values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelParams {
    /// Force (or deny) reasoning-model request rules.
    pub reasoning: Option<bool>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub reasoning_effort: Option<ReasoningEffort>,
    pub response_format: Option<ResponseFormat>,
    /// Extra request-body keys, sent as they are.
    pub extra: serde_json::Map<String, serde_json::Value>,
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
    Server { endpoint: String, status: u16, attempts: u32, detail: String, retry_after: Option<Duration> },
    #[error("{endpoint} refused the request with HTTP {status}{detail}: check [ai] model (\"{model}\") and base_url")]
    Refused { endpoint: String, model: String, status: u16, detail: String },
    #[error(
        "{endpoint} says this account has no quota left (HTTP {status} {code}{detail}): the account is \
         out of credit, not throttled, and waiting will not fix it; the advisor stops calling it. Add credit or raise the \
         account's spending limit with the provider, or configure [[ai.fallback]]"
    )]
    QuotaExhausted { endpoint: String, status: u16, code: String, detail: String },
    #[error(
        "the reply from {endpoint} is too large (over {limit_bytes} bytes) and was not read: a chat answer is a \
         few KiB; check [ai] base_url points at a chat-completions API, and [ai] max_tokens"
    )]
    TooLarge { endpoint: String, limit_bytes: u64 },
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
            Self::Unreachable { .. }
            | Self::TimedOut { .. }
            | Self::RateLimited { .. }
            | Self::Server { .. }
            | Self::QuotaExhausted { .. } => 4,
            Self::Unusable { .. } | Self::TooLarge { .. } => 5,
        }
    }
}
