//! Recording from `mmbot sim` and replaying the file: `mmbot book` on the
//! recording prints exactly the book the recorder saw live (reconnects
//! included: each is recorded with a fresh snapshot, so the replay resyncs
//! the same way), and a recorder killed mid-write leaves a file that replays
//! up to its last complete line. Loopback only, bounded in time.

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mmbot::cli::book::format_top;
use mmbot::feed::live::{FeedConfig, LiveFeed};
use mmbot::feed::recorder::{Recorder, RecordingWriter};
use mmbot::hot::market::{BookSizes, Event, MarketData};
use mmbot::hot::msg::Symbol;
use mmbot::sim::faults::Faults;
use mmbot::sim::flow::SimMarket;
use mmbot::sim::{Sim, SimConfig, SimSource};
use mmbot::stats::clock::Clock;

const SYMBOL: &str = "BTCUSDT";

fn sim(faults: Faults) -> Sim {
    Sim::start(SimConfig {
        market: SimMarket::Spot,
        symbols: vec![SYMBOL.into()],
        source: SimSource::Synthetic { seed: 11, events_per_sec: 300.0 },
        faults,
        ping_every: Duration::from_millis(500),
        ..SimConfig::default()
    })
    .unwrap()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mmbot-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_recording_replays_to_exactly_what_the_recorder_saw_live() {
    // Reconnects every 1.5 s: each comes back with a fresh snapshot.
    let sim = sim(Faults { disconnect_every: Some(Duration::from_millis(1500)), ..Faults::default() });
    let path = tmp("live.gz");
    let writer = RecordingWriter::create(&path, Duration::from_millis(200)).unwrap();
    let symbol = Symbol::new(SYMBOL.as_bytes());
    let mut recorder = Recorder::new(writer, &[symbol]);
    let live_tops = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = live_tops.clone();
    recorder.observe(Box::new(move |ev: &Event<'_>| {
        if matches!(ev, Event::Depth { .. }) {
            format_top(&mut sink.lock().unwrap(), ev);
        }
    }));
    let cfg = FeedConfig {
        symbols: vec![symbol],
        stream_url: Some(sim.ws_base()),
        rest_url: Some(sim.http_base()),
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_millis(300),
        snapshot_retry: Duration::from_millis(50),
        ..FeedConfig::default()
    };
    let mut feed = LiveFeed::start(cfg, Clock::instant()).unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(4000) {
        feed.turn(&mut recorder);
    }
    // Freeze the market and let the recorder catch up with it.
    sim.pause();
    let target = sim.true_book(SYMBOL).unwrap().update_id;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && !recorder.market().book(symbol).is_some_and(|b| b.is_synced() && b.update_id() == target)
    {
        feed.turn(&mut recorder);
    }
    assert!(recorder.error.is_none(), "{:?}", recorder.error);
    assert!(recorder.disconnects >= 2, "reconnects: {}", recorder.disconnects);
    assert!(recorder.snapshots >= 3, "a fresh snapshot per connection: {}", recorder.snapshots);
    let book = recorder.market().book(symbol).unwrap();
    assert_eq!(book.update_id(), target, "the recorder never caught up with the simulator");
    let truth = sim.true_book(SYMBOL).unwrap();
    assert_eq!(book.book().bids().map(|l| (l.price.0, l.qty.0)).collect::<Vec<_>>(), truth.bids);
    feed.shutdown(&mut recorder);
    recorder.finish().unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_mmbot")).arg("book").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let live = live_tops.lock().unwrap().clone();
    assert!(live.len() > 1000, "too little recorded");
    assert!(
        out.stdout == live,
        "replay differs from live: {} vs {} bytes\nstderr: {}",
        out.stdout.len(),
        live.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    // The replay met the recorded reconnects and resynced from the recorded snapshots.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("snapshots "), "{stderr}");

    // And the replayed book is the exchange's.
    let mut md = MarketData::new(BookSizes::default());
    let text = {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_string(&mut s).unwrap();
        s
    };
    for line in text.lines() {
        let (_, json) = line.split_once(' ').unwrap();
        md.on_frame(json.as_bytes(), &mut |_| {});
    }
    let replayed = md.book(symbol).unwrap();
    assert_eq!(replayed.update_id(), truth.update_id);
    assert_eq!(replayed.book().asks().map(|l| (l.price.0, l.qty.0)).collect::<Vec<_>>(), truth.asks);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_killed_recorder_leaves_a_file_that_replays_to_its_last_complete_line() {
    let sim = sim(Faults::default());
    let path = tmp("killed.gz");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["record", "--symbol", SYMBOL, "--stream-url", &sim.ws_base(), "--rest-url", &sim.http_base()])
        .arg("--out")
        .arg(&path)
        .args(["--duration", "30s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it record a few gzip members, then kill it without warning.
    std::thread::sleep(Duration::from_millis(3500));
    child.kill().unwrap();
    let _ = child.wait();
    assert!(sim.counters().frames_sent.load(Ordering::Relaxed) > 50);

    let out = Command::new(env!("CARGO_BIN_EXE_mmbot")).arg("book").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout.lines().count();
    assert!(lines > 10, "only {lines} book events replayed");
    // Every printed line is whole JSON.
    for l in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{l}: {e}"));
    }
    let _ = std::fs::remove_file(&path);
}
