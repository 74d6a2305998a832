//! Fuzzes the parser and the synced books with whatever libFuzzer makes:
//! the input is split into frames at newlines (so one input can carry a
//! snapshot followed by diffs) and fed to one `MarketData`. Nothing may panic,
//! and no crossed book may ever be reported as applied.
//!
//! Run: `cargo fuzz run parse` (from the repository root; see README).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mmbot::hot::market::{BookSizes, Event, MarketData};

fuzz_target!(|data: &[u8]| {
    let sizes = BookSizes {
        capacity: 64,
        max_message_levels: 64,
        buffer_events: 16,
        buffer_levels: 256,
        max_symbols: 4,
    };
    let mut md = MarketData::new(sizes);
    md.verify_tickers(true);
    for frame in data.split(|&b| b == b'\n') {
        md.on_frame(frame, &mut |ev| {
            if let Event::Depth { book, .. } = ev {
                assert!(!book.is_crossed());
            }
        });
    }
});
