//! When the advisor asks, in the hot path's time: snapshots drive the clock
//! (their `time_ns` is the recording's time in a replay), so `mmbot replay
//! --speed N` calls every interval of recording time, and `call_on =
//! "regime_change"` asks only when the volatility or spread regime moved
//! (or `max_interval` passed). The snapshots here carry synthetic times and
//! features; a loopback gateway answers at once.

mod ai_server;
mod common;

use std::time::{Duration, Instant};

use ai_server::{Reply, Server, CLEAN};
use mmbot::ai::advisor::{sample_snapshot, start_advisor, AdvisorHandle, AdvisorOptions, MarketSnapshot};
use mmbot::ai::{AiConfig, CallOn, Provider};
use mmbot::hot::advice::Advice;
use mmbot::ring::{ring, Consumer, Producer};

const KEY_VAR: &str = "MMBOT_TEST_SCHEDULE_KEY";
const MS: i64 = 1_000_000;

fn env_file() -> std::path::PathBuf {
    // Written once: a rewrite truncates it under a test reading it.
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("mmbot-schedule-test-{}.env", std::process::id()));
        std::fs::write(&path, format!("{KEY_VAR}=sk-schedule-test-key-0000000000\n")).unwrap();
        path
    })
    .clone()
}

fn config(base_url: &str, log: &std::path::Path, f: impl FnOnce(&mut AiConfig)) -> AiConfig {
    let mut ai = AiConfig {
        provider: Provider::Custom,
        base_url: Some(base_url.to_string()),
        key_var: KEY_VAR.to_string(),
        env_file: env_file(),
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        retries: 0,
        max_age: Duration::from_secs(3600),
        log: Some(log.to_path_buf()),
        ..AiConfig::default()
    };
    f(&mut ai);
    ai
}

struct Rig {
    handle: AdvisorHandle,
    market: Producer<MarketSnapshot>,
    advice: Consumer<Advice>,
}

fn start(ai: &AiConfig, speed: f64) -> Rig {
    let (market, market_rx) = ring::<MarketSnapshot>(4);
    let (advice_tx, advice) = ring::<Advice>(4);
    let options = AdvisorOptions { speed, print: false };
    let handle = start_advisor(ai, None, market_rx, advice_tx, options).unwrap();
    Rig { handle, market, advice }
}

/// A snapshot at hot-path time `time_ns` with this volatility (bps per event).
fn snapshot(time_ns: i64, volatility_bps: f64) -> MarketSnapshot {
    let mut s = sample_snapshot();
    s.time_ns = time_ns;
    s.features.volatility_bps = volatility_bps;
    s
}

/// The log's lines that called (snapshot time, volatility of the market asked about).
fn calls(path: &std::path::Path) -> Vec<(i64, f64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| (v["snapshot_ns"].as_i64().unwrap(), v["market"]["volatility_bps"].as_f64().unwrap()))
        .collect()
}

/// Hands the advisor `snaps` one every `every` of wall time, then waits
/// (bounded) for the call in flight to come back.
fn play(rig: &Rig, snaps: impl IntoIterator<Item = MarketSnapshot>, every: Duration) {
    for s in snaps {
        rig.market.push_latest(s);
        std::thread::sleep(every);
    }
    let end = Instant::now() + Duration::from_secs(2);
    let mut calls = rig.handle.stats().calls;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        let now = rig.handle.stats().calls;
        if now == calls {
            break;
        }
        calls = now;
    }
}

#[test]
fn regime_change_calls_only_on_a_change_and_at_max_interval() {
    let server = Server::always(Reply::chat(CLEAN));
    let dir = common::temp_dir("schedule-regime");
    let log = dir.join("advice.jsonl");
    let ai = config(&server.base_url(), &log, |a| {
        a.call_on = CallOn::RegimeChange;
        a.interval = Duration::from_millis(100);
        a.min_interval = Duration::from_millis(100);
        a.max_interval = Duration::from_secs(1);
    });
    // Speed 0: hot time moves only with the snapshots, as in an unpaced replay.
    let rig = start(&ai, 0.0);
    let t0 = 1_000_000 * MS;
    // 3 s of calm market (50 ms of hot time per snapshot), then volatile.
    play(&rig, (0..60).map(|i| snapshot(t0 + i * 50 * MS, 0.1)), Duration::from_millis(15));
    let calm = rig.handle.stats();
    play(&rig, (60..70).map(|i| snapshot(t0 + i * 50 * MS, 5.0)), Duration::from_millis(15));
    let s = rig.handle.stats();
    drop(rig);
    let made = calls(&log);
    // Calm: the first call, then one per max_interval (at 1 s, 2 s, maybe 3 s).
    assert!((2..=5).contains(&calm.calls), "{calm:?} {made:?}");
    assert!(calm.skipped_no_change >= 10, "{calm:?}");
    for w in made.iter().filter(|(_, v)| *v < 1.0).collect::<Vec<_>>().windows(2) {
        assert!(w[1].0 - w[0].0 >= 900 * MS, "calm calls closer than max_interval: {made:?}");
    }
    // The change is asked about at once (within a few snapshots), not at the
    // next max_interval.
    let (first_wild, _) = *made.iter().find(|(_, v)| *v > 1.0).expect("the change was asked about");
    assert!(first_wild - (t0 + 60 * 50 * MS) <= 300 * MS, "{made:?}");
    assert!(s.calls - calm.calls <= 2, "one call for the change: {s:?}");
    assert_eq!(s.ok, s.calls, "{s:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn at_speed_n_calls_follow_recording_time() {
    // Interval 1 s of recording time at --speed 10: one call per 0.1 s of
    // wall time (by the wall clock it would be one per second).
    let server = Server::always(Reply::chat(CLEAN));
    let dir = common::temp_dir("schedule-speed");
    let log = dir.join("advice.jsonl");
    let ai = config(&server.base_url(), &log, |a| a.interval = Duration::from_secs(1));
    let mut rig = start(&ai, 10.0);
    let t0 = 1_000_000 * MS;
    // A replay at --speed 10: 200 ms of recording every 20 ms of wall time,
    // for 2 s of wall time (20 s of recording).
    let started = Instant::now();
    // Stamped from the wall clock, as a paced replay's frames arrive.
    let snaps = (0..100).map(|_| snapshot(t0 + started.elapsed().as_nanos() as i64 * 10, 1.0));
    play(&rig, snaps, Duration::from_millis(20));
    let s = rig.handle.stats();
    let advice = rig.advice.latest();
    drop(rig);
    let made = calls(&log);
    assert!(s.calls >= 8, "calls by wall time, not recording time: {s:?} {made:?}");
    // About one call per second of recording (a busy machine delays the
    // snapshots, so a tick may find an older one: the rate is what counts).
    let span_s = (made.last().unwrap().0 - made[0].0) as f64 / 1e9;
    let per_s = (made.len() - 1) as f64 / span_s;
    assert!((0.5..=1.6).contains(&per_s), "{per_s:.2} calls per second of recording: {made:?}");
    // Dated from its snapshot, alive for 3 intervals of recording time.
    let a = advice.expect("advice reached the hot side");
    assert_eq!((a.received_ns, a.ttl_ns), (made.last().unwrap().0, 3_000 * MS));
    let _ = std::fs::remove_dir_all(&dir);
}
