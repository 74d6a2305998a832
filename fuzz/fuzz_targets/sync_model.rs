//! Model-based fuzzing of the book sync: the bytes drive a true market and a
//! faulty delivery (drops, duplicates, swaps, old, new and mid-event
//! snapshots, lost connections) into `SyncedBook`, which must equal the
//! true book level by level whenever it says it is synced (see
//! fuzz/model/sync_model.rs). The first byte picks spot (`U`/`u` chaining)
//! or USD-M (`pu` chaining).
//!
//! Run: `cargo fuzz run sync_model` (from the repository root; see README).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mmbot::hot::msg::Market;

#[path = "../model/sync_model.rs"]
mod sync_model;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let market = if which & 1 == 0 { Market::Spot } else { Market::UsdM };
    sync_model::run(market, rest);
});
