//! The hot path allocates nothing per event after warm-up: a counting global
//! allocator watches `HotPath::on_frame` over thousands of realistic diffs,
//! trades and bookTickers (and malformed frames) in a debug build, with the
//! native strategy and with the shipped scripts on the compiled fast path;
//! the fast path's calls themselves, faults included; and the live feed's
//! read path (socket, WebSocket, pings and pongs) on loopback.

use std::time::{Duration, Instant};

use mmbot::feed::connector::Reason;
use mmbot::feed::live::{FeedConfig, FeedHandler, LiveFeed};
use mmbot::feed::synthetic;
use mmbot::hot::engine::{HotConfig, HotEvent, HotPath};
use mmbot::hot::msg::Symbol;
use mmbot::hot::strategy::{NativeStrategy, Strategy};
use mmbot::script::{ScriptLimits, ScriptStrategy};
use mmbot::sim::{Sim, SimConfig, SimSource};
use mmbot::stats::clock::Clock;

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{ALLOCS, COUNTING};

/// Diffs with a snapshot, trades, bookTickers and malformed frames mixed in.
fn frames() -> Vec<Vec<u8>> {
    let (snapshot, diffs) = synthetic::spot_diffs(3_000, 11);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for (i, d) in diffs.iter().enumerate() {
        frames.push(d.clone().into_bytes());
        if i == 0 {
            frames.push(snapshot.clone().into_bytes());
        }
        if i % 3 == 0 {
            frames.push(format!(r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":1,"s":"BTCUSDT","t":{i},"p":"61837.63000000","q":"0.01000000","T":1,"m":true}}}}"#).into_bytes());
            frames.push(br#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"61837.63000000","B":"1.00000000","a":"61837.64000000","A":"1.00000000"}}"#.to_vec());
            // Ahead of the book: read in full by the live check and held.
            frames.push(br#"{"stream":"btcusdt@bookTicker","data":{"u":999999999999,"s":"BTCUSDT","b":"61837.63000000","B":"1.00000000","a":"61837.64000000","A":"1.00000000"}}"#.to_vec());
            frames.push(br#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","U":"x"}}"#.to_vec());
            frames.push(b"not json at all".to_vec());
        }
    }
    frames
}

/// Runs `strategy` on the hot path over [`frames`]; allocations after
/// warm-up, and quotes made.
fn allocations_per_run<S: Strategy>(strategy: S) -> (u64, u64, HotPath<S>) {
    let frames = frames();
    let mut hot = HotPath::new(HotConfig::default(), strategy, Clock::instant());
    let mut quotes = 0u64;
    let mut run = |hot: &mut HotPath<S>, range: std::ops::Range<usize>| {
        for (i, f) in frames[range].iter().enumerate() {
            hot.on_frame(f, i as i64 * 1_000_000, hot.clock().now(), &mut |ev| {
                if let HotEvent::Quote { .. } = ev {
                    quotes += 1;
                }
            });
            hot.keep_for_rehearsal(f);
            hot.warm();
        }
    };
    let warm = frames.len() / 10;
    // The warm thread's rehearsal runs after every frame: its buffers are
    // made here, and it allocates nothing after.
    hot.enable_rehearsal();
    run(&mut hot, 0..warm);
    ALLOCS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    run(&mut hot, warm..frames.len());
    COUNTING.with(|c| c.set(false));
    (ALLOCS.with(|a| a.get()), quotes, hot)
}

#[test]
fn hot_path_allocates_nothing_per_event() {
    let (allocs, quotes, hot) = allocations_per_run(NativeStrategy);
    assert!(quotes > 2_000, "only {quotes} quotes: the hot path did not run");
    assert!(hot.market().stats().rejected > 0 && hot.market().stats().trades > 0);
    assert!(hot.rehearsed_levels() > 1_000, "{} levels rehearsed", hot.rehearsed_levels());
    assert_eq!(allocs, 0, "{allocs} allocations after warm-up");
}

/// The shipped scripts run compiled on the hot path: no allocation either.
#[test]
fn hot_path_with_a_compiled_script_allocates_nothing_per_event() {
    for name in ["tutorial.rhai", "inventory_skew.rhai", "avellaneda_stoikov.rhai"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name);
        let s = ScriptStrategy::from_file(&path, &Default::default(), &ScriptLimits::default()).unwrap();
        assert!(s.fast_path(), "{name}: {:?}", s.script().not_compiled());
        let (allocs, quotes, hot) = allocations_per_run(s);
        assert!(quotes > 2_000, "{name}: only {quotes} quotes");
        assert_eq!(hot.strategy().stats().errors, 0, "{name}");
        assert_eq!(allocs, 0, "{name}: {allocs} allocations after warm-up");
    }
}

/// One call of the compiled form allocates nothing, on its error paths
/// too (the message is only formatted when someone asks for it).
#[test]
fn fast_path_calls_allocate_nothing_even_when_they_fault() {
    use mmbot::script::{compile, engine, fast::Frame, MarketState};
    let e = engine(&ScriptLimits::default(), &Default::default(), None);
    let src = "fn quote(m) {\n let p = to_int(m.position);\n if m.direction == \"up\" { return #{ bid: m.mid - 1.0 }; }\n bid(m.mid - 1000 / p, 1.0);\n}";
    let script = compile(&e, "faults.rhai", src).unwrap();
    let fast = script.fast().expect("compiles");
    let mut frame = Frame::boxed();
    let (mut ok, mut faults) = (0, 0);
    COUNTING.with(|c| c.set(true));
    ALLOCS.with(|a| a.set(0));
    for i in 0..2_000 {
        let m = MarketState {
            mid: 100.0 + i as f64,
            position: (i % 5) as f64 - 2.0,
            direction: if i % 7 == 0 { "up" } else { "down" },
            min_order_size: 1.0,
            ..MarketState::default()
        };
        match fast.run(&m, &mut frame) {
            Ok(_) => ok += 1,
            Err(_) => faults += 1,
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocs = ALLOCS.with(|a| a.get());
    assert!(ok > 100 && faults > 100, "{ok} decisions, {faults} faults");
    assert_eq!(allocs, 0, "{allocs} allocations in 2,000 calls");
}

/// The hot path with its socket: a [`LiveFeed`] on loopback feeding
/// [`HotPath`], as the hot thread runs it.
struct Hot(HotPath<NativeStrategy>, u64);

impl FeedHandler for Hot {
    fn on_frame(&mut self, frame: &[u8], recv_ns: i64, t_ready: u64, wire_ns: u64) -> bool {
        self.0.record_wire(wire_ns);
        let quotes = &mut self.1;
        self.0.on_frame(frame, recv_ns, t_ready, &mut |ev| {
            if let HotEvent::Quote { .. } = ev {
                *quotes += 1;
            }
        });
        false
    }
    fn on_snapshot(&mut self, symbol: Symbol, body: &[u8], recv_ns: i64) {
        let t = self.0.clock().now();
        self.0.on_snapshot(symbol, body, recv_ns, t, &mut |_| {});
    }
    fn on_disconnected(&mut self, _reason: Reason, now_ns: i64) {
        self.0.on_disconnect(now_ns, &mut |_| {});
    }
    fn on_idle(&mut self, now_ns: i64) {
        self.0.on_idle(now_ns, &mut |_| {});
    }
    fn wants_snapshot(&self, symbol: Symbol) -> bool {
        self.0.wants_snapshot(symbol)
    }
}

#[test]
fn reading_the_socket_and_quoting_allocates_nothing_after_warm_up() {
    let sim = Sim::start(SimConfig {
        source: SimSource::Synthetic { seed: 3, events_per_sec: 500.0 },
        // Server pings (answered with pongs) and our own pings both run.
        ping_every: Duration::from_millis(100),
        ..SimConfig::default()
    })
    .unwrap();
    let symbol = Symbol::new(b"BTCUSDT");
    let cfg = FeedConfig {
        symbols: vec![symbol],
        stream_url: Some(sim.ws_base()),
        rest_url: Some(sim.http_base()),
        ping_interval: Duration::from_millis(100),
        ..FeedConfig::default()
    };
    let mut hot = Hot(HotPath::with_symbols(HotConfig::default(), NativeStrategy, Clock::instant(), &[symbol]), 0);
    let mut feed = LiveFeed::start(cfg, Clock::instant()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !hot.0.market().book(symbol).is_some_and(|b| b.is_synced()) {
        feed.turn(&mut hot);
    }
    assert!(hot.0.market().book(symbol).unwrap().is_synced(), "never synced with the simulator");
    // Warm up: buffers grow to their working sizes.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(1500) {
        feed.turn(&mut hot);
    }
    let (frames0, quotes0, pongs0) = (feed.stats().frames, hot.1, feed.stats().pongs_received);
    COUNTING.with(|c| c.set(true));
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(2500) {
        feed.turn(&mut hot);
    }
    COUNTING.with(|c| c.set(false));
    let allocs = ALLOCS.with(|a| a.get());
    let (frames, quotes, pongs) =
        (feed.stats().frames - frames0, hot.1 - quotes0, feed.stats().pongs_received - pongs0);
    assert_eq!(feed.stats().disconnects_total(), 0);
    assert!(frames > 200 && quotes > 10 && pongs > 5, "frames {frames}, quotes {quotes}, pongs {pongs}");
    assert_eq!(allocs, 0, "{allocs} allocations over {frames} frames read from the socket");
}
