//! Latency pictures as standalone SVG: each stage's percentile distribution
//! (the HdrHistogram plotter's picture: x is `1/(1-percentile)` on a log
//! scale, so the tail gets the room it deserves; y is latency on a log
//! scale, ns to ms), and a per-second p50/p99 timeline.
//!
//! Plain string building, no dependency: the files open in any browser and
//! diff cleanly in review.

use std::fmt::Write;

/// One line of a plot: a name, its points and how many samples they
/// summarise (shown in the legend; 0 when not known).
pub struct Series<'a> {
    pub name: &'a str,
    /// (percentile in [0, 1), latency ns) for distributions; (seconds, ns)
    /// for timelines.
    pub points: Vec<(f64, u64)>,
    pub samples: u64,
}

impl<'a> Series<'a> {
    /// A distribution of `samples` values, cut at the last percentile those
    /// samples can support (1 - 1/n: with 1,000 samples there is no 99.99th).
    pub fn distribution(name: &'a str, points: &[(f64, u64)], samples: u64) -> Self {
        let last = 1.0 - 1.0 / samples.max(1) as f64;
        let points = points.iter().copied().filter(|&(p, _)| p <= last + 1e-12).collect();
        Self { name, points, samples }
    }
}

const W: f64 = 860.0;
const H: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/// A latency in the unit that reads best.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.3} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Log10 of the y range covering every point (at least one decade).
fn y_range(series: &[Series<'_>]) -> (f64, f64) {
    let vals = series.iter().flat_map(|s| s.points.iter().map(|p| p.1.max(1) as f64));
    let (lo, hi) = vals.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi == 0.0 {
        return (0.0, 1.0);
    }
    let (lo, hi) = (lo.log10().floor(), hi.log10().ceil());
    (lo, if hi <= lo { lo + 1.0 } else { hi })
}

fn frame(out: &mut String, title: &str, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>
"##,
        LEFT + (W - LEFT - RIGHT) / 2.0,
        escape(title),
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 12.0,
        escape(x_label),
        TOP + (H - TOP - BOTTOM) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0,
        escape(y_label)
    );
}

fn y_axis(out: &mut String, (lo, hi): (f64, f64)) {
    let plot_h = H - TOP - BOTTOM;
    let mut d = lo;
    while d <= hi + 1e-9 {
        let y = TOP + plot_h * (1.0 - (d - lo) / (hi - lo));
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            fmt_ns(10f64.powf(d))
        );
        d += 1.0;
    }
}

fn lines(out: &mut String, series: &[Series<'_>], x: impl Fn(f64) -> f64, (lo, hi): (f64, f64)) {
    let plot_h = H - TOP - BOTTOM;
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|&(px, v)| {
                let y = TOP + plot_h * (1.0 - ((v.max(1) as f64).log10() - lo) / (hi - lo));
                format!("{:.1},{:.1}", x(px), y)
            })
            .collect();
        if !pts.is_empty() {
            let _ = writeln!(
                out,
                r##"<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{}"/>"##,
                pts.join(" ")
            );
        }
        let ly = TOP + 16.0 * i as f64 + 8.0;
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"##,
            W - RIGHT + 12.0,
            W - RIGHT + 32.0,
            W - RIGHT + 38.0,
            ly + 4.0,
            escape(&if s.samples > 0 { format!("{} (n={})", s.name, s.samples) } else { s.name.to_string() })
        );
    }
}

/// Percentile distributions, one line per stage.
pub fn distribution_svg(title: &str, series: &[Series<'_>]) -> String {
    // x = log10(1/(1-p)), up to the 99.999th percentile.
    const MAX_X: f64 = 5.0;
    let plot_w = W - LEFT - RIGHT;
    let x = |p: f64| LEFT + plot_w * ((1.0 / (1.0 - p.min(0.99999))).log10() / MAX_X).min(1.0);
    let range = y_range(series);
    let mut out = String::new();
    frame(&mut out, title, "percentile (log scale of 1/(1-p))", "latency (log scale)");
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"].iter().enumerate() {
        let px = LEFT + plot_w * i as f64 / MAX_X;
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            H - BOTTOM,
            H - BOTTOM + 16.0
        );
    }
    y_axis(&mut out, range);
    lines(&mut out, series, x, range);
    out.push_str("</svg>\n");
    out
}

/// Values over time (x in seconds), e.g. per-second p50 and p99.
pub fn timeline_svg(title: &str, series: &[Series<'_>]) -> String {
    let plot_w = W - LEFT - RIGHT;
    let max_t = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(1.0f64, f64::max);
    let x = |t: f64| LEFT + plot_w * (t / max_t).clamp(0.0, 1.0);
    let range = y_range(series);
    let mut out = String::new();
    frame(&mut out, title, "seconds since start", "latency (log scale)");
    for i in 0..=5 {
        let t = max_t * i as f64 / 5.0;
        let px = x(t);
        // Whole seconds when the run is long enough for them to be exact.
        let label = if max_t >= 50.0 { format!("{t:.0}") } else { format!("{t:.1}") };
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            H - BOTTOM,
            H - BOTTOM + 16.0
        );
    }
    y_axis(&mut out, range);
    lines(&mut out, series, x, range);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_well_formed_svg_with_every_series() {
        let s = [
            Series {
                name: "tick_to_quote",
                points: vec![(0.0, 500), (0.9, 800), (0.99, 2_000), (0.999, 40_000)],
                samples: 0,
            },
            Series::distribution("parse <raw>", &[(0.0, 200), (0.99, 900), (0.999, 990)], 100),
        ];
        assert_eq!(s[1].points.len(), 2, "100 samples support the 99th percentile, not the 99.9th");
        let svg = distribution_svg("latency", &s);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("parse &lt;raw&gt; (n=100)") && svg.contains("99.9%") && svg.contains("10.000 us"));
        assert!(svg.contains("latency (log scale)") && svg.contains("percentile (log scale"));
        let t = timeline_svg("per second", &[Series { name: "p50", points: vec![(1.0, 700), (2.0, 650)], samples: 0 }]);
        assert_eq!(t.matches("<polyline").count(), 1);
        // Empty input still draws axes.
        assert!(distribution_svg("empty", &[]).contains("</svg>"));
        assert_eq!(fmt_ns(1_500.0), "1.500 us");
    }
}
