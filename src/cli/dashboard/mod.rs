//! The terminal dashboard (ratatui): what an operator watches while the bot
//! runs. It reads only what the threads publish (the hot thread's status
//! snapshot, the exchange side's totals, the stats thread's percentiles), so
//! drawing costs the hot thread nothing.
//!
//! The title says where the market and the orders are (simulator, testnet,
//! mainnet); the book ladder has a mid/spread line between asks and bids; a
//! PnL and inventory panel; the event log (fills, pulls, reloads,
//! disconnects, advice) at the bottom. [`draw`] lays it out for 80x24 and
//! uses larger terminals for more.
//!
//! Keys: `q` quits (quotes are pulled, orders cancelled, the report
//! written), `p` pauses or resumes quoting, `r` reloads the strategy script.

pub mod advisor;
pub mod draw;
pub mod events;
pub mod script;
pub mod symbols;
pub mod tty;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};

use crate::ai::advisor::AdvisorHandle;
use crate::hot::fixed::Qty;
use crate::runtime::Control;
use crate::stats::latency::{Stage, StageHistograms};
use draw::Screen;
use events::{EventKind, Observer};
use tty::{Tty, TtyWatch};

/// What the dashboard reads and where its keys go.
pub struct DashboardInputs {
    /// `mmbot demo BTCUSDT`.
    pub title: String,
    /// `SIMULATOR · paper orders`, `TESTNET · LIVE ORDERS`, ... (see
    /// [`crate::cli::session::venue_label`]).
    pub mode: String,
    pub live: Arc<Mutex<StageHistograms>>,
    pub control: crate::control::ControlSender,
    pub reload: Option<Arc<AtomicBool>>,
    /// The script file `r` reloads.
    pub watched: Option<String>,
    /// The strategy as it started: native, or the script's file and hash.
    pub strategy: String,
    /// The position limit, for the inventory gauge.
    pub max_position: Qty,
    /// The AI advisor, for its label, calls and cost.
    pub advisor: Option<Arc<AdvisorHandle>>,
    pub stop: Arc<AtomicBool>,
    pub finished: Arc<AtomicBool>,
}

/// Runs until the session finishes (after `q`, Ctrl-C or the duration);
/// `obs` reads the snapshots and keeps the event log.
pub fn run(inp: DashboardInputs, obs: &mut Observer) -> io::Result<()> {
    let mut tty = TtyWatch::new()?;
    let mut terminal = ratatui::try_init()?;
    let mut v = Screen {
        title: inp.title.clone(),
        mode: inp.mode.clone(),
        strategy: inp.strategy.clone(),
        watched: inp.watched.clone(),
        max_position: inp.max_position,
        ..Screen::default()
    };
    let started = Instant::now();
    let mut error_rate = script::ErrorRate::default();
    let result = (|| -> io::Result<()> {
        let mut last_draw = Instant::now() - Duration::from_secs(1);
        while !inp.finished.load(Ordering::Relaxed) {
            // crossterm only when a key waits and the terminal is there
            // (tty.rs: it would spin forever on one that hung up).
            match tty.wait(Duration::from_millis(50)) {
                Tty::Gone => return Err(tty::gone()),
                Tty::Input => {
                    while event::poll(Duration::ZERO)? {
                        if let Event::Key(k) = event::read()? {
                            if k.kind == KeyEventKind::Press {
                                key(&inp, obs, &mut v, k);
                                last_draw = Instant::now() - Duration::from_secs(1);
                            }
                        }
                    }
                }
                Tty::Quiet => {}
            }
            // Every pass: the exchange side's snapshots are read one by one.
            obs.poll();
            // The advisor's messages (failures, recoveries) go to the event
            // log: printed, they would scribble over the screen.
            if let Some(a) = &inp.advisor {
                let t = obs.t_s();
                for m in a.drain_messages() {
                    obs.log.push(t, EventKind::Advice, m);
                }
            }
            if last_draw.elapsed() >= Duration::from_millis(250) {
                last_draw = Instant::now();
                if let Some(s) = obs.last_status {
                    v.status = s;
                }
                v.exec = obs.last_exec;
                {
                    let h = inp.live.lock().unwrap_or_else(|p| p.into_inner());
                    v.latency = [Stage::TickToQuote, Stage::Parse, Stage::Book, Stage::Strategy, Stage::Quote]
                        .iter()
                        .map(|&s| {
                            let p = h.percentiles(s);
                            (s.name(), p.count, p.p50, p.p99, p.p999)
                        })
                        .collect();
                }
                v.script = obs.script();
                v.ai = inp.advisor.as_ref().map(|a| a.stats());
                v.elapsed_s = started.elapsed().as_secs();
                v.script_errors_per_min = error_rate.observe(started.elapsed().as_secs_f64(), v.status.script.errors);
                v.now_ns = crate::feed::snapshot::wall_ns();
                // The screen draws the log; the observer keeps adding to it.
                std::mem::swap(&mut v.log, &mut obs.log);
                let drawn = terminal.draw(|f| draw::draw(f, &v));
                std::mem::swap(&mut v.log, &mut obs.log);
                drawn?;
            }
        }
        Ok(())
    })();
    let result = tty::settle(result, &mut tty);
    ratatui::restore();
    // What the advisor said after the last screen: on stderr, now the
    // screen is gone.
    if let Some(a) = &inp.advisor {
        for m in a.drain_messages() {
            crate::say!("mmbot: ai: {m}");
        }
    }
    result
}

fn key(inp: &DashboardInputs, obs: &mut Observer, v: &mut Screen, k: event::KeyEvent) {
    let t = obs.t_s();
    match k.code {
        KeyCode::Char('q') | KeyCode::Esc => {
            v.quitting = true;
            inp.stop.store(true, Ordering::Relaxed);
        }
        KeyCode::Char('c') if k.modifiers.contains(event::KeyModifiers::CONTROL) => {
            v.quitting = true;
            inp.stop.store(true, Ordering::Relaxed);
        }
        KeyCode::Char('p') => {
            v.paused = !v.paused;
            inp.control.send(Control::Pause(v.paused));
        }
        KeyCode::Char('r') => match (&inp.reload, &inp.watched) {
            (Some(r), Some(w)) => {
                r.store(true, Ordering::Relaxed);
                obs.log.push(t, EventKind::Operator, format!("reload of {w} asked"));
            }
            _ => obs.log.push(t, EventKind::Operator, "no script to reload (native strategy)".into()),
        },
        _ => {}
    }
}
