//! The control plane end to end, without a browser: `mmbot demo` with
//! `--control 127.0.0.1:0`, driven over HTTP as an operator's script would
//! be. The status moves, a parameter change applies, pause stops quoting
//! (the quote count stands still, and the event log says who paused), and
//! `POST /api/stop` ends the run early with its report written.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TOKEN: &str = "demo-token-0123456789abcdef0123";

fn call(addr: &str, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    common::control_call(addr, method, path, Some(TOKEN), body.map(|b| b.to_string()).as_deref())
}

fn status(addr: &str) -> Value {
    let (st, body) = call(addr, "GET", "/api/status", None);
    assert_eq!(st, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `f` every 100 ms for up to `limit`.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn an_operator_drives_the_demo_over_the_control_api() {
    let dir = common::temp_dir("control-demo");
    let child = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["demo", "--duration", "60s", "--no-dashboard", "--control", "127.0.0.1:0", "--out", "runs"])
        .current_dir(&dir)
        .env("MMBOT_CONTROL_TOKEN", TOKEN)
        .env_remove("MMBOT_CONFIG")
        .env_remove("OPENAI_API_KEY")
        .env_remove("HOLYSHEEP_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut demo = common::KillOnDrop(child);
    let (addr, seen) = common::control_banner(&mut demo.0, Duration::from_secs(60));
    // The token came from the environment: the banner names the variable,
    // never the token.
    assert!(!seen.iter().any(|l| l.contains(TOKEN)));

    // The status moves.
    assert!(wait_until(Duration::from_secs(30), || status(&addr)["counters"]["quotes"].as_u64() > Some(5)));
    let first = status(&addr)["counters"]["frames"].as_u64().unwrap();
    assert!(wait_until(Duration::from_secs(10), || status(&addr)["counters"]["frames"].as_u64() > Some(first)));
    let s = status(&addr);
    assert_eq!(s["symbol"], "BTCUSDT");
    assert!(s["book"]["mid"].as_f64().is_some_and(|m| m > 0.0), "{s}");
    // The advice says why (the demo's offline rules: their readings).
    let reason = s["advice"]["advisor"]["last_reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("offline rules on spread"), "{s}");

    // The advisor's settings, within their bounds: the demo's offline
    // advisor asks every 5 s ([ai] interval_s), so 1 s is refused.
    let (st, body) = call(&addr, "GET", "/api/ai", None);
    assert_eq!(st, 200, "{body}");
    let ai: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ai["bounds"]["interval_s"], json!([5.0, 50.0]), "{ai}");
    let (st, body) = call(&addr, "POST", "/api/ai", Some(json!({"interval_s": 1.0, "paused": true})));
    assert_eq!(st, 422, "{body}");
    let (_, body) = call(&addr, "GET", "/api/ai", None);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["paused"], false, "a refused change paused advice");
    let (st, body) = call(&addr, "POST", "/api/ai", Some(json!({"interval_s": 6.0, "paused": true, "who": "ops"})));
    assert_eq!(st, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"paused": true, "interval_s": 6.0}));

    // A parameter change applies (and a bad one is refused, changing nothing).
    let (st, body) = call(&addr, "POST", "/api/params", Some(json!({"target_spread_pct": 60})));
    assert_eq!(st, 422, "{body}");
    let (st, body) = call(&addr, "POST", "/api/params", Some(json!({"target_spread_pct": 0.25, "who": "ops"})));
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("strategy.target_spread_pct"), "{body}");
    let (_, body) = call(&addr, "GET", "/api/params", None);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["target_spread_pct"], 0.25);

    // Metrics.
    let (st, metrics) = call(&addr, "GET", "/metrics", None);
    assert_eq!(st, 200);
    assert!(metrics.contains("mmbot_quotes_total{symbol=\"BTCUSDT\"}"), "{metrics}");

    // Pause: the hot thread stops quoting.
    let (st, body) = call(&addr, "POST", "/api/pause", Some(json!({"who": "ops"})));
    assert_eq!((st, body.as_str()), (200, "{\"paused\":true}"));
    assert!(wait_until(Duration::from_secs(5), || status(&addr)["paused"] == true), "the pause never showed");
    // While paused every quote is a pull: quotes made (not pulls) and
    // orders sent stand still.
    let made = |s: &Value| s["counters"]["quotes"].as_u64().unwrap() - s["counters"]["pulled"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let before = status(&addr);
    std::thread::sleep(Duration::from_millis(1500));
    let paused = status(&addr);
    let q1 = made(&before);
    assert_eq!(made(&paused), q1, "quotes were made while paused");
    assert_eq!(paused["counters"]["orders"], before["counters"]["orders"], "orders were sent while paused");
    assert!(paused["counters"]["pulled"].as_u64() > before["counters"]["pulled"].as_u64(), "{paused}");
    assert!(paused["orders"]["bid"].is_null() && paused["orders"]["ask"].is_null(), "{paused}");

    // Advice stays paused: its ticks are skipped (one every 6 s).
    assert!(
        wait_until(Duration::from_secs(15), || status(&addr)["advice"]["advisor"]["skipped_paused"].as_u64() > Some(0)),
        "no advisor tick was skipped while advice was paused"
    );

    // Stop: the run ends well before its 60 s, with its report.
    assert_eq!(call(&addr, "POST", "/api/stop", None).0, 200);
    let code = demo.exit_within(Duration::from_secs(20));
    assert!(code.success(), "{code:?}");
    let run = std::fs::read_dir(dir.join("runs")).unwrap().next().unwrap().unwrap().path();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let t = &report["trading"];
    assert_eq!(t["quotes"].as_u64().unwrap() - t["pulled"].as_u64().unwrap(), q1, "quotes made after the pause");
    let events = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert!(events.contains("paused by api (ops)"), "{events}");
    assert!(events.contains("params: strategy.target_spread_pct"), "{events}");
    assert!(events.contains("stop asked by api"), "{events}");
    assert!(events.contains("ai: advice paused by api (ops)"), "{events}");
}
