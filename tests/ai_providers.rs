//! Each provider's wire against the loopback gateway double: what is sent
//! (bodies, headers) and how answers, usage and errors are read, per the
//! providers' own documentation:
//!
//! * OpenAI API reference, "Create chat completion": reasoning models take
//!   `max_completion_tokens` and `reasoning_effort`, not `temperature`;
//!   "Models": `GET /v1/models`, `data[].id`.
//! * DeepSeek "JSON Output": `response_format` `json_object` only.
//! * Anthropic "Messages": `x-api-key`, `anthropic-version: 2023-06-01`,
//!   `max_tokens` required, top-level `system`, `content[].text`,
//!   `stop_reason`, `usage` with cache reads and writes; "Errors": the
//!   `{"type":"error",...}` body and 529 `overloaded_error`; "List Models".
//! * Gemini "OpenAI compatibility" and Bedrock "Invoke a model with the
//!   OpenAI Chat Completions API": the presets' base URLs, Bearer keys.
//! * `mmbot ai check` validates `[ai] model` against `/models`.

mod ai_server;
mod common;

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ai_server::{Reply, Server, CLEAN};
use mmbot::ai::advisor::{ask_once, sample_snapshot};
use mmbot::ai::key::ApiKey;
use mmbot::ai::llm::{LlmClient, Message};
use mmbot::ai::{AiConfig, AiError, ModelParams, Provider, ReasoningEffort, ResponseFormat};
use serde_json::json;

const KEY_VAR: &str = "MMBOT_TEST_PROVIDER_KEY";
const KEY: &str = "sk-prov-0123456789abcdefSECRETPART";

fn route(provider: Provider, base_url: &str, model: &str) -> AiConfig {
    AiConfig {
        provider,
        base_url: Some(base_url.to_string()),
        model: model.to_string(),
        key_var: KEY_VAR.to_string(),
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_millis(500),
        backoff: Duration::from_millis(20),
        ..AiConfig::default()
    }
}

fn client(ai: &AiConfig) -> LlmClient {
    LlmClient::new(ai, Some(ApiKey::new(KEY_VAR, KEY))).unwrap()
}

fn conversation() -> Vec<Message> {
    vec![Message::system("sys"), Message::user("book"), Message::assistant("{bad"), Message::user("fix")]
}

#[test]
fn openai_reasoning_models_get_max_completion_tokens_and_effort_not_temperature() {
    let server = Server::always(Reply::chat(CLEAN));
    let mut ai = AiConfig {
        reasoning_effort: Some(ReasoningEffort::Medium),
        ..route(Provider::OpenAi, &server.base_url(), "gpt-5-mini")
    };
    let mut extra = serde_json::Map::new();
    extra.insert("seed".into(), json!(42));
    extra.insert("messages".into(), json!([]));
    ai.models.insert(
        "gpt-5-mini".into(),
        ModelParams {
            reasoning_effort: Some(ReasoningEffort::Minimal),
            max_tokens: Some(1500),
            extra,
            ..Default::default()
        },
    );
    let never = AtomicBool::new(false);
    client(&ai).complete(&conversation(), &never).unwrap();
    let r = &server.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    let b = r.json();
    assert_eq!(b["model"], "gpt-5-mini");
    assert_eq!((b["max_completion_tokens"].as_u64(), b["reasoning_effort"].as_str()), (Some(1500), Some("minimal")));
    assert!(b.get("temperature").is_none() && b.get("max_tokens").is_none(), "{b}");
    assert_eq!(b["seed"], 42);
    let roles: Vec<&str> = b["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"], "params never replace messages");
    assert_eq!(b["response_format"]["type"], "json_schema");
    assert_eq!(b["response_format"]["json_schema"]["name"], "market_advice");

    // A chat model on the same route: temperature and max_tokens, model params over [ai].
    let server = Server::always(Reply::chat(CLEAN));
    let mut ai = route(Provider::OpenAi, &server.base_url(), "gpt-4.1");
    ai.models.insert("gpt-4.1".into(), ModelParams { temperature: Some(0.0), ..Default::default() });
    client(&ai).complete(&conversation(), &never).unwrap();
    let b = server.requests()[0].json();
    assert_eq!((b["temperature"].as_f64(), b["max_tokens"].as_u64()), (Some(0.0), Some(800)));
    assert!(b.get("max_completion_tokens").is_none() && b.get("reasoning_effort").is_none());
}

#[test]
fn deepseek_starts_at_json_object_and_custom_at_json_schema() {
    let server = Server::always(Reply::chat(CLEAN));
    let ai = route(Provider::DeepSeek, &server.base_url(), "deepseek-chat");
    let c = client(&ai);
    assert_eq!(c.response_format(), ResponseFormat::JsonObject);
    ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap();
    assert_eq!(server.requests()[0].json()["response_format"], json!({"type": "json_object"}));
    let ai = route(Provider::Custom, &server.base_url(), "m");
    assert_eq!(client(&ai).response_format(), ResponseFormat::JsonSchema);
}

#[test]
fn gemini_and_bedrock_presets_are_openai_compatible_with_bearer_keys() {
    assert_eq!(
        Provider::Gemini.preset_base_url(None).as_deref(),
        Some("https://generativelanguage.googleapis.com/v1beta/openai")
    );
    assert_eq!(
        Provider::Bedrock.preset_base_url(Some("us-west-2")).as_deref(),
        Some("https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1")
    );
    assert_eq!(Provider::Bedrock.key_var(), "AWS_BEARER_TOKEN_BEDROCK");
    assert!(!Provider::Bedrock.lists_models() && Provider::Gemini.lists_models());
    for p in [Provider::Gemini, Provider::Bedrock] {
        let server = Server::always(Reply::chat(CLEAN));
        let ai = route(p, &server.base_url(), p.default_model());
        ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap();
        let r = &server.requests()[0];
        assert_eq!(r.path, "/v1/chat/completions", "{p:?}");
        assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()), "{p:?}");
        assert_eq!(r.json()["model"], p.default_model());
    }
}

#[test]
fn anthropic_messages_request_response_and_usage() {
    let usage = json!({"input_tokens": 120, "output_tokens": 95, "cache_read_input_tokens": 600,
        "cache_creation_input_tokens": 10});
    let server = Server::always(Reply::anthropic(CLEAN, "end_turn", usage));
    let ai = route(Provider::Anthropic, &server.base_url(), "claude-haiku-4-5");
    let mut c = client(&ai);
    assert_eq!(c.endpoint(), format!("{}/messages", server.base_url()));
    let never = AtomicBool::new(false);
    let done = c.complete(&conversation(), &never).unwrap();
    assert_eq!((done.content.as_str(), done.model.as_str()), (CLEAN, "claude-haiku-4-5-20251001"));
    assert_eq!((done.tokens_in, done.cached_tokens, done.tokens_out), (730, 600, 95));
    assert!(done.usage_reported && done.finish_reason.as_deref() == Some("end_turn"));
    let r = &server.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("authorization"), None);
    let b = r.json();
    assert_eq!((b["model"].as_str(), b["max_tokens"].as_u64()), (Some("claude-haiku-4-5"), Some(800)));
    assert_eq!((b["system"].as_str(), b["temperature"].as_f64()), (Some("sys"), Some(0.3)));
    let roles: Vec<&str> = b["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert!(b.get("response_format").is_none());

    // The advice reads through the same path.
    let a = ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap();
    assert!(a.reply.is_ok());

    // stop_reason max_tokens reads as finish_reason "length"; empty -> the hint.
    let server = Server::always(Reply::anthropic("", "max_tokens", json!({"input_tokens": 1, "output_tokens": 800})));
    let ai = route(Provider::Anthropic, &server.base_url(), "claude-haiku-4-5");
    let e = client(&ai).complete(&conversation(), &never).unwrap_err().to_string();
    assert!(e.contains("finish_reason \"length\"") && e.contains("max_tokens (now 800)"), "{e}");
}

#[test]
fn anthropic_errors_overloaded_is_retried_others_are_not() {
    // 529 overloaded_error is retried like a 5xx.
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::anthropic_error(529, "overloaded_error", "Overloaded")
        } else {
            Reply::anthropic(CLEAN, "end_turn", json!({"input_tokens": 10, "output_tokens": 5}))
        }
    });
    let ai = route(Provider::Anthropic, &server.base_url(), "claude-haiku-4-5");
    let never = AtomicBool::new(false);
    assert_eq!(client(&ai).complete(&conversation(), &never).unwrap().attempts, 2);

    let server = Server::always(Reply::anthropic_error(529, "overloaded_error", "Overloaded"));
    let ai = route(Provider::Anthropic, &server.base_url(), "claude-haiku-4-5");
    let e = client(&ai).complete(&conversation(), &never).unwrap_err();
    assert!(matches!(e, AiError::Server { status: 529, attempts: 3, .. }), "{e}");
    assert!(e.to_string().contains("Overloaded"), "{e}");

    let server = Server::always(Reply::anthropic_error(404, "not_found_error", "model: claude-nope"));
    let ai = route(Provider::Anthropic, &server.base_url(), "claude-nope");
    let e = client(&ai).complete(&conversation(), &never).unwrap_err();
    assert!(matches!(e, AiError::Refused { status: 404, .. }) && e.to_string().contains("model: claude-nope"), "{e}");
    assert_eq!(server.count(), 1);

    let server =
        Server::always(Reply::anthropic_error(401, "authentication_error", &format!("invalid x-api-key {KEY}")));
    let ai = route(Provider::Anthropic, &server.base_url(), "claude-haiku-4-5");
    let e = client(&ai).complete(&conversation(), &never).unwrap_err();
    let shown = e.to_string();
    assert!(matches!(e, AiError::KeyRejected { status: 401, .. }) && shown.contains("authentication_error"), "{shown}");
    assert!(!shown.contains("SECRETPART"), "{shown}");

    // The monthly spend limit is a quota, not a rate limit ("Errors").
    let server = Server::always(Reply::status(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"spend limit reached","details":{"error_code":"enforced_spend_limit_reached"}}}"#,
    ));
    let ai = route(Provider::Anthropic, &server.base_url(), "claude-haiku-4-5");
    let e = client(&ai).complete(&conversation(), &never).unwrap_err();
    assert!(matches!(e, AiError::QuotaExhausted { .. }) && server.count() == 1, "{e}");
}

#[test]
fn list_models_openai_and_anthropic() {
    let server = Server::always(Reply::models(&["gpt-4.1", "gpt-5-mini"]));
    let ai = route(Provider::OpenAi, &server.base_url(), "gpt-4.1");
    assert_eq!(client(&ai).list_models().unwrap(), ["gpt-4.1", "gpt-5-mini"]);
    let r = &server.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/v1/models"));
    assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));

    let server = Server::always(Reply::models(&["claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929"]));
    let ai = route(Provider::Anthropic, &server.base_url(), "claude-haiku-4-5");
    assert_eq!(client(&ai).list_models().unwrap().len(), 2);
    let r = &server.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/v1/models?limit=1000"));
    assert_eq!((r.header("x-api-key"), r.header("anthropic-version")), (Some(KEY), Some("2023-06-01")));

    let server = Server::always(Reply::status(404, "404 page not found"));
    let ai = route(Provider::Custom, &server.base_url(), "m");
    let e = client(&ai).list_models().unwrap_err();
    assert!(matches!(e, AiError::Refused { status: 404, .. }), "{e}");
}

/// `mmbot ai check` with a temp config, the key in the environment.
fn check(name: &str, server: &Server, provider: &str, model: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("mmbot-ai-providers-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        "[ai]\nprovider = \"{provider}\"\nbase_url = \"{}\"\nmodel = \"{model}\"\napi_key_env = \"{KEY_VAR}\"\n\
         timeout_s = 2\nconnect_timeout_s = 0.5\nbackoff_ms = 20\n",
        server.base_url()
    );
    std::fs::write(dir.join("mmbot.toml"), cfg).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["ai", "check"])
        .current_dir(&dir)
        .env(KEY_VAR, KEY)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("SECRETPART"), "the key leaked:\n{text}");
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code(), text)
}

/// The gateway double of `ai check`: a model list, and chat answers.
fn gateway(ids: &'static [&'static str]) -> Server {
    Server::start(move |_, r| {
        if r.method == "GET" {
            Reply::models(ids)
        } else if r.path.ends_with("/messages") {
            Reply::anthropic(CLEAN, "end_turn", json!({"input_tokens": 500, "output_tokens": 90}))
        } else {
            Reply::chat(CLEAN)
        }
    })
}

#[test]
fn ai_check_validates_the_model_name_against_the_list() {
    let server = gateway(&["gpt-4.1", "gpt-4.1-mini", "gpt-5-mini", "dall-e-3"]);
    let (code, text) = check("wrong", &server, "openai", "gpt-4.2");
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("[ai] model \"gpt-4.2\" is not among the 4 models"), "{text}");
    assert!(text.contains("close: gpt-4.1") && !text.contains("dall-e-3"), "{text}");
    assert_eq!(server.calls(), 0, "no call is made for an unknown model");

    let (code, text) = check("right", &server, "openai", "gpt-4.1");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("\"gpt-4.1\" is among the 4 the server lists"), "{text}");
    assert!(text.contains("format     response_format json_schema"), "{text}");

    // Anthropic lists dated snapshots; the alias is known.
    let server = gateway(&["claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929"]);
    let (code, text) = check("alias", &server, "anthropic", "claude-haiku-4-5");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("format     response_format none"), "{text}");
    let (code, text) = check("typo", &server, "anthropic", "claude-haiku-4.5");
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("close: claude-haiku-4-5-20251001"), "{text}");

    // A server without /models: a note, and the check goes on.
    let server =
        Server::start(|_, r| if r.method == "GET" { Reply::status(404, "not found") } else { Reply::chat(CLEAN) });
    let (code, text) = check("nolist", &server, "custom", "whatever-model");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("no /models list (HTTP 404)"), "{text}");
    assert_eq!(server.calls(), 1);
}
