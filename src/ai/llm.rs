//! The OpenAI-compatible chat client: one blocking `POST
//! {base_url}/chat/completions` (ureq, rustls) per question, on the ai
//! thread and never on the hot thread.
//!
//! Why each rule:
//! * connect and total timeouts (`[ai] connect_timeout_s`, `timeout_s`): a
//!   stalled gateway must not hold the advisor past a few intervals;
//! * 429 is retried after the server's `Retry-After` (or a backoff), 5xx and
//!   connection failures after exponential backoff with jitter (so many bots
//!   do not retry in step), up to `[ai] retries`; a `Retry-After` longer than
//!   the timeout ends the call and the advisor waits it out between calls;
//! * other 4xx are never retried: the same request will fail the same way;
//!   401/403 name the endpoint and the key's variable;
//! * a timeout is not retried: by the time a second answer came, the book it
//!   describes would be old;
//! * `response_format: {"type":"json_object"}` is sent when `[ai] json_mode`
//!   is on; a server that refuses it (HTTP 400 naming it) gets the request
//!   again without it, and not again this session.
//!
//! The key goes into the `Authorization` header and nowhere else; server
//! messages are redacted before they reach an error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ai::key::ApiKey;
use crate::ai::{AiConfig, AiError};
use crate::feed::synthetic::Rng;

/// Largest response body read (a chat reply is a few KiB).
const MAX_BODY: u64 = 4 << 20;
/// Longest single backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
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
    /// The prompt's estimated tokens ([`crate::ai::prompt::estimate_tokens`]).
    pub prompt_tokens_estimate: u64,
    /// Whether the provider bills the prompt though no answer came (timed
    /// out, or cut off mid-body).
    pub prompt_billed: bool,
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

/// The chat client of one endpoint and key.
pub struct LlmClient {
    agent: ureq::Agent,
    endpoint: String,
    model: String,
    last_call: CallInfo,
    notices: Vec<String>,
    key: Option<ApiKey>,
    key_var: String,
    temperature: f64,
    max_tokens: u32,
    timeout: Duration,
    connect_timeout: Duration,
    retries: u32,
    backoff: Duration,
    json_mode: bool,
    rng: Rng,
}

/// What one HTTP attempt came to.
enum Attempt {
    Done(Completion),
    /// Retry after this wait (if attempts remain), else fail with the error.
    Retry(Duration, AiError),
    Fail(AiError),
}

impl LlmClient {
    /// A client for `cfg`'s endpoint; `key` is `None` only for providers
    /// that need none (a local Ollama).
    pub fn new(cfg: &AiConfig, key: Option<ApiKey>) -> Result<Self, AiError> {
        let endpoint = cfg
            .endpoint()
            .ok_or(AiError::NoLlm { provider: cfg.provider.name(), what: "there is no endpoint to call" })?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("mmbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Ok(Self {
            agent,
            endpoint,
            model: cfg.model.clone(),
            last_call: CallInfo::default(),
            notices: Vec::new(),
            key_var: key.as_ref().map_or_else(|| format!("{} (unset)", cfg.key_var), |k| k.var().to_string()),
            key,
            temperature: cfg.temperature,
            max_tokens: cfg.max_tokens,
            timeout: cfg.timeout,
            connect_timeout: cfg.connect_timeout,
            retries: cfg.retries,
            backoff: cfg.backoff,
            json_mode: cfg.response_format != crate::ai::ResponseFormat::None,
            rng: Rng(seed | 1),
        })
    }

    /// `{base_url}/chat/completions`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether `response_format` is still being sent.
    pub fn json_mode(&self) -> bool {
        self.json_mode
    }

    /// The model this client asks.
    pub fn model(&self) -> &str {
        &self.model
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

    /// Asks the model once (with retries as configured). `stop` cuts waits
    /// between attempts short.
    pub fn complete(&mut self, messages: &[Message], stop: &AtomicBool) -> Result<Completion, AiError> {
        let started = Instant::now();
        let text: String = messages.iter().map(|m| m.content.as_str()).collect();
        self.last_call =
            CallInfo { prompt_tokens_estimate: crate::ai::prompt::estimate_tokens(&text), ..CallInfo::default() };
        let model = self.model.clone();
        let model = model.as_str();
        let system = messages.iter().find(|m| m.role == Role::System).map_or("", |m| m.content.as_str());
        let user = messages.iter().rev().find(|m| m.role == Role::User).map_or("", |m| m.content.as_str());
        let r = self.complete_inner(model, system, user, stop, started);
        self.last_call.latency = started.elapsed();
        r
    }

    fn complete_inner(
        &mut self,
        model: &str,
        system: &str,
        user: &str,
        stop: &AtomicBool,
        started: Instant,
    ) -> Result<Completion, AiError> {
        let mut attempts = 0u32;
        let mut retries_left = self.retries;
        loop {
            attempts += 1;
            self.last_call.attempts = attempts;
            let body = request_body(model, system, user, self.temperature, self.max_tokens, self.json_mode);
            match self.attempt(model, &body, started, attempts) {
                Attempt::Done(c) => return Ok(c),
                Attempt::Fail(AiError::Refused { detail, .. })
                    if self.json_mode && (detail.contains("response_format") || detail.contains("json_object")) =>
                {
                    // Not every OpenAI-compatible server takes
                    // response_format; the prompt asks for JSON anyway.
                    self.json_mode = false;
                    self.notices.push(format!(
                        "{} does not accept response_format (json_mode); asking again without it \
                         (set [ai] response_format = \"none\" to skip this)",
                        self.endpoint
                    ));
                }
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(wait, e) => {
                    if retries_left == 0 || stop.load(Ordering::Relaxed) {
                        return Err(e);
                    }
                    retries_left -= 1;
                    if !crate::wait::sleep_unless(wait, stop) {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Exponential backoff with jitter (0.5x to 1.5x) before retry `n` (1-based).
    fn backoff(&mut self, n: u32) -> Duration {
        let base = self.backoff.saturating_mul(1u32 << n.saturating_sub(1).min(16)).min(MAX_BACKOFF);
        let jitter = 0.5 + (self.rng.below(1_000) as f64 / 1_000.0);
        base.mul_f64(jitter)
    }

    fn attempt(&mut self, model: &str, body: &str, started: Instant, attempts: u32) -> Attempt {
        let mut req = self.agent.post(&self.endpoint).header("Accept", "application/json");
        if let Some(k) = &self.key {
            req = req.header("Authorization", format!("Bearer {}", k.secret()));
        }
        let result = req.content_type("application/json").send(body.as_bytes());
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => return self.transport_failure(e, model, attempts),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(3600.0)));
        let text = match resp.body_mut().with_config().limit(MAX_BODY).read_to_string() {
            Ok(t) => t,
            Err(e) => return self.transport_failure(e, model, attempts),
        };
        let endpoint = self.endpoint.clone();
        match status {
            200..=299 => match parse_completion(&text, model) {
                Ok(mut c) => {
                    c.latency = started.elapsed();
                    c.attempts = attempts;
                    Attempt::Done(c)
                }
                Err(detail) => Attempt::Fail(AiError::Unusable { endpoint, model: model.to_string(), detail }),
            },
            401 | 403 => Attempt::Fail(AiError::KeyRejected {
                endpoint,
                var: self.key_var.clone(),
                status,
                // The code only: some providers echo part of the key in the message.
                detail: error_code(&text).map_or(String::new(), |c| format!(": {c}")),
            }),
            429 => {
                let err = AiError::RateLimited { endpoint, attempts, retry_after };
                match retry_after {
                    // Longer than a call may take: the advisor waits between calls.
                    Some(w) if w > self.timeout => Attempt::Fail(err),
                    Some(w) => Attempt::Retry(w, err),
                    None => Attempt::Retry(self.backoff(attempts), err),
                }
            }
            500..=599 => {
                let detail = self.detail(&text);
                Attempt::Retry(self.backoff(attempts), AiError::Server { endpoint, status, attempts, detail })
            }
            _ => Attempt::Fail(AiError::Refused {
                endpoint,
                model: model.to_string(),
                status,
                detail: self.detail(&text),
            }),
        }
    }

    fn transport_failure(&mut self, e: ureq::Error, model: &str, attempts: u32) -> Attempt {
        let endpoint = self.endpoint.clone();
        let detail = match e {
            ureq::Error::Timeout(ureq::Timeout::Connect) => {
                format!("no connection within {} s ([ai] connect_timeout_s)", self.connect_timeout.as_secs_f64())
            }
            ureq::Error::Timeout(ureq::Timeout::Resolve) => "the host name did not resolve in time".to_string(),
            ureq::Error::Timeout(_) => {
                return Attempt::Fail(AiError::TimedOut {
                    endpoint,
                    model: model.to_string(),
                    timeout_s: self.timeout.as_secs_f64(),
                })
            }
            ureq::Error::HostNotFound => "the host name does not resolve (DNS)".to_string(),
            ureq::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused (nothing listens there)".to_string(),
                std::io::ErrorKind::TimedOut => {
                    return Attempt::Fail(AiError::TimedOut {
                        endpoint,
                        model: model.to_string(),
                        timeout_s: self.timeout.as_secs_f64(),
                    })
                }
                _ => format!("connection failed: {io}"),
            },
            other => format!("{other}"),
        };
        let detail = self.key.as_ref().map_or(detail.clone(), |k| k.redact(&detail));
        Attempt::Retry(
            self.backoff(attempts),
            AiError::Unreachable { endpoint, detail: format!("{detail} (attempt {attempts})") },
        )
    }

    /// The server's error message, short and with the key redacted.
    fn detail(&self, text: &str) -> String {
        let msg = error_message(text).unwrap_or_else(|| text.trim().chars().take(200).collect());
        let msg = self.key.as_ref().map_or(msg.clone(), |k| k.redact(&msg));
        if msg.is_empty() {
            String::new()
        } else {
            format!(": {msg}")
        }
    }
}

/// The JSON request.
pub fn request_body(
    model: &str,
    system: &str,
    user: &str,
    temperature: f64,
    max_tokens: u32,
    json_mode: bool,
) -> String {
    let mut body = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ],
        "temperature": temperature,
        "max_tokens": max_tokens,
    });
    if json_mode {
        body["response_format"] = json!({"type": "json_object"});
    }
    body.to_string()
}

/// `error.message` (or `error` as text, or `message`) of an error body.
fn error_message(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    let m = match &v["error"] {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.get("message").and_then(Value::as_str)?.to_string(),
        _ => v["message"].as_str()?.to_string(),
    };
    Some(m.chars().take(300).collect())
}

/// `error.code` / `error.type` of an error body.
fn error_code(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    let e = &v["error"];
    e["code"].as_str().or_else(|| e["type"].as_str()).map(|s| s.chars().take(60).collect())
}

/// Reads an OpenAI chat-completions body; `Err` says what is missing.
pub fn parse_completion(text: &str, asked: &str) -> Result<Completion, String> {
    let v: Value = serde_json::from_str(text)
        .map_err(|_| format!("the body is not JSON (starts {:?})", text.trim().chars().take(60).collect::<String>()))?;
    let choice = &v["choices"][0];
    if choice.is_null() {
        return Err(match error_message(text) {
            Some(m) => format!("the server answered with an error instead of a completion: {m}"),
            None => "the body has no choices[0] (not an OpenAI chat-completions reply?)".to_string(),
        });
    }
    let finish_reason = choice["finish_reason"].as_str().map(str::to_string);
    let msg = &choice["message"];
    let content = match &msg["content"] {
        Value::String(s) => s.clone(),
        // Some gateways send content as parts.
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
        _ => String::new(),
    };
    if content.trim().is_empty() {
        if let Some(r) = msg["refusal"].as_str() {
            return Err(format!("the model refused: {}", r.chars().take(200).collect::<String>()));
        }
        return Err(match finish_reason.as_deref() {
            Some("length") => "the answer is empty: the model ran out of tokens (raise [ai] max_tokens)".to_string(),
            _ => "the answer is empty".to_string(),
        });
    }
    let usage = &v["usage"];
    let (tokens_in, tokens_out, usage_reported) =
        match (usage["prompt_tokens"].as_u64(), usage["completion_tokens"].as_u64()) {
            (Some(i), Some(o)) => (i, o, true),
            _ => (0, content.chars().count().div_ceil(4) as u64, false),
        };
    Ok(Completion {
        content,
        model: v["model"].as_str().filter(|m| !m.is_empty()).unwrap_or(asked).to_string(),
        tokens_in,
        tokens_out,
        cached_tokens: usage["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0),
        usage_reported,
        finish_reason,
        latency: Duration::ZERO,
        attempts: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_the_openai_shape() {
        let b: Value = serde_json::from_str(&request_body("gpt-4.1", "sys", "usr", 0.3, 800, true)).unwrap();
        assert_eq!(b["model"], "gpt-4.1");
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["messages"][1]["content"], "usr");
        assert_eq!((b["temperature"].as_f64(), b["max_tokens"].as_u64()), (Some(0.3), Some(800)));
        assert_eq!(b["response_format"]["type"], "json_object");
        let b: Value = serde_json::from_str(&request_body("m", "s", "u", 0.3, 8, false)).unwrap();
        assert!(b.get("response_format").is_none());
    }

    #[test]
    fn completions_and_their_failures() {
        let ok = r#"{"model":"gpt-4.1-2025","choices":[{"message":{"role":"assistant","content":"{\"a\":1}"},
            "finish_reason":"stop"}],"usage":{"prompt_tokens":480,"completion_tokens":90}}"#;
        let c = parse_completion(ok, "gpt-4.1").unwrap();
        assert_eq!(
            (c.content.as_str(), c.model.as_str(), c.tokens_in, c.tokens_out),
            ("{\"a\":1}", "gpt-4.1-2025", 480, 90)
        );
        assert!(c.usage_reported);
        let c = parse_completion(r#"{"choices":[{"message":{"content":"abcdefgh"}}]}"#, "m").unwrap();
        assert_eq!((c.model.as_str(), c.tokens_out, c.usage_reported), ("m", 2, false));
        for (body, want) in [
            ("<html>", "not JSON"),
            (r#"{"error":{"message":"overloaded"}}"#, "overloaded"),
            (r#"{"choices":[{"message":{"content":""},"finish_reason":"length"}]}"#, "max_tokens"),
            (r#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#, "refused"),
            (r#"{"id":1}"#, "choices"),
        ] {
            let e = parse_completion(body, "m").unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
    }
}
