//! `mmbot sim --replay` of a USD-M capture: the capture's depth frames were
//! recorded on `<sym>@depth@0ms`, and a client subscribed to
//! `<sym>@depth@100ms` (what the live feed asks for) must still get them,
//! under the name it asked for, and REST snapshots must be cut from the
//! replayed book. The recording is written here, USD-M shaped (`pu`
//! chaining, `E`/`T`, a bare snapshot line after the first diff, as the
//! recorder writes it); no shared data is needed.

mod sim_support;

use std::io::Write;
use std::time::{Duration, Instant};

use mmbot::sim::flow::SimMarket;
use mmbot::sim::{Sim, SimConfig, SimSource};
use sim_support::{http, next_json, ws_connect};

const SYM: &str = "CTKUSDT";
/// Diffs in the recording, one every `GAP_MS`.
const DIFFS: u64 = 60;
const GAP_MS: i64 = 40;

/// Writes a USD-M capture recorded on `@depth@{speed}` to a temp file.
fn usdm_recording(speed: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("mmbot-usdm-replay-{speed}-{}.txt", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    let t0: i64 = 1_626_992_742_000_000_000;
    let stream = format!("{}@depth@{speed}", SYM.to_ascii_lowercase());
    let mut prev_u = 600_000_000_000u64;
    for k in 0..DIFFS {
        let big_u = prev_u + 7;
        let u = big_u + 3;
        let e = 1_626_992_741_000 + k as i64 * GAP_MS;
        // The bid at 1.00600 changes size every diff; the ask stays put.
        let line = format!(
            "{} {{\"stream\":\"{stream}\",\"data\":{{\"e\":\"depthUpdate\",\"E\":{e},\"T\":{e},\"s\":\"{SYM}\",\
             \"U\":{big_u},\"u\":{u},\"pu\":{prev_u},\"b\":[[\"1.00600\",\"{}\"]],\"a\":[[\"1.01500\",\"20835\"]]}}}}",
            t0 + k as i64 * GAP_MS * 1_000_000,
            100 + k
        );
        writeln!(f, "{line}").unwrap();
        if k == 0 {
            // The recorder writes the snapshot after the symbol's next depth
            // line; it falls inside that diff (U <= lastUpdateId <= u).
            writeln!(
                f,
                "{} {{\"lastUpdateId\":{},\"E\":{e},\"T\":{e},\"bids\":[[\"1.01000\",\"85782\"],[\"1.00600\",\"99\"]],\
                 \"asks\":[[\"1.01300\",\"17718\"],[\"1.01500\",\"20835\"]]}}",
                t0 + 1_000_000,
                big_u + 1
            )
            .unwrap();
        }
        prev_u = u;
    }
    path
}

fn replay_is_served_under(recorded: &str, subscribed: &str) {
    let path = usdm_recording(recorded);
    let sim = Sim::start(SimConfig {
        market: SimMarket::Usdm,
        symbols: vec![SYM.into()],
        source: SimSource::Replay { files: vec![path.clone()], speed: 1.0 },
        ..SimConfig::default()
    })
    .unwrap();
    let name = format!("{}@depth@{subscribed}", SYM.to_ascii_lowercase());
    let mut ws = ws_connect(&sim, &format!("/stream?streams={name}"));
    let mut diffs = Vec::new();
    let t = Instant::now();
    while diffs.len() < 10 && t.elapsed() < Duration::from_secs(10) {
        match next_json(&mut ws) {
            Ok(Some(v)) => {
                assert_eq!(v["stream"], name.as_str(), "served under the subscribed name: {v}");
                assert_eq!(v["data"]["e"], "depthUpdate", "{v}");
                diffs.push(v);
            }
            Ok(None) => {}
            Err(e) => panic!("the stream ended: {e}"),
        }
    }
    assert!(
        diffs.len() >= 10,
        "recorded on @depth@{recorded}, subscribed @depth@{subscribed}: only {} diffs in 10 s",
        diffs.len()
    );
    // Later diffs chain on pu, as recorded.
    for w in diffs.windows(2) {
        assert_eq!(w[1]["data"]["pu"], w[0]["data"]["u"], "{w:?}");
    }
    // The replayed book is synced: REST snapshots are cut from it.
    let snap = http(&sim, "GET", &format!("/fapi/v1/depth?symbol={SYM}&limit=5"), None);
    assert_eq!(snap.status, 200, "{:?}", snap.json);
    assert!(snap.json["lastUpdateId"].as_u64().unwrap() > 600_000_000_000, "{:?}", snap.json);
    assert_eq!(snap.json["asks"][0][0], "1.013", "{:?}", snap.json);
    drop(ws);
    drop(sim);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_usdm_capture_on_0ms_is_served_to_a_100ms_subscriber() {
    replay_is_served_under("0ms", "100ms");
}

#[test]
fn a_capture_on_100ms_is_served_to_a_0ms_subscriber() {
    replay_is_served_under("100ms", "0ms");
}
