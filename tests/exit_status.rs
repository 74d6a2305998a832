//! Failures never exit 0: each command that did not do its job says why in
//! one line and exits with the status README "Exit statuses" gives it.

mod common;

use std::path::Path;
use std::process::Command;

fn mmbot(args: &[&str], cwd: &Path) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(args)
        .current_dir(cwd)
        .env_remove("MMBOT_CONFIG")
        .output()
        .unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn a_paper_run_that_never_connected_exits_2() {
    // Nothing listens on port 1 of loopback: every connect is refused.
    let dir = common::temp_dir("exit-never-connected");
    let (code, err) = mmbot(
        &[
            "paper",
            "--symbol",
            "BTCUSDT",
            "--stream-url",
            "ws://127.0.0.1:1",
            "--rest-url",
            "http://127.0.0.1:1",
            "--duration",
            "2s",
            "--no-dashboard",
            "--out",
            dir.join("out").to_str().unwrap(),
        ],
        &dir,
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.matches("never connected to ws://127.0.0.1:1").count(), 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_backtest_of_a_symbol_the_data_lacks_exits_8() {
    let Some(files) = common::recordings("exit_status") else { return };
    let Some(nkn) = files.iter().find(|p| p.to_string_lossy().contains("spot_nknusdt")) else {
        return common::skip(format_args!("exit_status: spot_nknusdt.gz not in ../shared/data"));
    };
    let dir = common::temp_dir("exit-nothing-traded");
    let cfg = dir.join("eth.toml");
    std::fs::write(&cfg, "[market]\nsymbol = \"ETHUSDT\"\n").unwrap();
    let report = dir.join("r.json");
    let (code, err) = mmbot(
        &["backtest", nkn.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--report", report.to_str().unwrap()],
        &dir,
    );
    assert_eq!(code, Some(8), "{err}");
    assert!(err.contains("ETHUSDT is not in the recordings (they carry NKNUSDT)"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_replay_of_a_file_it_cannot_serve_fails_at_once() {
    let dir = common::temp_dir("exit-sim-replay");
    let junk = dir.join("junk.txt");
    std::fs::write(&junk, "hello\n").unwrap();
    let (code, err) = mmbot(&["sim", "--replay", junk.to_str().unwrap(), "--listen", "127.0.0.1:0"], &dir);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no depth frames for BTCUSDT") && err.contains("none at all"), "{err}");
    let (code, err) = mmbot(&["sim", "--replay", dir.join("nope.gz").to_str().unwrap()], &dir);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no such file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_of_a_missing_file_fails_before_starting_anything() {
    let dir = common::temp_dir("exit-replay-missing");
    let (code, err) = mmbot(&["replay", "nope.gz"], &dir);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot replay nope.gz"), "{err}");
    assert!(!err.contains("frames in"), "a run started: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn record_does_not_overwrite_without_force() {
    let dir = common::temp_dir("exit-record-force");
    std::fs::write(dir.join("old.gz"), "precious").unwrap();
    let (code, err) = mmbot(&["record", "--symbol", "BTCUSDT", "--out", "old.gz"], &dir);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("old.gz")).unwrap(), "precious");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn only_run_lists_the_live_flags() {
    let dir = common::temp_dir("exit-help");
    let help = |cmd: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_mmbot")).args([cmd, "--help"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let (paper, run) = (help("paper"), help("run"));
    for flag in ["--live", "--yes", "--dry-run"] {
        assert!(!paper.contains(flag), "paper --help lists {flag}:\n{paper}");
        assert!(run.contains(flag), "run --help lacks {flag}:\n{run}");
    }
    assert_eq!(mmbot(&["paper", "--live"], &dir).0, Some(64));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_whose_script_fails_on_most_calls_exits_9() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let dir = common::temp_dir("exit-script-fails");
    let script = dir.join("broken.rhai");
    // Compiles, then fails on every call: `m.nope` is no getter.
    std::fs::write(&script, "fn quote(m) { bid(m.nope, 1.0); }\n").unwrap();
    let report = dir.join("r.json");
    let args = ["backtest", sample.to_str().unwrap(), "--script", script.to_str().unwrap()];
    let (code, err) = mmbot(&[&args[..], &["--report", report.to_str().unwrap()]].concat(), &dir);
    assert_eq!(code, Some(9), "{err}");
    assert!(err.contains("broken.rhai") && err.contains("max_error_share"), "{err}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let t = &r["trading"];
    assert!(t["strategy_errors"].as_u64().unwrap() > 0, "{t}");
    assert_eq!(t["strategy_errors"], t["strategy_calls"], "{t}");
    // The same with the share raised to 1: the run is allowed to fail.
    std::fs::write(dir.join("lenient.toml"), "[script]\nmax_error_share = 1.0\n").unwrap();
    let (code, err) = mmbot(&[&args[..], &["--config", "lenient.toml", "--report", "r2.json"]].concat(), &dir);
    assert_ne!(code, Some(9), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_recording_that_never_connected_exits_2() {
    let dir = common::temp_dir("exit-record-never");
    let (code, err) = mmbot(
        &[
            "record",
            "--symbol",
            "BTCUSDT",
            "--stream-url",
            "ws://127.0.0.1:1",
            "--rest-url",
            "http://127.0.0.1:1",
            "--duration",
            "2s",
            "--out",
            "r.gz",
        ],
        &dir,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("never connected to ws://127.0.0.1:1"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
