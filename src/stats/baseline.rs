//! The baseline mmbot's parser is measured against, kept in one place so the
//! criterion bench and `mmbot bench` measure the same thing: the usual
//! serde_json typed parse of a diff into `Vec<(String, String)>`, then `f64`.
//! Never used for trading.

use serde::Deserialize;

/// A diff as the baseline reads it.
#[allow(non_snake_case, dead_code)]
#[derive(Deserialize)]
pub struct SerdeDiff {
    e: String,
    E: u64,
    s: String,
    U: u64,
    u: u64,
    b: Vec<(String, String)>,
    a: Vec<(String, String)>,
}

/// A combined-stream frame around a [`SerdeDiff`].
#[derive(Deserialize)]
struct SerdeFrame {
    data: SerdeDiff,
}

/// Levels as the baseline holds them.
pub type FloatLevels = Vec<(f64, f64)>;

fn to_f64(d: SerdeDiff) -> Option<(u64, FloatLevels, FloatLevels)> {
    let conv = |v: Vec<(String, String)>| -> Option<FloatLevels> {
        v.iter().map(|(p, q)| Some((p.parse().ok()?, q.parse().ok()?))).collect()
    };
    Some((d.u, conv(d.b)?, conv(d.a)?))
}

/// Parses a raw diff (`{"e":"depthUpdate",...}`) the baseline way.
pub fn parse_raw(frame: &[u8]) -> Option<(u64, FloatLevels, FloatLevels)> {
    to_f64(serde_json::from_slice(frame).ok()?)
}

/// Parses a combined-stream diff (`{"stream":..,"data":{...}}`) the baseline way.
pub fn parse_combined(frame: &[u8]) -> Option<(u64, FloatLevels, FloatLevels)> {
    to_f64(serde_json::from_slice::<SerdeFrame>(frame).ok()?.data)
}
