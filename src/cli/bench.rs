//! `mmbot bench [FILE...] [--json]`: the hot path's per-stage latency on
//! recordings (several files are one stream, in the order given, as in
//! `mmbot book`) or, without any, on built-in synthetic frames: 10+10-level
//! spot diffs (`--profile synthetic`, the default) or a stream shaped like a
//! real spot BTCUSDT capture (`--profile busy`: big diffs spread far from the
//! touch, with bookTickers and trades between them; see
//! [`crate::feed::synthetic_busy`]), next to a baseline measured in the same run on the same frames: the usual
//! serde_json typed parse into strings converted with `f64`.
//!
//! Frames are loaded into memory first (decompression is not what is being
//! measured); the thread is pinned to `[cores] hot` when configured; the
//! first frames warm caches and branch predictors and are not counted.
//!
//! `--script A.rhai B.rhai ...` (or `--script scripts/*.rhai`) runs the same
//! frames once per script and path (compiled fast path when the script
//! compiles, and the interpreter), and prints the per-decision cost of each:
//! the `strategy` stage, which is building the script's view of the market
//! plus the call, median and p99.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::config::Config;
use crate::feed::recording::{lines, split_line, LineChunks, Piece};
use crate::feed::{synthetic, synthetic_busy};
use crate::hot::engine::{HotPath, HotStats};
use crate::hot::parse::{classify_stream, split_combined, StreamKind};
use crate::hot::strategy::{NativeStrategy, Strategy};
use crate::script::ScriptStrategy;
use crate::stats::baseline;
use crate::stats::clock::Clock;
use crate::stats::host::Host;
use crate::stats::latency::{Percentiles, Stage, StageHistograms};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Recordings to replay, in this order as one stream (default: built-in
    /// synthetic 10+10-level spot diffs).
    pub files: Vec<PathBuf>,
    /// Synthetic depth diffs to generate when no file is given (the busy
    /// profile adds ~14 bookTicker and trade frames per diff).
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Which synthetic stream when no file is given: `synthetic` (10+10-level
    /// spot diffs) or `busy` (shaped like a real spot BTCUSDT capture).
    #[arg(long, value_enum, default_value_t = Profile::Synthetic)]
    pub profile: Profile,
    /// Config file (cores, strategy, book sizes).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also run the same frames with these Rhai scripts as the strategy, one
    /// after the other, each on the compiled fast path (when it compiles) and
    /// in the interpreter (repeatable, or several after one flag: put
    /// recordings before it).
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    pub script: Vec<PathBuf>,
    /// Run the scripts in the Rhai interpreter only.
    #[arg(long, requires = "script")]
    pub interpreted: bool,
    /// Serve this many symbols from one hot thread (`--events` diffs in all,
    /// interleaved), against one symbol on as many frames in the same run
    /// (the built-in profiles only; see src/cli/bench_group.rs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=128))]
    pub symbols: u16,
}

/// The built-in stream `mmbot bench` runs when no recording is given.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// 10+10-level spot diffs only, the size of a quiet BTCUSDT diff.
    #[default]
    Synthetic,
    /// Diff sizes, level distances and bookTicker/trade mix of a real spot
    /// BTCUSDT capture.
    Busy,
}

#[derive(Serialize)]
struct BenchOut {
    input: String,
    /// `synthetic`, `busy`, or `recording` when files were given.
    profile: String,
    /// What the input's frames are: per kind (depth, bookTicker, trade,
    /// other: snapshots, control frames).
    frame_counts: BTreeMap<String, usize>,
    frames: usize,
    warmup_frames: usize,
    pinned_core: Option<usize>,
    /// The machine: figures compare only between runs on the same one.
    host: Host,
    clock: String,
    tsc_cost_ns: Option<f64>,
    instant_cost_ns: Option<f64>,
    latency_ns: BTreeMap<String, Percentiles>,
    /// The parse stage of quoted depth frames alone.
    depth_parse_ns: Percentiles,
    /// Per level of a diff, in the real pipeline: `parse` (reading the
    /// whole diff) and `apply` (applying it to the book).
    per_level_ns: BTreeMap<String, PerLevel>,
    /// Touch-first apply (off when `[book] touch_first = false`).
    touch_first: TouchOut,
    /// Same frames, same clock, same run: `serde_json_f64_parse` (the usual
    /// typed serde parse with f64 conversion), `whole_diff_tick_to_quote`
    /// (the hot path with touch-first off: every diff applied whole before
    /// its quote) and its per-level costs.
    baselines: BTreeMap<String, Percentiles>,
    baseline_per_level_ns: BTreeMap<String, PerLevel>,
    /// The same frames with the first script strategy instead of the
    /// native one (kept for readers of the one-script form).
    script: Option<ScriptOut>,
    /// Every script run: each script on each path.
    scripts: Vec<ScriptOut>,
}

#[derive(Serialize, Clone)]
struct ScriptOut {
    path: String,
    /// The strategy's name: path, content hash, and `compiled` (the fast
    /// path) or `interpreted`.
    strategy: String,
    /// Whether this run used the compiled fast path.
    compiled: bool,
    /// Why the script does not compile to the fast path, if it does not.
    not_compiled_reason: Option<String>,
    latency_ns: BTreeMap<String, Percentiles>,
}

/// What one pass of the hot path over the frames measured.
struct HotRun {
    hist: StageHistograms,
    /// Per level of each diff, in picoseconds (ns * 1000 / levels): reading
    /// the whole diff, then applying it. Touch-first: the rest of the diff,
    /// after the quote; whole-diff path: the parse and book stages.
    parse_ps: hdrhistogram::Histogram<u64>,
    apply_ps: hdrhistogram::Histogram<u64>,
    /// The parse stage of depth frames alone (the stage table's `parse`
    /// row counts every frame parsed, trades included).
    depth_parse: hdrhistogram::Histogram<u64>,
    stats: HotStats,
}

/// Runs the hot path over `frames`; histograms without the warm-up.
/// `touch_first`: as configured (`None`), or forced on or off.
fn run_hot<S: Strategy>(
    config: &Config,
    strategy: S,
    frames: &Frames,
    clock: Clock,
    warmup: usize,
    touch_first: Option<bool>,
) -> HotRun {
    let mut cfg = config.hot;
    cfg.touch_first = touch_first.unwrap_or(cfg.touch_first);
    let mut hot = HotPath::new(cfg, strategy, clock);
    let mk = || hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).expect("static bounds");
    let (mut parse_ps, mut apply_ps, mut depth_parse) = (mk(), mk(), mk());
    let mut quotes = 0u64;
    // The receive buffer: live, a frame's bytes are in cache when its clock
    // starts (the WebSocket reader has just decrypted and deframed them
    // into its buffer); copying each frame here first does the same, so the
    // clock does not time fetching the frame from memory the bench loaded
    // it into minutes ago.
    let mut buf: Vec<u8> = Vec::with_capacity(frames.iter().map(|(_, f)| f.len()).max().unwrap_or(0));
    for (i, (ts, frame)) in frames.iter().enumerate() {
        buf.clear();
        buf.extend_from_slice(frame);
        let f = &buf;
        if i == warmup {
            hot.reset_histograms();
            parse_ps.reset();
            apply_ps.reset();
            depth_parse.reset();
        }
        let t_in = clock.now();
        hot.on_frame(f, *ts, t_in, &mut |ev| {
            if let crate::hot::engine::HotEvent::Quote { quote, .. } = ev {
                // Stands in for the hand-off to the exec ring.
                quotes += quote.bid.is_some() as u64;
            }
        });
        let sample = hot.take_sample();
        if let Some(s) = sample {
            depth_parse.saturating_record(s.parse.max(1));
        }
        if let Some(s) = sample.filter(|s| s.levels > 0) {
            let (parse, apply) = if s.rest_parse > 0 { (s.rest_parse, s.rest_apply) } else { (s.parse, s.book) };
            let per = |ns: u64| (ns * 1000 / u64::from(s.levels)).max(1);
            parse_ps.saturating_record(per(parse));
            apply_ps.saturating_record(per(apply));
        }
    }
    std::hint::black_box(quotes);
    HotRun { hist: hot.histograms().clone(), parse_ps, apply_ps, depth_parse, stats: hot.stats() }
}

/// Median and p99 per level, ns, of a picosecond histogram.
fn per_level(h: &hdrhistogram::Histogram<u64>) -> PerLevel {
    let at = |q: f64| if h.is_empty() { 0.0 } else { (h.value_at_quantile(q) as f64 / 100.0).round() / 10.0 };
    PerLevel { diffs: h.len(), p50: at(0.5), p90: at(0.9), p99: at(0.99) }
}

/// Cost per level of a diff, ns (one decimal).
#[derive(Serialize, Clone, Copy, Default)]
struct PerLevel {
    diffs: u64,
    p50: f64,
    p90: f64,
    p99: f64,
}

/// Touch-first apply's counters over the run (see [`HotStats`]).
#[derive(Serialize, Clone, Copy, Default)]
struct TouchOut {
    diffs: u64,
    levels_before_quote: u64,
    levels: u64,
    declined: u64,
    requotes: u64,
}

/// Frames with their receive times, loaded up front.
pub type Frames = Vec<(i64, Vec<u8>)>;

/// Frames of a recording (or `events` synthetic diffs), loaded into memory.
pub fn load_frames(file: &Option<PathBuf>, events: usize) -> anyhow::Result<(String, Frames)> {
    load_frames_from(file.as_slice(), events)
}

/// Frames of recordings read as one stream in the order given (or, with no
/// files, `events` synthetic diffs), loaded into memory.
pub fn load_frames_from(files: &[PathBuf], events: usize) -> anyhow::Result<(String, Frames)> {
    load_profile_frames(files, events, Profile::Synthetic)
}

/// As [`load_frames_from`], with no files generating `events` diffs of the
/// given profile (the busy one with its bookTickers and trades).
pub fn load_profile_frames(files: &[PathBuf], events: usize, profile: Profile) -> anyhow::Result<(String, Frames)> {
    match files {
        [] if profile == Profile::Busy => {
            let stream = synthetic_busy::busy_frames(events, 42);
            Ok((format!("busy: {events} BTCUSDT-shaped spot diffs ({})", synthetic_busy::shape_line()), stream.frames))
        }
        [] => {
            let frames = synthetic::spot_frames(events, 42);
            Ok((format!("synthetic: {events} spot diffs, 10+10 levels, 8 decimals"), frames))
        }
        paths => {
            let mut frames = Vec::new();
            let mut chunks = LineChunks::start(paths.to_vec());
            while let Some(piece) = chunks.next_piece() {
                match piece {
                    Piece::Lines(buf) => {
                        for raw in lines(&buf) {
                            if let Some((ts, json)) = split_line(raw) {
                                frames.push((ts as i64, json.to_vec()));
                            }
                        }
                        chunks.recycle(buf);
                    }
                    Piece::FileError { path, error } => anyhow::bail!("cannot read {}: {error}", path.display()),
                    Piece::Truncated { path, error } => crate::say!(
                        "mmbot bench: warning: {} ends early ({error}); used up to its last complete line",
                        path.display()
                    ),
                }
            }
            Ok((paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" + "), frames))
        }
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<i32> {
    let config = Config::load_or_default(args.config.as_deref()).context("loading the configuration")?;
    config.one_symbol("mmbot bench")?;
    if args.symbols > 1 {
        anyhow::ensure!(
            args.files.is_empty() && args.script.is_empty(),
            "--symbols runs the built-in profiles with the native strategy: drop the recordings and --script"
        );
        let pinned = crate::runtime::pin(config.hot_core);
        return super::bench_group::run(&config, args.profile, args.events, args.symbols as usize, args.json, pinned);
    }
    let (input, frames) = load_profile_frames(&args.files, args.events, args.profile)?;
    anyhow::ensure!(!frames.is_empty(), "no frames to replay in {input}");
    let pinned = crate::runtime::pin(config.hot_core);
    let clock = Clock::calibrate();
    let warmup = (frames.len() / 20).min(5_000);
    let run = run_hot(&config, NativeStrategy, &frames, clock, warmup, None);
    let whole = run_hot(&config, NativeStrategy, &frames, clock, warmup, Some(false));
    let native = &run.hist;
    let scripts = run_scripts(&args, &config, &frames, clock, warmup)?;

    // Baseline on the same depth frames, same clock, same run.
    let mut base = StageHistograms::new();
    for (i, (_, f)) in frames.iter().enumerate().filter(|(_, (_, f))| f.windows(13).any(|w| w == b"\"depthUpdate\"")) {
        let t0 = clock.now();
        let parsed = baseline::parse_combined(f);
        let t1 = clock.now();
        std::hint::black_box(parsed);
        if i >= warmup {
            base.record(Stage::Parse, clock.ns(t0, t1));
        }
    }

    let out = BenchOut {
        input,
        profile: match (args.files.is_empty(), args.profile) {
            (false, _) => "recording".into(),
            (true, Profile::Synthetic) => "synthetic".into(),
            (true, Profile::Busy) => "busy".into(),
        },
        frame_counts: frame_counts(&frames),
        frames: frames.len(),
        warmup_frames: warmup,
        pinned_core: pinned,
        host: Host::read(clock.tsc_ghz()),
        clock: format!("{:?}", clock.source()).to_lowercase(),
        tsc_cost_ns: clock.tsc_cost_ns.is_finite().then_some((clock.tsc_cost_ns * 10.0).round() / 10.0),
        instant_cost_ns: clock.instant_cost_ns.is_finite().then_some((clock.instant_cost_ns * 10.0).round() / 10.0),
        latency_ns: Stage::ALL.iter().map(|&s| (s.name().to_string(), native.percentiles(s))).collect(),
        depth_parse_ns: Percentiles::of(&run.depth_parse),
        per_level_ns: [
            ("parse".to_string(), per_level(&run.parse_ps)),
            ("apply".to_string(), per_level(&run.apply_ps)),
        ]
        .into_iter()
        .collect(),
        touch_first: TouchOut {
            diffs: run.stats.touch_first,
            levels_before_quote: run.stats.touch_levels_before,
            levels: run.stats.touch_levels_total,
            declined: run.stats.touch_declined,
            requotes: run.stats.touch_requotes,
        },
        script: scripts.first().cloned(),
        scripts,
        baselines: [
            ("serde_json_f64_parse".to_string(), base.percentiles(Stage::Parse)),
            ("whole_diff_tick_to_quote".to_string(), whole.hist.percentiles(Stage::TickToQuote)),
        ]
        .into_iter()
        .collect(),
        baseline_per_level_ns: [
            ("parse".to_string(), per_level(&whole.parse_ps)),
            ("apply".to_string(), per_level(&whole.apply_ps)),
        ]
        .into_iter()
        .collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    println!(
        "mmbot bench: {} ({} frames, first {} not counted); clock {} ({} ns/read; Instant {} ns/read); {}",
        out.input,
        out.frames,
        out.warmup_frames,
        out.clock,
        out.tsc_cost_ns.map_or("n/a".into(), |c| c.to_string()),
        out.instant_cost_ns.map_or("n/a".into(), |c| c.to_string()),
        match pinned {
            Some(c) => format!("pinned to core {c}"),
            None => "not pinned".into(),
        }
    );
    println!("host: {}", out.host.line());
    println!(
        "profile {}; frames by kind: {}",
        out.profile,
        out.frame_counts.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    );
    println!("{:<28} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9}  (ns)", "stage", "count", "p50", "p90", "p99", "p99.9", "max");
    let row = |name: &str, s: &Percentiles| {
        println!("{name:<28} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9}", s.count, s.p50, s.p90, s.p99, s.p999, s.max);
    };
    for s in Stage::ALL {
        row(s.name(), &out.latency_ns[s.name()]);
    }
    row("  parse, depth frames only", &out.depth_parse_ns);
    let t = &out.touch_first;
    if t.diffs > 0 {
        println!(
            "touch-first: {} diffs quoted after {} of their {} levels ({:.1}%), the rest applied after the quote; {} declined, {} quoted again",
            t.diffs,
            t.levels_before_quote,
            t.levels,
            100.0 * t.levels_before_quote as f64 / t.levels.max(1) as f64,
            t.declined,
            t.requotes
        );
    }
    let lv = |name: &str, l: &PerLevel| {
        println!("{name:<28} {:>9} {:>8.1} {:>8.1} {:>8.1}  (ns per level)", l.diffs, l.p50, l.p90, l.p99);
    };
    println!("{:<28} {:>9} {:>8} {:>8} {:>8}", "per level of a diff", "diffs", "p50", "p90", "p99");
    lv("read (whole diff)", &out.per_level_ns["parse"]);
    lv("apply to the book", &out.per_level_ns["apply"]);
    println!("baseline, same frames and clock:");
    row("serde_json typed + f64 parse", &out.baselines["serde_json_f64_parse"]);
    row("whole diff before the quote", &out.baselines["whole_diff_tick_to_quote"]);
    lv("  its read per level", &out.baseline_per_level_ns["parse"]);
    lv("  its apply per level", &out.baseline_per_level_ns["apply"]);
    if let [sc] = out.scripts.as_slice() {
        println!("with the script strategy {} instead of the native one, same frames:", sc.strategy);
        for s in Stage::ALL {
            row(s.name(), &sc.latency_ns[s.name()]);
        }
    }
    if !out.scripts.is_empty() {
        print_script_table(&out.latency_ns, &out.scripts);
    }
    Ok(0)
}

/// Frames per kind, by combined-stream name: `depth` (diffs and partial
/// depth), `bookTicker`, `trade` (trade and aggTrade) and `other`.
fn frame_counts(frames: &Frames) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> =
        ["depth", "bookTicker", "trade", "other"].iter().map(|k| (k.to_string(), 0)).collect();
    for (_, f) in frames {
        let kind = match split_combined(f).map(|(name, _)| classify_stream(name).0) {
            Some(StreamKind::Diff | StreamKind::Partial) => "depth",
            Some(StreamKind::BookTicker) => "bookTicker",
            Some(StreamKind::Trade | StreamKind::AggTrade) => "trade",
            _ => "other",
        };
        *counts.entry(kind.to_string()).or_default() += 1;
    }
    counts
}

/// Each script of `--script` on each path it can run on, in order.
fn run_scripts(
    args: &BenchArgs,
    config: &Config,
    frames: &Frames,
    clock: Clock,
    warmup: usize,
) -> anyhow::Result<Vec<ScriptOut>> {
    let mut out = Vec::new();
    for path in &args.script {
        let load = || {
            ScriptStrategy::from_file(path, &config.params, &config.script_limits)
                .with_context(|| format!("loading the script {} for the bench", path.display()))
        };
        let first = load()?;
        let reason = first.script().not_compiled().map(|e| e.to_string());
        let paths: &[bool] = match (args.interpreted, first.fast_path()) {
            (true, _) | (false, false) => &[false],
            (false, true) => &[true, false],
        };
        let mut spare = Some(first);
        for &compiled in paths {
            let mut s = match spare.take() {
                Some(s) => s,
                None => load()?,
            };
            s.set_fast_path(compiled);
            s.set_budget(config.script_budget, crate::script::budget::BudgetMode::CountOnly);
            s.set_levels(config.strategy_levels);
            let name = s.name().to_string();
            let h = run_hot(config, s, frames, clock, warmup, None).hist;
            out.push(ScriptOut {
                path: path.display().to_string(),
                strategy: name,
                compiled,
                not_compiled_reason: reason.clone(),
                latency_ns: Stage::ALL.iter().map(|&s| (s.name().to_string(), h.percentiles(s))).collect(),
            });
        }
    }
    Ok(out)
}

/// One row per script and path: the per-decision cost (the strategy stage).
fn print_script_table(native: &BTreeMap<String, Percentiles>, scripts: &[ScriptOut]) {
    let strategy = Stage::Strategy.name();
    let ttq = Stage::TickToQuote.name();
    println!("per decision (strategy stage) and tick to quote, same frames (ns):");
    println!(
        "{:<36} {:<11} {:>9} {:>8} {:>8} {:>10} {:>10}",
        "script", "path", "decisions", "p50", "p99", "t2q p50", "t2q p99"
    );
    let row = |name: &str, path: &str, l: &BTreeMap<String, Percentiles>| {
        let (s, t) = (&l[strategy], &l[ttq]);
        println!("{name:<36} {path:<11} {:>9} {:>8} {:>8} {:>10} {:>10}", s.count, s.p50, s.p99, t.p50, t.p99);
    };
    row("(native strategy)", "native", native);
    for sc in scripts {
        row(&sc.path, if sc.compiled { "compiled" } else { "interpreted" }, &sc.latency_ns);
    }
    for sc in scripts.iter().filter(|s| !s.compiled) {
        if let Some(r) = &sc.not_compiled_reason {
            println!("{}: interpreted because {r}", sc.path);
        }
    }
}
