//! `mmbot sweep RECORDING... --grid name=v1,v2 [--grid ..] | --list FILE
//! [--script a.rhai ..] [--workers N] [--out DIR] [--walk-forward ..]`:
//! many backtests of the same recordings at once, one worker per core, on
//! lines decompressed once into the event cache. Writes `sweep.csv`,
//! `sweep.json` and (two-parameter grids) `heatmap_pnl.svg`; with
//! `--walk-forward`, `walk_forward.csv` and `walk_forward.json` and the
//! table printed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::research::cache::{CacheOptions, CacheOrigin, EventCache};
use crate::research::grid::{self, Axis, Point};
use crate::research::output;
use crate::research::sweep::{self, Job, Metric, Outcome};
use crate::research::walk_forward::{self, WindowSpec};
use crate::stats::clock::Clock;

#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// Recording files (`<recv_ts_ns> <json>` lines, plain or gzip), replayed in this order as one stream.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Config file every point starts from.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override for every point: `name=value` sets `[strategy.params] name`,
    /// `section.key=value` any config key (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// One grid axis: `name=v1,v2,v3` (repeatable; the points are every combination).
    #[arg(long = "grid", value_name = "NAME=V1,V2,..")]
    pub grid: Vec<String>,
    /// The points from a file instead: CSV (header of names, one row per
    /// point) or TOML (`[[point]]` tables).
    #[arg(long, conflicts_with = "grid")]
    pub list: Option<PathBuf>,
    /// A Rhai strategy script (repeatable: each point runs with each script).
    #[arg(long = "script")]
    pub scripts: Vec<PathBuf>,
    /// Worker threads, each running whole backtests (default: the cores available).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Output folder (default: mmbot-out/<UTC time>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Event cache folder (default: `<recording>.mmcache` beside writable
    /// recordings, else $XDG_CACHE_HOME/mmbot or ~/.cache/mmbot).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Decompress into memory only: read and write no cache file.
    #[arg(long)]
    pub no_cache: bool,
    /// What "best" means (ranking, walk-forward choice).
    #[arg(long, value_enum, default_value_t = Metric::Pnl)]
    pub metric: Metric,
    /// Walk-forward: choose the best point on each training window and
    /// report it on the test window after it.
    #[arg(long)]
    pub walk_forward: bool,
    /// Training window length (e.g. 1h, 15m, 90s).
    #[arg(long, requires = "walk_forward", requires = "test", conflicts_with = "windows")]
    pub train: Option<String>,
    /// Test window length (e.g. 15m).
    #[arg(long, requires = "walk_forward", requires = "train")]
    pub test: Option<String>,
    /// Instead of lengths: N test windows (the range in N+1 equal slices,
    /// each trained on the slice before it).
    #[arg(long, requires = "walk_forward")]
    pub windows: Option<usize>,
}

/// The points the arguments describe.
fn points(args: &SweepArgs) -> anyhow::Result<Vec<Point>> {
    let points = match &args.list {
        Some(path) => grid::with_scripts(grid::read_list(path)?, &args.scripts),
        None => {
            let axes = args.grid.iter().map(|g| Axis::parse(g)).collect::<Result<Vec<_>, _>>()?;
            grid::check_axes(&axes)?;
            grid::expand(&axes, &args.scripts)
        }
    };
    if points.is_empty() {
        return Err(grid::GridError::Empty.into());
    }
    Ok(points)
}

/// A progress bar on terminals; `None` elsewhere (logs stay clean).
fn progress(total: usize, what: &str) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total as u64);
        let template = format!("{{bar:40}} {{pos}}/{{len}} {what} {{elapsed_precise}} eta {{eta}}");
        bar.set_style(
            indicatif::ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    })
}

fn run_with_progress(
    jobs: &[Job],
    setups: &[sweep::PointSetup],
    files: &[PathBuf],
    workers: usize,
    what: &str,
) -> Vec<Result<Outcome, String>> {
    let bar = progress(jobs.len(), what);
    let results = sweep::run_all(jobs, setups, files, workers, Clock::calibrate(), &mut |done, _| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    results
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub fn run(args: SweepArgs) -> anyhow::Result<i32> {
    let points = points(&args)?;
    // Every point's config and script checked before any work.
    let setups = sweep::prepare(args.config.as_deref(), &args.params, &points)?;
    let workers = args.workers.unwrap_or_else(sweep::available_workers).max(1);
    let window_spec = match (&args.train, &args.test, args.windows) {
        _ if !args.walk_forward => None,
        (Some(tr), Some(te), None) => Some(WindowSpec::Durations {
            train_ns: walk_forward::parse_duration("--train", tr)?,
            test_ns: walk_forward::parse_duration("--test", te)?,
        }),
        (None, None, Some(n)) => Some(WindowSpec::Count(n)),
        _ => return Err(walk_forward::WalkError::NoSpec.into()),
    };

    let loaded = Instant::now();
    let options = CacheOptions { dir: args.cache_dir.clone(), memory_only: args.no_cache };
    let cache = EventCache::load(&args.files, &options)?;
    let load_s = loaded.elapsed().as_secs_f64();
    for r in &cache.recordings {
        let how = match &r.origin {
            CacheOrigin::Hit(p) => format!("from cache {}", p.display()),
            CacheOrigin::Built(p) => format!("decompressed; cache written to {}", p.display()),
            CacheOrigin::NotWritten(why) => format!("decompressed; no cache file: {why}"),
        };
        crate::say!("mmbot sweep: {} ({} MB of lines) {how}", r.source.display(), r.lines.len() / 1_000_000);
        if let Some(e) = &r.truncated {
            crate::say!(
                "mmbot sweep: warning: {} ends early ({e}); used up to its last complete line",
                r.source.display()
            );
        }
    }
    let files = cache.files();
    let parts = cache.parts();

    let dir = match &args.out {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => crate::cli::outputs::timestamped_dir(Path::new("mmbot-out"))?,
    };

    match window_spec {
        None => sweep_points(&args, &points, &setups, &files, parts, workers, load_s, &dir),
        Some(spec) => walk(&args, &points, &setups, &files, parts, workers, spec, &dir),
    }
}

#[allow(clippy::too_many_arguments)]
fn sweep_points(
    args: &SweepArgs,
    points: &[Point],
    setups: &[sweep::PointSetup],
    files: &[PathBuf],
    parts: Vec<crate::feed::recording::MemoryLines>,
    workers: usize,
    load_s: f64,
    dir: &Path,
) -> anyhow::Result<i32> {
    let lines = Arc::new(parts);
    let jobs: Vec<Job> =
        (0..points.len()).map(|point| Job { point, lines: lines.clone(), trade_from_ns: None }).collect();
    let started = Instant::now();
    let results = run_with_progress(&jobs, setups, files, workers, "backtests");
    let wall_s = started.elapsed().as_secs_f64();
    let per_min = points.len() as f64 / wall_s.max(1e-9) * 60.0;
    let frames = results.iter().flatten().map(|o| o.report.input.frames).next().unwrap_or(0);

    let meta = serde_json::json!({
        "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "config": args.config.as_ref().map(|c| c.display().to_string()),
        "params": args.params,
        "points": points.len(),
        "workers": workers,
        "metric": args.metric.name(),
        "cache_load_s": load_s,
        "wall_s": wall_s,
        "points_per_minute": per_min,
    });
    let mut written = vec![
        write(dir, "sweep.csv", &output::sweep_csv(points, &results))?,
        write(dir, "sweep.json", &(serde_json::to_string_pretty(&output::sweep_json(points, &results, meta))? + "\n"))?,
    ];
    let sample = format!("one backtest over {} file(s), {frames} frames", files.len());
    let mut metrics = vec![Metric::Pnl];
    if args.metric != Metric::Pnl {
        metrics.push(args.metric);
    }
    for m in metrics {
        for (name, svg) in output::heatmaps(points, &results, m, &sample).unwrap_or_default() {
            written.push(write(dir, &name, &svg)?);
        }
    }

    // The best points first.
    let mut order: Vec<usize> = (0..points.len()).filter(|&i| results[i].is_ok()).collect();
    let key = |i: usize| results[i].as_ref().map_or(f64::NEG_INFINITY, |o| o.metrics.get(args.metric));
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
    println!(
        "{:>5}  {:<40} {:>14} {:>12} {:>7} {:>7} {:>10}",
        "point", "params", "pnl", "fees", "fills", "orders", "sharpe"
    );
    for &i in order.iter().take(10) {
        let o = results[i].as_ref().expect("only successful points are ranked");
        let m = &o.metrics;
        println!(
            "{i:>5}  {:<40} {:>14} {:>12} {:>7} {:>7} {:>10.3}",
            points[i].label(),
            o.report.trading.pnl,
            o.report.trading.fees,
            m.fills,
            m.orders,
            m.sharpe
        );
    }
    let failed: Vec<usize> = (0..points.len()).filter(|&i| results[i].is_err()).collect();
    for &i in &failed {
        crate::say!(
            "mmbot sweep: point {i} ({}) failed: {}",
            points[i].label(),
            results[i].as_ref().err().map_or("", |e| e)
        );
    }
    crate::say!(
        "mmbot sweep: {} points in {wall_s:.2} s on {workers} workers ({per_min:.0} points/min; {frames} frames each); \
         recordings loaded in {load_s:.2} s; wrote {}",
        points.len(),
        written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    Ok(if failed.is_empty() { 0 } else { 1 })
}

#[allow(clippy::too_many_arguments)]
fn walk(
    args: &SweepArgs,
    points: &[Point],
    setups: &[sweep::PointSetup],
    files: &[PathBuf],
    parts: Vec<crate::feed::recording::MemoryLines>,
    workers: usize,
    spec: WindowSpec,
    dir: &Path,
) -> anyhow::Result<i32> {
    let range = walk_forward::time_range(&parts).ok_or(walk_forward::WalkError::NoLines)?;
    let windows = walk_forward::split(range.clone(), spec)?;
    // Jobs: per window, every point on the training stretch, then on the test stretch.
    let mut jobs = Vec::new();
    for w in &windows {
        let train = Arc::new(walk_forward::lines_before(&parts, w.train.end));
        let test = Arc::new(walk_forward::lines_before(&parts, w.test.end));
        for (lines, from) in [(train, w.train.start), (test, w.test.start)] {
            for point in 0..points.len() {
                jobs.push(Job { point, lines: lines.clone(), trade_from_ns: Some(from) });
            }
        }
    }
    let started = Instant::now();
    let results = run_with_progress(&jobs, setups, files, workers, "window backtests");
    let wall_s = started.elapsed().as_secs_f64();
    let n = points.len();
    let mut verdicts = Vec::new();
    for (k, w) in windows.iter().enumerate() {
        let base = k * 2 * n;
        let train: Vec<&Result<Outcome, String>> = results[base..base + n].iter().collect();
        let test: Vec<&Result<Outcome, String>> = results[base + n..base + 2 * n].iter().collect();
        match walk_forward::judge(w, &train, &test, args.metric) {
            Some(v) => verdicts.push(v),
            None => crate::say!("mmbot sweep: window {k}: no point ran successfully; left out"),
        }
    }
    print!("{}", output::walk_forward_table(points, &verdicts, args.metric, range.start));
    let per_window: Vec<serde_json::Value> = windows
        .iter()
        .enumerate()
        .map(|(k, w)| {
            let row = |r: &Result<Outcome, String>| match r {
                Ok(o) => serde_json::to_value(&o.metrics).unwrap_or_default(),
                Err(e) => serde_json::json!({ "error": e }),
            };
            serde_json::json!({
                "window": k,
                "train_ns": [w.train.start, w.train.end],
                "test_ns": [w.test.start, w.test.end],
                "train": results[k * 2 * n..k * 2 * n + n].iter().map(row).collect::<Vec<_>>(),
                "test": results[k * 2 * n + n..(k + 1) * 2 * n].iter().map(row).collect::<Vec<_>>(),
            })
        })
        .collect();
    let json = serde_json::json!({
        "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "metric": args.metric.name(),
        "points": points.iter().map(Point::label).collect::<Vec<_>>(),
        "verdicts": verdicts,
        "windows": per_window,
        "wall_s": wall_s,
    });
    let written = [
        write(dir, "walk_forward.csv", &output::walk_forward_csv(points, &verdicts, args.metric, range.start))?,
        write(dir, "walk_forward.json", &(serde_json::to_string_pretty(&json)? + "\n"))?,
    ];
    let failed = results.iter().filter(|r| r.is_err()).count();
    if failed > 0 {
        let first = results.iter().find_map(|r| r.as_ref().err()).map_or("", |e| e);
        crate::say!("mmbot sweep: {failed} of {} window backtests failed (first: {first})", results.len());
    }
    crate::say!(
        "mmbot sweep: walk-forward, {} windows x {} points x 2 = {} backtests in {wall_s:.2} s on {workers} workers; wrote {}",
        windows.len(),
        n,
        jobs.len(),
        written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    Ok(if verdicts.is_empty() { 1 } else { 0 })
}
