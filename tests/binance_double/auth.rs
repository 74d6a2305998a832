//! Request signatures and timing, checked as the docs say a signed request is checked:
//! rest-api.md §SIGNED Endpoint security, §Timing security, §SIGNED Endpoint Examples (HMAC Keys,
//! Ed25519 Keys); web-socket-api.md §SIGNED request security and its HMAC / Ed25519 examples.
//!
//! REST payload: the query string concatenated with the body, no separator, as sent (already
//! percent-encoded), without the `signature` pair. WebSocket payload: every param except
//! `signature`, sorted by name, `name=value` joined by `&`, not percent-encoded.

use base64::Engine as _;
use ring::{hmac, signature};

use super::config::{ApiKey, KeySecret};

/// A refusal with Binance code and message (errors.md).
pub type Refusal = (i64, String);

/// Removes the `signature=` pair from a raw `a=1&b=2` string; returns (rest, signature).
pub fn split_signature(raw: &str) -> (String, Option<String>) {
    let mut sig = None;
    let kept: Vec<&str> = raw
        .split('&')
        .filter(|p| {
            if let Some(v) = p.strip_prefix("signature=") {
                sig = Some(v.to_string());
                false
            } else {
                true
            }
        })
        .collect();
    (kept.join("&"), sig)
}

/// The WebSocket signature payload: every param but `signature`, sorted by name,
/// `name=value` joined by `&`, not percent-encoded (web-socket-api.md §SIGNED request example (HMAC)).
pub fn ws_payload(params: &std::collections::BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(n, _)| n.as_str() != "signature")
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Checks `signature` over `payload` with `key`. HMAC signatures are hex and not
/// case-sensitive; Ed25519 ones are base64 and case-sensitive (§Signature Case Sensitivity).
pub fn verify(key: &ApiKey, payload: &[u8], sig: &str) -> Result<(), Refusal> {
    let bad = || (-1022, "Signature for this request is not valid.".to_string());
    match &key.secret {
        KeySecret::Hmac(secret) => {
            let bytes = hex_decode(sig).ok_or_else(bad)?;
            let k = hmac::Key::new(hmac::HMAC_SHA256, secret);
            hmac::verify(&k, payload, &bytes).map_err(|_| bad())
        }
        KeySecret::Ed25519Public(pk) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(sig.as_bytes()).map_err(|_| bad())?;
            signature::UnparsedPublicKey::new(&signature::ED25519, pk).verify(payload, &bytes).map_err(|_| bad())
        }
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 256 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// rest-api.md §Timing security: `timestamp` in ms or µs; `recvWindow` in ms with up to three
/// decimals, default 5000, at most 60000; accepted when
/// `timestamp < serverTime + 1 second && serverTime - timestamp <= recvWindow`.
pub fn check_timing(timestamp: Option<&str>, recv_window: Option<&str>, server_now_us: i64) -> Result<(), Refusal> {
    let Some(ts) = timestamp.filter(|s| !s.is_empty()) else {
        return Err((-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.".into()));
    };
    let ts: i64 = ts.parse().map_err(|_| {
        (-1100, "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'.".to_string())
    })?;
    // Microseconds have 16 digits today, milliseconds 13.
    if ts < 0 {
        return Err((
            -1100,
            "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'.".into(),
        ));
    }
    let ts_us = if ts >= 100_000_000_000_000 { ts } else { ts.saturating_mul(1000) };
    let rw_us = match recv_window {
        None => 5_000_000,
        Some(r) => {
            parse_ms_3dp(r).ok_or_else(|| (-1130, "Data sent for parameter 'recvWindow' is not valid.".to_string()))?
        }
    };
    if rw_us > 60_000_000 {
        return Err((-1130, "Data sent for parameter 'recvWindow' is not valid.".into()));
    }
    if ts_us >= server_now_us.saturating_add(1_000_000) {
        return Err((-1021, "Timestamp for this request was 1000ms ahead of the server's time.".into()));
    }
    if server_now_us.saturating_sub(ts_us) > rw_us {
        return Err((-1021, "Timestamp for this request is outside of the recvWindow.".into()));
    }
    Ok(())
}

/// `"6000.346"` → 6_000_346 µs; at most three decimals.
fn parse_ms_3dp(s: &str) -> Option<i64> {
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    if i.is_empty()
        || i.len() > 9
        || f.len() > 3
        || !i.bytes().all(|b| b.is_ascii_digit())
        || !f.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut us: i64 = i.parse::<i64>().ok()? * 1000;
    let mut scale = 100;
    for b in f.bytes() {
        us += i64::from(b - b'0') * scale;
        scale /= 10;
    }
    Some(us)
}

/// Percent-decodes a query component (`+` is a space in form encoding).
pub fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
