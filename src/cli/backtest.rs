//! `mmbot backtest FILE... [--config mmbot.toml] [--report report.json]
//! [--out DIR] [--timeline-ms N]`: replays recordings through the live hot
//! path with the paper exchange and writes a JSON report (to stdout without
//! `--report` or `--out`) plus one HdrHistogram percentile file per stage
//! next to the report. The report carries the research statistics
//! ([`crate::backtest::outputs::Stats`]), also printed to stderr; `--out`
//! adds `fills.csv`, `timeline.csv` and `equity.svg`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::backtest;
use crate::backtest::outputs::{Research, ResearchConfig, EQUITY_SVG};
use crate::cli::multi;
use crate::config::symbols::Symbols;
use crate::hot::strategy::NativeStrategy;
use crate::script::budget::BudgetMode;
use crate::script::ScriptStrategy;
use crate::stats::clock::Clock;
use crate::stats::latency::{Stage, StageHistograms};

#[derive(clap::Args, Debug)]
pub struct BacktestArgs {
    /// Recording files (`<recv_ts_ns> <json>` lines, plain or gzip), replayed in this order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Config file (strategy, risk, filters, paper exchange, book sizes).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a `[strategy.params]` entry (`name=value`) or any config
    /// key (`section.key=value`); repeatable, later ones win.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Write the report here (and `<stem>.<stage>.hgrm` beside it) instead of stdout.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write report.json (unless --report names another path), the .hgrm
    /// files, fills.csv, timeline.csv and equity.svg into this folder
    /// (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// timeline.csv gets a row at the first book event of every this many
    /// ms of simulated time, plus one at every fill.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeline_ms: u64,
    /// A Rhai strategy script (overrides `[strategy] script`).
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Replay this advice log (JSONL written by a live run's `[ai] log`) in
    /// simulated time instead of the offline advisor.
    #[arg(long)]
    pub advice_log: Option<PathBuf>,
}

/// Paths of the `.hgrm` files written next to `report`.
pub fn hgrm_path(report: &Path, stage: Stage) -> PathBuf {
    let stem = report.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "report".into());
    report.with_file_name(format!("{stem}.{}.hgrm", stage.name()))
}

fn write_histograms(report: &Path, hist: &StageHistograms) -> anyhow::Result<()> {
    for stage in Stage::ALL {
        crate::cli::outputs::write_hgrm_file(&hgrm_path(report, stage), hist.histogram(stage))?;
    }
    Ok(())
}

pub fn run(args: BacktestArgs) -> anyhow::Result<i32> {
    let mut config =
        crate::config::load_with_params(args.config.as_deref(), &args.params).context("loading the configuration")?;
    config.advice_replay = args.advice_log.clone();
    let clock = Clock::calibrate();
    if let Some(symbols) = config.symbols.take() {
        return run_multi(&args, symbols, clock);
    }
    let rcfg = ResearchConfig::from_config(&config, args.timeline_ms);
    let mut research = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the output folder {} (--out)", dir.display()))?;
            Research::with_files(rcfg, dir)?
        }
        None => Research::new(rcfg),
    };
    let (mut report, hist) = match args.script.as_ref().or(config.script.as_ref()) {
        Some(path) => {
            let mut s = ScriptStrategy::from_file(path, &config.params, &config.script_limits)?;
            // Counted, never acted on: a backtest's trades must not depend on the machine's speed.
            s.set_budget(config.script_budget, crate::script::budget::BudgetMode::CountOnly);
            s.set_levels(config.strategy_levels);
            backtest::run_with(&args.files, &config, s, clock, &mut research)?
        }
        None => backtest::run_with(&args.files, &config, NativeStrategy, clock, &mut research)?,
    };
    let stats = research.stats(report.trading.orders, report.trading.rejected_post_only);
    report.stats = Some(stats.clone());
    let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
    let report_path = args.report.clone().or_else(|| args.out.as_ref().map(|d| d.join("report.json")));
    match &report_path {
        Some(path) => {
            std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
            write_histograms(path, &hist)?;
            let t = &report.trading;
            let q = &report.perf.latency_ns["tick_to_quote"];
            crate::say!(
                "mmbot backtest: {} frames in {:.2} s; {} quotes, {} fills, position {}, pnl {}; tick_to_quote p50 {} ns p99 {} ns; report {}",
                report.input.frames,
                report.perf.wall_s,
                t.quotes,
                t.fills,
                t.position,
                t.pnl,
                q.p50,
                q.p99,
                path.display()
            );
        }
        None => println!("{json}"),
    }
    crate::say!("{}", stats.summary());
    if let Some(s) = &report.script {
        crate::say!("mmbot backtest: {}", s.summary());
    }
    if let Some(dir) = &args.out {
        // The strategy as its file name only: a long path would overflow the title.
        let strategy = crate::cli::outputs::strategy_file(&report.trading.strategy);
        let title = format!("{} {strategy}: mid and own fills, position, equity", report.trading.symbol);
        let svg = dir.join(EQUITY_SVG);
        std::fs::write(&svg, research.equity_svg(&title)).with_context(|| format!("writing {}", svg.display()))?;
        let mut written = research.close()?;
        written.push(svg);
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        crate::say!("mmbot backtest: wrote {}", names.join(", "));
    }
    if let Some(why) = crate::cli::exit::script_failed(&report.trading, config.max_script_error_share) {
        crate::say!("mmbot backtest: {why}");
        return Ok(crate::cli::exit::SCRIPT);
    }
    Ok(nothing_traded(&report).map_or(crate::cli::exit::OK, |why| {
        crate::say!("mmbot backtest: {why}");
        crate::cli::exit::NOTHING_TRADED
    }))
}

/// A `[[symbols]]` backtest: one report with a section per symbol and
/// totals per quote asset (`crate::backtest::multi`).
fn run_multi(args: &BacktestArgs, mut symbols: Symbols, clock: Clock) -> anyhow::Result<i32> {
    for e in &mut symbols.entries {
        e.config.advice_replay = args.advice_log.clone();
    }
    // Counted, never acted on: a backtest's trades must not depend on the machine's speed.
    let strategies = multi::strategies(&symbols, args.script.as_ref(), BudgetMode::CountOnly)?;
    let report = backtest::multi::run(&args.files, &symbols, strategies, clock)?;
    let report_path = args.report.clone().or_else(|| args.out.as_ref().map(|d| d.join("report.json")));
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the output folder {} (--out)", dir.display()))?;
        crate::say!(
            "mmbot backtest: multi-symbol runs write report.json only (fills.csv, timeline.csv and equity.svg are per \
             symbol: backtest one symbol for them)"
        );
    }
    multi::finish("backtest", &report, report_path.as_deref())?;
    Ok(multi::exit_status("backtest", &report, &symbols))
}

/// Why a backtest that made no quote did nothing, if it made none.
fn nothing_traded(report: &backtest::Report) -> Option<String> {
    let (t, i) = (&report.trading, &report.input);
    if t.quotes > 0 {
        return None;
    }
    let others: Vec<&str> = i.symbols.iter().map(String::as_str).filter(|s| *s != t.symbol).collect();
    Some(if !others.is_empty() && !i.symbols.contains(&t.symbol) {
        format!(
            "no quote was made: the configured symbol {} is not in the recordings (they carry {}); set [market] symbol",
            t.symbol,
            others.join(", ")
        )
    } else {
        format!(
            "no quote was made for {} ({} depth events, {} resyncs): check the strategy and [risk] limits",
            t.symbol, i.depth_events, i.resyncs
        )
    })
}
