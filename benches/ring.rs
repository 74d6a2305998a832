//! One-way hand-off latency between two threads, pinned to cores 0 and 1
//! when possible: mmbot's ring (`src/ring.rs`) versus std's bounded channel,
//! in the same run. The producer stamps the clock, pushes, then waits ~2 us
//! (so the ring is empty and each message measures a hand-off, not a queue);
//! the consumer busy-polls and records now - stamp. Medians and tails print
//! in ns.
//!
//! Then the quote hand-off: a one-level `(Quote, Price)` through the ring's
//! `push_latest` (what the hot thread used before) and through the
//! latest-value slot (`src/ring/latest.rs`, what it uses now), in turn, four
//! rounds each. Each round prints the producer's cost (clock read before
//! and after the push or publish, while the consumer polls from the other
//! core: the time the hot thread spends handing a quote off) and the one-way
//! latency to the consumer. Run: `cargo bench --bench ring`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Barrier};
use std::thread;

use mmbot::exec::Quote;
use mmbot::hot::fixed::Price;
use mmbot::hot::msg::{Level, Symbol};
use mmbot::ring::latest::latest;
use mmbot::ring::ring;
use mmbot::stats::clock::Clock;
use mmbot::stats::latency::{Stage, StageHistograms};

const MESSAGES: usize = 200_000;

fn pin(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

fn pace(clock: &Clock, ns: u64) {
    let t = clock.now();
    while clock.ns(t, clock.now()) < ns {
        std::hint::spin_loop();
    }
}

fn report(name: &str, h: &StageHistograms) {
    let p = h.percentiles(Stage::Quote);
    println!(
        "{name:28} count {:>7}  p50 {:>6} ns  p90 {:>6} ns  p99 {:>7} ns  p99.9 {:>8} ns",
        p.count, p.p50, p.p90, p.p99, p.p999
    );
}

/// Quotes handed off per round of the quote comparison.
const QUOTES: usize = 100_000;

/// One round of the quote hand-off: `send` runs on this thread (core 0),
/// timed; `recv` polls on core 1 until told to stop. Returns the producer's
/// cost and the one-way latency.
fn quote_round(
    clock: Clock,
    send: impl Fn(&(Quote, Price)),
    mut recv: impl FnMut() -> Option<(Quote, Price)> + Send + 'static,
) -> (StageHistograms, StageHistograms) {
    let stop = Arc::new(AtomicBool::new(false));
    let go = Arc::new(Barrier::new(2));
    let (g, st) = (go.clone(), stop.clone());
    let consumer = thread::spawn(move || {
        pin(1);
        g.wait();
        let mut h = StageHistograms::new();
        while !st.load(Ordering::Relaxed) {
            if let Some((q, _)) = recv() {
                h.record(Stage::Quote, clock.ns(q.time_ns as u64, clock.now()));
            }
        }
        h
    });
    pin(0);
    go.wait();
    let mut cost = StageHistograms::new();
    let mut quote = Quote::pulled(Symbol::new(b"BTCUSDT"), 0, 1);
    quote.bid = Some(Level::new(6_000_000_000_000, 1_000_000));
    quote.ask = Some(Level::new(6_000_001_000_000, 1_000_000));
    for i in 0..QUOTES {
        quote.update_id = i as u64;
        let t = clock.now();
        quote.time_ns = t as i64;
        send(&(quote, Price(1_000_000)));
        cost.record(Stage::Quote, clock.ns(t, clock.now()));
        pace(&clock, 2_000);
    }
    pace(&clock, 100_000);
    stop.store(true, Ordering::Relaxed);
    (cost, consumer.join().unwrap())
}

fn main() {
    let clock = Clock::calibrate();
    let cores = core_affinity::get_core_ids().map_or(0, |c| c.len());
    println!("clock {:?}, {} cores visible", clock.source(), cores);

    // mmbot ring
    let (tx, mut rx) = ring::<u64>(1024);
    let go = Arc::new(Barrier::new(2));
    let g = go.clone();
    let consumer = thread::spawn(move || {
        let pinned = pin(1);
        g.wait();
        let mut h = StageHistograms::new();
        let mut n = 0;
        while n < MESSAGES {
            if let Some(stamp) = rx.pop() {
                h.record(Stage::Quote, clock.ns(stamp, clock.now()));
                n += 1;
            }
        }
        (h, pinned)
    });
    let pinned_p = pin(0);
    go.wait();
    for _ in 0..MESSAGES {
        tx.push(clock.now());
        pace(&clock, 2_000);
    }
    let (h, pinned_c) = consumer.join().unwrap();
    println!("pinned: producer {pinned_p}, consumer {pinned_c}");
    report("mmbot ring (crossbeam)", &h);

    // Baseline: std bounded channel, same protocol.
    let (stx, srx) = sync_channel::<u64>(1024);
    let go = Arc::new(Barrier::new(2));
    let g = go.clone();
    let consumer = thread::spawn(move || {
        pin(1);
        g.wait();
        let mut h = StageHistograms::new();
        for _ in 0..MESSAGES {
            loop {
                if let Ok(stamp) = srx.try_recv() {
                    h.record(Stage::Quote, clock.ns(stamp, clock.now()));
                    break;
                }
            }
        }
        h
    });
    go.wait();
    for _ in 0..MESSAGES {
        let _ = stx.try_send(clock.now());
        pace(&clock, 2_000);
    }
    report("std sync_channel (baseline)", &consumer.join().unwrap());

    println!("quote hand-off, {QUOTES} quotes 2 us apart, in turn (producer cost = time to hand one off):");
    for round in 1..=4 {
        let (tx, mut rx) = ring::<(Quote, Price)>(8);
        let (cost, way) = quote_round(clock, move |v| tx.push_latest(*v), move || rx.latest());
        report(&format!("{round}: ring push_latest, cost"), &cost);
        report(&format!("{round}: ring push_latest, 1-way"), &way);
        let (tx, mut rx) = latest::<(Quote, Price)>();
        let (cost, way) = quote_round(clock, move |v| tx.publish(v), move || rx.latest());
        report(&format!("{round}: latest slot, cost"), &cost);
        report(&format!("{round}: latest slot, 1-way"), &way);
    }
}
