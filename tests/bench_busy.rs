//! `mmbot bench --profile busy`: the BTCUSDT-shaped synthetic stream runs
//! end to end through the real binary and reports what it measured. Only the
//! report's shape is checked, never a timing (a debug build, a shared CI box).

mod common;

use std::process::Command;

#[test]
fn bench_busy_reports_tick_to_quote_and_frames_by_kind() {
    // An empty folder: no ./mmbot.toml from the repository is picked up.
    let dir = common::temp_dir("bench-busy");
    let out = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["bench", "--profile", "busy", "--events", "2000", "--json"])
        .current_dir(&dir)
        .output()
        .expect("runs mmbot");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mmbot bench --profile busy failed: {stderr}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(j["profile"], "busy");
    assert!(j["input"].as_str().unwrap().starts_with("busy: 2000 "), "{}", j["input"]);
    let t2q = &j["latency_ns"]["tick_to_quote"];
    for p in ["count", "p50", "p90", "p99", "p999", "max"] {
        assert!(t2q[p].is_u64(), "tick_to_quote.{p} missing: {t2q}");
    }
    assert!(t2q["count"].as_u64().unwrap() > 0, "no quotes timed: {t2q}");
    let n = |k: &str| j["frame_counts"][k].as_u64().unwrap_or_else(|| panic!("frame_counts.{k}: {j}"));
    assert_eq!((n("depth"), n("other")), (2_000, 1), "2,000 diffs and the snapshot");
    // ~11 bookTickers and ~3 trades per diff, as on the real stream.
    assert!((20_000..=24_000).contains(&n("bookTicker")), "{} bookTickers", n("bookTicker"));
    assert!((5_000..=7_000).contains(&n("trade")), "{} trades", n("trade"));
    assert_eq!(j["frames"].as_u64(), Some(n("depth") + n("bookTicker") + n("trade") + n("other")));
    // The machine the figures were made on, so runs on different hosts are
    // not compared.
    let host = &j["host"];
    assert!(host["cpu"].as_str().is_some_and(|c| !c.is_empty()), "host.cpu: {host}");
    assert!(host["cores"].as_u64().is_some_and(|c| c >= 1), "host.cores: {host}");
    assert!(host["hypervisor"].is_boolean(), "host.hypervisor: {host}");
    assert!(host["tsc_ghz"].is_null() || host["tsc_ghz"].as_f64().is_some_and(|g| g > 0.0), "host.tsc_ghz: {host}");
}

#[test]
fn bench_prints_the_host_it_ran_on() {
    let dir = common::temp_dir("bench-host");
    let out = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["bench", "--events", "500"])
        .current_dir(&dir)
        .output()
        .expect("runs mmbot");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "mmbot bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let host = stdout.lines().find(|l| l.starts_with("host: ")).unwrap_or_else(|| panic!("no host line:\n{stdout}"));
    assert!(host.contains("logical core"), "{host}");
}
