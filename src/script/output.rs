//! What a script's return value means: a map of prices or distances from
//! the mid, `"pull"` or `()`; anything else is an output of the wrong shape.

use rhai::{Dynamic, Map};

use crate::hot::strategy::{Decision, SideIntent};
use crate::script::MarketState;

fn num(map: &Map, key: &str) -> Option<f64> {
    let v = map.get(key)?;
    v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64)).or(Some(f64::NAN))
}

/// Turns the script's return value into a decision (`None`: wrong shape).
pub fn decision_from(out: &Dynamic, m: &MarketState, default_size: f64) -> Option<Decision> {
    let pull = out.is_unit() || out.read_lock::<rhai::ImmutableString>().is_some_and(|s| s.as_str() == "pull");
    if pull {
        return Some(Decision { pull: true, ..Decision::default() });
    }
    let map = out.read_lock::<Map>()?;
    // A price, or a distance from the mid.
    let bid = num(&map, "bid").or_else(|| num(&map, "bid_spread").map(|d| m.mid - d));
    let ask = num(&map, "ask").or_else(|| num(&map, "ask_spread").map(|d| m.mid + d));
    let size = |key| num(&map, key).unwrap_or(default_size);
    Some(Decision {
        bid: bid.map(|price| SideIntent { price, size: size("bid_size") }),
        ask: ask.map(|price| SideIntent { price, size: size("ask_size") }),
        ..Decision::default()
    })
}
