//! `mmbot report FILE.json [--svg DIR]`: re-renders a saved report (from
//! `mmbot demo`, `run`, `paper`, `replay` or `backtest`) as a table in the
//! terminal and, with `--svg`, as the latency plots.

use std::path::PathBuf;

use anyhow::Context;

use crate::backtest::Report;
use crate::cli::outputs::write_plots;
use crate::stats::plot::fmt_ns;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A report JSON file.
    pub file: PathBuf,
    /// Also write latency.svg (and timeline.svg) into this folder.
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let report: Report = serde_json::from_str(&text).with_context(|| {
        format!("{} is not an mmbot report (written by demo, run, paper, replay or backtest)", args.file.display())
    })?;
    print!("{}", render(&report));
    // The live feed's section (`mmbot paper`/`run` over a live feed).
    if let Some(feed) = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v.get("feed").cloned()) {
        print!("{}", render_feed(&feed));
    }
    if let Some(dir) = &args.svg {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for p in write_plots(dir, &report)? {
            crate::say!("mmbot report: wrote {}", p.display());
        }
    }
    Ok(0)
}

/// The report as a terminal table.
pub fn render(r: &Report) -> String {
    let t = &r.trading;
    let i = &r.input;
    // A script's path can be long; its file name (and hash) says enough here.
    let strategy = t.strategy.rsplit('/').next().unwrap_or_default();
    let mut out = format!(
        "{} ({}), advice {}: {} quotes ({} pulled), {} orders, {} fills, volume {}, position {}, pnl {}, fees {}\n\
         input: {} frames, {} depth events, {} trades, {} rejected, {} gaps, {} resyncs; {:.2} s, {:.0} events/s\n\n",
        t.symbol,
        strategy,
        t.advice,
        t.quotes,
        t.pulled,
        t.orders,
        t.fills,
        t.volume,
        t.position,
        t.pnl,
        t.fees,
        i.frames,
        i.depth_events,
        i.trades,
        i.rejected,
        i.gaps,
        i.resyncs,
        r.perf.wall_s,
        r.perf.events_per_s
    );
    if let Some(ai) = crate::cli::dashboard::advisor::summary_line(r) {
        out.push_str(&ai);
        out.push_str("\n\n");
    }
    if let Some(s) = &r.stats {
        out.push_str(&s.summary());
        out.push_str("\n\n");
    }
    if let Some(s) = &r.script {
        out.push_str(&s.summary());
        out.push('\n');
        for e in s.errors_by_message.iter().skip(1) {
            out.push_str(&format!("  {}x {}\n", e.count, e.message));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "{:<14} {:>9} {:>12} {:>12} {:>12} {:>12} {:>12}\n",
        "stage", "count", "p50", "p90", "p99", "p99.9", "max"
    ));
    // Pipeline order; stages with no samples are left out.
    for stage in crate::stats::latency::Stage::ALL {
        let name = stage.name();
        let Some(p) = r.perf.latency_ns.get(name).filter(|p| p.count > 0) else { continue };
        out.push_str(&format!(
            "{:<14} {:>9} {:>12} {:>12} {:>12} {:>12} {:>12}\n",
            name,
            p.count,
            fmt_ns(p.p50 as f64),
            fmt_ns(p.p90 as f64),
            fmt_ns(p.p99 as f64),
            fmt_ns(p.p999 as f64),
            fmt_ns(p.max as f64)
        ));
    }
    if r.perf.feed_delay_negative > 0 {
        out.push_str(&format!(
            "feed_delay: {} events arrived before their exchange time (this clock is behind the exchange's); \
             not in the percentiles\n",
            r.perf.feed_delay_negative
        ));
    }
    out
}

/// The `feed` section of a live run's report as a few lines.
pub fn render_feed(f: &serde_json::Value) -> String {
    let n = |k: &str| f.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    let x = |k: &str| f.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
    let map = |k: &str| {
        let parts: Vec<String> = f
            .get(k)
            .and_then(|v| v.as_object())
            .map(|o| o.iter().filter(|(_, v)| v.as_u64().unwrap_or(0) > 0).map(|(k, v)| format!("{v} {k}")).collect())
            .unwrap_or_default();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    };
    let snap = |k: &str| f.pointer(&format!("/snapshots/{k}")).and_then(|v| v.as_u64()).unwrap_or(0);
    let pulled = |k: &str| f.pointer(&format!("/quotes_pulled/{k}")).and_then(|v| v.as_u64()).unwrap_or(0);
    format!(
        "\nfeed: {} connections; disconnects: {}; {} renewals made before break ({} forced, longest catch-up {:.0} ms); \
         longest reconnect wait {:.0} ms\n\
         snapshots: {} asked ({} second requests), {} answered, {} failed, {} refused as too old; \
         {} books rebuilt from depth20 (top 20 levels only)\n\
         sync: {} gaps, {} resyncs (lost sync: {}); unsynced {:.0} ms in all, longest {:.0} ms; \
         quotes pulled {} ({} stale, {} on sync loss); bookTicker {} checked, {} mismatched\n",
        n("connections"),
        map("disconnects"),
        n("switches"),
        n("switches_forced"),
        x("switch_wait_ms_max"),
        x("reconnect_wait_ms_max"),
        snap("asked"),
        snap("hedged"),
        snap("answered"),
        snap("failed"),
        snap("refused_too_old"),
        snap("top20_rebuilds"),
        n("gaps"),
        n("resyncs"),
        map("resyncs_by_cause"),
        x("unsynced_ms_total"),
        x("unsynced_ms_longest"),
        pulled("total"),
        pulled("stale"),
        pulled("sync_loss"),
        n("book_ticker_checked"),
        n("book_ticker_mismatched"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_section_is_rendered() {
        let link = crate::feed::live::LinkStats {
            connects: 3,
            switches: 2,
            disconnects: {
                let mut d = [0; crate::feed::live::REASON_COUNT];
                d[crate::feed::connector::Reason::ServerShutdown as usize] = 2;
                d
            },
            ..Default::default()
        };
        let r = crate::feed::health::FeedReport::build(
            &link,
            Default::default(),
            &Default::default(),
            &crate::feed::health::SyncClock::new(0),
            0,
        );
        let text = render_feed(&serde_json::to_value(&r).unwrap());
        assert!(text.contains("3 connections; disconnects: 2 server_shutdown; 2 renewals made before break"), "{text}");
    }
}
