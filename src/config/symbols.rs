//! `[[symbols]]` and `[account]`: several symbols traded from one account.
//!
//! Each `[[symbols]]` entry names a symbol and may override any per-symbol
//! section of the file for it (`[symbols.strategy]`, `[symbols.risk]`,
//! `[symbols.paper]`, `[symbols.filters]`, `[symbols.features]`,
//! `[symbols.book]`, `[symbols.script]`): the entry's tables are merged key
//! by key over the file's own, and the result is validated as a whole
//! config file would be, so every symbol gets the same checks and messages
//! as a single-symbol file (prefixed with the entry). Process-wide
//! sections (`[cores]`, `[feed]`, `[net]`, `[ai]`) and `[market]` (the
//! entry's `symbol` says it) cannot be overridden per symbol; of `[live]`
//! only the pre-trade limits can (`[symbols.live]`: `max_position`,
//! `max_order_notional`, `max_open_orders`, `daily_loss_limit`, in the
//! symbol's own assets), the rest is the account's.
//!
//! `core` puts the symbol on the hot thread pinned to that core: symbols
//! with the same core form one group (`crate::hot::group`), each group its
//! own thread and, live, its own connection; without it, the group on
//! `[cores] hot`.
//!
//! Allocator keys of an entry: `base` and `quote` (the assets; derived from
//! the name's quote-asset suffix when absent), `budget_quote` (required with
//! an `[account]`) and `budget_base` (default 0: sell only what it bought).
//! `[account]` holds the shared account ([`crate::exec::allocator`]):
//! `balances` (asset = amount, what the account holds at start in backtests
//! and paper), `max_open_orders`, and per-asset tables `max_gross_notional`,
//! `max_inventory`, `daily_loss_limit`. Without `[account]` the symbols
//! trade independently (no allocator).
//!
//! Refused at start, each naming the key: a symbol listed twice, a symbol
//! that is not a Binance name, assets that cannot be told, budgets of an
//! asset that add up to more than the account holds of it, an override of
//! a process-wide section.

use std::collections::BTreeMap;

use crate::exec::allocator::{AccountLimits, SymbolBudget};
use crate::hot::fixed::parse_fixed;
use crate::hot::msg::Symbol;

use super::Config;

/// Quote assets a symbol name may end in, longest first where one ends
/// another (FDUSD before USD...): what `base`/`quote` default from.
const QUOTE_ASSETS: [&str; 17] = [
    "FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY", "GBP",
    "AUD", "XRP",
];

/// Sections an entry may override.
const PER_SYMBOL: [&str; 7] = ["strategy", "risk", "paper", "filters", "features", "book", "script"];

/// The `[live]` keys an entry may set for its symbol (`[symbols.live]`):
/// the pre-trade limits, which are in the symbol's own assets. The rest of
/// `[live]` (endpoints, journal, keys, kill switch) is the account's.
const PER_SYMBOL_LIVE: [&str; 4] = ["max_position", "max_order_notional", "max_open_orders", "daily_loss_limit"];

/// Why `[[symbols]]` or `[account]` was refused.
#[derive(Debug, thiserror::Error)]
pub enum SymbolsError {
    #[error("`{key}` is invalid: {why}")]
    Key { key: String, why: String },
    #[error("[[symbols]] entry {index} ({symbol}): {error}")]
    Entry { index: usize, symbol: String, error: Box<super::ConfigError> },
}

fn key_error(key: impl Into<String>, why: impl Into<String>) -> SymbolsError {
    SymbolsError::Key { key: key.into(), why: why.into() }
}

/// One symbol of a multi-symbol config: its place in the account and its
/// own validated settings (the file's, with the entry's overrides).
#[derive(Debug, Clone)]
pub struct SymbolEntry {
    pub budget: SymbolBudget,
    pub config: Config,
    /// The core of the hot thread serving this symbol (`core`): symbols
    /// with the same core form one group on one pinned thread; `None`
    /// joins the group on `[cores] hot`.
    pub core: Option<usize>,
}

/// The validated `[[symbols]]` and `[account]`.
#[derive(Debug, Clone)]
pub struct Symbols {
    pub entries: Vec<SymbolEntry>,
    /// `None` without an `[account]` section: no allocator.
    pub account: Option<AccountLimits>,
}

/// An amount as written (string or number), 1e-8 units, at least zero.
fn amount(key: &str, v: &toml::Value) -> Result<i64, SymbolsError> {
    let text = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => format!("{f}"),
        other => return Err(key_error(key, format!("{other} is not an amount; write e.g. \"1000\" or 0.5"))),
    };
    match parse_fixed(text.as_bytes()) {
        Ok(v) if v >= 0 => Ok(v),
        _ => Err(key_error(key, format!("{text:?} is not an amount of zero or more with at most 8 decimals"))),
    }
}

/// A table of asset = amount.
fn per_asset(key: &str, v: Option<&toml::Value>) -> Result<Vec<(String, i64)>, SymbolsError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let toml::Value::Table(t) = v else {
        return Err(key_error(key, "must be a table of asset = amount, e.g. { USDT = \"1000\", BTC = \"0.5\" }"));
    };
    t.iter().map(|(asset, v)| Ok((asset.to_ascii_uppercase(), amount(&format!("{key}.{asset}"), v)?))).collect()
}

/// `[account]`.
fn account(t: &toml::Table) -> Result<AccountLimits, SymbolsError> {
    for k in t.keys() {
        if !["balances", "max_open_orders", "max_gross_notional", "max_inventory", "daily_loss_limit"]
            .contains(&k.as_str())
        {
            return Err(key_error(
                format!("account.{k}"),
                "unknown key; [account] has balances, max_open_orders, max_gross_notional, max_inventory, daily_loss_limit",
            ));
        }
    }
    let balances = per_asset("account.balances", t.get("balances"))?;
    if balances.is_empty() {
        return Err(key_error("account.balances", "is missing: say what the account holds, e.g. { USDT = \"10000\" }"));
    }
    let max_open_orders = match t.get("max_open_orders") {
        None => None,
        Some(toml::Value::Integer(n)) if (1..=10_000).contains(n) => Some(*n as u32),
        Some(v) => {
            return Err(key_error("account.max_open_orders", format!("{v} must be a whole number from 1 to 10000")))
        }
    };
    Ok(AccountLimits {
        balances,
        max_open_orders,
        max_gross_notional: per_asset("account.max_gross_notional", t.get("max_gross_notional"))?,
        max_inventory: per_asset("account.max_inventory", t.get("max_inventory"))?,
        daily_loss_limit: per_asset("account.daily_loss_limit", t.get("daily_loss_limit"))?,
    })
}

/// `name`'s (base, quote) by its quote-asset suffix.
pub fn split_symbol(name: &str) -> Option<(String, String)> {
    QUOTE_ASSETS
        .iter()
        .filter(|q| name.len() > q.len() && name.ends_with(*q))
        .max_by_key(|q| q.len())
        .map(|q| (name[..name.len() - q.len()].to_string(), q.to_string()))
}

/// `over` merged into `base`, table by table (a value in `over` wins).
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Reads `symbols` (the `[[symbols]]` array) and `account` taken out of
/// `doc` (the rest of the file); `validate` turns one symbol's document
/// into its [`Config`].
pub fn read(
    doc: &toml::Table,
    symbols: &toml::Value,
    account_table: Option<&toml::Value>,
    validate: &dyn Fn(&toml::Table) -> Result<Config, super::ConfigError>,
) -> Result<Symbols, SymbolsError> {
    let toml::Value::Array(list) = symbols else {
        return Err(key_error(
            "symbols",
            "must be an array of tables: write each as [[symbols]] with symbol = \"...\"",
        ));
    };
    if list.is_empty() {
        return Err(key_error("symbols", "is empty: list at least one [[symbols]] entry, or use [market] symbol"));
    }
    if list.len() > crate::hot::group::MAX_GROUP {
        return Err(key_error(
            "symbols",
            format!(
                "lists {} symbols; one process serves at most {} (one hot thread's group): run more processes",
                list.len(),
                crate::hot::group::MAX_GROUP
            ),
        ));
    }
    let account = match account_table {
        None => None,
        Some(toml::Value::Table(t)) => Some(account(t)?),
        Some(_) => return Err(key_error("account", "must be a table ([account])")),
    };
    let mut entries: Vec<SymbolEntry> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let key = |k: &str| format!("symbols[{i}].{k}");
        let toml::Value::Table(entry) = item else {
            return Err(key_error(format!("symbols[{i}]"), "must be a table with symbol = \"...\""));
        };
        let name = match entry.get("symbol") {
            Some(toml::Value::String(s)) if super::valid_symbol(s) => s.to_ascii_uppercase(),
            Some(v) => {
                return Err(key_error(key("symbol"), format!("{v} is not a Binance symbol such as \"BTCUSDT\"")))
            }
            None => return Err(key_error(key("symbol"), "is missing: name the symbol, e.g. symbol = \"BTCUSDT\"")),
        };
        if let Some(j) = entries.iter().position(|e| e.budget.symbol.as_str() == name) {
            return Err(key_error(
                key("symbol"),
                format!("{name} is listed twice (entries {j} and {i}); give each symbol one entry"),
            ));
        }
        let mut own = doc.clone();
        let mut over = toml::Table::new();
        for (k, v) in entry {
            match k.as_str() {
                "symbol" | "base" | "quote" | "budget_quote" | "budget_base" | "core" => {}
                s if PER_SYMBOL.contains(&s) => {
                    over.insert(k.clone(), v.clone());
                }
                "live" => {
                    let toml::Value::Table(t) = v else {
                        return Err(key_error(key("live"), "must be a table of the symbol's live limits"));
                    };
                    if let Some(other) = t.keys().find(|k| !PER_SYMBOL_LIVE.contains(&k.as_str())) {
                        return Err(key_error(
                            key(&format!("live.{other}")),
                            format!(
                                "is the account's, set it in the top [live]; a symbol's [live] has only {}",
                                PER_SYMBOL_LIVE.join(", ")
                            ),
                        ));
                    }
                    if !doc.contains_key("live") {
                        return Err(key_error(
                            key("live"),
                            "needs a top-level [live] section (endpoints, journal, daily loss) to override",
                        ));
                    }
                    over.insert(k.clone(), v.clone());
                }
                "market" | "cores" | "feed" | "net" | "ai" | "account" | "symbols" => {
                    return Err(key_error(
                        key(k),
                        format!("[{k}] is process-wide (or set by the entry's symbol); set it at the top of the file"),
                    ))
                }
                _ => {
                    return Err(key_error(
                        key(k),
                        format!(
                            "unknown key; an entry has symbol, base, quote, budget_quote, budget_base, core, the \
                             sections {} and live ({})",
                            PER_SYMBOL.join(", "),
                            PER_SYMBOL_LIVE.join(", ")
                        ),
                    ))
                }
            }
        }
        merge(&mut own, &over);
        let mut market = toml::Table::new();
        market.insert("symbol".into(), toml::Value::String(name.clone()));
        own.insert("market".into(), toml::Value::Table(market));
        let config =
            validate(&own).map_err(|e| SymbolsError::Entry { index: i, symbol: name.clone(), error: Box::new(e) })?;
        let asset = |k: &str| -> Result<Option<String>, SymbolsError> {
            match entry.get(k) {
                None => Ok(None),
                Some(toml::Value::String(s)) if !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric()) => {
                    Ok(Some(s.to_ascii_uppercase()))
                }
                Some(v) => Err(key_error(key(k), format!("{v} is not an asset name such as \"USDT\""))),
            }
        };
        let (base, quote) = match (asset("base")?, asset("quote")?, split_symbol(&name)) {
            (Some(b), Some(q), _) => (b, q),
            (b, q, Some((sb, sq))) => (b.unwrap_or(sb), q.unwrap_or(sq)),
            _ => {
                return Err(key_error(
                    key("quote"),
                    format!("cannot tell {name}'s assets from its name: set base = \"...\" and quote = \"...\""),
                ))
            }
        };
        let quote_budget = match (entry.get("budget_quote"), &account) {
            (Some(v), _) => amount(&key("budget_quote"), v)?,
            (None, Some(_)) => {
                return Err(key_error(
                    key("budget_quote"),
                    format!("is missing: with an [account], say how much {quote} {name} may commit"),
                ))
            }
            (None, None) => i64::MAX / 4,
        };
        let base_budget = match (entry.get("budget_base"), &account) {
            (Some(v), _) => amount(&key("budget_base"), v)?,
            (None, Some(_)) => 0,
            (None, None) => i64::MAX / 4,
        };
        let core = match entry.get("core") {
            None => None,
            Some(toml::Value::Integer(c)) if (0..1024).contains(c) => Some(*c as usize),
            Some(v) => return Err(key_error(key("core"), format!("{v} must be a core number from 0 to 1023"))),
        };
        let budget = SymbolBudget { symbol: Symbol::new(name.as_bytes()), base, quote, quote_budget, base_budget };
        entries.push(SymbolEntry { budget, config, core });
    }
    let symbols = Symbols { entries, account };
    if let Some(acct) = &symbols.account {
        symbols.check_budgets(&acct.balances, "raise the balance")?;
    }
    Ok(symbols)
}

impl Symbols {
    /// Each asset's budgets, over the symbols that draw on it, against what
    /// the account holds (`balances`: the config's, or the exchange's at a
    /// live start); `fix` says what else to do than lower the budgets.
    pub fn check_budgets(&self, balances: &[(String, i64)], fix: &str) -> Result<(), SymbolsError> {
        let mut drawn: BTreeMap<&str, Vec<(&str, i64)>> = BTreeMap::new();
        for e in &self.entries {
            let b = &e.budget;
            drawn.entry(&b.quote).or_default().push((b.symbol.as_str(), b.quote_budget));
            if b.base_budget > 0 {
                drawn.entry(&b.base).or_default().push((b.symbol.as_str(), b.base_budget));
            }
        }
        for (asset, uses) in drawn {
            let total: i64 = uses.iter().map(|(_, v)| v).sum();
            let held = balances.iter().find(|(a, _)| a == asset).map_or(0, |(_, v)| *v);
            if total > held {
                let parts: Vec<String> =
                    uses.iter().map(|(s, v)| format!("{s} {}", crate::hot::fixed::Qty(*v))).collect();
                return Err(key_error(
                    format!("account.balances.{asset}"),
                    format!(
                        "the symbols' budgets of {asset} add up to {} ({}), more than the account's {}: lower \
                         budget_quote/budget_base or {fix}",
                        crate::hot::fixed::Qty(total),
                        parts.join(", "),
                        crate::hot::fixed::Qty(held)
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, "test")
    }

    fn refused(text: &str) -> String {
        load(text).expect_err("refused").to_string()
    }

    const TWO: &str = "[strategy]\ntarget_spread_pct = 0.1\n\
        [account]\nbalances = { USDT = \"3000\", BTC = \"0.5\" }\nmax_open_orders = 8\n\
        [[symbols]]\nsymbol = \"BTCUSDT\"\nbudget_quote = \"2000\"\nbudget_base = \"0.5\"\n\
        [symbols.strategy]\ntarget_spread_pct = 0.05\nlevels = 2\n\
        [[symbols]]\nsymbol = \"ethusdt\"\nbudget_quote = 1000\n";

    #[test]
    fn entries_override_the_files_sections_and_get_their_assets_and_budgets() {
        let c = load(TWO).unwrap();
        let s = c.symbols.as_ref().expect("[[symbols]]");
        let [btc, eth] = &s.entries[..] else { panic!("two entries") };
        assert_eq!((btc.budget.base.as_str(), btc.budget.quote.as_str()), ("BTC", "USDT"));
        assert_eq!((btc.budget.quote_budget, btc.budget.base_budget), (2_000 * 100_000_000, 50_000_000));
        assert_eq!((btc.config.hot.params.target_spread_pct, btc.config.strategy_levels), (0.05, 2));
        assert_eq!(btc.config.hot.symbol.map(|s| s.to_string()).as_deref(), Some("BTCUSDT"));
        assert_eq!(eth.budget.symbol.as_str(), "ETHUSDT");
        assert_eq!((eth.config.hot.params.target_spread_pct, eth.budget.base_budget), (0.1, 0), "the file's own");
        let acct = s.account.as_ref().unwrap();
        assert_eq!(acct.max_open_orders, Some(8));
        assert!(load("").unwrap().symbols.is_none());
    }

    #[test]
    fn without_an_account_symbols_trade_unbounded_by_an_allocator() {
        let c = load("[[symbols]]\nsymbol = \"BLZETH\"\n[[symbols]]\nsymbol = \"NKNUSDT\"\n").unwrap();
        let s = c.symbols.unwrap();
        assert!(s.account.is_none());
        assert_eq!(s.entries[0].budget.quote, "ETH");
    }

    /// `[symbols.live]` sets the symbol's own pre-trade limits over the
    /// top `[live]`; the rest of `[live]` stays the account's.
    #[test]
    fn an_entry_sets_its_own_live_limits() {
        let text = "[live]\nmax_position = \"0.01\"\nmax_order_notional = \"100\"\ndaily_loss_limit = \"50\"\n\
                    [[symbols]]\nsymbol = \"BTCUSDT\"\n\
                    [[symbols]]\nsymbol = \"ETHUSDT\"\n[symbols.live]\nmax_position = \"0.5\"\nmax_open_orders = 6\n";
        let c = load(text).unwrap();
        let s = c.symbols.as_ref().unwrap();
        let live = |i: usize| s.entries[i].config.live.clone().unwrap();
        assert_eq!((live(0).limits.max_position.to_string(), live(0).limits.max_open_orders), ("0.01".into(), 2));
        assert_eq!((live(1).limits.max_position.to_string(), live(1).limits.max_open_orders), ("0.5".into(), 6));
        assert_eq!(live(1).limits.max_order_notional, live(0).limits.max_order_notional);
        assert_eq!(live(1).rest_url, live(0).rest_url);
    }

    #[test]
    fn mistakes_name_their_key() {
        for (text, needle) in [
            ("[[symbols]]\nsymbol = \"BTCUSDT\"\n[[symbols]]\nsymbol = \"BTCUSDT\"\n", "symbols[1].symbol"),
            ("[[symbols]]\nsymbol = \"BTC-USDT\"\n", "symbols[0].symbol"),
            ("[[symbols]]\nbudget_quote = 5\n", "symbols[0].symbol` is invalid: is missing"),
            ("[[symbols]]\nsymbol = \"ABCXYZ\"\n", "symbols[0].quote"),
            ("[[symbols]]\nsymbol = \"BTCUSDT\"\n[symbols.cores]\nhot = 1\n", "symbols[0].cores"),
            ("[[symbols]]\nsymbol = \"BTCUSDT\"\nspread = 1\n", "symbols[0].spread"),
            ("[[symbols]]\nsymbol = \"BTCUSDT\"\ncore = -1\n", "symbols[0].core"),
            (
                "[account]\nbalances = { USDT = 100 }\n[[symbols]]\nsymbol = \"BTCUSDT\"\n",
                "symbols[0].budget_quote` is invalid: is missing",
            ),
            (
                "[account]\nbalances = { USDT = 100 }\n[[symbols]]\nsymbol = \"BTCUSDT\"\nbudget_quote = 60\n\
                 [[symbols]]\nsymbol = \"ETHUSDT\"\nbudget_quote = 50\n",
                "account.balances.USDT` is invalid: the symbols' budgets of USDT add up to 110",
            ),
            ("[account]\nbalance = 1\n[[symbols]]\nsymbol = \"BTCUSDT\"\n", "account.balance"),
            ("[account]\nbalances = { USDT = -1 }\n[[symbols]]\nsymbol = \"BTCUSDT\"\n", "account.balances.USDT"),
            (
                "[[symbols]]\nsymbol = \"BTCUSDT\"\n[symbols.strategy]\nlevels = 99\n",
                "[[symbols]] entry 0 (BTCUSDT): config key `strategy.levels`",
            ),
            (
                "[live]\nmax_position = \"1\"\nmax_order_notional = \"9\"\ndaily_loss_limit = \"9\"\n[[symbols]]\n\
                 symbol = \"BTCUSDT\"\n[symbols.live]\nbase_url = \"mainnet\"\n",
                "symbols[0].live.base_url` is invalid: is the account's",
            ),
            (
                "[[symbols]]\nsymbol = \"BTCUSDT\"\n[symbols.live]\nmax_position = \"1\"\n",
                "symbols[0].live` is invalid: needs a top-level [live]",
            ),
        ] {
            let msg = refused(text);
            assert!(msg.contains(needle), "{text:?} gave {msg:?}, expected {needle:?}");
        }
    }

    #[test]
    fn quote_assets_split_by_the_longest_suffix() {
        assert_eq!(super::split_symbol("BTCFDUSD"), Some(("BTC".into(), "FDUSD".into())));
        assert_eq!(super::split_symbol("LRCBTC"), Some(("LRC".into(), "BTC".into())));
        assert_eq!(super::split_symbol("USDT"), None);
    }
}
