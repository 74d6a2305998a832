//! What is sent: the request body of one route, in the wire format its
//! provider speaks ([`crate::ai::Wire`]).
//!
//! * OpenAI Chat Completions (OpenAI API reference, "Create chat
//!   completion"): `model`, `messages` in order. Reasoning models (gpt-5,
//!   o-series) take `max_completion_tokens` — "max_tokens ... is not
//!   compatible with o-series models" — and `reasoning_effort`, and reject a
//!   `temperature` other than the default, so none is sent. Other models
//!   take `temperature` and `max_tokens`.
//! * `response_format` (same reference; "Structured Outputs" guide):
//!   `json_schema` with `strict`, or `{"type":"json_object"}` (JSON mode), or
//!   nothing. Providers that document JSON mode only start there (DeepSeek
//!   "JSON Output": `response_format: {"type": "json_object"}`).
//! * Anthropic Messages (Anthropic API reference, "Messages"): `model`,
//!   `max_tokens` (required), a top-level `system` (there is no "system"
//!   role), `messages` of user/assistant turns, `temperature`.
//!
//! `[ai.models."m"] params` are merged into the body last, so they can set
//! anything except what identifies the request (`model`, `messages`,
//! `system`) or would change how it is read (`stream`).

use serde_json::{json, Map, Value};

use crate::ai::llm::{Message, Role};
use crate::ai::{AiConfig, ReasoningEffort, ResponseFormat};

/// Body keys `params` may not replace.
const PROTECTED: [&str; 4] = ["model", "messages", "system", "stream"];

/// The request parameters of one model, `[ai.models."m"]` over `[ai]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestParams {
    pub model: String,
    /// Reasoning-model rules: `max_completion_tokens`, `reasoning_effort`,
    /// no `temperature`.
    pub reasoning: bool,
    pub temperature: f64,
    /// Sent as `max_tokens`, or `max_completion_tokens` for reasoning
    /// models (OpenAI wire).
    pub max_tokens: u32,
    pub reasoning_effort: Option<ReasoningEffort>,
    /// `[ai.models."m"] params`, merged last.
    pub extra: Map<String, Value>,
}

impl RequestParams {
    /// The parameters `cfg` asks `cfg.model` with.
    pub fn of(cfg: &AiConfig) -> Self {
        let p = cfg.model_params(&cfg.model);
        Self {
            model: cfg.model.clone(),
            reasoning: cfg.is_reasoning(&cfg.model),
            temperature: p.temperature.unwrap_or(cfg.temperature),
            max_tokens: p.max_tokens.unwrap_or(cfg.max_tokens),
            reasoning_effort: p.reasoning_effort.or(cfg.reasoning_effort),
            extra: p.extra,
        }
    }
}

/// How strongly a format constrains the reply (for capping by provider).
fn rank(f: ResponseFormat) -> u8 {
    match f {
        ResponseFormat::None => 0,
        ResponseFormat::JsonObject => 1,
        ResponseFormat::JsonSchema => 2,
    }
}

/// The `response_format` the first request of `cfg`'s route carries:
/// `[ai.models."m"] response_format` as written, else `[ai]
/// response_format` capped at what the provider documents.
pub fn first_format(cfg: &AiConfig) -> ResponseFormat {
    if let Some(f) = cfg.model_params(&cfg.model).response_format {
        return f;
    }
    let best = cfg.provider.best_response_format();
    if rank(cfg.response_format) > rank(best) {
        best
    } else {
        cfg.response_format
    }
}

/// The `response_format` value of `f`, if one is sent.
pub fn response_format_value(f: ResponseFormat) -> Option<Value> {
    match f {
        ResponseFormat::JsonSchema => Some(crate::ai::schema::json_schema_format()),
        ResponseFormat::JsonObject => Some(json!({"type": "json_object"})),
        ResponseFormat::None => None,
    }
}

fn merge_extra(body: &mut Map<String, Value>, extra: &Map<String, Value>) {
    for (k, v) in extra {
        if !PROTECTED.contains(&k.as_str()) {
            body.insert(k.clone(), v.clone());
        }
    }
}

/// The OpenAI Chat Completions body.
pub fn openai_body(p: &RequestParams, messages: &[Message], format: ResponseFormat) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(p.model));
    let msgs: Vec<Value> = messages.iter().map(|m| json!({"role": m.role.name(), "content": m.content})).collect();
    body.insert("messages".into(), Value::Array(msgs));
    if p.reasoning {
        body.insert("max_completion_tokens".into(), json!(p.max_tokens));
        if let Some(e) = p.reasoning_effort {
            body.insert("reasoning_effort".into(), json!(e.name()));
        }
    } else {
        body.insert("temperature".into(), json!(p.temperature));
        body.insert("max_tokens".into(), json!(p.max_tokens));
    }
    if let Some(f) = response_format_value(format) {
        body.insert("response_format".into(), f);
    }
    merge_extra(&mut body, &p.extra);
    Value::Object(body)
}

/// The Anthropic Messages body: system messages joined into the top-level
/// `system`, the rest in order.
pub fn anthropic_body(p: &RequestParams, messages: &[Message]) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(p.model));
    body.insert("max_tokens".into(), json!(p.max_tokens));
    let system: Vec<&str> = messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    let turns: Vec<Value> = messages
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| json!({"role": m.role.name(), "content": m.content}))
        .collect();
    body.insert("messages".into(), Value::Array(turns));
    if !p.reasoning {
        body.insert("temperature".into(), json!(p.temperature));
    }
    merge_extra(&mut body, &p.extra);
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::{ModelParams, Provider};

    fn msgs() -> Vec<Message> {
        vec![Message::system("sys"), Message::user("market"), Message::assistant("bad"), Message::user("fix it")]
    }

    #[test]
    fn chat_models_get_temperature_and_max_tokens() {
        let cfg = AiConfig { model: "gpt-4.1".into(), ..AiConfig::default() };
        let b = openai_body(&RequestParams::of(&cfg), &msgs(), ResponseFormat::JsonObject);
        assert_eq!(b["model"], "gpt-4.1");
        let roles: Vec<&str> = b["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!((b["temperature"].as_f64(), b["max_tokens"].as_u64()), (Some(0.3), Some(800)));
        assert!(b.get("max_completion_tokens").is_none() && b.get("reasoning_effort").is_none());
        assert_eq!(b["response_format"]["type"], "json_object");
    }

    #[test]
    fn reasoning_models_get_max_completion_tokens_and_no_temperature() {
        let mut cfg = AiConfig {
            model: "gpt-5-mini".into(),
            reasoning_effort: Some(ReasoningEffort::Low),
            ..AiConfig::default()
        };
        let b = openai_body(&RequestParams::of(&cfg), &msgs(), ResponseFormat::JsonSchema);
        assert_eq!(b["max_completion_tokens"], 800);
        assert_eq!(b["reasoning_effort"], "low");
        assert!(b.get("temperature").is_none() && b.get("max_tokens").is_none(), "{b}");
        assert_eq!(b["response_format"]["json_schema"]["strict"], true);
        // [ai.models."m"] overrides [ai]; params merge last but never over model/messages.
        let mut extra = Map::new();
        extra.insert("seed".into(), json!(7));
        extra.insert("model".into(), json!("evil"));
        extra.insert("reasoning_effort".into(), json!("high"));
        cfg.models.insert(
            "gpt-5-mini".into(),
            ModelParams {
                max_tokens: Some(2000),
                reasoning_effort: Some(ReasoningEffort::Minimal),
                extra,
                ..Default::default()
            },
        );
        let b = openai_body(&RequestParams::of(&cfg), &msgs(), ResponseFormat::None);
        assert_eq!((b["max_completion_tokens"].as_u64(), b["seed"].as_u64()), (Some(2000), Some(7)));
        assert_eq!((b["model"].as_str(), b["reasoning_effort"].as_str()), (Some("gpt-5-mini"), Some("high")));
        assert!(b.get("response_format").is_none());
    }

    #[test]
    fn anthropic_has_a_top_level_system_and_max_tokens() {
        let cfg = AiConfig { provider: Provider::Anthropic, model: "claude-haiku-4-5".into(), ..AiConfig::default() };
        let b = anthropic_body(&RequestParams::of(&cfg), &msgs());
        assert_eq!((b["system"].as_str(), b["max_tokens"].as_u64()), (Some("sys"), Some(800)));
        let roles: Vec<&str> = b["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(b["temperature"].as_f64(), Some(0.3));
        assert!(b.get("response_format").is_none());
    }

    #[test]
    fn the_first_format_is_capped_by_what_the_provider_documents() {
        let cfg = AiConfig { provider: Provider::DeepSeek, ..AiConfig::default() };
        assert_eq!(first_format(&cfg), ResponseFormat::JsonObject);
        let cfg = AiConfig { provider: Provider::OpenAi, ..AiConfig::default() };
        assert_eq!(first_format(&cfg), ResponseFormat::JsonSchema);
        let cfg = AiConfig { provider: Provider::OpenAi, response_format: ResponseFormat::None, ..AiConfig::default() };
        assert_eq!(first_format(&cfg), ResponseFormat::None);
        // A per-model format is taken as written.
        let mut cfg = AiConfig { provider: Provider::DeepSeek, model: "m".into(), ..AiConfig::default() };
        cfg.models.insert(
            "m".into(),
            ModelParams { response_format: Some(ResponseFormat::JsonSchema), ..Default::default() },
        );
        assert_eq!(first_format(&cfg), ResponseFormat::JsonSchema);
    }
}
