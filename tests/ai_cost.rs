//! What the advisor costs, end to end against the project's loopback
//! OpenAI-compatible gateway double (tests/ai_server; never the internet):
//! a reply's `usage` is priced with cached prompt tokens at the cached price
//! (OpenAI's `usage.prompt_tokens_details.cached_tokens`, Chat Completions
//! API reference), a reply without `usage` is charged by estimate and marked,
//! a call that timed out is charged its prompt's estimate, `mmbot ai cost`
//! prices the prompt mmbot really sends, and a demo run with an LLM advisor
//! puts calls, errors and cost in its banner, status lines, final summary,
//! report.json (next to PnL, with the net) and `mmbot report`.

mod ai_server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ai_server::{Reply, Server, CLEAN};
use mmbot::ai::cost::{charge, charge_failed, Charge, CostMeter, PriceTable};
use mmbot::ai::key::ApiKey;
use mmbot::ai::llm::{LlmClient, Message};
use mmbot::ai::{AiConfig, Provider};

const KEY_VAR: &str = "MMBOT_TEST_COST_KEY";
const KEY: &str = "sk-cost-test-key-0000000000";

fn ai(base_url: &str, model: &str) -> AiConfig {
    AiConfig {
        provider: Provider::Custom,
        base_url: Some(base_url.to_string()),
        model: model.to_string(),
        key_var: KEY_VAR.to_string(),
        timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_millis(400),
        retries: 0,
        backoff: Duration::from_millis(10),
        ..AiConfig::default()
    }
}

fn ask(server: &Server, model: &str) -> (Result<mmbot::ai::llm::Completion, mmbot::ai::AiError>, LlmClient) {
    let cfg = ai(&server.base_url(), model);
    let mut client = LlmClient::new(&cfg, Some(ApiKey::new(KEY_VAR, KEY))).unwrap();
    let msgs = [Message::system("Answer in JSON."), Message::user("Symbol: BTCUSDT\nBids: 60000 x 1\n")];
    let r = client.complete(&msgs, &AtomicBool::new(false));
    (r, client)
}

fn chat_with_usage(usage: serde_json::Value) -> Reply {
    let body = serde_json::json!({
        "id": "chatcmpl-cost",
        "object": "chat.completion",
        "model": "gpt-5-mini-2025-08-07",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": CLEAN}, "finish_reason": "stop"}],
        "usage": usage,
    });
    Reply::status(200, &body.to_string())
}

#[test]
fn cached_prompt_tokens_are_charged_at_the_cached_price() {
    // OpenAI Chat Completions: usage.prompt_tokens includes
    // usage.prompt_tokens_details.cached_tokens.
    let server = Server::always(chat_with_usage(serde_json::json!({
        "prompt_tokens": 2000, "completion_tokens": 100, "total_tokens": 2100,
        "prompt_tokens_details": {"cached_tokens": 1024}
    })));
    let (c, _) = ask(&server, "gpt-5-mini");
    let c = c.unwrap();
    assert_eq!((c.tokens_in, c.cached_tokens, c.tokens_out, c.usage_reported), (2000, 1024, 100, true));
    // gpt-5-mini list price: $0.25 in, $0.025 cached, $2.00 out per million:
    // 976 x 0.25 + 1024 x 0.025 + 100 x 2 = 244 + 25.6 + 200 = 469.6 micro-dollars.
    let ch = charge(&PriceTable::list(), "gpt-5-mini", &c);
    assert!(!ch.estimated, "{ch:?}");
    assert!((ch.usd.unwrap() - 469.6e-6).abs() < 1e-12, "{ch:?}");
    // The same reply at the price [ai.prices] gives without a cached price.
    let mut t = PriceTable::default();
    t.set("gpt-5-mini", mmbot::ai::cost::ModelPrice { input_per_m: 0.25, output_per_m: 2.0, cached_input_per_m: None });
    assert!((charge(&t, "gpt-5-mini", &c).usd.unwrap() - 700e-6).abs() < 1e-12);
}

#[test]
fn a_reply_without_usage_is_charged_by_estimate_and_marked_estimated() {
    let body = serde_json::json!({
        "id": "chatcmpl-cost", "object": "chat.completion", "model": "gpt-4.1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": CLEAN}, "finish_reason": "stop"}],
    });
    let server = Server::always(Reply::status(200, &body.to_string()));
    let (c, _) = ask(&server, "gpt-4.1");
    let c = c.unwrap();
    assert!(!c.usage_reported);
    let ch = charge(&PriceTable::tutorial(), "gpt-4.1", &c);
    assert!(ch.estimated, "{ch:?}");
    let usd = ch.usd.unwrap();
    assert!(usd > 0.0, "an estimate, never free: {ch:?}");
    assert!((usd - (c.tokens_in as f64 * 3.0 + c.tokens_out.max(1) as f64 * 12.0) / 1e6).abs() < 1e-9, "{c:?} {ch:?}");
    let mut m = CostMeter::default();
    m.add_charge(&ch, 1);
    m.add_charge(&Charge { usd: Some(0.001), estimated: false }, 2);
    assert_eq!(m.calls_estimated, 1);
    assert!((m.estimated_usd - usd).abs() < 1e-15 && (m.total_usd - usd - 0.001).abs() < 1e-15);
}

#[test]
fn a_timed_out_call_is_charged_its_prompt_and_a_refused_one_nothing() {
    // Slower than the client's 400 ms timeout.
    let slow = Server::always(Reply::chat(CLEAN).delayed(Duration::from_millis(1500)));
    let (r, client) = ask(&slow, "gpt-4.1");
    assert!(r.is_err(), "{r:?}");
    let info = client.last_call();
    assert!(info.prompt_tokens_estimate > 0, "{info:?}");
    let ch = charge_failed(&PriceTable::tutorial(), "gpt-4.1", &info);
    if info.prompt_billed {
        assert!(ch.estimated, "{ch:?}");
        assert!((ch.usd.unwrap() - info.prompt_tokens_estimate as f64 * 3.0 / 1e6).abs() < 1e-12, "{ch:?}");
    }
    // A rejected key: nothing reached the model, nothing is billed.
    let refused = Server::always(Reply::status(401, r#"{"error":{"message":"bad key","code":"invalid_api_key"}}"#));
    let (r, client) = ask(&refused, "gpt-4.1");
    assert!(r.is_err());
    assert_eq!(charge_failed(&PriceTable::tutorial(), "gpt-4.1", &client.last_call()), Charge::NOTHING);
}

fn mmbot(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(args)
        .current_dir(dir)
        .env_remove("MMBOT_CONFIG")
        .env_remove("HOLYSHEEP_API_KEY")
        .env(KEY_VAR, KEY)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mmbot-ai-cost-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn ai_cost_prices_the_measured_prompt_and_shows_cached_prices() {
    let dir = temp_dir("table");
    std::fs::write(
        dir.join("mmbot.toml"),
        "[ai]\nprovider = \"offline\"\n[ai.prices.\"gpt-5-mini\"]\ninput = 0.25\noutput = 2.0\ncached_input = 0.025\n",
    )
    .unwrap();
    let (code, out, err) = mmbot(&dir, &["ai", "cost", "--calls-per-day", "1000"]);
    assert_eq!(code, Some(0), "{out}{err}");
    // The default prompt size is what mmbot sends for the sample book.
    let cfg = AiConfig::default();
    let measured = mmbot::ai::prompt::estimate_chat_tokens(&mmbot::ai::ask::messages(
        &cfg,
        &mmbot::ai::advisor::sample_snapshot(),
    ));
    assert!(measured > 300, "{measured}");
    assert!(out.contains(&format!("{measured} input (measured")), "{out}");
    assert!(out.contains("cached $/M"), "{out}");
    let row = out.lines().find(|l| l.starts_with("gpt-5-mini ")).unwrap_or_default();
    assert!(row.contains("0.025"), "{out}");
    let per_call = (measured as f64 * 0.25 + 200.0 * 2.0) / 1e6;
    assert!(row.contains(&format!("${per_call:.6}")), "{row} / {per_call}");
    // Given on the command line, the count is used as given.
    let (_, out, _) = mmbot(&dir, &["ai", "cost", "--input-tokens", "500"]);
    assert!(out.contains("500 input + 200 output") && !out.contains("measured"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_demo_with_an_llm_advisor_shows_its_calls_and_cost_next_to_pnl() {
    let server = Server::always(Reply::chat(CLEAN));
    let dir = temp_dir("demo");
    let config = dir.join("llm.toml");
    std::fs::write(
        &config,
        format!(
            "[ai]\nprovider = \"custom\"\nbase_url = \"{}\"\nmodel = \"gpt-4.1\"\napi_key_env = \"{KEY_VAR}\"\n\
             interval_s = 0.5\ntimeout_s = 2\n",
            server.base_url()
        ),
    )
    .unwrap();
    let (code, out, err) = mmbot(
        &dir,
        &["demo", "--duration", "4s", "--no-dashboard", "--out", "runs", "--config", config.to_str().unwrap()],
    );
    let all = format!("{out}{err}");
    assert!(!all.contains(KEY), "the key leaked:\n{all}");
    if std::env::var_os("MMBOT_SHOW_OUTPUT").is_some() {
        println!("{all}");
    }
    assert_eq!(code, Some(0), "{all}");
    // The banner names the configured advisor, not "offline".
    assert!(err.contains("advisor: custom gpt-4.1;"), "{err}");
    // Status lines carry the advisor's calls, errors and cost.
    assert!(
        err.lines().any(|l| l.contains("demo: ") && l.contains("; advisor custom gpt-4.1: ") && l.contains(" error")),
        "{err}"
    );
    assert!(server.count() >= 1, "the gateway was asked");
    let run = std::fs::read_dir(dir.join("runs")).unwrap().filter_map(|e| e.ok()).next().unwrap().path();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let ai = &report["ai"];
    let cost = ai["ai_cost_usd"].as_f64().unwrap();
    let ok = ai["ok"].as_u64().unwrap();
    assert!(ok >= 1 && cost > 0.0, "{ai}");
    assert_eq!(ai["cost_total_usd"].as_f64(), Some(cost));
    // gpt-4.1 at the tutorial's $3/$12: 480 in, 90 out = $0.00252 a reply.
    let calls = ai["calls"].as_u64().unwrap();
    assert!(cost >= 0.00252 * ok as f64 - 1e-9 && cost <= 0.00252 * calls as f64 * 2.0 + 1e-9, "{ai}");
    assert_eq!(ai["ai_cost_estimated_usd"].as_f64(), Some(0.0), "usage was reported: {ai}");
    let pnl: f64 = report["trading"]["pnl"].as_str().unwrap().parse().unwrap();
    assert_eq!(ai["pnl"].as_f64(), Some(pnl));
    assert_eq!(ai["quote_asset"].as_str(), Some("USDT"));
    assert!((ai["pnl_net_of_ai"].as_f64().unwrap() - (pnl - cost)).abs() < 1e-12, "{ai}");
    // The final summary and `mmbot report` say it in one line.
    let summary = err.lines().find(|l| l.starts_with("mmbot demo: advisor custom gpt-4.1: ")).unwrap_or_default();
    assert!(
        summary.contains(" calls, ") && summary.contains("; cost $") && summary.contains("net of AI cost"),
        "{err}"
    );
    let (code, out, err) = mmbot(&dir, &["report", run.join("report.json").to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("advisor custom gpt-4.1: ") && out.contains("net of AI cost"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
