//! The live feed's settings ([`FeedConfig`]: `[feed]` in the config, with
//! command-line overrides) and what follows from them: the stream and REST
//! URLs, the WebSocket API for depth, the IP guard, and the checks that
//! combinations of keys must pass. Apart from the feed loop so that the
//! settings can be read and validated without it.

use std::time::Duration;

use crate::feed::endpoint::{rest_depth_url, stream_names, stream_url, DepthStream, FeedMarket};
use crate::hot::msg::Symbol;
use crate::ipguard::IpGuard;

/// Feed settings (`[feed]` in the config, with command-line overrides).
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub market: FeedMarket,
    /// Symbols on the combined stream (the traded one first).
    pub symbols: Vec<Symbol>,
    /// Stream base or full URL; `None`: the market's preset.
    pub stream_url: Option<String>,
    /// REST depth URL; `None`: the market's preset.
    pub rest_url: Option<String>,
    pub depth: DepthStream,
    pub trades: bool,
    pub book_ticker: bool,
    /// Spin on the socket (a dedicated core) instead of `mio` poll.
    pub busy_poll: bool,
    pub poll_timeout: Duration,
    /// No bytes for this long: reconnect.
    pub stale_after: Duration,
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    /// Reconnect before Binance's 24-hour limit.
    pub max_connection_age: Duration,
    pub connect_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Connection attempts allowed in any 5 minutes (Binance: 300 per IP).
    pub max_connect_attempts: usize,
    pub snapshot_limit: u32,
    /// Wait before asking again after a failed or too-old snapshot.
    pub snapshot_retry: Duration,
    /// No answer this long: ask a second time, on the other worker, if the
    /// weight budget has room (zero: never).
    pub snapshot_hedge_after: Duration,
    pub snapshot_timeout: Duration,
    /// Our snapshot request weight budget per minute.
    pub weight_per_minute: u32,
    /// Spot diff streams: also subscribe `<symbol>@depth20@100ms`, and while
    /// REST snapshots are refused (a 429 back-off or a 418 ban the IP guard
    /// holds) rebuild an unsynced book from its top 20 levels instead
    /// (FACTS.md §1.1: the partial payload is a whole top-20 book with the
    /// diff stream's `lastUpdateId`, the REST snapshot's format). The book is
    /// then exact in its top 20 levels only: counted as a top-20 rebuild.
    /// Needs `features.depth_levels <= 20` (the levels quotes are made from).
    pub depth20_fallback: bool,
    /// Spot diff streams: while REST alone is refused (a 429 for the
    /// RAW_REQUESTS limit, which the WebSocket API does not have), ask the
    /// WebSocket API's `depth` for snapshots ([`crate::feed::ws_api_depth`]).
    pub ws_api_depth: bool,
    /// The WebSocket API to ask; `None`: the market's own (mainnet or
    /// testnet), and none for a custom `rest_url` (a test server names its own).
    pub ws_api_url: Option<String>,
    /// The process's IP guard, asked before every snapshot and every
    /// connect (spot and spot-testnet only: USD-M counts on other hosts
    /// with limits of their own, so it gets a guard of its own). `None`: a
    /// guard of the feed's own (tests); a process that also trades passes
    /// the one its order client uses.
    pub ip_guard: Option<IpGuard>,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            market: FeedMarket::Spot,
            symbols: Vec::new(),
            stream_url: None,
            rest_url: None,
            depth: DepthStream::Diff,
            trades: true,
            book_ticker: true,
            busy_poll: false,
            poll_timeout: Duration::from_micros(1000),
            stale_after: Duration::from_secs(10),
            ping_interval: Duration::from_secs(10),
            pong_timeout: Duration::from_secs(10),
            max_connection_age: Duration::from_secs(23 * 3600 + 50 * 60),
            connect_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            max_connect_attempts: 300,
            snapshot_limit: 1000,
            snapshot_retry: Duration::from_millis(500),
            snapshot_hedge_after: Duration::from_secs(1),
            snapshot_timeout: Duration::from_secs(10),
            weight_per_minute: 1000,
            depth20_fallback: false,
            ws_api_depth: true,
            ws_api_url: None,
            ip_guard: None,
        }
    }
}

impl FeedConfig {
    /// Checks the combinations one key cannot check alone (run again after
    /// command-line flags change the market): `(key, value, what is allowed)`.
    pub fn check(&self) -> Result<(), (&'static str, String, String)> {
        if !self.market.valid_snapshot_limit(self.snapshot_limit) {
            return Err((
                "feed.snapshot_limit",
                self.snapshot_limit.to_string(),
                format!(
                    "{} accepts {}",
                    self.market.name(),
                    if self.market == FeedMarket::Usdm { "5, 10, 20, 50, 100, 500 or 1000" } else { "1 to 5000" }
                ),
            ));
        }
        if self.backoff_min > self.backoff_max {
            return Err((
                "feed.backoff_min_ms",
                self.backoff_min.as_millis().to_string(),
                format!("must not exceed feed.backoff_max_ms ({})", self.backoff_max.as_millis()),
            ));
        }
        if self.depth20_fallback && (self.market == FeedMarket::Usdm || self.depth != DepthStream::Diff) {
            return Err((
                "feed.depth20_fallback",
                "true".into(),
                "is for spot diff streams (depth = \"diff\"): USD-M's depth20 is diff-shaped, and depth = \"top20\" \
                 needs no snapshot"
                    .into(),
            ));
        }
        if self.ws_api_url.is_some() && (self.market == FeedMarket::Usdm || self.depth != DepthStream::Diff) {
            return Err((
                "feed.ws_api_url",
                format!("{:?}", self.ws_api_url.as_deref().unwrap_or_default()),
                "is for spot diff streams (depth = \"diff\"): mmbot asks the spot WebSocket API only".into(),
            ));
        }
        if !self.snapshot_hedge_after.is_zero() && self.snapshot_hedge_after >= self.snapshot_timeout {
            return Err((
                "feed.snapshot_hedge_ms",
                self.snapshot_hedge_after.as_millis().to_string(),
                format!(
                    "must be 0 (never ask twice) or below the snapshot timeout ({} ms)",
                    self.snapshot_timeout.as_millis()
                ),
            ));
        }
        let weight = self.market.snapshot_weight(self.snapshot_limit);
        if self.weight_per_minute < weight {
            return Err((
                "feed.weight_per_minute",
                self.weight_per_minute.to_string(),
                format!("must allow at least one snapshot of feed.snapshot_limit levels (weight {weight})"),
            ));
        }
        Ok(())
    }

    /// The WebSocket URL to open.
    pub fn stream_url(&self) -> String {
        let mut names = stream_names(&self.symbols, self.depth, self.trades, self.book_ticker);
        if self.top20_fallback() {
            let top20 = stream_names(&self.symbols, DepthStream::Top20, false, false);
            names = format!("{names}/{top20}");
        }
        stream_url(self.stream_url.as_deref().unwrap_or(self.market.stream_base()), &names)
    }

    /// Whether the depth20 fallback is on (spot diff streams only: the USD-M
    /// partial stream is diff-shaped, no snapshot).
    pub fn top20_fallback(&self) -> bool {
        self.depth20_fallback && self.depth == DepthStream::Diff && self.market != FeedMarket::Usdm
    }

    /// The WebSocket API asked for depth while REST alone is refused, if
    /// any (see [`FeedConfig::ws_api_depth`]).
    pub fn ws_api_depth_url(&self) -> Option<String> {
        if !self.ws_api_depth || self.market == FeedMarket::Usdm || self.depth != DepthStream::Diff {
            return None;
        }
        match (&self.ws_api_url, &self.rest_url, self.market) {
            (Some(u), _, _) => Some(u.clone()),
            (None, Some(_), _) => None,
            // web-socket-api.md §General API Information; FACTS.md §3.3.
            (None, None, FeedMarket::SpotTestnet) => Some("wss://ws-api.testnet.binance.vision/ws-api/v3".into()),
            (None, None, _) => Some("wss://ws-api.binance.com:443/ws-api/v3".into()),
        }
    }

    /// The REST depth URL.
    pub fn rest_url(&self) -> String {
        match &self.rest_url {
            Some(u) => rest_depth_url(u, self.market),
            None => self.market.rest_depth().to_string(),
        }
    }

    /// The guard the feed asks: the process's for spot, else its own.
    pub fn guard(&self) -> IpGuard {
        match (&self.ip_guard, self.market) {
            (Some(g), FeedMarket::Spot | FeedMarket::SpotTestnet) => g.clone(),
            _ => IpGuard::new(),
        }
    }

    /// The IP-wide REST weight limit per minute (FACTS.md 4.8; USD-M 2400).
    pub(crate) fn ip_weight_limit(&self) -> u32 {
        match self.market {
            FeedMarket::Usdm => 2400,
            _ => 6000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_adds_depth20_streams_on_spot_diff_feeds_only() {
        let mut c = FeedConfig { symbols: vec![Symbol::new(b"BTCUSDT")], ..FeedConfig::default() };
        assert!(!c.stream_url().contains("depth20"));
        c.depth20_fallback = true;
        assert!(c.stream_url().ends_with("btcusdt@depth@100ms/btcusdt@trade/btcusdt@bookTicker/btcusdt@depth20@100ms"));
        assert!(c.check().is_ok());
        c.market = FeedMarket::Usdm;
        assert_eq!(c.check().unwrap_err().0, "feed.depth20_fallback");
    }

    #[test]
    fn the_ws_api_for_depth_is_binances_own_unless_rest_is_custom() {
        let mut c = FeedConfig::default();
        assert_eq!(c.ws_api_depth_url().as_deref(), Some("wss://ws-api.binance.com:443/ws-api/v3"));
        c.rest_url = Some("http://127.0.0.1:9".into());
        assert_eq!(c.ws_api_depth_url(), None, "a custom REST host needs its own WebSocket API URL");
        c.ws_api_url = Some("ws://127.0.0.1:9/ws-api/v3".into());
        assert_eq!(c.ws_api_depth_url().as_deref(), Some("ws://127.0.0.1:9/ws-api/v3"));
        c.ws_api_depth = false;
        assert_eq!(c.ws_api_depth_url(), None);
        c.ws_api_depth = true;
        c.market = FeedMarket::Usdm;
        assert_eq!(c.check().unwrap_err().0, "feed.ws_api_url");
    }
}
