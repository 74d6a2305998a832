//! `mmbot paper --symbol BTCUSDT [--market spot|usdm] [--stream-url ..]
//! [--rest-url ..] [--duration 10m]`: paper trading on the live feed (or on
//! `mmbot sim`): the hot thread owns the WebSocket, syncs books with REST
//! snapshots, quotes; the paper exchange fills on the exec thread. Status
//! every second; the report (counts, trading, latency per stage including
//! `wire` and `feed_delay`) at the end.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::cli::feed_args::FeedArgs;
use crate::cli::outputs::{timestamped_dir, write_all};
use crate::cli::record::ctrl_c_flag;
use crate::cli::replay::finish;
use crate::cli::session::{run_session, View};
use crate::feed::live::reason_names;
use crate::runtime::Source;

#[derive(clap::Args, Debug)]
pub struct PaperArgs {
    #[command(flatten)]
    pub feed: FeedArgs,
    /// A Rhai strategy script (overrides `[strategy] script`), reloaded when the file changes.
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Write the report JSON here too.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Status lines instead of the dashboard even on a terminal.
    #[arg(long)]
    pub no_dashboard: bool,
    /// Where the run's folder (report, .hgrm files, plots) goes.
    #[arg(long, default_value = "mmbot-out")]
    pub out: PathBuf,
}

pub fn run(args: PaperArgs) -> anyhow::Result<i32> {
    let config = args.feed.config()?;
    let feed = config.feed.clone();
    eprintln!(
        "mmbot paper: {} ({}), trading {}; REST {}",
        feed.stream_url(),
        feed.market.name(),
        config.hot.symbol.map_or("-".into(), |s| s.to_string()),
        feed.rest_url()
    );
    let stop = ctrl_c_flag();
    if let Some(d) = args.feed.duration {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let end = Instant::now() + d;
            while Instant::now() < end && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
    let title = format!(
        "mmbot paper {} ({})",
        config.hot.symbol.map_or("-".into(), |s| s.to_string()),
        config.feed.market.name()
    );
    let view = View::auto(args.no_dashboard);
    let dir = timestamped_dir(&args.out)?;
    let _logs = crate::logging::init(view != View::Dashboard, Some(&dir.join("mmbot.log")));
    let run = run_session(Source::Live(feed), Vec::new(), &config, args.script.as_ref(), view, stop, "paper", title)?;
    for e in &run.source_errors {
        eprintln!("mmbot paper: {e}");
    }
    if let Some(l) = run.link {
        let reasons: Vec<String> = reason_names()
            .filter(|&(_, i)| l.disconnects[i] > 0)
            .map(|(name, i)| format!("{} {name}", l.disconnects[i]))
            .collect();
        eprintln!(
            "mmbot paper: feed: {} connections, disconnects: {}; {} server pings answered, {} snapshots received ({} failed, {} discarded)",
            l.connects,
            if reasons.is_empty() { "none".into() } else { reasons.join(", ") },
            l.pings_received,
            l.snapshots_received,
            l.snapshots_failed,
            l.snapshots_discarded
        );
    }
    finish(&run, "paper", args.report.as_ref())?;
    let written = write_all(&dir, &run.report, &run.histograms)?;
    eprintln!("mmbot paper: wrote {} files to {}", written.len(), dir.display());
    Ok(if run.source_errors.is_empty() { 0 } else { 2 })
}
