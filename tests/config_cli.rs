//! `mmbot config check`: the shipped example is valid, and each kind of bad
//! value is refused with a message naming the key (exit status 78, as in
//! every command); every command reads the same file by the same rule.

mod common;

use std::path::Path;
use std::process::Command;

fn check(path: &Path) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_mmbot")).args(["config", "check"]).arg(path).output().unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn the_example_is_valid_and_bad_values_name_their_key() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("mmbot.example.toml");
    let (code, out, _) = check(&example);
    assert_eq!(code, Some(0));
    assert!(out.contains("maker_fee = \"0.001\"") && out.contains("capacity = 65536"), "{out}");

    let dir = common::temp_dir("config-cli");
    for (body, key) in [
        ("[risk]\nmax_spread_bps = \"wide\"\n", "max_spread_bps"),
        ("[paper]\nlatency_ms = -5\n", "paper.latency_ms"),
        ("[strategy]\nmin_order_size = \"0.1.2\"\n", "strategy.min_order_size"),
        ("[book]\ncapacity = 1\n", "book.capacity"),
        ("[features]\ndepth_levels = 0\n", "features.depth_levels"),
        ("[filters]\ntick_size = \"-0.01\"\n", "filters.tick_size"),
        ("[market]\nsymbol = \"btc usdt\"\n", "market.symbol"),
        ("[script]\nmax_call_levels = 0\n", "script.max_call_levels"),
        ("[nonsense]\nx = 1\n", "nonsense"),
    ] {
        let path = dir.join("bad.toml");
        std::fs::write(&path, body).unwrap();
        let (code, _, err) = check(&path);
        assert_eq!(code, Some(78), "{body}");
        assert!(err.contains(key), "{body}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn mmbot(args: &[&str], cwd: &Path, env: Option<&Path>) -> (Option<i32>, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mmbot"));
    c.args(args).current_dir(cwd).env_remove("MMBOT_CONFIG");
    if let Some(p) = env {
        c.env("MMBOT_CONFIG", p);
    }
    let o = c.output().unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn a_bad_config_exits_78_in_every_command_and_the_first_line_names_it() {
    // The one rule: --config, else $MMBOT_CONFIG, else ./mmbot.toml.
    let dir = common::temp_dir("config-rule");
    std::fs::write(dir.join("mmbot.toml"), "[paper]\nlatency_ms = -5\n").unwrap();
    let rec = dir.join("rec.txt");
    std::fs::write(&rec, "").unwrap();
    let rec = rec.to_str().unwrap();
    let commands: [&[&str]; 9] = [
        &["backtest", rec],
        &["replay", rec],
        &["book", rec],
        &["bench"],
        &["demo", "--duration", "1s", "--no-dashboard"],
        &["paper", "--duration", "1s"],
        &["run", "--duration", "1s"],
        &["ai", "check"],
        &["config", "check"],
    ];
    for args in commands {
        let (code, err) = mmbot(args, &dir, None);
        assert_eq!(code, Some(78), "{args:?} with ./mmbot.toml bad: {err}");
        assert!(err.contains("paper.latency_ms"), "{args:?}: {err}");
        assert!(err.contains("mmbot.toml (found in the current directory)"), "{args:?}: {err}");
    }
    // $MMBOT_CONFIG comes before ./mmbot.toml, and --config before both.
    let good = dir.join("good.toml");
    std::fs::write(&good, "[paper]\nlatency_ms = 5\n").unwrap();
    let (code, err) = mmbot(&["config", "check"], &dir, Some(&good));
    assert_eq!(code, Some(0), "{err}");
    let bad_flag = dir.join("bad_flag.toml");
    std::fs::write(&bad_flag, "[book]\ncapacity = 1000\n").unwrap();
    let (code, err) = mmbot(&["config", "check", bad_flag.to_str().unwrap()], &dir, Some(&good));
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("book.capacity") && err.contains("power of two"), "{err}");
    // A missing file says its cause once.
    let (code, err) = mmbot(&["backtest", rec, "--config", "nope.toml"], &dir, None);
    assert_eq!(code, Some(78), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_partial_live_section_suggests_sizes_in_the_right_units() {
    let dir = common::temp_dir("config-partial-live");
    let path = dir.join("live.toml");
    std::fs::write(&path, "[live]\nmax_order_notional = \"100\"\ndaily_loss_limit = \"50\"\n").unwrap();
    let (code, _, err) = check(&path);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("max_position") && err.contains("base asset") && err.contains("\"0.01\" on BTCUSDT"), "{err}");
    assert!(!err.contains("such as \"100\""), "a 100 BTC example: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let dir = common::temp_dir("config-usage");
    assert_eq!(mmbot(&["backtest", "--no-such-flag"], &dir, None).0, Some(64));
    assert_eq!(mmbot(&["--help"], &dir, None).0, Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
