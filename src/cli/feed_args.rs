//! Command-line overrides of `[feed]`, shared by `mmbot paper` and
//! `mmbot record`, and the duration syntax (`90s`, `10m`, `1h`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::config::Config;
use crate::feed::endpoint::{FeedMarket, Url};
use crate::hot::msg::Symbol;

#[derive(clap::Args, Debug, Clone)]
pub struct FeedArgs {
    /// Config file (its `[feed]` section; flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Symbol to stream (repeat for several; the first is traded).
    #[arg(long = "symbol")]
    pub symbols: Vec<String>,
    /// spot, usdm or spot-testnet (picks the stream and REST presets).
    #[arg(long)]
    pub market: Option<String>,
    /// WebSocket base or full URL (e.g. ws://127.0.0.1:9000 for `mmbot sim`).
    #[arg(long)]
    pub stream_url: Option<String>,
    /// REST depth URL (e.g. http://127.0.0.1:9000 for `mmbot sim`).
    #[arg(long)]
    pub rest_url: Option<String>,
    /// Stop after this long (e.g. 90s, 10m, 1h); default: until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

/// `500ms`, `90s`, `10m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("{s:?} is not a duration; write e.g. 90s, 10m or 1h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use ms, s, m or h")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 365.0 * 86400.0 {
        return Err(format!("{s:?} is out of range (more than zero, at most a year)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl FeedArgs {
    /// The configuration with these flags applied, checked for a live run,
    /// with the process's one IP guard in `config.feed.ip_guard` (sharing
    /// bans and back-offs through `[net] ip_guard_file`): hand a clone of it
    /// to anything else in the process that talks to Binance
    /// (`RestClient::with_guard`, the WebSocket API client).
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load_or_default(self.config.as_deref()).context("loading the configuration")?;
        let listed: Option<Vec<Symbol>> =
            config.symbols.as_ref().map(|s| s.entries.iter().map(|e| e.budget.symbol).collect());
        let feed = &mut config.feed;
        if let Some(listed) = listed {
            // `[[symbols]]` names what is streamed and traded.
            if !self.symbols.is_empty() {
                bail!("the config's [[symbols]] entries name the symbols; drop --symbol (or the entries)");
            }
            config.hot.symbol = listed.first().copied();
            feed.symbols = listed;
        }
        if let Some(m) = &self.market {
            feed.market =
                FeedMarket::parse(m).with_context(|| format!("--market {m:?}: use spot, usdm or spot-testnet"))?;
        }
        if !self.symbols.is_empty() {
            let mut syms = Vec::new();
            for s in &self.symbols {
                if s.is_empty() || s.len() > Symbol::MAX_LEN || !s.bytes().all(|c| c.is_ascii_alphanumeric()) {
                    bail!("--symbol {s:?} is not a Binance symbol (letters and digits, e.g. BTCUSDT)");
                }
                let sym = Symbol::new(s.to_ascii_uppercase().as_bytes());
                if !syms.contains(&sym) {
                    syms.push(sym);
                }
            }
            // The first named symbol is the traded one.
            config.hot.symbol = Some(syms[0]);
            feed.symbols = syms;
        }
        if let Some(u) = &self.stream_url {
            let p = Url::parse(u).with_context(|| format!("--stream-url {u:?}"))?;
            anyhow::ensure!(p.websocket, "--stream-url {u:?} must be a ws:// or wss:// URL");
            feed.stream_url = Some(u.clone());
        }
        if let Some(u) = &self.rest_url {
            let p = Url::parse(u).with_context(|| format!("--rest-url {u:?}"))?;
            anyhow::ensure!(!p.websocket, "--rest-url {u:?} must be an http:// or https:// URL");
            feed.rest_url = Some(u.clone());
        }
        if feed.symbols.is_empty() {
            bail!("no symbol to stream: give --symbol BTCUSDT, or set [market] symbol / [feed] symbols in the config");
        }
        if let Err((key, value, allowed)) = feed.check() {
            bail!("with these flags, {key} = {value} is invalid: {allowed}");
        }
        if config.hot.symbol.is_none() {
            config.hot.symbol = Some(feed.symbols[0]);
        }
        config.feed.ip_guard = Some(config.ip_guard().context("opening the IP guard's shared file")?);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
