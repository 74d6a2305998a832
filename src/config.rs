//! Settings from `mmbot.toml`, read in two steps: raw (serde, every key
//! optional with a default) then validated (impossible values refused with a
//! message naming the key, the value and what is allowed).
//!
//! Prices and quantities may be written as strings ("0.001") or plain numbers
//! (0.001); either way they become exact fixed-point. Secrets never live
//! here: they come from the environment or `.env` only.

use std::path::Path;

use serde::Deserialize;

use crate::exec::paper::PaperConfig;
use crate::feed::live::FeedConfig;
use crate::hot::engine::HotConfig;
use crate::hot::features::FeatureConfig;
use crate::hot::fixed::{parse_fixed, Price, Qty};
use crate::hot::guard::{Filters, GuardConfig, LadderRule, LevelSpacing};
use crate::hot::market::BookSizes;
use crate::hot::msg::Symbol;
use crate::hot::strategy::StrategyParams;
use crate::hot::sync::SyncConfig;

mod ai;
pub mod alerts;
pub mod control;
mod describe;
mod feed;
mod hot;
mod overrides;
mod paper;
pub mod source;
pub mod symbols;

use ai::{validate_ai, RawAi};
use feed::validate_feed;
pub use hot::WarmConfig;
pub use overrides::{load_with_params, Param, ParamError};
use paper::validate_paper;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path} is not valid TOML for mmbot: {message}")]
    Toml { path: String, message: String },
    #[error("config key `{key}` = {value} is invalid: {allowed}")]
    Invalid { key: &'static str, value: String, allowed: String },
    /// The `[live]` section (its own messages name `[live] key`).
    /// Transparent: the message is said once, not again as its source.
    #[error(transparent)]
    Live(#[from] crate::exec::live_config::LiveConfigError),
    /// `[net] ip_guard_file` could not be opened (its message names it).
    #[error(transparent)]
    IpGuard(#[from] crate::ipguard::HostFileError),
    /// `[[symbols]]` or `[account]` (its messages name the key).
    #[error(transparent)]
    Symbols(#[from] symbols::SymbolsError),
    /// `[alerts]` (its messages name the key).
    #[error(transparent)]
    Alerts(#[from] alerts::AlertsError),
}

/// A decimal as written: a string or a TOML number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawDecimal {
    Text(String),
    Int(i64),
    Float(f64),
}

impl RawDecimal {
    fn text(&self) -> String {
        match self {
            RawDecimal::Text(s) => s.clone(),
            RawDecimal::Int(i) => i.to_string(),
            // Shortest round-trip form: 0.001 prints as "0.001".
            RawDecimal::Float(f) => format!("{f}"),
        }
    }
}

macro_rules! raw_section {
    ($(#[$doc:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        pub struct $name { $(pub $field: Option<$ty>,)* }
    };
}

raw_section!(
    /// `[book]`
    RawBook {
        capacity: i64,
        max_message_levels: i64,
        buffer_events: i64,
        buffer_levels: i64,
        max_symbols: i64,
        max_id_jump: i64,
        stale_resync_ms: i64,
        touch_first: bool,
    }
);
raw_section!(
    /// `[market]`
    RawMarket { symbol: String }
);
raw_section!(
    /// `[strategy]`
    RawStrategy {
        target_spread_pct: f64,
        min_order_size: RawDecimal,
        max_position: RawDecimal,
        script: String,
        params: std::collections::BTreeMap<String, f64>,
        levels: i64,
        level_spacing_ticks: i64,
        level_spacing_bps: f64,
        level_size_growth: f64,
    }
);
raw_section!(
    /// `[script]`: the sandbox's caps
    RawScript {
        max_operations: i64,
        max_call_levels: i64,
        max_string_size: i64,
        max_array_size: i64,
        max_map_size: i64,
        max_error_share: f64,
        max_call_us: f64,
        over_budget_calls: i64,
        over_budget_window_s: f64,
    }
);
raw_section!(
    /// `[risk]`
    RawRisk { min_spread_bps: f64, max_spread_bps: f64, stale_after_ms: i64 }
);
raw_section!(
    /// `[filters]`
    RawFilters { tick_size: RawDecimal, step_size: RawDecimal, min_qty: RawDecimal, min_notional: RawDecimal }
);
raw_section!(
    /// `[paper]`
    RawPaper {
        latency_ms: f64,
        entry_latency_ms: f64,
        cancel_latency_ms: f64,
        response_latency_ms: f64,
        latency_from_journal: String,
        latency_seed: i64,
        refresh_ticks: i64,
        max_order_age_ms: i64,
        maker_fee: RawDecimal,
        taker_fee: RawDecimal,
        queue_model: String,
        queue_power: f64,
        order_type: String,
        clock: String,
    }
);
raw_section!(
    /// `[features]`
    RawFeatures { depth_levels: i64, vol_half_life_s: f64, flow_half_life_s: f64 }
);
raw_section!(
    /// `[cores]`
    RawCores { hot: i64 }
);
raw_section!(
    /// `[feed]`: the live market-data connection
    RawFeed {
        market: String,
        symbols: Vec<String>,
        stream_url: String,
        rest_url: String,
        depth: String,
        trades: bool,
        book_ticker: bool,
        poll: String,
        poll_timeout_us: i64,
        stale_after_ms: i64,
        ping_interval_ms: i64,
        pong_timeout_ms: i64,
        max_connection_age_s: i64,
        connect_timeout_ms: i64,
        backoff_min_ms: i64,
        backoff_max_ms: i64,
        max_connect_attempts: i64,
        snapshot_limit: i64,
        snapshot_retry_ms: i64,
        snapshot_hedge_ms: i64,
        weight_per_minute: i64,
        depth20_fallback: bool,
        ws_api_depth: bool,
        ws_api_url: String,
        warm_every_us: i64,
    }
);

/// The whole file as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub book: RawBook,
    #[serde(default)]
    pub market: RawMarket,
    #[serde(default)]
    pub strategy: RawStrategy,
    #[serde(default)]
    pub risk: RawRisk,
    #[serde(default)]
    pub filters: RawFilters,
    #[serde(default)]
    pub paper: RawPaper,
    #[serde(default)]
    pub features: RawFeatures,
    #[serde(default)]
    pub cores: RawCores,
    #[serde(default)]
    pub script: RawScript,
    #[serde(default)]
    pub ai: RawAi,
    #[serde(default)]
    pub feed: RawFeed,
    #[serde(default)]
    pub net: crate::ipguard::settings::RawNet,
    #[serde(default)]
    pub control: control::RawControl,
    #[serde(default)]
    pub alerts: Option<alerts::RawAlerts>,
    /// Live trading; absent means paper only (its limits have no default).
    #[serde(default)]
    pub live: Option<crate::exec::live_config::RawLiveConfig>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub hot: HotConfig,
    pub paper: PaperConfig,
    /// Core for the hot thread (`None`: do not pin).
    pub hot_core: Option<usize>,
    /// A Rhai strategy script (`None`: the native strategy).
    pub script: Option<std::path::PathBuf>,
    /// `[strategy.params]`, read by scripts with `param(name, default)`.
    pub params: crate::script::Params,
    pub script_limits: crate::script::ScriptLimits,
    /// `[script] max_error_share`: a run whose strategy script failed on a
    /// larger share of its calls (errors and wrong-shaped outputs) ends with
    /// exit status 9 and says so.
    pub max_script_error_share: f64,
    /// `[script] max_call_us`, `over_budget_calls`, `over_budget_window_s`:
    /// the time budget of one script call on the hot path.
    pub script_budget: crate::script::ScriptBudget,
    /// `[strategy] levels`: quotes per side a strategy may ask for (1 to
    /// [`crate::hot::strategy::MAX_LEVELS`]; default 1).
    pub strategy_levels: usize,
    /// The offline rules backtests use: `Some` for every provider but
    /// `"none"` (neutral advice). Backtests never call an LLM.
    pub ai_offline: Option<crate::ai::offline::OfflineConfig>,
    /// How often advice is asked for, ns (`ai.interval`).
    pub ai_interval_ns: i64,
    /// `[ai]`: provider, model, timeouts, prices, advice log.
    pub ai: crate::ai::AiConfig,
    /// The live feed (`mmbot paper`, `mmbot record`).
    pub feed: FeedConfig,
    /// `[feed] warm_every_us`: a busy-polling hot thread warms its caches
    /// this often while no frame arrives (`src/runtime/warm.rs`).
    pub warm: WarmConfig,
    /// `[net]`: the IP guard's shared file.
    pub net: crate::ipguard::settings::NetConfig,
    /// Backtests: replay this advice log (JSONL from a live run) in
    /// simulated time instead of the offline rules (`--advice-log`; not a
    /// TOML key).
    pub advice_replay: Option<std::path::PathBuf>,
    /// `[paper] latency_from_journal`: a live run's journal whose order
    /// round trips (`order_rtt`) backtests replay as latencies.
    pub paper_latency_journal: Option<std::path::PathBuf>,
    /// `[live]`: where and under which limits `mmbot run --live` trades
    /// (`None` when the section is absent).
    pub live: Option<crate::exec::live_config::LiveConfig>,
    /// The file these settings were read from (`None`: built-in defaults or
    /// text): the live-parameter watcher re-reads it while a run goes on
    /// (`src/script/params.rs`).
    pub source: Option<std::path::PathBuf>,
    /// `[[symbols]]` and `[account]`: several symbols from one account,
    /// each with its own settings (`None`: the one `[market] symbol`).
    pub symbols: Option<symbols::Symbols>,
    /// `[control]`: the control plane's server (`src/control`).
    pub control: control::ControlConfig,
    /// `[alerts]`: webhooks the control plane calls (`src/control/alerts`).
    pub alerts: alerts::AlertsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self::validate(RawConfig::default()).expect("the defaults are valid")
    }
}

/// `[risk] stale_after_ms` by default: ten times the 100 ms cadence of the
/// depth streams the feed subscribes (`@depth@100ms`, `@depth20@100ms`,
/// FACTS.md §1.1-1.2). A diff stream only sends when the book changes, so a
/// quiet symbol needs more: set it above the longest quiet spell seen in a
/// recording of that symbol (mmbot.example.toml says how).
pub const STALE_AFTER_MS: i64 = 1000;

/// `[strategy] level_spacing_ticks` or `level_spacing_bps` (one of them),
/// and `level_size_growth`: where a ladder's further levels go when the
/// strategy gives only the best of a side.
fn ladder_rule(st: &RawStrategy, levels: usize) -> Result<LadderRule, ConfigError> {
    let d = LadderRule::default();
    let spacing = match (st.level_spacing_ticks, st.level_spacing_bps) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "strategy.level_spacing_ticks",
                "set with strategy.level_spacing_bps",
                "one of level_spacing_ticks or level_spacing_bps, not both",
            ))
        }
        (Some(t), None) => LevelSpacing::Ticks(in_range("strategy.level_spacing_ticks", Some(t), 1, 1, 1_000_000)?),
        (None, Some(b)) => LevelSpacing::Bps(float_in("strategy.level_spacing_bps", Some(b), 5.0, 0.01, 10_000.0)?),
        (None, None) => d.spacing,
    };
    let size_growth = float_in("strategy.level_size_growth", st.level_size_growth, d.size_growth, 0.1, 10.0)?;
    Ok(LadderRule { levels, spacing, size_growth })
}

fn invalid(key: &'static str, value: impl ToString, allowed: impl ToString) -> ConfigError {
    ConfigError::Invalid { key, value: value.to_string(), allowed: allowed.to_string() }
}

fn in_range(key: &'static str, v: Option<i64>, default: i64, lo: i64, hi: i64) -> Result<i64, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if (lo..=hi).contains(&v) => Ok(v),
        Some(v) => Err(invalid(key, v, format!("must be an integer from {lo} to {hi}"))),
    }
}

fn float_in(key: &'static str, v: Option<f64>, default: f64, lo: f64, hi: f64) -> Result<f64, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if v.is_finite() && (lo..=hi).contains(&v) => Ok(v),
        Some(v) => Err(invalid(key, v, format!("must be a number from {lo} to {hi}"))),
    }
}

fn decimal(key: &'static str, v: &Option<RawDecimal>, default: i64) -> Result<i64, ConfigError> {
    match v {
        None => Ok(default),
        Some(raw) => {
            let text = raw.text();
            parse_fixed(text.as_bytes()).map_err(|e| {
                invalid(
                    key,
                    format!("{text:?}"),
                    format!("{e}; write a plain decimal with at most 8 decimals, e.g. \"0.001\""),
                )
            })
        }
    }
}

impl Config {
    /// Parses and validates TOML text; `origin` names it in messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let doc: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Toml { path: origin.to_string(), message: e.to_string() })?;
        Self::from_doc(&doc, origin)
    }

    /// Validates a parsed file (`origin` names it in messages), with its
    /// `[[symbols]]` entries each validated as the file with the entry's
    /// overrides ([`symbols`]).
    pub fn from_doc(doc: &toml::Table, origin: &str) -> Result<Self, ConfigError> {
        let mut rest = doc.clone();
        let list = rest.remove("symbols");
        let account = rest.remove("account");
        let validate = |d: &toml::Table| -> Result<Config, ConfigError> {
            let raw: RawConfig = toml::Value::Table(d.clone())
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Toml { path: origin.to_string(), message: e.to_string() })?;
            Self::validate(raw)
        };
        let mut config = validate(&rest)?;
        match (list, account) {
            (Some(list), account) => {
                config.symbols = Some(symbols::read(&rest, &list, account.as_ref(), &validate)?);
            }
            (None, Some(_)) => {
                return Err(symbols::SymbolsError::Key {
                    key: "account".into(),
                    why: "an [account] shares capital between [[symbols]] entries; list them, or remove it".into(),
                }
                .into())
            }
            (None, None) => {}
        }
        Ok(config)
    }

    /// Refuses a multi-symbol config for `command`, which trades one symbol.
    pub fn one_symbol(&self, command: &str) -> Result<(), ConfigError> {
        match &self.symbols {
            Some(s) => Err(symbols::SymbolsError::Key {
                key: "symbols".into(),
                why: format!(
                    "lists {} symbols, and `{command}` trades one so far (`mmbot backtest`, `replay`, `paper` \
                     and `run --live` run several; `mmbot demo --symbols N` simulates several): use [market] \
                     symbol for it",
                    s.entries.len()
                ),
            }
            .into()),
            None => Ok(()),
        }
    }

    /// For `run --live`: a ladder works an open order per level a side,
    /// so `[live] max_open_orders` must leave room for all of them (the
    /// symbol's `MAX_NUM_ORDERS` is checked once exchangeInfo is read).
    pub fn live_ladder_fits(&self) -> Result<(), ConfigError> {
        let Some(live) = &self.live else { return Ok(()) };
        let orders = 2 * self.strategy_levels as u64;
        if orders <= live.limits.max_open_orders as u64 {
            return Ok(());
        }
        Err(invalid(
            "live.max_open_orders",
            live.limits.max_open_orders,
            format!(
                "at least {orders} for `run --live` with [strategy] levels = {} (an order per level, both sides); \
                 raise it or quote fewer levels",
                self.strategy_levels
            ),
        ))
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let mut config = Self::from_toml(&text, &path.display().to_string())?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Reads the file the one rule picks ([`source::Choice`]: `--config`,
    /// else `$MMBOT_CONFIG`, else `./mmbot.toml` if present, else the
    /// defaults) and says which on stderr, as the command's first line.
    pub fn load_or_default(flag: Option<&Path>) -> Result<Self, ConfigError> {
        let choice = source::Choice::for_process(flag);
        crate::say!("mmbot: {}", choice.line());
        Self::load_chosen(&choice)
    }

    /// Reads what `choice` names (the defaults for [`source::Choice::Defaults`]).
    pub fn load_chosen(choice: &source::Choice) -> Result<Self, ConfigError> {
        choice.path().map_or_else(|| Ok(Self::default()), Self::load)
    }

    pub fn validate(raw: RawConfig) -> Result<Self, ConfigError> {
        let d = BookSizes::default();
        let b = &raw.book;
        let sizes = BookSizes {
            // Ticks per side the ladder spans: a power of two (the ladder
            // wraps by masking).
            capacity: match in_range("book.capacity", b.capacity, d.capacity as i64, 64, 1 << 22)? as usize {
                c if c.is_power_of_two() => c,
                c => {
                    return Err(invalid(
                        "book.capacity",
                        c,
                        format!(
                            "must be a power of two (the ladder wraps by masking), e.g. {} or {}",
                            c.next_power_of_two() / 2,
                            c.next_power_of_two()
                        ),
                    ))
                }
            },
            // Binance snapshots hold at most 5000 levels per side.
            max_message_levels: in_range(
                "book.max_message_levels",
                b.max_message_levels,
                d.max_message_levels as i64,
                20,
                100_000,
            )? as usize,
            buffer_events: in_range("book.buffer_events", b.buffer_events, d.buffer_events as i64, 16, 1_000_000)?
                as usize,
            buffer_levels: in_range("book.buffer_levels", b.buffer_levels, d.buffer_levels as i64, 256, 10_000_000)?
                as usize,
            max_symbols: in_range("book.max_symbols", b.max_symbols, d.max_symbols as i64, 1, 1024)? as usize,
        };
        let ds = SyncConfig::default();
        let sync = SyncConfig {
            // A diff whose `u` is further than this past the book's id is
            // malformed (10^7 by default: spot ids move far less between
            // two diffs of one symbol).
            max_id_jump: in_range(
                "book.max_id_jump",
                b.max_id_jump,
                ds.max_id_jump as i64,
                1_000,
                1_000_000_000_000_000,
            )? as u64,
            // A synced book that applies nothing for this long is rebuilt.
            stale_resync_ns: in_range(
                "book.stale_resync_ms",
                b.stale_resync_ms,
                ds.stale_resync_ns / 1_000_000,
                0,
                600_000,
            )? * 1_000_000,
        };

        let symbol = match &raw.market.symbol {
            None => None,
            Some(s) if !s.is_empty() && s.len() <= Symbol::MAX_LEN && s.bytes().all(|c| c.is_ascii_alphanumeric()) => {
                Some(Symbol::new(s.as_bytes()))
            }
            Some(s) => {
                return Err(invalid("market.symbol", format!("{s:?}"), "must be a Binance symbol such as \"BTCUSDT\""))
            }
        };

        let ds = StrategyParams::default();
        let st = &raw.strategy;
        let params = StrategyParams {
            target_spread_pct: float_in(
                "strategy.target_spread_pct",
                st.target_spread_pct,
                ds.target_spread_pct,
                0.0,
                50.0,
            )?,
            min_order_size: Qty(decimal("strategy.min_order_size", &st.min_order_size, ds.min_order_size.0)?),
            max_position: Qty(decimal("strategy.max_position", &st.max_position, ds.max_position.0)?),
        };
        if params.min_order_size.0 == 0 {
            return Err(invalid("strategy.min_order_size", "0", "must be above 0"));
        }

        let dg = GuardConfig::default();
        let r = &raw.risk;
        let strategy_levels =
            in_range("strategy.levels", raw.strategy.levels, 1, 1, crate::hot::strategy::MAX_LEVELS as i64)? as usize;
        let ladder = ladder_rule(&raw.strategy, strategy_levels)?;
        let guard = GuardConfig {
            min_spread_bps: float_in("risk.min_spread_bps", r.min_spread_bps, dg.min_spread_bps, 0.0, 10_000.0)?,
            max_spread_bps: float_in("risk.max_spread_bps", r.max_spread_bps, dg.max_spread_bps, 0.0, 10_000.0)?,
            max_position: params.max_position,
            stale_after_ns: in_range("risk.stale_after_ms", r.stale_after_ms, STALE_AFTER_MS, 1, 3_600_000)?
                * 1_000_000,
            ladder,
        };
        if guard.min_spread_bps > guard.max_spread_bps {
            return Err(invalid(
                "risk.min_spread_bps",
                guard.min_spread_bps,
                format!("must not exceed risk.max_spread_bps ({})", guard.max_spread_bps),
            ));
        }

        let f = &raw.filters;
        let tick_size = match &f.tick_size {
            Some(RawDecimal::Text(t)) if t == "auto" => 0,
            other => decimal("filters.tick_size", other, 0)?,
        };
        let filters = Filters {
            tick_size: Price(tick_size),
            step_size: Qty(decimal("filters.step_size", &f.step_size, 1)?.max(1)),
            min_qty: Qty(decimal("filters.min_qty", &f.min_qty, 0)?),
            min_notional: decimal("filters.min_notional", &f.min_notional, 0)?,
        };

        let (paper, paper_latency_journal) = validate_paper(&raw.paper, params.max_position, filters.step_size)?;

        let df = FeatureConfig::default();
        let fe = &raw.features;
        let features = FeatureConfig {
            depth_levels: in_range("features.depth_levels", fe.depth_levels, df.depth_levels as i64, 1, 100)? as usize,
            vol_half_life_ns: (float_in(
                "features.vol_half_life_s",
                fe.vol_half_life_s,
                df.vol_half_life_ns as f64 / 1e9,
                0.001,
                86_400.0,
            )? * 1e9) as i64,
            flow_half_life_ns: (float_in(
                "features.flow_half_life_s",
                fe.flow_half_life_s,
                df.flow_half_life_ns as f64 / 1e9,
                0.001,
                86_400.0,
            )? * 1e9) as i64,
        };

        let hot_core = match raw.cores.hot {
            None => None,
            Some(c) => Some(in_range("cores.hot", Some(c), 0, 0, 4095)? as usize),
        };

        let ds = crate::script::ScriptLimits::default();
        let sc = &raw.script;
        let script_limits = crate::script::ScriptLimits {
            max_operations: in_range(
                "script.max_operations",
                sc.max_operations,
                ds.max_operations as i64,
                100,
                100_000_000,
            )? as u64,
            max_call_levels: in_range("script.max_call_levels", sc.max_call_levels, ds.max_call_levels as i64, 1, 256)?
                as usize,
            max_string_size: in_range(
                "script.max_string_size",
                sc.max_string_size,
                ds.max_string_size as i64,
                16,
                1 << 20,
            )? as usize,
            max_array_size: in_range("script.max_array_size", sc.max_array_size, ds.max_array_size as i64, 1, 1 << 20)?
                as usize,
            max_map_size: in_range("script.max_map_size", sc.max_map_size, ds.max_map_size as i64, 1, 1 << 20)?
                as usize,
        };
        let db = crate::script::ScriptBudget::default();
        let script_budget = crate::script::ScriptBudget {
            max_call_ns: (float_in("script.max_call_us", sc.max_call_us, db.max_call_ns as f64 / 1e3, 1.0, 1e6)? * 1e3)
                as u64,
            strikes: in_range("script.over_budget_calls", sc.over_budget_calls, db.strikes as i64, 1, 1_000_000)?
                as u32,
            window: secs("script.over_budget_window_s", sc.over_budget_window_s, db.window, 0.001, 86_400.0)?,
        };
        let user_params = raw.strategy.params.clone().unwrap_or_default();
        if let Some((k, v)) = user_params.iter().find(|(_, v)| !v.is_finite()) {
            return Err(invalid("strategy.params", format!("{k} = {v}"), "every parameter must be a finite number"));
        }
        let script = match &raw.strategy.script {
            None => None,
            Some(p) if p.is_empty() => {
                return Err(invalid("strategy.script", "\"\"", "give a .rhai file path, or leave the key out"))
            }
            Some(p) => Some(std::path::PathBuf::from(p)),
        };

        let ai = validate_ai(&raw.ai)?;
        let ai_interval_ns = ai.interval.as_nanos() as i64;
        let ai_offline = match ai.provider {
            crate::ai::Provider::None => None,
            // Advice lives `ttl_intervals` (3) intervals, then reads as neutral.
            _ => Some(crate::ai::offline::OfflineConfig { ttl_ns: ai.ttl_ns(), ..Default::default() }),
        };

        let feed = validate_feed(&raw.feed, symbol)?;
        let warm = hot::validate_warm(&raw.feed, feed.busy_poll)?;
        if feed.depth20_fallback && features.depth_levels > 20 {
            // A book rebuilt from depth20 is exact in 20 levels only.
            return Err(invalid(
                "feed.depth20_fallback",
                "true",
                format!("needs features.depth_levels of 20 or fewer (it is {})", features.depth_levels),
            ));
        }
        let net = crate::ipguard::settings::NetConfig::from_raw(&raw.net)
            .map_err(|(key, value, allowed)| invalid(key, value, allowed))?;
        let live = raw.live.clone().map(crate::exec::live_config::LiveConfig::from_raw).transpose()?;
        let control = control::validate_control(&raw.control)?;
        let alerts = match &raw.alerts {
            Some(a) => alerts::validate_alerts(a)?,
            None => alerts::AlertsConfig::default(),
        };

        Ok(Self {
            feed,
            warm,
            net,
            live,
            advice_replay: None,
            paper_latency_journal,
            ai_offline,
            ai_interval_ns,
            ai,
            hot: HotConfig {
                symbol,
                sizes,
                features,
                guard,
                params,
                filters,
                sync,
                touch_first: raw.book.touch_first.unwrap_or(true),
            },
            paper,
            hot_core,
            script,
            params: user_params,
            script_limits,
            max_script_error_share: float_in("script.max_error_share", sc.max_error_share, 0.5, 0.0, 1.0)?,
            script_budget,
            strategy_levels,
            source: None,
            symbols: None,
            control,
            alerts,
        })
    }
}

fn secs(
    key: &'static str,
    v: Option<f64>,
    default: std::time::Duration,
    lo: f64,
    hi: f64,
) -> Result<std::time::Duration, ConfigError> {
    Ok(std::time::Duration::from_secs_f64(float_in(key, v, default.as_secs_f64(), lo, hi)?))
}

fn valid_symbol(s: &str) -> bool {
    !s.is_empty() && s.len() <= Symbol::MAX_LEN && s.bytes().all(|c| c.is_ascii_alphanumeric())
}

impl Config {
    /// The process's one IP guard ([`crate::ipguard::IpGuard`]), sharing
    /// bans and back-offs through `[net] ip_guard_file` (created if
    /// missing). Build it once per process and hand clones to the feed
    /// (`FeedConfig::ip_guard`) and the order client
    /// (`RestClient::with_guard`).
    /// Against `mmbot sim` (every endpoint in use on 127.0.0.1) the default
    /// file is left alone: a simulated ban must not stop real bots.
    pub fn ip_guard(&self) -> Result<crate::ipguard::IpGuard, ConfigError> {
        let lo = crate::ipguard::settings::NetConfig::is_loopback;
        let feed = lo(&self.feed.stream_url()) && lo(&self.feed.rest_url());
        let live = self.live.as_ref().is_none_or(|l| lo(&l.rest_url) && (l.ws_api_url.is_empty() || lo(&l.ws_api_url)));
        Ok(self.net.guard(feed && live)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_empty() {
        let c = Config::from_toml("", "t").unwrap();
        assert_eq!(c.hot.sizes, BookSizes::default());
        assert_eq!(c.paper.entry_latency_ns, 20_000_000);
        assert_eq!((c.paper.cancel_latency_ns, c.paper.response_latency_ns), (20_000_000, 20_000_000));
        assert_eq!(c.paper.queue_model, crate::exec::paper::QueueModel::RiskAverse);
        assert_eq!(c.paper.order_type, crate::exec::paper::OrderType::LimitMaker);
        assert_eq!((c.paper.maker_fee_rate, c.paper.taker_fee_rate), (100_000, 100_000));
        assert!(c.paper_latency_journal.is_none());
        assert_eq!(c.hot.filters.tick_size, Price(0));
    }

    #[test]
    fn the_stale_pull_default_suits_100_ms_streams() {
        let c = Config::default();
        assert_eq!(c.hot.guard.stale_after_ns, 1_000_000_000);
        let c = Config::from_toml("[risk]\nstale_after_ms = 30000\n", "t").unwrap();
        assert_eq!(c.hot.guard.stale_after_ns, 30_000_000_000);
        assert_eq!(Config::default().feed.snapshot_hedge_after, std::time::Duration::from_secs(1));
        assert!(Config::default().describe().contains("snapshot_hedge_ms = 1000"));
    }

    #[test]
    fn the_example_file_is_valid_and_states_the_defaults() {
        let text = include_str!("../mmbot.example.toml");
        let example = Config::from_toml(text, "mmbot.example.toml").unwrap();
        assert_eq!(example.describe(), Config::default().describe());
    }

    #[test]
    fn decimals_as_strings_or_numbers_are_exact() {
        let c = Config::from_toml(
            "[strategy]\nmin_order_size = 0.001\nmax_position = \"0.05\"\n[filters]\ntick_size = \"0.01\"\n[paper]\nmaker_fee = 0.0002\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.hot.params.min_order_size, Qty(100_000));
        assert_eq!(c.hot.params.max_position, Qty(5_000_000));
        assert_eq!(c.hot.guard.max_position, Qty(5_000_000));
        assert_eq!(c.hot.filters.tick_size, Price(1_000_000));
        assert_eq!(c.paper.maker_fee_rate, 20_000);
    }

    #[test]
    fn paper_latencies_fees_queue_model_and_order_type() {
        use crate::exec::paper::{OrderType, QueueModel};
        let c = Config::from_toml(
            "[paper]\nlatency_ms = 5\ncancel_latency_ms = 2.5\nmaker_fee = -0.0001\ntaker_fee = 0.0004\n\
             queue_model = \"power\"\nqueue_power = 3\norder_type = \"limit\"\nlatency_from_journal = \"j.sqlite\"\n\
             latency_seed = 42\n",
            "t",
        )
        .unwrap();
        let p = c.paper;
        assert_eq!((p.entry_latency_ns, p.cancel_latency_ns, p.response_latency_ns), (5_000_000, 2_500_000, 5_000_000));
        assert_eq!((p.maker_fee_rate, p.taker_fee_rate), (-10_000, 40_000));
        assert_eq!((p.queue_model, p.order_type, p.latency_seed), (QueueModel::Power(3.0), OrderType::Limit, 42));
        assert_eq!(c.paper_latency_journal.as_deref(), Some(std::path::Path::new("j.sqlite")));
        let c = Config::from_toml("[paper]\nqueue_model = \"power\"\n", "t").unwrap();
        assert_eq!(c.paper.queue_model, QueueModel::Power(2.0));
        let c = Config::from_toml("[paper]\nqueue_model = \"log\"\nresponse_latency_ms = 0\n", "t").unwrap();
        assert_eq!((c.paper.queue_model, c.paper.response_latency_ns), (QueueModel::Log, 0));
        assert_eq!(c.paper.clock, crate::exec::paper::PaperClock::Receive);
        assert!(c.describe().contains("queue_model = \"log\""), "{}", c.describe());
        let c = Config::from_toml("[paper]\nclock = \"exchange\"\n[filters]\nstep_size = \"0.001\"\n", "t").unwrap();
        assert_eq!((c.paper.clock, c.paper.lot_size), (crate::exec::paper::PaperClock::Exchange, Qty(100_000)));
        assert!(c.describe().contains("clock = \"exchange\""), "{}", c.describe());
    }

    const LIVE_BAD_URL: &str =
        "[live]\nbase_url = \"ftp://x\"\nmax_position = 1\nmax_order_notional = 1\ndaily_loss_limit = 1\n";

    #[test]
    fn the_ip_guard_file_is_a_net_key() {
        let c = Config::from_toml("[net]\nip_guard_file = \"/tmp/mmbot-guard-test\"\n", "t").unwrap();
        assert_eq!(c.net.ip_guard_file.as_deref(), Some(std::path::Path::new("/tmp/mmbot-guard-test")));
        assert!(c.describe().contains("[net]\nip_guard_file = \"/tmp/mmbot-guard-test\""));
        assert_eq!(Config::from_toml("[net]\nip_guard_file = \"off\"\n", "t").unwrap().net.ip_guard_file, None);
        assert!(Config::default().net.ip_guard_file.is_some_and(|p| p.to_string_lossy().contains("mmbot-ipguard-")));
    }

    #[test]
    fn live_section_is_optional_and_validated() {
        assert!(Config::default().live.is_none());
        let c = Config::from_toml(
            "[live]\nmax_position = \"0.5\"\nmax_order_notional = 100\ndaily_loss_limit = 20\nkill_stale_feed_s = 5\n",
            "t",
        )
        .unwrap();
        let l = c.live.as_ref().unwrap();
        assert_eq!((l.limits.max_position, l.kill.stale_feed_ns), (Qty(50_000_000), 5_000_000_000));
        assert!(c.describe().contains("kill_stale_feed_s = 5"), "{}", c.describe());
    }

    #[test]
    fn bad_values_name_the_key() {
        for (toml, key, hint) in [
            ("[book]\ncapacity = 3\n", "book.capacity", "64 to 4194304"),
            ("[strategy]\nmin_order_size = \"-1\"\n", "strategy.min_order_size", "sign"),
            ("[strategy]\nmin_order_size = \"0.000000001\"\n", "strategy.min_order_size", "more than 8 decimals"),
            ("[strategy]\ntarget_spread_pct = -0.1\n", "strategy.target_spread_pct", "from 0 to 50"),
            ("[risk]\nmin_spread_bps = 50.0\nmax_spread_bps = 10.0\n", "risk.min_spread_bps", "must not exceed"),
            ("[filters]\ntick_size = \"abc\"\n", "filters.tick_size", "not a digit"),
            ("[market]\nsymbol = \"BTC-USDT\"\n", "market.symbol", "Binance symbol"),
            ("[paper]\nmaker_fee = 0.5\n", "paper.maker_fee", "to 0.01"),
            ("[paper]\nmaker_fee = -0.001\n", "paper.maker_fee", "from -0.0001"),
            ("[paper]\ntaker_fee = \"-0.001\"\n", "paper.taker_fee", "sign"),
            ("[paper]\nqueue_model = \"fifo\"\n", "paper.queue_model", "\"power\""),
            ("[paper]\nqueue_power = 3.0\n", "paper.queue_power", "only with queue_model"),
            ("[paper]\nqueue_model = \"power\"\nqueue_power = 0\n", "paper.queue_power", "from 0.01"),
            ("[paper]\norder_type = \"market\"\n", "paper.order_type", "limit_maker"),
            ("[paper]\nclock = \"local\"\n", "paper.clock", "\"exchange\""),
            ("[paper]\nentry_latency_ms = -1\n", "paper.entry_latency_ms", "from 0"),
            ("[paper]\nlatency_from_journal = \"\"\n", "paper.latency_from_journal", "journal"),
            ("[cores]\nhot = -1\n", "cores.hot", "from 0 to 4095"),
            ("[script]\nmax_operations = 5\n", "script.max_operations", "from 100"),
            ("[strategy]\nscript = \"\"\n", "strategy.script", ".rhai"),
            ("[feed]\nmarket = \"coinm\"\n", "feed.market", "usdm"),
            ("[feed]\nstream_url = \"https://x\"\n", "feed.stream_url", "ws://"),
            ("[feed]\nrest_url = \"api.binance.com\"\n", "feed.rest_url", "no scheme"),
            ("[feed]\nmarket = \"usdm\"\nsnapshot_limit = 200\n", "feed.snapshot_limit", "accepts 5, 10"),
            ("[feed]\nbackoff_min_ms = 5000\nbackoff_max_ms = 1000\n", "feed.backoff_min_ms", "must not exceed"),
            ("[feed]\nmax_connect_attempts = 301\n", "feed.max_connect_attempts", "1 to 300"),
            ("[feed]\nsnapshot_hedge_ms = 60001\n", "feed.snapshot_hedge_ms", "from 0 to 60000"),
            ("[feed]\nsnapshot_hedge_ms = 10000\n", "feed.snapshot_hedge_ms", "below the snapshot timeout"),
            ("[feed]\nmax_connection_age_s = 0\n", "feed.max_connection_age_s", "from 1 to 86000"),
            ("[feed]\nmarket = \"usdm\"\ndepth20_fallback = true\n", "feed.depth20_fallback", "spot diff streams"),
            (
                "[feed]\ndepth20_fallback = true\n[features]\ndepth_levels = 50\n",
                "feed.depth20_fallback",
                "20 or fewer",
            ),
            ("[feed]\npoll = \"spin\"\n", "feed.poll", "busy"),
            ("[net]\nip_guard_file = \"\"\n", "net.ip_guard_file", "off"),
            ("[net]\nip_guard_file = \"/tmp/\"\n", "net.ip_guard_file", "folder"),
            ("[ai]\nprovider = \"gpt4\"\n", "ai.provider", "\"holysheep\""),
            ("[ai]\nprovider = \"custom\"\n", "ai.base_url", "needs the server's"),
            ("[ai]\nbase_url = \"wss://x\"\n", "ai.base_url", "http://"),
            ("[ai]\nmodel = \"\"\n", "ai.model", "model name"),
            ("[ai]\napi_key_env = \"sk-live-123\"\n", "ai.api_key_env", "NAME of an environment variable"),
            ("[ai]\ntimeout_s = 0\n", "ai.timeout_s", "from 0.05"),
            ("[ai]\nretries = 11\n", "ai.retries", "0 to 10"),
            ("[ai]\nmin_multiplier = 2.0\nmax_multiplier = 1.5\n", "ai.min_multiplier", "must not exceed"),
            ("[ai.prices]\n\"x\" = { input = -1.0, output = 1.0 }\n", "ai.prices", "per million tokens"),
            ("[live]\nmax_position = \"1\"\n", "[live] max_order_notional", "no default limit"),
            (LIVE_BAD_URL, "[live] base_url", "https://"),
            (
                "[live]\nmax_position = \"x\"\nmax_order_notional = 1\ndaily_loss_limit = 1\n",
                "max_position",
                "not a decimal",
            ),
            (
                "[live]\nmax_position = 1\nmax_order_notional = 1\ndaily_loss_limit = 1\nkill_unsynced_s = 0\n",
                "kill_unsynced_s",
                "seconds",
            ),
        ] {
            let e = Config::from_toml(toml, "t").unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(hint), "{toml}: {e}");
        }
        let e = Config::from_toml("[book]\ncapcity = 3000\n", "t").unwrap_err().to_string();
        assert!(e.contains("capcity"), "{e}");
        // A key pasted where its variable's name goes is never echoed.
        let e = Config::from_toml("[ai]\napi_key_env = \"sk-live-123\"\n", "t").unwrap_err().to_string();
        assert!(!e.contains("sk-live"), "{e}");
    }

    #[test]
    fn ai_presets_fill_in_url_model_and_key_variable() {
        use crate::ai::Provider;
        let c = Config::default();
        assert_eq!(c.ai.provider, Provider::Auto);
        assert_eq!(
            (c.ai.base_url.as_deref(), c.ai.model.as_str(), c.ai.key_var.as_str()),
            (Some("https://api.holysheep.ai/v1"), "gpt-4.1", "HOLYSHEEP_API_KEY")
        );
        assert_eq!((c.ai_interval_ns, c.ai_offline.unwrap().ttl_ns), (5_000_000_000, 15_000_000_000));
        let c = Config::from_toml("[ai]\nprovider = \"deepseek\"\n", "t").unwrap();
        assert_eq!(
            (c.ai.endpoint().unwrap().as_str(), c.ai.model.as_str(), c.ai.key_var.as_str()),
            ("https://api.deepseek.com/v1/chat/completions", "deepseek-chat", "DEEPSEEK_API_KEY")
        );
        let c = Config::from_toml(
            "[ai]\nprovider = \"OpenAI\"\nbase_url = \"http://127.0.0.1:9/v1/chat/completions/\"\nmodel = \"m\"\n\
             api_key_env = \"MY_KEY\"\ninterval_s = 2\nttl_intervals = 5\n[ai.prices]\n\"m\" = { input = 1, output = 2 }\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.ai.endpoint().unwrap(), "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!((c.ai.model.as_str(), c.ai.key_var.as_str(), c.ai.ttl_ns()), ("m", "MY_KEY", 10_000_000_000));
        assert_eq!(c.ai.prices.cost("m", 1_000_000, 1_000_000), Some(3.0));
        assert_eq!(c.ai.prices.cost("gpt-4.1", 1_000_000, 0), Some(2.0), "OpenAI's own endpoint: its list price");
        assert_eq!(c.ai_offline.unwrap().ttl_ns, 10_000_000_000, "backtests use the same lifetime");
        let c = Config::from_toml("[ai]\nprovider = \"none\"\n", "t").unwrap();
        assert!(c.ai_offline.is_none() && c.ai.base_url.is_none());
    }
}
