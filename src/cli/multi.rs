//! What the commands that run several symbols (`[[symbols]]`) share: each
//! symbol's strategy, the summary lines, the report file and the exit
//! status (`mmbot backtest`, `mmbot replay`), and `mmbot paper` with
//! several symbols.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::backtest::multi::MultiReport;
use crate::cli::dashboard::{symbols, tty};
use crate::cli::session::{venue_label, View};
use crate::config::symbols::Symbols;
use crate::config::Config;
use crate::hot::strategy::{NativeStrategy, Strategy};
use crate::runtime::multi::{run_paper_multi, MultiSource};
use crate::runtime::multi_status::SharedStatus;
use crate::runtime::{Source, Venue};
use crate::script::budget::BudgetMode;
use crate::script::ScriptStrategy;

/// Each symbol's strategy, in order: `script` (a command's `--script`) for
/// all, else the symbol's own `[strategy] script`, else the native one.
pub(crate) fn strategies(
    symbols: &Symbols,
    script: Option<&PathBuf>,
    budget: BudgetMode,
) -> anyhow::Result<Vec<Box<dyn Strategy + Send>>> {
    let mut out: Vec<Box<dyn Strategy + Send>> = Vec::with_capacity(symbols.entries.len());
    for e in &symbols.entries {
        let c = &e.config;
        out.push(match script.or(c.script.as_ref()) {
            Some(path) => {
                let mut s = ScriptStrategy::from_file(path, &c.params, &c.script_limits)
                    .with_context(|| format!("the script of {}", e.budget.symbol))?;
                s.set_budget(c.script_budget, budget);
                s.set_levels(c.strategy_levels);
                Box::new(s)
            }
            None => Box::new(NativeStrategy),
        });
    }
    Ok(out)
}

/// Writes the report (to stdout without `path`) and a line per symbol on
/// stderr.
pub(crate) fn finish(label: &str, report: &MultiReport, path: Option<&Path>) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report).context("encoding the report")?;
    match path {
        Some(path) => {
            std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
            crate::say!("mmbot {label}: report {}", path.display());
        }
        None => println!("{json}"),
    }
    for s in &report.symbols {
        let t = &s.report.trading;
        let q = &s.report.perf.latency_ns["tick_to_quote"];
        let refused: u64 = s.refused.values().sum();
        crate::say!(
            "mmbot {label}: {}: {} quotes, {} orders, {} fills, position {}, pnl {} {}; tick_to_quote p50 {} ns p99 {} ns; \
             {refused} levels refused by the allocator",
            s.symbol, t.quotes, t.orders, t.fills, t.position, t.pnl, s.quote, q.p50, q.p99
        );
    }
    for (asset, t) in &report.totals {
        crate::say!(
            "mmbot {label}: {asset} total over {}: pnl {}, fees {}, volume {}, {} fills of {} orders",
            t.symbols.join(", "),
            t.pnl,
            t.fees,
            t.volume,
            t.fills,
            t.orders
        );
    }
    if let Some(k) = &report.killed {
        crate::say!("mmbot {label}: account kill: {k}");
    }
    Ok(())
}

/// The exit status: a script that failed too often on any symbol, else
/// nothing quoted on any symbol, else OK.
pub(crate) fn exit_status(label: &str, report: &MultiReport, symbols: &Symbols) -> i32 {
    for (s, e) in report.symbols.iter().zip(&symbols.entries) {
        if let Some(why) = crate::cli::exit::script_failed(&s.report.trading, e.config.max_script_error_share) {
            crate::say!("mmbot {label}: {}: {why}", s.symbol);
            return crate::cli::exit::SCRIPT;
        }
    }
    if report.symbols.iter().all(|s| s.report.trading.quotes == 0) {
        crate::say!("mmbot {label}: no symbol made a quote: do the recordings carry the configured [[symbols]]?");
        return crate::cli::exit::NOTHING_TRADED;
    }
    crate::cli::exit::OK
}

/// How often the status lines print without a terminal.
const LINES_EVERY: Duration = Duration::from_secs(2);

/// Runs `run` (a multi-symbol run, given where to publish its status)
/// while the operator watches: the symbols dashboard on a terminal
/// (`q` sets `stop`), status lines every few seconds elsewhere, or nothing.
/// With `[control] listen`, the control plane serves the same rows
/// (`crate::control::symbols`) for as long as the run goes on.
#[allow(clippy::too_many_arguments)]
pub(crate) fn watched<T>(
    label: &str,
    title: &str,
    mode: &str,
    view: View,
    stop: &Arc<AtomicBool>,
    control: &crate::config::control::ControlConfig,
    run: impl FnOnce(Option<SharedStatus>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let shared = SharedStatus::default();
    let _server = match control.listen {
        None if view == View::Quiet => return run(None),
        None => None,
        Some(listen) => {
            let token = crate::control::token::Token::load(&control.token_env, std::path::Path::new(".env"))?;
            let panel = crate::control::SymbolsPanel::new(title, mode, shared.clone(), stop.clone());
            let server = crate::control::ControlServer::start_symbols(
                crate::control::ServerSettings::from_config(control, listen),
                token.clone(),
                panel,
            )
            .context("starting the control plane ([control])")?;
            crate::cli::control_plane::banner(label, server.addr(), &token);
            Some(server)
        }
    };
    if view == View::Quiet {
        return run(Some(shared));
    }
    let finished = Arc::new(AtomicBool::new(false));
    let (sh, fin, st) = (shared.clone(), finished.clone(), stop.clone());
    let (label, title, mode) = (label.to_string(), title.to_string(), mode.to_string());
    let watcher = std::thread::Builder::new().name("mmbot-watch".into()).spawn(move || {
        if view == View::Dashboard {
            match symbols::run(&title, &mode, &sh, &st, &fin) {
                Ok(()) => return,
                // No terminal to print on: the run goes on and ends as asked.
                Err(e) if tty::is_gone(&e) => {
                    tracing::warn!("mmbot {label}: the terminal went away; the run goes on without a screen");
                    return;
                }
                Err(e) => crate::say!("mmbot {label}: dashboard failed ({e}); status lines instead"),
            }
        }
        let mut next = Instant::now() + LINES_EVERY;
        while !fin.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            if Instant::now() >= next {
                next += LINES_EVERY;
                let s = sh.lock().map(|s| s.clone()).unwrap_or_default();
                for line in symbols::lines(&format!("mmbot {label}"), &s) {
                    crate::say!("{line}");
                }
            }
        }
    })?;
    let out = run(Some(shared));
    finished.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    out
}

/// What a multi-symbol run on the live feed sets up before its threads:
/// the stop flag (Ctrl-C, `--duration`), the run folder, the view, the
/// log (kept while the run lasts) and each symbol's strategy.
pub(crate) struct RunSetup {
    pub stop: Arc<AtomicBool>,
    pub dir: PathBuf,
    pub view: View,
    pub _logs: crate::logging::LogGuard,
    pub strategies: Vec<Box<dyn Strategy + Send>>,
}

pub(crate) fn setup(args: &crate::cli::paper::PaperArgs, symbols: &Symbols) -> anyhow::Result<RunSetup> {
    let stop = crate::cli::record::ctrl_c_flag();
    if let Some(d) = args.feed.duration {
        crate::cli::record::stop_after(&stop, d);
    }
    let dir = crate::cli::outputs::timestamped_dir(&args.out)?;
    let view = View::auto(args.no_dashboard);
    let _logs = crate::logging::init(view != View::Dashboard, Some(&dir.join("mmbot.log")));
    let strategies = strategies(symbols, args.script.as_ref(), BudgetMode::for_build())?;
    Ok(RunSetup { stop, dir, view, _logs, strategies })
}

/// `mmbot paper` (or `mmbot run` without `--live`) with `[[symbols]]`:
/// every symbol's streams on one connection, the symbols on one hot
/// thread, paper exchanges and the allocator on the exec thread
/// (`crate::runtime::multi`), watched on the symbols dashboard (or status
/// lines); the report goes to the run folder and `--report`.
pub(crate) fn paper(args: &crate::cli::paper::PaperArgs, mut config: Config, command: &str) -> anyhow::Result<i32> {
    let symbols = config.symbols.take().context("a [[symbols]] config")?;
    let feed = config.feed.clone();
    let names: Vec<String> = symbols.entries.iter().map(|e| e.budget.symbol.to_string()).collect();
    crate::say!(
        "mmbot {command}: {} ({}), paper trading {} from one account ({}); REST {}",
        feed.stream_url(),
        feed.market.name(),
        names.join(", "),
        if symbols.account.is_some() { "allocator on" } else { "no [account]: symbols independent" },
        feed.rest_url()
    );
    let RunSetup { stop, dir, view, _logs, strategies } = setup(args, &symbols)?;
    let title = format!("mmbot {command} {}", names.join(" "));
    let mode = venue_label(&Source::Live(feed.clone()), &Venue::Paper, &config);
    let run = watched(command, &title, &mode, view, &stop, &config.control, |status| {
        let source = MultiSource::Live(Box::new(feed.clone()));
        run_paper_multi(source, Vec::new(), &symbols, strategies, config.hot_core, stop.clone(), status)
    })?;
    for e in &run.source_errors {
        crate::say!("mmbot {command}: {e}");
    }
    for (g, l) in run.links.iter().enumerate() {
        crate::say!(
            "mmbot {command}: group {g} link: {} connections, {} snapshots received ({} failed)",
            l.connects,
            l.snapshots_received,
            l.snapshots_failed
        );
    }
    let path = dir.join("report.json");
    finish(command, &run.report, Some(&path))?;
    if let Some(extra) = &args.report {
        std::fs::copy(&path, extra).with_context(|| format!("writing {}", extra.display()))?;
    }
    if !run.source_errors.is_empty() || run.links.iter().any(|l| l.connects == 0) {
        return Ok(crate::cli::exit::FEED);
    }
    Ok(exit_status(command, &run.report, &symbols))
}
