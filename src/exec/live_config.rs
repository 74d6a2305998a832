//! The `[live]` section of the config: where the order manager
//! ([`crate::exec::live::LiveExchange`]) trades, under which limits, and what
//! it does with orders it finds on the exchange at start.
//!
//! It lives in its own file, parsed in two steps like the rest of the config
//! (raw serde struct, then [`LiveConfig::from_raw`] validation), so the main
//! `config.rs` can include it with one field. Every refusal names the key
//! and the fix. Secrets are never here: the API key and signing key come
//! from the environment or `.env` ([`crate::exec::binance::Credentials`]).
//!
//! ```toml
//! [live]
//! base_url = "testnet"            # "mainnet", "testnet" or an https:// URL
//! # ws_api_url = "wss://ws-api.testnet.binance.vision/ws-api/v3"  # preset's default
//! recv_window_ms = 5000
//! max_position = "0.01"           # base asset
//! max_order_notional = "200"      # quote asset
//! max_open_orders = 4
//! daily_loss_limit = "50"         # quote asset
//! orphans = "cancel"              # or "adopt"
//! reconcile_every_s = 30
//! journal = "mmbot-journal.sqlite"
//! env_file = ".env"               # BINANCE_API_KEY, BINANCE_SECRET_KEY or BINANCE_ED25519_KEY_FILE
//! timeout_ms = 5000               # a REST request's whole time (at least recv_window_ms); after it an
//!                                 # order's fate is unknown
//! stp_mode = "EXPIRE_MAKER"       # selfTradePreventionMode on every order (enums.md; faqs/stp_faq.md)
//! order_entry = "ws_api"          # orders over the WebSocket API session (REST while it is down), or "rest"
//! # bnb_price = "600"             # 1 BNB in the quote asset, to value BNB commissions until a BNB mid is known
//! # balance_tolerance = "0.0001"       # base asset; default max_position / 100
//! # balance_kill_tolerance = "0.001"   # base asset; default max_position / 10
//! kill_max_rejects = 10           # the kill switch: this many refused orders...
//! kill_reject_window_s = 60       # ...within this many seconds
//! kill_stale_feed_s = 30          # no market data for this long
//! kill_unsynced_s = 60            # the traded book unsynced for this long
//! ban_wait_max_s = 300            # after a 418, wait at most this long to cancel what rests
//! pnl_every_s = 10                # a PnL snapshot in the journal this often
//! dry_run = false                 # orders to /api/v3/order/test only: nothing placed
//! ```
//!
//! Money and quantities are decimal strings (exact fixed-point); plain TOML
//! numbers are accepted too and read through their shortest decimal text.
//!
//! Keys with reasons worth stating:
//! - `timeout_ms` may not be below `recv_window_ms`: a signed request stays
//!   executable on the exchange for `recvWindow` after its timestamp
//!   (FACTS.md §4.7), so a client that gave up sooner would call an order
//!   "not placed" that may still be placed.
//! - `stp_mode`: Binance's `selfTradePreventionMode` names (`NONE`,
//!   `EXPIRE_MAKER`, `EXPIRE_TAKER`, `EXPIRE_BOTH`, `DECREMENT`,
//!   `TRANSFER`); default `EXPIRE_MAKER`.
//! - `order_entry`: `ws_api` (default): orders, cancels and queries go over
//!   the WebSocket API session that also carries the user-data stream,
//!   pipelined, with REST as the fallback while no session is up; `rest`:
//!   every call over REST (the user-data stream keeps its own WebSocket API
//!   connection), for an endpoint that serves no WebSocket API order
//!   methods.
//! - `bnb_price` (optional): the price of 1 BNB in the symbol's quote asset,
//!   used to value commissions paid in BNB until the bot has a BNB mid;
//!   without either, BNB fees are left out of PnL (and reports say so).
//! - `balance_tolerance` / `balance_kill_tolerance` (base asset): how far
//!   the position may drift from what the account's base balance implies
//!   before it is logged / before trading stops
//!   ([`crate::exec::inventory::BalanceCheck`]). Defaults: `max_position`
//!   / 100 and `max_position` / 10; the kill tolerance may not be below the
//!   other.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::exec::binance::gateway::StpMode;
use crate::exec::binance::rest::{MAINNET_URL, TESTNET_URL};
use crate::exec::inventory::BalanceTolerance;
use crate::exec::journal::RunMode;
use crate::exec::risk::{KillConfig, RiskLimits};
use crate::hot::fixed::{parse_fixed, Price, Qty};

/// Binance spot WebSocket API, production.
pub const MAINNET_WS_API_URL: &str = "wss://ws-api.binance.com:443/ws-api/v3";
/// Binance spot WebSocket API, testnet.
pub const TESTNET_WS_API_URL: &str = "wss://ws-api.testnet.binance.vision/ws-api/v3";

/// What to do with open orders found on the exchange at start (or during a
/// reconciliation) that this run did not place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanPolicy {
    /// Cancel them: the safe default, since nothing manages them.
    Cancel,
    /// Take them over as this run's working orders (one per side; any
    /// beyond that is cancelled).
    Adopt,
}

impl OrphanPolicy {
    pub fn name(self) -> &'static str {
        match self {
            OrphanPolicy::Cancel => "cancel",
            OrphanPolicy::Adopt => "adopt",
        }
    }
}

/// The `[live]` section as written (every key optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLiveConfig {
    pub base_url: Option<String>,
    pub ws_api_url: Option<String>,
    pub recv_window_ms: Option<u64>,
    pub max_position: Option<toml::Value>,
    pub max_order_notional: Option<toml::Value>,
    pub max_open_orders: Option<u32>,
    pub daily_loss_limit: Option<toml::Value>,
    pub orphans: Option<String>,
    pub reconcile_every_s: Option<f64>,
    pub journal: Option<PathBuf>,
    pub refresh_ticks: Option<i64>,
    pub max_order_age_ms: Option<u64>,
    pub run_prefix: Option<String>,
    pub env_file: Option<PathBuf>,
    pub timeout_ms: Option<u64>,
    pub kill_max_rejects: Option<u32>,
    pub kill_reject_window_s: Option<f64>,
    pub kill_stale_feed_s: Option<f64>,
    pub kill_unsynced_s: Option<f64>,
    pub ban_wait_max_s: Option<f64>,
    pub pnl_every_s: Option<f64>,
    pub dry_run: Option<bool>,
    pub stp_mode: Option<String>,
    pub order_entry: Option<String>,
    pub bnb_price: Option<toml::Value>,
    pub balance_tolerance: Option<toml::Value>,
    pub balance_kill_tolerance: Option<toml::Value>,
}

/// The validated `[live]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    /// REST base, e.g. `https://api.binance.com`.
    pub rest_url: String,
    /// WebSocket API URL for the user-data stream.
    pub ws_api_url: String,
    /// How the journal labels the run: `live` on mainnet, `testnet` otherwise.
    pub mode: RunMode,
    pub recv_window: Duration,
    /// Pre-trade limits ([`crate::exec::risk::RiskCheck`]).
    pub limits: RiskLimits,
    pub orphans: OrphanPolicy,
    /// Open orders and balances are compared with the exchange this often.
    pub reconcile_every: Duration,
    pub journal: PathBuf,
    /// Same meaning as `[paper] refresh_ticks`: keep an order whose price is
    /// less than this many ticks from the wanted one.
    pub refresh_ticks: i64,
    /// Same meaning as `[paper] max_order_age_ms`.
    pub max_order_age: Duration,
    /// Start of every client order id (1 to 8 characters; `None`: `mm`).
    /// The run appends its start time in base 36, so ids never repeat
    /// across restarts.
    pub run_prefix: Option<String>,
    /// Where the API key and signing key are read when the environment
    /// does not have them.
    pub env_file: PathBuf,
    /// Whole-request timeout of REST calls; at least `recv_window`.
    pub timeout: Duration,
    /// `selfTradePreventionMode` sent with every order.
    pub stp_mode: StpMode,
    /// Which transport carries order calls.
    pub order_entry: OrderEntry,
    /// Price of 1 BNB in the quote asset, for BNB commissions until a BNB
    /// mid is known ([`crate::exec::position::Position::set_bnb_price`]).
    pub bnb_price: Option<Price>,
    /// How far the position may drift from the balance
    /// ([`crate::exec::inventory::BalanceCheck`]).
    pub balance_tolerance: BalanceTolerance,
    /// When the kill switch trips ([`crate::exec::risk::KillSwitch`]).
    pub kill: KillConfig,
    /// After an IP ban (418), how long the bot may wait for it to lift so
    /// that it can cancel what still rests; a longer ban leaves the orders
    /// to the next start's reconciliation (and says so).
    pub ban_wait_max: Duration,
    /// A PnL snapshot goes to the journal this often (and at the stop).
    pub pnl_every: Duration,
    /// Send every order to `POST /api/v3/order/test` instead: the exchange
    /// checks it (signature, parameters, filters) and nothing is placed,
    /// cancelled or filled (`--dry-run`).
    pub dry_run: bool,
    /// Orders worked per side (`[strategy] levels`, not a `[live]` key: the
    /// strategy decides the ladder; 1 unless the command sets it).
    pub levels: usize,
}

/// Which transport carries order calls (`[live] order_entry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderEntry {
    /// The WebSocket API session (pipelined), REST while it is down.
    #[default]
    WsApi,
    /// REST only.
    Rest,
}

impl OrderEntry {
    /// As written in config.
    pub fn name(self) -> &'static str {
        match self {
            Self::WsApi => "ws_api",
            Self::Rest => "rest",
        }
    }
}

/// A `[live]` value that cannot be right, naming the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveConfigError {
    #[error("[live] {key} = {value}: {fix}")]
    Invalid { key: &'static str, value: String, fix: String },
    #[error("[live] {key} is missing: {fix}")]
    Missing { key: &'static str, fix: String },
    #[error("[live] could not be read: {0}")]
    Toml(String),
}

impl LiveConfig {
    /// Parses a TOML text holding the `[live]` table's keys (the body of
    /// the section, or a whole file with a `[live]` table).
    pub fn from_toml_str(text: &str) -> Result<Self, LiveConfigError> {
        let v: toml::Table = toml::from_str(text).map_err(|e| LiveConfigError::Toml(e.to_string()))?;
        let table = match v.get("live") {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => v,
        };
        let raw: RawLiveConfig =
            toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| LiveConfigError::Toml(e.to_string()))?;
        Self::from_raw(raw)
    }

    /// Validates the raw section.
    pub fn from_raw(raw: RawLiveConfig) -> Result<Self, LiveConfigError> {
        let invalid = |key, value: &dyn std::fmt::Display, fix: &str| LiveConfigError::Invalid {
            key,
            value: value.to_string(),
            fix: fix.to_string(),
        };
        let base = raw.base_url.as_deref().unwrap_or("testnet").trim();
        let (rest_url, default_ws, mode) = match base {
            "mainnet" => (MAINNET_URL.to_string(), Some(MAINNET_WS_API_URL), RunMode::Live),
            "testnet" => (TESTNET_URL.to_string(), Some(TESTNET_WS_API_URL), RunMode::Testnet),
            url if url.starts_with("https://")
                || url.starts_with("http://127.0.0.1")
                || url.starts_with("http://localhost") =>
            {
                let mode = if url.trim_end_matches('/') == MAINNET_URL { RunMode::Live } else { RunMode::Testnet };
                (url.trim_end_matches('/').to_string(), None, mode)
            }
            other => {
                return Err(invalid(
                    "base_url",
                    &format!("{other:?}"),
                    "use \"mainnet\", \"testnet\", an https:// URL, or http://127.0.0.1:PORT for a local simulator",
                ))
            }
        };
        let ws_api_url = match (raw.ws_api_url, default_ws) {
            (Some(u), _) => {
                let u = u.trim().to_string();
                if !(u.starts_with("wss://") || u.starts_with("ws://127.0.0.1") || u.starts_with("ws://localhost")) {
                    return Err(invalid(
                        "ws_api_url",
                        &format!("{u:?}"),
                        "use a wss:// URL (e.g. wss://ws-api.binance.com:443/ws-api/v3) or ws://127.0.0.1:PORT/ws-api/v3",
                    ));
                }
                u
            }
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                return Err(LiveConfigError::Missing {
                    key: "ws_api_url",
                    fix: "a custom base_url needs the matching WebSocket API URL, e.g. ws://127.0.0.1:PORT/ws-api/v3"
                        .into(),
                })
            }
        };
        let recv_ms = raw.recv_window_ms.unwrap_or(5000);
        if !(1..=60_000).contains(&recv_ms) {
            return Err(invalid("recv_window_ms", &recv_ms, "must be 1 to 60000 (Binance's maximum is 60 s)"));
        }
        let decimal = |key: &'static str, v: toml::Value| -> Result<i64, LiveConfigError> {
            let text = match &v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => return Err(invalid(key, other, "must be a decimal string such as \"100.5\"")),
            };
            let n = parse_fixed(text.trim().as_bytes())
                .map_err(|e| invalid(key, &format!("{text:?}"), &format!("not a decimal ({e}); e.g. \"100.5\"")))?;
            if n < 0 {
                return Err(invalid(key, &text, "must be zero or more"));
            }
            Ok(n)
        };
        let money = |key: &'static str, v: Option<toml::Value>| -> Result<i64, LiveConfigError> {
            let Some(v) = v else {
                // Sizes that fit the key's unit: a position is in the base
                // asset (100 would be 100 BTC on BTCUSDT), the rest in quote.
                let example = match key {
                    "max_position" => {
                        "in the base asset, sized to what you would hold: e.g. \"0.01\" on BTCUSDT (about 1,000 \
                         USDT at 100,000) or \"0.5\" on ETHUSDT"
                    }
                    "max_order_notional" => {
                        "in the quote asset: e.g. \"100\" (USDT on BTCUSDT), one order's price x qty"
                    }
                    _ => "in the quote asset: e.g. \"50\" (USDT on BTCUSDT), the loss that stops the day",
                };
                return Err(LiveConfigError::Missing {
                    key,
                    fix: format!("set {key}, {example}; live trading has no default limit"),
                });
            };
            decimal(key, v)
        };
        let max_position = money("max_position", raw.max_position)?;
        let max_order_notional = money("max_order_notional", raw.max_order_notional)?;
        let daily_loss_limit = money("daily_loss_limit", raw.daily_loss_limit)?;
        let max_open_orders = raw.max_open_orders.unwrap_or(2);
        if max_open_orders == 0 {
            return Err(invalid("max_open_orders", &0, "must be at least 1 (2 to quote both sides)"));
        }
        let orphans = match raw.orphans.as_deref().unwrap_or("cancel") {
            "cancel" => OrphanPolicy::Cancel,
            "adopt" => OrphanPolicy::Adopt,
            other => return Err(invalid("orphans", &format!("{other:?}"), "use \"cancel\" or \"adopt\"")),
        };
        let every = raw.reconcile_every_s.unwrap_or(30.0);
        if !every.is_finite() || !(1.0..=3600.0).contains(&every) {
            return Err(invalid("reconcile_every_s", &every, "must be 1 to 3600 seconds"));
        }
        let journal = raw.journal.unwrap_or_else(|| PathBuf::from("mmbot-journal.sqlite"));
        if journal.as_os_str().is_empty() {
            return Err(invalid("journal", &"\"\"", "name the SQLite file, e.g. \"mmbot-journal.sqlite\""));
        }
        let refresh_ticks = raw.refresh_ticks.unwrap_or(1);
        if refresh_ticks < 0 {
            return Err(invalid("refresh_ticks", &refresh_ticks, "must be 0 or more"));
        }
        let max_age_ms = raw.max_order_age_ms.unwrap_or(10_000);
        if max_age_ms == 0 {
            return Err(invalid("max_order_age_ms", &0, "must be at least 1 (a large value never refreshes)"));
        }
        if let Some(p) = &raw.run_prefix {
            if p.len() > 8 || crate::exec::binance::ClientIds::new(p).is_err() {
                return Err(invalid(
                    "run_prefix",
                    &format!("{p:?}"),
                    "must be 1 to 8 characters of A-Z a-z 0-9 . : / _ - (the run adds its start time)",
                ));
            }
        }
        let env_file = raw.env_file.unwrap_or_else(|| PathBuf::from(".env"));
        if env_file.as_os_str().is_empty() {
            return Err(invalid("env_file", &"\"\"", "name the file with the keys, e.g. \".env\""));
        }
        let timeout_ms = raw.timeout_ms.unwrap_or(5000);
        if !(100..=60_000).contains(&timeout_ms) {
            return Err(invalid("timeout_ms", &timeout_ms, "must be 100 to 60000"));
        }
        if timeout_ms < recv_ms {
            // FACTS.md §4.7: the exchange executes a signed request up to
            // recvWindow after its timestamp; giving up sooner would call
            // an order that may still be placed "not placed".
            return Err(invalid(
                "timeout_ms",
                &timeout_ms,
                &format!(
                    "is below recv_window_ms = {recv_ms}: the exchange may still execute a request for \
                     recvWindow after it was signed, so the client must wait at least that long; \
                     raise timeout_ms to {recv_ms} or more, or lower recv_window_ms"
                ),
            ));
        }
        let stp_name = raw.stp_mode.as_deref().unwrap_or("EXPIRE_MAKER").trim();
        let stp_mode = StpMode::parse(stp_name).ok_or_else(|| {
            invalid(
                "stp_mode",
                &format!("{stp_name:?}"),
                "use one of \"EXPIRE_MAKER\" (default), \"EXPIRE_TAKER\", \"EXPIRE_BOTH\", \"DECREMENT\", \
                 \"TRANSFER\" or \"NONE\" (Binance's selfTradePreventionMode, upper case)",
            )
        })?;
        let order_entry = match raw.order_entry.as_deref().map(str::trim) {
            None | Some("ws_api") => OrderEntry::WsApi,
            Some("rest") => OrderEntry::Rest,
            Some(other) => {
                return Err(invalid(
                    "order_entry",
                    &format!("{other:?}"),
                    "use \"ws_api\" (default: orders over the WebSocket API, REST as the fallback) or \"rest\"",
                ))
            }
        };
        let bnb_price = match raw.bnb_price {
            None => None,
            Some(v) => match decimal("bnb_price", v)? {
                0 => {
                    return Err(invalid(
                        "bnb_price",
                        &"0",
                        "must be above zero (the price of 1 BNB in the quote asset), or leave it out",
                    ))
                }
                p => Some(Price(p)),
            },
        };
        let warn = match raw.balance_tolerance {
            Some(v) => decimal("balance_tolerance", v)?,
            None => max_position / 100,
        };
        let kill_at = match raw.balance_kill_tolerance {
            Some(v) => decimal("balance_kill_tolerance", v)?,
            None => (max_position / 10).max(warn),
        };
        if kill_at < warn {
            return Err(invalid(
                "balance_kill_tolerance",
                &Price(kill_at),
                &format!(
                    "is below balance_tolerance = {}: a drift must be logged before it stops trading; \
                     raise balance_kill_tolerance or lower balance_tolerance",
                    Price(warn)
                ),
            ));
        }
        let secs = |key: &'static str, v: Option<f64>, default: f64, lo: f64, hi: f64| {
            let v = v.unwrap_or(default);
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(invalid(key, &v, &format!("must be {lo} to {hi} seconds")))
            }
        };
        let ns = |d: Duration| d.as_nanos().min(i64::MAX as u128) as i64;
        let kill = KillConfig {
            max_rejects: raw.kill_max_rejects.unwrap_or(10),
            reject_window_ns: ns(secs("kill_reject_window_s", raw.kill_reject_window_s, 60.0, 1.0, 86_400.0)?),
            stale_feed_ns: ns(secs("kill_stale_feed_s", raw.kill_stale_feed_s, 30.0, 1.0, 3600.0)?),
            unsynced_ns: ns(secs("kill_unsynced_s", raw.kill_unsynced_s, 60.0, 1.0, 3600.0)?),
        };
        let ban_wait_max = secs("ban_wait_max_s", raw.ban_wait_max_s, 300.0, 0.0, 86_400.0)?;
        let pnl_every = secs("pnl_every_s", raw.pnl_every_s, 10.0, 1.0, 86_400.0)?;
        Ok(Self {
            rest_url,
            ws_api_url,
            mode,
            recv_window: Duration::from_millis(recv_ms),
            limits: RiskLimits {
                max_position: Qty(max_position),
                max_order_notional,
                max_open_orders,
                daily_loss_limit,
            },
            orphans,
            reconcile_every: Duration::from_secs_f64(every),
            journal,
            refresh_ticks,
            max_order_age: Duration::from_millis(max_age_ms),
            run_prefix: raw.run_prefix,
            env_file,
            timeout: Duration::from_millis(timeout_ms),
            stp_mode,
            order_entry,
            bnb_price,
            balance_tolerance: BalanceTolerance { warn: Qty(warn), kill: Qty(kill_at) },
            kill,
            ban_wait_max,
            pnl_every,
            dry_run: raw.dry_run.unwrap_or(false),
            levels: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "max_position = \"0.5\"\nmax_order_notional = 100\ndaily_loss_limit = \"25.5\"\n";

    #[test]
    fn presets_and_defaults() {
        let c = LiveConfig::from_toml_str(&format!("[live]\nbase_url = \"mainnet\"\n{LIMITS}")).unwrap();
        assert_eq!((c.rest_url.as_str(), c.ws_api_url.as_str()), (MAINNET_URL, MAINNET_WS_API_URL));
        assert_eq!(c.mode, RunMode::Live);
        assert_eq!(c.limits.max_position, Qty(50_000_000));
        assert_eq!(c.limits.max_order_notional, 100 * 100_000_000);
        assert_eq!(c.orphans, OrphanPolicy::Cancel);
        assert_eq!(c.stp_mode, StpMode::ExpireMaker);
        assert_eq!(c.bnb_price, None);
        // 0.5 / 100 and 0.5 / 10.
        assert_eq!(c.balance_tolerance, BalanceTolerance { warn: Qty(500_000), kill: Qty(5_000_000) });
        let t = LiveConfig::from_toml_str(LIMITS).unwrap();
        assert_eq!((t.rest_url.as_str(), t.mode), (TESTNET_URL, RunMode::Testnet));
    }

    #[test]
    fn errors_name_the_key() {
        let e = |extra: &str| LiveConfig::from_toml_str(&format!("{LIMITS}{extra}")).unwrap_err().to_string();
        assert!(e("orphans = \"keep\"").contains("orphans"));
        assert!(e("recv_window_ms = 70000").contains("recv_window_ms"));
        assert!(e("base_url = \"http://example.com\"").contains("base_url"));
        assert!(e("base_url = \"http://127.0.0.1:1\"").contains("ws_api_url"));
        assert!(e("reconcile_every_s = 0").contains("reconcile_every_s"));
        assert!(e("surprise = 1").contains("surprise"));
        assert!(e("timeout_ms = 50").contains("timeout_ms"));
        assert!(e("kill_stale_feed_s = 0").contains("kill_stale_feed_s"));
        assert!(e("ban_wait_max_s = -1").contains("ban_wait_max_s"));
        let missing = LiveConfig::from_toml_str("max_position = \"1\"").unwrap_err().to_string();
        assert!(missing.contains("max_order_notional"), "{missing}");
        let neg = LiveConfig::from_toml_str("max_position = \"-1\"\nmax_order_notional = 1\ndaily_loss_limit = 1")
            .unwrap_err()
            .to_string();
        assert!(neg.contains("max_position"), "{neg}");
    }

    #[test]
    fn stp_bnb_price_and_balance_tolerances() {
        let c = LiveConfig::from_toml_str(&format!(
            "{LIMITS}stp_mode = \"EXPIRE_BOTH\"\nbnb_price = \"612.5\"\nbalance_tolerance = \"0.001\"\n\
             balance_kill_tolerance = 0.01\n"
        ))
        .unwrap();
        assert_eq!(c.stp_mode, StpMode::ExpireBoth);
        assert_eq!(c.bnb_price, Some(Price(61_250_000_000)));
        assert_eq!(c.balance_tolerance, BalanceTolerance { warn: Qty(100_000), kill: Qty(1_000_000) });
        let e = |extra: &str| LiveConfig::from_toml_str(&format!("{LIMITS}{extra}")).unwrap_err().to_string();
        let stp = e("stp_mode = \"expire_maker\"");
        assert!(stp.contains("stp_mode") && stp.contains("EXPIRE_MAKER"), "{stp}");
        assert!(e("bnb_price = \"0\"").contains("bnb_price"));
        assert!(e("bnb_price = \"-1\"").contains("bnb_price"));
        let kill = e("balance_tolerance = \"0.01\"\nbalance_kill_tolerance = \"0.001\"");
        assert!(kill.contains("balance_kill_tolerance") && kill.contains("0.01"), "{kill}");
        // A tolerance above the default kill tolerance moves the default up.
        let c = LiveConfig::from_toml_str(&format!("{LIMITS}balance_tolerance = \"0.2\"")).unwrap();
        assert_eq!(c.balance_tolerance.kill, Qty(20_000_000));
    }

    /// FACTS.md §4.7: a request stays executable for recvWindow; the
    /// client may not give up before.
    #[test]
    fn timeout_below_recv_window_is_refused_with_the_reason() {
        let e = LiveConfig::from_toml_str(&format!("{LIMITS}timeout_ms = 800")).unwrap_err().to_string();
        assert!(e.contains("timeout_ms") && e.contains("recv_window_ms = 5000") && e.contains("recvWindow"), "{e}");
        let ok = LiveConfig::from_toml_str(&format!("{LIMITS}timeout_ms = 800\nrecv_window_ms = 800")).unwrap();
        assert_eq!(ok.timeout, ok.recv_window);
    }
}
