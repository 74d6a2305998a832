//! `[control]`: where the control plane (`src/control`) listens, where its
//! token comes from, and the bounds its API holds changes to. Kept apart
//! from the trading settings: none of it touches how the bot quotes.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;

use super::{invalid, ConfigError};

/// The environment variable (or `.env` key) the token is read from unless
/// `[control] token_env` names another.
pub const TOKEN_ENV: &str = "MMBOT_CONTROL_TOKEN";

/// Where `mmbot demo` listens unless told otherwise.
pub const DEMO_LISTEN: &str = "127.0.0.1:8686";

/// `[control]` as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    pub listen: Option<String>,
    pub token_env: Option<String>,
    pub insecure: Option<bool>,
    pub max_clients: Option<i64>,
    pub stream_interval_ms: Option<i64>,
    pub stream_buffer: Option<i64>,
    pub param_bounds: Option<BTreeMap<String, Vec<f64>>>,
    pub ai_interval_s: Option<Vec<f64>>,
}

/// `[control]` validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlConfig {
    /// `None`: off (the default but for `mmbot demo`).
    pub listen: Option<SocketAddr>,
    pub token_env: String,
    /// A non-loopback bind without TLS was acknowledged.
    pub insecure: bool,
    pub max_clients: usize,
    pub stream_interval_ms: u64,
    pub stream_buffer: usize,
    /// `name = [min, max]`: the API refuses a value outside. Names are
    /// `[strategy.params]` keys, or `target_spread_pct`.
    pub param_bounds: BTreeMap<String, (f64, f64)>,
    /// `[min, max]` seconds the API may set the advisor's interval to
    /// (`None`: from `[ai] interval` to ten times it).
    pub ai_interval_s: Option<(f64, f64)>,
    /// Not a key: `mmbot demo` serves on a free port when its usual one is
    /// taken (another demo runs) instead of failing.
    pub any_port_if_taken: bool,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            listen: None,
            token_env: TOKEN_ENV.into(),
            insecure: false,
            max_clients: 16,
            stream_interval_ms: 250,
            stream_buffer: 256,
            param_bounds: BTreeMap::new(),
            ai_interval_s: None,
            any_port_if_taken: false,
        }
    }
}

/// Parses `host:port` (`control.listen` or `--control`), naming `key`.
pub fn parse_listen(key: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse::<SocketAddr>().map_err(|_| {
        invalid(
            key,
            format!("{text:?}"),
            "must be an IP address and port, e.g. \"127.0.0.1:8686\" (port 0: any free port)",
        )
    })
}

pub(super) fn validate_control(raw: &RawControl) -> Result<ControlConfig, ConfigError> {
    let d = ControlConfig::default();
    let listen = raw.listen.as_deref().map(|t| parse_listen("control.listen", t)).transpose()?;
    let token_env = match &raw.token_env {
        None => d.token_env,
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => n.clone(),
        Some(n) => {
            return Err(invalid(
                "control.token_env",
                format!("{n:?}"),
                "must be an environment variable name (A-Z, 0-9, _)",
            ))
        }
    };
    let int = |key: &'static str, v: Option<i64>, default: usize, lo: i64, hi: i64| match v {
        None => Ok(default),
        Some(v) if (lo..=hi).contains(&v) => Ok(v as usize),
        Some(v) => Err(invalid(key, v, format!("must be an integer from {lo} to {hi}"))),
    };
    let mut param_bounds = BTreeMap::new();
    for (name, b) in raw.param_bounds.iter().flatten() {
        match b.as_slice() {
            [lo, hi] if lo.is_finite() && hi.is_finite() && lo <= hi => {
                param_bounds.insert(name.clone(), (*lo, *hi));
            }
            _ => {
                return Err(invalid(
                    "control.param_bounds",
                    format!("{name} = {b:?}"),
                    "each bound must be [min, max], two finite numbers with min <= max",
                ))
            }
        }
    }
    let ai_interval_s = match raw.ai_interval_s.as_deref() {
        None => None,
        Some([lo, hi]) if lo.is_finite() && hi.is_finite() && *lo >= 0.1 && lo <= hi && *hi <= 86_400.0 => {
            Some((*lo, *hi))
        }
        Some(b) => {
            return Err(invalid(
                "control.ai_interval_s",
                format!("{b:?}"),
                "must be [min, max] seconds with 0.1 <= min <= max <= 86400",
            ))
        }
    };
    Ok(ControlConfig {
        listen,
        token_env,
        insecure: raw.insecure.unwrap_or(false),
        max_clients: int("control.max_clients", raw.max_clients, d.max_clients, 1, 256)?,
        stream_interval_ms: int("control.stream_interval_ms", raw.stream_interval_ms, 250, 50, 10_000)? as u64,
        stream_buffer: int("control.stream_buffer", raw.stream_buffer, d.stream_buffer, 8, 65_536)?,
        param_bounds,
        ai_interval_s,
        any_port_if_taken: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ControlConfig, ConfigError> {
        let raw: RawControl = toml::from_str(text).unwrap();
        validate_control(&raw)
    }

    #[test]
    fn defaults_are_off_with_the_documented_values() {
        let c = parse("").unwrap();
        assert_eq!(c, ControlConfig::default());
        assert!(c.listen.is_none());
        assert_eq!(c.token_env, "MMBOT_CONTROL_TOKEN");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("listen = \"localhost\"", "control.listen"),
            ("token_env = \"A-B\"", "control.token_env"),
            ("max_clients = 0", "control.max_clients"),
            ("stream_interval_ms = 5", "control.stream_interval_ms"),
            ("stream_buffer = 1", "control.stream_buffer"),
            ("param_bounds = { gamma = [2.0, 1.0] }", "control.param_bounds"),
            ("param_bounds = { gamma = [1.0] }", "control.param_bounds"),
            ("ai_interval_s = [5.0, 1.0]", "control.ai_interval_s"),
            ("ai_interval_s = [0.01, 1.0]", "control.ai_interval_s"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let c = parse("listen = \"127.0.0.1:0\"\nparam_bounds = { gamma = [0.1, 5] }").unwrap();
        assert_eq!(c.listen.unwrap().port(), 0);
        assert_eq!(c.param_bounds["gamma"], (0.1, 5.0));
    }
}
