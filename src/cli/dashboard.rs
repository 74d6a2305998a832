//! The terminal dashboard (ratatui): what an operator watches while the bot
//! runs. It reads only what the threads publish (the hot thread's status
//! snapshot, the exchange side's totals, the stats thread's percentiles), so
//! drawing costs the hot thread nothing.
//!
//! Keys: `q` quits (quotes are pulled, orders cancelled, the report
//! written), `p` pauses or resumes quoting, `r` reloads the strategy script.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;

use crate::ai::advisor::{AdvisorHandle, AdvisorStats};
use crate::cli::session::ScriptInfo;
use crate::hot::advice::AdviceSource;
use crate::hot::fixed::Price;
use crate::hot::msg::Level;
use crate::ring::{Consumer, Producer};
use crate::runtime::{Control, ExecStatus, HotStatus};
use crate::stats::latency::{Stage, StageHistograms};
use crate::stats::plot::fmt_ns;

/// What the dashboard reads and where its keys go.
pub struct DashboardInputs {
    pub title: String,
    pub status: Consumer<HotStatus>,
    pub exec: Consumer<ExecStatus>,
    pub live: Arc<Mutex<StageHistograms>>,
    pub control: Producer<Control>,
    pub reload: Option<Arc<AtomicBool>>,
    pub script: Arc<Mutex<ScriptInfo>>,
    /// The strategy as it started: native, or the script's file and hash.
    pub strategy: String,
    /// The AI advisor, for its label, calls and cost.
    pub advisor: Option<Arc<AdvisorHandle>>,
    pub stop: Arc<AtomicBool>,
    pub finished: Arc<AtomicBool>,
}

/// Everything drawn, as last read.
#[derive(Default)]
struct View {
    title: String,
    strategy: String,
    status: HotStatus,
    exec: ExecStatus,
    latency: Vec<(&'static str, u64, u64, u64, u64)>,
    script: ScriptInfo,
    ai: Option<AdvisorStats>,
    paused: bool,
    quitting: bool,
    started: Option<Instant>,
    /// One log line (to the log file) per disconnect, gap, resync, mismatch.
    feed_log: crate::feed::health::FeedLogger,
}

/// Runs until the session finishes (after `q`, Ctrl-C or the duration).
pub fn run(mut inp: DashboardInputs) -> io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let mut v = View {
        title: inp.title.clone(),
        strategy: inp.strategy.clone(),
        started: Some(Instant::now()),
        ..View::default()
    };
    let result = (|| -> io::Result<()> {
        let mut last_draw = Instant::now() - Duration::from_secs(1);
        while !inp.finished.load(Ordering::Relaxed) {
            if event::poll(Duration::from_millis(50))? {
                if let Event::Key(k) = event::read()? {
                    if k.kind == KeyEventKind::Press {
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
                                inp.control.push_latest(Control::Pause(v.paused));
                            }
                            KeyCode::Char('r') => {
                                if let Some(r) = &inp.reload {
                                    r.store(true, Ordering::Relaxed);
                                }
                            }
                            _ => {}
                        }
                        last_draw = Instant::now() - Duration::from_secs(1);
                    }
                }
            }
            if last_draw.elapsed() >= Duration::from_millis(250) {
                last_draw = Instant::now();
                if let Some(s) = inp.status.latest() {
                    v.feed_log.update(s.feed, s.synced);
                    v.status = s;
                }
                if let Some(e) = inp.exec.latest() {
                    v.exec = e;
                }
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
                v.script = inp.script.lock().unwrap_or_else(|p| p.into_inner()).clone();
                v.ai = inp.advisor.as_ref().map(|a| a.stats());
                terminal.draw(|f| draw(f, &v))?;
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}

fn level_text(l: Level) -> (String, String) {
    (l.price.to_string(), l.qty.to_string())
}

fn draw(f: &mut Frame<'_>, v: &View) {
    let s = &v.status;
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(3), Constraint::Min(14), Constraint::Length(8), Constraint::Length(1)])
        .split(f.area());

    // Header: what runs and the feed's state.
    let feed = format!(
        "{} {} id {} | frames {} rejected {} | gaps {} resyncs {} | pulled stale {} sync {} | connections {}",
        if s.connected { "connected" } else { "RECONNECTING" },
        crate::cli::session::sync_text(s, crate::feed::snapshot::wall_ns()),
        s.update_id,
        s.frames,
        s.rejected,
        s.gaps,
        s.resyncs,
        s.pulled_stale,
        s.pulled_on_sync_loss,
        s.connects
    );
    let elapsed = v.started.map_or(0, |t| t.elapsed().as_secs());
    let mode = if v.quitting {
        " QUITTING: pulling quotes, writing the report "
    } else if v.paused || s.paused {
        " PAUSED "
    } else {
        ""
    };
    let header = Paragraph::new(vec![Line::from(vec![
        Span::styled(format!("{} ", v.title), Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(format!("{:02}:{:02}:{:02} ", elapsed / 3600, elapsed / 60 % 60, elapsed % 60)),
        Span::styled(mode, Style::default().fg(Color::Black).bg(Color::Yellow)),
    ])])
    .block(Block::default().borders(Borders::ALL).title(Span::raw(feed)));
    f.render_widget(header, rows[0]);

    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Length(46), Constraint::Min(40)])
        .split(rows[1]);

    // Ladder: asks above (best at the bottom), bids below, own orders marked.
    let own_bid = s.working.bid;
    let own_ask = s.working.ask;
    let mut ladder: Vec<Row<'_>> = Vec::new();
    let mark = |price: Price, own: Option<Level>| match own {
        Some(o) if o.price == price => format!("<- own {}", o.qty),
        _ => String::new(),
    };
    let asks: Vec<Level> = s.asks.iter().flatten().copied().collect();
    if let Some(o) = own_ask.filter(|o| asks.iter().all(|l| l.price != o.price)) {
        if asks.last().is_none_or(|l| o.price > l.price) {
            ladder.push(
                Row::new(vec![o.price.to_string(), String::new(), format!("<- own {}", o.qty)])
                    .style(Style::default().fg(Color::Magenta)),
            );
        }
    }
    for l in asks.iter().rev() {
        let (p, q) = level_text(*l);
        ladder.push(Row::new(vec![p, q, mark(l.price, own_ask)]).style(Style::default().fg(Color::Red)));
    }
    let bids: Vec<Level> = s.bids.iter().flatten().copied().collect();
    for l in &bids {
        let (p, q) = level_text(*l);
        ladder.push(Row::new(vec![p, q, mark(l.price, own_bid)]).style(Style::default().fg(Color::Green)));
    }
    if let Some(o) = own_bid.filter(|o| bids.iter().all(|l| l.price != o.price)) {
        if bids.last().is_none_or(|l| o.price < l.price) {
            ladder.push(
                Row::new(vec![o.price.to_string(), String::new(), format!("<- own {}", o.qty)])
                    .style(Style::default().fg(Color::Magenta)),
            );
        }
    }
    let ladder = Table::new(ladder, [Constraint::Length(16), Constraint::Length(14), Constraint::Min(12)])
        .header(Row::new(vec!["price", "qty", "own"]).style(Style::default().add_modifier(Modifier::BOLD)))
        .block(Block::default().borders(Borders::ALL).title("book (top 10)"));
    f.render_widget(ladder, cols[0]);

    // Quote, explanation, position, advice, script.
    let e = &s.explain;
    let d = &s.decision;
    let intent = |i: Option<crate::hot::strategy::SideIntent>| {
        i.map_or("-".to_string(), |i| format!("{:.6} @ {:.4}", i.size, i.price))
    };
    let q = s.last_quote;
    let side = |l: Option<Level>| l.map_or("-".to_string(), |l| format!("{} @ {}", l.qty, l.price));
    let a = &s.advice;
    let age_s = if a.received_ns > 0 {
        format!("{:.1} s", (crate::feed::snapshot::wall_ns() - a.received_ns) as f64 / 1e9)
    } else {
        "-".into()
    };
    let source = match a.source {
        AdviceSource::Llm => "LLM",
        AdviceSource::Offline => "offline",
        AdviceSource::None => "none (neutral)",
    };
    let info = vec![
        Line::from(Span::styled("last quote", Style::default().add_modifier(Modifier::BOLD))),
        Line::from(format!("  bid {}   ask {}", side(q.and_then(|q| q.bid)), side(q.and_then(|q| q.ask)))),
        if e.dynamic_spread_pct > 0.0 {
            Line::from(format!(
                "  base {:.4}% x spread {:.2} x vol {:.2} x dir {:.2} = {:.4}% of mid; half spread {:.4}",
                e.base_spread_pct, e.spread_mult, e.vol_mult, e.dir_mult, e.dynamic_spread_pct, e.half_spread
            ))
        } else {
            Line::from("  spread from the script's own rules (it reports no multipliers)")
        },
        Line::from(format!(
            "  strategy asked: bid {}  ask {}{}",
            intent(d.bid),
            intent(d.ask),
            if d.pull { "  (pull)" } else { "" }
        )),
        Line::from("  the guard then rounds to tick and step, keeps post-only, min/max spread and the position limit"),
        Line::from(""),
        Line::from(Span::styled("position", Style::default().add_modifier(Modifier::BOLD))),
        Line::from(format!(
            "  {}  pnl {}  fees {}  volume {}  fills {}  orders {}  cancels {}",
            v.exec.position,
            Price(v.exec.pnl),
            Price(v.exec.fees),
            Price(v.exec.volume),
            v.exec.fills,
            v.exec.orders,
            v.exec.cancels
        )),
        if v.exec.live {
            Line::from(Span::styled(
                format!(
                    "  LIVE ORDERS{}: {} refused before sending, {} rejected by the exchange, {} unknown fates \
                     ({} lookups), {} in flight; order rtt p50 {:.1} ms p99 {:.1} ms",
                    if v.exec.stopped { " (STOPPED: cancelling, see the log)" } else { "" },
                    v.exec.refused,
                    v.exec.rejected,
                    v.exec.unknown_fates,
                    v.exec.lookups,
                    v.exec.in_flight,
                    v.exec.place_rtt_p50 as f64 / 1e6,
                    v.exec.place_rtt_p99 as f64 / 1e6
                ),
                Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            ))
        } else {
            Line::from("  paper trading: no real orders")
        },
        Line::from(""),
        Line::from(Span::styled("advice", Style::default().add_modifier(Modifier::BOLD))),
        Line::from(format!(
            "  {source}: spread {:?}, volatility {:?}, direction {:?}, confidence {}, multiplier {:.2}, age {age_s}",
            a.spread, a.volatility, a.direction, a.confidence, a.multiplier
        )),
        Line::from(match &v.ai {
            Some(ai) => format!(
                "  {}: {} calls ({} ok, {} failed, {} unparseable, {} skipped busy); cost today ${:.4}, month ~${}{}",
                ai.label,
                ai.calls,
                ai.ok,
                ai.failed,
                ai.unparseable,
                ai.skipped_busy,
                ai.cost_today_usd,
                ai.projected_month_usd.map_or("-".to_string(), |m| format!("{m:.2}")),
                ai.last_error.as_ref().map_or(String::new(), |e| format!("; last error: {e}"))
            ),
            None => "  no advisor".to_string(),
        }),
        Line::from(""),
        Line::from(Span::styled("strategy", Style::default().add_modifier(Modifier::BOLD))),
        Line::from(format!("  {}", v.strategy.rsplit('/').next().unwrap_or_default())),
        Line::from(format!(
            "  reloads {}; {}",
            v.script.reloads,
            v.script.last_event.as_deref().unwrap_or("running the version it started with")
        )),
    ];
    f.render_widget(
        Paragraph::new(info)
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(Block::default().borders(Borders::ALL).title("quote")),
        cols[1],
    );

    // Latency.
    let lat: Vec<Row<'_>> = v
        .latency
        .iter()
        .map(|&(name, count, p50, p99, p999)| {
            Row::new(vec![
                name.to_string(),
                count.to_string(),
                fmt_ns(p50 as f64),
                fmt_ns(p99 as f64),
                fmt_ns(p999 as f64),
            ])
        })
        .collect();
    let lat = Table::new(
        lat,
        [
            Constraint::Length(15),
            Constraint::Length(10),
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Length(12),
        ],
    )
    .header(
        Row::new(vec!["stage", "count", "p50", "p99", "p99.9"]).style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::default().borders(Borders::ALL).title("latency"));
    f.render_widget(lat, rows[2]);

    f.render_widget(
        Paragraph::new("q quit   p pause/resume quoting   r reload script").style(Style::default().fg(Color::Cyan)),
        rows[3],
    );
}
