//! A two-parameter sweep as one picture: a heatmap of a metric (PnL by
//! default) over the grid, one cell per point with its value written in it,
//! axis titles naming the parameters, a colour scale with its values, and
//! the sample count. Standalone SVG, no dependency, like `stats::plot`.
//!
//! Colours diverge around zero (red for losses, white for flat, green for
//! gains), scaled by the largest absolute value, so the sign reads at a
//! glance and equal magnitudes look equal.

use std::fmt::Write;

/// What to draw.
pub struct Heatmap<'a> {
    pub title: &'a str,
    /// The metric's name and unit, e.g. "PnL (quote asset)".
    pub metric: &'a str,
    /// Its short name, over the colour scale ("pnl").
    pub scale: &'a str,
    pub x_name: &'a str,
    pub x_values: &'a [String],
    pub y_name: &'a str,
    pub y_values: &'a [String],
    /// Row-major: `cells[y * x_values.len() + x]`; `None` for a point that failed.
    pub cells: &'a [Option<f64>],
    /// What one cell is, for the caption ("1 backtest over 3 files, 12,345 frames").
    pub sample: &'a str,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A value short enough for a cell.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.001 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}

/// The colour of `v` on a scale of ±`max`: red, white, green.
fn colour(v: f64, max: f64) -> String {
    let t = if max > 0.0 { (v / max).clamp(-1.0, 1.0) } else { 0.0 };
    let (r, g, b) = if t >= 0.0 {
        // white to green (#1a9850)
        (255.0 - t * (255.0 - 26.0), 255.0 - t * (255.0 - 152.0), 255.0 - t * (255.0 - 80.0))
    } else {
        // white to red (#d73027)
        let t = -t;
        (255.0 - t * (255.0 - 215.0), 255.0 - t * (255.0 - 48.0), 255.0 - t * (255.0 - 39.0))
    };
    format!("#{:02x}{:02x}{:02x}", r.round() as u8, g.round() as u8, b.round() as u8)
}

/// The heatmap as an SVG document.
pub fn heatmap_svg(h: &Heatmap<'_>) -> String {
    let (nx, ny) = (h.x_values.len().max(1), h.y_values.len().max(1));
    let cell_w = (640.0 / nx as f64).clamp(48.0, 120.0);
    let cell_h = (400.0 / ny as f64).clamp(28.0, 80.0);
    let (left, top) = (150.0, 76.0);
    let (grid_w, grid_h) = (cell_w * nx as f64, cell_h * ny as f64);
    let scale_x = left + grid_w + 40.0;
    let width = (scale_x + 110.0).max(left + 620.0);
    let height = top + grid_h + 90.0;
    let max = h.cells.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(s, r#"<text x="{left}" y="24" font-size="15">{}</text>"#, escape(h.title));
    let _ = write!(
        s,
        r##"<text x="{left}" y="44" fill="#555">{} per point; {} points; each {}</text>"##,
        escape(h.metric),
        h.cells.iter().flatten().count(),
        escape(h.sample)
    );
    for (yi, yv) in h.y_values.iter().enumerate() {
        let y = top + yi as f64 * cell_h;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            left - 6.0,
            y + cell_h / 2.0,
            escape(yv)
        );
        for (xi, _) in h.x_values.iter().enumerate() {
            let x = left + xi as f64 * cell_w;
            let cell = h.cells.get(yi * h.x_values.len() + xi).copied().flatten();
            let (fill, label) = match cell {
                Some(v) => (colour(v, max), fmt_value(v)),
                None => ("#dddddd".to_string(), "failed".to_string()),
            };
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{cell_w:.1}" height="{cell_h:.1}" fill="{fill}" stroke="#bbbbbb"/><text x="{:.1}" y="{:.1}" text-anchor="middle" dominant-baseline="middle" font-size="11">{label}</text>"##,
                x + cell_w / 2.0,
                y + cell_h / 2.0
            );
        }
    }
    for (xi, xv) in h.x_values.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + (xi as f64 + 0.5) * cell_w,
            top + grid_h + 18.0,
            escape(xv)
        );
    }
    // Axis titles: the parameters' names.
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{}</text>"#,
        left + grid_w / 2.0,
        top + grid_h + 42.0,
        escape(h.x_name)
    );
    let _ = write!(
        s,
        r#"<text transform="translate(24 {:.1}) rotate(-90)" text-anchor="middle" font-weight="bold">{}</text>"#,
        top + grid_h / 2.0,
        escape(h.y_name)
    );
    // The colour scale, top (+max) to bottom (-max), with its values.
    let steps = 20;
    let bar_h = grid_h.max(120.0);
    for i in 0..steps {
        let v = max - 2.0 * max * (i as f64 + 0.5) / steps as f64;
        let _ = write!(
            s,
            r#"<rect x="{scale_x:.1}" y="{:.1}" width="18" height="{:.1}" fill="{}"/>"#,
            top + bar_h * i as f64 / steps as f64,
            bar_h / steps as f64 + 0.5,
            colour(v, max)
        );
    }
    for (frac, v) in [(0.0, max), (0.25, max / 2.0), (0.5, 0.0), (0.75, -max / 2.0), (1.0, -max)] {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" dominant-baseline="middle">{}</text>"#,
            scale_x + 24.0,
            top + bar_h * frac,
            fmt_value(v)
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{scale_x:.1}" y="{top:.1}" width="18" height="{bar_h:.1}" fill="none" stroke="#bbbbbb"/><text x="{scale_x:.1}" y="{:.1}" font-weight="bold">{}</text>"##,
        top - 8.0,
        escape(h.scale)
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_axes_scale_and_count_are_drawn() {
        let xs = vec!["0.1".to_string(), "0.2".into()];
        let ys = vec!["10".to_string(), "50".into()];
        let svg = heatmap_svg(&Heatmap {
            title: "pnl by gamma and latency",
            metric: "PnL (quote asset)",
            scale: "pnl",
            x_name: "gamma",
            x_values: &xs,
            y_name: "paper.latency_ms",
            y_values: &ys,
            cells: &[Some(1.5), Some(-3.0), None, Some(0.0)],
            sample: "1 backtest over 1 file <x>",
        });
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        for text in
            [">gamma<", ">paper.latency_ms<", ">1.50<", ">-3.00<", ">failed<", ">3.00<", "3 points", "&lt;x&gt;"]
        {
            assert!(svg.contains(text), "{text} missing");
        }
        // The largest loss is full red, zero white.
        assert!(svg.contains("#d73027") && svg.contains("#ffffff"));
    }
}
