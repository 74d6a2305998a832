//! `mmbot demo --symbols N`: the demo with N simulated symbols (each its
//! own market in the in-process simulator) traded from one account: the
//! demo's settings for every symbol, an `[account]` holding a budget per
//! symbol, one connection for every stream, one hot thread for the group,
//! a paper exchange per symbol and the allocator on the exec thread
//! (`crate::runtime::multi`). At the end a line per symbol and per quote
//! asset, and `report.json` in the run folder (no dashboard yet: it is one
//! symbol's).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::cli::demo::DemoArgs;
use crate::cli::multi;
use crate::cli::session::View;
use crate::config::Config;
use crate::runtime::multi::{run_paper_multi, MultiSource};
use crate::script::budget::BudgetMode;

/// The simulated symbols, in order.
const NAMES: [&str; 8] = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "LTCUSDT"];

/// Each symbol's budget: the demo quotes 0.001 (60 USDT) a side and holds
/// at most 0.005 (300 USDT) either way.
const BUDGET_QUOTE: u32 = 500;
const BUDGET_BASE: &str = "0.005";

/// `[account]` and one `[[symbols]]` entry per simulated symbol, appended
/// to the demo's settings.
fn account_and_symbols(n: usize) -> String {
    let names = &NAMES[..n];
    let bases: Vec<String> = names.iter().map(|s| format!("{} = \"{BUDGET_BASE}\"", &s[..s.len() - 4])).collect();
    let mut t = format!(
        "\n[account]\nbalances = {{ USDT = \"{}\", {} }}\nmax_open_orders = {}\n\n",
        BUDGET_QUOTE as usize * n,
        bases.join(", "),
        2 * n
    );
    for s in names {
        t.push_str(&format!(
            "[[symbols]]\nsymbol = \"{s}\"\nbudget_quote = \"{BUDGET_QUOTE}\"\nbudget_base = \"{BUDGET_BASE}\"\n"
        ));
    }
    t
}

/// Runs the multi-symbol demo: `text` is the demo's settings (from
/// `origin`), `script` every symbol's strategy.
pub fn run(args: &DemoArgs, dir: &Path, text: &str, origin: &str, script: &PathBuf) -> anyhow::Result<i32> {
    let n = args.symbols as usize;
    let full = format!("{text}\n{}", account_and_symbols(n));
    let mut config = Config::from_toml(&full, origin).context("the demo's settings with [[symbols]]")?;
    let path = dir.join("demo.toml");
    std::fs::write(&path, &full).with_context(|| format!("writing {}", path.display()))?;
    let symbols = config.symbols.take().context("[[symbols]]")?;
    super::demo::demo_control(args, &mut config)?;
    let sim = super::demo::start_sim(args, NAMES[..n].iter().map(|s| s.to_string()).collect())?;
    let mut feed = config.feed.clone();
    feed.symbols = symbols.entries.iter().map(|e| e.budget.symbol).collect();
    feed.stream_url = Some(sim.ws_base());
    feed.rest_url = Some(sim.http_base());
    feed.backoff_min = Duration::from_millis(200);
    feed.backoff_max = Duration::from_secs(2);
    crate::say!(
        "mmbot demo: {n} simulated markets ({}) on {}, one account (USDT {} and {BUDGET_BASE} of each base; {BUDGET_QUOTE} \
         USDT a symbol); strategy {}; settings {} ; {} s (Ctrl-C ends early)",
        NAMES[..n].join(", "),
        sim.addr(),
        BUDGET_QUOTE as usize * n,
        script.display(),
        path.display(),
        args.duration.as_secs_f64()
    );
    let stop = crate::cli::record::ctrl_c_flag();
    crate::cli::record::stop_after(&stop, args.duration);
    let view = View::auto(args.no_dashboard);
    let _logs = crate::logging::init(view != View::Dashboard, Some(&dir.join("mmbot.log")));
    let strategies = multi::strategies(&symbols, Some(script), BudgetMode::for_build())?;
    let title = format!("mmbot demo --symbols {n}");
    let run = multi::watched("demo", &title, "SIMULATOR · paper orders", view, &stop, &config.control, |status| {
        let source = MultiSource::Live(Box::new(feed.clone()));
        run_paper_multi(source, Vec::new(), &symbols, strategies, config.hot_core, stop.clone(), status)
    })?;
    for e in &run.source_errors {
        crate::say!("mmbot demo: {e}");
    }
    let report = dir.join("report.json");
    multi::finish("demo", &run.report, Some(&report))?;
    crate::say!("mmbot demo: market: {}", sim.describe());
    if !run.source_errors.is_empty() {
        return Ok(crate::cli::exit::FEED);
    }
    Ok(multi::exit_status("demo", &run.report, &symbols))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_account_holds_every_budget_and_validates() {
        let c =
            Config::from_toml(&format!("{}\n{}", super::super::demo::DEMO_CONFIG_TEXT, account_and_symbols(8)), "t")
                .unwrap();
        let s = c.symbols.unwrap();
        assert_eq!(s.entries.len(), 8);
        assert_eq!(s.entries[2].budget.base, "BNB");
        assert_eq!(s.account.unwrap().max_open_orders, Some(16));
    }
}
