//! Starts the control plane (`src/control`) beside a trading session and
//! feeds it: the session's view loop hands every read of the snapshots to
//! the [`Tap`] built here, which publishes them on the board, numbers the
//! event log's new lines for the stream, brings the API's operator actions
//! into the event log, and runs the alert watch.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::ai::advisor::AdvisorHandle;
use crate::cli::dashboard::events::{EventKind, Tap};
use crate::config::control::parse_listen;
use crate::config::Config;
use crate::control::alerts::{AlertWatch, Notifier};
use crate::control::token::{Token, TokenSource};
use crate::control::{
    Board, Commands, ControlSender, ControlServer, ScriptNote, ScriptTarget, ServerSettings, Sources,
};
use crate::hot::fixed::Qty;
use crate::script::params::edit::ParamsEditor;
use crate::stats::latency::StageHistograms;

/// `--control`, `--control-insecure` (and `--no-control` for the demo).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ControlArgs {
    /// Serve the web dashboard, the control API and /metrics here
    /// (`host:port`; port 0: any free port). Overrides `[control] listen`.
    #[arg(long, value_name = "ADDR")]
    pub control: Option<String>,
    /// Allow a control address beyond loopback without TLS.
    #[arg(long)]
    pub control_insecure: bool,
}

impl ControlArgs {
    /// Applies the flags to `config` (`[control]`).
    pub fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        if let Some(a) = &self.control {
            config.control.listen = Some(parse_listen("--control", a)?);
        }
        if self.control_insecure {
            config.control.insecure = true;
        }
        Ok(())
    }
}

/// What the session hands over to start the control plane.
pub struct PlaneInputs {
    pub title: String,
    pub mode: String,
    pub symbol: String,
    pub max_position: Qty,
    pub histograms: Arc<Mutex<StageHistograms>>,
    pub advisor: Option<Arc<AdvisorHandle>>,
    pub script_note: Arc<Mutex<ScriptNote>>,
    pub control: ControlSender,
    pub stop: Arc<AtomicBool>,
    pub params: Option<ParamsEditor>,
    pub script: Option<ScriptTarget>,
    pub script_file: Option<PathBuf>,
}

/// The running control plane (server and alert sender).
pub struct ControlPlane {
    board: Arc<Board>,
    server: Option<ControlServer>,
    notifier: Option<Arc<Notifier>>,
}

impl ControlPlane {
    /// Starts what `[control]` and `[alerts]` ask for (`None`: neither),
    /// and returns the tap the session's observer calls.
    pub fn start(config: &Config, label: &str, inp: PlaneInputs) -> anyhow::Result<Option<(Self, Tap)>> {
        let alerts_on = config.alerts.enabled();
        if config.control.listen.is_none() && !alerts_on {
            return Ok(None);
        }
        let board = Board::new(Sources {
            title: inp.title,
            mode: inp.mode,
            symbol: inp.symbol,
            max_position: inp.max_position,
            script_file: inp.script_file,
            histograms: inp.histograms,
            advisor: inp.advisor.clone(),
            script_note: inp.script_note,
        });
        let server = match config.control.listen {
            None => None,
            Some(listen) => {
                let token = Token::load(&config.control.token_env, std::path::Path::new(".env"))?;
                let commands = Commands {
                    control: inp.control,
                    stop: inp.stop,
                    params: inp.params,
                    param_bounds: config.control.param_bounds.clone(),
                    script: inp.script,
                    advisor: inp.advisor.clone(),
                    ai_interval_s: config.control.ai_interval_s,
                };
                let server = ControlServer::start(
                    ServerSettings::from_config(&config.control, listen),
                    token.clone(),
                    board.clone(),
                    commands,
                )?;
                banner(label, server.addr(), &token);
                Some(server)
            }
        };
        let notifier = alerts_on.then(|| Arc::new(Notifier::start(&config.alerts)));
        let symbol = board.sources.symbol.clone();
        let mut watch = alerts_on.then(|| AlertWatch::new(&config.alerts, &symbol, inp.max_position));
        let tap_board = board.clone();
        let tap_notifier = notifier.clone();
        let advisor = inp.advisor;
        let mut seen = 0u64;
        let mut last_watch = f64::NEG_INFINITY;
        let tap: Tap = Box::new(move |log, hot, exec, t| {
            for line in tap_board.take_operator_notes() {
                log.push(t, EventKind::Operator, line);
            }
            tap_board.publish(hot, exec);
            // The log's new lines, numbered for the stream.
            let new = log.total.saturating_sub(seen) as usize;
            let kept = log.recent().len();
            for e in log.recent().skip(kept.saturating_sub(new)) {
                tap_board.push(e.t_s, "event", serde_json::to_value(e).unwrap_or_default());
            }
            seen = log.total;
            if let (Some(w), Some(n)) = (&mut watch, &tap_notifier) {
                if t - last_watch >= 0.25 {
                    last_watch = t;
                    let ai = advisor.as_ref().map(|a| a.stats());
                    for a in w.observe(t, hot, exec, ai.as_ref()) {
                        tap_board.push(t, "alert", json!({"kind": a.kind.name(), "text": a.text}));
                        log.push(t, EventKind::Alert, format!("{}: {}", a.kind.name(), a.text));
                        n.notify(a);
                    }
                }
            }
        });
        Ok(Some((Self { board, server, notifier }, tap)))
    }

    /// The run ended: the last alert goes out, the server stops.
    pub fn finish(self, reason: &str) {
        self.board.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(n) = self.notifier {
            let alert = crate::control::alerts::stopped(&self.board.sources.symbol, reason);
            n.notify(alert);
            match Arc::try_unwrap(n) {
                Ok(n) => {
                    // What each target got, for the operator (named by
                    // `name` or format and host: never a URL or a token).
                    for t in n.finish_with_stats(Duration::from_secs(5)).targets {
                        let why = t.last_error.map(|e| format!("; last failure: {e}")).unwrap_or_default();
                        crate::say!(
                            "alerts: {}: {} sent, {} failed, {} held back by the rate limits, {} dropped{why}",
                            t.name,
                            t.sent,
                            t.failed,
                            t.suppressed,
                            t.dropped
                        );
                    }
                }
                // Not expected: the session releases the tap first. The
                // sender then ends when its last holder drops it.
                Err(_) => tracing::warn!("alerts: the sender is still shared; the stop alert may not go out"),
            }
        }
        drop(self.server);
    }
}

/// Where the control plane listens and how to get in. The token itself is
/// shown only when it was generated (once, on stderr, never in the log).
pub(crate) fn banner(label: &str, addr: SocketAddr, token: &Token) {
    match &token.source {
        TokenSource::Env(var) => crate::say!("control: http://{addr}/ (token: ${var})"),
        TokenSource::Generated => {
            crate::say!("control: http://{addr}/ (token generated for this run, shown once; set $MMBOT_CONTROL_TOKEN to choose one)");
            crate::say!("control: open http://{addr}/#token={}", token.reveal());
        }
    }
    tracing::info!(target: "mmbot::control", "mmbot {label}: control plane on http://{addr}/");
}
