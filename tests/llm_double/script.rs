//! What the double does with the next request: a queue of per-request
//! behaviours (reply text, fault, delay, cached tokens) and a default for when
//! the queue is empty. Tests script a gateway's bad day with these, then
//! assert on the recorded requests.

use std::time::{Duration, SystemTime};

/// The advice reply mmbot's prompt asks for (docs/ai.md, "The call and the
/// reply": spread_state, volatility, direction, confidence, spread_multiplier,
/// liquidity_concentration, risk_signals, reason).
pub const ADVICE_JSON: &str = r#"{"spread_state":"wide","volatility":"high","direction":"up","confidence":80,"spread_multiplier":1.4,"liquidity_concentration":"bid","risk_signals":["thin asks"],"reason":"bids stack up under the touch"}"#;

/// How a 429 says when to come back.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryAfter {
    /// No hint at all.
    None,
    /// `retry-after: N` (RFC 9110 10.2.3, delay-seconds).
    Seconds(u64),
    /// `retry-after-ms: N` only (the millisecond header OpenAI's SDKs read
    /// before `retry-after`; openai-python `_base_client._parse_retry_after_header`).
    Millis(u64),
    /// Both headers, as OpenAI's edge sends them.
    Both { seconds: u64, millis: u64 },
    /// `retry-after: <IMF-fixdate>` (RFC 9110 10.2.3, HTTP-date form).
    HttpDate(SystemTime),
}

/// A gateway misbehaviour. Each maps to the provider's documented error shape
/// (see openai.rs and anthropic.rs for the citations).
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 401 `invalid_api_key` (OpenAI) / `authentication_error` (Anthropic),
    /// whatever key was sent.
    Unauthorized,
    /// 404 `model_not_found` for the asked model even if it is listed.
    ModelNotFound,
    /// 429 `rate_limit_exceeded` / `rate_limit_error` with this hint.
    RateLimit(RetryAfter),
    /// 429 `insufficient_quota` (OpenAI billing; Anthropic: 400 credit balance).
    InsufficientQuota,
    /// 500 `server_error` / `api_error`.
    ServerError,
    /// 503 "The engine is currently overloaded" (OpenAI error codes).
    Unavailable,
    /// 529 `overloaded_error` (Anthropic errors).
    Overloaded,
    /// A proxy's HTML 502 page, `text/html`.
    HtmlBadGateway,
    /// A 200 whose body is this many bytes (a valid completion, padded).
    HugeBody(usize),
    /// A 200 completion without `usage`.
    NoUsage,
    /// `finish_reason: "length"` with the reply cut off at half its length.
    CutOff,
    /// Reply text with `<think>` blocks and several JSON objects, the advice last.
    ThinkAndObjects,
    /// Close the connection without answering.
    HangUp,
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// The assistant's text on success.
    pub content: String,
    pub fault: Option<Fault>,
    /// Wait this long before answering (a slow gateway).
    pub delay: Duration,
    /// Prompt tokens reported as served from the prompt cache.
    pub cached_tokens: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour::ok()
    }
}

impl Behaviour {
    /// A prompt, valid advice answer.
    pub fn ok() -> Behaviour {
        Behaviour { content: ADVICE_JSON.to_string(), fault: None, delay: Duration::ZERO, cached_tokens: 0 }
    }
    pub fn content(text: &str) -> Behaviour {
        Behaviour { content: text.to_string(), ..Behaviour::ok() }
    }
    pub fn fault(fault: Fault) -> Behaviour {
        Behaviour { fault: Some(fault), ..Behaviour::ok() }
    }
    pub fn delay(mut self, d: Duration) -> Behaviour {
        self.delay = d;
        self
    }
    pub fn cached(mut self, tokens: u64) -> Behaviour {
        self.cached_tokens = tokens;
        self
    }
}

/// A model's API flavour: which request parameters the double accepts for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// gpt-4.1 and the like: `max_tokens`, any `temperature`, both
    /// `response_format` types.
    Standard,
    /// gpt-5* / o1 / o3 / o4*: `max_completion_tokens` only, default
    /// `temperature` only, `reasoning_effort` accepted.
    Reasoning,
    /// An older model or gateway: `json_schema` refused (400 naming
    /// `response_format`), `json_object` accepted.
    Legacy,
    /// No structured output at all: any `response_format` refused.
    Plain,
}

/// The flavour implied by the model's name (OpenAI "Reasoning models" guide:
/// the o-series and gpt-5 family are reasoning models). `gpt-5-chat*` is the
/// non-reasoning chat snapshot.
pub fn flavour_by_name(model: &str) -> Flavour {
    let m = model.rsplit('/').next().unwrap_or(model);
    let reasoning = (m.starts_with("gpt-5") && !m.starts_with("gpt-5-chat"))
        || ["o1", "o3", "o4"].iter().any(|p| m == *p || m.starts_with(&format!("{p}-")));
    if reasoning {
        Flavour::Reasoning
    } else {
        Flavour::Standard
    }
}

/// Format `t` as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 5.6.7).
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, mi, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // 1970-01-01 was a Thursday.
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let (y, mo, d) = civil_from_days(days);
    let mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][(mo - 1) as usize];
    format!("{wd}, {d:02} {mon} {y} {h:02}:{mi:02}:{s:02} GMT")
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
