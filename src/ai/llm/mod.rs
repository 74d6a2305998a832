//! The LLM client: one blocking request per question (ureq, rustls), on the
//! ai thread and never on the hot thread, in the wire format of the route's
//! provider ([`Wire`]): OpenAI Chat Completions (`POST
//! {base}/chat/completions`, `Authorization: Bearer`) or Anthropic Messages
//! (`POST {base}/messages`, `x-api-key`, `anthropic-version: 2023-06-01`,
//! Anthropic API reference "Versioning").
//!
//! * [`request`]: the body (reasoning models, per-model parameters,
//!   `response_format`).
//! * [`response`]: reading answers, error bodies and model lists.
//! * [`retry`]: `Retry-After` / `retry-after-ms`, quota versus rate limit,
//!   backoff with jitter.
//! * [`models`]: is `[ai] model` a name the provider lists (`ai check`).
//!
//! Why each rule:
//! * connect and total timeouts (`[ai] connect_timeout_s`, `timeout_s`): a
//!   stalled gateway must not hold the advisor past a few intervals; a
//!   timeout is not retried: by the time a second answer came, the book it
//!   describes would be old;
//! * 429 is retried after the server's wait (or a backoff), 5xx (Anthropic's
//!   529 "overloaded_error" included) and connection failures after
//!   exponential backoff with jitter, up to `[ai] retries`; a wait longer
//!   than the timeout ends the call and the advisor waits it out between
//!   calls; 429 `insufficient_quota` is never retried;
//! * other 4xx are never retried: the same request fails the same way;
//!   401/403 name the endpoint and the key's variable;
//! * a 400 naming `response_format` downgrades it one step (json_schema ->
//!   json_object -> none) and asks again at once, and not again this
//!   session, with a notice;
//! * bodies over [`MAX_BODY`] are not read ([`AiError::TooLarge`], not
//!   retried): a chat answer is a few KiB, a bigger body is the wrong URL.
//!
//! The key goes into its header and nowhere else; server messages are
//! redacted and shortened before they reach an error; the client never
//! prints (what it changed on its own is queued in [`LlmClient::take_notices`]).

pub mod models;
pub mod request;
pub mod response;
pub mod retry;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::ai::key::ApiKey;
use crate::ai::llm::request::RequestParams;
use crate::ai::llm::response::ReadContext;
use crate::ai::llm::retry::Backoff;
use crate::ai::{AiConfig, AiError, ResponseFormat, Wire};

/// Largest response body read: a chat reply is a few KiB.
pub const MAX_BODY: u64 = 1 << 20;
/// The Anthropic API version sent (Anthropic "Versioning").
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One message of a conversation (the system prompt, the market, and for a
/// repair retry the model's bad reply and what was wrong with it).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Self { role: Role::System, content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self { role: Role::User, content: content.into() }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self { role: Role::Assistant, content: content.into() }
    }
}

/// How the last [`LlmClient::complete`] went, answered or not: failed calls
/// are logged and charged with these too.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CallInfo {
    /// From the first request to the answer or the failure.
    pub latency: Duration,
    pub attempts: u32,
    /// The prompt's estimated tokens ([`crate::ai::prompt::estimate_chat_tokens`]).
    pub prompt_tokens_estimate: u64,
    /// Whether the provider bills the prompt though no answer came (timed
    /// out, or cut off mid-body).
    pub prompt_billed: bool,
    /// The `usage` of an answer that came but was unusable (empty, cut off
    /// at the token cap, a refusal): billed as reported.
    pub usage: Option<ReportedUsage>,
}

/// Tokens a provider reported for an answer (`tokens_in` includes `cached`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportedUsage {
    pub tokens_in: u64,
    pub cached: u64,
    pub tokens_out: u64,
}

/// One answered chat call.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The assistant message's text.
    pub content: String,
    /// The model as the server names it (or as asked, when it does not say).
    pub model: String,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// Prompt tokens served from the provider's cache (part of `tokens_in`).
    pub cached_tokens: u64,
    /// False when the server sent no `usage` and the tokens are estimated
    /// (4 characters a token).
    pub usage_reported: bool,
    pub finish_reason: Option<String>,
    /// From the first request to the answer, retries and waits included.
    pub latency: Duration,
    pub attempts: u32,
}

/// The client of one route (endpoint, model and key).
pub struct LlmClient {
    agent: ureq::Agent,
    wire: Wire,
    /// `[ai] base_url`, no trailing slash.
    base: String,
    endpoint: String,
    key: Option<ApiKey>,
    key_var: String,
    params: RequestParams,
    /// The `response_format` sent now (lowered when a server refuses one).
    format: ResponseFormat,
    timeout: Duration,
    connect_timeout: Duration,
    retries: u32,
    backoff: Backoff,
    last_call: CallInfo,
    notices: Vec<String>,
}

/// One HTTP exchange that got a status and a body.
struct Exchange {
    status: u16,
    text: String,
    content_type: Option<String>,
    retry_after: Option<Duration>,
}

/// An exchange that got no body to read.
struct NoAnswer {
    error: AiError,
    /// Worth another attempt (nothing was answered yet).
    retry: bool,
    /// The request was sent and answered or timed out, so the provider
    /// bills the prompt.
    billed: bool,
}

/// What one attempt came to.
enum Attempt {
    Done(Completion),
    /// Retry after the server's wait (`None`: a backoff), if attempts remain.
    Retry(Option<Duration>, AiError),
    Fail(AiError),
    /// The server refused `response_format`; its words.
    Downgrade(String),
}

impl LlmClient {
    /// A client for `cfg`'s route (build one per route from
    /// [`AiConfig::for_route`]); `key` is `None` only for providers that
    /// need none (a local Ollama).
    pub fn new(cfg: &AiConfig, key: Option<ApiKey>) -> Result<Self, AiError> {
        let no_endpoint = || AiError::NoLlm { provider: cfg.provider.name(), what: "there is no endpoint to call" };
        let endpoint = cfg.endpoint().ok_or_else(no_endpoint)?;
        let base = cfg.base_url.clone().ok_or_else(no_endpoint)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("mmbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            agent,
            wire: cfg.provider.wire(),
            base,
            endpoint,
            key_var: key.as_ref().map_or_else(|| format!("{} (unset)", cfg.key_var), |k| k.var().to_string()),
            key,
            params: RequestParams::of(cfg),
            format: match cfg.provider.wire() {
                // The Messages API has no response_format: the prompt asks for JSON.
                Wire::AnthropicMessages => ResponseFormat::None,
                Wire::OpenAiChat => request::first_format(cfg),
            },
            timeout: cfg.timeout,
            connect_timeout: cfg.connect_timeout,
            retries: cfg.retries,
            backoff: Backoff::new(cfg.backoff),
            last_call: CallInfo::default(),
            notices: Vec::new(),
        })
    }

    /// `{base_url}/chat/completions` (`/messages` for Anthropic).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether a `response_format` is still being sent.
    pub fn json_mode(&self) -> bool {
        self.format != ResponseFormat::None
    }

    /// The `response_format` sent now.
    pub fn response_format(&self) -> ResponseFormat {
        self.format
    }

    /// The model this client asks.
    pub fn model(&self) -> &str {
        &self.params.model
    }

    /// The request parameters (`[ai.models."m"]` over `[ai]`).
    pub fn params(&self) -> &RequestParams {
        &self.params
    }

    /// How the last call went (answered or failed).
    pub fn last_call(&self) -> CallInfo {
        self.last_call
    }

    /// What the client noticed and changed on its own (a format the server
    /// refused, downgraded), for the caller to show: the client never
    /// prints.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// The request body `messages` are sent as now.
    pub fn body(&self, messages: &[Message]) -> serde_json::Value {
        match self.wire {
            Wire::OpenAiChat => request::openai_body(&self.params, messages, self.format),
            Wire::AnthropicMessages => request::anthropic_body(&self.params, messages),
        }
    }

    /// Asks the model once (with retries as configured). `stop` cuts waits
    /// between attempts short. [`Self::last_call`] says how it went either way.
    pub fn complete(&mut self, messages: &[Message], stop: &AtomicBool) -> Result<Completion, AiError> {
        let started = Instant::now();
        self.last_call = CallInfo {
            prompt_tokens_estimate: crate::ai::prompt::estimate_chat_tokens(messages),
            ..CallInfo::default()
        };
        let r = self.complete_inner(messages, stop, started);
        self.last_call.latency = started.elapsed();
        r.map_err(|e| match e {
            AiError::Unreachable { endpoint, detail } => AiError::Unreachable {
                endpoint,
                detail: format!("{detail} ({} attempt{})", self.last_call.attempts, plural(self.last_call.attempts)),
            },
            e => e,
        })
    }

    fn complete_inner(
        &mut self,
        messages: &[Message],
        stop: &AtomicBool,
        started: Instant,
    ) -> Result<Completion, AiError> {
        let mut attempts = 0u32;
        let mut retries_left = self.retries;
        loop {
            attempts += 1;
            self.last_call.attempts = attempts;
            let body = self.body(messages).to_string();
            match self.attempt(body.as_bytes(), attempts) {
                Attempt::Done(mut c) => {
                    c.latency = started.elapsed();
                    c.attempts = attempts;
                    return Ok(c);
                }
                Attempt::Downgrade(detail) => {
                    let detail = detail.trim_end_matches('.');
                    // Bounded: the format only goes down, and None never downgrades.
                    let from = self.format;
                    self.format = from.downgrade().unwrap_or(ResponseFormat::None);
                    let to = match self.format {
                        ResponseFormat::None => "no response_format (the prompt alone asks for JSON)".to_string(),
                        f => f.name().to_string(),
                    };
                    self.notices.push(format!(
                        "{} refused response_format {}{detail}; asking with {to} from now on (set \
                         [ai.models.\"{}\"] response_format = \"{}\" to skip this)",
                        self.endpoint,
                        from.name(),
                        self.params.model,
                        self.format.name()
                    ));
                }
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(wait, e) => {
                    if retries_left == 0 || stop.load(Ordering::Relaxed) {
                        return Err(e);
                    }
                    retries_left -= 1;
                    let wait = wait.unwrap_or_else(|| self.backoff.wait(attempts));
                    if !crate::wait::sleep_unless(wait, stop) {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn attempt(&mut self, body: &[u8], attempts: u32) -> Attempt {
        let endpoint = self.endpoint.clone();
        let ex = match self.exchange(&endpoint, &endpoint, Some(body)) {
            Ok(ex) => ex,
            Err(n) => {
                self.last_call.prompt_billed |= n.billed;
                return if n.retry { Attempt::Retry(None, n.error) } else { Attempt::Fail(n.error) };
            }
        };
        let ct = ex.content_type.as_deref();
        let model = self.params.model.clone();
        match ex.status {
            200..=299 => {
                let ctx = ReadContext {
                    asked: &model,
                    prompt_estimate: self.last_call.prompt_tokens_estimate,
                    max_tokens: self.params.max_tokens,
                };
                let read = match self.wire {
                    Wire::OpenAiChat => response::openai_completion(&ex.text, ct, &ctx),
                    Wire::AnthropicMessages => response::anthropic_completion(&ex.text, ct, &ctx),
                };
                match read {
                    Ok(c) => Attempt::Done(c),
                    Err(detail) => {
                        // An empty or refused answer is still billed: keep its usage.
                        self.last_call.usage = response::reported_usage(&ex.text, self.wire);
                        Attempt::Fail(AiError::Unusable { endpoint, model, detail: self.redact(&detail) })
                    }
                }
            }
            400 | 422
                if self.format != ResponseFormat::None
                    && response::server_error(&ex.text).is_some_and(|e| e.names_response_format()) =>
            {
                Attempt::Downgrade(self.detail(&ex))
            }
            _ => match self.status_error(&ex, &endpoint, attempts) {
                (e, true) => match ex.retry_after {
                    // Longer than a call may take: the advisor waits between calls.
                    Some(w) if w > self.timeout => Attempt::Fail(e),
                    w => Attempt::Retry(w, e),
                },
                (e, false) => Attempt::Fail(e),
            },
        }
    }

    /// The error of a non-2xx answer, and whether it is worth a retry.
    fn status_error(&self, ex: &Exchange, endpoint: &str, attempts: u32) -> (AiError, bool) {
        let (endpoint, status) = (endpoint.to_string(), ex.status);
        let err = response::server_error(&ex.text).unwrap_or_default();
        match status {
            401 | 403 => {
                // The code only: some providers echo part of the key in the message.
                let code = err.code.clone().or(err.kind.clone());
                let detail = code.map_or(String::new(), |c| format!(": {}", self.redact(&c)));
                (AiError::KeyRejected { endpoint, var: self.key_var.clone(), status, detail }, false)
            }
            429 if retry::quota_exhausted(err.code.as_deref(), err.kind.as_deref(), err.detail_code.as_deref()) => {
                let code = err.detail_code.clone().or(err.code.clone()).or(err.kind.clone()).unwrap_or_default();
                (AiError::QuotaExhausted { endpoint, status, code, detail: self.detail(ex) }, false)
            }
            // Anthropic ("Errors"): an empty prepaid balance is a 400
            // invalid_request_error saying so; no retry or wait fixes it.
            400 if self.detail(ex).to_ascii_lowercase().contains("credit balance is too low") => (
                AiError::QuotaExhausted {
                    endpoint,
                    status,
                    code: "credit balance too low".to_string(),
                    detail: self.detail(ex),
                },
                false,
            ),
            429 => (AiError::RateLimited { endpoint, attempts, retry_after: ex.retry_after }, true),
            500..=599 => (
                AiError::Server { endpoint, status, attempts, detail: self.detail(ex), retry_after: ex.retry_after },
                true,
            ),
            _ => (
                AiError::Refused { endpoint, model: self.params.model.clone(), status, detail: self.detail(ex) },
                false,
            ),
        }
    }

    /// The models the provider serves (`GET {base}/models`, OpenAI and
    /// Anthropic `data[].id`; one attempt, no retries). A server without
    /// the endpoint answers [`AiError::Refused`] with status 404.
    pub fn list_models(&mut self) -> Result<Vec<String>, AiError> {
        let shown = format!("{}/models", self.base);
        // Anthropic pages its list, 20 by default, up to 1000 ("List Models").
        let url = match self.wire {
            Wire::AnthropicMessages => format!("{shown}?limit=1000"),
            Wire::OpenAiChat => shown.clone(),
        };
        let ex = self.exchange(&url, &shown, None).map_err(|n| n.error)?;
        match ex.status {
            200..=299 => response::model_ids(&ex.text, ex.content_type.as_deref())
                .map_err(|detail| AiError::Unusable { endpoint: shown, model: self.params.model.clone(), detail }),
            _ => Err(self.status_error(&ex, &shown, 1).0),
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![("Accept", "application/json".to_string())];
        match (self.wire, &self.key) {
            (Wire::OpenAiChat, Some(k)) => h.push(("Authorization", format!("Bearer {}", k.secret()))),
            (Wire::OpenAiChat, None) => {}
            (Wire::AnthropicMessages, k) => {
                if let Some(k) = k {
                    h.push(("x-api-key", k.secret().to_string()));
                }
                h.push(("anthropic-version", ANTHROPIC_VERSION.to_string()));
            }
        }
        h
    }

    /// One request: POST `body` (or GET without one) to `url`; `shown`
    /// names it in errors.
    fn exchange(&self, url: &str, shown: &str, body: Option<&[u8]>) -> Result<Exchange, NoAnswer> {
        let result = match body {
            Some(b) => {
                let mut req = self.agent.post(url);
                for (k, v) in self.headers() {
                    req = req.header(k, v);
                }
                req.content_type("application/json").send(b)
            }
            None => {
                let mut req = self.agent.get(url);
                for (k, v) in self.headers() {
                    req = req.header(k, v);
                }
                req.call()
            }
        };
        let mut resp = result.map_err(|e| self.no_answer(e, shown, None))?;
        let status = resp.status().as_u16();
        let header = |k: &str| resp.headers().get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        let retry_after = retry::retry_after(
            header("retry-after-ms").as_deref(),
            header("retry-after").as_deref(),
            SystemTime::now(),
        );
        let content_type = header("content-type");
        let declared = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        let ok = (200..300).contains(&status);
        let too_large = || NoAnswer {
            error: AiError::TooLarge { endpoint: shown.to_string(), limit_bytes: MAX_BODY },
            retry: false,
            billed: ok,
        };
        if declared.is_some_and(|n| n > MAX_BODY) {
            return Err(too_large());
        }
        let bytes = match resp.body_mut().with_config().limit(MAX_BODY).read_to_vec() {
            Ok(b) => b,
            Err(ureq::Error::BodyExceedsLimit(_)) => return Err(too_large()),
            Err(e) => return Err(self.no_answer(e, shown, Some(status))),
        };
        Ok(Exchange { status, text: String::from_utf8_lossy(&bytes).into_owned(), content_type, retry_after })
    }

    /// A request that got no readable answer: before a status (connect,
    /// send, wait) or while reading the body of `status`.
    fn no_answer(&self, e: ureq::Error, shown: &str, status: Option<u16>) -> NoAnswer {
        let endpoint = shown.to_string();
        // Sent and then timed out or cut off: the provider bills the prompt
        // (unless it had already answered with an error status).
        let billed = status.is_none_or(|s| (200..300).contains(&s));
        let timed_out = || NoAnswer {
            error: AiError::TimedOut {
                endpoint: endpoint.clone(),
                model: self.params.model.clone(),
                timeout_s: self.timeout.as_secs_f64(),
            },
            retry: false,
            billed,
        };
        let detail = match e {
            ureq::Error::Timeout(ureq::Timeout::Connect) => {
                format!("no connection within {} s ([ai] connect_timeout_s)", self.connect_timeout.as_secs_f64())
            }
            ureq::Error::Timeout(ureq::Timeout::Resolve) => "the host name did not resolve in time".to_string(),
            ureq::Error::Timeout(_) => return timed_out(),
            ureq::Error::HostNotFound => "the host name does not resolve (DNS)".to_string(),
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused (nothing listens there)".to_string()
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => return timed_out(),
            other => match status {
                Some(s) => {
                    let detail = self.redact(&format!("the reply (HTTP {s}) was cut off mid-body: {other}"));
                    return NoAnswer { error: AiError::Unreachable { endpoint, detail }, retry: false, billed };
                }
                None => format!("connection failed: {other}"),
            },
        };
        NoAnswer { error: AiError::Unreachable { endpoint, detail: self.redact(&detail) }, retry: true, billed: false }
    }

    fn redact(&self, text: &str) -> String {
        self.key.as_ref().map_or_else(|| text.to_string(), |k| k.redact(text))
    }

    /// `": message"` of an error answer, redacted; an HTML page is described,
    /// never pasted.
    fn detail(&self, ex: &Exchange) -> String {
        self.redact(&response::error_detail(&ex.text, ex.content_type.as_deref()))
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
