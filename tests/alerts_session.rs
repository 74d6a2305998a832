//! `[alerts]` in a running session: `mmbot demo` with a generic JSON
//! webhook and a Slack incoming webhook, both on the webhook double
//! (tests/webhook_double, written from Slack's and Telegram's docs; here
//! Slack "Sending messages using incoming webhooks": a JSON body with
//! `text`, answered `ok`). The
//! demo's position reaches 20% of its limit at its first fill, which
//! raises `position_near_limit`; the end of the run raises `stop`, which
//! must get out before the process exits. Each alert is also in the
//! run's event log.

mod common;
#[path = "webhook_double/mod.rs"]
mod webhook_double;

use std::process::Command;
use std::time::Duration;

use webhook_double::{DoubleConfig, Receiver, WebhookDouble};

#[test]
fn a_demo_run_sends_its_alerts_to_json_and_slack_webhooks() {
    let double = WebhookDouble::start(DoubleConfig::default());
    let dir = common::temp_dir("alerts-session");
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo.toml")).unwrap();
    // The Slack URL is a secret: from .env (url_env), as an operator keeps it.
    std::fs::write(dir.join(".env"), format!("SLACK_WEBHOOK_URL={}\n", double.slack_url())).unwrap();
    let config = format!(
        "{demo}\n[alerts]\nposition_near_pct = 20\nenv_file = \".env\"\n\n[[alerts.webhook]]\nformat = \"json\"\n\
         url = \"{}\"\n\n[[alerts.webhook]]\nformat = \"slack\"\nurl_env = \"SLACK_WEBHOOK_URL\"\n",
        double.json_url()
    );
    std::fs::write(dir.join("mmbot.toml"), config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["demo", "--duration", "8s", "--no-control", "--config", "mmbot.toml", "--out", "runs"])
        .current_dir(&dir)
        .env_remove("MMBOT_CONFIG")
        .env_remove("SLACK_WEBHOOK_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("/services/"), "the Slack URL (a secret) was printed:\n{stderr}");
    assert!(!stderr.contains("still shared"), "the stop alert was not flushed at the end:\n{stderr}");
    // The end of the run says what each target got.
    assert!(stderr.lines().any(|l| l.starts_with("alerts: json ") && l.contains(" 0 failed")), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("alerts: slack ") && l.contains(" 0 failed")), "{stderr}");

    let got = double.wait_for(4, Duration::from_secs(10));
    let json: Vec<serde_json::Value> =
        got.iter().filter(|r| matches!(r.receiver, Receiver::Json)).filter_map(|r| r.json.clone()).collect();
    let kinds: Vec<&str> = json.iter().filter_map(|j| j["kind"].as_str()).collect();
    assert!(kinds.contains(&"position_near_limit"), "{json:?}");
    assert_eq!(kinds.last(), Some(&"stop"), "the stop alert is the last: {json:?}");
    for j in &json {
        assert_eq!(j["symbol"], "BTCUSDT", "{j}");
        assert_eq!(j["source"], "mmbot", "{j}");
        assert!(j["at_ms"].as_i64().is_some_and(|t| t > 0), "{j}");
    }
    let slack: Vec<String> =
        got.iter().filter(|r| matches!(r.receiver, Receiver::Slack)).filter_map(|r| r.text()).collect();
    assert!(slack.iter().any(|t| t.contains("stopped")), "{slack:?}");
    assert!(slack.iter().any(|t| t.contains("position")), "{slack:?}");

    let run = std::fs::read_dir(dir.join("runs")).unwrap().next().unwrap().unwrap().path();
    let events = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert!(events.contains("\"kind\":\"alert\"") && events.contains("position_near_limit"), "{events}");
}
