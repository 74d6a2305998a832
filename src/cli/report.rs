//! `mmbot report FILE.json [--svg DIR]`: re-renders a saved report (from
//! `mmbot demo`, `run`, `paper`, `replay` or `backtest`) as a table in the
//! terminal and, with `--svg`, as the latency plots.

use std::path::PathBuf;

use anyhow::Context;

use crate::backtest::Report;
use crate::cli::outputs::write_plots;
use crate::stats::plot::fmt_ns;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A report JSON file.
    pub file: PathBuf,
    /// Also write latency.svg (and timeline.svg) into this folder.
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let report: Report = serde_json::from_str(&text).with_context(|| {
        format!("{} is not an mmbot report (written by demo, run, paper, replay or backtest)", args.file.display())
    })?;
    print!("{}", render(&report));
    if let Some(dir) = &args.svg {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for p in write_plots(dir, &report)? {
            eprintln!("mmbot report: wrote {}", p.display());
        }
    }
    Ok(0)
}

/// The report as a terminal table.
pub fn render(r: &Report) -> String {
    let t = &r.trading;
    let i = &r.input;
    // A script's path can be long; its file name (and hash) says enough here.
    let strategy = t.strategy.rsplit('/').next().unwrap_or_default();
    let mut out = format!(
        "{} ({}), advice {}: {} quotes ({} pulled), {} orders, {} fills, volume {}, position {}, pnl {}, fees {}\n\
         input: {} frames, {} depth events, {} trades, {} rejected, {} gaps, {} resyncs; {:.2} s, {:.0} events/s\n\n",
        t.symbol,
        strategy,
        t.advice,
        t.quotes,
        t.pulled,
        t.orders,
        t.fills,
        t.volume,
        t.position,
        t.pnl,
        t.fees,
        i.frames,
        i.depth_events,
        i.trades,
        i.rejected,
        i.gaps,
        i.resyncs,
        r.perf.wall_s,
        r.perf.events_per_s
    );
    out.push_str(&format!(
        "{:<14} {:>9} {:>12} {:>12} {:>12} {:>12} {:>12}\n",
        "stage", "count", "p50", "p90", "p99", "p99.9", "max"
    ));
    for (name, p) in &r.perf.latency_ns {
        if p.count == 0 {
            continue;
        }
        out.push_str(&format!(
            "{:<14} {:>9} {:>12} {:>12} {:>12} {:>12} {:>12}\n",
            name,
            p.count,
            fmt_ns(p.p50 as f64),
            fmt_ns(p.p90 as f64),
            fmt_ns(p.p99 as f64),
            fmt_ns(p.p999 as f64),
            fmt_ns(p.max as f64)
        ));
    }
    out
}
