//! `mmbot script test FILE` and the verdicts of `mmbot script check`, end
//! to end through the binary: what a quant sees in CI.
//! * a script's own tests: one line each, the failing ones with
//!   file:line:col and their message, a summary, exit 0 / 1;
//! * `quote_at(state)` refuses a key that is not a getter of `m`, naming it;
//! * `script check` fails, in one line, on outputs of the wrong shape and on
//!   a script that never quotes, and runs the sample at `--position`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn mmbot(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmbot")).args(args).arg(file).env_remove("MMBOT_CONFIG").output().unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

const SKEW: &str = r#"// A skewed quote: long -> both quotes lower.
fn quote(m) {
    let skew = param("skew", 2.0) * m.position / m.max_position;
    #{ bid: m.mid - 1.0 - skew, ask: m.mid + 1.0 - skew }
}

fn test_flat_is_symmetric() {
    let q = quote_at(#{ mid: 100.0 });
    assert_eq(q.bid, 99.0);
    assert_eq(q.ask, 101.0);
}

fn test_long_leans_down() {
    let q = quote_at(#{ position: 1.0 });
    assert(q.ask < 101.0, "long: the ask comes down");
    assert_near(q.bid, 97.0, 1e-9);
}

fn test_wrong_on_purpose() {
    let q = quote_at(#{ position: -1.0 });
    assert(q.bid < 99.0, "short: the bid should come down");
}

fn test_mid_follows_the_book() {
    let q = quote_at(#{ best_bid: 50.0, best_ask: 52.0 });
    assert_eq(q.bid, 50);
}
"#;

#[test]
fn script_test_prints_each_test_with_the_failing_line_and_exits_1() {
    let dir = common::temp_dir("script-test-cmd");
    let file = dir.join("skew.rhai");
    std::fs::write(&file, SKEW).unwrap();
    let o = mmbot(&["script", "test"], &file);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    let f = file.display().to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("ok   test_flat_is_symmetric ({f}:7)"), "{out}");
    assert_eq!(lines[1], format!("ok   test_long_leans_down ({f}:13)"), "{out}");
    assert_eq!(
        lines[2],
        format!("FAIL test_wrong_on_purpose: {f}:21:5: assertion failed: short: the bid should come down"),
        "{out}"
    );
    assert_eq!(lines[3], format!("ok   test_mid_follows_the_book ({f}:24)"), "{out}");
    assert_eq!(lines[4], format!("{f}: 4 tests, 3 passed, 1 failed"), "{out}");

    // All passing: exit 0.
    let good = dir.join("good.rhai");
    std::fs::write(&good, SKEW.replace("q.bid < 99.0", "q.bid > 99.0")).unwrap();
    let o = mmbot(&["script", "test"], &good);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).ends_with("4 tests, 4 passed, 0 failed\n"), "{}", text(&o.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn quote_at_names_an_unknown_key_and_assert_eq_shows_both_sides() {
    let dir = common::temp_dir("script-test-keys");
    let file = dir.join("keys.rhai");
    std::fs::write(
        &file,
        "fn quote(m) { bid(m.mid - 1.0, 0.5); }\n\
         fn test_typo() {\n    let q = quote_at(#{ postion: 1.0 });\n}\n\
         fn test_sizes() {\n    let q = quote_at(#{});\n    assert_eq(q.bid_size, 0.25);\n}\n\
         fn test_runtime_error() {\n    let x = 1 / 0;\n}\n",
    )
    .unwrap();
    let o = mmbot(&["script", "test"], &file);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let f = file.display().to_string();
    assert!(
        out.contains(&format!(
            "FAIL test_typo: {f}:3:13: quote_at: unknown key `postion`: the state's keys are the getters of m (best_bid"
        )),
        "{out}"
    );
    assert!(out.contains("position,"), "lists the keys: {out}");
    assert!(out.contains(&format!("FAIL test_sizes: {f}:7:5: assert_eq failed: left 0.5, right 0.25")), "{out}");
    assert!(out.contains(&format!("FAIL test_runtime_error: {f}:10:")), "{out}");
    assert!(out.contains("3 tests, 0 passed, 3 failed"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn script_test_without_tests_or_with_a_syntax_error_exits_1() {
    let dir = common::temp_dir("script-test-none");
    let none = dir.join("none.rhai");
    std::fs::write(&none, "fn quote(m) { () }\n").unwrap();
    let o = mmbot(&["script", "test"], &none);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("no tests: define functions named test_*()"), "{}", text(&o.stderr));
    let bad = dir.join("bad.rhai");
    std::fs::write(&bad, "fn quote(m) { () }\nfn test_x() {\n  let = 2;\n}\n").unwrap();
    let o = mmbot(&["script", "test"], &bad);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("bad.rhai:3:"), "{}", text(&o.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn script_check_fails_on_wrong_shapes_and_on_never_quoting() {
    let dir = common::temp_dir("script-check-verdicts");
    // A number instead of a map, on every call.
    let shape = dir.join("shape.rhai");
    std::fs::write(&shape, "fn quote(m) { m.mid }\n").unwrap();
    let o = mmbot(&["script", "check"], &shape);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let line = err.lines().last().unwrap();
    assert!(line.starts_with("mmbot script check: ") && line.contains("outputs had the wrong shape"), "{err}");
    assert!(text(&o.stdout).contains("outputs of the wrong shape 5000"), "{}", text(&o.stdout));

    // Always pulls.
    let pull = dir.join("pull.rhai");
    std::fs::write(&pull, "fn quote(m) { \"pull\" }\n").unwrap();
    let o = mmbot(&["script", "check"], &pull);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.lines().last().unwrap().contains("never quoted: all 5000 decisions"), "{err}");

    // Quotes only when flat: fine at 0, never at the position given.
    let flat = dir.join("flat.rhai");
    std::fs::write(
        &flat,
        "fn quote(m) { if m.position == 0.0 { #{ bid_spread: 1.0, ask_spread: 1.0 } } else { () } }\n",
    )
    .unwrap();
    let o = mmbot(&["script", "check"], &flat);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = mmbot(&["script", "check", "--position", "-0.5"], &flat);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("never quoted") && err.contains("at position -0.5"), "{err}");
    assert!(text(&o.stdout).contains("at position -0.5"), "{}", text(&o.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}
