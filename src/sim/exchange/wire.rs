//! What both APIs share on the wire: decoded parameters, signature and
//! timestamp checks, Binance's error shape and number formats.
//!
//! Signing (rest-api.md §SIGNED Endpoint Examples; web-socket-api.md
//! §SIGNED request example): REST signs the query then the body as
//! received; the WebSocket API signs its parameters sorted alphabetically,
//! not percent-encoded. Timing (rest-api.md §Timing security): a request is
//! taken when `timestamp < serverTime + 1000` and
//! `serverTime - timestamp <= recvWindow` (default 5000, at most 60000).

use base64::Engine as _;

use crate::exec::binance::sign::HmacKey;
use crate::feed::endpoint::percent_decode;
use crate::hot::fixed::{Qty, SCALE};
use crate::sim::exchange::SimKey;

/// A refusal as Binance words it: HTTP status, code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status}: {code} {msg}")]
pub struct ApiError {
    pub status: u16,
    pub code: i64,
    pub msg: String,
    /// Extra JSON (`data`): cancelReplace's halves, a ban's `retryAfter`.
    pub data: Option<String>,
    /// Seconds to wait (`Retry-After`, 429 and 418 only).
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, code: i64, msg: impl Into<String>) -> Self {
        Self { status, code, msg: msg.into(), data: None, retry_after_s: None }
    }

    /// The error object `{"code":..,"msg":..[,"data":..]}` (the REST body,
    /// the WebSocket API's `error`).
    pub fn body(&self) -> String {
        match &self.data {
            Some(data) => format!("{{\"code\":{},\"msg\":{},\"data\":{data}}}", self.code, json_str(&self.msg)),
            None => format!("{{\"code\":{},\"msg\":{}}}", self.code, json_str(&self.msg)),
        }
    }
}

pub(crate) fn bad(code: i64, msg: impl Into<String>) -> ApiError {
    ApiError::new(400, code, msg)
}

pub(crate) fn mandatory(name: &str) -> ApiError {
    bad(-1102, format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."))
}

pub(crate) fn illegal(name: &str) -> ApiError {
    bad(-1100, format!("Illegal characters found in parameter '{name}'."))
}

pub(crate) fn invalid_key() -> ApiError {
    ApiError::new(401, -2015, "Invalid API-key, IP, or permissions for action.")
}

/// Decoded request parameters (REST: query then body; WS-API: `params`).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(query: &str, body: &str) -> Self {
        let mut v = Vec::new();
        for part in query.split('&').chain(body.split('&')) {
            if part.is_empty() {
                continue;
            }
            let (k, val) = part.split_once('=').unwrap_or((part, ""));
            v.push((percent_decode(k), percent_decode(val)));
        }
        Self(v)
    }

    /// A WebSocket API `params` object: strings as sent, other values
    /// printed as JSON (what the client signed).
    pub fn from_json(params: Option<&serde_json::Map<String, serde_json::Value>>) -> Self {
        Self(
            params
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A decimal parameter in 1e-8 units.
    pub fn decimal(&self, name: &str) -> Result<i64, ApiError> {
        let v = self.get(name).ok_or_else(|| mandatory(name))?;
        v.parse::<Qty>().map(|q| q.0).map_err(|_| {
            bad(
                -1100,
                format!(
                    "Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."
                ),
            )
        })
    }

    /// The WS-API signature payload: every parameter but `signature`,
    /// sorted by name, `k=v` joined by `&`, not percent-encoded.
    pub fn ws_payload(&self) -> String {
        let signed: Vec<(&str, &str)> =
            self.0.iter().filter(|(k, _)| k != "signature").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        crate::exec::binance::sign::ws_api_payload(&signed)
    }
}

/// A request's `timestamp` in ms and its `recvWindow` (µs timestamps are
/// taken too), both checked against `now` (FACTS 4.7).
pub fn check_time(ts: Option<&str>, window: Option<&str>, now: i64) -> Result<(i64, i64), ApiError> {
    let ts = ts.ok_or_else(|| mandatory("timestamp"))?;
    let mut ts: i64 = ts.parse().map_err(|_| illegal("timestamp"))?;
    if ts > 10_000_000_000_000 {
        ts /= 1000;
    }
    let window: f64 = match window {
        Some(w) => w.parse().map_err(|_| illegal("recvWindow"))?,
        None => 5000.0,
    };
    if !(0.0..=60_000.0).contains(&window) {
        return Err(bad(-1131, "recvWindow must be less than 60000"));
    }
    if ts >= now + 1000 {
        return Err(bad(-1021, "Timestamp for this request was 1000ms ahead of the server's time."));
    }
    if (now - ts) as f64 > window {
        return Err(bad(-1021, "Timestamp for this request is outside of the recvWindow."));
    }
    Ok((ts, window as i64))
}

/// The REST payload a signature covers: the query and then the body, each
/// with its `signature` parameter taken out, byte for byte as received.
pub fn signed_payload(query: &str, body: &str) -> String {
    let strip = |s: &str| s.split('&').filter(|kv| !kv.starts_with("signature=")).collect::<Vec<_>>().join("&");
    let mut p = strip(query);
    p.push_str(&strip(body));
    p
}

/// Verifies a signature (already percent-decoded for REST; raw for the
/// WS-API). HMAC is hex and case-insensitive; Ed25519 is base64.
pub fn verify(key: &SimKey, payload: &[u8], sig: &str) -> bool {
    match key {
        SimKey::Hmac(secret) => {
            HmacKey::new(secret).is_ok_and(|k| k.sign_hex(payload).eq_ignore_ascii_case(sig.trim()))
        }
        SimKey::Ed25519(public) => {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(sig) else { return false };
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public).verify(payload, &raw).is_ok()
        }
    }
}

/// Binance's 8-decimal form (`"0.10264410"`).
pub fn fmt8(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let s = SCALE as u64;
    format!("{sign}{}.{:08}", a / s, a % s)
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_decimals_and_percent_decoding() {
        assert_eq!(fmt8(-150_000_000), "-1.50000000");
        assert_eq!(fmt8(1), "0.00000001");
        assert_eq!(percent_decode("a%2Bb%3D%zz%"), "a+b=%zz%");
    }

    #[test]
    fn hmac_vector_from_the_docs_verifies() {
        let key = SimKey::Hmac("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j".into());
        let q = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        let sig = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";
        let full = format!("{q}&signature={sig}");
        assert_eq!(signed_payload(&full, ""), q);
        assert!(verify(&key, q.as_bytes(), &sig.to_ascii_uppercase()));
        assert!(!verify(&key, q.as_bytes(), "00"));
    }

    #[test]
    fn ws_api_hmac_vector_from_the_docs_verifies() {
        // web-socket-api.md §SIGNED request example (HMAC).
        let key = SimKey::Hmac("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j".into());
        let v: serde_json::Value = serde_json::from_str(
            r#"{"symbol":"BTCUSDT","side":"SELL","type":"LIMIT","timeInForce":"GTC","quantity":"0.01000000",
                "price":"52000.00","recvWindow":100,"timestamp":1645423376532,
                "apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"}"#,
        )
        .unwrap();
        let p = Params::from_json(v.as_object());
        assert!(verify(
            &key,
            p.ws_payload().as_bytes(),
            "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
        ));
    }

    #[test]
    fn timestamps_follow_the_recv_window_rule() {
        assert!(check_time(Some("10000"), None, 10_500).is_ok());
        assert_eq!(check_time(Some("11000"), None, 10_000).unwrap_err().code, -1021);
        assert_eq!(check_time(Some("1000"), Some("5000"), 10_000).unwrap_err().code, -1021);
        assert_eq!(check_time(Some("x"), None, 0).unwrap_err().code, -1100);
        assert_eq!(check_time(None, None, 0).unwrap_err().code, -1102);
    }
}
