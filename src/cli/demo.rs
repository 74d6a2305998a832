//! `mmbot demo`: the whole bot offline in one command. It starts the local
//! exchange simulator in-process on a loopback port and runs the bot against
//! it over the real path (WebSocket, REST snapshots, sync, hot thread, paper
//! exchange), with a two-sided strategy that leans against its inventory
//! (`scripts/inventory_skew.rhai`) and the offline advisor, for `--duration`
//! or until Ctrl-C. Then it prints a summary and writes the report, the
//! event log, `.hgrm` files and latency plots to `mmbot-out/<timestamp>/`.
//! Needs no keys and no internet.
//!
//! Without `--config` it runs with `scripts/demo.toml` (embedded, and
//! written into the run's folder): quotes at the touch of the simulated
//! market, which is far calmer than BTCUSDT, so they fill within seconds on
//! both sides. The tutorial's settings quote 0.1% from the touch, where the
//! simulated market never trades (see demo.toml).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::cli::dashboard::events::EventLog;
use crate::cli::feed_args::parse_duration;
use crate::cli::outputs::{timestamped_dir, write_all_with_feed};
use crate::cli::record::ctrl_c_flag;
use crate::cli::replay::finish;
use crate::cli::session::{run_session_with_events, View};
use crate::config::source::Choice;
use crate::config::Config;
use crate::hot::msg::Symbol;
use crate::runtime::{Source, Venue};
use crate::sim::faults::Faults;
use crate::sim::flow::SimMarket;
use crate::sim::{Sim, SimConfig, SimSource};

/// The demo's strategy: both sides, skewed against inventory. Embedded so
/// the demo runs from any directory.
const DEMO_SCRIPT: &str = include_str!("../../scripts/inventory_skew.rhai");
const DEMO_SCRIPT_NAME: &str = "inventory_skew.rhai";
/// The demo's settings when no config file is given.
const DEMO_CONFIG: &str = include_str!("../../scripts/demo.toml");
#[cfg(test)]
pub(crate) const DEMO_CONFIG_TEXT: &str = DEMO_CONFIG;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// How long to run.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub duration: Duration,
    /// Where the run's folder goes.
    #[arg(long, default_value = "mmbot-out")]
    pub out: PathBuf,
    /// Config file (its feed endpoints are replaced by the simulator's).
    /// Default: the demo's own settings (scripts/demo.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A Rhai strategy script instead of the shipped inventory_skew.rhai.
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
    /// Simulate this many symbols (BTCUSDT, ETHUSDT, BNBUSDT, ...), each
    /// with its own market, traded from one account with a budget each
    /// (status lines; see src/cli/demo_multi.rs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub symbols: u8,
    /// Let the simulator misbehave (a dropped diff every 200, a disconnect
    /// every 20 s, a malformed frame every 500), to watch the bot cope.
    #[arg(long)]
    pub chaos: bool,
    #[command(flatten)]
    pub control: crate::cli::control_plane::ControlArgs,
    /// No web dashboard or control API (the demo serves them at
    /// 127.0.0.1:8686 otherwise).
    #[arg(long, conflicts_with = "control")]
    pub no_control: bool,
}

/// The demo serves the control plane at 127.0.0.1:8686 (a free port when
/// that one is taken) unless `--no-control`; `--control` picks another.
pub(super) fn demo_control(args: &DemoArgs, config: &mut Config) -> anyhow::Result<()> {
    args.control.apply(config)?;
    if config.control.listen.is_none() && !args.no_control {
        config.control.listen = Some(crate::config::control::DEMO_LISTEN.parse().expect("a valid address"));
        config.control.any_port_if_taken = true;
    }
    Ok(())
}

pub fn run(args: DemoArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(args.rate.is_finite() && args.rate > 0.0, "--rate {} must be a positive number", args.rate);
    let dir = timestamped_dir(&args.out)?;
    // The one config rule (--config, $MMBOT_CONFIG, ./mmbot.toml); where it
    // finds nothing, the demo's own settings instead of the built-in defaults.
    let choice = Choice::for_process(args.config.as_deref());
    if args.symbols > 1 {
        // Several simulated symbols from one account (src/cli/demo_multi.rs).
        let (text, origin) = match choice.path() {
            Some(path) => {
                crate::say!("mmbot: {}", choice.line());
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                (text, path.display().to_string())
            }
            None => (DEMO_CONFIG.to_string(), "scripts/demo.toml (embedded)".to_string()),
        };
        let script = match &args.script {
            Some(s) => s.clone(),
            None => {
                let path = dir.join(DEMO_SCRIPT_NAME);
                std::fs::write(&path, DEMO_SCRIPT).with_context(|| format!("writing {}", path.display()))?;
                path
            }
        };
        return super::demo_multi::run(&args, &dir, &text, &origin, &script);
    }
    let (mut config, settings) = match choice.path() {
        Some(path) => {
            crate::say!("mmbot: {}", choice.line());
            let config = Config::load_chosen(&choice).context("loading the configuration")?;
            config.one_symbol("mmbot demo")?;
            (config, path.display().to_string())
        }
        None => {
            crate::say!(
                "mmbot: config: scripts/demo.toml, the demo's own (no --config, no $MMBOT_CONFIG, no ./mmbot.toml)"
            );
            let config = Config::from_toml(DEMO_CONFIG, "scripts/demo.toml (embedded)")
                .context("the demo's embedded settings")?;
            let path = dir.join("demo.toml");
            std::fs::write(&path, DEMO_CONFIG).with_context(|| format!("writing {}", path.display()))?;
            (config, format!("the demo's ({})", path.display()))
        }
    };
    // The demo is offline: with no provider chosen it asks no LLM (and does
    // not warn about a missing key).
    if config.ai.provider == crate::ai::Provider::Auto {
        config.ai.provider = crate::ai::Provider::Offline;
    }
    demo_control(&args, &mut config)?;
    let fault_text = demo_faults(args.chaos).describe();
    let sim = start_sim(&args, vec!["BTCUSDT".into()])?;
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
            let path = dir.join(DEMO_SCRIPT_NAME);
            std::fs::write(&path, DEMO_SCRIPT).with_context(|| format!("writing {}", path.display()))?;
            path
        }
    };
    crate::say!(
        "mmbot demo: simulated BTCUSDT market on {} (faults: {fault_text}); strategy {}; settings {settings}; \
         advisor: {}; {} s (Ctrl-C ends early)",
        sim.addr(),
        script.display(),
        advisor_label(&config.ai),
        args.duration.as_secs_f64()
    );
    let stop = ctrl_c_flag();
    crate::cli::record::stop_after(&stop, args.duration);
    let feed = config.feed.clone();
    let title = "mmbot demo BTCUSDT".to_string();
    let view = View::auto(args.no_dashboard);
    let _logs = crate::logging::init(view != View::Dashboard, Some(&dir.join("mmbot.log")));
    let (run, events) = run_session_with_events(
        Source::Live(feed),
        Vec::new(),
        &config,
        Some(&script),
        view,
        stop,
        "demo",
        title,
        Venue::Paper,
    )?;
    for e in &run.source_errors {
        crate::say!("mmbot demo: {e}");
    }
    finish(&run, "demo", None)?;
    crate::say!("mmbot demo: {}", fills_line(&events));
    let mut written = write_all_with_feed(&dir, &run.report, run.feed.as_ref(), &run.histograms)?;
    let path = dir.join("events.jsonl");
    std::fs::write(&path, events.to_jsonl()).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    crate::say!("mmbot demo: market: {}", sim.describe());
    crate::say!("mmbot demo: wrote {} files to {}:", written.len(), dir.display());
    for p in &written {
        crate::say!("  {}", p.display());
    }
    if !run.source_errors.is_empty() {
        return Ok(crate::cli::exit::FEED);
    }
    Ok(match crate::cli::exit::script_failed(&run.report.trading, config.max_script_error_share) {
        Some(why) => {
            crate::say!("mmbot demo: {why}");
            crate::cli::exit::SCRIPT
        }
        None => crate::cli::exit::OK,
    })
}

/// The demo's in-process simulator for `symbols` on a loopback port:
/// spot, `--seed`, `--rate`, and `--chaos` faults; several symbols move
/// together (correlation [`DEMO_CORRELATION`]), as a market's do.
pub(crate) fn start_sim(args: &DemoArgs, symbols: Vec<String>) -> anyhow::Result<Sim> {
    let correlation = if symbols.len() > 1 { DEMO_CORRELATION } else { 0.0 };
    Ok(Sim::start(SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        market: SimMarket::Spot,
        symbols,
        source: SimSource::Synthetic { seed: args.seed, events_per_sec: args.rate },
        faults: demo_faults(args.chaos),
        ping_every: Duration::from_secs(20),
        record_tops: false,
        accounts: Vec::new(),
        dynamics: crate::sim::Dynamics { correlation, start_prices: Vec::new() },
    })?)
}

/// How much `demo --symbols N`'s markets move together.
pub(crate) const DEMO_CORRELATION: f64 = 0.6;

/// The simulator's faults: none, or with `--chaos` a dropped diff every
/// 200, a disconnect every 20 s and a malformed frame every 500.
pub(crate) fn demo_faults(chaos: bool) -> Faults {
    if chaos {
        Faults {
            drop_diff_every: 200,
            disconnect_every: Some(Duration::from_secs(20)),
            malformed_every: 500,
            ..Faults::default()
        }
    } else {
        Faults::default()
    }
}

/// Where the demo's advice comes from, as the banner says it:
/// `holysheep gpt-4.1`, `openai gpt-5-mini (+1 fallback)`, `offline`,
/// `offline (no HOLYSHEEP_API_KEY)` or `none`. The key is looked up as the
/// advisor will look it up, never shown.
pub fn advisor_label(ai: &crate::ai::AiConfig) -> String {
    use crate::ai::Provider;
    let fallbacks = match ai.fallback.len() {
        0 => String::new(),
        1 => " (+1 fallback)".to_string(),
        n => format!(" (+{n} fallbacks)"),
    };
    match ai.provider {
        Provider::None => "none (neutral advice)".into(),
        Provider::Offline => "offline".into(),
        Provider::Auto => match crate::ai::advisor::resolve_key(ai) {
            Ok(Some(_)) => format!("{}{fallbacks}", ai.primary_route().label()),
            _ => format!("offline (no {})", ai.key_var),
        },
        _ => format!("{}{fallbacks}", ai.primary_route().label()),
    }
}

/// `fills: 12 buys, 10 sells; the first 2.3 s after the start`.
fn fills_line(events: &EventLog) -> String {
    match events.first_fill_s {
        Some(t) => format!("fills: {} buys, {} sells; the first {t:.1} s after the start", events.buys, events.sells),
        None => "fills: none".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_names_the_configured_advisor() {
        let mut ai = crate::ai::AiConfig::default();
        ai.provider = crate::ai::Provider::Offline;
        assert_eq!(advisor_label(&ai), "offline");
        ai.provider = crate::ai::Provider::None;
        assert_eq!(advisor_label(&ai), "none (neutral advice)");
        let c = Config::from_toml("[ai]\nprovider = \"holysheep\"\nmodel = \"gpt-4.1\"\n", "test").unwrap();
        assert_eq!(advisor_label(&c.ai), "holysheep gpt-4.1");
        let c = Config::from_toml(
            "[ai]\nprovider = \"openai\"\nmodel = \"gpt-5-mini\"\n[[ai.fallback]]\nprovider = \"openai\"\nmodel = \"gpt-5-nano\"\n",
            "test",
        )
        .unwrap();
        assert_eq!(advisor_label(&c.ai), "openai gpt-5-mini (+1 fallback)");
    }
}
