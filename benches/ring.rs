//! One-way hand-off latency between two threads, pinned to cores 0 and 1
//! when possible: mmbot's ring (`src/ring.rs`) versus std's bounded channel,
//! in the same run. The producer stamps the clock, pushes, then waits ~2 us
//! (so the ring is empty and each message measures a hand-off, not a queue);
//! the consumer busy-polls and records now - stamp. Medians and tails print
//! in ns. Run: `cargo bench --bench ring`.

use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Barrier};
use std::thread;

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
}
