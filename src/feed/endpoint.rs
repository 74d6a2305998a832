//! Where the feed connects: market presets (spot, USD-M, spot testnet), the
//! combined-stream URL for a set of symbols, and the small URL parser the
//! connector needs (`ws://`, `wss://`, `http://`, `https://`).
//!
//! Presets follow FACTS.md section 3: spot streams on
//! `wss://stream.binance.com:9443`, USD-M high-frequency streams on the
//! `/public` route of `wss://fstream.binance.com` (the unrouted legacy URL
//! was retired in 2026), REST depth on `/api/v3/depth` and `/fapi/v1/depth`.
//! Every URL can be overridden so the simulator and testnets work.

use std::fmt;

use crate::hot::msg::Symbol;

/// Which Binance market the feed talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedMarket {
    Spot,
    Usdm,
    SpotTestnet,
}

impl FeedMarket {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "spot" => Some(Self::Spot),
            "usdm" => Some(Self::Usdm),
            "spot-testnet" => Some(Self::SpotTestnet),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Spot => "spot",
            Self::Usdm => "usdm",
            Self::SpotTestnet => "spot-testnet",
        }
    }

    /// Stream base: `/stream?streams=...` is appended.
    pub fn stream_base(self) -> &'static str {
        match self {
            Self::Spot => "wss://stream.binance.com:9443",
            Self::Usdm => "wss://fstream.binance.com/public",
            Self::SpotTestnet => "wss://stream.testnet.binance.vision",
        }
    }

    /// REST depth endpoint.
    pub fn rest_depth(self) -> &'static str {
        match self {
            Self::Spot => "https://api.binance.com/api/v3/depth",
            Self::Usdm => "https://fapi.binance.com/fapi/v1/depth",
            Self::SpotTestnet => "https://testnet.binance.vision/api/v3/depth",
        }
    }

    /// The depth path on a REST host, for overrides given without one.
    pub fn depth_path(self) -> &'static str {
        match self {
            Self::Usdm => "/fapi/v1/depth",
            _ => "/api/v3/depth",
        }
    }

    /// Request weight of a depth snapshot of `limit` levels (FACTS.md 1.7).
    pub fn snapshot_weight(self, limit: u32) -> u32 {
        match self {
            Self::Usdm => match limit {
                0..=50 => 2,
                51..=100 => 5,
                101..=500 => 10,
                _ => 20,
            },
            _ => match limit {
                0..=100 => 5,
                101..=500 => 25,
                501..=1000 => 50,
                _ => 250,
            },
        }
    }

    /// Depth limits the REST endpoint accepts.
    pub fn valid_snapshot_limit(self, limit: u32) -> bool {
        match self {
            Self::Usdm => [5, 10, 20, 50, 100, 500, 1000].contains(&limit),
            _ => (1..=5000).contains(&limit),
        }
    }
}

/// Which depth stream to subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepthStream {
    /// `<symbol>@depth@100ms`: diffs, synced with a REST snapshot.
    Diff,
    /// `<symbol>@depth20@100ms`: the top 20 levels, whole, every 100 ms.
    Top20,
}

/// The stream names for `symbols`, `/`-joined as the combined stream wants.
pub fn stream_names(symbols: &[Symbol], depth: DepthStream, trades: bool, book_ticker: bool) -> String {
    let mut out = String::new();
    for s in symbols {
        let lower = s.as_str().to_ascii_lowercase();
        let mut push = |suffix: &str| {
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(&lower);
            out.push_str(suffix);
        };
        push(match depth {
            DepthStream::Diff => "@depth@100ms",
            DepthStream::Top20 => "@depth20@100ms",
        });
        if trades {
            push("@trade");
        }
        if book_ticker {
            push("@bookTicker");
        }
    }
    out
}

/// The URL to open: `base` as given when it already names streams (`/ws/...`
/// or `?streams=`), else `base/stream?streams=<names>`.
pub fn stream_url(base: &str, names: &str) -> String {
    if base.contains("?streams=") || base.contains("/ws/") {
        return base.to_string();
    }
    format!("{}/stream?streams={names}", base.trim_end_matches('/'))
}

/// A REST depth URL: `url` as given when it has a path, else with the
/// market's depth path appended (so `--rest-url http://127.0.0.1:9000` works).
pub fn rest_depth_url(url: &str, market: FeedMarket) -> String {
    match Url::parse(url) {
        Ok(u) if u.path == "/" => format!("{}{}", url.trim_end_matches('/'), market.depth_path()),
        _ => url.to_string(),
    }
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("URL {0:?} has no scheme; write it as ws://host:port/path, wss://..., http://... or https://...")]
    NoScheme(String),
    #[error("URL {0:?} has an unsupported scheme; use ws, wss, http or https")]
    Scheme(String),
    #[error("URL {0:?} has no host")]
    NoHost(String),
    #[error("URL {0:?} has an invalid port")]
    Port(String),
}

/// A parsed `scheme://host[:port][/path][?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `wss` or `https`.
    pub tls: bool,
    /// `ws`/`wss` (else http/https).
    pub websocket: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

impl Url {
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| UrlError::NoScheme(s.to_string()))?;
        let (tls, websocket, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "ws" => (false, true, 80),
            "wss" => (true, true, 443),
            "http" => (false, false, 80),
            "https" => (true, false, 443),
            _ => return Err(UrlError::Scheme(s.to_string())),
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| UrlError::Port(s.to_string()))?)
            }
            _ => (authority, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError::NoHost(s.to_string()));
        }
        Ok(Self { tls, websocket, host: host.to_string(), port, path })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.websocket, self.tls) {
            (true, true) => "wss",
            (true, false) => "ws",
            (false, true) => "https",
            (false, false) => "http",
        };
        write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
    }
}

/// `%XX` and `+` decoding of a query string's part; invalid escapes are
/// kept as they are (the simulator's REST server and the control plane's
/// `?token=` read queries with it).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(x) => {
                        out.push(x);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_build_the_documented_urls() {
        let syms = [Symbol::new(b"BTCUSDT"), Symbol::new(b"ETHUSDT")];
        let names = stream_names(&syms, DepthStream::Diff, true, true);
        assert_eq!(
            names,
            "btcusdt@depth@100ms/btcusdt@trade/btcusdt@bookTicker/ethusdt@depth@100ms/ethusdt@trade/ethusdt@bookTicker"
        );
        assert_eq!(
            stream_url(FeedMarket::Usdm.stream_base(), "btcusdt@depth20@100ms"),
            "wss://fstream.binance.com/public/stream?streams=btcusdt@depth20@100ms"
        );
        assert_eq!(stream_url("ws://127.0.0.1:9000/ws/btcusdt@depth", "x"), "ws://127.0.0.1:9000/ws/btcusdt@depth");
        assert_eq!(rest_depth_url("http://127.0.0.1:9000", FeedMarket::Usdm), "http://127.0.0.1:9000/fapi/v1/depth");
        assert_eq!(
            rest_depth_url("https://api.binance.com/api/v3/depth", FeedMarket::Spot),
            FeedMarket::Spot.rest_depth()
        );
    }

    #[test]
    fn urls_parse_with_defaults_and_refuse_nonsense() {
        let u = Url::parse("wss://stream.binance.com:9443/stream?streams=a").unwrap();
        assert_eq!((u.tls, u.websocket, u.host.as_str(), u.port), (true, true, "stream.binance.com", 9443));
        assert_eq!(u.path, "/stream?streams=a");
        let u = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 8080, "/"));
        assert_eq!(Url::parse("https://x?y=1").unwrap().path, "/?y=1");
        assert!(matches!(Url::parse("stream.binance.com"), Err(UrlError::NoScheme(_))));
        assert!(matches!(Url::parse("ftp://x"), Err(UrlError::Scheme(_))));
        assert!(matches!(Url::parse("ws://:80/"), Err(UrlError::NoHost(_))));
        assert!(matches!(Url::parse("ws://host:99999/"), Err(UrlError::Port(_))));
    }

    #[test]
    fn snapshot_weights_follow_the_docs() {
        assert_eq!(FeedMarket::Spot.snapshot_weight(100), 5);
        assert_eq!(FeedMarket::Spot.snapshot_weight(1000), 50);
        assert_eq!(FeedMarket::Spot.snapshot_weight(5000), 250);
        assert_eq!(FeedMarket::Usdm.snapshot_weight(1000), 20);
        assert!(!FeedMarket::Usdm.valid_snapshot_limit(200));
    }
}
