//! A paced replay names the machine it ran on, on stderr and in its report
//! (`perf.clock.host`): paced latencies are the host's as much as mmbot's,
//! and runs on different hosts must not be compared (docs/performance.md,
//! "A second host"). Only the shape is checked, never a timing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `mmbot <command> <the sample recording> <args>` in `dir`.
fn on_sample(command: &str, args: &[&str], dir: &Path) -> Output {
    let sample: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .arg(command)
        .arg(&sample)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs mmbot")
}

#[test]
fn a_paced_replay_reports_its_host() {
    let dir = common::temp_dir("replay-host");
    // The sample spans 0.9 s of recorded time; at --speed 4 a quarter of it.
    let out = on_sample("replay", &["--speed", "4", "--report", "report.json"], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report = std::fs::read_to_string(dir.join("report.json"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "mmbot replay failed: {stderr}");
    let line = stderr.lines().find(|l| l.starts_with("mmbot replay: host: ")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("logical core"), "{line}");
    let j: serde_json::Value = serde_json::from_str(&report.expect("report written")).expect("report is JSON");
    let host = &j["perf"]["clock"]["host"];
    assert!(host["cpu"].as_str().is_some_and(|c| !c.is_empty() && line.contains(c)), "{host} / {line}");
    assert!(host["cores"].as_u64().is_some_and(|c| c >= 1), "{host}");
    assert!(host["hypervisor"].is_boolean(), "{host}");
}

#[test]
fn a_report_written_before_the_host_was_recorded_still_reads() {
    // `mmbot report` reads older reports: `perf.clock` without `host`.
    let dir = common::temp_dir("replay-host-old");
    let bt = on_sample("backtest", &["--report", "report.json", "--out", "out"], &dir);
    assert!(bt.status.success(), "{}", String::from_utf8_lossy(&bt.stderr));
    let path = dir.join("report.json");
    let mut j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(j["perf"]["clock"]["host"].is_object(), "a new report records the host");
    j["perf"]["clock"].as_object_mut().unwrap().remove("host");
    std::fs::write(&path, serde_json::to_string(&j).unwrap()).unwrap();
    let shown = Command::new(env!("CARGO_BIN_EXE_mmbot")).args(["report", "report.json"]).current_dir(&dir).output();
    let _ = std::fs::remove_dir_all(&dir);
    let shown = shown.expect("runs mmbot");
    assert!(shown.status.success(), "an older report must still read: {}", String::from_utf8_lossy(&shown.stderr));
}
