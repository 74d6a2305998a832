//! Request signing for Binance spot: why every signed request can be trusted
//! by the exchange, and the one place that touches a secret.
//!
//! Two key types are supported ([`Signer`]):
//!
//! - **HMAC-SHA256** ([`HmacKey`]): the signature is the lower-case hex HMAC
//!   of the payload. Binance calls HMAC keys deprecated, but they are still
//!   what most accounts have.
//! - **Ed25519** ([`Ed25519Key`]), from a PKCS#8 PEM file: the signature is
//!   the base64 of the 64-byte signature; in a REST query string it is then
//!   percent-encoded (`+`, `/`, `=` are not query-safe). Only Ed25519 keys
//!   can log a WebSocket API session on, which the user-data stream needs.
//!
//! The payload is what goes on the wire: for REST the query string followed
//! by the body with no separator ([`rest_payload`]), values percent-encoded
//! ([`push_query_value`]); for the WebSocket API the parameters sorted by
//! name, `apiKey` included, and not percent-encoded ([`ws_api_payload`]).
//!
//! The crypto is `ring`, already in the build as rustls' provider. Key
//! material lives only inside `ring`'s key objects; `Debug` shows the key
//! type, never bytes, and no error here quotes a key file's content.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use ring::signature::KeyPair as _;

/// Why a signing key could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the Ed25519 key file {path} could not be read: {why}")]
    KeyFileUnreadable { path: String, why: String },
    #[error(
        "the Ed25519 key {origin} holds no \"-----BEGIN PRIVATE KEY-----\" block; Binance wants the unencrypted \
         PKCS#8 PEM that `openssl genpkey -algorithm ed25519 -out key.pem` writes"
    )]
    NoPrivateKeyBlock { origin: String },
    #[error(
        "the Ed25519 key {origin} is encrypted; decrypt it first (`openssl pkey -in key.pem -out plain.pem`) and \
         keep the plain file readable only by you"
    )]
    Encrypted { origin: String },
    #[error("the Ed25519 key {origin} is not valid base64 inside its PEM block")]
    BadBase64 { origin: String },
    #[error("the Ed25519 key {origin} is not an Ed25519 PKCS#8 private key ({why})")]
    NotEd25519 { origin: String, why: String },
    #[error("the HMAC secret key is empty")]
    EmptySecret,
}

/// Which kind of key signs requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Hmac,
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hmac => "HMAC-SHA256",
            Self::Ed25519 => "Ed25519",
        })
    }
}

/// An HMAC-SHA256 secret key.
pub struct HmacKey {
    key: ring::hmac::Key,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey([secret])")
    }
}

impl HmacKey {
    /// The key as Binance shows it (the ASCII string is the key bytes).
    pub fn new(secret: &str) -> Result<Self, SignError> {
        if secret.is_empty() {
            return Err(SignError::EmptySecret);
        }
        Ok(Self { key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()) })
    }

    /// Lower-case hex HMAC-SHA256 of `payload` (Binance accepts either case).
    pub fn sign_hex(&self, payload: &[u8]) -> String {
        hex(ring::hmac::sign(&self.key, payload).as_ref())
    }
}

/// An Ed25519 private key.
pub struct Ed25519Key {
    pair: ring::signature::Ed25519KeyPair,
}

impl fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The public key is not secret, and it is how a user tells keys apart.
        write!(f, "Ed25519Key(public {})", self.public_key_base64())
    }
}

impl Ed25519Key {
    /// Reads a PKCS#8 PEM file (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem_file(path: &Path) -> Result<Self, SignError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SignError::KeyFileUnreadable { path: origin.clone(), why: e.kind().to_string() })?;
        Self::from_pem(&text, &format!("in {origin}"))
    }

    /// Parses PEM text; `origin` says where it came from, for messages.
    pub fn from_pem(text: &str, origin: &str) -> Result<Self, SignError> {
        let origin = origin.to_string();
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(SignError::Encrypted { origin });
        }
        let der = pem_block(text, "PRIVATE KEY")
            .ok_or_else(|| SignError::NoPrivateKeyBlock { origin: origin.clone() })?
            .map_err(|()| SignError::BadBase64 { origin: origin.clone() })?;
        Self::from_pkcs8_der(&der, &origin)
    }

    /// Parses PKCS#8 DER, v1 (what openssl writes: no public key inside) or v2.
    pub fn from_pkcs8_der(der: &[u8], origin: &str) -> Result<Self, SignError> {
        ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(|pair| Self { pair })
            .map_err(|e| SignError::NotEd25519 { origin: origin.to_string(), why: e.to_string() })
    }

    /// Standard base64 of the 64-byte signature of `payload` (the WS-API form).
    pub fn sign_base64(&self, payload: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.pair.sign(payload).as_ref())
    }

    /// The 32-byte public key, base64 (to check it is the one registered).
    pub fn public_key_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.pair.public_key().as_ref())
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }
}

/// Whichever key the account uses.
#[derive(Debug)]
pub enum Signer {
    Hmac(HmacKey),
    Ed25519(Ed25519Key),
}

impl Signer {
    pub fn kind(&self) -> KeyKind {
        match self {
            Self::Hmac(_) => KeyKind::Hmac,
            Self::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// The REST `signature` parameter value, ready to append to a query
    /// string: hex for HMAC, percent-encoded base64 for Ed25519.
    pub fn rest_signature(&self, payload: &[u8]) -> String {
        match self {
            Self::Hmac(k) => k.sign_hex(payload),
            Self::Ed25519(k) => {
                let mut out = String::with_capacity(100);
                push_query_value(&k.sign_base64(payload), &mut out);
                out
            }
        }
    }

    /// The WebSocket API `signature` value (a JSON string, so not
    /// percent-encoded): hex for HMAC, base64 for Ed25519.
    pub fn ws_signature(&self, payload: &[u8]) -> String {
        match self {
            Self::Hmac(k) => k.sign_hex(payload),
            Self::Ed25519(k) => k.sign_base64(payload),
        }
    }
}

/// The REST payload: query string then body, no separator between them.
pub fn rest_payload(query: &str, body: &str) -> String {
    let mut s = String::with_capacity(query.len() + body.len());
    s.push_str(query);
    s.push_str(body);
    s
}

/// The WS-API payload: `name=value` pairs sorted by name and joined with
/// `&`, values as they are (UTF-8, not percent-encoded).
pub fn ws_api_payload(params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = String::new();
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

/// Appends `value` percent-encoded for a query string: every byte but the
/// RFC 3986 unreserved set becomes `%XX` (upper-case hex, as in Binance's
/// signed non-ASCII example). What is signed is exactly what is sent.
pub fn push_query_value(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// The DER inside the first `-----BEGIN {label}-----` block: `None` when
/// there is no such block, `Some(Err)` when its base64 is bad.
fn pem_block(text: &str, label: &str) -> Option<Result<Vec<u8>, ()>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    Some(base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded_like_binances_example() {
        let mut s = String::new();
        push_query_value("１２３４５６", &mut s);
        assert_eq!(s, "%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96");
        let mut s = String::new();
        push_query_value("mm.run-1_a~b:c/d+e=", &mut s);
        assert_eq!(s, "mm.run-1_a~b%3Ac%2Fd%2Be%3D");
    }

    #[test]
    fn ws_api_params_are_sorted_and_not_encoded() {
        let p = ws_api_payload(&[("timestamp", "1"), ("apiKey", "k"), ("symbol", "１２"), ("price", "0.1")]);
        assert_eq!(p, "apiKey=k&price=0.1&symbol=１２&timestamp=1");
    }

    #[test]
    fn pem_errors_never_quote_the_key() {
        let secret_body = "MC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let e = Ed25519Key::from_pem(&format!("-----BEGIN RSA KEY-----\n{secret_body}\n"), "in t.pem").unwrap_err();
        assert!(matches!(e, SignError::NoPrivateKeyBlock { .. }));
        let bad = format!("-----BEGIN PRIVATE KEY-----\n{secret_body}!!\n-----END PRIVATE KEY-----\n");
        let e = Ed25519Key::from_pem(&bad, "in t.pem").unwrap_err();
        assert!(matches!(e, SignError::BadBase64 { .. }), "{e:?}");
        assert!(!format!("{e} {e:?}").contains("MC4CAQAw"));
        let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(matches!(Ed25519Key::from_pem(enc, "x").unwrap_err(), SignError::Encrypted { .. }));
        assert_eq!(HmacKey::new("").unwrap_err(), SignError::EmptySecret);
    }

    #[test]
    fn openssl_v1_pkcs8_is_accepted() {
        // RFC 8410 section 10.3's example private key: PKCS#8 v1, the form
        // `openssl genpkey -algorithm ed25519` writes (no public key inside).
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
                   -----END PRIVATE KEY-----\n";
        let k = Ed25519Key::from_pem(pem, "RFC 8410").unwrap();
        // RFC 8410's matching public key, 19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1.
        assert_eq!(hex(k.public_key()), "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1");
        let sig = Signer::Ed25519(k).rest_signature(b"symbol=BTCUSDT&timestamp=1");
        assert!(!sig.contains(['+', '/', '=']), "{sig}");
    }
}
