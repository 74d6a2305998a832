//! Anthropic's Messages API (POST /v1/messages) and Models list, per
//! Anthropic's docs (https://docs.claude.com/en/api, now platform.claude.com):
//! - "Messages > Create a Message": headers `x-api-key` and
//!   `anthropic-version` (e.g. "2023-06-01") are required; body `model`,
//!   `messages` and `max_tokens` are required; the system prompt is the
//!   top-level `system` parameter (there is no "system" role in `messages`);
//!   `temperature` ranges 0.0-1.0. Response: `{id, type: "message", role:
//!   "assistant", content: [{type: "text", text}], model, stop_reason
//!   ("end_turn" | "max_tokens" | ...), stop_sequence, usage: {input_tokens,
//!   output_tokens, cache_creation_input_tokens, cache_read_input_tokens}}`.
//! - "Prompt caching > Tracking cache performance": total input tokens =
//!   input_tokens + cache_creation_input_tokens + cache_read_input_tokens
//!   (input_tokens counts only tokens after the last cache breakpoint).
//! - "Errors": body `{"type":"error","error":{"type","message"},
//!   "request_id"}`; 400 invalid_request_error, 401 authentication_error,
//!   403 permission_error, 404 not_found_error, 413 request_too_large, 429
//!   rate_limit_error, 500 api_error, 529 overloaded_error. Every response
//!   carries a `request-id` header.
//! - "Rate limits": a 429 carries a `retry-after` header (seconds to wait).
//! - "Models > List Models": GET /v1/models ->
//!   `{data: [{type: "model", id, display_name, created_at}], has_more,
//!   first_id, last_id}`.
//! - Billing: a credit balance too low answers 400 invalid_request_error
//!   "Your credit balance is too low to access the Anthropic API ..."
//!   (Anthropic's `insufficient_quota` counterpart).

use super::http::{Request, Response};
use super::openai::with_retry_after;
use super::script::{Behaviour, Fault};
use super::usage::{content_text, prompt_tokens, text_tokens, Usage};
use super::{Answer, Gateway};
use serde_json::{json, Value};

/// The documented error envelope.
pub fn error(status: u16, kind: &str, message: &str) -> Response {
    Response::json(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_double"}),
    )
}

fn invalid(message: &str) -> Response {
    error(400, "invalid_request_error", message)
}

/// Header checks: the key, then the version.
pub fn check_headers(gw: &Gateway, req: &Request) -> Option<Response> {
    match req.header("x-api-key") {
        None => return Some(error(401, "authentication_error", "x-api-key header is required")),
        Some(k) if k.trim() != gw.key => return Some(error(401, "authentication_error", "invalid x-api-key")),
        Some(_) => {}
    }
    if req.header("anthropic-version").is_none() {
        return Some(invalid("anthropic-version: header is required"));
    }
    None
}

/// GET /v1/models with Anthropic's headers.
pub fn list_models(gw: &Gateway, req: &Request) -> Response {
    if let Some(r) = check_headers(gw, req) {
        return r;
    }
    let data: Vec<Value> = gw
        .models
        .iter()
        .map(|m| json!({"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"}))
        .collect();
    Response::json(
        200,
        &json!({"data": data, "has_more": false, "first_id": gw.models.first(), "last_id": gw.models.last()}),
    )
}

/// Body validation. Ok((model, body)).
pub fn validate(gw: &Gateway, req: &Request) -> Result<(String, Value), Response> {
    if let Some(r) = check_headers(gw, req) {
        return Err(r);
    }
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|_| invalid("There was an issue with the format or content of your request: invalid JSON"))?;
    let Some(obj) = body.as_object() else { return Err(invalid("body: Input should be an object")) };
    let Some(model) = obj.get("model").and_then(Value::as_str) else { return Err(invalid("model: Field required")) };
    if obj.get("max_tokens").and_then(Value::as_u64).is_none() {
        return Err(invalid("max_tokens: Field required"));
    }
    let Some(messages) = obj.get("messages").and_then(Value::as_array) else {
        return Err(invalid("messages: Field required"));
    };
    if messages.is_empty() {
        return Err(invalid("messages: at least one message is required"));
    }
    for (i, m) in messages.iter().enumerate() {
        match m.get("role").and_then(Value::as_str) {
            Some("user") | Some("assistant") => {}
            Some("system") => {
                return Err(invalid(&format!("messages.{i}.role: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.")))
            }
            _ => return Err(invalid(&format!("messages.{i}.role: Input should be 'user' or 'assistant'"))),
        }
    }
    if let Some(t) = obj.get("temperature").and_then(Value::as_f64) {
        if !(0.0..=1.0).contains(&t) {
            return Err(invalid("temperature: range: 0..1"));
        }
    }
    // OpenAI-only fields are not part of the Messages schema.
    for key in ["response_format", "max_completion_tokens", "reasoning_effort", "n", "frequency_penalty"] {
        if obj.contains_key(key) {
            return Err(invalid(&format!("{key}: Extra inputs are not permitted")));
        }
    }
    if !gw.models.iter().any(|m| m == model) {
        return Err(error(404, "not_found_error", &format!("model: {model}")));
    }
    Ok((model.to_string(), body))
}

/// A scripted fault in Anthropic's shapes.
fn fault_response(fault: &Fault, model: &str) -> Option<Response> {
    Some(match fault {
        Fault::Unauthorized => error(401, "authentication_error", "invalid x-api-key"),
        Fault::ModelNotFound => error(404, "not_found_error", &format!("model: {model}")),
        Fault::RateLimit(hint) => with_retry_after(
            error(429, "rate_limit_error", "This request would exceed the rate limit for your organization of 50 requests per minute."),
            hint,
        ),
        Fault::InsufficientQuota => invalid("Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."),
        Fault::ServerError => error(500, "api_error", "Internal server error"),
        Fault::Unavailable | Fault::Overloaded => error(529, "overloaded_error", "Overloaded"),
        Fault::HtmlBadGateway => super::openai::html_502(),
        _ => return None,
    })
}

/// Handle POST /v1/messages end to end.
pub fn handle(gw: &Gateway, req: &Request, take: &mut dyn FnMut() -> (u64, Behaviour)) -> Answer {
    let (model, body) = match validate(gw, req) {
        Ok(v) => v,
        Err(r) => return Answer::now(r),
    };
    let (id, b) = take();
    if b.fault == Some(Fault::HangUp) {
        return Answer { hang_up: true, delay: b.delay, ..Answer::now(Response::json(200, &json!({}))) };
    }
    if let Some(f) = &b.fault {
        if let Some(r) = fault_response(f, &model) {
            return Answer { delay: b.delay, ..Answer::now(r) };
        }
    }
    let messages = body["messages"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let system = body.get("system").map(content_text);
    let prompt = prompt_tokens(messages, system.as_deref());
    let mut text = super::openai::shaped_content(&b);
    let mut stop = "end_turn";
    let mut output = text_tokens(&text);
    if b.fault == Some(Fault::CutOff) {
        let keep = text.chars().count() / 2;
        text = text.chars().take(keep).collect();
        stop = "max_tokens";
        output = body["max_tokens"].as_u64().unwrap_or(output);
    }
    let usage = Usage { prompt, cached: b.cached_tokens.min(prompt), completion: output, reasoning: 0 };
    let mut out = json!({
        "id": format!("msg_double{id}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop,
        "stop_sequence": null,
    });
    let reported = if b.fault == Some(Fault::NoUsage) {
        None
    } else {
        out["usage"] = json!({
            "input_tokens": usage.prompt - usage.cached,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": usage.cached,
            "output_tokens": usage.completion,
        });
        Some(usage)
    };
    Answer { response: Response::json(200, &out), usage: reported, delay: b.delay, hang_up: false }
}
