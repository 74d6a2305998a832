//! Small helpers for tests that drive the double directly: decimal literals, the docs' HMAC
//! key as a REST client, a LIMIT_MAKER shortcut, JSON field readers, and waiting for one kind
//! of pushed user-data event. Every wait is bounded.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{Rest, RestResponse, Signer, WsClient};
use super::config::{DOC_HMAC_KEY, DOC_HMAC_SECRET};
use super::fixed;
use super::BinanceDouble;

/// `"100.25"` → fixed point (panics on a bad literal: test code only).
pub fn fx(s: &str) -> i64 {
    fixed::parse(s).unwrap_or_else(|e| panic!("bad decimal literal {s:?} in a test: {e:?}"))
}

/// The signer for the docs' HMAC key (the default config's key).
pub fn doc_hmac() -> Signer {
    Signer::Hmac(DOC_HMAC_SECRET.as_bytes().to_vec())
}

/// A REST client for `d` with the docs' HMAC key.
pub fn doc_rest(d: &BinanceDouble) -> Rest {
    Rest::new(&d.rest_url(), DOC_HMAC_KEY, doc_hmac())
}

/// `POST /api/v3/order` on BTCUSDT with type LIMIT_MAKER, signed, plus `extra` params.
pub fn place_maker(r: &Rest, side: &str, price: &str, qty: &str, extra: &[(&str, &str)]) -> RestResponse {
    place_maker_on(r, "BTCUSDT", side, price, qty, extra)
}

/// [`place_maker`] on `symbol`.
pub fn place_maker_on(
    r: &Rest,
    symbol: &str,
    side: &str,
    price: &str,
    qty: &str,
    extra: &[(&str, &str)],
) -> RestResponse {
    let mut p = vec![("symbol", symbol), ("side", side), ("type", "LIMIT_MAKER"), ("price", price), ("quantity", qty)];
    p.extend_from_slice(extra);
    r.call("POST", "/api/v3/order", &p, true)
}

/// String field or "".
pub fn str_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Integer field or `i64::MIN`.
pub fn int_of(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(i64::MIN)
}

/// Waits up to 5 s for the next pushed frame whose `event.e` is `kind`; earlier other frames
/// are dropped. Panics when none comes (test code only).
pub fn next_event_of(ws: &mut WsClient, kind: &str) -> Value {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Ok(Some(v)) = ws.next_event(Duration::from_millis(50)) {
            if str_of(&v["event"], "e") == kind {
                return v;
            }
        }
    }
    panic!("no {kind} event within 5 s");
}
