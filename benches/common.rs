//! Inputs shared by the benches: a realistic spot diff, built once.

#![allow(dead_code)]

/// A 10+10-level spot `depthUpdate` with 8-decimal strings, the shape and
/// size (~735 bytes) of a live BTCUSDT diff.
pub fn spot_diff_10x10() -> Vec<u8> {
    let mut bids = Vec::new();
    let mut asks = Vec::new();
    for i in 0..10 {
        bids.push(format!("[\"{}.{:02}000000\",\"{}.{:05}000\"]", 61837, 63 - i * 3, 3 + i % 4, 78826 - i * 1371));
        asks.push(format!("[\"{}.{:02}000000\",\"{}.{:05}000\"]", 61837, 64 + i * 3, 1 + i % 3, 54520 + i * 977));
    }
    format!(
        "{{\"e\":\"depthUpdate\",\"E\":1723161255408,\"s\":\"BTCUSDT\",\"U\":50093239208,\"u\":50093239224,\"b\":[{}],\"a\":[{}]}}",
        bids.join(","),
        asks.join(",")
    )
    .into_bytes()
}

/// The same diff inside the combined-stream wrapper.
pub fn spot_diff_10x10_combined() -> Vec<u8> {
    let mut v = b"{\"stream\":\"btcusdt@depth@100ms\",\"data\":".to_vec();
    v.extend_from_slice(&spot_diff_10x10());
    v.push(b'}');
    v
}
