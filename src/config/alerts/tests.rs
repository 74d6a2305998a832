//! Unit tests of `[alerts]` validation: defaults, secrets from the
//! environment or `.env` (never shown), and a message naming the key for
//! every bad value.

use super::*;

/// `[alerts]` text (the section's keys, then webhooks) validated.
fn read(text: &str) -> Result<AlertsConfig, String> {
    #[derive(Deserialize)]
    struct Doc {
        alerts: RawAlerts,
    }
    let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
    validate_alerts(&doc.alerts).map_err(|e| e.to_string())
}

fn env_file(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mmbot-alerts-cfg-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(".env");
    std::fs::write(&f, body).unwrap();
    f
}

#[test]
fn defaults_mean_no_targets_and_documented_thresholds() {
    let c = read("[alerts]\n").unwrap();
    assert_eq!(c, AlertsConfig::default());
    assert!(!c.enabled());
    assert_eq!((c.disconnect_after.as_secs(), c.resync_storm_count, c.resync_storm_window.as_secs()), (10, 5, 60));
    assert_eq!(c.position_near_pct, 80.0);
}

#[test]
fn json_and_slack_targets_with_defaults_and_overrides() {
    let c = read(
        "[alerts]\nretries = 1\nmin_interval_s = 5\n\
         [[alerts.webhook]]\nformat = \"json\"\nurl = \"http://10.0.0.5:9000/hook\"\n\
         [[alerts.webhook]]\nname = \"ops\"\nformat = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/x\"\n\
         on = [\"kill\", \"disconnect\"]\nretries = 0\ntimeout_ms = 800\n",
    )
    .unwrap();
    let [j, s] = &c.targets[..] else { panic!("{c:?}") };
    assert_eq!((j.name.as_str(), j.format(), j.retries), ("json 10.0.0.5", AlertFormat::Json, 1));
    assert_eq!((j.min_interval.as_secs(), j.max_per_minute, j.on), (5, 20, Triggers::ALL));
    assert_eq!((j.retry_backoff.as_millis(), j.timeout.as_millis()), (500, 5000));
    assert_eq!((s.name.as_str(), s.format(), s.retries, s.timeout.as_millis()), ("ops", AlertFormat::Slack, 0, 800));
    assert!(s.on.contains(AlertKind::Kill) && s.on.contains(AlertKind::Reconnect));
    assert!(!s.on.contains(AlertKind::Stop));
    // Neither Debug nor describe shows the URL.
    let shown = format!("{c:?}\n{}", c.describe());
    assert!(!shown.contains("/services/T/B/x") && !shown.contains("/hook"), "{shown}");
}

#[test]
fn secrets_come_from_the_environment_or_env_file_and_are_never_shown() {
    let f = env_file(
        "ok",
        "MMBOT_ALERTS_TEST_SLACK=https://hooks.slack.com/services/T0/B0/sekrit\n\
         MMBOT_ALERTS_TEST_TG=123456:AAE-secret_token\n",
    );
    let text = format!(
        "[alerts]\nenv_file = {:?}\n\
         [[alerts.webhook]]\nformat = \"slack\"\nurl_env = \"MMBOT_ALERTS_TEST_SLACK\"\n\
         [[alerts.webhook]]\nformat = \"slack\"\nurl_env = \"MMBOT_ALERTS_TEST_SLACK\"\n\
         [[alerts.webhook]]\nformat = \"telegram\"\nbot_token_env = \"MMBOT_ALERTS_TEST_TG\"\nchat_id = \"@mmbot_ops\"\n\
         [[alerts.webhook]]\nformat = \"telegram\"\nbot_token_env = \"MMBOT_ALERTS_TEST_TG\"\nchat_id = -100123\n\
         api_url = \"http://127.0.0.1:9/\"\n",
        f.display().to_string()
    );
    let c = read(&text).unwrap();
    assert!(std::env::var("MMBOT_ALERTS_TEST_SLACK").is_err(), "no process variable is set");
    let names: Vec<&str> = c.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["slack hooks.slack.com", "slack hooks.slack.com #1", "telegram api.telegram.org", "telegram 127.0.0.1"]
    );
    match &c.targets[0].destination {
        Destination::Slack { url } => assert_eq!(url.expose(), "https://hooks.slack.com/services/T0/B0/sekrit"),
        d => panic!("{d:?}"),
    }
    match &c.targets[3].destination {
        Destination::Telegram { api_url, token, chat_id } => {
            assert_eq!((api_url.as_str(), token.expose()), ("http://127.0.0.1:9", "123456:AAE-secret_token"));
            assert_eq!(chat_id, &ChatId::Id(-100123));
        }
        d => panic!("{d:?}"),
    }
    assert_eq!(c.targets[2].secret_var.as_deref(), Some("MMBOT_ALERTS_TEST_TG"));
    let shown = format!("{c:?}\n{}", c.describe());
    assert!(!shown.contains("sekrit") && !shown.contains("secret_token"), "{shown}");
    assert!(shown.contains("url_env = \"MMBOT_ALERTS_TEST_SLACK\"") && shown.contains("chat_id = \"@mmbot_ops\""));
    // The description reads back as the same settings.
    let again = read(&c.describe().replace("[alerts]\n", &format!("[alerts]\n# {}\n", "again"))).unwrap();
    assert_eq!(again, c);
    let _ = std::fs::remove_dir_all(f.parent().unwrap());
}

#[test]
fn a_missing_variable_says_where_it_was_looked_for() {
    let f = env_file("missing", "OTHER=1\n");
    let e = read(&format!(
        "[alerts]\nenv_file = {:?}\n[[alerts.webhook]]\nformat = \"telegram\"\nchat_id = 42\n",
        f.display().to_string()
    ))
    .unwrap_err();
    assert!(
        e.starts_with("alerts.webhook[0].bot_token_env: TELEGRAM_BOT_TOKEN is not set")
            && e.contains(&f.display().to_string())
            && e.contains("TELEGRAM_BOT_TOKEN=..."),
        "{e}"
    );
    std::fs::write(&f, "MMBOT_ALERTS_TEST_BADTOKEN=not-a-token-at-all\n").unwrap();
    let e = read(&format!(
        "[alerts]\nenv_file = {:?}\n[[alerts.webhook]]\nformat = \"telegram\"\nchat_id = 42\n\
         bot_token_env = \"MMBOT_ALERTS_TEST_BADTOKEN\"\n",
        f.display().to_string()
    ))
    .unwrap_err();
    assert!(e.contains("bot_token_env") && e.contains("@BotFather") && !e.contains("not-a-token"), "{e}");
    let _ = std::fs::remove_dir_all(f.parent().unwrap());
}

#[test]
fn bad_values_name_the_key() {
    let hook = |extra: &str| format!("[alerts]\n[[alerts.webhook]]\nformat = \"json\"\nurl = \"http://h/\"\n{extra}");
    let two = "[alerts]\n[[alerts.webhook]]\nformat = \"json\"\nurl = \"http://h/\"\n[[alerts.webhook]]\n";
    for (text, start, hint) in [
        (
            format!("{two}format = \"teams\"\n"),
            "alerts.webhook[1].format: \"teams\"",
            "is not one of json, slack, telegram",
        ),
        (format!("{two}url = \"http://h/\"\n"), "alerts.webhook[1].format", "is missing"),
        (hook("on = [\"kill\", \"fire\"]\n"), "alerts.webhook[0].on: \"fire\"", "position_near_limit"),
        (hook("on = []\n"), "alerts.webhook[0].on", "is empty"),
        ("[alerts]\non = [\"reconnect\"]\n".into(), "alerts.on: \"reconnect\"", "is not one of"),
        (hook("retries = 11\n"), "alerts.webhook[0].retries", "from 0 to 10"),
        ("[alerts]\nretries = -1\n".into(), "alerts.retries", "from 0 to 10"),
        (hook("retry_backoff_ms = 0\n"), "alerts.webhook[0].retry_backoff_ms", "from 1"),
        (hook("timeout_ms = 50\n"), "alerts.webhook[0].timeout_ms", "from 100"),
        (hook("max_per_minute = 0\n"), "alerts.webhook[0].max_per_minute", "from 1"),
        (hook("min_interval_s = -1\n"), "alerts.webhook[0].min_interval_s", "from 0"),
        ("[alerts]\ndisconnect_after_s = 0\n".into(), "alerts.disconnect_after_s", "from 1 to 3600"),
        ("[alerts]\ndisconnect_after_s = 3601\n".into(), "alerts.disconnect_after_s", "from 1 to 3600"),
        ("[alerts]\nresync_storm_count = 0\n".into(), "alerts.resync_storm_count", "from 1"),
        ("[alerts]\nresync_storm_window_s = 0\n".into(), "alerts.resync_storm_window_s", "from 1"),
        ("[alerts]\nposition_near_pct = 101\n".into(), "alerts.position_near_pct", "from 1 to 100"),
        ("[alerts]\nposition_near_pct = 0\n".into(), "alerts.position_near_pct", "from 1 to 100"),
        ("[alerts]\nenv_file = \"\"\n".into(), "alerts.env_file", "path"),
        (hook("url_env = \"X\"\n"), "alerts.webhook[0].url", "is set with url_env"),
        (hook("chat_id = 5\n"), "alerts.webhook[0].chat_id", "format = \"telegram\""),
        (hook("name = \"\"\n"), "alerts.webhook[0].name", "1 to 64"),
        ("[alerts]\n[[alerts.webhook]]\nformat = \"slack\"\n".into(), "alerts.webhook[0].url", "url_env"),
        (
            "[alerts]\n[[alerts.webhook]]\nformat = \"slack\"\nurl = \"http://hooks.slack.com/services/x\"\n".into(),
            "alerts.webhook[0].url",
            "must be https://",
        ),
        (
            "[alerts]\n[[alerts.webhook]]\nformat = \"json\"\nurl = \"hooks.example.com/x\"\n".into(),
            "alerts.webhook[0].url",
            "not a URL",
        ),
        (
            "[alerts]\n[[alerts.webhook]]\nformat = \"slack\"\nurl_env = \"https://hooks.slack.com/x\"\n".into(),
            "alerts.webhook[0].url_env",
            "NAME of an environment variable",
        ),
        (
            "[alerts]\n[[alerts.webhook]]\nformat = \"telegram\"\nurl = \"https://x/\"\n".into(),
            "alerts.webhook[0].url",
            "bot_token_env, chat_id",
        ),
        ("[alerts]\n[[alerts.webhook]]\nformat = \"telegram\"\n".into(), "alerts.webhook[0].chat_id", "is missing"),
        (
            "[alerts]\n[[alerts.webhook]]\nformat = \"telegram\"\nchat_id = \"my channel\"\n".into(),
            "alerts.webhook[0].chat_id",
            "@channelusername",
        ),
        (
            "[alerts]\n[[alerts.webhook]]\nformat = \"telegram\"\nchat_id = 1\napi_url = \"http://api.telegram.org\"\n"
                .into(),
            "alerts.webhook[0].api_url",
            "must be https://",
        ),
        (
            format!(
                "{two}name = \"a\"\nformat = \"json\"\nurl = \"http://h/\"\n[[alerts.webhook]]\nname = \"a\"\n\
                     format = \"json\"\nurl = \"http://h/\"\n"
            ),
            "alerts.webhook[2].name",
            "names another entry",
        ),
    ] {
        let e = read(&text).unwrap_err();
        assert!(e.starts_with(start) && e.contains(hint), "{text}\n=> {e}");
    }
    // Unknown keys are refused by name, in the section and in an entry.
    assert!(read("[alerts]\nfrequency = 1\n").unwrap_err().contains("frequency"));
    assert!(read(&hook("colour = 1\n")).unwrap_err().contains("colour"));
    // A URL refused is never quoted (a Slack URL's path is its secret).
    let e = read("[alerts]\n[[alerts.webhook]]\nformat = \"slack\"\nurl = \"http://h/services/SEKRIT\"\n").unwrap_err();
    assert!(!e.contains("SEKRIT"), "{e}");
}

#[test]
fn chat_ids_and_token_shapes() {
    let id = |c: RawChatId| chat_id_of("k", &c).map_err(|e| e.to_string());
    assert_eq!(id(RawChatId::Int(-100)).unwrap(), ChatId::Id(-100));
    assert_eq!(id(RawChatId::Text(" -1001234 ".into())).unwrap(), ChatId::Id(-1_001_234));
    assert_eq!(id(RawChatId::Text("@mmbot_alerts".into())).unwrap(), ChatId::Name("@mmbot_alerts".into()));
    assert_eq!(ChatId::Name("@abcd".into()).to_json(), serde_json::json!("@abcd"));
    assert_eq!(ChatId::Id(7).to_json(), serde_json::json!(7));
    for bad in [RawChatId::Int(0), RawChatId::Text("@ab".into()), RawChatId::Text("chan".into())] {
        assert!(id(bad).is_err());
    }
    assert!(token_shape("123456789:AAE_x-Y") && !token_shape(":x") && !token_shape("12:") && !token_shape("a:b"));
    assert!(!token_shape("12:a b") && !token_shape("12345"));
}
