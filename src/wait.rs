//! Waiting that a stop flag can cut short: side threads (feed, ai, exec)
//! wait out back-offs with [`sleep_unless`] and still end promptly. Kept
//! at the bottom of the layout so feed and ai need not reach up into
//! `runtime` for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Sleeps `d` in short slices (side threads only); false if `stop` was
/// raised meanwhile, so a thread waiting out a backoff still ends promptly.
pub fn sleep_unless(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(10)));
    }
}
