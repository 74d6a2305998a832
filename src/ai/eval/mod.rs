//! Does the advice pay? `mmbot ai eval` and `mmbot ai compare --eval`.
//!
//! * [`calls`]: the advice log read back, call by call.
//! * [`outcome`]: the recording walked through the real hot path: what the
//!   market did after each snapshot (realised volatility, spread, mid move;
//!   the definitions are there), and the offline rules' view of it.
//! * [`score`]: accuracy per field next to the base rate and the offline
//!   rules, confusion tables, Brier scores.
//! * [`paired`]: the paired backtests (advice log, offline rules, none) and
//!   the verdict net of AI cost.
//! * [`compare`]: several models asked about the same recorded snapshots.
//! * [`render`]: the text tables.
//!
//! Everything here is deterministic: the same log, recording and config give
//! byte-identical output (no wall clock, no map iteration order).

pub mod calls;
pub mod compare;
pub mod outcome;
pub mod paired;
pub mod render;
pub mod score;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;
use calls::{read_calls, CallLog};
use outcome::{offline_rules, walk, Rules};
use score::{labels_of, realised_labels, score, FieldScore, Judged};

/// Why an evaluation could not run. Each says what, where, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read the advice log {path}: {detail}; give the file an `[ai] log` run wrote")]
    LogUnreadable { path: String, detail: String },
    #[error("the advice log {path} line {line} is not an advice record: {detail}; give the JSONL file an `[ai] log` run wrote")]
    Log { path: String, line: usize, detail: String },
    #[error("the advice log {path} holds no calls; run with [ai] log set until the advisor has called at least once")]
    EmptyLog { path: String },
    #[error("cannot read the recording {path}: {detail}")]
    Recording { path: String, detail: String },
    #[error("the recordings ({files}) hold no frames; give `mmbot record` files (`<recv_ts_ns> <json>` lines)")]
    NoFrames { files: String },
    #[error(
        "the recordings ({files}) have no depth event of the traded symbol {symbol}; set [market] symbol to the \
         recorded one"
    )]
    NoDepth { files: String, symbol: String },
    #[error(
        "the advice log's snapshots ({log_from} .. {log_to}) do not overlap the recording ({rec_from} .. {rec_to}); \
         give the recording of the same session as the log"
    )]
    NoOverlap { log_from: String, log_to: String, rec_from: String, rec_to: String },
    #[error("the backtest failed: {detail}")]
    Backtest { detail: String },
    #[error("{what}")]
    Usage { what: String },
}

impl EvalError {
    /// `mmbot ai eval` exit status: 2 for bad inputs, 1 for a failed backtest.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Backtest { .. } => 1,
            _ => 2,
        }
    }
}

/// A hot-path time as UTC (or raw ns when it is not a plausible date:
/// synthetic recordings start near 0).
pub fn show_ns(ns: i64) -> String {
    if ns > 946_684_800_000_000_000 {
        crate::stats::calendar::utc_iso(ns)
    } else {
        format!("{ns} ns")
    }
}

/// `mmbot ai eval`'s settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// A mid move beyond this over the TTL, bps, is a direction.
    pub direction_bps: f64,
    /// Run the paired backtests.
    pub backtests: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self { direction_bps: outcome::DIRECTION_BPS, backtests: true }
    }
}

/// Why calls were not judged, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Excluded {
    /// Failed or unusable calls: no advice to judge.
    pub no_advice: usize,
    /// Snapshots before the recording's first depth event.
    pub before_recording: usize,
    /// Windows running past the recording's end.
    pub past_end: usize,
}

/// A logged mid further than this from the recording's, bps, means the
/// recording is not the log's (or not all of it).
pub const MID_MISMATCH_BPS: f64 = 10.0;

/// One judged call, for the JSON output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRow {
    pub line: usize,
    pub snapshot_ns: i64,
    pub ttl_ns: i64,
    pub said: [&'static str; 3],
    pub confidence: Option<u8>,
    pub offline: [&'static str; 3],
    pub happened: [&'static str; 3],
    pub vol_bps: f64,
    pub spread_ratio: f64,
    pub move_bps: f64,
    pub events: usize,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub log: String,
    pub recordings: Vec<String>,
    pub symbol: String,
    pub frames: u64,
    pub recording_from: String,
    pub recording_to: String,
    pub log_from: String,
    pub log_to: String,
    pub routes: Vec<String>,
    pub calls: usize,
    /// Calls whose reply was dropped on arrival (late, over budget): still
    /// judged (the model said it), never applied.
    pub dropped: usize,
    /// Judged calls whose logged mid differs from the recording's by more
    /// than [`MID_MISMATCH_BPS`]: a warning that the recording is not the log's.
    pub mid_mismatches: usize,
    pub judged: usize,
    pub excluded: Excluded,
    pub definitions: Vec<String>,
    pub fields: Vec<FieldScore>,
    /// AI cost of the calls in the recording's span, USD, and its estimated part.
    pub cost_usd: f64,
    pub cost_estimated_usd: f64,
    /// Calls priced by estimate.
    pub estimated_calls: usize,
    pub paired: Option<paired::Paired>,
    pub rows: Vec<CallRow>,
}

/// The realised-label definitions, as printed.
pub fn definitions(rules: &Rules) -> Vec<String> {
    vec![
        format!(
            "volatility: realised per-event volatility of the mid over (snapshot, snapshot + TTL], 1e4 x sqrt(mean \
             squared log mid return between consecutive depth events), bps: low <= {}, high >= {}, else medium \
             (the offline rules' thresholds)",
            rules.low_vol_bps, rules.high_vol_bps
        ),
        format!(
            "spread: mean spread over the window's depth events / the offline rules' slow average of the spread \
             at the snapshot (EWMA, weight 0.1 per advisor interval): narrow < {}x, wide > {}x, else normal",
            rules.narrow_below, rules.wide_above
        ),
        format!(
            "direction: mid at the window's end vs the mid at the snapshot: up > +{0} bps, down < -{0} bps, else \
             sideways (\"neutral\" advice counts as sideways)",
            rules.direction_bps
        ),
        "brier: confidence/100 as the probability that the stated label is right; mean (p - hit)^2, lower is \
         better, 0.25 = always 50%"
            .to_string(),
    ]
}

/// Judges `log` against `files`.
pub fn evaluate(log: &Path, files: &[PathBuf], config: &Config, opts: &EvalOptions) -> Result<EvalReport, EvalError> {
    let calls: CallLog = read_calls(log)?;
    let at: Vec<i64> = calls.calls.iter().map(|c| c.snapshot_ns).collect();
    let path = walk(files, config, &at)?;
    let names = || files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    if path.frames == 0 {
        return Err(EvalError::NoFrames { files: names() });
    }
    let symbol = path.symbol.clone();
    let Some((depth_from, _)) = path.depth_span() else {
        return Err(EvalError::NoDepth { files: names(), symbol });
    };
    let (log_from, log_to) = calls.span().expect("a read log holds calls");
    if log_to < depth_from || log_from > path.last_frame_ns {
        return Err(EvalError::NoOverlap {
            log_from: show_ns(log_from),
            log_to: show_ns(log_to),
            rec_from: show_ns(path.first_frame_ns),
            rec_to: show_ns(path.last_frame_ns),
        });
    }
    let rules = Rules::from_offline(&offline_rules(config), opts.direction_bps);
    let mut excluded = Excluded::default();
    let mut judged = Vec::new();
    let mut rows = Vec::new();
    let (mut cost, mut est, mut est_calls) = (0.0f64, 0.0f64, 0usize);
    let mut routes: Vec<String> = Vec::new();
    let (mut dropped, mut mid_mismatches) = (0usize, 0usize);
    for (call, seen) in calls.calls.iter().zip(&path.seen) {
        let in_span = call.snapshot_ns >= path.first_frame_ns && call.snapshot_ns <= path.last_frame_ns;
        if in_span {
            let c = call.cost_usd.unwrap_or(0.0);
            cost += c;
            if call.estimated {
                est += c;
                est_calls += 1;
            }
        }
        dropped += usize::from(call.dropped.is_some());
        if !routes.contains(&call.route) {
            routes.push(call.route.clone());
        }
        let Some(advice) = call.advice else {
            excluded.no_advice += 1;
            continue;
        };
        let Some(seen) = seen.filter(|_| call.snapshot_ns >= depth_from) else {
            excluded.before_recording += 1;
            continue;
        };
        if !path.covers(call.snapshot_ns, advice.ttl_ns) {
            excluded.past_end += 1;
            continue;
        }
        let here = seen.snapshot.features.mid;
        if call.mid.is_some_and(|m| here <= 0.0 || ((m - here) / here * 1e4).abs() > MID_MISMATCH_BPS) {
            mid_mismatches += 1;
        }
        let r = path.realise(&seen, advice.ttl_ns, &rules);
        let j = Judged {
            said: labels_of(&advice),
            confidence: call.confidence_given.then_some(advice.confidence),
            offline: labels_of(&seen.offline),
            offline_confidence: seen.offline.confidence,
            happened: realised_labels(&r),
        };
        let names = |l: [usize; 3]| [0, 1, 2].map(|k| score::LABELS[k][l[k]]);
        rows.push(CallRow {
            line: call.line,
            snapshot_ns: call.snapshot_ns,
            ttl_ns: advice.ttl_ns,
            said: names(j.said),
            confidence: j.confidence,
            offline: names(j.offline),
            happened: names(j.happened),
            vol_bps: paired::round8(r.vol_bps),
            spread_ratio: paired::round8(r.spread_ratio),
            move_bps: paired::round8(r.move_bps),
            events: r.events,
        });
        judged.push(j);
    }
    let paired = if opts.backtests { Some(paired::paired(files, config, log, cost, est)?) } else { None };
    Ok(EvalReport {
        log: log.display().to_string(),
        recordings: files.iter().map(|p| p.display().to_string()).collect(),
        symbol: path.symbol.clone(),
        frames: path.frames,
        recording_from: show_ns(path.first_frame_ns),
        recording_to: show_ns(path.last_frame_ns),
        log_from: show_ns(log_from),
        log_to: show_ns(log_to),
        routes,
        calls: calls.calls.len(),
        dropped,
        mid_mismatches,
        judged: judged.len(),
        excluded,
        definitions: definitions(&rules),
        fields: score(&judged),
        cost_usd: paired::round8(cost),
        cost_estimated_usd: paired::round8(est),
        estimated_calls: est_calls,
        paired,
        rows,
    })
}
