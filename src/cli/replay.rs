//! `mmbot replay FILE... [--speed X] [--seconds N]`: paper trading on threads, fed from
//! recordings: the hot path pinned to `[cores] hot`, the paper exchange on an
//! exec thread, rings between them, exactly as with a live feed. `--speed 1`
//! replays at recorded speed; without it, as fast as the threads go.
//! `--seconds N` replays only the first N seconds of recorded time (a paced
//! latency measurement on a long capture stays short). With `[feed] poll =
//! "busy"` a paced replay spins between frames and warms the hot thread's
//! caches every `[feed] warm_every_us`, as a busy live feed does
//! (docs/tuning.md). With a script, edits to the file are reloaded while it
//! runs.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;

use crate::cli::multi;
use crate::cli::session::{run_session, View};
use crate::config::Config;
use crate::runtime::multi::{run_paper_multi, MultiSource};
use crate::runtime::{PaperRun, RecordingSource, Source, Venue};
use crate::script::budget::BudgetMode;

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Recording files, replayed in this order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Pace frames at this multiple of the recorded rate (1 = real time).
    #[arg(long)]
    pub speed: Option<f64>,
    /// Replay only the first N seconds of recorded time.
    #[arg(long, value_name = "N")]
    pub seconds: Option<f64>,
    /// Config file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Write the report JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// A Rhai strategy script (overrides `[strategy] script`), reloaded when the file changes.
    #[arg(long)]
    pub script: Option<PathBuf>,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<i32> {
    // Every file must open before any thread starts.
    for f in &args.files {
        crate::feed::recording::open(f).with_context(|| format!("cannot replay {}", f.display()))?;
    }
    let mut config = Config::load_or_default(args.config.as_deref()).context("loading the configuration")?;
    if let Some(s) = args.speed {
        anyhow::ensure!(s.is_finite() && s > 0.0, "--speed {s} is invalid: give a positive multiple such as 1 or 10");
    }
    if let Some(s) = args.seconds {
        anyhow::ensure!(
            s.is_finite() && s > 0.0,
            "--seconds {s} is invalid: give the recorded seconds to replay, such as 20"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(symbols) = config.symbols.take() {
        // Several symbols on one hot thread (src/runtime/multi.rs).
        let strategies = multi::strategies(&symbols, args.script.as_ref(), BudgetMode::for_build())?;
        let files = MultiSource::Recording { files: args.files.clone(), speed: args.speed, seconds: args.seconds };
        // Status lines while a paced replay runs (a fast one is over too soon).
        let view = if args.speed.is_some() { View::Lines } else { View::Quiet };
        let title = format!("mmbot replay ({} symbols)", symbols.entries.len());
        let mode = "REPLAY of a recording · paper orders";
        let run = multi::watched("replay", &title, mode, view, &stop, &config.control, |status| {
            run_paper_multi(files, args.files.clone(), &symbols, strategies, config.hot_core, stop.clone(), status)
        })?;
        for e in &run.source_errors {
            crate::say!("mmbot replay: cannot read {e}");
        }
        crate::say!(
            "mmbot replay: {} symbols on threads ({} hot: {}); rings: {} market updates dropped, {} quotes superseded",
            symbols.entries.len(),
            run.pinned_cores.len(),
            run.pinned_cores
                .iter()
                .map(|c| c.map_or("unpinned".to_string(), |c| format!("core {c}")))
                .collect::<Vec<_>>()
                .join(", "),
            run.rings.market_dropped,
            run.rings.quotes_superseded
        );
        multi::finish("replay", &run.report, args.report.as_deref())?;
        if !run.source_errors.is_empty() {
            return Ok(crate::cli::exit::ERROR);
        }
        return Ok(multi::exit_status("replay", &run.report, &symbols));
    }
    let source = RecordingSource::new(args.files.clone(), args.speed).limited_to(args.seconds);
    // Status lines while a paced replay runs (a fast one is over too soon).
    let view = if args.speed.is_some() { View::Lines } else { View::Quiet };
    let run = run_session(
        Source::Recording(source),
        args.files.clone(),
        &config,
        args.script.as_ref(),
        view,
        stop,
        "replay",
        "mmbot replay".into(),
        Venue::Paper,
    )?;
    for e in &run.source_errors {
        crate::say!("mmbot replay: cannot read {e}");
    }
    finish(&run, "replay", args.report.as_ref())?;
    if !run.source_errors.is_empty() {
        return Ok(crate::cli::exit::ERROR);
    }
    Ok(match crate::cli::exit::script_failed(&run.report.trading, config.max_script_error_share) {
        Some(why) => {
            crate::say!("mmbot replay: {why}");
            crate::cli::exit::SCRIPT
        }
        None => crate::cli::exit::OK,
    })
}

/// Prints the run's summary line and writes the report.
pub(crate) fn finish(run: &PaperRun, label: &str, report: Option<&PathBuf>) -> anyhow::Result<()> {
    let r = &run.report;
    let q = &r.perf.latency_ns["tick_to_quote"];
    crate::say!(
        "mmbot {label}: {} frames in {:.2} s on threads (hot {}); {} quotes, {} orders, {} fills, position {}, pnl {}; \
         tick_to_quote p50 {} ns p99 {} ns p99.9 {} ns; rings: {} market updates dropped, {} quotes superseded",
        r.input.frames,
        r.perf.wall_s,
        run.pinned_core.map_or("unpinned".to_string(), |c| format!("pinned to core {c}")),
        r.trading.quotes,
        r.trading.orders,
        r.trading.fills,
        r.trading.position,
        r.trading.pnl,
        q.p50,
        q.p99,
        q.p999,
        run.rings.market_dropped,
        run.rings.quotes_superseded,
    );
    if let Some(ai) = crate::cli::dashboard::advisor::summary_line(r) {
        crate::say!("mmbot {label}: {ai}");
    }
    // Every run's summary says how the feed went (replays have no live feed:
    // their gaps and resyncs are the book's).
    match &run.feed {
        Some(f) => {
            let drops: u64 = f.disconnects.values().sum();
            crate::say!(
                "mmbot {label}: feed: {} connections, {drops} disconnects, {} gaps, {} resyncs, unsynced {:.1} s in all \
                 (longest {:.1} s), {} malformed ids, bookTicker {} checked / {} mismatched",
                f.connections,
                f.gaps,
                f.resyncs,
                f.unsynced_ms_total / 1e3,
                f.unsynced_ms_longest / 1e3,
                f.malformed_ids,
                f.book_ticker_checked,
                f.book_ticker_mismatched
            );
        }
        None => crate::say!(
            "mmbot {label}: feed: recordings, {} gaps, {} resyncs, {} frames rejected",
            r.input.gaps,
            r.input.resyncs,
            r.input.rejected
        ),
    }
    if let Some(s) = &r.script {
        crate::say!("mmbot {label}: {}", s.summary());
    }
    if let Some(p) = &run.paced {
        // A shared machine preempts the hot thread: frames that fell due
        // while it was off its core meet another process's caches.
        let (n, p50, p90, p99) = crate::runtime::PacedLatency::summary(&p.on_time);
        let (ln, l50, l90, l99) = crate::runtime::PacedLatency::summary(&p.late);
        crate::say!(
            "mmbot {label}: paced: {n} quotes from frames that found the hot thread waiting: tick_to_quote p50 {p50} ns \
             p90 {p90} ns p99 {p99} ns; {ln} from frames already due (hot thread busy, asleep or off its core): p50 {l50} ns \
             p90 {l90} ns p99 {l99} ns"
        );
        // Paced figures are the machine's as much as mmbot's.
        if let Some(host) = &r.perf.clock.host {
            crate::say!("mmbot {label}: host: {}", host.line());
        }
    }
    if run.warms > 0 {
        crate::say!("mmbot {label}: the idle hot thread warmed its caches {} times ([feed] warm_every_us)", run.warms);
    }
    if let Some(path) = report {
        std::fs::write(path, crate::cli::outputs::report_json(r, run.feed.as_ref())? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
