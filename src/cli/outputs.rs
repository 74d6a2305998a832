//! What a run leaves behind, in one folder: the report JSON, one `.hgrm`
//! percentile file per stage (HdrHistogram's plotter reads them), and the
//! latency pictures (`latency.svg`, `timeline.svg`).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::backtest::Report;
use crate::stats::calendar::civil_from_days;
use crate::stats::latency::{write_hgrm, Stage, StageHistograms};
use crate::stats::plot::{distribution_svg, timeline_svg, Series};

/// `mmbot-out/<UTC timestamp>/` under the current directory, created.
pub fn timestamped_dir(base: &Path) -> anyhow::Result<PathBuf> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let dir = base.join(format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The strategy's file name, without its folder or hash: a report names a
/// script `dir/name.rhai (fnv1a <hash>, compiled)`.
pub fn strategy_file(strategy: &str) -> &str {
    let base = strategy.rsplit('/').next().unwrap_or(strategy);
    base.split(" (").next().unwrap_or(base)
}

/// Writes the plots drawn from a report (its distributions and timeline).
pub fn write_plots(dir: &Path, report: &Report) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let series: Vec<Series<'_>> = Stage::ALL
        .iter()
        .filter(|s| **s != Stage::FeedDelay)
        .filter_map(|s| {
            let points = report.perf.distribution.get(s.name())?;
            let n = report.perf.latency_ns.get(s.name()).map_or(0, |p| p.count);
            (!points.is_empty() && n > 0).then(|| Series::distribution(s.name(), points, n))
        })
        .collect();
    let title =
        format!("mmbot latency by stage: {} ({})", report.trading.symbol, strategy_file(&report.trading.strategy));
    let path = dir.join("latency.svg");
    std::fs::write(&path, distribution_svg(&title, &series)).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    if !report.perf.timeline.is_empty() {
        let p50 = report.perf.timeline.iter().map(|t| (t.t_s, t.p50_ns)).collect();
        let p99 = report.perf.timeline.iter().map(|t| (t.t_s, t.p99_ns)).collect();
        let n = report.perf.timeline.iter().map(|t| t.count).sum();
        let svg = timeline_svg(
            &format!(
                "tick_to_quote per second: {} ({})",
                report.trading.symbol,
                strategy_file(&report.trading.strategy)
            ),
            &[Series { name: "p50", points: p50, samples: n }, Series { name: "p99", points: p99, samples: n }],
        );
        let path = dir.join("timeline.svg");
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The report as JSON, with the live feed's section as `feed`. (Once
/// `backtest::Report` has a `feed` field of its own, this is plain
/// serialization.)
pub fn report_json(report: &Report, feed: Option<&crate::feed::health::FeedReport>) -> anyhow::Result<String> {
    let mut v = serde_json::to_value(report)?;
    if let (Some(f), Some(obj)) = (feed, v.as_object_mut()) {
        obj.insert("feed".into(), serde_json::to_value(f)?);
    }
    Ok(serde_json::to_string_pretty(&v)?)
}

/// Writes one histogram as an `.hgrm` percentile file.
pub fn write_hgrm_file(path: &Path, h: &hdrhistogram::Histogram<u64>) -> anyhow::Result<()> {
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    write_hgrm(h, &mut f).with_context(|| format!("writing {}", path.display()))
}

/// Writes everything: report.json, `<stage>.hgrm` for each measured stage, plots.
pub fn write_all(dir: &Path, report: &Report, hist: &StageHistograms) -> anyhow::Result<Vec<PathBuf>> {
    write_all_with_feed(dir, report, None, hist)
}

/// [`write_all`], with the live feed's section (`feed`) in report.json.
pub fn write_all_with_feed(
    dir: &Path,
    report: &Report,
    feed: Option<&crate::feed::health::FeedReport>,
    hist: &StageHistograms,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let path = dir.join("report.json");
    std::fs::write(&path, report_json(report, feed)? + "\n").with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for s in Stage::ALL {
        let h = hist.histogram(s);
        if h.is_empty() {
            continue;
        }
        let path = dir.join(format!("{}.hgrm", s.name()));
        write_hgrm_file(&path, h)?;
        written.push(path);
    }
    written.extend(write_plots(dir, report)?);
    Ok(written)
}
