//! The control plane of a run of several symbols: `mmbot demo --symbols 3`
//! with `--control 127.0.0.1:0`. `GET /api/status` has every symbol's row,
//! `GET /metrics` one series per symbol, the token is required, paths a
//! one-symbol session has and this run does not say so (404), and
//! `POST /api/stop` ends the run early with its report.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "symbols-token-0123456789abcdef";

fn call(addr: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    common::control_call(addr, method, path, token, None)
}

#[test]
fn a_run_of_several_symbols_serves_status_metrics_and_stop() {
    let dir = common::temp_dir("control-symbols");
    let child = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["demo", "--symbols", "3", "--duration", "60s", "--no-dashboard", "--control", "127.0.0.1:0"])
        .args(["--out", "runs"])
        .current_dir(&dir)
        .env("MMBOT_CONTROL_TOKEN", TOKEN)
        .env_remove("MMBOT_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut demo = common::KillOnDrop(child);
    let (addr, _) = common::control_banner(&mut demo.0, Duration::from_secs(60));
    assert_eq!(call(&addr, "GET", "/api/status", None).0, 401);
    // Every symbol's row, once the exec thread has published.
    let mut status = Value::Null;
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        let (st, body) = call(&addr, "GET", "/api/status", Some(TOKEN));
        assert_eq!(st, 200, "{body}");
        status = serde_json::from_str(&body).unwrap();
        let rows = status["symbols"].as_array().map_or(0, |r| r.len());
        if rows == 3 && status["symbols"].as_array().unwrap().iter().all(|r| r["mid"].as_f64().is_some()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let names: Vec<&str> =
        status["symbols"].as_array().unwrap().iter().map(|r| r["symbol"].as_str().unwrap()).collect();
    assert_eq!(names, ["BTCUSDT", "ETHUSDT", "BNBUSDT"], "{status}");
    let (st, metrics) = call(&addr, "GET", "/metrics", Some(TOKEN));
    assert_eq!(st, 200);
    for sym in names {
        assert!(metrics.contains(&format!("mmbot_position{{symbol=\"{sym}\"}}")), "{metrics}");
        assert!(metrics.contains(&format!("mmbot_mid_price{{symbol=\"{sym}\"}}")), "{metrics}");
    }
    let (st, body) = call(&addr, "POST", "/api/pause", Some(TOKEN));
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("several symbols"), "{body}");

    let (st, _) = call(&addr, "POST", "/api/stop", Some(TOKEN));
    assert_eq!(st, 200);
    let code = demo.exit_within(Duration::from_secs(20));
    assert!(code.success(), "{code:?}");
    let run = std::fs::read_dir(dir.join("runs")).unwrap().next().unwrap().unwrap().path();
    assert!(run.join("report.json").exists());
}
