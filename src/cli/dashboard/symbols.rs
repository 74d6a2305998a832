//! The symbols dashboard of a multi-symbol run (`[[symbols]]`, `mmbot demo
//! --symbols N`): a table of every symbol (mid, spread, own orders,
//! position, PnL, fills, allocator refusals, status) and a detail view of
//! the selected one (its working orders level by level, its counts), with
//! the account's totals per quote asset and its kill switch. Drawn from a
//! [`MultiStatus`] the exec thread publishes, so drawing costs the hot
//! threads nothing; the same data makes the status lines printed when
//! there is no terminal ([`lines`]).
//!
//! Keys: up/down (or k/j) select a symbol, `q` quits (quotes are pulled,
//! the report written).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::tty::{Tty, TtyWatch};
use crate::exec::paper::{WorkingOrder, QUEUE_UNKNOWN};
use crate::exec::Side;
use crate::hot::fixed::{Price, Qty};
use crate::runtime::multi_status::{MultiStatus, SharedStatus, SymbolRow, SymbolState};

/// Everything drawn, as last read.
#[derive(Debug, Clone, Default)]
pub struct SymbolsScreen {
    /// `mmbot demo --symbols 3`.
    pub title: String,
    /// `SIMULATOR · paper orders`, `REPLAY · paper orders`, ...
    pub mode: String,
    pub status: MultiStatus,
    /// The row whose detail is shown.
    pub selected: usize,
    pub quitting: bool,
}

const BOLD: Style = Style::new().add_modifier(Modifier::BOLD);

fn price(p: Option<Price>) -> String {
    p.map_or("-".into(), |p| p.to_string())
}

/// A side's own orders: the best one (with its size when `sized`) and how
/// many levels stand behind it.
fn own(r: &SymbolRow, side: Side, sized: bool) -> String {
    let mut it = r.working.iter().filter(|o| o.side == side);
    let Some(best) = it.next() else { return "-".into() };
    let best = if sized { format!("{}@{}", best.qty, best.price) } else { best.price.to_string() };
    match it.count() {
        0 => best,
        n => format!("{best} +{n}"),
    }
}

fn state_style(s: SymbolState) -> Style {
    match s {
        SymbolState::Quoting => Style::new().fg(Color::Green),
        SymbolState::Pulled | SymbolState::Waiting => Style::new().fg(Color::Yellow),
        SymbolState::Killed => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

/// Draws the table, the selected symbol's detail and the totals.
pub fn draw(f: &mut Frame<'_>, v: &SymbolsScreen) {
    let rows_h = v.status.rows.len() as u16 + 3;
    let parts = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(2), Constraint::Length(rows_h), Constraint::Min(4), Constraint::Length(1)])
        .split(f.area());
    let s = &v.status;
    let head = vec![
        Line::from(vec![
            Span::styled(v.title.clone(), BOLD),
            Span::raw(format!("  ·  {}  ·  {:.0} s", v.mode, s.elapsed_s)),
        ]),
        Line::from(match &s.killed {
            Some(k) => Span::styled(format!("KILLED: {k}"), state_style(SymbolState::Killed)),
            None => Span::raw(format!(
                "{} symbols, allocator {}",
                s.rows.len(),
                if s.allocator { "on ([account])" } else { "off (symbols independent)" }
            )),
        }),
    ];
    f.render_widget(Paragraph::new(head), parts[0]);

    // From 120 columns every column; narrower, own orders by price only and
    // the counts left to the detail view.
    let wide = f.area().width >= 120;
    let header: Vec<&str> = if wide {
        vec!["symbol", "mid", "spread", "own bid", "own ask", "position", "pnl", "fills", "refused", "status"]
    } else {
        vec!["symbol", "mid", "own bid", "own ask", "position", "pnl", "status"]
    };
    let rows = s.rows.iter().enumerate().map(|(i, r)| {
        let cells = if wide {
            vec![
                r.symbol.to_string(),
                price(r.mid()),
                r.spread_bps().map_or("-".into(), |b| format!("{b:.2} bps")),
                own(r, Side::Buy, true),
                own(r, Side::Sell, true),
                r.position.to_string(),
                format!("{} {}", Price(r.pnl), r.quote_asset),
                r.fills.to_string(),
                r.refused.to_string(),
            ]
        } else {
            vec![
                r.symbol.to_string(),
                price(r.mid()),
                own(r, Side::Buy, false),
                own(r, Side::Sell, false),
                r.position.to_string(),
                Price(r.pnl).to_string(),
            ]
        };
        // The status cell in its state's colour.
        let status = Cell::from(r.state.name()).style(state_style(r.state));
        let row = Row::new(cells.into_iter().map(Cell::from).chain([status]));
        if i == v.selected {
            row.style(Style::new().add_modifier(Modifier::REVERSED))
        } else {
            row
        }
    });
    let widths: Vec<Constraint> = if wide {
        [10, 12, 10, 20, 20, 10, 16, 6, 8, 8].into_iter().map(Constraint::Length).collect()
    } else {
        [9, 10, 12, 12, 9, 12, 8].into_iter().map(Constraint::Length).collect()
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(BOLD))
        .block(Block::default().borders(Borders::ALL).title("symbols"));
    f.render_widget(table, parts[1]);

    f.render_widget(Paragraph::new(detail(v)).block(Block::default().borders(Borders::ALL).title("detail")), parts[2]);
    f.render_widget(Paragraph::new("up/down select · q quit"), parts[3]);
}

/// The selected symbol's orders level by level, its counts, and the
/// account's totals.
fn detail(v: &SymbolsScreen) -> Vec<Line<'static>> {
    let s = &v.status;
    let mut out = Vec::new();
    if let Some(r) = s.rows.get(v.selected) {
        out.push(Line::from(vec![
            Span::styled(r.symbol.to_string(), BOLD),
            Span::raw(format!(
                "  {} quotes · {} orders · {} fills · fees {} {} · {} refused  ",
                r.quotes,
                r.orders,
                r.fills,
                Price(r.fees),
                r.quote_asset,
                r.refused
            )),
            Span::styled(r.state.name(), state_style(r.state)),
        ]));
        let (bids, asks): (Vec<_>, Vec<_>) = r.working.iter().partition(|o| o.side == Side::Buy);
        for i in 0..bids.len().max(asks.len()) {
            let cell = |o: Option<&&WorkingOrder>| {
                o.map_or("-".to_string(), |o| format!("{}@{} (q {})", o.qty, o.price, queue(o.queue_ahead)))
            };
            out.push(Line::raw(format!("  level {}: bid {:<28} ask {}", i + 1, cell(bids.get(i)), cell(asks.get(i)))));
        }
        if r.working.is_empty() {
            out.push(Line::raw("  no orders working"));
        }
    }
    let totals: Vec<String> = s
        .totals()
        .iter()
        .map(|(asset, pnl, fees, fills)| format!("{asset}: pnl {}, fees {}, {fills} fills", Price(*pnl), Price(*fees)))
        .collect();
    out.push(Line::styled(format!("totals  {}", totals.join("  ·  ")), BOLD));
    out
}

fn queue(q: Qty) -> String {
    if q == QUEUE_UNKNOWN {
        "unknown".into()
    } else {
        q.to_string()
    }
}

/// The status lines printed without a terminal: one per symbol and one per
/// quote asset's totals.
pub fn lines(label: &str, s: &MultiStatus) -> Vec<String> {
    let mut out: Vec<String> = s
        .rows
        .iter()
        .map(|r| {
            format!(
                "{label}: {:.0} s {} {}, mid {}, bid {}, ask {}, position {}, pnl {} {}, {} fills, {} refused",
                s.elapsed_s,
                r.symbol,
                r.state.name(),
                price(r.mid()),
                own(r, Side::Buy, true),
                own(r, Side::Sell, true),
                r.position,
                Price(r.pnl),
                r.quote_asset,
                r.fills,
                r.refused
            )
        })
        .collect();
    for (asset, pnl, fees, fills) in s.totals() {
        out.push(format!("{label}: {asset} total pnl {}, fees {}, {fills} fills", Price(pnl), Price(fees)));
    }
    if let Some(k) = &s.killed {
        out.push(format!("{label}: KILLED: {k}"));
    }
    out
}

/// Runs the dashboard until `finished`; `q` (or Ctrl-C) sets `stop`.
pub fn run(
    title: &str,
    mode: &str,
    shared: &SharedStatus,
    stop: &Arc<AtomicBool>,
    finished: &Arc<AtomicBool>,
) -> io::Result<()> {
    let mut tty = TtyWatch::new()?;
    let mut terminal = ratatui::try_init()?;
    let mut v = SymbolsScreen { title: title.into(), mode: mode.into(), ..SymbolsScreen::default() };
    let result = (|| -> io::Result<()> {
        let mut last_draw = Instant::now() - Duration::from_secs(1);
        while !finished.load(Ordering::Relaxed) {
            // crossterm only when a key waits and the terminal is there
            // (tty.rs: it would spin forever on one that hung up).
            match tty.wait(Duration::from_millis(50)) {
                Tty::Gone => return Err(super::tty::gone()),
                Tty::Input => {
                    while event::poll(Duration::ZERO)? {
                        if let Event::Key(k) = event::read()? {
                            if k.kind == KeyEventKind::Press {
                                key(&mut v, k, stop);
                                last_draw = Instant::now() - Duration::from_secs(1);
                            }
                        }
                    }
                }
                Tty::Quiet => {}
            }
            if last_draw.elapsed() >= Duration::from_millis(250) {
                last_draw = Instant::now();
                if let Ok(s) = shared.lock() {
                    v.status.clone_from(&s);
                }
                v.selected = v.selected.min(v.status.rows.len().saturating_sub(1));
                terminal.draw(|f| draw(f, &v))?;
            }
        }
        Ok(())
    })();
    let result = super::tty::settle(result, &mut tty);
    ratatui::restore();
    result
}

fn key(v: &mut SymbolsScreen, k: event::KeyEvent, stop: &AtomicBool) {
    match k.code {
        KeyCode::Char('q') | KeyCode::Esc => {
            v.quitting = true;
            stop.store(true, Ordering::Relaxed);
        }
        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
            v.quitting = true;
            stop.store(true, Ordering::Relaxed);
        }
        KeyCode::Down | KeyCode::Char('j') => v.selected = (v.selected + 1).min(v.status.rows.len().saturating_sub(1)),
        KeyCode::Up | KeyCode::Char('k') => v.selected = v.selected.saturating_sub(1),
        _ => {}
    }
}
