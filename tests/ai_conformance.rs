//! Black-box conformance of the `mmbot` binary against the independent LLM
//! gateway double (tests/llm_double), from issue 18's text and SPEC18's
//! config keys only: the CLI is run with a temporary config per provider
//! flavour, and what reached the "gateway" (paths, headers, bodies, timing)
//! and what mmbot printed are checked against the providers' documented
//! behaviour. Each test names the issue line it checks.
//!
//! Every run is bounded (a child process killed after its limit), every
//! server is on 127.0.0.1:0, and no test waits on an unbounded loop.

mod llm_double;

use llm_double::{Behaviour, Fault, Flavour, LlmDouble, RetryAfter, Usage, ADVICE_JSON, DEFAULT_KEY};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The variable the test configs name for the key (never the key itself).
const KEY_VAR: &str = "LLM_DOUBLE_KEY";
/// Every variable mmbot might read a key or config from: cleared so the
/// developer's environment cannot leak into a run.
const CLEARED: &[&str] = &[
    "MMBOT_CONFIG",
    "HOLYSHEEP_API_KEY",
    "OPENAI_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENROUTER_API_KEY",
    "OLLAMA_API_KEY",
    "MMBOT_AI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "AWS_BEARER_TOKEN_BEDROCK",
];
/// Prices used in every config: USD per million tokens.
const PRICE_IN: f64 = 3.0;
const PRICE_OUT: f64 = 12.0;
const PRICE_CACHED: f64 = 0.75;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "mmbot-ai-conformance-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create a scratch dir");
        Scratch(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write a scratch file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One finished (or killed) run of the binary.
struct Run {
    code: Option<i32>,
    out: String,
    err: String,
    killed: bool,
}

impl Run {
    fn all(&self) -> String {
        format!("{}\n{}", self.out, self.err)
    }
    fn show(&self) -> String {
        format!("exit {:?} (killed: {})\n--- stdout\n{}\n--- stderr\n{}", self.code, self.killed, self.out, self.err)
    }
}

/// Run `mmbot args` in `dir` with the key in `KEY_VAR`, killed after `limit`.
fn mmbot(dir: &Path, args: &[&str], key: &str, limit: Duration) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mmbot"));
    cmd.args(args).current_dir(dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for v in CLEARED {
        cmd.env_remove(v);
    }
    cmd.env(KEY_VAR, key).env("NO_COLOR", "1").env("RUST_LOG", "warn");
    let mut child = cmd.spawn().expect("spawn mmbot");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let te = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let end = Instant::now() + limit;
    let mut killed = false;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            killed = true;
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        code: status.and_then(|s| s.code()),
        out: to.join().unwrap_or_default(),
        err: te.join().unwrap_or_default(),
        killed,
    };
    if std::env::var_os("AI_CONFORMANCE_SHOW").is_some() {
        eprintln!("mmbot {}\n{}", args.join(" "), run.show());
    }
    assert_key_never_printed(&run, key);
    run
}

/// Issue 18 / project rule: "Secrets never printed" (README: at most the
/// variable, the key's length and its first 4 characters). Checked on every run.
fn assert_key_never_printed(run: &Run, key: &str) {
    let all = run.all();
    // Any 12-character window of the key would be more than its first 4.
    let chars: Vec<char> = key.chars().collect();
    for w in chars.windows(12) {
        let piece: String = w.iter().collect();
        assert!(!all.contains(&piece), "a piece of the API key ({piece:?}) was printed:\n{}", run.show());
    }
}

/// The `[ai]` section for one route, plus extra lines.
/// A default line is left out when `extra` sets the same key (TOML refuses
/// a key twice).
fn ai_config(provider: &str, base_url: &str, model: &str, extra: &str) -> String {
    let defaults = "interval_s = 1.0\nconnect_timeout_s = 2.0\ntimeout_s = 10.0\nretries = 2\nbackoff_ms = 100\n";
    let overridden = |line: &str| {
        let key = line.split('=').next().unwrap_or("").trim();
        extra.lines().any(|l| l.split('=').next().unwrap_or("").trim() == key)
    };
    let defaults: String = defaults.lines().filter(|l| !overridden(l)).map(|l| format!("{l}\n")).collect();
    format!(
        r#"[ai]
provider = "{provider}"
base_url = "{base_url}"
model = "{model}"
api_key_env = "{KEY_VAR}"
env_file = "no-such.env"
{defaults}{extra}

[ai.prices]
"{model}" = {{ input = {PRICE_IN}, output = {PRICE_OUT}, cached_input = {PRICE_CACHED} }}
"gpt-4.1-mini" = {{ input = {PRICE_IN}, output = {PRICE_OUT}, cached_input = {PRICE_CACHED} }}
"#
    )
}

fn ai_check(d: &LlmDouble, toml: &str) -> Run {
    ai_check_with_key(toml, &d.key())
}

fn ai_check_with_key(toml: &str, key: &str) -> Run {
    let dir = Scratch::new("check");
    let cfg = dir.write("mmbot.toml", toml);
    mmbot(dir.path(), &["ai", "check", "--config", cfg.to_str().unwrap()], key, Duration::from_secs(45))
}

/// USD for one reply's usage at the test prices (cached tokens at the cached price).
fn cost(u: &Usage) -> f64 {
    ((u.prompt - u.cached) as f64 * PRICE_IN + u.cached as f64 * PRICE_CACHED + u.completion as f64 * PRICE_OUT) / 1e6
}

fn bodies(d: &LlmDouble) -> Vec<Value> {
    d.completions().iter().map(|r| r.json()).collect()
}

// ---------------------------------------------------------------- ai check

/// "Structured outputs: `response_format` `json_schema` with `strict` where
/// the provider supports it": the first request carries a strict schema the
/// API accepts (Structured outputs, "Supported schemas").
#[test]
fn check_sends_a_strict_json_schema_the_api_accepts() {
    let d = LlmDouble::start();
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", ""));
    let c = d.completions();
    assert!(!c.is_empty(), "no completion request reached the gateway:\n{}", run.show());
    let first = c[0].json();
    assert_eq!(first["response_format"]["type"], "json_schema", "{}", run.show());
    assert_eq!(first["response_format"]["json_schema"]["strict"], true);
    assert_eq!(
        c[0].status,
        200,
        "the strict schema was refused by the documented rules:\n{}",
        String::from_utf8_lossy(&c[0].body)
    );
    assert_eq!(c.len(), 1, "one call for one check");
    assert_eq!(run.code, Some(0), "{}", run.show());
}

/// "Reasoning models (OpenAI gpt-5 and o-series): send `max_completion_tokens`
/// and no `temperature`, with `reasoning_effort` configurable".
#[test]
fn check_reasoning_model_sends_max_completion_tokens_no_temperature_and_effort() {
    let d = LlmDouble::start();
    let run =
        ai_check(&d, &ai_config("openai", &d.base_url(), "gpt-5-mini", "reasoning_effort = \"low\"\nmax_tokens = 800"));
    let c = d.completions();
    assert!(!c.is_empty(), "{}", run.show());
    for (i, r) in c.iter().enumerate() {
        let b = r.json();
        assert!(b.get("max_tokens").is_none(), "request {i} sent max_tokens to a reasoning model: {b}");
        assert!(b.get("temperature").is_none(), "request {i} sent temperature to a reasoning model: {b}");
        assert_eq!(b["max_completion_tokens"], 800, "request {i}: {b}");
        assert_eq!(b["reasoning_effort"], "low", "request {i}: {b}");
    }
    assert_eq!(c[0].status, 200, "the first request was refused (mmbot should know gpt-5* by name)");
    assert_eq!(run.code, Some(0), "{}", run.show());
}

/// "per-model request parameters in config" (SPEC18: `[ai.models."name"]`
/// { max_tokens, temperature, params = {..} merged into the body }).
#[test]
fn check_merges_per_model_params_into_the_body() {
    let d = LlmDouble::start();
    let extra = "\n[ai.models.\"gpt-4.1\"]\nmax_tokens = 321\ntemperature = 0.2\nparams = { seed = 7, top_p = 0.9 }\n";
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", extra));
    let b = bodies(&d);
    assert!(!b.is_empty(), "{}", run.show());
    assert_eq!(b[0]["seed"], 7, "{}", b[0]);
    assert_eq!(b[0]["top_p"], 0.9, "{}", b[0]);
    assert_eq!(b[0]["max_tokens"], 321, "{}", b[0]);
    assert_eq!(b[0]["temperature"], 0.2, "{}", b[0]);
    assert_eq!(run.code, Some(0), "{}", run.show());
}

/// "`json_object` otherwise, plain prompt as the last fallback (today's
/// automatic downgrade kept)": a model refusing json_schema gets json_object
/// on the next request.
#[test]
fn check_downgrades_json_schema_to_json_object_when_refused() {
    let d = LlmDouble::start();
    d.set_flavour("legacy-model", Flavour::Legacy);
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "legacy-model", ""));
    let kinds: Vec<(String, u16)> = d
        .completions()
        .iter()
        .map(|r| (r.json()["response_format"]["type"].as_str().unwrap_or("none").to_string(), r.status))
        .collect();
    assert_eq!(kinds, [("json_schema".to_string(), 400), ("json_object".to_string(), 200)], "{}", run.show());
    assert_eq!(run.code, Some(0), "{}", run.show());
}

/// Same line, the last step: no structured output at all -> plain prompt.
#[test]
fn check_downgrades_to_a_plain_prompt_when_every_response_format_is_refused() {
    let d = LlmDouble::start();
    d.set_flavour("plain-model", Flavour::Plain);
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "plain-model", ""));
    let kinds: Vec<(String, u16)> = d
        .completions()
        .iter()
        .map(|r| (r.json()["response_format"]["type"].as_str().unwrap_or("none").to_string(), r.status))
        .collect();
    assert_eq!(
        kinds,
        [("json_schema".to_string(), 400), ("json_object".to_string(), 400), ("none".to_string(), 200)],
        "{}",
        run.show()
    );
    assert_eq!(run.code, Some(0), "{}", run.show());
}

/// SPEC18 `response_format = "json_object"` is honoured from the first request.
#[test]
fn check_honours_response_format_json_object() {
    let d = LlmDouble::start();
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", "response_format = \"json_object\""));
    let b = bodies(&d);
    assert!(!b.is_empty(), "{}", run.show());
    assert_eq!(b[0]["response_format"]["type"], "json_object", "{}", b[0]);
    assert_eq!(run.code, Some(0), "{}", run.show());
}

/// "Presets ... Anthropic's API directly (Messages API, `x-api-key`)"
/// (Anthropic "Messages": x-api-key + anthropic-version headers, max_tokens
/// required, top-level system).
#[test]
fn check_anthropic_uses_the_messages_api() {
    let d = LlmDouble::start();
    let run = ai_check(&d, &ai_config("anthropic", &d.base_url(), "claude-sonnet-4-5", ""));
    let c = d.completions();
    assert!(!c.is_empty(), "{}", run.show());
    let r = &c[0];
    assert_eq!(r.path, "/v1/messages", "{}", run.show());
    assert_eq!(r.header("x-api-key"), Some(DEFAULT_KEY));
    assert!(r.header("anthropic-version").is_some(), "anthropic-version header missing");
    assert!(r.header("authorization").is_none(), "the key also went out as a Bearer token");
    let b = r.json();
    assert!(b["max_tokens"].as_u64().is_some(), "{b}");
    assert!(b["system"].is_string() || b["system"].is_array(), "system prompt not top-level: {b}");
    assert!(b["messages"].as_array().unwrap().iter().all(|m| m["role"] != "system"), "{b}");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(run.code, Some(0), "{}", run.show());
    let u = r.usage.unwrap();
    assert!(
        run.out.contains(&format!("{} in, {} out", u.prompt, u.completion)),
        "tokens line should show the Messages usage:\n{}",
        run.show()
    );
}

/// "`ai check` validates the model name via `/v1/models` where the provider
/// has it": Anthropic has GET /v1/models (Anthropic "Models > List Models",
/// with x-api-key and anthropic-version).
#[test]
fn check_anthropic_wrong_model_is_found_via_its_models_list() {
    let d = LlmDouble::start();
    let run = ai_check(&d, &ai_config("anthropic", &d.base_url(), "claude-sonnet-9-typo", ""));
    let listed: Vec<_> = d.requests().into_iter().filter(|r| r.method == "GET" && r.path == "/v1/models").collect();
    assert_eq!(listed.len(), 1, "GET /v1/models was not asked:\n{}", run.show());
    assert_eq!(listed[0].header("x-api-key"), Some(DEFAULT_KEY), "the models list needs Anthropic's key header");
    assert!(listed[0].header("anthropic-version").is_some());
    assert_eq!(run.code, Some(2), "{}", run.show());
    assert!(run.all().contains("claude-sonnet-9-typo"), "{}", run.show());
}

/// Anthropic "Errors": 529 overloaded_error is temporary (retry with backoff),
/// and a 429 rate_limit_error's `retry-after` is honoured like OpenAI's.
#[test]
fn check_anthropic_overload_is_retried_and_retry_after_honoured() {
    let d = LlmDouble::start();
    d.push_all([Behaviour::fault(Fault::Overloaded), Behaviour::fault(Fault::RateLimit(RetryAfter::Seconds(2)))]);
    let run = ai_check(&d, &ai_config("anthropic", &d.base_url(), "claude-sonnet-4-5", ""));
    let c = d.completions();
    let statuses: Vec<u16> = c.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [529, 429, 200], "{}", run.show());
    assert!(c[2].at.duration_since(c[1].at) >= Duration::from_secs(2), "retried before retry-after: 2");
    assert_eq!(run.code, Some(0), "{}", run.show());
}

/// "Google Gemini (its OpenAI-compatible endpoint)" (Google "OpenAI
/// compatibility": base .../v1beta/openai/, Bearer key).
#[test]
fn check_gemini_uses_the_openai_compatible_path() {
    check_openai_compatible_path("gemini", "/v1beta/openai", "gemini-2.5-flash");
}

/// `ai check` with `provider` at `{origin}{prefix}`: one chat request to
/// `{prefix}/chat/completions` with the key as a Bearer token, exit 0.
fn check_openai_compatible_path(provider: &str, prefix: &str, model: &str) {
    let d = LlmDouble::start();
    let base = format!("{}{prefix}", d.origin());
    let run = ai_check(&d, &ai_config(provider, &base, model, ""));
    let c = d.completions();
    assert!(!c.is_empty(), "{}", run.show());
    assert_eq!(c[0].path, format!("{prefix}/chat/completions"));
    assert_eq!(c[0].header("authorization"), Some(format!("Bearer {DEFAULT_KEY}").as_str()));
    assert_eq!(run.code, Some(0), "{}", run.show());
}

/// "AWS Bedrock (its OpenAI-compatible Chat Completions endpoint with a
/// Bedrock API key)"; "validates the model name via /v1/models where the
/// provider has it": Bedrock's runtime has no /models (AWS: "doesn't support
/// the other OpenAI Chat completion API operations"), so check still passes.
#[test]
fn check_bedrock_uses_openai_v1_with_a_bearer_key() {
    check_openai_compatible_path("bedrock", "/openai/v1", "openai.gpt-oss-20b-1:0");
}

/// "`ai check` validates the model name via `/v1/models`": a typo exits 2
/// (README: "an unusable setting") and names the model.
#[test]
fn check_wrong_model_exits_2_naming_it_via_models() {
    let d = LlmDouble::start();
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.2-typo", ""));
    let models = d.requests().iter().filter(|r| r.method == "GET" && r.path == "/v1/models").count();
    assert_eq!(models, 1, "GET /v1/models was not asked:\n{}", run.show());
    assert_eq!(run.code, Some(2), "{}", run.show());
    assert!(run.all().contains("gpt-4.2-typo"), "the message should name the model:\n{}", run.show());
}

/// "`insufficient_quota` (429 with that code) is not a rate limit: stop
/// calling, say so clearly once" (OpenAI "Error codes": retrying does not help).
#[test]
fn check_insufficient_quota_is_one_request_and_not_a_rate_limit() {
    let d = LlmDouble::start();
    d.set_default(Behaviour::fault(Fault::InsufficientQuota));
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", ""));
    assert_eq!(d.completions().len(), 1, "quota errors must not be retried:\n{}", run.show());
    let all = run.all().to_lowercase();
    assert!(all.contains("quota"), "{}", run.show());
    assert!(!all.contains("rate limit") && !all.contains("rate-limit"), "called a rate limit:\n{}", run.show());
    assert_ne!(run.code, Some(0), "{}", run.show());
}

/// Gap between the first two completion requests.
fn gap(d: &LlmDouble) -> Duration {
    let c = d.completions();
    assert!(c.len() >= 2, "expected a retry, got {} requests", c.len());
    c[1].at.duration_since(c[0].at)
}

/// "Honour Retry-After as seconds" (RFC 9110 10.2.3; OpenAI "Rate limits").
#[test]
fn check_honours_retry_after_seconds() {
    let d = LlmDouble::start();
    d.push(Behaviour::fault(Fault::RateLimit(RetryAfter::Seconds(2))));
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", ""));
    assert_eq!(d.completions().len(), 2, "{}", run.show());
    assert!(gap(&d) >= Duration::from_secs(2), "retried after {:?}, before retry-after: 2", gap(&d));
    assert_eq!(run.code, Some(0), "{}", run.show());
}

/// "... and `retry-after-ms`" (the millisecond header OpenAI's SDKs honour).
#[test]
fn check_honours_retry_after_ms() {
    let d = LlmDouble::start();
    d.push(Behaviour::fault(Fault::RateLimit(RetryAfter::Millis(1500))));
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", ""));
    assert_eq!(d.completions().len(), 2, "{}", run.show());
    assert!(gap(&d) >= Duration::from_millis(1500), "retried after {:?}, before retry-after-ms: 1500", gap(&d));
    assert_eq!(run.code, Some(0), "{}", run.show());
}

/// "Honour Retry-After as ... HTTP-date" (RFC 9110 10.2.3).
#[test]
fn check_honours_retry_after_http_date() {
    let d = LlmDouble::start();
    d.push(Behaviour::fault(Fault::RateLimit(RetryAfter::HttpDate(SystemTime::now() + Duration::from_secs(4)))));
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", ""));
    assert_eq!(d.completions().len(), 2, "{}", run.show());
    // The date has whole seconds: at least 3 s of the 4 remain when it is sent.
    assert!(gap(&d) >= Duration::from_secs(2), "retried after {:?}, before the Retry-After date", gap(&d));
    assert_eq!(run.code, Some(0), "{}", run.show());
}

/// "a 5 MiB reply is reported as "unreachable" and fetched three times (cap
/// the body size and say so)".
#[test]
fn check_huge_body_is_one_request_and_too_large() {
    let d = LlmDouble::start();
    d.set_default(Behaviour::fault(Fault::HugeBody(5 << 20)));
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", ""));
    assert_eq!(d.completions().len(), 1, "a too-large body must not be fetched again:\n{}", run.show());
    let all = run.all().to_lowercase();
    assert!(all.contains("too large"), "{}", run.show());
    assert!(!all.contains("unreachable"), "{}", run.show());
    assert_ne!(run.code, Some(0), "{}", run.show());
}

/// "an HTML error page is not pasted into messages".
#[test]
fn check_html_error_page_is_not_pasted() {
    let d = LlmDouble::start();
    d.set_default(Behaviour::fault(Fault::HtmlBadGateway));
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", "retries = 0"));
    let all = run.all();
    for needle in ["<html", "<title", "<!DOCTYPE", "DOUBLE-HTML-MARKER", "<center>"] {
        assert!(!all.contains(needle), "HTML ({needle}) pasted into the output:\n{}", run.show());
    }
    assert!(all.contains("502"), "the status should be named:\n{}", run.show());
    assert_eq!(run.code, Some(4), "README: 5xx -> 4\n{}", run.show());
}

/// "`finish_reason: length` gets a `max_tokens` hint".
#[test]
fn check_cut_off_reply_gets_a_max_tokens_hint() {
    let d = LlmDouble::start();
    d.set_default(Behaviour::fault(Fault::CutOff));
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", ""));
    assert!(!d.completions().is_empty(), "{}", run.show());
    assert!(run.all().contains("max_tokens"), "no max_tokens hint:\n{}", run.show());
}

/// "A reply with no `usage` is charged by an estimate of its tokens ...,
/// marked as estimated".
#[test]
fn check_reply_without_usage_is_marked_estimated() {
    let d = LlmDouble::start();
    d.set_default(Behaviour::fault(Fault::NoUsage));
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", ""));
    assert_eq!(run.code, Some(0), "{}", run.show());
    assert!(run.all().to_lowercase().contains("estimat"), "cost not marked as estimated:\n{}", run.show());
    // "an estimate of its tokens (prompt and completion)": the prompt is
    // estimated too, near the double's own count of the same request.
    let body = d.completions()[0].json();
    let counted = llm_double::usage::prompt_tokens(body["messages"].as_array().unwrap(), None);
    let shown: u64 = run
        .out
        .lines()
        .find_map(|l| l.trim().strip_prefix("tokens"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        shown >= counted / 2 && shown <= counted * 2,
        "prompt estimate {shown} tokens, the request has about {counted}:\n{}",
        run.show()
    );
}

/// "scan every JSON object in the reply (and strip `<think>...</think>`
/// blocks) and take the one with advice fields": the decoys in the think
/// blocks say narrow/low/down and the first object has no advice fields.
#[test]
fn check_takes_the_advice_object_past_think_blocks_and_decoys() {
    let d = LlmDouble::start();
    d.set_default(Behaviour::fault(Fault::ThinkAndObjects));
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", ""));
    assert_eq!(run.code, Some(0), "{}", run.show());
    assert!(run.out.contains("spread wide, volatility high, direction up"), "{}", run.show());
}

/// "on a reply that fails the schema, one retry with the validation error fed back".
#[test]
fn check_repairs_a_bad_reply_once_with_the_error_fed_back() {
    let d = LlmDouble::start();
    d.push(Behaviour::content("Sorry, I can't produce that right now."));
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", ""));
    let b = bodies(&d);
    assert_eq!(b.len(), 2, "expected one repair retry:\n{}", run.show());
    let (m0, m1) = (b[0]["messages"].as_array().unwrap(), b[1]["messages"].as_array().unwrap());
    assert!(m1.len() > m0.len(), "the retry should carry the failed reply and the error: {}", b[1]);
    assert!(
        b[1].to_string().contains("Sorry, I can't produce that right now."),
        "the failed reply was not fed back: {}",
        b[1]
    );
    assert_eq!(run.code, Some(0), "{}", run.show());
}

/// Same line: only one retry. Two bad replies -> 2 requests, exit 5 (README:
/// "5 reply unusable").
#[test]
fn check_repairs_at_most_once() {
    let d = LlmDouble::start();
    d.set_default(Behaviour::content("no advice here"));
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", ""));
    assert_eq!(d.completions().len(), 2, "{}", run.show());
    assert_eq!(run.code, Some(5), "{}", run.show());
}

/// "`cached_tokens` are priced at the model's cached price when configured":
/// the per-call cost printed equals the double's usage x the configured prices.
#[test]
fn check_cost_is_the_usage_at_configured_prices_with_cached_tokens() {
    let d = LlmDouble::start();
    d.set_default(Behaviour::ok().cached(40));
    let run = ai_check(&d, &ai_config("custom", &d.base_url(), "gpt-4.1", ""));
    assert_eq!(run.code, Some(0), "{}", run.show());
    let u = d.completions()[0].usage.expect("the double reported usage");
    assert_eq!(u.cached, 40);
    let want = format!("${:.6}", cost(&u));
    assert!(run.out.contains(&want), "expected cost {want} for {u:?}:\n{}", run.show());
}

/// README: "a key the server rejects (401/403) is reported with the endpoint
/// and the variable, never the key"; exit 3.
#[test]
fn check_rejected_key_exits_3_naming_the_variable_not_the_key() {
    let d = LlmDouble::start();
    let wrong = "sk-wrong-ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789";
    let run = ai_check_with_key(&ai_config("custom", &d.base_url(), "gpt-4.1", ""), wrong);
    assert_eq!(run.code, Some(3), "{}", run.show());
    assert!(run.all().contains(KEY_VAR), "{}", run.show());
}

// ---------------------------------------------------------------- sessions

/// A demo config: the demo's own settings plus `[ai]` at the double.
fn demo_config(ai: &str) -> String {
    let demo = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.toml"))
        .expect("scripts/demo.toml");
    format!("{demo}\n{ai}")
}

struct Session {
    run: Run,
    report: Value,
    log: Vec<Value>,
}

/// `mmbot demo --duration D --no-dashboard` with `[ai]` from `ai`; the
/// report's JSON and the advice log's lines.
fn demo(ai: &str, duration_s: u32) -> Session {
    let dir = Scratch::new("demo");
    let log = dir.path().join("advice.jsonl");
    let ai = ai.replacen("[ai]\n", &format!("[ai]\nlog = \"{}\"\n", log.display()), 1);
    let cfg = dir.write("session.toml", &demo_config(&ai));
    let dur = format!("{duration_s}s");
    let run = mmbot(
        dir.path(),
        &["demo", "--duration", &dur, "--no-dashboard", "--config", cfg.to_str().unwrap(), "--out", "out"],
        DEFAULT_KEY,
        Duration::from_secs(duration_s as u64 + 40),
    );
    let report = std::fs::read_dir(dir.path().join("out"))
        .ok()
        .and_then(|mut it| it.find_map(|e| e.ok().map(|e| e.path().join("report.json"))))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let log = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Session { run, report, log }
}

/// "The session report ... show AI cost" and "costs matched the gateway's
/// usage exactly on the success path"; "`cached_tokens` are priced at the
/// model's cached price"; "`insufficient_quota` ... stop calling"; "the demo
/// banner says `advisor: offline` when an LLM is configured" (defect).
/// Three good replies, then the key's quota runs out: calls stop, so no
/// reply is in flight when the demo ends and the sums are exact.
#[test]
fn demo_report_ai_cost_equals_the_gateways_usage_at_configured_prices() {
    let d = LlmDouble::start();
    d.push_all((0..3).map(|i| Behaviour::ok().cached(10 * i)));
    d.set_default(Behaviour::fault(Fault::InsufficientQuota));
    let s = demo(&ai_config("custom", &d.base_url(), "gpt-4.1", ""), 8);
    let c = d.completions();
    assert_eq!(c.iter().filter(|r| r.status == 200).count(), 3, "{}", s.run.show());
    assert_eq!(c.len(), 4, "after insufficient_quota no more calls:\n{}", s.run.show());
    let usages: Vec<Usage> = c.iter().filter_map(|r| r.usage).collect();
    let want: f64 = usages.iter().map(cost).sum();
    let ai = &s.report["ai"];
    let got = ai["cost_total_usd"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (got - want).abs() < 1e-12,
        "report ai.cost_total_usd {got} != gateway usage x prices {want}\n{ai}\n{}",
        s.run.show()
    );
    assert_eq!(ai["tokens_in"].as_u64(), Some(usages.iter().map(|u| u.prompt).sum()), "{ai}");
    assert_eq!(ai["tokens_out"].as_u64(), Some(usages.iter().map(|u| u.completion).sum()), "{ai}");
    assert!(ai["quota_exhausted"].as_u64().unwrap_or(0) >= 1 || ai["quota_exhausted"] == true, "{ai}");
    // "stop calling, say so clearly once": one notice, not one per tick
    // (status lines and the final summary may count it).
    let notices: Vec<&str> = s
        .run
        .err
        .lines()
        .chain(s.run.out.lines())
        .filter(|l| {
            l.to_lowercase().contains("quota")
                && !l.starts_with("mmbot demo:")
                && !l.trim_start().starts_with("demo: synced")
        })
        .collect();
    assert_eq!(notices.len(), 1, "the quota notice should be said once: {notices:#?}");
    let banner = s.run.all().lines().find(|l| l.contains("advisor:")).unwrap_or("").to_string();
    assert!(!banner.contains("advisor: offline"), "banner says offline with an LLM configured: {banner}");
    let logged: f64 = s.log.iter().filter_map(|l| l["cost_usd"].as_f64()).sum();
    assert!((logged - want).abs() < 1e-12, "advice log cost_usd sum {logged} != {want}");
    // "failed calls in the advice log carry their latency and attempts".
    let failed: Vec<&Value> = s.log.iter().filter(|l| !l["error"].is_null()).collect();
    assert!(!failed.is_empty(), "the quota failure is not in the advice log: {:?}", s.log);
    for l in failed {
        assert!(
            l["latency_ms"].is_number() && l["attempts"].as_u64().is_some_and(|a| a >= 1),
            "failed call without latency/attempts: {l}"
        );
    }
}

/// Defects: "the demo banner says `advisor: offline` when an LLM is
/// configured; `--no-dashboard` status lines and the final summary lack
/// advisor calls, errors and cost".
#[test]
fn demo_banner_and_summary_show_the_llm_advisor() {
    let d = LlmDouble::start();
    let s = demo(&ai_config("custom", &d.base_url(), "gpt-4.1", ""), 5);
    let all = s.run.all();
    assert!(!d.completions().is_empty(), "{}", s.run.show());
    let banner = all.lines().find(|l| l.contains("advisor:")).unwrap_or("").to_string();
    assert!(!banner.contains("advisor: offline"), "banner says offline with an LLM configured: {banner}");
    let summary_has_ai = all.lines().any(|l| {
        let l = l.to_lowercase();
        l.starts_with("mmbot demo:")
            && (l.contains("advisor") || l.contains(" ai ") || l.contains(" ai:"))
            && l.contains("calls")
            && l.contains('$')
    });
    assert!(summary_has_ai, "the final summary has no advisor calls and cost:\n{}", s.run.show());
}

/// "a reply older than `[ai] max_age_s` (default interval) on arrival is
/// dropped and counted": replies take 2 s, max_age_s is 1 s.
#[test]
fn demo_drops_replies_older_than_max_age() {
    let d = LlmDouble::start();
    d.set_default(Behaviour::ok().delay(Duration::from_millis(2000)));
    let s = demo(&ai_config("custom", &d.base_url(), "gpt-4.1", "max_age_s = 1.0"), 7);
    assert!(d.completions().iter().any(|r| r.status == 200), "{}", s.run.show());
    let ai = &s.report["ai"];
    assert!(ai["dropped_late"].as_u64().unwrap_or(0) >= 1, "dropped_late not counted: {ai}\n{}", s.run.show());
    assert!(!s.run.all().contains("llm: spread wide"), "late advice was applied:\n{}", s.run.show());
}

/// "timed-out and cut-off calls are charged the estimate of the prompt (a
/// provider bills them)": replies take 3 s, timeout_s is 1 s.
#[test]
fn demo_charges_timed_out_calls_the_prompt_estimate() {
    let d = LlmDouble::start();
    d.set_default(Behaviour::ok().delay(Duration::from_millis(3000)));
    let s = demo(&ai_config("custom", &d.base_url(), "gpt-4.1", "timeout_s = 1.0\nretries = 0"), 6);
    let ai = &s.report["ai"];
    // The double records a request when its (3 s) answer is written: wait
    // for the calls mmbot gave up on to be recorded before counting them.
    let asked = ai["calls"].as_u64().unwrap_or(0) as usize;
    d.wait_for_requests(asked, Duration::from_secs(5));
    assert!(!d.completions().is_empty(), "{}", s.run.show());
    let est = ai["cost_estimated_usd"].as_f64().unwrap_or(0.0);
    assert!(est > 0.0, "timed-out calls were not charged an estimate: {ai}\n{}", s.run.show());
    assert!(ai["estimated_calls"].as_u64().unwrap_or(0) >= 1, "{ai}");
    let total = ai["cost_total_usd"].as_f64().unwrap_or(0.0);
    assert!(total >= est, "the estimate is part of the total: {ai}");
    // Only the prompt is estimated: at most the prompt of each call at the input price.
    let calls = d.completions().len() as f64;
    let prompt_max: f64 = d.completions().iter().map(|r| r.usage.map_or(0, |u| u.prompt)).max().unwrap_or(0) as f64;
    assert!(est <= calls * prompt_max * 2.0 * PRICE_IN / 1e6, "estimate {est} is more than the prompts' price");
}

/// "`[ai] daily_budget_usd`: calls stop for the UTC day when the projected
/// spend would pass it; counted and shown".
#[test]
fn demo_daily_budget_stops_calls_before_the_spend_passes_it() {
    let d = LlmDouble::start();
    let budget = 0.004;
    // mmbot projects a route's first call at its worst case (the prompt plus
    // the whole max_tokens): keep max_tokens small enough for a call to fit.
    let extra = format!("daily_budget_usd = {budget}\nmax_tokens = 50");
    let s = demo(&ai_config("custom", &d.base_url(), "gpt-4.1", &extra), 7);
    let spent: f64 = d.completions().iter().filter_map(|r| r.usage).map(|u| cost(&u)).sum();
    assert!(!d.completions().is_empty(), "no call at all:\n{}", s.run.show());
    assert!(spent <= budget, "spent {spent} > budget {budget} over {} calls", d.completions().len());
    let ai = &s.report["ai"];
    assert!(ai["skipped_budget"].as_u64().unwrap_or(0) >= 1, "skipped_budget not counted: {ai}\n{}", s.run.show());
}

/// "`[ai] fallback`: an ordered list of (provider, model) to try when the
/// primary fails": the primary gateway is down (503), the fallback answers.
#[test]
fn demo_uses_the_fallback_route_when_the_primary_fails() {
    let primary = LlmDouble::start();
    primary.set_default(Behaviour::fault(Fault::Unavailable));
    let backup = LlmDouble::start();
    let fallback = format!(
        "retries = 0\n\n[[ai.fallback]]\nprovider = \"custom\"\nmodel = \"gpt-4.1-mini\"\nbase_url = \"{}\"\napi_key_env = \"{KEY_VAR}\"\n",
        backup.base_url()
    );
    let s = demo(&ai_config("custom", &primary.base_url(), "gpt-4.1", &fallback), 6);
    assert!(!primary.completions().is_empty(), "the primary was never tried:\n{}", s.run.show());
    let b = backup.completions();
    assert!(!b.is_empty(), "the fallback was never used:\n{}", s.run.show());
    assert!(b.iter().all(|r| r.json()["model"] == "gpt-4.1-mini"));
    let ai = &s.report["ai"];
    assert!(ai["fallback_calls"].as_u64().unwrap_or(0) >= 1, "fallback_calls not counted: {ai}");
    let want: f64 = b.iter().filter_map(|r| r.usage).map(|u| cost(&u)).sum();
    let got = ai["cost_total_usd"].as_f64().unwrap_or(f64::NAN);
    // A fallback reply may be in flight at the end; each counted one is exact.
    assert!(got <= want + 1e-12, "charged {got} for fallback usage worth {want}");
}

/// First recorded receive time of the synthetic recording (2021-10-12).
const REC_T0_NS: u64 = 1_634_000_000_000_000_000;

/// A synthetic spot BTCUSDT recording in the recording line format
/// (`<recv_ts_ns> <raw JSON>`, README "Recording format"): one REST snapshot
/// then a `@depth@100ms` diff every 100 ms for `seconds`, update ids chained
/// as Binance documents (first diff: U <= lastUpdateId + 1 <= u). Returns its
/// path and the last receive time.
fn write_recording(dir: &Scratch, seconds: u64) -> (PathBuf, u64) {
    let levels = |side: i64| -> String {
        (0..10)
            .map(|i| {
                format!(
                    "[\"{:.2}\",\"{:.8}\"]",
                    100.0 + side as f64 * (0.01 * i as f64 + if side > 0 { 0.01 } else { 0.0 }),
                    1.0 + i as f64
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut text =
        format!("{REC_T0_NS} {{\"lastUpdateId\":1000,\"bids\":[{}],\"asks\":[{}]}}\n", levels(-1), levels(1));
    let mut last = REC_T0_NS;
    for i in 0..seconds * 10 {
        let t = REC_T0_NS + (i + 1) * 100_000_000;
        let (first, final_id) = (1001 + 2 * i, 1002 + 2 * i);
        let q = 1.0 + (i % 7) as f64 * 0.25;
        text.push_str(&format!(
            "{t} {{\"stream\":\"btcusdt@depth@100ms\",\"data\":{{\"e\":\"depthUpdate\",\"E\":{},\"s\":\"BTCUSDT\",\"U\":{first},\"u\":{final_id},\"b\":[[\"100.00\",\"{q:.8}\"]],\"a\":[[\"100.01\",\"{:.8}\"]]}}}}\n",
            t / 1_000_000,
            3.0 - q / 2.0
        ));
        last = t;
    }
    (dir.write("synthetic_btcusdt.rec", &text), last)
}

/// "Advice is dated from the market snapshot it describes ... In replays at
/// `--speed N`, calls and TTL use the same (recording) time": 30 s of
/// recording at --speed 10 with interval_s = 2 is about 15 calls (not the
/// 1-2 that 3 s of wall time would give), and the advice's received_ns is a
/// recording time.
#[test]
fn replay_at_speed_asks_and_dates_advice_in_recording_time() {
    let d = LlmDouble::start();
    let dir = Scratch::new("replay");
    let (rec, last_ns) = write_recording(&dir, 30);
    let cfg = dir.write(
        "replay.toml",
        &format!(
            "[market]\nsymbol = \"BTCUSDT\"\n\n{}",
            ai_config("custom", &d.base_url(), "gpt-4.1", "interval_s = 2.0")
        ),
    );
    let report = dir.path().join("report.json");
    let run = mmbot(
        dir.path(),
        &[
            "replay",
            rec.to_str().unwrap(),
            "--speed",
            "10",
            "--config",
            cfg.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
        DEFAULT_KEY,
        Duration::from_secs(60),
    );
    assert_eq!(run.code, Some(0), "{}", run.show());
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default()).unwrap_or(Value::Null);
    let calls = d.completions().len();
    assert!(
        (10..=16).contains(&calls),
        "{calls} calls over 30 s of recording at interval_s 2 (wall-clock pacing gives ~2):\n{}",
        run.show()
    );
    let advice = &report["ai"]["last_advice"];
    assert_eq!(advice["source"], "llm", "{}", report["ai"]);
    let received = advice["received_ns"].as_u64().unwrap_or(0);
    assert!(
        (REC_T0_NS..=last_ns).contains(&received),
        "advice dated {received}, not a recording time in [{REC_T0_NS}, {last_ns}]"
    );
}

/// "`[ai] call_on`: ... `regime_change` (ask only when volatility or spread
/// regime moved, with a minimum and maximum interval)": the synthetic book's
/// prices never move (spread one tick, no volatility), so over 30 s of
/// recording (at --speed 10, in recording time) with max_interval_s = 5 the
/// advisor asks 6-7 times: not the 30 that interval_s = 1 would give, nor
/// the 3 of wall-clock pacing.
#[test]
fn replay_call_on_regime_change_asks_at_the_maximum_interval_on_a_still_book() {
    let d = LlmDouble::start();
    let dir = Scratch::new("regime");
    let (rec, _) = write_recording(&dir, 30);
    let extra = "call_on = \"regime_change\"\nmin_interval_s = 1.0\nmax_interval_s = 5.0";
    let cfg = dir.write(
        "regime.toml",
        &format!("[market]\nsymbol = \"BTCUSDT\"\n\n{}", ai_config("custom", &d.base_url(), "gpt-4.1", extra)),
    );
    let report = dir.path().join("report.json");
    let run = mmbot(
        dir.path(),
        &[
            "replay",
            rec.to_str().unwrap(),
            "--speed",
            "10",
            "--config",
            cfg.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
        DEFAULT_KEY,
        Duration::from_secs(60),
    );
    assert_eq!(run.code, Some(0), "{}", run.show());
    let calls = d.completions().len();
    assert!(
        (5..=8).contains(&calls),
        "{calls} calls on a still book over 30 s of recording with max_interval_s 5:\n{}",
        run.show()
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default()).unwrap_or(Value::Null);
    assert!(
        report["ai"]["skipped_no_change"].as_u64().unwrap_or(0) >= 1,
        "skipped_no_change not counted: {}",
        report["ai"]
    );
}

/// "`ai compare --eval` runs several models over the same recorded snapshots
/// (N trials each) and ranks them by score, agreement between trials,
/// latency and cost" (SPEC18: `--eval RECORDING [--trials N] [--snapshots K]`).
#[test]
fn compare_eval_asks_every_model_the_same_snapshots_n_times() {
    let d = LlmDouble::start();
    let dir = Scratch::new("compare");
    let (rec, _) = write_recording(&dir, 30);
    let cfg = dir.write(
        "compare.toml",
        &format!("[market]\nsymbol = \"BTCUSDT\"\n\n{}", ai_config("custom", &d.base_url(), "gpt-4.1", "")),
    );
    let run = mmbot(
        dir.path(),
        &[
            "ai",
            "compare",
            "--models",
            "gpt-4.1,gpt-4.1-mini",
            "--eval",
            rec.to_str().unwrap(),
            "--trials",
            "2",
            "--snapshots",
            "3",
            "--config",
            cfg.to_str().unwrap(),
        ],
        DEFAULT_KEY,
        Duration::from_secs(90),
    );
    assert_eq!(run.code, Some(0), "{}", run.show());
    let by_model = |m: &str| -> Vec<String> {
        let mut users: Vec<String> = bodies(&d)
            .iter()
            .filter(|b| b["model"] == m)
            .map(|b| {
                b["messages"].as_array().and_then(|a| a.last()).map(|x| x["content"].to_string()).unwrap_or_default()
            })
            .collect();
        users.sort();
        users
    };
    let (a, b) = (by_model("gpt-4.1"), by_model("gpt-4.1-mini"));
    assert_eq!((a.len(), b.len()), (6, 6), "3 snapshots x 2 trials per model:\n{}", run.show());
    assert_eq!(a, b, "both models must see the same snapshots");
    let distinct: std::collections::BTreeSet<&String> = a.iter().collect();
    assert_eq!(distinct.len(), 3, "3 distinct snapshots, each asked twice");
    for m in ["gpt-4.1", "gpt-4.1-mini"] {
        assert!(run.out.contains(m), "{m} missing from the ranking:\n{}", run.show());
    }
}

/// The advice JSON the double answers with parses as JSON (guards the
/// fixture the tests above rely on).
#[test]
fn fixture_advice_is_json() {
    let v: Value = serde_json::from_str(ADVICE_JSON).unwrap();
    assert_eq!(v["spread_state"], "wide");
}
