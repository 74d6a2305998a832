//! `mmbot ai eval` and `mmbot ai compare --eval`: advice logs scored against
//! what a recording did next, paired backtests with a deterministic verdict,
//! models ranked on recorded snapshots against the loopback gateway double,
//! and exit status 2 with a clear message for unusable inputs. The core runs
//! on a synthetic recording and log built here; the real captures in
//! ../shared/data are used when present.

mod ai_server;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ai_server::{Reply, Server, CLEAN};
use mmbot::ai::eval::calls::{minimal_line, read_calls};
use mmbot::ai::eval::compare::compare_eval;
use mmbot::ai::eval::render::{compare_text, eval_text};
use mmbot::ai::eval::{evaluate, EvalError, EvalOptions};
use mmbot::ai::{AiConfig, Provider};
use mmbot::config::Config;
use mmbot::feed::synthetic;
use mmbot::hot::advice::{Advice, AdviceSource, Direction, SpreadState, Volatility};

const TTL: i64 = 15_000_000_000;

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mmbot-ai-eval-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A synthetic BTCUSDT recording: `n` diffs 100 ms apart (n / 10 seconds).
fn recording(d: &Path, n: usize) -> PathBuf {
    let path = d.join("rec.txt");
    let mut text = String::new();
    for (ts, frame) in synthetic::spot_frames(n, 7) {
        text.push_str(&format!("{ts} {}\n", String::from_utf8(frame).unwrap()));
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn advice(t: i64, i: usize) -> Advice {
    Advice {
        spread: [SpreadState::Normal, SpreadState::Wide, SpreadState::Narrow][i % 3],
        volatility: [Volatility::Low, Volatility::Medium][i % 2],
        direction: [Direction::Sideways, Direction::Up, Direction::Down, Direction::Neutral][i % 4],
        confidence: 60 + (i % 4) as u8 * 10,
        multiplier: 1.0,
        source: AdviceSource::Llm,
        received_ns: t,
        ttl_ns: TTL,
        apply_multiplier: false,
    }
}

/// A call every 5 s from 5 s to `until_s`: each costs 0.001 USD (the 3rd
/// estimated), the 4th failed (no advice).
fn log(d: &Path, until_s: i64) -> PathBuf {
    let path = d.join("advice.jsonl");
    let mut text = String::new();
    for (i, s) in (5..=until_s).step_by(5).enumerate() {
        let t = s * 1_000_000_000;
        let a = (i != 3).then(|| advice(t, i));
        text.push_str(&minimal_line(t, a.as_ref(), Some(0.001), i == 2));
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary in `cwd` (a test's own folder: no stray mmbot.toml).
fn mmbot(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(args)
        .env_remove("MMBOT_CONFIG")
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_synthetic_log_is_scored_against_what_happened_next() {
    let d = dir("score");
    // 60 s of market; calls at 5..60 s: those after 45 s run past the end.
    let rec = recording(&d, 600);
    let log = log(&d, 60);
    let calls = read_calls(&log).unwrap();
    assert_eq!(calls.calls.len(), 12);
    let r = evaluate(&log, &[rec], &Config::default(), &EvalOptions::default()).unwrap();
    assert_eq!(r.calls, 12);
    assert_eq!(r.excluded.no_advice, 1, "the failed call");
    // Windows ending after the last frame (59.9 s): calls at 45 (ends 60 s), 50, 55, 60.
    assert_eq!(r.excluded.past_end, 4);
    assert_eq!(r.judged, 7);
    assert_eq!(r.fields.len(), 3);
    for f in &r.fields {
        let total: u64 = f.confusion.iter().flatten().sum();
        assert_eq!(total, 7, "{} confusion counts every judged call", f.field);
        assert!(f.majority_accuracy >= 1.0 / 3.0 && f.majority_accuracy <= 1.0);
        assert!(f.brier.is_some() && f.offline_brier.is_some());
    }
    // The cost of the calls in the recording's span (the one at 60 s is
    // after its last frame): 11 x 0.001, the third estimated.
    assert!((r.cost_usd - 0.011).abs() < 1e-12 && (r.cost_estimated_usd - 0.001).abs() < 1e-12, "{r:?}");
    let p = r.paired.as_ref().unwrap();
    assert_eq!(p.legs.iter().map(|l| l.name).collect::<Vec<_>>(), ["advice log", "offline rules", "no advice"]);
    assert!((p.legs[0].net - (p.legs[0].pnl - 0.011)).abs() < 1e-9);
    assert!(
        p.verdict.starts_with("advice added ") && p.verdict.contains("over none, cost 0.011000 USDT"),
        "{}",
        p.verdict
    );
    assert!(p.verdict.contains("0.001000 estimated"), "{}", p.verdict);
    assert_eq!(p.legs[2].advice_updates, 0);
    assert!(p.legs[0].advice_updates > 0);
    assert_eq!((r.dropped, r.mid_mismatches), (0, 0));
    let text = eval_text(&r);
    for want in ["always-majority", "confusion:", "volatility: realised per-event volatility", "verdict: advice added"]
    {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_log_from_another_market_is_flagged() {
    let d = dir("mismatch");
    let rec = recording(&d, 300);
    // The log says the mid was 1.0 (the synthetic book is near 100,000) and
    // one reply was dropped as late.
    let path = d.join("advice.jsonl");
    let mut text = String::new();
    for (i, s) in [5i64, 10].into_iter().enumerate() {
        let t = s * 1_000_000_000;
        let mut v: serde_json::Value =
            serde_json::from_str(&minimal_line(t, Some(&advice(t, i)), None, false)).unwrap();
        v["market"] = serde_json::json!({"time_ns": t, "mid": 1.0});
        v["dropped"] = if i == 1 { "late".into() } else { serde_json::Value::Null };
        text.push_str(&format!("{v}\n"));
    }
    std::fs::write(&path, text).unwrap();
    let r = evaluate(&path, &[rec], &Config::default(), &EvalOptions { backtests: false, ..EvalOptions::default() })
        .unwrap();
    assert_eq!((r.judged, r.mid_mismatches, r.dropped), (2, 2, 1));
    assert!(r.paired.is_none());
    let text = eval_text(&r);
    assert!(text.contains("WARNING") && text.contains("dropped"), "{text}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_same_inputs_give_byte_identical_output() {
    let d = dir("determinism");
    let rec = recording(&d, 400);
    let log = log(&d, 40);
    let run = |n: &str| {
        let json = d.join(format!("eval{n}.json"));
        let (code, out, err) = mmbot(
            &d,
            &["ai", "eval", "--log", log.to_str().unwrap(), rec.to_str().unwrap(), "--json", json.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{err}");
        (out, std::fs::read(&json).unwrap())
    };
    let (a, b) = (run("1"), run("2"));
    assert!(a.0.contains("verdict: advice added"), "{}", a.0);
    assert_eq!(a.0, b.0, "text output differs between runs");
    assert_eq!(a.1, b.1, "JSON output differs between runs");
    let v: serde_json::Value = serde_json::from_slice(&a.1).unwrap();
    assert_eq!(v["paired"]["legs"].as_array().unwrap().len(), 3);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn unusable_inputs_exit_2_saying_what_is_wrong() {
    let d = dir("inputs");
    let rec = recording(&d, 200);
    let good = log(&d, 10);
    let r = rec.to_str().unwrap();
    let eval = |log: &Path, rec: &str| mmbot(&d, &["ai", "eval", "--no-backtest", "--log", log.to_str().unwrap(), rec]);

    let (code, _, err) = eval(&d.join("missing.jsonl"), r);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.jsonl does not exist"), "{err}");

    let garbled = d.join("garbled.jsonl");
    std::fs::write(&garbled, "this is not json\n{\"advice\":null,\"snapshot_ns\":1}\n").unwrap();
    let (code, _, err) = eval(&garbled, r);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("garbled.jsonl line 1 is not an advice record"), "{err}");

    let empty_rec = d.join("empty.txt");
    std::fs::write(&empty_rec, "").unwrap();
    let (code, _, err) = eval(&good, empty_rec.to_str().unwrap());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("hold no frames"), "{err}");

    // A log of another day: both ranges are named.
    let later = d.join("later.jsonl");
    let day = 86_400_000_000_000i64;
    std::fs::write(&later, minimal_line(1_723_161_256_000_000_000 + day, Some(&advice(0, 0)), None, false) + "\n")
        .unwrap();
    let (code, _, err) = eval(&later, r);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("do not overlap the recording"), "{err}");
    assert!(err.contains("2024-08-09T23:54:16") && err.contains("1 ns .. 19900000001 ns"), "{err}");

    // The library says the same.
    assert!(matches!(
        evaluate(&later, std::slice::from_ref(&rec), &Config::default(), &EvalOptions::default()),
        Err(EvalError::NoOverlap { .. })
    ));
    let _ = std::fs::remove_dir_all(&d);
}

const KEY_VAR: &str = "MMBOT_TEST_EVAL_KEY";

fn llm_config(base_url: &str, d: &Path) -> Config {
    let env_file = d.join("test.env");
    std::fs::write(&env_file, format!("{KEY_VAR}=sk-eval-test-key-0000000000\n")).unwrap();
    let ai = AiConfig {
        provider: Provider::Custom,
        base_url: Some(base_url.to_string()),
        key_var: KEY_VAR.to_string(),
        env_file,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retries: 0,
        backoff: Duration::from_millis(10),
        ..AiConfig::default()
    };
    Config { ai, ..Config::default() }
}

#[test]
fn compare_eval_ranks_models_on_recorded_snapshots() {
    let d = dir("compare");
    let rec = recording(&d, 400);
    // "steady" always says the same; "flaky" alternates; "broken" is refused.
    let server = Server::start(|n, req| match req.json()["model"].as_str() {
        Some("broken") => Reply::status(404, r#"{"error":{"message":"model not found"}}"#),
        Some("flaky") if n % 2 == 0 => Reply::chat(&CLEAN.replace("\"up\"", "\"down\"")),
        _ => Reply::chat(CLEAN),
    });
    let config = llm_config(&server.base_url(), &d);
    let models: Vec<String> = ["broken", "flaky", "steady"].map(String::from).to_vec();
    let r = compare_eval(&config, &models, std::slice::from_ref(&rec), 2, 3, 2.0).unwrap();
    assert_eq!((r.snapshots, r.trials), (3, 2));
    assert_eq!(server.count(), 3 * 2 * 3, "every model asked every snapshot twice");
    let by = |m: &str| r.models.iter().find(|s| s.model == m).unwrap();
    assert_eq!((by("steady").answered, by("steady").agreement), (6, 1.0));
    assert_eq!(by("broken").answered, 0);
    assert!(by("broken").first_error.as_deref().unwrap().contains("404"));
    assert_eq!(r.models.last().unwrap().model, "broken", "a model that never answers ranks last");
    assert!(by("steady").latency_p50_ms.is_some() && by("steady").cost_usd.is_some());
    let text = compare_text(&r);
    assert!(text.contains("offline rules") && text.contains("always-majority"), "{text}");

    // Through the command line too.
    let cfg = d.join("mmbot.toml");
    std::fs::write(
        &cfg,
        format!(
            "[ai]\nprovider = \"custom\"\nbase_url = \"{}\"\napi_key_env = \"{KEY_VAR}\"\nenv_file = \"{}\"\nretries = 0\n",
            server.base_url(),
            d.join("test.env").display()
        ),
    )
    .unwrap();
    let (code, out, err) = mmbot(
        &d,
        &[
            "ai",
            "compare",
            "--models",
            "steady",
            "--eval",
            rec.to_str().unwrap(),
            "--trials",
            "1",
            "--snapshots",
            "2",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("2 snapshots") && out.contains("steady"), "{out}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_real_capture_scores_its_own_offline_advice() {
    let Some(files) = common::recordings("a_real_capture_scores_its_own_offline_advice") else { return };
    let Some(nkn) = files.into_iter().find(|p| p.to_string_lossy().contains("spot_nknusdt")) else {
        common::skip(format_args!("a_real_capture_scores_its_own_offline_advice: spot_nknusdt.gz is absent"));
        return;
    };
    let d = dir("real");
    // Snapshot times from the capture itself: every 2 s of its first 20 s.
    let config = Config::default();
    let probe = mmbot::ai::eval::outcome::walk(std::slice::from_ref(&nkn), &config, &[]).unwrap();
    let (from, _) = probe.depth_span().unwrap();
    let path = d.join("advice.jsonl");
    let mut text = String::new();
    for i in 0..10 {
        let t = from + i * 2_000_000_000;
        let a = Advice { ttl_ns: 5_000_000_000, ..advice(t, i as usize) };
        text.push_str(&(minimal_line(t, Some(&a), Some(0.0005), false) + "\n"));
    }
    std::fs::write(&path, text).unwrap();
    let r = evaluate(&path, &[nkn], &config, &EvalOptions::default()).unwrap();
    assert_eq!(r.symbol, "NKNUSDT");
    assert!(r.judged > 0 && r.judged + r.excluded.past_end == 10, "{r:?}");
    assert!(r.paired.as_ref().unwrap().verdict.contains("USDT over none"));
    let _ = std::fs::remove_dir_all(&d);
}
