//! A threaded paper-trading session as the commands run it (`demo`, `run`,
//! `paper`, `replay`): the runtime on its threads, the script watcher, a
//! stats thread turning the hot thread's samples into live percentiles and a
//! per-second timeline, and the operator's view on the calling thread: the
//! dashboard when stdout is a terminal, status lines otherwise, or nothing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::ai::advisor::{start_advisor, MarketSnapshot};
use crate::backtest::TimelinePoint;
use crate::cli::dashboard::events::{EventKind, EventLog, Observer};
use crate::cli::dashboard::{self, DashboardInputs};
use crate::config::Config;
use crate::hot::advice::Advice;
use crate::hot::engine::StageSample;
use crate::hot::strategy::NativeStrategy;
use crate::ring::ring;
use crate::runtime::{run_trading, Control, ExecStatus, HotStatus, PaperRun, SideInputs, Source, Venue};
use crate::script::reload::{watch_shared, ReloadEvent};
use crate::script::{print_ring, ScriptStrategy};
use crate::stats::latency::{Stage, StageHistograms};

/// How the operator watches the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Nothing until the end.
    Quiet,
    /// A status line every second.
    Lines,
    /// The terminal dashboard (keys: q quit, p pause, r reload script).
    Dashboard,
}

impl View {
    /// The dashboard on a terminal, status lines elsewhere (pipes, CI).
    pub fn auto(no_dashboard: bool) -> Self {
        use std::io::IsTerminal;
        if !no_dashboard && std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
            View::Dashboard
        } else {
            View::Lines
        }
    }
}

/// What the script thread last said (for the dashboard and the control
/// plane).
pub type ScriptInfo = crate::control::ScriptNote;

/// Runs the paper trader on threads from `source` until it ends or `stop`
/// is set (Ctrl-C, `--duration`, or `q` on the dashboard).
#[allow(clippy::too_many_arguments)]
pub fn run_session(
    source: Source,
    files: Vec<PathBuf>,
    config: &Config,
    script: Option<&PathBuf>,
    view: View,
    stop: Arc<AtomicBool>,
    label: &'static str,
    title: String,
    venue: Venue,
) -> anyhow::Result<PaperRun> {
    run_session_with_events(source, files, config, script, view, stop, label, title, venue).map(|(run, _)| run)
}

/// [`run_session`], also returning the session's event log (fills by side,
/// pulls, reloads, feed events, advice; see [`EventLog`]).
#[allow(clippy::too_many_arguments)]
pub fn run_session_with_events(
    source: Source,
    files: Vec<PathBuf>,
    config: &Config,
    script: Option<&PathBuf>,
    view: View,
    stop: Arc<AtomicBool>,
    label: &'static str,
    title: String,
    venue: Venue,
) -> anyhow::Result<(PaperRun, EventLog)> {
    let mode = venue_label(&source, &venue, config);
    let (status_tx, status_rx) = ring::<HotStatus>(4);
    // Every exchange-side snapshot is read (fills keep their side), so a
    // deeper ring than latest-wins needs.
    let (exec_tx, exec_rx) = ring::<ExecStatus>(64);
    let (control_tx, control_rx) = ring::<Control>(4);
    let control = crate::control::ControlSender::new(control_tx);
    let (samples_tx, mut samples_rx) = ring::<StageSample>(1 << 14);
    let finished = Arc::new(AtomicBool::new(false));
    let live = Arc::new(Mutex::new(StageHistograms::new()));

    // Stats: live percentiles and the per-second timeline, from the samples
    // the hot thread hands over (a full ring drops samples, never waits).
    let stats = {
        let (finished, live) = (finished.clone(), live.clone());
        std::thread::Builder::new().name("mmbot-stats".into()).spawn(move || {
            let started = Instant::now();
            let mut points = Vec::new();
            let mut second = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("static bounds");
            let mut next = Duration::from_secs(1);
            loop {
                let done = finished.load(Ordering::Relaxed);
                {
                    let mut h = live.lock().unwrap_or_else(|p| p.into_inner());
                    while let Some(s) = samples_rx.pop() {
                        second.saturating_record(s.tick_to_quote.max(1));
                        h.record(Stage::TickToQuote, s.tick_to_quote);
                        h.record(Stage::Parse, s.parse);
                        h.record(Stage::Book, s.book);
                        h.record(Stage::Strategy, s.strategy);
                        h.record(Stage::Quote, s.quote);
                    }
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
        })?
    };

    // The AI advisor: its own threads; the hot thread only hands it market
    // snapshots and reads advice, both latest wins.
    let (snap_tx, snap_rx) = ring::<MarketSnapshot>(4);
    let (advice_tx, advice_rx) = ring::<Advice>(4);
    let advisor =
        Arc::new(start_advisor(&config.ai, config.ai_offline, snap_rx, advice_tx, advisor_options(&source, view))?);
    // Live [strategy.params] and native [strategy] settings (script/params.rs).
    let (params_tx, params_rx) = ring::<crate::hot::strategy::StrategyParams>(4);
    let live_params = crate::script::params::SharedParams::new(config.params.clone());
    let journal = match &venue {
        Venue::Live { exchange, .. } => Some((exchange.journal().path().to_path_buf(), exchange.run_id())),
        Venue::Paper => None,
    };
    let side = SideInputs {
        status: Some(status_tx),
        samples: Some(samples_tx),
        exec_status: Some(exec_tx),
        control: Some(control_rx),
        advice: Some(advice_rx),
        market_snapshots: Some(snap_tx),
        params: Some(params_rx),
        ..SideInputs::default()
    };
    let script_info = Arc::new(Mutex::new(ScriptInfo::default()));
    let mut strategy_name = "native (the tutorial's rules)".to_string();
    let mut reload_flag = None;
    let mut watched = None;
    let mut watcher = None;
    let mut script_log = None;
    let mut script_target = None;
    let runner = {
        let config = config.clone();
        let stop = stop.clone();
        let finished = finished.clone();
        match script.or(config.script.as_ref()).cloned() {
            Some(path) => {
                // The script's print/debug lines: a ring, drained to stderr
                // (status-line view) or dropped (dashboard: it owns the screen).
                let (lines_tx, mut lines_rx) = print_ring();
                let done = finished.clone();
                std::thread::spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        while let Some(line) = lines_rx.pop() {
                            if view != View::Dashboard {
                                crate::say!("script: {}", line.as_str());
                            }
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                });
                let mut s = ScriptStrategy::from_file_with_output(
                    &path,
                    &config.params,
                    &config.script_limits,
                    Some(lines_tx),
                )?;
                // Live and paper runs act on a tripped time budget (revert, or
                // pull; the reload check holds new versions to it), but a
                // debug build only counts: see script::budget.
                s.set_budget(config.script_budget, crate::script::budget::BudgetMode::for_build());
                s.set_levels(config.strategy_levels);
                let info = script_info.clone();
                let (w, reload) =
                    watch_shared(path.clone(), s.script().hash, config.script_limits, live_params.clone(), move |ev| {
                        let text = match ev {
                            ReloadEvent::Loaded { path, hash, not_compiled } => match not_compiled {
                                None => format!("{} reloaded (fnv1a {hash:016x}), compiled", path.display()),
                                Some(why) => {
                                    format!("{} reloaded (fnv1a {hash:016x}), interpreted: {why}", path.display())
                                }
                            },
                            ReloadEvent::Refused(e) => {
                                format!("change refused, still running the last good version: {e}")
                            }
                        };
                        // To stderr (without the dashboard) and to mmbot.log.
                        tracing::info!(target: "mmbot::script", "script {text}");
                        let mut i = info.lock().unwrap_or_else(|p| p.into_inner());
                        i.reloads += 1;
                        i.last_event = Some(text);
                    });
                s.attach_reload(reload);
                // Errors, wrong-shaped outputs, reverts, reloads: logged,
                // rate-limited, by a thread of their own (never the hot one).
                let (events_tx, events_rx) = crate::script::health::event_ring();
                s.attach_events(events_tx);
                script_log =
                    Some(crate::script::health::spawn_logger(path.display().to_string(), events_rx, finished.clone())?);
                strategy_name = crate::hot::strategy::Strategy::name(&s).to_string();
                reload_flag = Some(w.reload_handle());
                script_target = Some(crate::control::ScriptTarget {
                    path: path.clone(),
                    limits: config.script_limits,
                    params: live_params.clone(),
                    max_call_ns: config.script_budget.max_call_ns,
                    reload: w.reload_handle(),
                });
                watched = Some(path.display().to_string());
                watcher = Some(w);
                std::thread::Builder::new().name("mmbot-session".into()).spawn(move || {
                    let _done = Finished(finished);
                    run_trading(source, files, &config, s, stop, side, venue)
                })?
            }
            None => std::thread::Builder::new().name("mmbot-session".into()).spawn(move || {
                let _done = Finished(finished);
                run_trading(source, files, &config, NativeStrategy, stop, side, venue)
            })?,
        }
    };

    let info = script_info.clone();
    let params_watcher = crate::script::params::watch_session(
        config,
        script.or(config.script.as_ref()).cloned(),
        live_params,
        params_tx,
        journal,
        move |line| info.lock().unwrap_or_else(|p| p.into_inner()).last_event = Some(line),
    );
    let mut obs = Observer::new(status_rx, exec_rx, script_info.clone());
    let plane = crate::cli::control_plane::ControlPlane::start(
        config,
        label,
        crate::cli::control_plane::PlaneInputs {
            title: title.clone(),
            mode: mode.clone(),
            symbol: config.hot.symbol.map_or_else(String::new, |s| s.to_string()),
            max_position: config.hot.guard.max_position,
            histograms: live.clone(),
            advisor: Some(advisor.clone()),
            script_note: script_info,
            control: control.clone(),
            stop: stop.clone(),
            params: Some(params_watcher.editor()),
            script_file: script_target.as_ref().map(|t: &crate::control::ScriptTarget| t.path.clone()),
            script: script_target,
        },
    );
    let plane = match plane {
        Ok(p) => p,
        Err(e) => {
            // Nothing traded yet that the stop would not settle.
            stop.store(true, Ordering::Relaxed);
            let _ = runner.join();
            return Err(e.context("starting the control plane ([control])"));
        }
    };
    let plane = plane.map(|(plane, tap)| {
        obs.set_tap(tap);
        plane
    });
    match view {
        View::Dashboard => {
            let inputs = DashboardInputs {
                title,
                mode,
                live: live.clone(),
                control: control.clone(),
                reload: reload_flag,
                watched,
                strategy: strategy_name,
                max_position: config.hot.guard.max_position,
                advisor: Some(advisor.clone()),
                stop: stop.clone(),
                finished: finished.clone(),
            };
            if let Err(e) = dashboard::run(inputs, &mut obs) {
                // The run goes on without a screen; it still ends as asked.
                // A terminal that went away gets nothing more: the dashboard
                // pointed stdout and stderr at /dev/null (a write to it fails,
                // and `eprintln!` would panic); the log file keeps the log.
                if crate::cli::dashboard::tty::is_gone(&e) {
                    tracing::warn!("mmbot {label}: the terminal went away; continuing without a screen");
                } else {
                    crate::say!("mmbot {label}: dashboard failed ({e}); continuing without it");
                }
                while !finished.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                    obs.poll();
                    // The advisor queues its messages for the dashboard.
                    for m in advisor.drain_messages() {
                        crate::say!("mmbot: ai: {m}");
                    }
                }
            }
        }
        View::Lines => {
            crate::say!("{title} · {mode}");
            let mut printed = 0;
            while !finished.load(Ordering::Relaxed) {
                let tick = Instant::now();
                let mut fresh = false;
                while tick.elapsed() < Duration::from_secs(1) && !finished.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                    fresh |= obs.poll();
                    // The events as they come (the log keeps the last few
                    // hundred; `total` counts them all).
                    let new = obs.log.total - printed;
                    let kept = obs.log.recent().len() as u64;
                    // Feed events are logged (stderr too) by the feed
                    // logger, reloads by the watcher: not twice.
                    for e in obs.log.recent().skip(kept.saturating_sub(new) as usize) {
                        if !matches!(e.kind, EventKind::Feed | EventKind::Reload) {
                            crate::say!("  {label}: {}", e.line().trim_start());
                        }
                    }
                    printed = obs.log.total;
                }
                if let (true, Some(s)) = (fresh, &obs.last_status) {
                    let ai = crate::cli::dashboard::advisor::advisor_text(&advisor.stats());
                    crate::say!("  {label}: {}; {ai}", status_line(s));
                }
            }
        }
        View::Quiet => {
            // Still one log line per feed event.
            while !finished.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
                obs.poll();
            }
        }
    }
    let mut run = runner.join().map_err(|_| anyhow::anyhow!("the session thread panicked"))?;
    if let Some(h) = script_log {
        // Its last summary lines, before the run's own summary.
        let _ = h.join();
    }
    drop(watcher);
    drop(params_watcher);
    run.report.perf.timeline = stats.join().unwrap_or_default();
    let ai = advisor.stats();
    run.report.trading.advice = ai.label.clone();
    run.report.trading.advice_updates = ai.ok;
    run.report.ai = Some(ai.to_json());
    crate::cli::dashboard::advisor::add_net_of_ai(&mut run.report, &ai);
    // What arrived after the view's last look.
    obs.poll();
    if let Some(p) = plane {
        // The tap shares the alert sender: released first, so the sender
        // can be finished (the stop alert flushed) here.
        drop(obs.take_tap());
        let why = match &run.live {
            Some(l) => format!("{label} ended: {}", l.stop),
            None => format!("{label} ended"),
        };
        p.finish(&why);
    }
    Ok((run, obs.log))
}

/// How the advisor runs beside this session: in the recording's time at
/// `--speed N` (an unpaced replay's time moves only with its snapshots:
/// speed 0), and printing its messages unless the dashboard owns the screen
/// (it drains them instead).
fn advisor_options(source: &Source, view: View) -> crate::ai::advisor::AdvisorOptions {
    let speed = match source {
        Source::Recording(r) => r.speed().unwrap_or(0.0),
        Source::Live(_) => 1.0,
    };
    crate::ai::advisor::AdvisorOptions { speed, print: view != View::Dashboard }
}

/// Where the market data comes from and where orders go, for titles:
/// `SIMULATOR · paper orders`, `MAINNET feed · paper orders`,
/// `TESTNET · LIVE ORDERS`, `REPLAY of a recording · paper orders`. The first
/// word is the one the dashboard colours.
fn is_local(url: &str) -> bool {
    ["://127.0.0.1", "://localhost", "://[::1]"].iter().any(|h| url.contains(h))
}

/// Where live orders go, for the dashboard's header.
pub fn live_venue_label(config: &Config) -> String {
    let where_ = match &config.live {
        Some(l) if is_local(&l.rest_url) => "SIMULATOR (a local exchange)",
        Some(l) if l.mode == crate::exec::journal::RunMode::Live => "MAINNET",
        _ => "TESTNET",
    };
    format!("{where_} · LIVE ORDERS")
}

pub fn venue_label(source: &Source, venue: &Venue, config: &Config) -> String {
    match venue {
        Venue::Live { .. } => live_venue_label(config),
        Venue::Paper => match source {
            Source::Recording(_) => "REPLAY of a recording · paper orders".into(),
            Source::Live(feed) => {
                let where_ = if feed.stream_url.as_deref().is_some_and(is_local) {
                    "SIMULATOR"
                } else if feed.market == crate::feed::endpoint::FeedMarket::SpotTestnet {
                    "TESTNET feed"
                } else {
                    "MAINNET feed"
                };
                format!("{where_} · paper orders")
            }
        },
    }
}

/// Raises the session's `finished` flag when the run ends, also by a
/// panic, so the view and the stats thread never wait forever.
struct Finished(Arc<AtomicBool>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// `synced`, or `unsynced (gap) 2.1 s`: why the traded book is unsynced and
/// for how long (`now_ns` wall clock).
pub fn sync_text(s: &HotStatus, now_ns: i64) -> String {
    if s.synced {
        return "synced".into();
    }
    if s.sync_since_ns == 0 {
        return "unsynced".into();
    }
    let secs = now_ns.saturating_sub(s.sync_since_ns).max(0) as f64 / 1e9;
    format!("unsynced ({}) {secs:.1} s", s.unsynced_cause.name())
}

/// One status line.
pub fn status_line(s: &HotStatus) -> String {
    let quote = s.last_quote.map_or("none".to_string(), |q| {
        let side = |l: Option<crate::hot::msg::Level>| l.map_or("-".to_string(), |l| format!("{}@{}", l.qty, l.price));
        format!("bid {} ask {}", side(q.bid), side(q.ask))
    });
    format!(
        "{}{}{}, {} frames, {} quotes ({} pulled), position {}, gaps {}, rejected {}; last quote {quote}",
        if s.connected { "" } else { "(reconnecting) " },
        if s.paused { "(paused) " } else { "" },
        sync_text(s, crate::feed::snapshot::wall_ns()),
        s.frames,
        s.quotes,
        s.pulled,
        s.position,
        s.gaps,
        s.rejected
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::health::UnsyncedCause;

    #[test]
    fn the_status_says_why_the_book_is_unsynced_and_for_how_long() {
        let mut s = HotStatus { synced: true, connected: true, ..HotStatus::default() };
        assert_eq!(sync_text(&s, 5_000_000_000), "synced");
        s.synced = false;
        s.unsynced_cause = UnsyncedCause::Gap;
        s.sync_since_ns = 3_000_000_000;
        assert_eq!(sync_text(&s, 5_100_000_000), "unsynced (gap) 2.1 s");
        s.unsynced_cause = UnsyncedCause::Disconnect(crate::feed::connector::Reason::NoPong);
        assert!(status_line(&s).starts_with("unsynced (ping not answered)"), "{}", status_line(&s));
    }
}
