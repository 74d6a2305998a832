//! A run whose stderr goes away (its reader closed: `mmbot live 2>&1 | tee
//! run.txt` with `tee` killed) goes on to its normal end. `eprintln!`
//! panics on such a write, and the release build aborts on any panic, which
//! would leave live orders working; mmbot writes operator lines through
//! `say!` (src/logging.rs), which drops them instead.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_paced_replay_runs_to_its_end_after_stderr_is_closed() {
    let dir = common::temp_dir("stderr-gone");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    // The sample spans 0.9 s of recorded time: at half speed about 1.8 s,
    // so status lines and the summary are written after the pipe closed.
    let child = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .arg("replay")
        .arg(&sample)
        .args(["--speed", "0.5", "--report", "report.json"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs mmbot");
    let mut child = common::KillOnDrop(child);
    // Close the only reader: every later write to stderr fails (EPIPE).
    drop(child.0.stderr.take());
    let status = child.exit_within(Duration::from_secs(60));
    let report = std::fs::read_to_string(dir.join("report.json"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "mmbot replay with its stderr closed ended with {status}");
    let j: serde_json::Value = serde_json::from_str(&report.expect("the report was written")).expect("report is JSON");
    assert!(j["perf"]["latency_ns"]["tick_to_quote"]["count"].as_u64().is_some_and(|n| n > 0), "quotes were made");
}
