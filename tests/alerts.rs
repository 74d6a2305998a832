//! Alert webhooks end to end: `[alerts]` read by `Config::from_toml`, then
//! [`Notifier`] posting to a local double of a generic JSON receiver, a
//! Slack incoming webhook and Telegram's Bot API (tests/webhook_double,
//! written from the services' docs: Slack "Sending messages using incoming
//! webhooks" and "Rate limits" (429 with `Retry-After`); Telegram Bot API
//! "Making requests", "sendMessage" and "ResponseParameters" (`ok`,
//! `error_code`, `parameters.retry_after`)). Every wait is bounded; retries
//! use 50 ms backoffs.

mod webhook_double;

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mmbot::config::alerts::AlertsConfig;
use mmbot::config::Config;
use mmbot::control::alerts::{stopped, Alert, AlertKind, Notifier};
use serde_json::json;
use webhook_double::{DoubleConfig, Fault, Receiver, WebhookDouble};

const TOKEN: &str = "123456789:TEST-double-token";
const CHAT: i64 = 1001;
const WAIT: Duration = Duration::from_secs(10);

/// Everything logged by any test of this binary (the alert thread logs on
/// its own thread, so the subscriber is global).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Captured(Arc::clone(&buf));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// A `.env` of its own for a test (the token never enters the process
/// environment).
fn env_file(test: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mmbot-alerts-it-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(".env");
    std::fs::write(&f, body).unwrap();
    f
}

/// `[alerts]` from TOML text, through the whole config's validation.
fn alerts(text: &str) -> AlertsConfig {
    logs();
    Config::from_toml(text, "alerts-test.toml").unwrap_or_else(|e| panic!("{e}\n{text}")).alerts
}

/// A telegram `[[alerts.webhook]]` for the double, its token from `env`.
fn telegram_hook(double: &WebhookDouble, env: &std::path::Path, extra: &str) -> String {
    format!(
        "[alerts]\nenv_file = {:?}\nretry_backoff_ms = 50\n\
         [[alerts.webhook]]\nname = \"tg\"\nformat = \"telegram\"\nbot_token_env = \"MMBOT_IT_TG_TOKEN\"\n\
         chat_id = {CHAT}\napi_url = \"{}\"\n{extra}",
        env.display().to_string(),
        double.telegram_api_base()
    )
}

fn kill() -> Alert {
    Alert::new(AlertKind::Kill, "BTCUSDT", "trading stopped (kill switch)")
}

#[test]
fn json_slack_and_telegram_messages_arrive_with_the_right_shape() {
    let double = WebhookDouble::start(DoubleConfig::new(TOKEN, &[CHAT]));
    let env = env_file("shape", &format!("MMBOT_IT_TG_TOKEN={TOKEN}\nMMBOT_IT_SLACK_URL={}\n", double.slack_url()));
    let cfg = alerts(&format!(
        "{}\n[[alerts.webhook]]\nformat = \"json\"\nurl = \"{}\"\n\
         [[alerts.webhook]]\nformat = \"slack\"\nurl_env = \"MMBOT_IT_SLACK_URL\"\n",
        telegram_hook(&double, &env, ""),
        double.json_url()
    ));
    let names: Vec<&str> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["tg", "json 127.0.0.1", "slack 127.0.0.1"]);
    let n = Notifier::start(&cfg);
    let alert = kill();
    n.notify(alert.clone());
    let got = double.wait_for(3, WAIT);
    assert_eq!(got.len(), 3, "{:?}", double.requests());

    let j = &double.accepted_by(Receiver::Json)[0];
    assert_eq!((j.method.as_str(), j.content_type.as_deref()), ("POST", Some("application/json")));
    assert_eq!(
        j.json,
        Some(json!({"kind": "kill", "symbol": "BTCUSDT", "text": "trading stopped (kill switch)",
                    "at_ms": alert.at_ms, "source": "mmbot"}))
    );

    let s = &double.accepted_by(Receiver::Slack)[0];
    assert_eq!(s.content_type.as_deref(), Some("application/json"));
    assert_eq!(s.json, Some(json!({"text": "mmbot BTCUSDT: trading stopped (kill switch)"})));
    assert_eq!(s.response_body, "ok");

    let t = &double.accepted_by(Receiver::Telegram)[0];
    assert_eq!(t.path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(
        t.json,
        Some(json!({"chat_id": CHAT, "text": "mmbot BTCUSDT: trading stopped (kill switch)",
                    "disable_web_page_preview": true}))
    );
    assert_eq!(t.response_json().unwrap()["ok"], json!(true));

    let stats = n.finish_with_stats(WAIT);
    for t in &stats.targets {
        assert_eq!((t.sent, t.failed, t.suppressed, t.dropped), (1, 0, 0, 0), "{t:?}");
    }
}

#[test]
fn slack_429_is_retried_after_its_retry_after() {
    let double = WebhookDouble::start(DoubleConfig::default());
    let cfg = alerts(&format!(
        "[alerts]\n[[alerts.webhook]]\nformat = \"slack\"\nurl = \"{}\"\nretry_backoff_ms = 50\n",
        double.slack_url()
    ));
    double.fail_next("/services/", 1, Fault::SlackRateLimited { retry_after_s: 1 });
    let n = Notifier::start(&cfg);
    n.notify(kill());
    assert_eq!(double.wait_for(1, WAIT).len(), 1);
    let r = double.requests();
    assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 200]);
    assert!(r[0].fault.is_some());
    let waited = r[1].at.duration_since(r[0].at);
    assert!(waited >= Duration::from_millis(950), "waited {waited:?}, not the 1 s Retry-After");
    let s = n.finish_with_stats(WAIT);
    assert_eq!((s.targets[0].sent, s.targets[0].failed), (1, 0));
}

#[test]
fn telegram_429_is_retried_after_its_retry_after() {
    let double = WebhookDouble::start(DoubleConfig::new(TOKEN, &[CHAT]));
    let env = env_file("flood", &format!("MMBOT_IT_TG_TOKEN={TOKEN}\n"));
    let cfg = alerts(&telegram_hook(&double, &env, ""));
    double.fail_next("/bot", 1, Fault::TelegramFlood { retry_after_s: 1 });
    let n = Notifier::start(&cfg);
    n.notify(kill());
    assert_eq!(double.wait_for(1, WAIT).len(), 1);
    let r = double.requests();
    assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 200]);
    assert_eq!(r[0].response_json().unwrap()["parameters"]["retry_after"], json!(1));
    let waited = r[1].at.duration_since(r[0].at);
    assert!(waited >= Duration::from_millis(950), "waited {waited:?}, not the 1 s retry_after");
    let s = n.finish_with_stats(WAIT);
    assert_eq!((s.targets[0].sent, s.targets[0].failed), (1, 0));
}

#[test]
fn a_500_is_retried_up_to_retries_then_counted_failed() {
    let double = WebhookDouble::start(DoubleConfig::default());
    let cfg = alerts(&format!(
        "[alerts]\n[[alerts.webhook]]\nname = \"j500\"\nformat = \"json\"\nurl = \"{}\"\nretries = 2\n\
         retry_backoff_ms = 50\n",
        double.json_url()
    ));
    double.fail_next("/hook/", 10, Fault::Status(500));
    let n = Notifier::start(&cfg);
    n.notify(kill());
    let r = double.wait_for_requests(3, WAIT);
    assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 500, 500]);
    let t0 = Instant::now();
    let stats = n.finish_with_stats(WAIT);
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(double.requests().len(), 3, "1 attempt + retries = 2, no more");
    let s = stats.target("j500").unwrap();
    assert_eq!((s.sent, s.failed), (0, 1), "{s:?}");
    let e = s.last_error.as_deref().unwrap();
    assert!(e.contains("HTTP 500") && e.contains("3 attempts"), "{e}");
    assert!(logged().contains("alerts: j500: a kill alert was not sent: HTTP 500"), "{}", logged());
}

#[test]
fn repeats_of_a_kind_are_suppressed_and_the_next_message_counts_them() {
    let double = WebhookDouble::start(DoubleConfig::default());
    let cfg = alerts(&format!(
        "[alerts]\n[[alerts.webhook]]\nformat = \"slack\"\nurl = \"{}\"\nmin_interval_s = 1\n",
        double.slack_url()
    ));
    let n = Notifier::start(&cfg);
    for _ in 0..3 {
        n.notify(kill());
    }
    // Another kind is not held back by the kill alerts' interval.
    n.notify(Alert::new(AlertKind::ResyncStorm, "BTCUSDT", "resync storm"));
    assert_eq!(double.wait_for(2, WAIT).len(), 2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(double.requests().len(), 2, "the repeats were not sent");
    assert_eq!(n.stats().targets[0].suppressed, 2);
    std::thread::sleep(Duration::from_millis(900));
    n.notify(kill());
    let got = double.wait_for(3, WAIT);
    let texts: Vec<String> = got.iter().filter_map(|r| r.text()).collect();
    assert_eq!(texts[0], "mmbot BTCUSDT: trading stopped (kill switch)");
    assert_eq!(texts[1], "mmbot BTCUSDT: resync storm");
    assert_eq!(
        texts[2],
        "mmbot BTCUSDT: trading stopped (kill switch) (2 more like this were suppressed since the last message)"
    );
    let s = n.finish_with_stats(WAIT);
    assert_eq!((s.targets[0].sent, s.targets[0].suppressed), (3, 2));
}

#[test]
fn finish_sends_the_stop_alert_before_it_returns() {
    let double = WebhookDouble::start(DoubleConfig::default());
    let cfg = alerts(&format!(
        "[alerts]\nmin_interval_s = 3600\nmax_per_minute = 1\n[[alerts.webhook]]\nformat = \"json\"\nurl = \"{}\"\n",
        double.json_url()
    ));
    // A slow receiver: the first request takes 300 ms.
    double.fail_next("/hook/", 1, Fault::Delay(Duration::from_millis(300)));
    let n = Notifier::start(&cfg);
    n.notify(kill());
    // Over max_per_minute, yet the session's last word goes out.
    n.notify(stopped("BTCUSDT", "operator stop"));
    let stats = n.finish_with_stats(WAIT);
    let got = double.accepted();
    let kinds: Vec<&str> = got.iter().filter_map(|r| r.json.as_ref()?.get("kind")?.as_str()).collect();
    assert_eq!(kinds, ["kill", "stop"]);
    assert_eq!(got[1].json.as_ref().unwrap()["text"], "stopped: operator stop");
    assert_eq!((stats.targets[0].sent, stats.targets[0].failed), (2, 0));
}

#[test]
fn a_finish_deadline_bounds_a_dead_receiver() {
    let double = WebhookDouble::start(DoubleConfig::default());
    let cfg = alerts(&format!(
        "[alerts]\n[[alerts.webhook]]\nformat = \"json\"\nurl = \"{}\"\ntimeout_ms = 700\n",
        double.json_url()
    ));
    double.fail_next("/hook/", 1, Fault::Delay(Duration::from_secs(20)));
    let n = Notifier::start(&cfg);
    n.notify(stopped("BTCUSDT", "ctrl-c"));
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    let stats = n.finish_with_stats(Duration::from_millis(500));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!((stats.targets[0].sent, stats.targets[0].failed), (0, 1), "{stats:?}");
}

#[test]
fn a_wrong_telegram_token_is_counted_failed_and_never_shown() {
    let double = WebhookDouble::start(DoubleConfig::new(TOKEN, &[CHAT]));
    let wrong = "987654321:WRONG-secret-token-value";
    let env = env_file("wrong", &format!("MMBOT_IT_TG_TOKEN={wrong}\n"));
    let cfg = alerts(&telegram_hook(&double, &env, "").replace("name = \"tg\"", "name = \"tg-wrong\""));
    assert!(!format!("{cfg:?}").contains("WRONG-secret"), "Debug shows no token");
    let n = Notifier::start(&cfg);
    n.notify(kill());
    let r = double.wait_for_requests(1, WAIT);
    assert_eq!(r[0].status, 401);
    let stats = n.finish_with_stats(WAIT);
    assert_eq!(double.requests().len(), 1, "a rejected token is not retried");
    let s = stats.target("tg-wrong").unwrap();
    assert_eq!((s.sent, s.failed), (0, 1));
    let e = s.last_error.as_deref().unwrap();
    assert!(e.contains("401") && e.contains("MMBOT_IT_TG_TOKEN") && !e.contains("WRONG-secret"), "{e}");
    let log = logged();
    let line = log.lines().find(|l| l.contains("alerts: tg-wrong:")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("401"), "{line}");
    assert!(!log.contains("WRONG-secret") && !log.contains(TOKEN), "{log}");
}

#[test]
fn notify_never_blocks_and_a_full_queue_counts_drops() {
    let double = WebhookDouble::start(DoubleConfig::default());
    let cfg = alerts(&format!(
        "[alerts]\nmin_interval_s = 0\nmax_per_minute = 600\n[[alerts.webhook]]\nformat = \"json\"\nurl = \"{}\"\n",
        double.json_url()
    ));
    double.fail_next("/hook/", 1, Fault::Delay(Duration::from_millis(500)));
    let n = Notifier::start(&cfg);
    n.notify(kill());
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    for _ in 0..599 {
        n.notify(kill());
    }
    assert!(t0.elapsed() < Duration::from_millis(200), "notify waited: {:?}", t0.elapsed());
    let s = n.finish_with_stats(WAIT);
    let t = &s.targets[0];
    assert!(t.dropped > 0, "{t:?}");
    assert_eq!(t.sent + t.failed + t.suppressed + t.dropped, 600, "{t:?}");
    assert_eq!(double.accepted().len() as u64, t.sent);
}
