//! Paired backtests: the same recording, strategy, config and seed three
//! times, changing only where advice comes from: (a) the advice log
//! replayed in simulated time, (b) the offline rules, (c) no advice. Each
//! run is the real backtest ([`crate::backtest::run_with`]), so the PnL
//! differences are the advice's and nothing else's; the AI cost is the log's
//! own `cost_usd`, so the verdict is net of what the advice cost.
//!
//! Backtests are deterministic (simulated time, no wall clock in the
//! trading), so the same inputs give the same table, byte for byte.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backtest::outputs::{Research, ResearchConfig};
use crate::backtest::{self, Report};
use crate::config::Config;
use crate::hot::strategy::NativeStrategy;
use crate::script::ScriptStrategy;
use crate::stats::clock::Clock;

use super::EvalError;

/// One of the three runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leg {
    /// "advice log", "offline rules", "no advice".
    pub name: &'static str,
    pub pnl: f64,
    pub fills: u64,
    pub volume: String,
    /// Position at the end, base units.
    pub end_position: String,
    pub max_drawdown: f64,
    pub advice_updates: u64,
    /// What the advice cost, USD (0 but for the log's leg).
    pub ai_cost_usd: f64,
    /// The estimated part of it.
    pub ai_cost_estimated_usd: f64,
    /// PnL less the AI cost (USD taken 1:1 with the quote asset: meaningful
    /// only where it counts as USD at par, which the verdict says).
    pub net: f64,
}

/// The three runs and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paired {
    pub symbol: String,
    /// The PnL's currency (the symbol's quote asset).
    pub quote: String,
    pub strategy: String,
    pub legs: Vec<Leg>,
    /// "advice added X USDT over none, cost Y USDT (net Z)".
    pub verdict: String,
    /// The same against the offline rules.
    pub verdict_offline: String,
}

/// The quote asset of a Binance symbol, by its usual suffixes ("quote" when
/// none matches).
pub fn quote_asset(symbol: &str) -> String {
    crate::ai::cost::quote_asset(symbol).unwrap_or("quote").to_string()
}

/// Rounds for display and for the verdict: 8 decimals, no "-0".
pub fn round8(x: f64) -> f64 {
    (x * 1e8).round() / 1e8 + 0.0
}

fn backtest_once(files: &[PathBuf], config: &Config) -> Result<(Report, f64), EvalError> {
    let err = |e: String| EvalError::Backtest { detail: e };
    let mut research = Research::new(ResearchConfig::from_config(config, 1000));
    // The instant clock: latency percentiles are not reported here, and the
    // trading never depends on the clock.
    let clock = Clock::instant();
    let (report, _) = match config.script.as_ref() {
        Some(path) => {
            let mut s = ScriptStrategy::from_file(path, &config.params, &config.script_limits)
                .map_err(|e| err(format!("the strategy script {}: {e}", path.display())))?;
            s.set_budget(config.script_budget, crate::script::budget::BudgetMode::CountOnly);
            s.set_levels(config.strategy_levels);
            backtest::run_with(files, config, s, clock, &mut research).map_err(|e| err(e.to_string()))?
        }
        None => {
            backtest::run_with(files, config, NativeStrategy, clock, &mut research).map_err(|e| err(e.to_string()))?
        }
    };
    let dd = research.stats(report.trading.orders, report.trading.rejected_post_only).max_drawdown;
    Ok((report, dd))
}

/// Runs the three legs. `cost` and `estimated` are the log's AI cost and its
/// estimated part, USD.
pub fn paired(files: &[PathBuf], config: &Config, log: &Path, cost: f64, estimated: f64) -> Result<Paired, EvalError> {
    let offline = super::outcome::offline_rules(config);
    let legs_cfg: [(&'static str, Option<PathBuf>, bool); 3] =
        [("advice log", Some(log.to_path_buf()), false), ("offline rules", None, true), ("no advice", None, false)];
    let mut legs = Vec::with_capacity(3);
    let mut first: Option<Report> = None;
    for (name, replay, with_offline) in legs_cfg {
        let mut c = config.clone();
        c.advice_replay = replay;
        c.ai_offline = with_offline.then_some(offline);
        let (r, dd) = backtest_once(files, &c)?;
        let pnl: f64 = r.trading.pnl.parse().unwrap_or(0.0);
        let (ai, est) = if name == "advice log" { (cost, estimated) } else { (0.0, 0.0) };
        legs.push(Leg {
            name,
            pnl: round8(pnl),
            fills: r.trading.fills,
            volume: r.trading.volume.clone(),
            end_position: r.trading.position.clone(),
            max_drawdown: round8(dd),
            advice_updates: r.trading.advice_updates,
            ai_cost_usd: round8(ai),
            ai_cost_estimated_usd: round8(est),
            net: round8(pnl - ai),
        });
        first.get_or_insert(r);
    }
    let r = first.expect("three legs ran");
    let quote = quote_asset(&r.trading.symbol);
    let (log_leg, off, none) = (&legs[0], &legs[1], &legs[2]);
    let est_note = |e: f64| if e > 0.0 { format!(", {} estimated", money(e)) } else { String::new() };
    // The AI cost is in USD: it is set against the PnL only where the quote
    // asset counts as USD at par (as the session report does).
    let at_par = crate::ai::cost::usd_at_par(&quote);
    let verdict = format!(
        "advice added {} {quote} over none, cost {} {}{} ({})",
        signed(log_leg.pnl - none.pnl),
        money(cost),
        unit(at_par, &quote),
        est_note(estimated),
        net_of(at_par, &quote, log_leg.pnl - none.pnl - cost)
    );
    let verdict_offline = format!(
        "advice added {} {quote} over the offline rules, cost {} {} ({}); the offline rules added {} {quote} over none at no cost",
        signed(log_leg.pnl - off.pnl),
        money(cost),
        unit(at_par, &quote),
        net_of(at_par, &quote, log_leg.pnl - off.pnl - cost),
        signed(off.pnl - none.pnl)
    );
    Ok(Paired {
        symbol: r.trading.symbol.clone(),
        quote,
        strategy: r.trading.strategy.clone(),
        legs,
        verdict,
        verdict_offline,
    })
}

/// The AI cost's unit in the verdict: the quote asset when it counts as USD
/// at par, else USD.
fn unit(at_par: bool, quote: &str) -> &str {
    if at_par {
        quote
    } else {
        "USD"
    }
}

/// `net X`, or why there is none (PnL and cost in different currencies).
fn net_of(at_par: bool, quote: &str, net: f64) -> String {
    if at_par {
        format!("net {}", signed(net))
    } else {
        format!("no net: the PnL is in {quote}, the cost in USD")
    }
}

/// A signed amount for the verdict, 6 decimals.
pub fn signed(x: f64) -> String {
    format!("{:+.6}", (x * 1e6).round() / 1e6 + 0.0)
}

/// An amount, 6 decimals.
pub fn money(x: f64) -> String {
    format!("{:.6}", (x * 1e6).round() / 1e6 + 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_nets_the_cost_only_against_a_usd_quote() {
        assert_eq!((unit(true, "USDT"), net_of(true, "USDT", -0.5)), ("USDT", "net -0.500000".to_string()));
        assert_eq!(unit(false, "BTC"), "USD");
        assert!(net_of(false, "BTC", -0.5).contains("no net: the PnL is in BTC"));
    }
}
