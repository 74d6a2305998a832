//! `mmbot replay FILE... [--speed X]`: paper trading on threads, fed from
//! recordings: the hot path pinned to `[cores] hot`, the paper exchange on an
//! exec thread, rings between them, exactly as with a live feed. `--speed 1`
//! replays at recorded speed; without it, as fast as the threads go. With a
//! script, edits to the file are reloaded while it runs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use anyhow::Context;

use crate::backtest::TimelinePoint;
use crate::config::Config;
use crate::hot::engine::StageSample;
use crate::hot::strategy::NativeStrategy;
use crate::ring::ring;
use crate::runtime::{run_paper, HotStatus, PaperRun, RecordingSource, SideInputs, Source};
use crate::script::reload::{watch, ReloadEvent};
use crate::script::{print_ring, ScriptStrategy};

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Recording files, replayed in this order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Pace frames at this multiple of the recorded rate (1 = real time).
    #[arg(long)]
    pub speed: Option<f64>,
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
    let config = Config::load_or_default(args.config.as_deref()).context("loading the configuration")?;
    if let Some(s) = args.speed {
        anyhow::ensure!(s.is_finite() && s > 0.0, "--speed {s} is invalid: give a positive multiple such as 1 or 10");
    }
    let source = RecordingSource::new(args.files.clone(), args.speed);
    let stop = Arc::new(AtomicBool::new(false));
    // Status lines while a paced replay runs (a fast one is over too soon).
    let run = run_on_threads(
        Source::Recording(source),
        args.files.clone(),
        &config,
        args.script.as_ref(),
        args.speed.is_some(),
        stop,
        "replay",
    )?;
    for e in &run.source_errors {
        eprintln!("mmbot replay: cannot read {e}");
    }
    finish(&run, "replay", args.report.as_ref())?;
    Ok(if run.source_errors.is_empty() { 0 } else { 2 })
}

/// Runs the paper trader on threads from `source`, with status lines when
/// `status` (every second), the script reloaded on edits, until the source
/// ends or `stop` is set.
pub(crate) fn run_on_threads(
    source: Source,
    files: Vec<PathBuf>,
    config: &Config,
    script: Option<&PathBuf>,
    status: bool,
    stop: Arc<AtomicBool>,
    label: &'static str,
) -> anyhow::Result<PaperRun> {
    let (status_tx, mut status_rx) = ring::<HotStatus>(4);
    let finished = Arc::new(AtomicBool::new(false));
    let printer = status.then(|| {
        let finished = finished.clone();
        std::thread::spawn(move || {
            while !finished.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1000));
                if let Some(s) = status_rx.latest() {
                    let quote = s.last_quote.map_or("none".to_string(), |q| {
                        let side = |l: Option<crate::hot::msg::Level>| {
                            l.map_or("-".to_string(), |l| format!("{}@{}", l.qty, l.price))
                        };
                        format!("bid {} ask {}", side(q.bid), side(q.ask))
                    });
                    eprintln!(
                        "  {label}: {}{} frames, {} quotes ({} pulled), position {}, gaps {}, rejected {}; last quote {quote}",
                        if s.connected { "" } else { "(reconnecting) " },
                        s.frames, s.quotes, s.pulled, s.position, s.gaps, s.rejected
                    );
                }
            }
        })
    });
    // Per-second tick_to_quote percentiles, from the samples the hot thread
    // hands over (a full ring drops samples, never waits).
    let (samples_tx, mut samples_rx) = ring::<StageSample>(1 << 14);
    let timeline = {
        let finished = finished.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut points = Vec::new();
            let mut second = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("static bounds");
            let mut next = Duration::from_secs(1);
            loop {
                let done = finished.load(Ordering::Relaxed);
                while let Some(s) = samples_rx.pop() {
                    second.saturating_record(s.tick_to_quote.max(1) as u64);
                }
                let elapsed = started.elapsed();
                if elapsed >= next || done {
                    if !second.is_empty() {
                        points.push(TimelinePoint {
                            t_s: elapsed.as_secs_f64().round(),
                            count: second.len(),
                            p50_ns: second.value_at_quantile(0.5),
                            p99_ns: second.value_at_quantile(0.99),
                        });
                        second.reset();
                    }
                    next += Duration::from_secs(1);
                }
                if done {
                    break points;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let side = SideInputs { status: Some(status_tx), samples: Some(samples_tx), ..SideInputs::default() };
    let mut run = match script.or(config.script.as_ref()) {
        Some(path) => {
            // The script's print/debug lines: a ring, drained to stderr here.
            let (lines_tx, mut lines_rx) = print_ring();
            let done = finished.clone();
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    while let Some(line) = lines_rx.pop() {
                        eprintln!("script: {}", line.as_str());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
            let mut s =
                ScriptStrategy::from_file_with_output(path, &config.params, &config.script_limits, Some(lines_tx))?;
            let (_watcher, reload) =
                watch(path.clone(), s.script().hash, config.script_limits, config.params.clone(), move |ev| match ev {
                    ReloadEvent::Loaded { path, hash } => {
                        eprintln!("mmbot {label}: script {} reloaded (fnv1a {hash:016x})", path.display())
                    }
                    ReloadEvent::Refused(e) => {
                        eprintln!("mmbot {label}: script change refused, still running the last good version: {e}")
                    }
                });
            s.attach_reload(reload);
            run_paper(source, files, config, s, stop, side)
        }
        None => run_paper(source, files, config, NativeStrategy, stop, side),
    };
    finished.store(true, Ordering::Relaxed);
    if let Some(p) = printer {
        let _ = p.join();
    }
    run.report.perf.timeline = timeline.join().unwrap_or_default();
    Ok(run)
}

/// Prints the run's summary line and writes the report.
pub(crate) fn finish(run: &PaperRun, label: &str, report: Option<&PathBuf>) -> anyhow::Result<()> {
    let r = &run.report;
    let q = &r.perf.latency_ns["tick_to_quote"];
    eprintln!(
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
    if let Some(path) = report {
        std::fs::write(path, serde_json::to_string_pretty(r)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
