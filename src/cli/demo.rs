//! `mmbot demo`: the whole bot offline in one command. It starts the local
//! exchange simulator in-process on a loopback port and runs the bot against
//! it over the real path (WebSocket, REST snapshots, sync, hot thread, paper
//! exchange), with the default Rhai script and the offline advisor, for
//! `--duration` or until Ctrl-C. Then it prints a summary and writes the
//! report, `.hgrm` files and latency plots to `mmbot-out/<timestamp>/`.
//! Needs no keys and no internet.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::feed_args::parse_duration;
use crate::cli::outputs::{timestamped_dir, write_all_with_feed};
use crate::cli::record::ctrl_c_flag;
use crate::cli::replay::finish;
use crate::cli::session::{run_session, View};
use crate::config::Config;
use crate::hot::msg::Symbol;
use crate::runtime::{Source, Venue};
use crate::sim::faults::Faults;
use crate::sim::flow::SimMarket;
use crate::sim::{Sim, SimConfig, SimSource};

/// The shipped default strategy (the tutorial's rules), so the demo runs
/// from any directory.
const DEFAULT_SCRIPT: &str = include_str!("../../scripts/default.rhai");

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// How long to run.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub duration: Duration,
    /// Where the run's folder goes.
    #[arg(long, default_value = "mmbot-out")]
    pub out: PathBuf,
    /// Config file (its feed endpoints are replaced by the simulator's).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A Rhai strategy script instead of the shipped default.rhai.
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Seed of the simulated market.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Order-flow events per second in the simulated market (calm regime).
    #[arg(long, default_value_t = 300.0)]
    pub rate: f64,
    /// Status lines instead of the dashboard even on a terminal.
    #[arg(long)]
    pub no_dashboard: bool,
    /// Let the simulator misbehave (a dropped diff every 200, a disconnect
    /// every 20 s, a malformed frame every 500), to watch the bot cope.
    #[arg(long)]
    pub chaos: bool,
}

pub fn run(args: DemoArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(args.rate.is_finite() && args.rate > 0.0, "--rate {} must be a positive number", args.rate);
    let mut config = Config::load_or_default(args.config.as_deref()).context("loading the configuration")?;
    let dir = timestamped_dir(&args.out)?;
    let faults = if args.chaos {
        Faults {
            drop_diff_every: 200,
            disconnect_every: Some(Duration::from_secs(20)),
            malformed_every: 500,
            ..Faults::default()
        }
    } else {
        Faults::default()
    };
    let fault_text = faults.describe();
    let sim = Sim::start(SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        market: SimMarket::Spot,
        symbols: vec!["BTCUSDT".into()],
        source: SimSource::Synthetic { seed: args.seed, events_per_sec: args.rate },
        faults,
        ping_every: Duration::from_secs(20),
        record_tops: false,
        accounts: Vec::new(),
    })?;
    let symbol = Symbol::new(b"BTCUSDT");
    config.hot.symbol = Some(symbol);
    config.feed.symbols = vec![symbol];
    config.feed.stream_url = Some(sim.ws_base());
    config.feed.rest_url = Some(sim.http_base());
    // Reconnect quickly against a local server.
    config.feed.backoff_min = Duration::from_millis(200);
    config.feed.backoff_max = Duration::from_secs(2);
    let script = match args.script.clone().or(config.script.clone()) {
        Some(s) => s,
        None => {
            let path = dir.join("default.rhai");
            std::fs::write(&path, DEFAULT_SCRIPT).with_context(|| format!("writing {}", path.display()))?;
            path
        }
    };
    eprintln!(
        "mmbot demo: simulated BTCUSDT market on {} (faults: {fault_text}); strategy {}; advisor: {}; {} s (Ctrl-C ends early)",
        sim.addr(),
        script.display(),
        if config.ai_offline.is_some() { "offline" } else { "none" },
        args.duration.as_secs_f64()
    );
    let stop = ctrl_c_flag();
    {
        let stop = stop.clone();
        let d = args.duration;
        std::thread::spawn(move || {
            let end = Instant::now() + d;
            while Instant::now() < end && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
    let feed = config.feed.clone();
    let title = format!("mmbot demo BTCUSDT (simulated, {})", sim.addr());
    let view = View::auto(args.no_dashboard);
    let _logs = crate::logging::init(view != View::Dashboard, Some(&dir.join("mmbot.log")));
    let run =
        run_session(Source::Live(feed), Vec::new(), &config, Some(&script), view, stop, "demo", title, Venue::Paper)?;
    for e in &run.source_errors {
        eprintln!("mmbot demo: {e}");
    }
    finish(&run, "demo", None)?;
    let written = write_all_with_feed(&dir, &run.report, run.feed.as_ref(), &run.histograms)?;
    eprintln!("mmbot demo: market: {}", sim.describe());
    eprintln!("mmbot demo: wrote {} files to {}:", written.len(), dir.display());
    for p in &written {
        eprintln!("  {}", p.display());
    }
    Ok(if run.source_errors.is_empty() { 0 } else { 2 })
}
