//! The sync model check of fuzz/model/sync_model.rs as a bounded proptest,
//! so CI exercises it on a stable toolchain without cargo-fuzz: arbitrary
//! bytes drive a true market and a faulty delivery into `SyncedBook`, which
//! must equal the true book level by level whenever it says it is synced,
//! for spot (`U`/`u` chaining) and USD-M (`pu` chaining), and must resync
//! once the faults stop.

#[path = "../fuzz/model/sync_model.rs"]
mod sync_model;

use mmbot::hot::msg::Market;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn spot_book_equals_the_true_book_whenever_synced(data in proptest::collection::vec(any::<u8>(), 0..1500)) {
        sync_model::run(Market::Spot, &data);
    }

    #[test]
    fn usdm_book_equals_the_true_book_whenever_synced(data in proptest::collection::vec(any::<u8>(), 0..1500)) {
        sync_model::run(Market::UsdM, &data);
    }
}

/// Random bytes do reach synced books often enough to mean something.
#[test]
fn the_model_checks_synced_books_for_both_markets() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..4000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    for market in [Market::Spot, Market::UsdM] {
        let o = sync_model::run(market, &data);
        assert!(o.checks > 100 && o.events > 50 && o.snapshots > 20, "{market:?}: {o:?}");
    }
}
