//! The evaluation as text tables: what a person reads first. Fixed number
//! formats, no times of the run, so equal inputs print equal bytes.

use std::fmt::Write;

use crate::ai::eval::compare::CompareReport;
use crate::ai::eval::paired::{money, signed, Paired};
use crate::ai::eval::score::{FieldScore, LABELS};
use crate::ai::eval::EvalReport;

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn opt3(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

/// The per-field accuracy table.
pub fn fields_table(out: &mut String, fields: &[FieldScore], who: &str) {
    let _ = writeln!(
        out,
        "{:<11} {:>6} {:>9} {:>22} {:>9} {:>8} {:>8}",
        "field", "calls", who, "always-majority", "offline", "brier", "off.brier"
    );
    for f in fields {
        let _ = writeln!(
            out,
            "{:<11} {:>6} {:>9} {:>22} {:>9} {:>8} {:>8}",
            f.field,
            f.calls,
            pct(f.accuracy),
            format!("{} ({})", pct(f.majority_accuracy), f.majority),
            pct(f.offline_accuracy),
            opt3(f.brier),
            opt3(f.offline_brier)
        );
    }
}

/// One field's confusion table: rows said, columns happened.
pub fn confusion(out: &mut String, f: &FieldScore, labels: &[&str; 3]) {
    let _ = writeln!(out, "  {} (rows: said, columns: happened)", f.field);
    let _ = writeln!(out, "  {:<10} {:>8} {:>8} {:>8}", "", labels[0], labels[1], labels[2]);
    for (i, row) in f.confusion.iter().enumerate() {
        let _ = writeln!(out, "  {:<10} {:>8} {:>8} {:>8}", labels[i], row[0], row[1], row[2]);
    }
}

/// The paired backtests and the verdict.
pub fn paired_table(out: &mut String, p: &Paired) {
    let q = &p.quote;
    let _ = writeln!(out, "paired backtests ({} {}, same config and seed):", p.symbol, p.strategy);
    let _ = writeln!(
        out,
        "{:<14} {:>14} {:>6} {:>14} {:>14} {:>8} {:>12} {:>14}",
        "advice",
        format!("pnl {q}"),
        "fills",
        "end position",
        "max drawdown",
        "updates",
        "ai cost USD",
        format!("net {q}")
    );
    for l in &p.legs {
        let cost =
            if l.ai_cost_estimated_usd > 0.0 { format!("{}*", money(l.ai_cost_usd)) } else { money(l.ai_cost_usd) };
        let _ = writeln!(
            out,
            "{:<14} {:>14} {:>6} {:>14} {:>14} {:>8} {:>12} {:>14}",
            l.name,
            signed(l.pnl),
            l.fills,
            l.end_position,
            money(l.max_drawdown),
            l.advice_updates,
            cost,
            signed(l.net)
        );
    }
    if p.legs.iter().any(|l| l.ai_cost_estimated_usd > 0.0) {
        let _ = writeln!(
            out,
            "(* includes {} USD estimated: calls without reported usage)",
            money(p.legs[0].ai_cost_estimated_usd)
        );
    }
    let _ = writeln!(out, "verdict: {}", p.verdict);
    let _ = writeln!(out, "         {}", p.verdict_offline);
}

/// `mmbot ai eval`'s text report.
pub fn eval_text(r: &EvalReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "mmbot ai eval: {} against {}", r.log, r.recordings.join(", "));
    let _ = writeln!(out, "  recording  {} {} frames, {} .. {}", r.symbol, r.frames, r.recording_from, r.recording_to);
    let _ = writeln!(
        out,
        "  log        {} calls ({}), snapshots {} .. {}",
        r.calls,
        r.routes.join(", "),
        r.log_from,
        r.log_to
    );
    if r.dropped > 0 {
        let _ =
            writeln!(out, "  dropped    {} replies arrived too late or over budget: judged, never applied", r.dropped);
    }
    if r.mid_mismatches > 0 {
        let _ = writeln!(
            out,
            "  WARNING    {} judged calls' logged mid differs from the recording's by more than {} bps: is this the \
             recording of the log's session?",
            r.mid_mismatches,
            crate::ai::eval::MID_MISMATCH_BPS
        );
    }
    let e = &r.excluded;
    let _ = writeln!(
        out,
        "  judged     {} calls; left out: {} without advice, {} before the recording, {} whose TTL runs past its end",
        r.judged, e.no_advice, e.before_recording, e.past_end
    );
    let _ = writeln!(
        out,
        "  ai cost    {} USD over the recording's span{}",
        money(r.cost_usd),
        if r.estimated_calls > 0 {
            format!(
                " ({} USD estimated, {} calls without reported usage)",
                money(r.cost_estimated_usd),
                r.estimated_calls
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "realised labels:");
    for d in &r.definitions {
        let _ = writeln!(out, "  - {d}");
    }
    let _ = writeln!(out);
    if r.judged == 0 {
        let _ = writeln!(out, "no call could be judged (see \"left out\" above)");
    } else {
        let _ = writeln!(out, "accuracy (majority = always predicting the most frequent realised label):");
        fields_table(&mut out, &r.fields, "advice");
        let _ = writeln!(out);
        let _ = writeln!(out, "confusion:");
        for (k, f) in r.fields.iter().enumerate() {
            confusion(&mut out, f, &LABELS[k]);
        }
    }
    if let Some(p) = &r.paired {
        let _ = writeln!(out);
        paired_table(&mut out, p);
    }
    out
}

/// `mmbot ai compare --eval`'s text report.
pub fn compare_text(r: &CompareReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "mmbot ai compare --eval: {} snapshots of {} ({} .. {}), {} trial(s) each, TTL {} s",
        r.snapshots,
        r.symbol,
        r.recording_from,
        r.recording_to,
        r.trials,
        r.ttl_ns as f64 / 1e9
    );
    let _ = writeln!(
        out,
        "{:<4} {:<24} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>10} {:>12}",
        "rank", "model", "score", "vol", "spread", "dir", "agree", "answered", "p50 ms", "cost USD"
    );
    for (i, m) in r.models.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:<4} {:<24} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>10} {:>12}",
            i + 1,
            m.model,
            pct(m.score),
            pct(m.accuracy[0]),
            pct(m.accuracy[1]),
            pct(m.accuracy[2]),
            pct(m.agreement),
            format!("{}/{}", m.answered, m.asked),
            m.latency_p50_ms.map_or_else(|| "-".to_string(), |v| format!("{v:.0}")),
            m.cost_usd.map_or_else(|| "unpriced".to_string(), money),
        );
    }
    for b in &r.baselines {
        let _ = writeln!(
            out,
            "{:<4} {:<24} {:>7} {:>7} {:>7} {:>7}",
            "-",
            b.name,
            pct(b.score),
            pct(b.accuracy[0]),
            pct(b.accuracy[1]),
            pct(b.accuracy[2])
        );
    }
    for m in r.models.iter().filter(|m| m.first_error.is_some()) {
        let _ = writeln!(out, "{}: {}", m.model, m.first_error.as_deref().unwrap_or(""));
    }
    let _ = writeln!(
        out,
        "(score = mean accuracy over the three fields, a failed or unusable answer counting as wrong; agree = share \
         of snapshots where every trial gave the same three labels; ranked by score, then agreement, p50 latency, cost)"
    );
    out
}
