//! The advice log read for judging: every call with its snapshot time, the
//! advice it gave (if any), its cost and whether that cost was estimated.
//!
//! Newer logs carry `snapshot_ns` (the hot-path time of the market state the
//! model was given); older ones only `market.time_ns` / `hot_time_ns`, and
//! the oldest the advice's own `received_ns`: the first present wins, so
//! every log written so far can be judged.

use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

use crate::ai::eval::EvalError;
use crate::ai::log::advice_from_json;
use crate::hot::advice::Advice;

/// One logged call.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedCall {
    /// 1-based line in the log.
    pub line: usize,
    /// Hot-path time of the snapshot the call described, ns.
    pub snapshot_ns: i64,
    /// The advice it gave (`None`: the call failed or was unusable).
    pub advice: Option<Advice>,
    /// The call's cost, USD (`None`: unpriced or free).
    pub cost_usd: Option<f64>,
    /// Whether that cost is an estimate (no `usage` from the server).
    pub estimated: bool,
    /// "openai gpt-5-mini", or provider and model from older logs.
    pub route: String,
    /// Dropped on arrival ("late", "over_budget"): its advice never applied.
    pub dropped: Option<String>,
    /// Whether the model gave a confidence (not defaulted by the reader).
    pub confidence_given: bool,
    /// The mid the model was shown (`market.mid`), to check the recording
    /// is the log's.
    pub mid: Option<f64>,
}

/// Every call in a log, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallLog {
    pub calls: Vec<LoggedCall>,
}

impl CallLog {
    /// Snapshot times of the calls, (first, last); `None` for an empty log.
    pub fn span(&self) -> Option<(i64, i64)> {
        let first = self.calls.iter().map(|c| c.snapshot_ns).min()?;
        let last = self.calls.iter().map(|c| c.snapshot_ns).max()?;
        Some((first, last))
    }
}

/// Reads `path`. A last line cut short (a killed writer) is ignored, as the
/// backtest's replay does; any other unreadable line is an error naming it.
pub fn read_calls(path: &Path) -> Result<CallLog, EvalError> {
    let garbled = |line: usize, detail: String| EvalError::Log { path: path.display().to_string(), line, detail };
    let file = std::fs::File::open(path)
        .map_err(|e| EvalError::LogUnreadable { path: path.display().to_string(), detail: e.to_string() })?;
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| EvalError::LogUnreadable { path: path.display().to_string(), detail: e.to_string() })?;
    let last = lines.iter().rposition(|l| !l.trim().is_empty()).unwrap_or(0);
    let mut calls = Vec::new();
    for (i, text) in lines.iter().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) if i == last && i > 0 => break,
            Err(e) => return Err(garbled(i + 1, format!("not JSON ({e})"))),
        };
        if !v.is_object() {
            return Err(garbled(i + 1, "not a JSON object".into()));
        }
        let advice =
            match &v["advice"] {
                Value::Null => None,
                a => Some(advice_from_json(a).ok_or_else(|| {
                    garbled(i + 1, "its \"advice\" object lacks a field or has an unknown value".into())
                })?),
            };
        let snapshot_ns = v["snapshot_ns"]
            .as_i64()
            .or_else(|| v["market"]["time_ns"].as_i64())
            .or_else(|| v["hot_time_ns"].as_i64())
            .or_else(|| advice.map(|a| a.received_ns))
            .ok_or_else(|| {
                garbled(i + 1, "it has no snapshot time (snapshot_ns, market.time_ns or advice.received_ns)".into())
            })?;
        let route = match v["route"].as_str() {
            Some(r) => r.to_string(),
            None => {
                let p = v["provider"].as_str().unwrap_or("?");
                let m = v["model"].as_str().unwrap_or("?");
                if p == m {
                    p.to_string()
                } else {
                    format!("{p} {m}")
                }
            }
        };
        let cost_usd = v["cost_usd"].as_f64().filter(|c| c.is_finite());
        // Older logs: a cost without reported usage was an estimate.
        let estimated = v["estimated"]
            .as_bool()
            .unwrap_or_else(|| cost_usd.is_some_and(|c| c > 0.0) && v["usage_reported"].as_bool() == Some(false));
        let dropped = v["dropped"].as_str().map(str::to_string);
        let confidence_given =
            !v["reply"]["defaulted"].as_array().is_some_and(|d| d.iter().any(|x| x.as_str() == Some("confidence")));
        let mid = v["market"]["mid"].as_f64().filter(|m| m.is_finite() && *m > 0.0);
        calls.push(LoggedCall {
            line: i + 1,
            snapshot_ns,
            advice,
            cost_usd,
            estimated,
            route,
            dropped,
            confidence_given,
            mid,
        });
    }
    if calls.is_empty() {
        return Err(EvalError::EmptyLog { path: path.display().to_string() });
    }
    Ok(CallLog { calls })
}

/// One log line carrying only what [`read_calls`] and the backtest's replay
/// read (tests and examples build logs with it).
pub fn minimal_line(snapshot_ns: i64, advice: Option<&Advice>, cost_usd: Option<f64>, estimated: bool) -> String {
    serde_json::json!({
        "time_ns": snapshot_ns,
        "snapshot_ns": snapshot_ns,
        "provider": "test",
        "model": "test-model",
        "route": "test test-model",
        "cost_usd": cost_usd,
        "estimated": estimated,
        "usage_reported": !estimated,
        "advice": advice.map(crate::ai::log::advice_json),
        "error": if advice.is_none() { Some("timeout") } else { None },
    })
    .to_string()
}
