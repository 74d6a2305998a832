//! A plain client for the double's self-tests (and any test that wants to poke the double
//! directly): signs as rest-api.md §SIGNED Endpoint Examples and web-socket-api.md §SIGNED request
//! example describe, calls REST with ureq and the WebSocket API with tungstenite.
//! Deliberately not mmbot's client, so the double's self-tests do not depend on mmbot.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Map, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::config::{ApiKey, KeySecret};

/// Host clock in ms.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// How a client signs.
#[derive(Clone)]
pub enum Signer {
    Hmac(Vec<u8>),
    Ed25519(Arc<Ed25519KeyPair>),
}

impl Signer {
    /// HMAC: lowercase hex; Ed25519: standard base64.
    pub fn sign(&self, payload: &str) -> String {
        match self {
            Signer::Hmac(secret) => {
                let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
                ring::hmac::sign(&k, payload.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
            }
            Signer::Ed25519(kp) => {
                base64::engine::general_purpose::STANDARD.encode(kp.sign(payload.as_bytes()).as_ref())
            }
        }
    }
}

/// A fresh Ed25519 key: the signer for the client and the `ApiKey` to give the double.
pub fn new_ed25519_key(api_key: &str) -> (Signer, ApiKey) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("ring generates an Ed25519 key");
    let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("ring reads its own PKCS#8");
    let public = kp.public_key().as_ref().to_vec();
    (Signer::Ed25519(Arc::new(kp)), ApiKey { key: api_key.to_string(), secret: KeySecret::Ed25519Public(public) })
}

/// A fresh Ed25519 private key as PKCS#8 PEM (for a client that loads a key file) and the
/// matching `ApiKey` for the double.
pub fn new_ed25519_pem(api_key: &str) -> (String, ApiKey) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("ring generates an Ed25519 key");
    let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let key = ApiKey::ed25519_from_private_pem(api_key, &pem).expect("ring reads its own PKCS#8");
    (pem, key)
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
pub fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An HTTP answer.
#[derive(Debug)]
pub struct RestResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl RestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// The Binance error code, when the body is an error.
    pub fn code(&self) -> Option<i64> {
        self.body.get("code").and_then(Value::as_i64)
    }
}

/// REST client.
pub struct Rest {
    pub base: String,
    pub api_key: String,
    pub signer: Signer,
    /// Added to the host clock for `timestamp`.
    pub clock_skew_ms: i64,
    agent: ureq::Agent,
}

impl Rest {
    pub fn new(base: &str, api_key: &str, signer: Signer) -> Rest {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Rest { base: base.to_string(), api_key: api_key.to_string(), signer, clock_skew_ms: 0, agent }
    }

    /// Sends `verb path` with `query` (and `body` as a form), signing over query + body when
    /// `signed` (rest-api.md §SIGNED Endpoint Examples: "query string concatenated without
    /// separator to the HTTP body"). The signature goes at the end of the query string.
    pub fn call_split(
        &self,
        verb: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &[(&str, &str)],
        signed: bool,
    ) -> RestResponse {
        let mut q: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect();
        if signed {
            q.push(format!("timestamp={}", now_ms() + self.clock_skew_ms));
        }
        let body_s: String = body.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect::<Vec<_>>().join("&");
        let mut qs = q.join("&");
        if signed {
            let sig = self.signer.sign(&format!("{qs}{body_s}"));
            qs = format!("{qs}&signature={}", pct(&sig));
        }
        self.raw(verb, path, &qs, &body_s, Some(&self.api_key))
    }

    /// Sends with everything in the query string.
    pub fn call(&self, verb: &str, path: &str, params: &[(&str, &str)], signed: bool) -> RestResponse {
        self.call_split(verb, path, params, &[], signed)
    }

    /// Sends exactly this query and body.
    pub fn raw(&self, verb: &str, path: &str, query: &str, body: &str, api_key: Option<&str>) -> RestResponse {
        let url = if query.is_empty() {
            format!("{}{}", self.base, path)
        } else {
            format!("{}{}?{}", self.base, path, query)
        };
        let res = match verb {
            "GET" => {
                let mut r = self.agent.get(&url);
                if let Some(k) = api_key {
                    r = r.header("X-MBX-APIKEY", k);
                }
                r.call()
            }
            "DELETE" => {
                let mut r = self.agent.delete(&url);
                if let Some(k) = api_key {
                    r = r.header("X-MBX-APIKEY", k);
                }
                r.call()
            }
            _ => {
                let mut r = self.agent.post(&url).header("Content-Type", "application/x-www-form-urlencoded");
                if let Some(k) = api_key {
                    r = r.header("X-MBX-APIKEY", k);
                }
                r.send(body)
            }
        };
        match res {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let headers =
                    resp.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                RestResponse { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
            }
            Err(e) => RestResponse { status: 0, headers: vec![], body: Value::String(format!("transport error: {e}")) },
        }
    }
}

/// WebSocket API client. Responses and pushed events arrive on one socket; `request` returns
/// the response with the matching id and keeps events for `next_event`.
pub struct WsClient {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    events: VecDeque<Value>,
    next_id: u64,
}

impl WsClient {
    pub fn connect(url: &str) -> Result<WsClient, String> {
        let (ws, _) = tungstenite::connect(url).map_err(|e| format!("connect {url}: {e}"))?;
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
        }
        Ok(WsClient { ws, events: VecDeque::new(), next_id: 1 })
    }

    /// Next frame as JSON within `timeout`; `Err` when the connection is gone.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Value>, String> {
        let end = Instant::now() + timeout;
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Ok(serde_json::from_str(t.as_str()).ok()),
                Ok(Message::Close(_)) => return Err("closed by server".into()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(format!("{e}")),
            }
            if Instant::now() >= end {
                return Ok(None);
            }
        }
    }

    /// Sends `{"id","method","params"}` and waits for the answer with that id.
    pub fn request(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = format!("r{}", self.next_id);
        self.next_id += 1;
        let mut req = Map::new();
        req.insert("id".into(), Value::String(id.clone()));
        req.insert("method".into(), Value::String(method.into()));
        if !params.is_null() {
            req.insert("params".into(), params);
        }
        self.ws.send(Message::text(Value::Object(req).to_string())).map_err(|e| format!("send: {e}"))?;
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Some(v) = self.recv(Duration::from_millis(50))? {
                if v.get("id").and_then(Value::as_str) == Some(id.as_str()) {
                    return Ok(v);
                }
                self.events.push_back(v);
            }
        }
        Err(format!("no answer to {method} within 10 s"))
    }

    /// Adds `apiKey`, `timestamp` and the signature over the sorted params
    /// (web-socket-api.md §SIGNED request example: sorted by name, not percent-encoded).
    pub fn signed(&mut self, method: &str, params: Value, api_key: &str, signer: &Signer) -> Result<Value, String> {
        let mut p = match params {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        p.insert("apiKey".into(), Value::String(api_key.into()));
        p.entry("timestamp").or_insert(Value::from(now_ms()));
        let mut pairs: Vec<(String, String)> = p
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                )
            })
            .collect();
        pairs.sort();
        let payload = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        p.insert("signature".into(), Value::String(signer.sign(&payload)));
        self.request(method, Value::Object(p))
    }

    /// Next pushed frame that is not a response (events, serverShutdown), within `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Value>, String> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(v) = self.recv(Duration::from_millis(20))? {
                if v.get("id").is_none() {
                    return Ok(Some(v));
                }
            }
        }
        Ok(None)
    }

    /// Sends raw text (for malformed-input tests).
    pub fn send_text(&mut self, t: &str) -> Result<(), String> {
        self.ws.send(Message::text(t.to_string())).map_err(|e| format!("send: {e}"))
    }
}
