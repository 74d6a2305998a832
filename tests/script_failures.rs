//! Failures a quant can see (scripts issue, "Failures you can see"): each
//! way a strategy script fails is run through the real binary on a small
//! recording, and the test asserts the message, the counter in report.json's
//! `script` section and the exit status.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use mmbot::script::health::{event_ring, EventKind, Logger};
use mmbot::script::{compile, engine, MarketState, ScriptLimits, ScriptStrategy, REVERT_AFTER};

/// Frames in the synthetic recording: one snapshot, then this many depth
/// updates (each a strategy call once the book is synced).
const UPDATES: u64 = 150;

/// A BTCUSDT recording: one depth update, the snapshot it syncs from, then
/// [`UPDATES`] depth updates in sequence, 10 ms apart, the bid size
/// changing each time.
fn recording(dir: &Path) -> PathBuf {
    let t0: u64 = 1_723_161_255_000_000_000;
    let update = |i: u64| {
        let id = 1000 + i;
        let t = t0 + i * 10_000_000 + 5_000_000;
        format!(
            "{t} {{\"stream\":\"btcusdt@depth@100ms\",\"data\":{{\"e\":\"depthUpdate\",\"E\":{},\"s\":\"BTCUSDT\",\
             \"U\":{id},\"u\":{id},\"b\":[[\"100.00000000\",\"{}.00000000\"]],\"a\":[]}}}}\n",
            t / 1_000_000,
            1 + i % 5
        )
    };
    let mut text = update(0);
    text.push_str(&format!(
        "{} {{\"lastUpdateId\":1000,\"bids\":[[\"100.00000000\",\"1.00000000\"],[\"99.99000000\",\"2.00000000\"]],\
         \"asks\":[[\"100.02000000\",\"1.00000000\"],[\"100.03000000\",\"2.00000000\"]]}}\n",
        t0 + 1_000_000
    ));
    for i in 1..=UPDATES {
        text.push_str(&update(i));
    }
    let path = dir.join("synthetic.rec");
    std::fs::write(&path, text).unwrap();
    path
}

struct Run {
    code: Option<i32>,
    stderr: String,
    report: serde_json::Value,
}

/// `mmbot <command> REC --script s.rhai --report r.json` in a fresh folder.
fn run(test: &str, command: &str, script: &str) -> Run {
    let dir = common::temp_dir(test);
    let rec = recording(&dir);
    std::fs::write(dir.join("s.rhai"), script).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args([command, rec.to_str().unwrap(), "--script", "s.rhai", "--report", "r.json"])
        .current_dir(&dir)
        .env_remove("MMBOT_CONFIG")
        .env_remove("MMBOT_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let text =
        std::fs::read_to_string(dir.join("r.json")).unwrap_or_else(|e| panic!("{test}: no report ({e}): {stderr}"));
    let report = serde_json::from_str(&text).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Run { code: o.status.code(), stderr, report }
}

#[test]
fn a_script_that_errors_on_every_call_says_where_counts_it_and_exits_9() {
    let r = run("fail-every-call", "backtest", "fn quote(m) {\n  bid(m.nope, 1.0);\n}\n");
    assert_eq!(r.code, Some(9), "{}", r.stderr);
    assert!(r.stderr.contains("max_error_share"), "{}", r.stderr);
    let s = &r.report["script"];
    let calls = s["calls"].as_u64().unwrap();
    assert!(calls >= 100, "{s}");
    assert_eq!(s["errors"].as_u64(), Some(calls), "{s}");
    assert_eq!(s["file"], "s.rhai");
    assert_eq!(s["compiled"], false, "{s}");
    assert!(s["not_compiled_reason"].as_str().unwrap().contains("getter"), "{s}");
    assert_eq!(s["hash"].as_str().unwrap().len(), 16, "{s}");
    // One distinct error, at its place, counted on every call.
    let e = &s["errors_by_message"];
    assert_eq!(e.as_array().unwrap().len(), 1, "{s}");
    assert_eq!((e[0]["line"].as_u64(), e[0]["col"].as_u64(), e[0]["count"].as_u64()), (Some(2), Some(9), Some(calls)));
    assert_eq!(e[0]["kind"], "property");
    let msg = e[0]["message"].as_str().unwrap();
    assert!(msg.starts_with("s.rhai:2:9: Unknown property 'nope'"), "{msg}");
    // The human summary names it too.
    assert!(
        r.stderr.contains(&format!("script: s.rhai (fnv1a {}, interpreted)", &s["hash"].as_str().unwrap()[..8])),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(msg), "{}", r.stderr);
}

#[test]
fn a_script_whose_output_is_no_quote_counts_its_kind_and_exits_9() {
    let r = run("fail-bad-output", "backtest", "fn quote(m) {\n  \"buy\"\n}\n");
    assert_eq!(r.code, Some(9), "{}", r.stderr);
    assert!(r.stderr.contains("wrong-shaped outputs"), "{}", r.stderr);
    let s = &r.report["script"];
    let calls = s["calls"].as_u64().unwrap();
    assert!(calls >= 100 && s["bad_outputs"].as_u64() == Some(calls), "{s}");
    assert_eq!(s["bad_outputs_by_kind"]["not_a_quote"].as_u64(), Some(calls), "{s}");
    assert_eq!(s["errors"].as_u64(), Some(0), "{s}");
}

#[test]
fn a_script_that_never_quotes_exits_9_and_says_why() {
    let r = run("never-quotes", "backtest", "fn quote(m) {\n  if m.mid < 0.0 { bid(m.mid, 1.0); }\n  pull();\n}\n");
    assert_eq!(r.code, Some(9), "{}", r.stderr);
    let s = &r.report["script"];
    assert_eq!(
        (s["never_quoted"].as_bool(), s["quoted"].as_u64(), s["errors"].as_u64()),
        (Some(true), Some(0), Some(0))
    );
    assert!(s["calls"].as_u64().unwrap() >= 100, "{s}");
    let why = r.stderr.lines().find(|l| l.contains("never quoted:")).unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(why.contains("s.rhai") && why.contains("calls asked for a bid or an ask"), "{why}");
    // A script that quotes is not flagged.
    let ok = run("quotes", "backtest", "fn quote(m) {\n  bid(m.best_bid - 1.0, 0.001);\n}\n");
    assert_eq!(ok.report["script"]["never_quoted"], false, "{}", ok.report["script"]);
    assert_ne!(ok.code, Some(9), "{}", ok.stderr);
}

#[test]
fn an_operation_limit_error_points_at_the_line_that_hit_it() {
    let src = "fn quote(m) {\n  let x = 0;\n  loop {\n    x += 1;\n  }\n}\n";
    let r = run("ops-limit", "backtest", src);
    assert_eq!(r.code, Some(9), "{}", r.stderr);
    let e = &r.report["script"]["errors_by_message"][0];
    assert_eq!(e["kind"], "too_many_operations", "{e}");
    // `x += 1` inside the loop: the statement running when the cap was hit.
    assert_eq!(e["line"].as_u64(), Some(4), "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.starts_with("s.rhai:4:") && msg.contains("Too many operations (line 4,"), "{msg}");
    assert!(!msg.contains("line 1, position 1"), "{msg}");
}

#[test]
fn a_threaded_replay_logs_the_first_error_with_its_place_and_reports_it() {
    let r = run("replay-fails", "replay", "fn quote(m) {\n  let a = 1;\n  bid(m.nope, 1.0);\n}\n");
    assert_eq!(r.code, Some(9), "{}", r.stderr);
    // The first error at once, from the log thread, with file:line:col.
    assert!(
        r.stderr.contains("script: error, the quote was pulled: s.rhai:3:9: Unknown property 'nope'"),
        "{}",
        r.stderr
    );
    // Then summaries only: never one line per error.
    let lines = r.stderr.lines().filter(|l| l.contains("script: error")).count();
    assert_eq!(lines, 1, "{}", r.stderr);
    let s = &r.report["script"];
    assert!(s["errors"].as_u64().unwrap() >= 100, "{s}");
    assert_eq!(s["errors_by_message"][0]["line"].as_u64(), Some(3), "{s}");
}

/// A reloaded version that fails REVERT_AFTER times in a row is replaced by
/// the one before it: counted, told to the log, in the report.
#[test]
fn a_failing_reloaded_version_is_reverted_and_says_so() {
    let limits = ScriptLimits::default();
    let e = engine(&limits, &Default::default(), None);
    let good = compile(&e, "s.rhai", "fn quote(m) { bid(m.mid - 1.0, 1.0); }").unwrap();
    let bad = compile(&e, "s.rhai", "fn quote(m) {\n  bid(m.nope, 1.0);\n}").unwrap();
    let mut s = ScriptStrategy::new(e, good);
    let (tx, mut rx) = event_ring();
    s.attach_events(tx);
    let m = MarketState { mid: 100.0, best_bid: 99.0, best_ask: 101.0, ..MarketState::default() };
    assert!(s.decide_market(m).bid.is_some());
    s.replace(bad);
    for _ in 0..REVERT_AFTER {
        assert!(s.decide_market(m).pull);
    }
    // Back on the good version.
    assert!(s.decide_market(m).bid.is_some());
    let report = s.view().report();
    assert_eq!((report.reverts, report.reloads, report.errors), (1, 1, REVERT_AFTER as u64), "{report:?}");
    assert_eq!(report.errors_by_message[0].message, s.last_error().unwrap().to_string());
    assert!(report.errors_by_message[0].message.starts_with("s.rhai:2:9: "), "{report:?}");
    // The log: the reload, the first error, the revert (each once, at once).
    let mut log = Logger::new("s.rhai");
    let now = std::time::Instant::now();
    let mut lines = Vec::new();
    let mut kinds = Vec::new();
    while let Some(ev) = rx.pop() {
        kinds.push(ev.kind);
        lines.extend(log.on_event(ev, now));
    }
    assert_eq!(kinds.iter().filter(|k| **k == EventKind::Error).count(), REVERT_AFTER as usize);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("script: s.rhai reloaded"), "{lines:?}");
    assert!(lines[1].starts_with("script: error, the quote was pulled: s.rhai:2:9:"), "{lines:?}");
    assert!(lines[2].starts_with("script: s.rhai reverted to the previous version"), "{lines:?}");
    assert!(lines[2].contains("last error: s.rhai:2:9"), "{lines:?}");
    let summary = log.due(now + std::time::Duration::from_secs(10), false);
    assert_eq!(summary.len(), 1, "{summary:?}");
    assert!(summary[0].starts_with(&format!("script: {} errors in the last 10 s", REVERT_AFTER - 1)), "{summary:?}");
}

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{ALLOCS, COUNTING};

/// Counting an error already in the table formats nothing and allocates
/// nothing (compiled form; its event goes to the log ring all the same).
#[test]
fn a_known_error_is_counted_without_allocating() {
    let e = engine(&ScriptLimits::default(), &Default::default(), None);
    let src = "fn quote(m) {\n let p = to_int(m.position);\n bid(m.mid - 1000 / p, 1.0);\n}";
    let script = compile(&e, "s.rhai", src).unwrap();
    let mut s = ScriptStrategy::new(e, script);
    assert!(s.fast_path(), "{:?}", s.script().not_compiled());
    let (tx, mut rx) = event_ring();
    s.attach_events(tx);
    let m =
        |i: u64| MarketState { mid: 100.0, position: (i % 2) as f64, min_order_size: 1.0, ..MarketState::default() };
    // Warm-up: the first fault at its place formats its message once.
    for i in 0..4 {
        s.decide_market(m(i));
    }
    while rx.pop().is_some() {}
    COUNTING.with(|c| c.set(true));
    ALLOCS.with(|a| a.set(0));
    for i in 0..200 {
        s.decide_market(m(i));
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(ALLOCS.with(|a| a.get()), 0);
    let r = s.view().report();
    assert_eq!((r.errors, r.errors_by_message.len()), (102, 1), "{r:?}");
    assert_eq!(r.errors_by_message[0].line, 3);
    assert!(r.errors_by_message[0].message.contains("Division by zero"), "{r:?}");
}
