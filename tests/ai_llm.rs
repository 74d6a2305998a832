//! The LLM client and `mmbot ai check` against a loopback OpenAI-compatible
//! server, one test per reply the issue lists: clean JSON, fenced JSON, JSON
//! in prose, Korean values, missing fields, garbage, a 10-second delay past
//! the timeout, 401, 429 with `Retry-After`, 500, connection refused; plus
//! the request's shape, the response_format downgrade chain, key handling and
//! exit codes; then the faults (retry waits, insufficient_quota, a 5 MiB body,
//! HTML pages, cut-off answers, usage and billing). Per-provider request and
//! response shapes are in tests/ai_providers.rs.

mod ai_server;
mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ai_server::{refused_base_url, Reply, Server, CLEAN};
use mmbot::ai::advisor::{ask_once, sample_snapshot};
use mmbot::ai::key::ApiKey;
use mmbot::ai::llm::LlmClient;
use mmbot::ai::{AiConfig, AiError, Provider};
use mmbot::hot::advice::{Direction, SpreadState, Volatility};

const KEY_VAR: &str = "MMBOT_TEST_AI_KEY";
const KEY: &str = "sk-test-0123456789abcdefSECRETPART";

/// Settings for a loopback server: short timeouts and backoff so every
/// failure path is fast.
fn settings(base_url: &str) -> AiConfig {
    AiConfig {
        provider: Provider::Custom,
        base_url: Some(base_url.to_string()),
        key_var: KEY_VAR.to_string(),
        timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        backoff: Duration::from_millis(20),
        ..AiConfig::default()
    }
}

fn client(ai: &AiConfig) -> LlmClient {
    LlmClient::new(ai, Some(ApiKey::new(KEY_VAR, KEY))).unwrap()
}

/// `mmbot ai check` with a config pointing at `base_url`, run in a temp dir
/// (so no .env of the developer's is read) with `env` set.
fn check(name: &str, base_url: &str, extra: &str, env: &[(&str, &str)], env_file: Option<&str>) -> (Output, String) {
    let dir = common::temp_dir(&format!("ai-check-{name}"));
    let cfg = format!(
        "[ai]\nprovider = \"custom\"\nbase_url = \"{base_url}\"\napi_key_env = \"{KEY_VAR}\"\n\
         timeout_s = 0.5\nconnect_timeout_s = 0.5\nbackoff_ms = 20\n{extra}"
    );
    std::fs::write(dir.join("mmbot.toml"), cfg).unwrap();
    if let Some(text) = env_file {
        std::fs::write(dir.join(".env"), text).unwrap();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mmbot"));
    cmd.args(["ai", "check"]).current_dir(&dir).env_remove(KEY_VAR);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains(KEY) && !text.contains("SECRETPART"), "the key leaked:\n{text}");
    let _ = std::fs::remove_dir_all(&dir);
    (out, text)
}

fn check_with_key(name: &str, base_url: &str) -> (Option<i32>, String) {
    let (out, text) = check(name, base_url, "", &[(KEY_VAR, KEY)], None);
    (out.status.code(), text)
}

#[test]
fn clean_json_gives_advice_tokens_and_cost() {
    let server = Server::always(Reply::chat(CLEAN));
    let (code, text) = check_with_key("clean", &server.base_url());
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("spread wide, volatility high, direction up, confidence 80, multiplier 1.40  [llm]"),
        "{text}"
    );
    assert!(text.contains("480 in, 90 out"), "{text}");
    // gpt-4.1 at $3/$12 per million: 480 x 3 + 90 x 12 = 2520 micro-dollars.
    assert!(text.contains("$0.002520 per call"), "{text}");
    assert!(text.contains(&format!("{}/chat/completions", server.base_url())), "{text}");
    assert!(text.contains(&format!("{KEY_VAR} from the environment (34 characters, starts \"sk-t\")")), "{text}");
    assert!(text.contains("reason     bids stack up"), "{text}");

    // The request: the OpenAI chat-completions shape, the key as a bearer token
    // (after `ai check`'s GET /models, which this server does not serve).
    let reqs = server.requests_to("/chat/completions");
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let b = r.json();
    assert_eq!(b["model"], "gpt-4.1");
    assert_eq!((b["temperature"].as_f64(), b["max_tokens"].as_u64()), (Some(0.3), Some(800)));
    // Structured outputs first (OpenAI "Structured Outputs": strict json_schema).
    assert_eq!(b["response_format"]["type"], "json_schema");
    assert_eq!(b["response_format"]["json_schema"]["strict"], true);
    assert_eq!(b["messages"][0]["role"], "system");
    let user = b["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("Symbol: BTCUSDT") && user.contains("Bids (best first):"), "{user}");
}

/// Each reply shape through the client and the parser: the advice it gives.
#[test]
fn fenced_prose_korean_and_partial_replies_are_read() {
    type Want = (SpreadState, Volatility, Direction, u8);
    let cases: Vec<(&str, String, Want, Vec<&str>)> = vec![
        (
            "fenced",
            format!("```json\n{CLEAN}\n```"),
            (SpreadState::Wide, Volatility::High, Direction::Up, 80),
            vec![],
        ),
        (
            "json tag",
            format!("json\n{CLEAN}"),
            (SpreadState::Wide, Volatility::High, Direction::Up, 80),
            vec![],
        ),
        (
            "prose",
            format!("Looking at the book, the bids are heavy.\n\nMy assessment: {CLEAN}\n\nTrade carefully!"),
            (SpreadState::Wide, Volatility::High, Direction::Up, 80),
            vec![],
        ),
        (
            "korean",
            r#"{"spread_state":"좁음","volatility":"낮음","direction":"하락","confidence":65,"spread_multiplier":0.8,"reason":"매도 우위"}"#.into(),
            (SpreadState::Narrow, Volatility::Low, Direction::Down, 65),
            vec![],
        ),
        (
            "korean mixed case",
            r#"{"Spread_State":"보통","VOLATILITY":"중간","Direction":"횡보"}"#.into(),
            (SpreadState::Normal, Volatility::Medium, Direction::Sideways, 50),
            vec!["confidence", "spread_multiplier"],
        ),
        (
            "missing fields",
            r#"{"volatility":"HIGH"}"#.into(),
            (SpreadState::Normal, Volatility::High, Direction::Neutral, 50),
            vec!["spread_state", "direction", "confidence", "spread_multiplier"],
        ),
    ];
    let sample = sample_snapshot();
    for (name, content, want, defaulted) in cases {
        let server = Server::always(Reply::chat(&content));
        let ai = settings(&server.base_url());
        let a = ask_once(&ai, &mut client(&ai), &sample).unwrap_or_else(|e| panic!("{name}: {e}"));
        let p = a.reply.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((p.spread, p.volatility, p.direction, p.confidence), want, "{name}");
        assert_eq!(p.defaulted, defaulted, "{name}");
        assert!((ai.min_multiplier..=ai.max_multiplier).contains(&p.multiplier), "{name}");
        assert_eq!((a.completion.tokens_in, a.completion.tokens_out, a.completion.attempts), (480, 90, 1), "{name}");
        let (out, text) = check(name, &server.base_url(), "", &[(KEY_VAR, KEY)], None);
        assert_eq!(out.status.code(), Some(0), "{name}: {text}");
    }
}

#[test]
fn out_of_range_numbers_are_clamped_to_config_bounds() {
    let server = Server::always(Reply::chat(
        r#"{"spread_state":"wide","volatility":"high","direction":"up","confidence":140,"spread_multiplier":7.5}"#,
    ));
    let ai = AiConfig { max_multiplier: 1.8, ..settings(&server.base_url()) };
    let p = ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap().reply.unwrap();
    assert_eq!((p.confidence, p.multiplier), (100, 1.8));
    assert_eq!(p.clamped, vec!["confidence", "spread_multiplier"]);
}

#[test]
fn garbage_is_exit_5() {
    for (name, content) in
        [("garbage", "I'm sorry, I can't provide financial advice."), ("truncated", "{\"spread_state\": \"wi")]
    {
        let server = Server::always(Reply::chat(content));
        let (code, text) = check_with_key(name, &server.base_url());
        assert_eq!(code, Some(5), "{text}");
        assert!(text.contains("unusable") && text.contains("no complete JSON object"), "{text}");
    }
    // Not a chat completion at all.
    let server = Server::always(Reply::status(200, "<html>gateway page</html>"));
    let (code, text) = check_with_key("html", &server.base_url());
    assert_eq!(code, Some(5), "{text}");
    assert!(text.contains("not JSON"), "{text}");
}

#[test]
fn a_server_slower_than_the_timeout_is_exit_4_without_waiting_for_it() {
    let server = Server::always(Reply::chat(CLEAN).delayed(Duration::from_secs(10)));
    let t = Instant::now();
    let (code, text) = check_with_key("slow", &server.base_url());
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("did not answer within 0.5 s"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // Timeouts are not retried: the book would be old by the second answer.
    assert_eq!(server.calls(), 1);
}

#[test]
fn a_rejected_key_is_exit_3_naming_the_endpoint_and_variable() {
    for status in [401, 403] {
        let server = Server::always(Reply::status(
            status,
            &format!(
                r#"{{"error":{{"message":"Incorrect API key provided: {KEY}","type":"invalid_request_error","code":"invalid_api_key"}}}}"#
            ),
        ));
        let (code, text) = check_with_key(&format!("k{status}"), &server.base_url());
        assert_eq!(code, Some(3), "{text}");
        assert!(
            text.contains(&format!("{}/chat/completions rejected the API key from {KEY_VAR}", server.base_url())),
            "{text}"
        );
        assert!(text.contains(&format!("HTTP {status}: invalid_api_key")), "{text}");
        assert_eq!(server.calls(), 1, "a rejected key is not retried");
    }
}

#[test]
fn rate_limits_honour_retry_after() {
    // 429 with Retry-After: 1, then an answer: one retry, after the wait.
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::status(429, r#"{"error":{"message":"rate limited"}}"#).header("Retry-After", "1")
        } else {
            Reply::chat(CLEAN)
        }
    });
    let ai = AiConfig { timeout: Duration::from_secs(2), ..settings(&server.base_url()) };
    let t = Instant::now();
    let a = ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap();
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!((a.completion.attempts, server.count()), (2, 2));
    assert!(a.reply.is_ok());

    // Always 429: gives up after the retries, exit 4.
    let server = Server::always(Reply::status(429, "{}").header("Retry-After", "0"));
    let (code, text) = check_with_key("429", &server.base_url());
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("rate-limiting") && text.contains("3 attempt"), "{text}");
    assert_eq!(server.calls(), 3);

    // A wait longer than a call may take ends the call at once (the advisor
    // waits between calls instead).
    let server = Server::always(Reply::status(429, "{}").header("Retry-After", "30"));
    let ai = settings(&server.base_url());
    let t = Instant::now();
    let e = ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap_err();
    assert!(matches!(e, AiError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(30)), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2) && server.count() == 1);
    assert!(e.to_string().contains("wait 30 s"), "{e}");
}

#[test]
fn server_errors_are_retried_with_backoff_other_4xx_are_not() {
    let server = Server::start(|n, _| if n == 0 { Reply::status(500, "oops") } else { Reply::chat(CLEAN) });
    let ai = settings(&server.base_url());
    let a = ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap();
    assert_eq!(a.completion.attempts, 2);

    let server = Server::always(Reply::status(500, r#"{"error":{"message":"upstream exploded"}}"#));
    let (code, text) = check_with_key("500", &server.base_url());
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("HTTP 500 on 3 attempt(s): upstream exploded"), "{text}");
    assert_eq!(server.calls(), 3, "1 + [ai] retries (2)");

    let server = Server::always(Reply::status(404, r#"{"error":{"message":"The model `gpt-9` does not exist"}}"#));
    let (code, text) = check_with_key("404", &server.base_url());
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("HTTP 404: The model `gpt-9` does not exist") && text.contains("[ai] model"), "{text}");
    assert_eq!(server.calls(), 1);
}

#[test]
fn connection_refused_is_exit_4() {
    let url = refused_base_url();
    let t = Instant::now();
    let (code, text) = check_with_key("refused", &url);
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("unreachable") && text.contains("connection refused"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

/// A server that refuses `response_format` (HTTP 400 naming it) gets the
/// request again at once one step down (json_schema -> json_object ->
/// none), and the client keeps the lower format for the session, saying so
/// once per step.
#[test]
fn response_format_downgrades_one_step_at_a_time_and_stays_down() {
    let server = Server::start(|_, r| match r.json()["response_format"]["type"].as_str() {
        Some("json_schema") => Reply::openai_error(
            400,
            "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
            "invalid_request_error",
            None,
        ),
        Some(_) => Reply::status(400, r#"{"error":{"message":"json_object mode is not available"}}"#),
        None => Reply::chat(CLEAN),
    });
    let ai = settings(&server.base_url());
    let mut c = client(&ai);
    let a = ask_once(&ai, &mut c, &sample_snapshot()).unwrap();
    assert!(a.reply.is_ok());
    assert_eq!(a.completion.attempts, 3, "each step is a request");
    assert!(!c.json_mode());
    let notices = c.take_notices();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(
        notices[0].contains("refused response_format json_schema") && notices[0].contains("json_object"),
        "{notices:?}"
    );
    assert!(notices[1].contains("refused response_format json_object"), "{notices:?}");
    // Later calls do not send it again, and say nothing more.
    ask_once(&ai, &mut c, &sample_snapshot()).unwrap();
    assert!(c.take_notices().is_empty());
    let sent: Vec<Option<String>> =
        server.requests().iter().map(|r| r.json()["response_format"]["type"].as_str().map(str::to_string)).collect();
    assert_eq!(sent, [Some("json_schema".into()), Some("json_object".into()), None, None]);

    // A 400 about something else is not a downgrade.
    let server = Server::always(Reply::openai_error(400, "messages too long", "invalid_request_error", None));
    let ai = settings(&server.base_url());
    let e = ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap_err();
    assert!(matches!(e, AiError::Refused { status: 400, .. }) && server.count() == 1, "{e}");

    // response_format = "none" never sends it.
    let server = Server::always(Reply::chat(CLEAN));
    let ai = AiConfig { response_format: mmbot::ai::ResponseFormat::None, ..settings(&server.base_url()) };
    ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap();
    assert!(server.requests()[0].json().get("response_format").is_none());
}

#[test]
fn missing_and_badly_pasted_keys() {
    let server = Server::always(Reply::chat(CLEAN));
    // No key anywhere: exit 2, naming the variable and the .env file.
    let (out, text) = check("nokey", &server.base_url(), "", &[], None);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(&format!("{KEY_VAR} is not set in the environment nor in .env")), "{text}");
    assert_eq!(server.count(), 0);

    // From .env, with quotes and spaces around it: stripped, with a warning.
    let (out, text) = check("dotenv", &server.base_url(), "", &[], Some(&format!("{KEY_VAR}=\"  '{KEY}'  \"\n")));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("stripped them") && text.contains("from .env"), "{text}");
    assert_eq!(server.requests()[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));

    // A key with a space inside cannot be sent: exit 2, value not shown.
    let (out, text) = check("space", &server.base_url(), "", &[(KEY_VAR, "sk-test-0123 456789abcdefSECRETPART")], None);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("whitespace inside it"), "{text}");

    // auto with no key: `ai check` says what to set.
    let dir = common::temp_dir("ai-check-auto");
    let out = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["ai", "check"])
        .current_dir(&dir)
        .env_remove("HOLYSHEEP_API_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("HOLYSHEEP_API_KEY") && err.contains(".env") && err.contains("offline"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_config_is_exit_78_as_everywhere_and_offline_needs_no_key() {
    let dir = common::temp_dir("ai-check-cfg");
    let path = dir.join("bad.toml");
    for (body, key) in [
        ("[ai]\nprovider = \"gpt\"\n", "ai.provider"),
        ("[ai]\nprovider = \"custom\"\n", "ai.base_url"),
        ("[ai]\napi_key_env = \"sk-abc123\"\n", "ai.api_key_env"),
    ] {
        std::fs::write(&path, body).unwrap();
        let out =
            Command::new(env!("CARGO_BIN_EXE_mmbot")).args(["ai", "check", "--config"]).arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // A bad config exits 78 in every command (README "Exit statuses").
        assert_eq!(out.status.code(), Some(78), "{body}: {err}");
        assert!(err.contains(key) && !err.contains("sk-abc123"), "{body}: {err}");
    }
    std::fs::write(&path, "[ai]\nprovider = \"offline\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mmbot")).args(["ai", "check", "--config"]).arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("[offline]"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_puts_models_side_by_side() {
    // The loopback server answers as the model asked, and refuses one.
    let server = Server::start(|_, r| match r.json()["model"].as_str() {
        Some("deepseek-v3.2") => Reply::chat(r#"{"spread_state":"narrow","volatility":"low","direction":"sideways"}"#),
        Some("no-such-model") => Reply::status(404, r#"{"error":{"message":"unknown model"}}"#),
        _ => Reply::chat(CLEAN),
    });
    let dir = common::temp_dir("ai-compare");
    let cfg = dir.join("mmbot.toml");
    std::fs::write(
        &cfg,
        format!("[ai]\nprovider = \"custom\"\nbase_url = \"{}\"\napi_key_env = \"{KEY_VAR}\"\n", server.base_url()),
    )
    .unwrap();
    let run = |models: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_mmbot"))
            .args(["ai", "compare", "--models", models, "--config"])
            .arg(&cfg)
            .env(KEY_VAR, KEY)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, text) = run("gpt-4.1,claude-sonnet-4-5,gemini-2.5-flash,deepseek-v3.2");
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains(KEY));
    let row = |m: &str| {
        text.lines().find(|l| l.starts_with(m)).unwrap_or_else(|| panic!("no row for {m}:\n{text}")).to_string()
    };
    assert!(row("gpt-4.1").contains("$0.002520") && row("gpt-4.1").contains("spread wide"), "{text}");
    // claude-sonnet-4-5: 480 x 3.5 + 90 x 15 = 3030 micro-dollars.
    assert!(row("claude-sonnet-4-5").contains("$0.003030"), "{text}");
    assert!(row("deepseek-v3.2").contains("spread narrow, volatility low, direction sideways"), "{text}");
    let models: Vec<String> =
        server.requests().iter().map(|r| r.json()["model"].as_str().unwrap().to_string()).collect();
    assert_eq!(models, ["gpt-4.1", "claude-sonnet-4-5", "gemini-2.5-flash", "deepseek-v3.2"]);
    let (code, text) = run("gpt-4.1,no-such-model");
    assert_eq!(code, Some(2), "{text}");
    assert!(row_of(&text, "no-such-model").contains("HTTP 404"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn row_of(text: &str, m: &str) -> String {
    text.lines().find(|l| l.starts_with(m)).unwrap_or("").to_string()
}

#[test]
fn cost_prints_the_tutorials_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["ai", "cost", "--calls-per-day", "17280", "--input-tokens", "500", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("mmbot.example.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for (model, per_call, per_day, per_month) in [
        ("gpt-4.1", "$0.003900", "$67.39", "$2021.76"),
        ("claude-sonnet-4-5", "$0.004750", "$82.08", "$2462.40"),
        ("gemini-2.5-flash", "$0.001560", "$26.96", "$808.70"),
        ("deepseek-v3.2", "$0.000360", "$6.22", "$186.62"),
    ] {
        let row = row_of(&text, model);
        assert!(row.contains(per_call) && row.contains(per_day) && row.contains(per_month), "{model}: {text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args([
            "ai",
            "cost",
            "--calls-per-day",
            "1000",
            "--input-tokens",
            "1000",
            "--output-tokens",
            "0",
            "--gain-per-day",
            "6",
        ])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // gpt-4.1: $0.003 a call, $3 a day; a $6/day gain is +100%.
    assert!(row_of(&text, "gpt-4.1").contains("$3.00") && row_of(&text, "gpt-4.1").contains("+100%"), "{text}");
}

// ---- Faults: retry waits, quota, body caps, HTML pages, usage, billing ----

/// Gap between the first two requests the server saw.
fn gap(server: &Server) -> Duration {
    let r = server.requests();
    r[1].at.duration_since(r[0].at)
}

/// `retry-after-ms` (OpenAI; read first by the official SDKs) wins over
/// `Retry-After`; `Retry-After` may be an HTTP-date (RFC 9110 10.2.3).
/// Bounds are generous: only "waited at least this, and not the other one".
#[test]
fn retry_waits_follow_retry_after_ms_seconds_and_http_dates() {
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::status(429, r#"{"error":{"message":"slow down"}}"#)
                .header("retry-after-ms", "400")
                .header("Retry-After", "20")
        } else {
            Reply::chat(CLEAN)
        }
    });
    let ai = AiConfig { timeout: Duration::from_secs(3), ..settings(&server.base_url()) };
    let a = ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap();
    assert_eq!(a.completion.attempts, 2);
    let g = gap(&server);
    assert!(g >= Duration::from_millis(400) && g < Duration::from_secs(10), "{g:?}");

    // An HTTP-date two seconds ahead: whole seconds, so at least one second.
    let server = Server::start(|n, _| {
        if n == 0 {
            let at = mmbot::ai::llm::retry::http_date(std::time::SystemTime::now() + Duration::from_secs(2));
            Reply::status(429, "{}").header("Retry-After", &at)
        } else {
            Reply::chat(CLEAN)
        }
    });
    let ai = AiConfig { timeout: Duration::from_secs(4), ..settings(&server.base_url()) };
    ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap();
    let g = gap(&server);
    assert!(g >= Duration::from_millis(900) && g < Duration::from_secs(10), "{g:?}");

    // A date in the past: retry at once (no backoff of its own).
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::status(503, "{}").header("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT")
        } else {
            Reply::chat(CLEAN)
        }
    });
    let ai = AiConfig { backoff: Duration::from_secs(20), ..settings(&server.base_url()) };
    ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap();
    assert!(gap(&server) < Duration::from_secs(10), "{:?}", gap(&server));
}

/// OpenAI "Error codes": 429 "You exceeded your current quota" with code
/// `insufficient_quota` is not a rate limit: one request, no retry.
#[test]
fn insufficient_quota_is_one_request_and_never_retried() {
    let server = Server::always(
        Reply::openai_error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            Some("insufficient_quota"),
        )
        .header("Retry-After", "0"),
    );
    let ai = settings(&server.base_url());
    let mut c = client(&ai);
    let e = ask_once(&ai, &mut c, &sample_snapshot()).unwrap_err();
    assert!(matches!(e, AiError::QuotaExhausted { .. }), "{e}");
    assert!(e.to_string().contains("no quota left") && e.to_string().contains("exceeded your current quota"), "{e}");
    assert_eq!((server.count(), c.last_call().attempts), (1, 1));
    let (code, text) = check_with_key("quota", &server.base_url());
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("out of credit, not throttled"), "{text}");
}

/// A 5 MiB body is not read, not retried, and named for what it is (it
/// used to read as "unreachable" and be fetched three times).
#[test]
fn a_five_mib_body_is_one_request_and_too_large() {
    for (name, reply) in [
        ("declared", Reply::huge(200, 5 << 20)),
        ("undeclared", Reply::huge(200, 5 << 20).without_length()),
        ("error page", Reply::huge(502, 5 << 20)),
    ] {
        let server = Server::always(reply);
        let ai = settings(&server.base_url());
        let mut c = client(&ai);
        let e = ask_once(&ai, &mut c, &sample_snapshot()).unwrap_err();
        assert!(matches!(e, AiError::TooLarge { limit_bytes: 1_048_576, .. }), "{name}: {e}");
        assert!(e.to_string().contains("too large (over 1048576 bytes)"), "{name}: {e}");
        assert_eq!(server.count(), 1, "{name}: not retried");
        // A cut-off answer was generated and is billed; an error page is not.
        assert_eq!(c.last_call().prompt_billed, name != "error page", "{name}");
    }
    let server = Server::always(Reply::huge(200, 5 << 20));
    let (code, text) = check_with_key("huge", &server.base_url());
    assert_eq!(code, Some(5), "{text}");
    assert_eq!(server.calls(), 1);
}

/// A proxy's HTML error page is described by its title and size, never
/// pasted into the message.
#[test]
fn html_error_pages_are_described_not_pasted() {
    let server = Server::always(Reply::html(502, "Bad gateway"));
    let ai = settings(&server.base_url());
    let e = ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap_err().to_string();
    assert!(e.contains("HTTP 502 on 3 attempt(s): an HTML page titled \"Bad gateway\", "), "{e}");
    assert!(e.contains(" bytes") && !e.contains("<h1>") && !e.contains("did not answer"), "{e}");
    // As a "successful" answer too.
    let server = Server::always(Reply::html(200, "Login required"));
    let (code, text) = check_with_key("html200", &server.base_url());
    assert_eq!(code, Some(5), "{text}");
    assert!(text.contains("not JSON but an HTML page titled \"Login required\""), "{text}");
    assert!(!text.contains("<h1>"), "{text}");
}

/// `finish_reason: length`: a cut-off answer is kept with its reason; an
/// empty one says to raise max_tokens, naming the value sent.
#[test]
fn cut_off_answers_keep_their_reason_and_empty_ones_name_max_tokens() {
    let usage = serde_json::json!({"prompt_tokens": 700, "completion_tokens": 800});
    let server = Server::always(Reply::chat_usage("", "length", Some(usage.clone())));
    let ai = AiConfig { max_tokens: 321, ..settings(&server.base_url()) };
    let mut c = client(&ai);
    let e = ask_once(&ai, &mut c, &sample_snapshot()).unwrap_err().to_string();
    assert!(e.contains("raise [ai] max_tokens (now 321)"), "{e}");
    // The provider billed the empty answer: its usage is kept and charged
    // exactly (a reasoning model that spent its cap thinking costs money).
    let info = c.last_call();
    let u = info.usage.expect("the unusable answer's usage is kept");
    assert_eq!((u.tokens_in, u.tokens_out), (700, 800));
    let mut prices = mmbot::ai::cost::PriceTable::default();
    prices
        .set("gpt-4.1", mmbot::ai::cost::ModelPrice { input_per_m: 3.0, output_per_m: 12.0, cached_input_per_m: None });
    let charge = mmbot::ai::cost::charge_failed(&prices, "gpt-4.1", &info);
    assert_eq!((charge.usd, charge.estimated), (Some((700.0 * 3.0 + 800.0 * 12.0) / 1e6), false));
    let server = Server::always(Reply::chat_usage(r#"{"spread_state":"wide","volat"#, "length", Some(usage)));
    let ai = settings(&server.base_url());
    let a = ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap();
    assert_eq!(a.completion.finish_reason.as_deref(), Some("length"));
}

/// Usage: cached tokens from `prompt_tokens_details`; without usage, both
/// sides estimated and marked so.
#[test]
fn usage_cached_tokens_and_estimates() {
    let usage = serde_json::json!({"prompt_tokens": 730, "completion_tokens": 90,
        "prompt_tokens_details": {"cached_tokens": 512}});
    let server = Server::always(Reply::chat_usage(CLEAN, "stop", Some(usage)));
    let ai = settings(&server.base_url());
    let c = ask_once(&ai, &mut client(&ai), &sample_snapshot()).unwrap().completion;
    assert_eq!((c.tokens_in, c.cached_tokens, c.tokens_out, c.usage_reported), (730, 512, 90, true));

    let server = Server::always(Reply::chat_usage(CLEAN, "stop", None));
    let ai = settings(&server.base_url());
    let mut cl = client(&ai);
    let c = ask_once(&ai, &mut cl, &sample_snapshot()).unwrap().completion;
    let info = cl.last_call();
    assert!(!c.usage_reported && c.cached_tokens == 0);
    assert!(info.prompt_tokens_estimate > 300, "{info:?}");
    assert_eq!(c.tokens_in, info.prompt_tokens_estimate);
    assert_eq!(c.tokens_out, mmbot::ai::prompt::estimate_tokens(CLEAN));
    assert!(!info.prompt_billed && info.attempts == 1);
}

/// `last_call` is filled on failures too: a timed-out request was sent and
/// is billed; a refused connection was never sent.
#[test]
fn failed_calls_say_how_long_how_many_and_whether_billed() {
    let server = Server::always(Reply::chat(CLEAN).delayed(Duration::from_secs(10)));
    let ai = settings(&server.base_url());
    let mut c = client(&ai);
    let e = ask_once(&ai, &mut c, &sample_snapshot()).unwrap_err();
    assert!(matches!(e, AiError::TimedOut { .. }), "{e}");
    let info = c.last_call();
    assert!(info.prompt_billed && info.attempts == 1 && info.latency >= Duration::from_millis(400), "{info:?}");

    let ai = settings(&refused_base_url());
    let mut c = client(&ai);
    let e = ask_once(&ai, &mut c, &sample_snapshot()).unwrap_err();
    assert!(e.to_string().contains("connection refused") && e.to_string().contains("(3 attempts)"), "{e}");
    let info = c.last_call();
    assert!(!info.prompt_billed && info.attempts == 3, "{info:?}");
}
