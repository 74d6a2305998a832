//! `[feed]` validated: the live market-data connection's keys, each checked
//! alone, then in combination ([`FeedConfig::check`]).

use super::{in_range, invalid, valid_symbol, ConfigError, RawFeed};
use crate::feed::endpoint::{DepthStream, FeedMarket, Url};
use crate::feed::live::FeedConfig;
use crate::hot::msg::Symbol;

pub(super) fn ms(
    key: &'static str,
    v: Option<i64>,
    default: std::time::Duration,
    lo: i64,
    hi: i64,
) -> Result<std::time::Duration, ConfigError> {
    Ok(std::time::Duration::from_millis(in_range(key, v, default.as_millis() as i64, lo, hi)? as u64))
}

pub(super) fn validate_feed(f: &RawFeed, traded: Option<Symbol>) -> Result<FeedConfig, ConfigError> {
    let d = FeedConfig::default();
    let market = match f.market.as_deref() {
        None => d.market,
        Some(m) => FeedMarket::parse(m).ok_or_else(|| {
            invalid("feed.market", format!("{m:?}"), "must be \"spot\", \"usdm\" or \"spot-testnet\"")
        })?,
    };
    let mut symbols: Vec<Symbol> = traded.into_iter().collect();
    for s in f.symbols.iter().flatten() {
        if !valid_symbol(s) {
            return Err(invalid("feed.symbols", format!("{s:?}"), "each must be a Binance symbol such as \"BTCUSDT\""));
        }
        let sym = Symbol::new(s.to_ascii_uppercase().as_bytes());
        if !symbols.contains(&sym) {
            symbols.push(sym);
        }
    }
    let url = |key: &'static str, v: &Option<String>, websocket: bool| -> Result<Option<String>, ConfigError> {
        match v.as_deref() {
            None | Some("") => Ok(None),
            Some(u) => match Url::parse(u) {
                Ok(p) if p.websocket == websocket => Ok(Some(u.to_string())),
                Ok(_) => Err(invalid(
                    key,
                    format!("{u:?}"),
                    if websocket { "must be a ws:// or wss:// URL" } else { "must be an http:// or https:// URL" },
                )),
                Err(e) => Err(invalid(key, format!("{u:?}"), e)),
            },
        }
    };
    let depth = match f.depth.as_deref() {
        None | Some("diff") => DepthStream::Diff,
        Some("top20") => DepthStream::Top20,
        Some(o) => return Err(invalid("feed.depth", format!("{o:?}"), "must be \"diff\" or \"top20\"")),
    };
    let busy_poll = match f.poll.as_deref() {
        None | Some("poll") => false,
        Some("busy") => true,
        Some(o) => return Err(invalid("feed.poll", format!("{o:?}"), "must be \"poll\" or \"busy\"")),
    };
    let snapshot_limit = in_range("feed.snapshot_limit", f.snapshot_limit, d.snapshot_limit as i64, 1, 5000)? as u32;
    let feed = FeedConfig {
        market,
        symbols,
        stream_url: url("feed.stream_url", &f.stream_url, true)?,
        rest_url: url("feed.rest_url", &f.rest_url, false)?,
        depth,
        trades: f.trades.unwrap_or(d.trades),
        book_ticker: f.book_ticker.unwrap_or(d.book_ticker),
        busy_poll,
        poll_timeout: std::time::Duration::from_micros(in_range(
            "feed.poll_timeout_us",
            f.poll_timeout_us,
            d.poll_timeout.as_micros() as i64,
            10,
            1_000_000,
        )? as u64),
        stale_after: ms("feed.stale_after_ms", f.stale_after_ms, d.stale_after, 100, 600_000)?,
        // Binance spot counts pings and pongs among its 5 messages per second.
        ping_interval: ms("feed.ping_interval_ms", f.ping_interval_ms, d.ping_interval, 1000, 600_000)?,
        pong_timeout: ms("feed.pong_timeout_ms", f.pong_timeout_ms, d.pong_timeout, 100, 600_000)?,
        max_connection_age: std::time::Duration::from_secs(in_range(
            "feed.max_connection_age_s",
            f.max_connection_age_s,
            d.max_connection_age.as_secs() as i64,
            1,
            86_000,
        )? as u64),
        connect_timeout: ms("feed.connect_timeout_ms", f.connect_timeout_ms, d.connect_timeout, 100, 120_000)?,
        backoff_min: ms("feed.backoff_min_ms", f.backoff_min_ms, d.backoff_min, 1, 600_000)?,
        backoff_max: ms("feed.backoff_max_ms", f.backoff_max_ms, d.backoff_max, 1, 600_000)?,
        max_connect_attempts: in_range(
            "feed.max_connect_attempts",
            f.max_connect_attempts,
            d.max_connect_attempts as i64,
            1,
            300,
        )? as usize,
        snapshot_limit,
        snapshot_retry: ms("feed.snapshot_retry_ms", f.snapshot_retry_ms, d.snapshot_retry, 1, 600_000)?,
        snapshot_hedge_after: ms("feed.snapshot_hedge_ms", f.snapshot_hedge_ms, d.snapshot_hedge_after, 0, 60_000)?,
        snapshot_timeout: d.snapshot_timeout,
        weight_per_minute: in_range("feed.weight_per_minute", f.weight_per_minute, d.weight_per_minute as i64, 1, 6000)?
            as u32,
        depth20_fallback: f.depth20_fallback.unwrap_or(d.depth20_fallback),
        ws_api_depth: f.ws_api_depth.unwrap_or(d.ws_api_depth),
        ws_api_url: url("feed.ws_api_url", &f.ws_api_url, true)?,
        // Set by the command that runs the feed (`Config::ip_guard`): one
        // guard per process, not per config.
        ip_guard: None,
    };
    feed.check().map_err(|(key, value, allowed)| invalid(key, value, allowed))?;
    Ok(feed)
}
