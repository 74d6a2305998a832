//! The simulator's market-data truth faults, seen from a plain client:
//! diffs whose update ids jump or come inverted (extra copies, the stream
//! going on untouched), snapshots lacking the second-best bid (REST and
//! the WS-API `depth`), REST refused for RAW_REQUESTS while the WS-API's
//! `depth` answers (web-socket-api.md §Market data requests, Order book;
//! only REST has RAW_REQUESTS), and a market-stream connection that flaps.
//! Loopback only; every wait is bounded.

mod sim_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mmbot::sim::faults::{Faults, ID_JUMP};
use mmbot::sim::flow::SimMarket;
use mmbot::sim::{Sim, SimConfig};
use serde_json::{json, Value};
use sim_support::{answer, fx, http, next_json, ws_connect, ws_send, SYMBOL};

fn start(market: SimMarket, faults: Faults) -> Sim {
    Sim::start(SimConfig { market, faults, symbols: vec![SYMBOL.into()], ..SimConfig::default() }).unwrap()
}

/// The next `n` depth diffs on a raw stream (at most 15 s).
fn diffs(sim: &Sim, n: usize) -> Vec<Value> {
    let mut ws = ws_connect(sim, &format!("/ws/{}@depth@100ms", SYMBOL.to_ascii_lowercase()));
    let mut out = Vec::new();
    let t = Instant::now();
    while out.len() < n && t.elapsed() < Duration::from_secs(15) {
        match next_json(&mut ws) {
            Ok(Some(v)) if v["e"] == "depthUpdate" => out.push(v),
            Ok(_) => {}
            Err(e) => panic!("the stream ended: {e}"),
        }
    }
    assert_eq!(out.len(), n, "only {} diffs in 15 s", out.len());
    out
}

fn ids(v: &Value) -> (u64, u64) {
    (v["U"].as_u64().unwrap(), v["u"].as_u64().unwrap())
}

/// Splits diffs into the bad copies and the real ones, checking that each
/// copy is followed by its real diff (same levels) and that the real ones
/// chain as if the copies were not there.
fn split_copies(market: SimMarket, all: &[Value], bad: impl Fn(&Value, &Value) -> bool) -> (usize, usize) {
    let (mut copies, mut real) = (0, Vec::new());
    for (i, d) in all.iter().enumerate() {
        match all.get(i + 1) {
            Some(next) if bad(d, next) => {
                assert_eq!((&d["b"], &d["a"]), (&next["b"], &next["a"]), "a copy carries its diff's levels");
                if market == SimMarket::Usdm {
                    assert_eq!(d["pu"], next["pu"], "the copy keeps pu");
                }
                copies += 1;
            }
            _ => real.push(d),
        }
    }
    for w in real.windows(2) {
        match market {
            SimMarket::Spot => assert_eq!(ids(w[1]).0, ids(w[0]).1 + 1, "real diffs chain: {w:?}"),
            SimMarket::Usdm => assert_eq!(w[1]["pu"], w[0]["u"], "real diffs chain on pu: {w:?}"),
        }
    }
    (copies, real.len())
}

#[test]
fn every_third_diff_is_preceded_by_a_copy_whose_ids_jump() {
    for market in [SimMarket::Spot, SimMarket::Usdm] {
        let sim = start(market, Faults { id_jump_every: 3, ..Faults::default() });
        let all = diffs(&sim, 24);
        let (copies, real) = split_copies(market, &all, |d, next| {
            let ((bu, u), (nbu, nu)) = (ids(d), ids(next));
            bu == nbu + ID_JUMP && u == nu + ID_JUMP
        });
        assert!(copies >= 5 && real >= 15, "{market:?}: {copies} copies, {real} real diffs");
        assert!(sim.counters().ids_jumped.load(Ordering::Relaxed) >= copies as u64);
    }
}

#[test]
fn every_fourth_diff_is_preceded_by_a_copy_with_first_id_above_last() {
    for market in [SimMarket::Spot, SimMarket::Usdm] {
        let sim = start(market, Faults { inverted_ids_every: 4, ..Faults::default() });
        let all = diffs(&sim, 25);
        let (copies, real) = split_copies(market, &all, |d, next| {
            let ((bu, u), (_, nu)) = (ids(d), ids(next));
            bu > u && u == nu && bu == nu + ID_JUMP
        });
        assert!(copies >= 4 && real >= 18, "{market:?}: {copies} copies, {real} real diffs");
    }
}

fn levels(side: &Value) -> Vec<(i64, i64)> {
    side.as_array().unwrap().iter().map(|l| (fx(&l[0]), fx(&l[1]))).collect()
}

#[test]
fn snapshots_lack_the_second_best_bid_on_rest_and_the_ws_api() {
    let sim = start(SimMarket::Spot, Faults { omit_snapshot_bid: 2, ..Faults::default() });
    std::thread::sleep(Duration::from_millis(300));
    // Frozen, the true book is what every snapshot is cut from.
    sim.pause();
    let truth = sim.true_book(SYMBOL).unwrap();
    assert!(truth.bids.len() > 3);
    let mut want = truth.bids.clone();
    want.remove(1);
    let rest = http(&sim, "GET", &format!("/api/v3/depth?symbol={SYMBOL}&limit=1000"), None);
    assert_eq!(rest.status, 200, "{:?}", rest.json);
    assert_eq!(rest.json["lastUpdateId"].as_u64(), Some(truth.update_id));
    assert_eq!(levels(&rest.json["bids"]), want, "REST bids: all but the second best");
    assert_eq!(levels(&rest.json["asks"]), truth.asks, "asks untouched");
    assert_eq!(sim.counters().snapshot_levels_omitted.load(Ordering::Relaxed), 1);

    let mut ws = ws_connect(&sim, "/ws-api/v3");
    ws_send(&mut ws, "d", "depth", json!({"symbol": SYMBOL, "limit": 1000}));
    let a = answer(&mut ws, "d");
    assert_eq!(a["status"], 200, "{a}");
    assert_eq!(a["result"]["lastUpdateId"].as_u64(), Some(truth.update_id));
    assert_eq!(levels(&a["result"]["bids"]), want, "WS-API bids: all but the second best");
    sim.resume();
}

#[test]
fn the_ws_api_depth_answers_while_rest_is_refused() {
    let ban = Duration::from_secs(2);
    let sim = start(SimMarket::Spot, Faults { rest_ban_for: ban, ..Faults::default() });
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    for path in [format!("/api/v3/depth?symbol={SYMBOL}&limit=5"), "/api/v3/time".to_string()] {
        let r = http(&sim, "GET", &path, None);
        assert_eq!((r.status, r.code()), (429, -1003), "{path}: {:?}", r.json);
        let retry: u64 = r.header("Retry-After").and_then(|s| s.parse().ok()).expect("Retry-After");
        assert!((1..=2).contains(&retry), "Retry-After {retry}");
        assert!(r.json["msg"].as_str().unwrap().contains("requests per 5 MINUTE"), "{:?}", r.json);
    }
    let mut ws = ws_connect(&sim, "/ws-api/v3");
    ws_send(&mut ws, "a", "depth", json!({"symbol": SYMBOL, "limit": 5, "returnRateLimits": true}));
    let a = answer(&mut ws, "a");
    assert_eq!(a["status"], 200, "{a}");
    assert_eq!(a["result"]["bids"].as_array().unwrap().len(), 5, "{a}");
    assert_eq!(a["result"]["asks"].as_array().unwrap().len(), 5, "{a}");
    let (bid, ask) = (fx(&a["result"]["bids"][0][0]), fx(&a["result"]["asks"][0][0]));
    assert!(0 < bid && bid < ask, "{a}");
    // Weight by limit (web-socket-api.md §Order book): 501-1000 costs 50.
    let before = a["rateLimits"][0]["count"].as_u64().unwrap();
    ws_send(&mut ws, "b", "depth", json!({"symbol": SYMBOL, "limit": 600, "returnRateLimits": true}));
    let b = answer(&mut ws, "b");
    assert_eq!(b["status"], 200, "{b}");
    assert_eq!(b["rateLimits"][0]["count"].as_u64().unwrap(), before + 50, "{b}");
    ws_send(&mut ws, "c", "depth", json!({"symbol": "NOPEUSDT"}));
    assert_eq!(answer(&mut ws, "c")["error"]["code"], -1121);
    ws_send(&mut ws, "e", "depth", json!({"limit": 5}));
    assert_eq!(answer(&mut ws, "e")["error"]["code"], -1102);
    // After the ban REST answers again.
    std::thread::sleep((ban + Duration::from_millis(300)).saturating_sub(started.elapsed()));
    let r = http(&sim, "GET", &format!("/api/v3/depth?symbol={SYMBOL}&limit=5"), None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert!(sim.counters().rest_refused.load(Ordering::Relaxed) >= 2);
}

#[test]
fn a_flapping_stream_is_dropped_then_refused_twice() {
    let faults =
        Faults { disconnect_every: Some(Duration::from_millis(300)), refuse_after_disconnect: 2, ..Faults::default() };
    let sim = start(SimMarket::Spot, faults);
    let path = format!("/ws/{}@depth@100ms", SYMBOL.to_ascii_lowercase());
    let mut ws = ws_connect(&sim, &path);
    let t = Instant::now();
    loop {
        assert!(t.elapsed() < Duration::from_secs(5), "not dropped within 5 s");
        if next_json(&mut ws).is_err() {
            break;
        }
    }
    let url = format!("{}{path}", sim.ws_base());
    for attempt in 1..=2 {
        match tungstenite::connect(&url) {
            Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503, "attempt {attempt}"),
            other => panic!("attempt {attempt} right after the drop was not refused: {:?}", other.map(|_| ())),
        }
    }
    assert!(tungstenite::connect(&url).is_ok(), "the third connect is served");
    assert_eq!(sim.counters().ws_refused.load(Ordering::Relaxed), 2);
}
