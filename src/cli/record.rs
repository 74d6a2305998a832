//! `mmbot record --symbol btcusdt [--market spot|usdm] --out FILE.gz
//! [--duration 10m]`: writes the live feed's depth, trade and bookTicker
//! frames exactly as received, plus the REST snapshots, in the recording
//! format (DESIGN.md), with a progress line. Killed at any moment, the file
//! replays up to its last complete gzip member (closed every second).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::feed_args::FeedArgs;
use crate::feed::live::LiveFeed;
use crate::feed::recorder::{Recorder, RecordingWriter};
use crate::stats::clock::Clock;

#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    #[command(flatten)]
    pub feed: FeedArgs,
    /// The recording to write (gzip when it ends in .gz).
    #[arg(long)]
    pub out: PathBuf,
    /// Overwrite `--out` if it exists (a recording is not replaceable).
    #[arg(long)]
    pub force: bool,
}

/// The process's stop flags: `.0` is raised by SIGINT/SIGTERM and by the
/// run's own stops (`--duration`, `q`); `.1` by a signal only.
fn signal_flags() -> &'static (Arc<AtomicBool>, Arc<AtomicBool>) {
    static FLAGS: std::sync::OnceLock<(Arc<AtomicBool>, Arc<AtomicBool>)> = std::sync::OnceLock::new();
    FLAGS.get_or_init(|| {
        let (stop, signaled) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (f, g) = (stop.clone(), signaled.clone());
        // With the `termination` feature this catches SIGTERM too (what
        // `kill`, systemd and docker send), so they stop as cleanly as Ctrl-C.
        if let Err(e) = ctrlc::set_handler(move || {
            g.store(true, Ordering::Relaxed);
            f.store(true, Ordering::Relaxed);
        }) {
            crate::say!("mmbot: warning: cannot catch Ctrl-C ({e}); stop with --duration instead");
        }
        (stop, signaled)
    })
}

/// Stops on Ctrl-C or SIGTERM (set once per process; later calls share the
/// flag).
pub fn ctrl_c_flag() -> Arc<AtomicBool> {
    signal_flags().0.clone()
}

/// Raises `stop` once `d` has passed (a run's `--duration`), checking every
/// 50 ms so a stop raised otherwise ends the timer too.
pub fn stop_after(stop: &Arc<AtomicBool>, d: std::time::Duration) {
    let stop = stop.clone();
    std::thread::spawn(move || {
        let end = std::time::Instant::now() + d;
        while std::time::Instant::now() < end && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
    });
}

/// Raised only when SIGINT or SIGTERM arrived (not by `--duration`).
pub fn signal_flag() -> Arc<AtomicBool> {
    signal_flags().1.clone()
}

pub fn run(args: RecordArgs) -> anyhow::Result<i32> {
    if args.out.exists() && !args.force {
        anyhow::bail!(
            "--out {} exists: a recording cannot be made again; choose another name, or add --force to overwrite it",
            args.out.display()
        );
    }
    let config = args.feed.config()?;
    // A recorded snapshot's body names no symbol: with several symbols on
    // one stream, a replay could not tell whose it is.
    config.one_symbol("mmbot record")?;
    let feed_cfg = config.feed.clone();
    let writer = RecordingWriter::create(&args.out, Duration::from_secs(1))
        .with_context(|| format!("creating {}", args.out.display()))?;
    let symbols = feed_cfg.symbols.clone();
    let mut recorder = Recorder::new(writer, &symbols);
    let url = feed_cfg.stream_url();
    let mut feed = LiveFeed::start(feed_cfg, Clock::instant()).context("starting the feed")?;
    let stop = ctrl_c_flag();
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    crate::say!("mmbot record: {url} -> {}", args.out.display());
    let bar = tty.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} recording {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let mut last_progress = Instant::now();
    while !stop.load(Ordering::Relaxed) && args.feed.duration.is_none_or(|d| started.elapsed() < d) {
        feed.turn(&mut recorder);
        if let Some(e) = &recorder.error {
            anyhow::bail!("writing {}: {e}", args.out.display());
        }
        let every = if tty { Duration::from_secs(1) } else { Duration::from_secs(10) };
        if last_progress.elapsed() >= every {
            last_progress = Instant::now();
            let line = progress(&recorder, &feed, started.elapsed());
            match &bar {
                Some(b) => {
                    b.set_message(line);
                    b.tick();
                }
                None => crate::say!("{line}"),
            }
        }
    }
    feed.shutdown(&mut recorder);
    let line = progress(&recorder, &feed, started.elapsed());
    let lines = recorder.writer().lines();
    recorder.finish().with_context(|| format!("closing {}", args.out.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    crate::say!("mmbot record: done: {line}; {lines} lines in {}", args.out.display());
    if feed.stats().connects == 0 {
        // Nothing was recorded because nothing was reached: say so, and
        // exit with the feed's status.
        crate::say!("mmbot record: never connected to {url} (the attempts and their errors are in the log above)");
        return Ok(crate::cli::exit::FEED);
    }
    Ok(crate::cli::exit::OK)
}

fn progress(r: &Recorder, feed: &LiveFeed, elapsed: Duration) -> String {
    let s = r.market().sync_stats();
    let secs = elapsed.as_secs();
    format!(
        "{:02}:{:02}:{:02} {} {} frames, {} snapshots, {} reconnects, {} gaps, {:.1} MB{}{}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        if feed.is_connected() { "connected" } else { "connecting" },
        r.frames,
        r.snapshots,
        r.disconnects,
        s.gaps,
        r.writer().bytes() as f64 / 1e6,
        feed.last_connect_error().map_or(String::new(), |e| format!(" (last error: {e})")),
        // A ban or back-off (maybe another mmbot's on this host) holds the feed.
        match (feed.ip_guard().blocked(), feed.guard_waits()) {
            (Some(r), n) => format!(" (IP guard: {r}; {n} waits)"),
            (None, 0) => String::new(),
            (None, n) => format!(" ({n} waits for the IP guard)"),
        },
    )
}
