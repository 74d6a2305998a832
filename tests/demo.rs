//! `mmbot demo` end to end, headless: five seconds against the in-process
//! simulator, then the outputs it promises must exist and make sense, and
//! `mmbot report` must re-render them. And the demo makes markets: on every
//! seed it fills on both sides within its first 20 s.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
        .env_remove("MMBOT_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // Offline: no LLM asked, so no warning about a missing key.
    assert!(!stderr.contains("API_KEY"), "{stderr}");
    assert!(stderr.starts_with("mmbot: config: scripts/demo.toml, the demo's own"), "{stderr}");
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
    assert!(report["trading"]["strategy"].as_str().unwrap().contains("inventory_skew.rhai"), "{stderr}");
    // The settings it ran with and its event log are in the folder.
    assert!(std::fs::read_to_string(dir.join("demo.toml")).unwrap().contains("[strategy]"));
    assert!(dir.join("events.jsonl").exists());
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

/// One headless demo of `secs` seconds on `seed` in a fresh folder; its
/// run folder and stderr. Bounded: killed after a minute past its duration.
fn demo(seed: u64, secs: u64) -> (PathBuf, String) {
    demo_with(&["--seed", &seed.to_string()], &format!("seed{seed}"), secs)
}

/// A headless demo of `secs` seconds with `extra` flags, in a fresh folder
/// named by `tag`; its run folder and stderr. Bounded: killed after a
/// minute past its duration.
fn demo_with(extra: &[&str], tag: &str, secs: u64) -> (PathBuf, String) {
    let out = std::env::temp_dir().join(format!("mmbot-demo-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let log = out.join("stderr.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["demo", "--duration", &format!("{secs}s"), "--no-dashboard"])
        .args(extra)
        .args(["--out", "runs"])
        .current_dir(&out)
        .env_remove("HOLYSHEEP_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let limit = Instant::now() + Duration::from_secs(secs + 60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.is_some_and(|s| s.success()), "{tag}: {status:?}\n{stderr}");
    let dirs: Vec<_> = std::fs::read_dir(out.join("runs")).unwrap().filter_map(|e| e.ok()).collect();
    assert_eq!(dirs.len(), 1, "{tag}: one timestamped folder");
    (dirs[0].path(), stderr)
}

/// Fills bought and sold, and the time of the first, from `events.jsonl`.
fn fills(dir: &Path) -> (u64, u64, Option<f64>) {
    let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let (mut buys, mut sells, mut first) = (0, 0, None::<f64>);
    for line in text.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        if e["kind"] != "fill" {
            continue;
        }
        let n = e["fills"].as_u64().unwrap();
        match e["side"].as_str() {
            Some("buy") => buys += n,
            Some("sell") => sells += n,
            other => panic!("a fill with side {other:?}: {line}"),
        }
        let t = e["t_s"].as_f64().unwrap();
        first = Some(first.map_or(t, |f| f.min(t)));
    }
    (buys, sells, first)
}

#[test]
fn the_demo_makes_markets_on_every_seed() {
    // Three seeds at once: each is a 20 s wall-clock run, mostly waiting.
    let runs: Vec<_> =
        [1u64, 2, 3].into_iter().map(|seed| (seed, std::thread::spawn(move || demo(seed, 20)))).collect();
    for (seed, run) in runs {
        let (dir, stderr) = run.join().unwrap();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
        let (buys, sells, first) = fills(&dir);
        assert!(buys > 0 && sells > 0, "seed {seed}: {buys} buys, {sells} sells\n{stderr}");
        assert_eq!(report["trading"]["fills"].as_u64(), Some(buys + sells), "seed {seed}: every fill logged once");
        let first = first.unwrap();
        assert!(first < 20.0, "seed {seed}: first fill after {first} s\n{stderr}");
        assert!(stderr.contains(&format!("fills: {buys} buys, {sells} sells")), "{stderr}");
        let _ = std::fs::remove_dir_all(dir.parent().unwrap().parent().unwrap());
    }
}

/// `mmbot demo --symbols 3`: three simulated markets traded from one
/// account (src/cli/demo_multi.rs): every symbol syncs and quotes, the
/// report has a section per symbol and the USDT total, nothing is refused
/// when the budgets cover the demo's sizes.
#[test]
fn the_demo_trades_three_symbols_from_one_account() {
    let (run, stderr) = demo_with(&["--symbols", "3"], "multi", 5);
    assert!(stderr.contains("3 simulated markets (BTCUSDT, ETHUSDT, BNBUSDT)"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    let symbols = report["symbols"].as_array().unwrap();
    assert_eq!(symbols.len(), 3);
    for s in symbols {
        assert!(s["report"]["trading"]["quotes"].as_u64().unwrap() > 0, "{}: no quotes", s["symbol"]);
        assert!(s["refused"].as_object().unwrap().is_empty(), "{}: {}", s["symbol"], s["refused"]);
    }
    assert_eq!(report["totals"]["USDT"]["symbols"].as_array().unwrap().len(), 3);
    // Without a terminal, the symbols dashboard's data prints as status
    // lines: one per symbol and the USDT total.
    for sym in ["BTCUSDT", "ETHUSDT", "BNBUSDT"] {
        assert!(stderr.lines().any(|l| l.starts_with("mmbot demo: ") && l.contains(&format!(" {sym} "))), "{stderr}");
    }
    assert!(stderr.contains("mmbot demo: USDT total pnl"), "{stderr}");
}
