//! `mmbot config check`: the shipped example is valid, and each kind of bad
//! value is refused with a message naming the key (exit code 2).

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
        assert_eq!(code, Some(2), "{body}");
        assert!(err.contains(key), "{body}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
