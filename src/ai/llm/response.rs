//! What comes back: answers, error bodies and model lists, read
//! defensively (nothing a server sends may panic or be pasted whole into a
//! message).
//!
//! * OpenAI Chat Completions ("The chat completion object"):
//!   `choices[0].message.content`, `finish_reason` (`length` = cut off by
//!   the token cap), `usage.prompt_tokens` / `completion_tokens` and
//!   `usage.prompt_tokens_details.cached_tokens`.
//! * Anthropic Messages ("Messages" response): `content[]` blocks of
//!   `type: "text"`, `stop_reason` (`max_tokens` is read as `length`),
//!   `usage.input_tokens`, `output_tokens`, `cache_read_input_tokens`,
//!   `cache_creation_input_tokens`: all three input kinds are prompt tokens,
//!   cache reads are the cached part.
//! * Errors: OpenAI `{"error":{"message","type","code","param"}}`, Anthropic
//!   `{"type":"error","error":{"type","message"}}` ("Errors"), Gemini's
//!   `[{"error":{"code","message","status"}}]`; anything else is described
//!   (an HTML page by its title and size), never pasted.
//! * Without `usage` the tokens are estimated (4 characters a token) and the
//!   completion says so (`usage_reported: false`).

use std::time::Duration;

use serde_json::Value;

use crate::ai::llm::Completion;
use crate::ai::prompt::estimate_tokens;

/// What a reply is read against.
#[derive(Debug, Clone, Copy)]
pub struct ReadContext<'a> {
    /// The model asked (used when the server does not name one).
    pub asked: &'a str,
    /// The prompt's estimated tokens (used when no usage is reported).
    pub prompt_estimate: u64,
    /// The token cap sent, for the "raise max_tokens" hint.
    pub max_tokens: u32,
}

/// The fields of an error body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerError {
    pub message: Option<String>,
    /// `error.code` (OpenAI) or Gemini's numeric code.
    pub code: Option<String>,
    /// `error.type` (OpenAI, Anthropic) or Gemini's `status`.
    pub kind: Option<String>,
    /// `error.param` (OpenAI).
    pub param: Option<String>,
    /// `error.details.error_code` (Anthropic's spend limit).
    pub detail_code: Option<String>,
}

impl ServerError {
    /// Whether the error is about `response_format` (a 400 that asks for a
    /// downgrade).
    pub fn names_response_format(&self) -> bool {
        [&self.message, &self.param, &self.code]
            .iter()
            .filter_map(|s| s.as_deref())
            .map(str::to_ascii_lowercase)
            // OpenAI names the parameter; Gemini's compatibility layer its
            // `response_schema` or a schema keyword it does not take.
            .any(|s| {
                [
                    "response_format",
                    "json_schema",
                    "json_object",
                    "response_schema",
                    "structured output",
                    "additionalproperties",
                ]
                .iter()
                .any(|k| s.contains(k))
            })
    }
}

fn short(s: &str, n: usize) -> String {
    s.chars().filter(|c| !c.is_control() || *c == ' ').take(n).collect()
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(short(s, 300)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The error fields of `text`, if it is a JSON error body of a known shape.
pub fn server_error(text: &str) -> Option<ServerError> {
    let v: Value = serde_json::from_str(text).ok()?;
    // Gemini wraps its error in a one-element array.
    let v = match v {
        Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
        v => v,
    };
    let e = &v["error"];
    Some(match e {
        Value::String(s) => ServerError { message: Some(short(s, 300)), ..Default::default() },
        Value::Object(_) => ServerError {
            message: text_of(&e["message"]),
            code: text_of(&e["code"]),
            kind: text_of(&e["type"]).or_else(|| text_of(&e["status"])),
            param: text_of(&e["param"]),
            detail_code: text_of(&e["details"]["error_code"]),
        },
        _ => ServerError { message: Some(text_of(&v["message"])?), ..Default::default() },
    })
}

/// A body that is not a usable JSON error, described for a message: an
/// HTML page by its title and size, other text by its first characters.
pub fn describe_body(text: &str, content_type: Option<&str>) -> String {
    let t = text.trim_start();
    let html = content_type.is_some_and(|c| c.to_ascii_lowercase().contains("html"))
        || t.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("<html") || p.eq_ignore_ascii_case("<!doc"));
    if html {
        let lower = t.to_ascii_lowercase();
        let title = lower.find("<title").and_then(|i| {
            let open = i + lower[i..].find('>')? + 1;
            let close = open + lower[open..].find("</title")?;
            Some(short(t.get(open..close)?.trim(), 80))
        });
        return match title {
            Some(title) => format!("an HTML page titled {title:?}, {} bytes", text.len()),
            None => format!("an HTML page (no title), {} bytes", text.len()),
        };
    }
    if t.is_empty() {
        return "an empty body".to_string();
    }
    format!("{:?} ({} bytes)", short(t, 80), text.len())
}

/// `": message"` of an error body (or its description), ready to append.
pub fn error_detail(text: &str, content_type: Option<&str>) -> String {
    match server_error(text).and_then(|e| e.message.or(e.kind)) {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ if text.trim().is_empty() => String::new(),
        _ => format!(": {}", describe_body(text, content_type)),
    }
}

fn not_json(text: &str, content_type: Option<&str>) -> String {
    format!("the body is not JSON but {}", describe_body(text, content_type))
}

fn empty_answer(finish: Option<&str>, ctx: &ReadContext) -> String {
    match finish {
        Some("length") => format!(
            "the answer is empty: the model ran out of tokens (finish_reason \"length\"); raise [ai] max_tokens \
             (now {}), or lower reasoning_effort for a reasoning model",
            ctx.max_tokens
        ),
        _ => "the answer is empty".to_string(),
    }
}

/// Reads an OpenAI chat-completions body; `Err` says what is wrong.
pub fn openai_completion(text: &str, content_type: Option<&str>, ctx: &ReadContext) -> Result<Completion, String> {
    let v: Value = serde_json::from_str(text).map_err(|_| not_json(text, content_type))?;
    let choice = &v["choices"][0];
    if choice.is_null() {
        return Err(match server_error(text).and_then(|e| e.message) {
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
            return Err(format!("the model refused: {}", short(r, 200)));
        }
        return Err(empty_answer(finish_reason.as_deref(), ctx));
    }
    let u = &v["usage"];
    let reported = (u["prompt_tokens"].as_u64(), u["completion_tokens"].as_u64());
    let cached = u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0);
    Ok(completion(&v, content, finish_reason, reported, cached, ctx))
}

/// Reads an Anthropic Messages body.
pub fn anthropic_completion(text: &str, content_type: Option<&str>, ctx: &ReadContext) -> Result<Completion, String> {
    let v: Value = serde_json::from_str(text).map_err(|_| not_json(text, content_type))?;
    let Some(blocks) = v["content"].as_array() else {
        return Err(match server_error(text).and_then(|e| e.message) {
            Some(m) => format!("the server answered with an error instead of a message: {m}"),
            None => "the body has no content[] (not an Anthropic Messages reply?)".to_string(),
        });
    };
    let content: String =
        blocks.iter().filter(|b| b["type"] == "text").filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join("");
    let finish_reason = v["stop_reason"].as_str().map(|r| if r == "max_tokens" { "length" } else { r }.to_string());
    if content.trim().is_empty() {
        if finish_reason.as_deref() == Some("refusal") {
            return Err("the model refused (stop_reason \"refusal\")".to_string());
        }
        return Err(empty_answer(finish_reason.as_deref(), ctx));
    }
    let u = &v["usage"];
    let cache_read = u["cache_read_input_tokens"].as_u64().unwrap_or(0);
    let cache_write = u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
    let reported = (u["input_tokens"].as_u64().map(|i| i + cache_read + cache_write), u["output_tokens"].as_u64());
    Ok(completion(&v, content, finish_reason, reported, cache_read, ctx))
}

/// The `usage` a 2xx body reports, whatever its content: an empty or
/// refused answer is billed too.
pub fn reported_usage(text: &str, wire: crate::ai::Wire) -> Option<super::ReportedUsage> {
    let v: Value = serde_json::from_str(text).ok()?;
    let u = &v["usage"];
    Some(match wire {
        crate::ai::Wire::OpenAiChat => super::ReportedUsage {
            tokens_in: u["prompt_tokens"].as_u64()?,
            cached: u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0),
            tokens_out: u["completion_tokens"].as_u64()?,
        },
        crate::ai::Wire::AnthropicMessages => {
            let cached = u["cache_read_input_tokens"].as_u64().unwrap_or(0);
            let written = u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
            super::ReportedUsage {
                tokens_in: u["input_tokens"].as_u64()? + cached + written,
                cached,
                tokens_out: u["output_tokens"].as_u64()?,
            }
        }
    })
}

fn completion(
    v: &Value,
    content: String,
    finish_reason: Option<String>,
    reported: (Option<u64>, Option<u64>),
    cached: u64,
    ctx: &ReadContext,
) -> Completion {
    let usage_reported = reported.0.is_some() && reported.1.is_some();
    Completion {
        tokens_in: reported.0.unwrap_or(ctx.prompt_estimate),
        tokens_out: reported.1.unwrap_or_else(|| estimate_tokens(&content)),
        cached_tokens: if usage_reported { cached } else { 0 },
        usage_reported,
        model: v["model"].as_str().filter(|m| !m.is_empty()).unwrap_or(ctx.asked).to_string(),
        content,
        finish_reason,
        latency: Duration::ZERO,
        attempts: 0,
    }
}

/// The model ids of a `GET /models` body (`data[].id`, OpenAI and
/// Anthropic alike); Gemini's `models/` prefix is dropped.
pub fn model_ids(text: &str, content_type: Option<&str>) -> Result<Vec<String>, String> {
    let v: Value = serde_json::from_str(text).map_err(|_| not_json(text, content_type))?;
    let data = v["data"].as_array().ok_or("the body has no data[] (not a model list)")?;
    Ok(data
        .iter()
        .filter_map(|m| m["id"].as_str())
        .map(|id| id.strip_prefix("models/").unwrap_or(id).to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: ReadContext = ReadContext { asked: "m", prompt_estimate: 700, max_tokens: 800 };

    #[test]
    fn openai_completions_and_their_failures() {
        let ok = r#"{"model":"gpt-4.1-2025","choices":[{"message":{"role":"assistant","content":"{\"a\":1}"},
            "finish_reason":"stop"}],"usage":{"prompt_tokens":480,"completion_tokens":90,
            "prompt_tokens_details":{"cached_tokens":256}}}"#;
        let c = openai_completion(ok, None, &CTX).unwrap();
        assert_eq!((c.content.as_str(), c.model.as_str()), ("{\"a\":1}", "gpt-4.1-2025"));
        assert_eq!((c.tokens_in, c.tokens_out, c.cached_tokens, c.usage_reported), (480, 90, 256, true));
        // No usage: the prompt's estimate and the content's.
        let c = openai_completion(r#"{"choices":[{"message":{"content":"abcdefgh"}}]}"#, None, &CTX).unwrap();
        assert_eq!(
            (c.model.as_str(), c.tokens_in, c.tokens_out, c.usage_reported),
            ("m", 700, estimate_tokens("abcdefgh"), false)
        );
        // Cut off but not empty: kept, with its finish_reason.
        let c =
            openai_completion(r#"{"choices":[{"message":{"content":"{\"a\""},"finish_reason":"length"}]}"#, None, &CTX)
                .unwrap();
        assert_eq!(c.finish_reason.as_deref(), Some("length"));
        for (body, want) in [
            ("<html><title>Bad gateway</title></html>", "not JSON but an HTML page titled \"Bad gateway\", 39 bytes"),
            (r#"{"error":{"message":"overloaded"}}"#, "overloaded"),
            (r#"{"choices":[{"message":{"content":""},"finish_reason":"length"}]}"#, "raise [ai] max_tokens (now 800)"),
            (r#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#, "refused"),
            (r#"{"id":1}"#, "choices"),
        ] {
            let e = openai_completion(body, None, &CTX).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
    }

    #[test]
    fn anthropic_messages_and_usage() {
        let ok = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001",
            "content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"{\"a\":"},{"type":"text","text":"1}"}],
            "stop_reason":"max_tokens","usage":{"input_tokens":100,"output_tokens":50,
            "cache_read_input_tokens":400,"cache_creation_input_tokens":20}}"#;
        let c = anthropic_completion(ok, None, &CTX).unwrap();
        assert_eq!((c.content.as_str(), c.finish_reason.as_deref()), ("{\"a\":1}", Some("length")));
        assert_eq!((c.tokens_in, c.tokens_out, c.cached_tokens, c.usage_reported), (520, 50, 400, true));
        let e = anthropic_completion(r#"{"content":[],"stop_reason":"max_tokens"}"#, None, &CTX).unwrap_err();
        assert!(e.contains("max_tokens (now 800)"), "{e}");
        let e =
            anthropic_completion(r#"{"type":"error","error":{"type":"x","message":"boom"}}"#, None, &CTX).unwrap_err();
        assert!(e.contains("boom"), "{e}");
    }

    #[test]
    fn error_bodies_of_each_provider() {
        let e = server_error(r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#).unwrap();
        assert_eq!((e.code.as_deref(), e.kind.as_deref()), (Some("insufficient_quota"), Some("insufficient_quota")));
        let e = server_error(r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#).unwrap();
        assert_eq!((e.kind.as_deref(), e.message.as_deref()), (Some("overloaded_error"), Some("Overloaded")));
        let e = server_error(r#"[{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}]"#).unwrap();
        assert_eq!((e.code.as_deref(), e.kind.as_deref()), (Some("400"), Some("INVALID_ARGUMENT")));
        assert!(server_error(
            r#"{"error":{"message":"Invalid parameter: 'response_format' of type 'json_schema' is not supported"}}"#
        )
        .unwrap()
        .names_response_format());
        assert!(!server_error(r#"{"error":{"message":"model not found"}}"#).unwrap().names_response_format());
        assert_eq!(
            error_detail("<!DOCTYPE html><html><head><title>502 Bad Gateway</title>", None),
            ": an HTML page titled \"502 Bad Gateway\", 57 bytes"
        );
        assert_eq!(error_detail("", None), "");
    }

    #[test]
    fn model_lists() {
        let ids = model_ids(r#"{"object":"list","data":[{"id":"gpt-4.1"},{"id":"models/gemini-2.5-flash"}]}"#, None);
        assert_eq!(ids.unwrap(), ["gpt-4.1", "gemini-2.5-flash"]);
        assert!(model_ids("{}", None).unwrap_err().contains("data[]"));
    }
}
