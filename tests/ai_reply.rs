//! Reading replies and the repair retry, against the loopback
//! OpenAI-compatible gateway (`tests/ai_server`, 127.0.0.1, ephemeral port):
//! reasoning blocks, several objects, the schema's complaints fed back to
//! the model in one more request, a repair request that fails, and a reply
//! cut off at `max_tokens` (`finish_reason: "length"`, OpenAI Chat
//! Completions reference, "The chat completion object") that is not retried.

mod ai_server;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ai_server::{Reply, Server, CLEAN};
use mmbot::ai::advisor::{ask_once, sample_snapshot};
use mmbot::ai::ask::{ask, Asked};
use mmbot::ai::key::ApiKey;
use mmbot::ai::llm::LlmClient;
use mmbot::ai::reply::{read_reply, Bounds, ReplyError};
use mmbot::ai::schema::check_schema;
use mmbot::ai::{AiConfig, Provider};
use mmbot::hot::advice::{Direction, SpreadState, Volatility};
use serde_json::{json, Value};

const KEY_VAR: &str = "MMBOT_TEST_AI_KEY";
const KEY: &str = "sk-test-0123456789abcdefSECRETPART";

/// A reply missing direction and with an unknown volatility: it reads
/// leniently (volatility "extreme" is high) but fails the schema.
const BAD: &str = r#"{"spread_state": "wide", "volatility": "extreme", "confidence": 70}"#;

fn settings(base_url: &str) -> AiConfig {
    AiConfig {
        provider: Provider::Custom,
        base_url: Some(base_url.to_string()),
        key_var: KEY_VAR.to_string(),
        timeout: Duration::from_millis(1_000),
        connect_timeout: Duration::from_millis(500),
        backoff: Duration::from_millis(20),
        ..AiConfig::default()
    }
}

fn ask_server(server: &Server) -> Asked {
    let ai = settings(&server.base_url());
    let mut client = LlmClient::new(&ai, Some(ApiKey::new(KEY_VAR, KEY))).unwrap();
    ask(&mut client, &ai, &sample_snapshot(), &AtomicBool::new(false)).expect("the first request is answered")
}

/// The `messages` of a request body as (role, content).
fn messages(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (m["role"].as_str().unwrap_or("").to_string(), m["content"].as_str().unwrap_or("").to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A chat completion cut off at the token limit.
fn cut_off(content: &str) -> Reply {
    let body = json!({
        "model": "gpt-4.1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 480, "completion_tokens": 800},
    });
    Reply::status(200, &body.to_string())
}

#[test]
fn a_reply_that_fails_the_schema_is_asked_again_once_with_the_errors() {
    let server = Server::start(|n, _| Reply::chat(if n == 0 { BAD } else { CLEAN }));
    let asked = ask_server(&server);
    assert_eq!(server.count(), 2);
    assert!(asked.repaired && asked.repair_error.is_none());
    assert_eq!((asked.completions.len(), asked.read_from), (2, 1));
    let p = asked.reply.as_ref().unwrap();
    assert_eq!(
        (p.spread, p.volatility, p.direction, p.confidence),
        (SpreadState::Wide, Volatility::High, Direction::Up, 80)
    );
    assert!(p.defaulted.is_empty());
    assert_eq!(asked.read().content, CLEAN);

    let requests = server.requests();
    let (first, second) = (messages(&requests[0].json()), messages(&requests[1].json()));
    assert_eq!(first.len(), 2, "{first:?}");
    // The conversation, extended by the model's reply and the complaints.
    assert_eq!(second.len(), 4, "{second:?}");
    assert_eq!(second[..2], first[..]);
    assert_eq!(second[2], ("assistant".to_string(), BAD.to_string()));
    let (role, repair) = &second[3];
    assert_eq!(role, "user");
    for complaint in [
        "volatility: \"extreme\" is not one of low, medium, high",
        "direction: missing (required)",
        "exactly one JSON object",
    ] {
        assert!(repair.contains(complaint), "{complaint:?} not in {repair}");
    }
}

#[test]
fn both_answers_are_paid_for() {
    let once = Server::always(Reply::chat(CLEAN));
    let twice = Server::start(|n, _| Reply::chat(if n == 0 { BAD } else { CLEAN }));
    let cost = |server: &Server| {
        let ai = settings(&server.base_url());
        let mut client = LlmClient::new(&ai, Some(ApiKey::new(KEY_VAR, KEY))).unwrap();
        ask_once(&ai, &mut client, &sample_snapshot()).unwrap().cost_usd.unwrap()
    };
    let (one, two) = (cost(&once), cost(&twice));
    assert!(one > 0.0 && (two - 2.0 * one).abs() < 1e-12, "one {one}, repaired {two}");
}

#[test]
fn a_passing_reply_is_not_asked_again() {
    for content in [
        CLEAN.to_string(),
        format!("<think>Bids stack up; an example {{\"volatility\":\"low\"}} would be wrong.</think>\n{CLEAN}"),
        format!("The format: {{\"spread_state\": \"narrow|normal|wide\"}}\n```json\n{CLEAN}\n```"),
        // Lenient reading: aliases and case pass.
        r#"{"Spread State": "WIDE", "vol": "High", "trend": "bullish"}"#.to_string(),
    ] {
        let server = Server::always(Reply::chat(&content));
        let asked = ask_server(&server);
        assert_eq!(server.count(), 1, "{content}");
        assert!(!asked.repaired, "{content}");
        let p = asked.reply.unwrap_or_else(|e| panic!("{content}: {e}"));
        assert_eq!(
            (p.spread, p.volatility, p.direction),
            (SpreadState::Wide, Volatility::High, Direction::Up),
            "{content}"
        );
    }
}

#[test]
fn a_repair_request_that_fails_keeps_the_first_answer() {
    // Read leniently: the first answer stands, the failure is noted.
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::chat(BAD)
        } else {
            Reply::status(400, r#"{"error":{"message":"context too long"}}"#)
        }
    });
    let asked = ask_server(&server);
    assert_eq!(server.count(), 2);
    assert!(!asked.repaired);
    assert_eq!(asked.completions.len(), 1);
    assert_eq!(asked.completions[0].content, BAD);
    let why = asked.repair_error.as_deref().unwrap();
    assert!(why.contains("400") && why.contains("context too long"), "{why}");
    let p = asked.reply.unwrap();
    assert_eq!((p.volatility, p.direction), (Volatility::High, Direction::Neutral));
    assert_eq!(p.defaulted, vec!["direction", "spread_multiplier"]);

    // Unreadable and the repair fails: the first reading's error.
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::chat("I would rather not say.")
        } else {
            Reply::status(404, r#"{"error":{"message":"gone"}}"#)
        }
    });
    let asked = ask_server(&server);
    assert_eq!((server.count(), asked.completions.len()), (2, 1));
    assert!(matches!(asked.reply, Err(ReplyError::NoJson { .. })), "{:?}", asked.reply);
    assert!(asked.repair_error.is_some());
}

#[test]
fn a_repaired_reply_that_is_still_bad_gives_the_better_reading() {
    // First unreadable, second partial: the second.
    let server = Server::start(|n, _| Reply::chat(if n == 0 { "no idea" } else { BAD }));
    let asked = ask_server(&server);
    assert!(asked.repaired);
    assert_eq!(asked.read_from, 1);
    assert_eq!(asked.reply.unwrap().volatility, Volatility::High);

    // First partial, second unreadable: the first, both paid for.
    let server = Server::start(|n, _| Reply::chat(if n == 0 { BAD } else { "still no idea" }));
    let asked = ask_server(&server);
    assert!(asked.repaired);
    assert_eq!((asked.completions.len(), asked.read_from), (2, 0));
    assert_eq!(asked.read().content, BAD);
    assert_eq!(asked.last().content, "still no idea");
    assert_eq!(asked.reply.unwrap().volatility, Volatility::High);

    // Both unreadable: the latest error; never a third request.
    let server = Server::start(|n, _| Reply::chat(if n == 0 { "no idea" } else { r#"{"error": "overloaded"}"# }));
    let asked = ask_server(&server);
    assert_eq!(server.count(), 2);
    assert!(matches!(asked.reply, Err(ReplyError::NoFields { .. })), "{:?}", asked.reply);
}

#[test]
fn a_reply_cut_off_at_max_tokens_is_not_asked_again() {
    let server = Server::always(cut_off(r#"<think>The spread is 0.08 bps and the bids"#));
    let asked = ask_server(&server);
    assert_eq!(server.count(), 1, "no repair: the same limit would cut it again");
    assert!(!asked.repaired);
    let e = asked.reply.unwrap_err();
    assert!(matches!(e, ReplyError::CutOff { max_tokens: 800, .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("raise [ai] max_tokens") && text.contains("only the model's reasoning"), "{text}");

    // Cut off mid-object.
    let server = Server::always(cut_off(r#"{"spread_state": "wide", "volatility": "hi"#));
    let asked = ask_server(&server);
    assert_eq!(server.count(), 1);
    assert!(asked.reply.unwrap_err().to_string().contains("max_tokens = 800"));

    // Cut off after a complete (if partial) object: what was read is kept.
    let server = Server::always(cut_off(r#"{"spread_state": "wide", "volatility": "high"} and the direct"#));
    let asked = ask_server(&server);
    assert_eq!(server.count(), 1);
    assert_eq!(asked.reply.unwrap().defaulted, vec!["direction", "confidence", "spread_multiplier"]);
}

#[test]
fn schema_violations_read_as_sentences() {
    let v: Value = serde_json::from_str(
        r#"{"spread_state":"WIDE","volatility":"extreme","direction":"up","confidence":"80%","spread_multiplier":1.2,
            "liquidity_concentration":null,"risk_signals":"thin asks","reason":"r","extra":1}"#,
    )
    .unwrap();
    let errors = check_schema(&v).unwrap_err();
    assert_eq!(
        errors,
        vec![
            "confidence: \"80%\" is a string, not an integer",
            "extra: not a key of the advice (the keys are spread_state, volatility, direction, confidence, \
             spread_multiplier, liquidity_concentration, risk_signals, reason)",
            "risk_signals: \"thin asks\" is a string, not an array",
            "spread_state: \"WIDE\" is not one of narrow, normal, wide",
            "volatility: \"extreme\" is not one of low, medium, high",
        ]
    );
    let reading = read_reply(&format!("Here you go: {v}"), Bounds { min_multiplier: 0.5, max_multiplier: 2.0 });
    // Lenient reading takes all three labels: no repair for this one.
    assert!(!reading.fails_schema());
    assert_eq!(reading.object.as_ref(), Some(&v));
}
