//! The hot path allocates nothing per event after warm-up: a counting global
//! allocator watches `HotPath::on_frame` over thousands of realistic diffs,
//! trades and bookTickers (and malformed frames) in a debug build.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mmbot::feed::synthetic;
use mmbot::hot::engine::{HotConfig, HotEvent, HotPath};
use mmbot::hot::strategy::NativeStrategy;
use mmbot::stats::clock::Clock;

/// Counts allocations made by the current thread while `COUNTING` is set.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn hot_path_allocates_nothing_per_event() {
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
            frames.push(br#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","U":"x"}}"#.to_vec());
            frames.push(b"not json at all".to_vec());
        }
    }
    let mut hot = HotPath::new(HotConfig::default(), NativeStrategy, Clock::instant());
    let mut quotes = 0u64;
    let mut run = |hot: &mut HotPath<NativeStrategy>, range: std::ops::Range<usize>| {
        for (i, f) in frames[range].iter().enumerate() {
            hot.on_frame(f, i as i64 * 1_000_000, hot.clock().now(), &mut |ev| {
                if let HotEvent::Quote { .. } = ev {
                    quotes += 1;
                }
            });
        }
    };
    let warm = frames.len() / 10;
    run(&mut hot, 0..warm);
    COUNTING.with(|c| c.set(true));
    run(&mut hot, warm..frames.len());
    COUNTING.with(|c| c.set(false));
    let allocs = ALLOCS.with(|a| a.get());
    assert!(quotes > 2_000, "only {quotes} quotes: the hot path did not run");
    assert!(hot.market().stats().rejected > 0 && hot.market().stats().trades > 0);
    assert_eq!(allocs, 0, "{allocs} allocations in {} frames after warm-up", frames.len() - warm);
}
