//! `equity.svg`: price with our fills marked, position, and equity, stacked
//! on one simulated time axis, each panel with its axis title and unit, and
//! a caption with the sample counts. Self-contained SVG (no scripts, no
//! external fonts), in the plain-string style of [`crate::stats::plot`].
//!
//! [`PlotData`] keeps a bounded number of points: when full it drops every
//! other point and keeps every 2nd from then on, so a long run draws evenly
//! thinned (the caption says how many were drawn).

use std::fmt::Write;

use crate::backtest::outputs::utc_iso;
use crate::exec::Side;

/// Most points (and fill markers) kept for drawing.
pub const MAX_POINTS: usize = 4_096;

/// One timeline sample as drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlotPoint {
    pub time_ns: i64,
    /// Mid, quote per base (`None`: no two-sided book yet).
    pub mid: Option<f64>,
    /// Position, base units.
    pub position: f64,
    /// Equity (PnL net of fees, marked to mid), quote units.
    pub equity: f64,
}

/// One of our fills as drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FillMark {
    pub time_ns: i64,
    pub price: f64,
    pub side: Side,
}

/// Every `stride`-th item pushed, at most [`MAX_POINTS`] of them.
#[derive(Debug, Clone)]
pub struct Thinned<T> {
    items: Vec<T>,
    stride: u64,
    seen: u64,
}

impl<T> Default for Thinned<T> {
    fn default() -> Self {
        Self { items: Vec::new(), stride: 1, seen: 0 }
    }
}

impl<T> Thinned<T> {
    pub fn push(&mut self, v: T) {
        if self.seen.is_multiple_of(self.stride) {
            if self.items.len() >= MAX_POINTS {
                // Keep items 0, 2, 4, ...: exactly every (2 x stride)-th pushed.
                let mut i = 0;
                self.items.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
            if self.seen.is_multiple_of(self.stride) {
                self.items.push(v);
            }
        }
        self.seen += 1;
    }

    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Items pushed (drawn or not).
    pub fn seen(&self) -> u64 {
        self.seen
    }
}

/// What the plot is drawn from.
#[derive(Debug, Clone, Default)]
pub struct PlotData {
    pub points: Thinned<PlotPoint>,
    pub fills: Thinned<FillMark>,
    /// The timeline interval, for the caption.
    pub interval_ms: f64,
}

const W: f64 = 960.0;
const LEFT: f64 = 96.0;
const RIGHT: f64 = 120.0;
const TOP: f64 = 48.0;
const PANEL_H: f64 = 170.0;
const GAP: f64 = 26.0;
const BOTTOM: f64 = 80.0;
const BUY: &str = "#2ca02c";
const SELL: &str = "#d62728";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// About 4-6 round tick values covering [lo, hi].
fn ticks(lo: f64, hi: f64) -> (Vec<f64>, usize) {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let decimals = (-step.log10().floor()).clamp(0.0, 8.0) as usize;
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + step * 1e-9 && out.len() < 20 {
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    (out, decimals)
}

/// The range drawn for these values: padded 5%, never empty.
fn range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = vals.filter(|v| v.is_finite()).fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { lo.abs().max(1.0) * 0.01 };
    (lo - pad, hi + pad)
}

struct Panel {
    top: f64,
    lo: f64,
    hi: f64,
}

impl Panel {
    fn y(&self, v: f64) -> f64 {
        self.top + PANEL_H * (1.0 - (v - self.lo) / (self.hi - self.lo))
    }

    /// Frame, horizontal grid with labels, and the rotated axis title.
    fn axes(&self, out: &mut String, title: &str) {
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{:.1}" width="{:.1}" height="{PANEL_H}" fill="none" stroke="#999"/>"##,
            self.top,
            W - LEFT - RIGHT
        );
        let (tv, dec) = ticks(self.lo, self.hi);
        for v in tv {
            let y = self.y(v);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.dec$}</text>"##,
                W - RIGHT,
                LEFT - 6.0,
                y + 4.0
            );
        }
        let (x, y) = (18.0, self.top + PANEL_H / 2.0);
        let _ = writeln!(
            out,
            r##"<text class="axis-title" x="{x}" y="{y:.1}" text-anchor="middle" transform="rotate(-90 {x} {y:.1})">{}</text>"##,
            escape(title)
        );
    }
}

fn polyline(out: &mut String, pts: &[(f64, f64)], color: &str) {
    if pts.is_empty() {
        return;
    }
    let s: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = writeln!(out, r##"<polyline fill="none" stroke="{color}" stroke-width="1.4" points="{}"/>"##, s.join(" "));
}

fn legend(out: &mut String, top: f64, row: usize, color: &str, label: &str) {
    let (x, y) = (W - RIGHT + 10.0, top + 14.0 + 16.0 * row as f64);
    let _ = writeln!(
        out,
        r##"<rect x="{x:.1}" y="{:.1}" width="12" height="4" fill="{color}"/><text x="{:.1}" y="{:.1}">{}</text>"##,
        y - 2.0,
        x + 16.0,
        y + 4.0,
        escape(label)
    );
}

/// The picture. `title` heads it (symbol, strategy); the caption counts
/// the timeline rows and fills seen, and how many were drawn.
pub fn equity_svg(title: &str, data: &PlotData) -> String {
    let pts = data.points.items();
    let marks = data.fills.items();
    let t0 = pts.iter().map(|p| p.time_ns).chain(marks.iter().map(|m| m.time_ns)).min().unwrap_or(0);
    let t1 = pts.iter().map(|p| p.time_ns).chain(marks.iter().map(|m| m.time_ns)).max().unwrap_or(0);
    let span_s = ((t1 - t0) as f64 / 1e9).max(1e-9);
    let plot_w = W - LEFT - RIGHT;
    let x = |t: i64| LEFT + plot_w * ((t - t0) as f64 / 1e9 / span_s).clamp(0.0, 1.0);
    let h = TOP + 3.0 * PANEL_H + 2.0 * GAP + BOTTOM;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{:.1}" y="26" text-anchor="middle" font-size="15">{}</text>"##,
        LEFT + plot_w / 2.0,
        escape(title)
    );

    // Price with fills.
    let (lo, hi) = range(pts.iter().filter_map(|p| p.mid).chain(marks.iter().map(|m| m.price)));
    let price = Panel { top: TOP, lo, hi };
    price.axes(&mut out, "price (quote per base)");
    let mid: Vec<(f64, f64)> = pts.iter().filter_map(|p| Some((x(p.time_ns), price.y(p.mid?)))).collect();
    polyline(&mut out, &mid, "#1f77b4");
    for m in marks {
        let (cx, cy) = (x(m.time_ns), price.y(m.price));
        let (color, d) = match m.side {
            Side::Buy => (
                BUY,
                format!(
                    "M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z",
                    cx,
                    cy - 4.0,
                    cx - 4.0,
                    cy + 3.0,
                    cx + 4.0,
                    cy + 3.0
                ),
            ),
            Side::Sell => (
                SELL,
                format!(
                    "M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z",
                    cx,
                    cy + 4.0,
                    cx - 4.0,
                    cy - 3.0,
                    cx + 4.0,
                    cy - 3.0
                ),
            ),
        };
        let _ = writeln!(
            out,
            r##"<path class="fill-{}" d="{d}" fill="{color}"/>"##,
            crate::backtest::outputs::fills::side_name(m.side)
        );
    }
    legend(&mut out, price.top, 0, "#1f77b4", "mid");
    legend(&mut out, price.top, 1, BUY, "buy fill");
    legend(&mut out, price.top, 2, SELL, "sell fill");

    // Position, as steps (it changes only at fills).
    let (lo, hi) = range(pts.iter().map(|p| p.position).chain(std::iter::once(0.0)));
    let pos = Panel { top: TOP + PANEL_H + GAP, lo, hi };
    pos.axes(&mut out, "position (base)");
    let mut steps = Vec::with_capacity(pts.len() * 2);
    for (i, p) in pts.iter().enumerate() {
        if i > 0 {
            steps.push((x(p.time_ns), pos.y(pts[i - 1].position)));
        }
        steps.push((x(p.time_ns), pos.y(p.position)));
    }
    polyline(&mut out, &steps, "#9467bd");

    // Equity.
    let (lo, hi) = range(pts.iter().map(|p| p.equity).chain(std::iter::once(0.0)));
    let eq = Panel { top: TOP + 2.0 * (PANEL_H + GAP), lo, hi };
    eq.axes(&mut out, "equity (quote, net of fees)");
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
        eq.y(0.0),
        W - RIGHT
    );
    let line: Vec<(f64, f64)> = pts.iter().map(|p| (x(p.time_ns), eq.y(p.equity))).collect();
    polyline(&mut out, &line, "#ff7f0e");

    // The shared time axis, under the last panel.
    let axis_y = eq.top + PANEL_H;
    let (tv, dec) = ticks(0.0, span_s);
    for v in tv {
        let px = LEFT + plot_w * (v / span_s);
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{axis_y:.1}" stroke="#eee"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{v:.dec$}</text>"##,
            axis_y + 16.0
        );
    }
    let _ = writeln!(
        out,
        r##"<text class="axis-title" x="{:.1}" y="{:.1}" text-anchor="middle">time since start (s), start {}</text>"##,
        LEFT + plot_w / 2.0,
        axis_y + 36.0,
        utc_iso(t0)
    );
    let _ = writeln!(
        out,
        r##"<text class="caption" x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{} timeline samples (every {} ms and at every fill; {} drawn), {} fills ({} marked)</text>"##,
        LEFT + plot_w / 2.0,
        axis_y + 58.0,
        data.points.seen(),
        data.interval_ms,
        pts.len(),
        data.fills.seen(),
        marks.len()
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_an_even_bounded_subset() {
        let mut t = Thinned::default();
        for i in 0..(MAX_POINTS as u64 * 5) {
            t.push(i);
        }
        assert!(t.items().len() <= MAX_POINTS);
        assert_eq!(t.seen(), MAX_POINTS as u64 * 5);
        let stride = t.items()[1] - t.items()[0];
        assert!(t.items().windows(2).all(|w| w[1] - w[0] == stride), "evenly spaced");
        assert_eq!(t.items()[0], 0);
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (v, dec) = ticks(61_836.9, 61_838.2);
        assert_eq!(dec, 1);
        assert!(v.len() >= 3 && v.iter().all(|x| (61_836.9..=61_838.2).contains(x)), "{v:?}");
        let (v, dec) = ticks(-0.0004, 0.0021);
        assert_eq!((v.as_slice(), dec), ([0.0, 0.001, 0.002].as_slice(), 3));
    }

    #[test]
    fn the_plot_has_its_panels_titles_markers_and_counts() {
        let mut d = PlotData { interval_ms: 1000.0, ..PlotData::default() };
        for i in 0..10 {
            let t = i * 1_000_000_000;
            d.points.push(PlotPoint {
                time_ns: t,
                mid: Some(100.0 + i as f64),
                position: i as f64,
                equity: -(i as f64),
            });
        }
        d.fills.push(FillMark { time_ns: 2_000_000_000, price: 101.5, side: Side::Buy });
        d.fills.push(FillMark { time_ns: 3_000_000_000, price: 103.5, side: Side::Sell });
        let svg = equity_svg("BTCUSDT <native>", &d);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for t in ["price (quote per base)", "position (base)", "equity (quote, net of fees)", "time since start (s)"] {
            assert!(svg.contains(t), "{t}");
        }
        assert!(svg.contains("10 timeline samples") && svg.contains("2 fills"));
        assert_eq!((svg.matches("fill-buy").count(), svg.matches("fill-sell").count()), (1, 1));
        assert!(svg.contains("BTCUSDT &lt;native&gt;"));
        // Empty data still draws a frame.
        assert!(equity_svg("empty", &PlotData::default()).contains("0 timeline samples"));
    }
}
