//! `mmbot script check FILE [--sample RECORDING]`: compiles a strategy
//! script, runs it through the hot path over a sample (built-in synthetic
//! 10+10-level diffs, or a recording), and prints whether it runs on the
//! compiled fast path (or why it stays interpreted), the ranges of what it
//! quoted and its cost per call. Exits 1, with one line saying why, on a
//! compile error, any runtime error during the sample, outputs of the
//! wrong shape on more than `[script] max_error_share` of the calls, or a
//! script that never quoted a side over the sample. `--position QTY` runs
//! the sample at that position (e.g. the inventory limit, to see the skew).

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::exit;
use crate::config::Config;
use crate::feed::synthetic;
use crate::hot::engine::{ExecState, HotEvent, HotPath};
use crate::hot::fixed::Qty;
use crate::script::{ScriptStats, ScriptStrategy};
use crate::stats::clock::Clock;
use crate::stats::latency::Stage;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The .rhai file.
    pub file: PathBuf,
    /// A recording to run it over (default: 5,000 built-in synthetic diffs).
    #[arg(long)]
    pub sample: Option<PathBuf>,
    /// Config file (strategy settings, [strategy.params], [script] caps).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The position (base units, may be negative) the sample runs at: the script sees it as m.position.
    #[arg(long, value_name = "QTY", allow_hyphen_values = true, value_parser = parse_position)]
    pub position: Option<Qty>,
}

/// `0.5`, `-0.25`: a signed decimal quantity with at most 8 decimals.
fn parse_position(s: &str) -> Result<Qty, String> {
    let (neg, digits) = s.strip_prefix('-').map_or((false, s), |d| (true, d));
    let q: Qty = digits.parse().map_err(|e| format!("{e}; write a decimal such as 0.5 or -0.25"))?;
    Ok(if neg { Qty(-q.0) } else { q })
}

/// Running min/max of one output.
#[derive(Default)]
struct Range(Option<(f64, f64)>);

impl Range {
    fn add(&mut self, v: f64) {
        self.0 = Some(match self.0 {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        });
    }
    fn show(&self) -> String {
        self.0.map_or("never".into(), |(lo, hi)| format!("{lo:.4} .. {hi:.4}"))
    }
}

pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let config = Config::load_or_default(args.config.as_deref()).context("loading the configuration")?;
    let mut strategy = match ScriptStrategy::from_file(&args.file, &config.params, &config.script_limits) {
        Ok(s) => s,
        Err(e) => {
            crate::say!("{e}");
            return Ok(exit::ERROR);
        }
    };
    strategy.set_budget(config.script_budget, crate::script::budget::BudgetMode::CountOnly);
    strategy.set_levels(config.strategy_levels);
    let path = match strategy.script().not_compiled() {
        None => "compiled to the fast path".to_string(),
        Some(why) => format!("interpreted (not compiled: {why})"),
    };
    let frames = match &args.sample {
        Some(path) => crate::cli::bench::load_frames(&Some(path.clone()), 0)?.1,
        None => synthetic::spot_frames(5_000, 7),
    };
    let clock = Clock::calibrate();
    let mut hot = HotPath::new(config.hot, strategy, clock);
    if let Some(position) = args.position {
        hot.set_exec_state(ExecState { position, ..ExecState::default() });
    }
    let (mut bid_bps, mut ask_bps, mut bid_size, mut ask_size) =
        (Range::default(), Range::default(), Range::default(), Range::default());
    let (mut quotes, mut pulled, mut quoted) = (0u64, 0u64, 0u64);
    for (ts, f) in &frames {
        let t_in = clock.now();
        hot.on_frame(f, *ts, t_in, &mut |ev| {
            if let HotEvent::Quote { quote, best_bid, best_ask, .. } = ev {
                quotes += 1;
                pulled += quote.is_pulled() as u64;
                quoted += (quote.bid.is_some() || quote.ask.is_some()) as u64;
                let (Some(bb), Some(ba)) = (best_bid, best_ask) else { return };
                let mid = (bb.price.to_f64() + ba.price.to_f64()) / 2.0;
                if let Some(b) = quote.bid {
                    bid_bps.add((mid - b.price.to_f64()) / mid * 1e4);
                    bid_size.add(b.qty.to_f64());
                }
                if let Some(a) = quote.ask {
                    ask_bps.add((a.price.to_f64() - mid) / mid * 1e4);
                    ask_size.add(a.qty.to_f64());
                }
            }
        });
    }
    let cost = hot.histograms().percentiles(Stage::Strategy);
    let stats: ScriptStats = hot_strategy_stats(&hot);
    let guard = hot.guard_stats();
    println!(
        "{}: {path}; ran over {} frames ({}){}",
        args.file.display(),
        frames.len(),
        args.sample.as_ref().map_or("built-in synthetic sample".into(), |p| p.display().to_string()),
        args.position.map_or(String::new(), |p| format!(" at position {p}"))
    );
    println!(
        "  calls {}, runtime errors {}, outputs of the wrong shape {}",
        stats.calls, stats.errors, stats.bad_outputs
    );
    println!(
        "  quotes {quotes}, pulled {pulled} (guard: {} invalid outputs, {} crossed intents, {} spreads clamped, {} \
         post-only moves)",
        guard.pulled_invalid_output, guard.pulled_crossed_intent, guard.spread_clamped, guard.post_only_moved
    );
    println!("  bid distance from mid (bps) {}, size {}", bid_bps.show(), bid_size.show());
    println!("  ask distance from mid (bps) {}, size {}", ask_bps.show(), ask_size.show());
    println!("  cost per call: p50 {} ns, p99 {} ns (strategy stage, {} calls)", cost.p50, cost.p99, cost.count);
    println!(
        "  calls over the time budget ([script] max_call_us = {} us): {}",
        config.script_budget.max_call_ns as f64 / 1e3,
        stats.over_budget
    );
    if let Some(e) = hot_last_error(&hot) {
        crate::say!("{e}");
        return Ok(exit::ERROR);
    }
    if let Some(why) = verdict(&args, &stats, quoted, config.max_script_error_share) {
        crate::say!("mmbot script check: {why}");
        return Ok(exit::ERROR);
    }
    Ok(exit::OK)
}

/// Why the sample says the script is not fit to run (`None`: it is):
/// outputs of the wrong shape on more than `max_share` of the calls, or no
/// side quoted over the whole sample.
fn verdict(args: &CheckArgs, stats: &ScriptStats, quoted: u64, max_share: f64) -> Option<String> {
    let file = args.file.display();
    if stats.calls > 0 && stats.bad_outputs as f64 > max_share * stats.calls as f64 {
        return Some(format!(
            "{file}: {} of its {} outputs had the wrong shape (more than [script] max_error_share = {max_share}); \
             quote(m) must return a map with bid/ask (or bid_spread/ask_spread), \"pull\" or () \
             (scripts/README.md)",
            stats.bad_outputs, stats.calls
        ));
    }
    if stats.calls > 0 && quoted == 0 {
        let at = args.position.map_or(String::new(), |p| format!(" at position {p}"));
        return Some(format!(
            "{file}: never quoted: all {} decisions over the sample{at} were pulled or quoted no side; a run with it \
             would never trade (check its conditions and the guard counts above)",
            stats.calls
        ));
    }
    None
}

fn hot_strategy_stats(hot: &HotPath<ScriptStrategy>) -> ScriptStats {
    hot.strategy().stats()
}

fn hot_last_error(hot: &HotPath<ScriptStrategy>) -> Option<String> {
    hot.strategy().last_error().map(|e| e.to_string())
}
