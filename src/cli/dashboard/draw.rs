//! What the dashboard draws, from a [`Screen`] (plain data, so tests render
//! it on ratatui's `TestBackend` at any size without a running bot).
//!
//! Two layouts: a compact one that fits an 80x24 terminal (title and feed
//! lines, the ladder next to a PnL and inventory panel, the event log, the
//! keys) and a wide one from [`WIDE`] up (the ladder with ten levels a
//! side, separate PnL, quote and latency panels, a taller event log).

use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::events::{EventKind, EventLog};
use crate::ai::advisor::AdvisorStats;
use crate::cli::session::ScriptInfo;
use crate::hot::advice::AdviceSource;
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::Level;
use crate::runtime::{ExecStatus, HotStatus, LADDER};
use crate::stats::plot::fmt_ns;

/// The smallest terminal (columns, rows) the wide layout is used from.
pub const WIDE: (u16, u16) = (110, 44);

/// Everything drawn, as last read.
#[derive(Default)]
pub struct Screen {
    /// `mmbot demo BTCUSDT`.
    pub title: String,
    /// Where the market data and the orders are: `SIMULATOR`, `TESTNET`,
    /// `MAINNET`, `REPLAY` (first word, coloured) and the rest.
    pub mode: String,
    /// The strategy as it started: native, or the script's file and hash.
    pub strategy: String,
    /// The script file `r` reloads (and edits to it reload by themselves).
    pub watched: Option<String>,
    pub status: HotStatus,
    pub exec: ExecStatus,
    /// The position limit, for the inventory gauge.
    pub max_position: Qty,
    /// Stage, count, p50, p99, p99.9 (ns).
    pub latency: Vec<(&'static str, u64, u64, u64, u64)>,
    pub script: ScriptInfo,
    pub ai: Option<AdvisorStats>,
    pub paused: bool,
    pub quitting: bool,
    pub elapsed_s: u64,
    pub log: EventLog,
    /// Wall clock now, ns (advice age, unsynced time).
    pub now_ns: i64,
    /// The script's errors per minute over the last minute.
    pub script_errors_per_min: f64,
}

const BOLD: Style = Style::new().add_modifier(Modifier::BOLD);

/// Draws the whole screen in the layout that fits the frame.
pub fn draw(f: &mut Frame<'_>, v: &Screen) {
    let area = f.area();
    if area.width >= WIDE.0 && area.height >= WIDE.1 {
        draw_wide(f, v, area);
    } else {
        draw_compact(f, v, area);
    }
}

fn draw_compact(f: &mut Frame<'_>, v: &Screen, area: Rect) {
    let main_h = area.height.saturating_sub(10).clamp(12, 2 * LADDER as u16 + 4);
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(main_h),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .split(area);
    f.render_widget(Paragraph::new(title_line(v)), rows[0]);
    f.render_widget(Paragraph::new(feed_short(v)).style(Style::default().fg(Color::Gray)), rows[1]);
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
        .split(rows[2]);
    ladder(f, v, cols[0]);
    let mut lines = pnl_lines(v, cols[1].width.saturating_sub(2), true);
    let side = |l: Option<Level>| l.map_or("-".to_string(), |l| format!("{} @ {}", l.qty, l.price));
    let q = v.status.last_quote;
    lines.push(Line::from(format!("quote bid {}", side(q.and_then(|q| q.bid)))));
    lines.push(Line::from(format!("      ask {}", side(q.and_then(|q| q.ask)))));
    lines.push(Line::from(latency_short(v)));
    lines.push(Line::from(advice_short(v)));
    let name = short_name(&v.strategy);
    lines.push(Line::from(format!("strategy {}", name.split(" (").next().unwrap_or(name))));
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title("pnl & inventory")),
        cols[1],
    );
    event_log(f, v, rows[3]);
    f.render_widget(Paragraph::new(keys_text(v, rows[4].width)).style(Style::default().fg(Color::Cyan)), rows[4]);
}

fn draw_wide(f: &mut Frame<'_>, v: &Screen, area: Rect) {
    // The ladder's ten levels a side and the latency table under it; the
    // event log takes the rest.
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(3), Constraint::Length(32), Constraint::Min(8), Constraint::Length(1)])
        .split(area);
    let feed = Some(feed_long(v)).filter(|l| l.chars().count() + 2 <= area.width as usize).unwrap_or(feed_short(v));
    let header = Paragraph::new(title_line(v)).block(Block::default().borders(Borders::ALL).title(Span::raw(feed)));
    f.render_widget(header, rows[0]);
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Length(58), Constraint::Min(50)])
        .split(rows[1]);
    let left = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(2 * LADDER as u16 + 4), Constraint::Min(8)])
        .split(cols[0]);
    ladder(f, v, left[0]);
    latency_table(f, v, left[1]);
    let right = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(9), Constraint::Min(8)])
        .split(cols[1]);
    let pnl = pnl_lines(v, right[0].width.saturating_sub(2), false);
    f.render_widget(
        Paragraph::new(pnl).block(Block::default().borders(Borders::ALL).title("pnl & inventory")),
        right[0],
    );
    f.render_widget(
        Paragraph::new(quote_lines(v))
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(Borders::ALL).title("quote, advice, strategy")),
        right[1],
    );
    event_log(f, v, rows[2]);
    f.render_widget(Paragraph::new(keys_text(v, rows[3].width)).style(Style::default().fg(Color::Cyan)), rows[3]);
}

/// `mmbot demo BTCUSDT  SIMULATOR · paper orders  00:01:05  PAUSED`
fn title_line(v: &Screen) -> Line<'static> {
    let (first, rest) = v.mode.split_once(' ').unwrap_or((v.mode.as_str(), ""));
    let colour = match first {
        "MAINNET" => Color::Red,
        "TESTNET" => Color::Yellow,
        _ => Color::Green,
    };
    let e = v.elapsed_s;
    let state = if v.quitting {
        " QUITTING: pulling quotes, writing the report "
    } else if v.paused || v.status.paused {
        " PAUSED "
    } else {
        ""
    };
    Line::from(vec![
        Span::styled(format!("{} ", v.title), BOLD),
        Span::styled(format!(" {first} "), Style::default().fg(Color::Black).bg(colour).add_modifier(Modifier::BOLD)),
        Span::raw(format!(" {rest} ")),
        Span::raw(format!("{:02}:{:02}:{:02} ", e / 3600, e / 60 % 60, e % 60)),
        Span::styled(state, Style::default().fg(Color::Black).bg(Color::Yellow)),
    ])
}

fn connection(s: &HotStatus) -> &'static str {
    if s.connected {
        "connected"
    } else {
        "RECONNECTING"
    }
}

fn feed_short(v: &Screen) -> String {
    let s = &v.status;
    format!(
        "{} {} | frames {} gaps {} resyncs {} | conns {}",
        connection(s),
        crate::cli::session::sync_text(s, v.now_ns),
        s.frames,
        s.gaps,
        s.resyncs,
        s.connects
    )
}

fn feed_long(v: &Screen) -> String {
    let s = &v.status;
    format!(
        "{} {} id {} | frames {} rejected {} | gaps {} resyncs {} | pulled stale {} sync {} | connections {}",
        connection(s),
        crate::cli::session::sync_text(s, v.now_ns),
        s.update_id,
        s.frames,
        s.rejected,
        s.gaps,
        s.resyncs,
        s.pulled_stale,
        s.pulled_on_sync_loss,
        s.connects
    )
}

/// The book, asks above bids, best prices nearest the mid/spread line in
/// the middle, own orders marked (and added where they are not a level).
fn ladder(f: &mut Frame<'_>, v: &Screen, area: Rect) {
    let s = &v.status;
    // Borders, header and the mid line.
    let per_side = (area.height.saturating_sub(4) / 2).clamp(1, LADDER as u16) as usize;
    let mut rows: Vec<Row<'_>> = Vec::new();
    let asks = side_levels(&s.asks, s.working.ask, per_side, |a, b| a < b);
    for (l, own) in asks.iter().rev() {
        rows.push(level_row(*l, *own, Color::Red));
    }
    rows.push(mid_row(s));
    let bids = side_levels(&s.bids, s.working.bid, per_side, |a, b| a > b);
    for (l, own) in &bids {
        rows.push(level_row(*l, *own, Color::Green));
    }
    let title = format!("book (top {per_side})");
    let table = Table::new(rows, [Constraint::Length(13), Constraint::Length(11), Constraint::Min(8)])
        .header(Row::new(vec!["price", "qty", "own"]).style(BOLD))
        .block(Block::default().borders(Borders::ALL).title(title));
    f.render_widget(table, area);
}

/// Up to `n` levels of one side, best first, with the own order merged in:
/// `(level, own order there)`; an own order at no visible level takes the
/// place of the farthest one. `better(a, b)`: price `a` is nearer the mid.
fn side_levels(
    levels: &[Option<Level>],
    own: Option<Level>,
    n: usize,
    better: impl Fn(Price, Price) -> bool,
) -> Vec<(Level, Option<Qty>)> {
    let shown: Vec<Level> = levels.iter().flatten().copied().take(n).collect();
    let mut out: Vec<(Level, Option<Qty>)> =
        shown.iter().map(|l| (*l, own.filter(|o| o.price == l.price).map(|o| o.qty))).collect();
    if let Some(o) = own.filter(|o| shown.iter().all(|l| l.price != o.price)) {
        if out.len() == n {
            out.pop();
        }
        let at = out.iter().position(|(l, _)| better(o.price, l.price)).unwrap_or(out.len());
        out.insert(at, (Level { price: o.price, qty: Qty(0) }, Some(o.qty)));
    }
    out
}

fn level_row(l: Level, own: Option<Qty>, colour: Color) -> Row<'static> {
    let qty = if l.qty.0 > 0 { l.qty.to_string() } else { String::new() };
    let (mark, style) = match own {
        Some(q) => (format!("<- own {q}"), Style::default().fg(Color::Magenta).add_modifier(Modifier::BOLD)),
        None => (String::new(), Style::default().fg(colour)),
    };
    Row::new(vec![l.price.to_string(), qty, mark]).style(style)
}

/// `mid 60000.005  spread 0.01  0.0017 bps` between asks and bids.
fn mid_row(s: &HotStatus) -> Row<'static> {
    let cells = match (s.bids[0], s.asks[0]) {
        (Some(b), Some(a)) => {
            let mid = Price((b.price.0 + a.price.0) / 2);
            let spread = a.price.0 - b.price.0;
            let bps = if mid.0 > 0 { spread as f64 / mid.0 as f64 * 1e4 } else { 0.0 };
            vec![format!("mid {mid}"), format!("spread {}", Price(spread)), format!("{bps:.4} bps")]
        }
        _ => vec!["mid -".into(), "spread -".into(), String::new()],
    };
    Row::new(cells).style(Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD))
}

/// Position, inventory gauge, PnL split into edge and fees, fills by side;
/// `compact`: lines of at most 38 columns (half of an 80-column screen).
fn pnl_lines(v: &Screen, width: u16, compact: bool) -> Vec<Line<'static>> {
    let e = &v.exec;
    let gross = e.pnl.saturating_add(e.fees);
    let pnl_style = if e.pnl >= 0 { Style::default().fg(Color::Green) } else { Style::default().fg(Color::Red) };
    let first = v.log.first_fill_s.map_or("-".to_string(), |t| format!("{t:.1} s"));
    let pnl = Span::styled(money(e.pnl), pnl_style.add_modifier(Modifier::BOLD));
    // An LLM advisor's cost, next to the PnL it is paid from.
    let ai = v.ai.as_ref().filter(|a| a.source == AdviceSource::Llm);
    let quote = super::advisor::usd_quote_in(&v.title);
    let net = ai.and_then(|a| super::advisor::net_text(e.pnl, a.cost_total_usd, quote));
    let mut lines = vec![
        Line::from(vec![
            Span::styled("position ", BOLD),
            Span::raw(format!("{} of max {}", e.position, v.max_position)),
        ]),
        Line::from(inventory_gauge(e.position, v.max_position, width as usize)),
    ];
    if compact {
        let net_short = net.as_deref().and_then(|n| n.split(" after").next()).map(|n| format!("  {n}"));
        lines.extend([
            Line::from(vec![Span::styled("pnl ", BOLD), pnl, Span::raw(net_short.unwrap_or_default())]),
            Line::from(format!("  edge {}, fees -{}", money(gross), money(e.fees).trim_start_matches('+'))),
            Line::from(format!("fills {}: {} buys, {} sells", e.fills, v.log.buys, v.log.sells)),
            Line::from(format!("  first {first}, volume {}", Price(e.volume))),
            // 80x24 has no row to spare: the advisor's line takes the
            // orders' (the wide layout shows both).
            Line::from(match ai {
                Some(a) => format!("ai {} calls, {} err, ${:.4}", a.calls, a.failed, a.cost_total_usd),
                None => format!("orders {}, cancels {}", e.orders, e.cancels),
            }),
        ]);
    } else {
        lines.extend([
            Line::from(vec![
                Span::styled("pnl ", BOLD),
                pnl,
                Span::raw(format!(" = edge {} - fees {}", money(gross), money(e.fees).trim_start_matches('+'))),
            ]),
            Line::from(format!("fills {}: {} buys, {} sells; the first at {first}", e.fills, v.log.buys, v.log.sells)),
            Line::from(format!("volume {} | orders {} cancels {}", Price(e.volume), e.orders, e.cancels)),
        ]);
        if let Some(a) = ai {
            let long = super::advisor::advisor_text(a);
            let long = match &net {
                Some(n) => format!("{} | {n}", long.trim_start_matches("advisor ")),
                None => long.trim_start_matches("advisor ").to_string(),
            };
            let text = if long.chars().count() <= width as usize {
                long
            } else {
                let short = format!("ai {} calls, {} err, ${:.4}", a.calls, a.failed, a.cost_total_usd);
                match &net {
                    Some(n) => format!("{short} | {}", n.split(" after").next().unwrap_or_default()),
                    None => short,
                }
            };
            lines.push(Line::from(text));
        }
    }
    if e.live {
        lines.push(Line::from(Span::styled(
            format!(
                "LIVE ORDERS{}: {} refused, {} rejected, {} unknown, {} in flight, rtt p50 {:.1} ms",
                if e.stopped { " STOPPED" } else { "" },
                e.refused,
                e.rejected,
                e.unknown_fates,
                e.in_flight,
                e.place_rtt_p50 as f64 / 1e6
            ),
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        )));
    }
    lines
}

/// A quote-asset amount (1e-8) with its sign and 4 decimals: `+0.0500`.
fn money(v: i64) -> String {
    format!("{:+.4}", v as f64 / 1e8)
}

/// `short [·······│███····] long`: the position as a share of the limit.
fn inventory_gauge(pos: Qty, max: Qty, width: usize) -> String {
    let inner = width.saturating_sub(14).clamp(5, 41) | 1;
    let half = inner / 2;
    let share = if max.0 > 0 { (pos.0 as f64 / max.0 as f64).clamp(-1.0, 1.0) } else { 0.0 };
    let filled = (share.abs() * half as f64).round() as usize;
    let mut cells: Vec<char> = vec!['·'; inner];
    cells[half] = '│';
    for i in 1..=filled {
        if share > 0.0 {
            cells[half + i] = '█';
        } else {
            cells[half - i] = '█';
        }
    }
    format!("short [{}] long", cells.into_iter().collect::<String>())
}

fn quote_text(v: &Screen) -> String {
    let side = |l: Option<Level>| l.map_or("-".to_string(), |l| format!("{}@{}", l.qty, l.price));
    match v.status.last_quote {
        Some(q) if q.bid.is_some() || q.ask.is_some() => format!("{} | {}", side(q.bid), side(q.ask)),
        Some(_) => "pulled".into(),
        None => "none yet".into(),
    }
}

fn latency_short(v: &Screen) -> String {
    match v.latency.iter().find(|l| l.0 == "tick_to_quote") {
        Some(&(_, n, p50, p99, _)) if n > 0 => {
            format!("t2q p50 {} p99 {}", fmt_ns(p50 as f64), fmt_ns(p99 as f64))
        }
        _ => "t2q (tick to quote): no samples yet".into(),
    }
}

fn advice_source(s: AdviceSource) -> &'static str {
    match s {
        AdviceSource::Llm => "LLM",
        AdviceSource::Offline => "offline",
        AdviceSource::None => "none (neutral)",
    }
}

/// `advice offline x0.63 low/sideways`: at most 38 columns.
fn advice_short(v: &Screen) -> String {
    let a = &v.status.advice;
    let source = if a.source == AdviceSource::None { "none" } else { advice_source(a.source) };
    format!("advice {source} x{:.2} {:?}/{:?}", a.multiplier, a.volatility, a.direction).to_lowercase()
}

fn short_name(strategy: &str) -> &str {
    strategy.rsplit('/').next().unwrap_or_default()
}

fn quote_lines(v: &Screen) -> Vec<Line<'static>> {
    let s = &v.status;
    let e = &s.explain;
    let d = &s.decision;
    let intent = |i: Option<crate::hot::strategy::SideIntent>| {
        i.map_or("-".to_string(), |i| format!("{:.6} @ {:.4}", i.size, i.price))
    };
    let a = &s.advice;
    let age = if a.received_ns > 0 { format!("{:.1} s", (v.now_ns - a.received_ns) as f64 / 1e9) } else { "-".into() };
    let mut lines = vec![
        Line::from(vec![Span::styled("last quote ", BOLD), Span::raw(quote_text(v))]),
        if e.dynamic_spread_pct > 0.0 {
            Line::from(format!(
                "  base {:.4}% x spread {:.2} x vol {:.2} x dir {:.2} = {:.4}% of mid; half spread {:.4}",
                e.base_spread_pct, e.spread_mult, e.vol_mult, e.dir_mult, e.dynamic_spread_pct, e.half_spread
            ))
        } else {
            Line::from("  spread from the script's own rules (it reports no multipliers)")
        },
        Line::from(format!(
            "  strategy asked: bid {}  ask {}{}; the guard rounds to tick and step, keeps post-only, \
             the spread limits and the position limit",
            intent(d.bid),
            intent(d.ask),
            if d.pull { "  (pull)" } else { "" }
        )),
        Line::from(vec![
            Span::styled("advice ", BOLD),
            Span::raw(format!(
                "{}: spread {:?}, volatility {:?}, direction {:?}, confidence {}, multiplier {:.2}, age {age}",
                advice_source(a.source),
                a.spread,
                a.volatility,
                a.direction,
                a.confidence,
                a.multiplier
            )),
        ]),
    ];
    if let Some(ai) = &v.ai {
        lines.push(Line::from(format!(
            "  {}: {} calls ({} ok, {} failed, {} skipped busy); cost today ${:.4}, month ~${}{}",
            ai.label,
            ai.calls,
            ai.ok,
            ai.failed,
            ai.skipped_busy,
            ai.cost_today_usd,
            ai.projected_month_usd.map_or("-".to_string(), |m| format!("{m:.2}")),
            ai.last_error.as_ref().map_or(String::new(), |e| format!("; last error: {e}"))
        )));
    }
    lines.push(Line::from(vec![Span::styled("strategy ", BOLD), Span::raw(short_name(&v.strategy).to_string())]));
    if let Some(w) = &v.watched {
        lines.push(Line::from(format!("  watching {w} (r or saving it reloads)")));
    }
    lines.push(Line::from(format!(
        "  reloads {}; {}",
        v.script.reloads,
        v.script.last_event.as_deref().unwrap_or("running the version it started with")
    )));
    for l in super::script::script_lines(&v.status.script, v.script_errors_per_min) {
        lines.push(Line::from(l));
    }
    lines
}

fn latency_table(f: &mut Frame<'_>, v: &Screen, area: Rect) {
    let rows: Vec<Row<'_>> = v
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
    // 54 columns: "tick_to_quote", a count, three "150.000 us".
    let widths = [
        Constraint::Length(13),
        Constraint::Length(7),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(vec!["stage", "count", "p50", "p99", "p99.9"]).style(BOLD))
        .block(Block::default().borders(Borders::ALL).title("latency"));
    f.render_widget(table, area);
}

/// The newest events that fit, newest at the bottom; long ones wrap under
/// their text.
fn event_log(f: &mut Frame<'_>, v: &Screen, area: Rect) {
    let n = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line<'_>> = Vec::new();
    // Newest first until the box is full, then turned around.
    for e in v.log.recent().rev() {
        if lines.len() >= n {
            break;
        }
        let colour = match (e.kind, e.side) {
            (EventKind::Fill, Some("buy")) => Color::Green,
            (EventKind::Fill, _) => Color::Red,
            (EventKind::Pull, _) | (EventKind::Operator, _) => Color::Yellow,
            (EventKind::Alert, _) => Color::LightRed,
            (EventKind::Feed, _) => Color::Magenta,
            (EventKind::Reload, _) => Color::Cyan,
            (EventKind::Advice, _) => Color::Blue,
        };
        let style = Style::default().fg(colour);
        let mut rows = wrap(&e.line(), width, 19);
        rows.truncate(n - lines.len());
        for r in rows.into_iter().rev() {
            lines.push(Line::from(Span::styled(r, style)));
        }
    }
    lines.reverse();
    let title = format!("events ({} fills: {} buys, {} sells)", v.log.fills(), v.log.buys, v.log.sells);
    if lines.is_empty() {
        lines.push(Line::from("  nothing yet: fills, pulls, reloads, disconnects, advice"));
    }
    f.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)), area);
}

/// `text` in rows of at most `width` characters, broken at spaces where it
/// can be, rows after the first indented by `indent`.
fn wrap(text: &str, width: usize, indent: usize) -> Vec<String> {
    if width <= indent + 8 || text.chars().count() <= width {
        return vec![text.to_string()];
    }
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut len = 0;
    // Nothing on this row yet (after the indent); still on the first row.
    let mut fresh = true;
    let mut first_row = true;
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        if word.is_empty() && !first_row {
            continue;
        }
        loop {
            let gap = usize::from(!fresh);
            if len + gap + word.len() <= width {
                if gap == 1 {
                    row.push(' ');
                }
                row.extend(word.iter());
                len += gap + word.len();
                fresh = false;
                break;
            }
            if fresh || word.len() > width - indent {
                // Longer than a row: cut it.
                let take = width.saturating_sub(len + gap);
                if take > 0 {
                    if gap == 1 {
                        row.push(' ');
                    }
                    row.extend(word.drain(..take));
                }
            }
            rows.push(std::mem::take(&mut row));
            row = " ".repeat(indent);
            len = indent;
            fresh = true;
            first_row = false;
        }
    }
    if !fresh || rows.is_empty() {
        rows.push(row);
    }
    rows
}

fn keys_text(v: &Screen, width: u16) -> String {
    let file = v.watched.as_deref().map(short_name);
    let long = match file {
        Some(name) => format!("q quit   p pause/resume quoting   r reload {name}"),
        None => "q quit   p pause/resume quoting".to_string(),
    };
    if long.len() <= width as usize {
        long
    } else if file.is_some() {
        "q quit  p pause  r reload".into()
    } else {
        "q quit  p pause".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_wrap_at_spaces_under_their_text() {
        let rows = wrap("  1.0 s  reload   a.rhai reloaded (fnv1a 0123), compiled", 30, 19);
        assert_eq!(
            rows,
            [
                "  1.0 s  reload   a.rhai",
                "                   reloaded",
                "                   (fnv1a",
                "                   0123),",
                "                   compiled"
            ]
        );
        assert!(rows.iter().all(|r| r.chars().count() <= 30));
        let long = wrap(&format!("x {}", "y".repeat(50)), 30, 4);
        assert!(long.iter().all(|r| r.chars().count() <= 30), "{long:?}");
        assert_eq!(long.concat().replace(' ', ""), format!("x{}", "y".repeat(50)));
        assert_eq!(wrap("short", 30, 4), ["short"]);
    }

    #[test]
    fn the_inventory_gauge_fills_towards_the_side_held() {
        assert_eq!(inventory_gauge(Qty(0), Qty(10), 19), "short [··│··] long");
        assert_eq!(inventory_gauge(Qty(10), Qty(10), 19), "short [··│██] long");
        assert_eq!(inventory_gauge(Qty(-5), Qty(10), 19), "short [·█│··] long");
    }
}
