//! OpenAI Chat Completions and Models, as the API reference documents them,
//! served at any base path (api.openai.com/v1, Gemini's /v1beta/openai,
//! Bedrock's /openai/v1, a gateway's /api/v1 ...).
//!
//! Sources (OpenAI platform docs, https://platform.openai.com/docs):
//! - API reference, "Chat > Create chat completion" (POST /chat/completions):
//!   `model` and `messages` required; `max_tokens` "is now deprecated in favor
//!   of max_completion_tokens, and is not compatible with o-series models";
//!   `max_completion_tokens` bounds visible plus reasoning tokens;
//!   `reasoning_effort` (reasoning models only); `response_format`
//!   `{"type":"json_object"}` or `{"type":"json_schema","json_schema":{name,
//!   schema, strict}}`; the chat completion object (id, object
//!   "chat.completion", created, model, choices[].message{role, content},
//!   finish_reason "stop" | "length" | ..., usage{prompt_tokens,
//!   completion_tokens, total_tokens, prompt_tokens_details.cached_tokens,
//!   completion_tokens_details.reasoning_tokens}).
//! - Guides, "Structured outputs > Supported schemas": with `strict`, every
//!   object needs `additionalProperties: false` and every property listed in
//!   `required`. "JSON mode": the messages must mention JSON, else the API
//!   returns an error.
//! - Guides, "Reasoning models": o-series and gpt-5 reasoning models reject
//!   `max_tokens` and any non-default `temperature`. The exact 400 bodies are
//!   the ones the API returns (quoted in many public bug reports, e.g.
//!   microsoft/vscode-copilot-release#8065 for `unsupported_parameter`,
//!   QwenLM/qwen-code#921 for `unsupported_value`).
//! - Guides, "Error codes > API errors": 401 "Invalid Authentication" /
//!   "Incorrect API key provided" (`invalid_api_key`), 429 "Rate limit
//!   reached for requests" (`rate_limit_exceeded`), 429 "You exceeded your
//!   current quota, please check your plan and billing details"
//!   (`insufficient_quota`: retrying does not help), 500 "The server had an
//!   error while processing your request", 503 "The engine is currently
//!   overloaded, please try again later". Error body:
//!   `{"error":{"message","type","param","code"}}`.
//! - API reference, "Models > List models": GET /models ->
//!   `{"object":"list","data":[{"id","object":"model","created","owned_by"}]}`;
//!   a chat request naming an unknown model gets 404 `model_not_found`
//!   ("The model `x` does not exist or you do not have access to it.").
//! - Google, Gemini API "OpenAI compatibility": base URL
//!   https://generativelanguage.googleapis.com/v1beta/openai/, Bearer key,
//!   chat/completions and models served there.
//! - AWS, Bedrock user guide "Invoke a model with the OpenAI Chat Completions
//!   API": base URL https://bedrock-runtime.{region}.amazonaws.com/openai/v1,
//!   `Authorization: Bearer $AWS_BEARER_TOKEN_BEDROCK` (a Bedrock API key,
//!   "Use an Amazon Bedrock API key"); "Amazon Bedrock currently doesn't
//!   support the other OpenAI Chat completion API operations", so /models
//!   there is 404.

use super::http::{Request, Response};
use super::script::{flavour_by_name, http_date, Behaviour, Fault, Flavour, RetryAfter, ADVICE_JSON};
use super::usage::{prompt_tokens, text_tokens, Usage, REASONING_TOKENS};
use super::{Answer, Gateway};
use serde_json::{json, Value};

/// `{"error":{...}}` with `status`.
pub fn error(status: u16, message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Response {
    Response::json(status, &json!({"error": {"message": message, "type": kind, "param": param, "code": code}}))
}

fn bad_request(message: &str, param: &str, code: Option<&str>) -> Response {
    error(400, message, "invalid_request_error", Some(param), code)
}

/// The masked key OpenAI echoes in its 401 message: never the whole key.
fn masked(key: &str) -> String {
    let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("sk-****{tail}")
}

/// Check `Authorization: Bearer <key>`. None when accepted.
pub fn check_bearer(gw: &Gateway, req: &Request) -> Option<Response> {
    let sent = req.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    match sent {
        None => Some(error(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
            None,
        )),
        Some(k) if k != gw.key => Some(error(
            401,
            &format!("Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.", masked(k)),
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        )),
        Some(_) => None,
    }
}

/// GET {base}/models.
pub fn list_models(gw: &Gateway, req: &Request) -> Response {
    if req.path().starts_with("/openai/") {
        // Bedrock runtime: only Create chat completion is served.
        return error(
            404,
            "Unknown operation: only POST /openai/v1/chat/completions is supported",
            "invalid_request_error",
            None,
            Some("unknown_operation"),
        );
    }
    if let Some(r) = check_bearer(gw, req) {
        return r;
    }
    let data: Vec<Value> = gw
        .models
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "llm-double"}))
        .collect();
    Response::json(200, &json!({"object": "list", "data": data}))
}

/// Validation that happens before any scripted behaviour is used: what the
/// real API refuses regardless of its mood. Ok(model, flavour, body).
pub fn validate(gw: &Gateway, req: &Request) -> Result<(String, Flavour, Value), Response> {
    if let Some(r) = check_bearer(gw, req) {
        return Err(r);
    }
    let body: Value = serde_json::from_slice(&req.body).map_err(|_| {
        error(400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", "invalid_request_error", None, None)
    })?;
    let Some(model) = body.get("model").and_then(Value::as_str).map(str::to_string) else {
        return Err(bad_request("you must provide a model parameter", "model", None));
    };
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err(bad_request(
            "Missing required parameter: 'messages'.",
            "messages",
            Some("missing_required_parameter"),
        ));
    };
    if messages.is_empty() {
        return Err(bad_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            Some("empty_array"),
        ));
    }
    if !gw.models.contains(&model) {
        return Err(error(
            404,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            None,
            Some("model_not_found"),
        ));
    }
    let flavour = gw.flavours.get(&model).copied().unwrap_or_else(|| flavour_by_name(&model));
    check_params(flavour, &body, messages)?;
    Ok((model, flavour, body))
}

fn check_params(flavour: Flavour, body: &Value, messages: &[Value]) -> Result<(), Response> {
    let reasoning = flavour == Flavour::Reasoning;
    if reasoning && body.get("max_tokens").is_some_and(|v| !v.is_null()) {
        return Err(bad_request(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
            "max_tokens",
            Some("unsupported_parameter"),
        ));
    }
    if let Some(t) = body.get("temperature").and_then(Value::as_f64) {
        if reasoning && t != 1.0 {
            return Err(bad_request(
                &format!("Unsupported value: 'temperature' does not support {t} with this model. Only the default (1) value is supported."),
                "temperature",
                Some("unsupported_value"),
            ));
        }
        if !(0.0..=2.0).contains(&t) {
            return Err(bad_request(
                &format!(
                    "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got {t} instead."
                ),
                "temperature",
                Some("decimal_above_max_value"),
            ));
        }
    }
    if let Some(effort) = body.get("reasoning_effort").filter(|v| !v.is_null()) {
        if !reasoning {
            return Err(bad_request(
                "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                "reasoning_effort",
                Some("unsupported_parameter"),
            ));
        }
        let ok = effort.as_str().is_some_and(|e| ["none", "minimal", "low", "medium", "high", "xhigh"].contains(&e));
        if !ok {
            return Err(bad_request(
                &format!("Invalid value: {effort}. Supported values are: 'minimal', 'low', 'medium', and 'high'."),
                "reasoning_effort",
                Some("invalid_value"),
            ));
        }
    }
    for key in ["max_tokens", "max_completion_tokens"] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            if v.as_u64().is_none_or(|n| n == 0) {
                return Err(bad_request(
                    &format!("Invalid '{key}': expected a positive integer."),
                    key,
                    Some("invalid_value"),
                ));
            }
        }
    }
    if let Some(rf) = body.get("response_format").filter(|v| !v.is_null()) {
        check_response_format(flavour, rf, messages)?;
    }
    Ok(())
}

fn check_response_format(flavour: Flavour, rf: &Value, messages: &[Value]) -> Result<(), Response> {
    let kind = rf.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "text" => Ok(()),
        "json_object" | "json_schema" if refused(flavour, kind) => Err(bad_request(
            &format!("Invalid parameter: 'response_format' of type '{kind}' is not supported with this model."),
            "response_format",
            None,
        )),
        "json_object" => {
            let mentions_json = messages.iter().any(|m| {
                super::usage::content_text(m.get("content").unwrap_or(&Value::Null))
                    .to_ascii_lowercase()
                    .contains("json")
            });
            if mentions_json {
                Ok(())
            } else {
                Err(bad_request(
                    "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                    "messages",
                    None,
                ))
            }
        }
        "json_schema" => {
            let Some(js) = rf.get("json_schema") else {
                return Err(bad_request(
                    "Missing required parameter: 'response_format.json_schema'.",
                    "response_format.json_schema",
                    Some("missing_required_parameter"),
                ));
            };
            let name_ok = js.get("name").and_then(Value::as_str).is_some_and(|n| {
                !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
            if !name_ok {
                return Err(bad_request("Invalid 'response_format.json_schema.name': a name of a-z, A-Z, 0-9, underscores and dashes, at most 64 characters, is required.", "response_format.json_schema.name", Some("invalid_value")));
            }
            let strict = js.get("strict").and_then(Value::as_bool).unwrap_or(false);
            match js.get("schema") {
                Some(schema) if strict => strict_schema_problem(schema, "").map_or(Ok(()), |p| {
                    Err(bad_request(
                        &format!("Invalid schema for response_format '{}': {p}", js["name"].as_str().unwrap_or("")),
                        "response_format",
                        None,
                    ))
                }),
                Some(_) => Ok(()),
                None if strict => Err(bad_request(
                    "Invalid 'response_format.json_schema': 'schema' is required when strict is true.",
                    "response_format.json_schema.schema",
                    None,
                )),
                None => Ok(()),
            }
        }
        other => Err(bad_request(
            &format!("Invalid value: '{other}'. Supported values are: 'json_object', 'json_schema', and 'text'."),
            "response_format.type",
            Some("invalid_value"),
        )),
    }
}

fn refused(flavour: Flavour, kind: &str) -> bool {
    matches!((flavour, kind), (Flavour::Plain, _) | (Flavour::Legacy, "json_schema"))
}

/// Structured outputs' "Supported schemas" rules for `strict: true`: each
/// object sets `additionalProperties: false` and requires every property.
fn strict_schema_problem(schema: &Value, at: &str) -> Option<String> {
    let obj = schema.as_object()?;
    let is_object =
        obj.get("type").is_some_and(|t| t == "object" || t.as_array().is_some_and(|a| a.iter().any(|x| x == "object")));
    if is_object {
        if obj.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Some(format!(
                "In context=({at}), 'additionalProperties' is required to be supplied and to be false."
            ));
        }
        let props = obj.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = props {
            for (k, sub) in props {
                if !required.contains(&k.as_str()) {
                    return Some(format!("In context=({at}), 'required' is required to be supplied and to be an array including every key in properties. Missing '{k}'."));
                }
                if let Some(p) = strict_schema_problem(sub, &format!("{at}/properties/{k}")) {
                    return Some(p);
                }
            }
        }
    }
    for key in ["items", "anyOf", "$defs", "definitions"] {
        match obj.get(key) {
            Some(Value::Array(a)) => {
                if let Some(p) = a.iter().find_map(|s| strict_schema_problem(s, at)) {
                    return Some(p);
                }
            }
            Some(Value::Object(m)) if key == "$defs" || key == "definitions" => {
                if let Some(p) = m.values().find_map(|s| strict_schema_problem(s, at)) {
                    return Some(p);
                }
            }
            Some(v @ Value::Object(_)) => {
                if let Some(p) = strict_schema_problem(v, &format!("{at}/{key}")) {
                    return Some(p);
                }
            }
            _ => {}
        }
    }
    None
}

/// A scripted fault as the OpenAI API renders it (None for faults that are
/// about the reply's content, handled in `complete`).
pub fn fault_response(fault: &Fault, model: &str) -> Option<Response> {
    Some(match fault {
        Fault::Unauthorized => error(401, "Incorrect API key provided: sk-****. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", None, Some("invalid_api_key")),
        Fault::ModelNotFound => error(404, &format!("The model `{model}` does not exist or you do not have access to it."), "invalid_request_error", None, Some("model_not_found")),
        Fault::RateLimit(hint) => with_retry_after(
            error(429, &format!("Rate limit reached for {model} in organization org-double on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."), "requests", None, Some("rate_limit_exceeded")),
            hint,
        ),
        Fault::InsufficientQuota => error(429, "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.", "insufficient_quota", None, Some("insufficient_quota")),
        Fault::ServerError => error(500, "The server had an error while processing your request. Sorry about that!", "server_error", None, None),
        Fault::Unavailable | Fault::Overloaded => error(503, "The engine is currently overloaded, please try again later.", "server_error", None, None),
        Fault::HtmlBadGateway => html_502(),
        _ => return None,
    })
}

/// Attach the retry hint headers.
pub fn with_retry_after(resp: Response, hint: &RetryAfter) -> Response {
    match hint {
        RetryAfter::None => resp,
        RetryAfter::Seconds(s) => resp.with_header("retry-after", &s.to_string()),
        RetryAfter::Millis(ms) => resp.with_header("retry-after-ms", &ms.to_string()),
        RetryAfter::Both { seconds, millis } => {
            resp.with_header("retry-after", &seconds.to_string()).with_header("retry-after-ms", &millis.to_string())
        }
        RetryAfter::HttpDate(t) => resp.with_header("retry-after", &http_date(*t)),
    }
}

/// The page a CDN or proxy in front of a gateway answers with when the
/// origin is down: HTML, not the API's JSON.
pub fn html_502() -> Response {
    Response {
        status: 502,
        headers: vec![("content-type".into(), "text/html; charset=UTF-8".into())],
        body: b"<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title><style>body{font-family:sans-serif}</style></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n<hr><center>cloudflare</center>\n<script>/* DOUBLE-HTML-MARKER */</script>\n</body>\n</html>\n".to_vec(),
    }
}

/// The reply text for a content-shaping fault.
pub fn shaped_content(b: &Behaviour) -> String {
    match b.fault {
        Some(Fault::ThinkAndObjects) => format!(
            "<think>The user wants JSON like {{\"spread_state\":\"narrow\",\"volatility\":\"low\"}}; let me think.</think>\nFirst a note: {{\"note\":\"not advice\",\"n\":1}}\n<think>{{\"direction\":\"down\"}}</think>\nThe advice: {}\nDone.",
            b.content
        ),
        Some(Fault::HugeBody(n)) => {
            let mut s = b.content.clone();
            s.push_str(&" ".repeat(n.saturating_sub(s.len())));
            s
        }
        _ => b.content.clone(),
    }
}

/// A successful chat completion for a validated request.
pub fn complete(
    gw: &Gateway,
    id: u64,
    model: &str,
    flavour: Flavour,
    body: &Value,
    b: &Behaviour,
) -> (Response, Option<Usage>) {
    let messages = body["messages"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let prompt = prompt_tokens(messages, None);
    let mut content = shaped_content(b);
    let mut finish = "stop";
    let limit = body
        .get("max_completion_tokens")
        .and_then(Value::as_u64)
        .or_else(|| body.get("max_tokens").and_then(Value::as_u64));
    let reasoning = if flavour == Flavour::Reasoning { REASONING_TOKENS } else { 0 };
    let mut completion = text_tokens(&content) + reasoning;
    if b.fault == Some(Fault::CutOff) {
        let keep = content.chars().count() / 2;
        content = content.chars().take(keep).collect();
        finish = "length";
        completion = limit.unwrap_or(text_tokens(&content) + reasoning);
    }
    let usage = Usage { prompt, cached: b.cached_tokens.min(prompt), completion, reasoning };
    let mut out = json!({
        "id": format!("chatcmpl-double{id}"),
        "object": "chat.completion",
        "created": gw.created_unix(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "logprobs": null,
            "finish_reason": finish,
        }],
        "system_fingerprint": "fp_double",
    });
    let reported = if b.fault == Some(Fault::NoUsage) {
        None
    } else {
        out["usage"] = json!({
            "prompt_tokens": usage.prompt,
            "completion_tokens": usage.completion,
            "total_tokens": usage.total(),
            "prompt_tokens_details": {"cached_tokens": usage.cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        });
        Some(usage)
    };
    (Response::json(200, &out), reported)
}

/// Handle POST .../chat/completions end to end (after validation).
pub fn handle(gw: &Gateway, req: &Request, take: &mut dyn FnMut() -> (u64, Behaviour)) -> Answer {
    let (model, flavour, body) = match validate(gw, req) {
        Ok(v) => v,
        Err(resp) => return Answer::now(resp),
    };
    let (id, b) = take();
    if b.fault == Some(Fault::HangUp) {
        return Answer { hang_up: true, delay: b.delay, ..Answer::now(Response::json(200, &json!({}))) };
    }
    if let Some(f) = &b.fault {
        if let Some(resp) = fault_response(f, &model) {
            return Answer { delay: b.delay, ..Answer::now(resp) };
        }
    }
    let (resp, usage) = complete(gw, id, &model, flavour, &body, &b);
    Answer { response: resp, usage, delay: b.delay, hang_up: false }
}

/// The content the default behaviour answers with (for tests that compute
/// expected counts).
pub fn default_content() -> &'static str {
    ADVICE_JSON
}
