//! What a sweep writes: `sweep.csv` (one row per point: its parameters,
//! then the numbers), `sweep.json` (the same, plus each point's whole
//! backtest report, so statistics added to the report later flow through),
//! heatmaps for two-parameter grids, and the walk-forward table
//! (`walk_forward.csv`, and the text printed).

use std::fmt::Write;

use crate::research::grid::Point;
use crate::research::heatmap::{fmt_value, heatmap_svg, Heatmap};
use crate::research::sweep::{Metric, Outcome};
use crate::research::walk_forward::WindowResult;

/// A CSV field, quoted when it has to be.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Parameter names over all points, in order of first appearance.
pub fn param_names(points: &[Point]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in points {
        for (n, _) in &p.params {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    names
}

const COLUMNS: [&str; 11] = [
    "pnl",
    "fees",
    "fills",
    "orders",
    "cancels",
    "quotes",
    "volume",
    "max_abs_position",
    "position",
    "sharpe",
    "frames",
];

/// `sweep.csv`: `point`, one column per parameter, `script`, the numbers,
/// every `stats.*` number the reports carry, and `error`.
pub fn sweep_csv(points: &[Point], results: &[Result<Outcome, String>]) -> String {
    let names = param_names(points);
    let stat_keys: std::collections::BTreeSet<&String> =
        results.iter().flatten().flat_map(|o| o.metrics.stats.keys()).collect();
    let mut out = String::new();
    let mut header = vec!["point".to_string()];
    header.extend(names.iter().cloned());
    header.push("script".into());
    header.extend(COLUMNS.iter().map(|c| c.to_string()));
    header.extend(stat_keys.iter().map(|k| format!("stats.{k}")));
    header.push("error".into());
    out.push_str(&header.iter().map(|h| field(h)).collect::<Vec<_>>().join(","));
    out.push('\n');
    for (i, (p, r)) in points.iter().zip(results).enumerate() {
        let mut row = vec![i.to_string()];
        row.extend(names.iter().map(|n| p.value(n).unwrap_or("").to_string()));
        row.push(p.script.as_ref().map(|s| s.display().to_string()).unwrap_or_default());
        match r {
            Ok(o) => {
                let m = &o.metrics;
                row.extend([
                    o.report.trading.pnl.clone(),
                    o.report.trading.fees.clone(),
                    m.fills.to_string(),
                    m.orders.to_string(),
                    m.cancels.to_string(),
                    m.quotes.to_string(),
                    o.report.trading.volume.clone(),
                    o.report.trading.max_abs_position.clone(),
                    o.report.trading.position.clone(),
                    format!("{:.4}", m.sharpe),
                    o.report.input.frames.to_string(),
                ]);
                row.extend(stat_keys.iter().map(|k| m.stats.get(*k).map_or(String::new(), |v| v.to_string())));
                row.push(String::new());
            }
            Err(e) => {
                row.extend(std::iter::repeat_n(String::new(), COLUMNS.len() + stat_keys.len()));
                row.push(e.clone());
            }
        }
        out.push_str(&row.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// `sweep.json`: `{"sweep": meta, "points": [{point, params, script,
/// metrics, report | error}]}`.
pub fn sweep_json(points: &[Point], results: &[Result<Outcome, String>], meta: serde_json::Value) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = points
        .iter()
        .zip(results)
        .enumerate()
        .map(|(i, (p, r))| {
            let params: serde_json::Map<String, serde_json::Value> =
                p.params.iter().map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone()))).collect();
            let mut row = serde_json::json!({
                "point": i,
                "params": params,
                "script": p.script.as_ref().map(|s| s.display().to_string()),
            });
            match r {
                Ok(o) => {
                    row["metrics"] = serde_json::to_value(&o.metrics).unwrap_or_default();
                    row["report"] = serde_json::to_value(&o.report).unwrap_or_default();
                }
                Err(e) => row["error"] = serde_json::Value::String(e.clone()),
            }
            row
        })
        .collect();
    serde_json::json!({ "sweep": meta, "points": rows })
}

/// Heatmaps of `metric` when the points form a two-parameter grid: one per
/// script, as (file name, SVG). `None` for any other shape.
pub fn heatmaps(
    points: &[Point],
    results: &[Result<Outcome, String>],
    metric: Metric,
    sample: &str,
) -> Option<Vec<(String, String)>> {
    let names = param_names(points);
    if names.len() != 2 || points.iter().any(|p| p.params.len() != 2) {
        return None;
    }
    let values = |n: &str| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for p in points {
            if let Some(x) = p.value(n).filter(|x| !v.iter().any(|y| y == x)) {
                v.push(x.to_string());
            }
        }
        v
    };
    let (xs, ys) = (values(&names[0]), values(&names[1]));
    let mut scripts: Vec<Option<&std::path::PathBuf>> = Vec::new();
    for p in points {
        if !scripts.contains(&p.script.as_ref()) {
            scripts.push(p.script.as_ref());
        }
    }
    let unit = match metric {
        Metric::Pnl => "PnL, net of fees (quote asset)",
        Metric::Sharpe => "Sharpe ratio (per-minute PnL, annualised)",
    };
    let mut out = Vec::new();
    for script in &scripts {
        let mut cells = vec![None; xs.len() * ys.len()];
        for (p, r) in points.iter().zip(results).filter(|(p, _)| p.script.as_ref() == *script) {
            let (Some(x), Some(y)) = (p.value(&names[0]), p.value(&names[1])) else { continue };
            let xi = xs.iter().position(|v| v == x)?;
            let yi = ys.iter().position(|v| v == y)?;
            cells[yi * xs.len() + xi] = r.as_ref().ok().map(|o| o.metrics.get(metric)).filter(|v| v.is_finite());
        }
        let strategy = script.map_or_else(
            || "config strategy".to_string(),
            |s| s.file_name().map_or_else(|| s.display().to_string(), |f| f.to_string_lossy().into_owned()),
        );
        let title = format!("{} by {} and {} ({strategy})", metric.name(), names[0], names[1]);
        let svg = heatmap_svg(&Heatmap {
            title: &title,
            metric: unit,
            scale: metric.name(),
            x_name: &names[0],
            x_values: &xs,
            y_name: &names[1],
            y_values: &ys,
            cells: &cells,
            sample,
        });
        let stem = match (scripts.len(), script) {
            (1, _) | (_, None) => format!("heatmap_{}", metric.name()),
            (_, Some(s)) => format!(
                "heatmap_{}_{}",
                metric.name(),
                s.file_stem().map_or_else(|| "script".into(), |f| f.to_string_lossy().into_owned())
            ),
        };
        out.push((format!("{stem}.svg"), svg));
    }
    Some(out)
}

/// Seconds from `t0`, for window labels.
fn rel(ns: i64, t0: i64) -> String {
    format!("{:.0}", (ns - t0) as f64 / 1e9)
}

/// `walk_forward.csv`: one row per window (PnL columns beside the metric's
/// when the metric is not PnL).
pub fn walk_forward_csv(points: &[Point], windows: &[WindowResult], metric: Metric, t0: i64) -> String {
    let m = metric.name();
    let pnl_too = metric != Metric::Pnl;
    let mut header = vec![
        "window".to_string(),
        "train_start_ns".into(),
        "train_end_ns".into(),
        "test_start_ns".into(),
        "test_end_ns".into(),
        "train_from_s".into(),
        "test_from_s".into(),
        "test_to_s".into(),
        "chosen_point".into(),
        "chosen".into(),
        format!("chosen_train_{m}"),
        format!("chosen_test_{m}"),
    ];
    if pnl_too {
        header.push("chosen_test_pnl".into());
    }
    header.extend(["hindsight_point".to_string(), "hindsight".into(), format!("hindsight_test_{m}")]);
    if pnl_too {
        header.push("hindsight_test_pnl".into());
    }
    let mut out = header.join(",") + "\n";
    for w in windows {
        let mut row = vec![
            w.index.to_string(),
            w.train_ns.0.to_string(),
            w.train_ns.1.to_string(),
            w.test_ns.0.to_string(),
            w.test_ns.1.to_string(),
            rel(w.train_ns.0, t0),
            rel(w.test_ns.0, t0),
            rel(w.test_ns.1, t0),
            w.chosen.to_string(),
            field(&points[w.chosen].label()),
            w.chosen_train.to_string(),
            w.chosen_test.to_string(),
        ];
        if pnl_too {
            row.push(w.chosen_test_pnl.to_string());
        }
        row.extend([w.hindsight.to_string(), field(&points[w.hindsight].label()), w.hindsight_test.to_string()]);
        if pnl_too {
            row.push(w.hindsight_test_pnl.to_string());
        }
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// A point as short as it can be said among `points`: `#index` and only
/// the parameters that vary (by their last name part), plus its script.
pub fn short_label(points: &[Point], i: usize) -> String {
    let p = &points[i];
    let mut parts = vec![format!("#{i}")];
    for (n, v) in &p.params {
        if points.iter().any(|q| q.value(n) != Some(v.as_str())) {
            parts.push(format!("{}={v}", n.rsplit('.').next().unwrap_or(n)));
        }
    }
    if let Some(s) = p.script.as_ref().filter(|s| points.iter().any(|q| q.script.as_ref() != Some(*s))) {
        parts.push(s.file_name().map_or_else(|| s.display().to_string(), |f| f.to_string_lossy().into_owned()));
    }
    parts.join(" ")
}

/// The walk-forward table as printed, with the totals that show overfitting.
pub fn walk_forward_table(points: &[Point], windows: &[WindowResult], metric: Metric, t0: i64) -> String {
    let m = metric.name();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>3}  {:>15}  {:>15}  {:<28} {:>12} {:>12}   {:<28} {:>12}",
        "win",
        "train (s)",
        "test (s)",
        "chosen on train",
        format!("train {m}"),
        format!("test {m}"),
        "best in hindsight",
        format!("test {m}")
    );
    let clip =
        |s: String| if s.chars().count() > 28 { format!("{}~", s.chars().take(27).collect::<String>()) } else { s };
    for w in windows {
        let _ = writeln!(
            out,
            "{:>3}  {:>15}  {:>15}  {:<28} {:>12} {:>12}   {:<28} {:>12}",
            w.index,
            format!("{}..{}", rel(w.train_ns.0, t0), rel(w.train_ns.1, t0)),
            format!("{}..{}", rel(w.test_ns.0, t0), rel(w.test_ns.1, t0)),
            clip(short_label(points, w.chosen)),
            fmt_value(w.chosen_train),
            fmt_value(w.chosen_test),
            clip(short_label(points, w.hindsight)),
            fmt_value(w.hindsight_test)
        );
    }
    let chosen: f64 = windows.iter().map(|w| w.chosen_test_pnl).sum();
    let hindsight: f64 = windows.iter().map(|w| w.hindsight_test_pnl).sum();
    let kept = windows.iter().filter(|w| w.chosen == w.hindsight).count();
    let _ = writeln!(
        out,
        "out of sample over {} windows: pnl {} with the points chosen on training, {} with the best in hindsight; \
         the training choice was also the test's best in {kept} of {}",
        windows.len(),
        fmt_value(chosen),
        fmt_value(hindsight),
        windows.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::research::grid::{expand, Axis};

    #[test]
    fn short_labels_name_only_what_varies() {
        let axes =
            [Axis::parse("paper.latency_ms=5").unwrap(), Axis::parse("strategy.target_spread_pct=0,0.05").unwrap()];
        let points = expand(&axes, &[]);
        assert_eq!(short_label(&points, 1), "#1 target_spread_pct=0.05");
        assert_eq!(param_names(&points), ["paper.latency_ms", "strategy.target_spread_pct"]);
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(field("x,\"y\""), "\"x,\"\"y\"\"\"");
    }
}
