//! `mmbot demo` end to end, headless: five seconds against the in-process
//! simulator, then the outputs it promises must exist and make sense, and
//! `mmbot report` must re-render them.

use std::process::Command;

#[test]
fn demo_runs_offline_and_leaves_sane_outputs() {
    let out = std::env::temp_dir().join(format!("mmbot-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    // No key anywhere (not the environment, not a .env in the working
    // directory): the demo must use the offline advisor and never the network.
    let run = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["demo", "--duration", "5s", "--out", "runs"])
        .current_dir(&out)
        .env_remove("HOLYSHEEP_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let dirs: Vec<_> = std::fs::read_dir(out.join("runs")).unwrap().filter_map(|e| e.ok()).collect();
    assert_eq!(dirs.len(), 1, "one timestamped folder");
    let dir = dirs[0].path();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let frames = report["input"]["frames"].as_u64().unwrap();
    let quotes = report["trading"]["quotes"].as_u64().unwrap();
    assert!(frames > 100, "frames {frames}\n{stderr}");
    assert!(quotes > 10, "quotes {quotes}\n{stderr}");
    assert_eq!(report["input"]["rejected"].as_u64(), Some(0));
    assert!(report["trading"]["strategy"].as_str().unwrap().contains("default.rhai"));
    assert_eq!(report["trading"]["advice"].as_str(), Some("offline"), "{stderr}");
    assert!(report["trading"]["advice_updates"].as_u64().unwrap() >= 1, "the advisor ran");
    let t2q = &report["perf"]["latency_ns"]["tick_to_quote"];
    assert!(t2q["count"].as_u64().unwrap() > 10 && t2q["p50"].as_u64().unwrap() > 0);
    assert!(report["perf"]["latency_ns"]["wire"]["count"].as_u64().unwrap() > 100);
    assert!(report["perf"]["timeline"].as_array().is_some_and(|t| t.len() >= 3));
    for f in ["tick_to_quote.hgrm", "parse.hgrm", "wire.hgrm"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(text.contains("Percentile") && text.contains("#[Max"), "{f}");
    }
    let svg = std::fs::read_to_string(dir.join("latency.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() >= 5);
    assert!(std::fs::read_to_string(dir.join("timeline.svg")).unwrap().contains("<polyline"));

    let again = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .arg("report")
        .arg(dir.join("report.json"))
        .arg("--svg")
        .arg(out.join("svg"))
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let table = String::from_utf8_lossy(&again.stdout);
    assert!(table.contains("tick_to_quote") && table.contains("p99.9"), "{table}");
    assert!(out.join("svg/latency.svg").exists());
    let _ = std::fs::remove_dir_all(&out);
}
