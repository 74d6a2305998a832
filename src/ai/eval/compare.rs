//! `mmbot ai compare --models a,b --eval RECORDING`: several models asked
//! about the same recorded snapshots, several times each, and scored against
//! what the market then did (the realised labels of [`super::outcome`]).
//!
//! The snapshots are `K` times evenly spaced over the recording's depth
//! events, each with a full TTL window after it; each is the market exactly
//! as the advisor would have handed it over (the real hot path's book and
//! features, position flat). Models are ranked by score (mean accuracy over
//! the three fields, a failed or unusable answer counting as wrong), then by
//! agreement between trials (a model that answers differently to the same
//! question is guessing), then p50 latency, then cost.

use std::path::PathBuf;

use serde::Serialize;

use crate::ai::advisor::{ask_once, llm_client, Answer};
use crate::ai::eval::outcome::{offline_rules, walk, Realised, Rules, Seen};
use crate::ai::eval::score::{labels_of, realised_labels, LABELS};
use crate::ai::eval::{show_ns, EvalError};
use crate::config::Config;

/// One model's showing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelScore {
    pub model: String,
    /// Questions asked (snapshots x trials) and answered with usable advice.
    pub asked: usize,
    pub answered: usize,
    /// Per field, correct / asked.
    pub accuracy: [f64; 3],
    pub score: f64,
    /// Share of snapshots where every trial answered with the same labels.
    pub agreement: f64,
    pub latency_p50_ms: Option<f64>,
    /// Total over every call (`None`: some call unpriced).
    pub cost_usd: Option<f64>,
    pub first_error: Option<String>,
    /// The exit status of the first failure (`mmbot ai` codes).
    #[serde(skip)]
    pub first_error_code: Option<i32>,
}

/// A reference row: the offline rules, and always-the-majority.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    pub name: String,
    pub accuracy: [f64; 3],
    pub score: f64,
}

/// The comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareReport {
    pub symbol: String,
    pub recording_from: String,
    pub recording_to: String,
    pub snapshots: usize,
    pub trials: usize,
    pub ttl_ns: i64,
    /// Best first.
    pub models: Vec<ModelScore>,
    pub baselines: Vec<Baseline>,
    /// What happened after each snapshot (labels in field order).
    pub happened: Vec<[&'static str; 3]>,
}

/// `k` snapshot times evenly spaced over `[from, to - ttl]`.
pub fn snapshot_times(from: i64, to: i64, ttl_ns: i64, k: usize) -> Vec<i64> {
    let last = to.saturating_sub(ttl_ns);
    if k == 0 || last < from {
        return Vec::new();
    }
    let span = (last - from) as f64;
    (0..k).map(|i| from + (span * (i as f64 + 0.5) / k as f64) as i64).collect()
}

fn p50(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    Some(xs[(xs.len() - 1) / 2])
}

fn mean3(a: [f64; 3]) -> f64 {
    (a[0] + a[1] + a[2]) / 3.0
}

/// Asks each of `models` about `k` snapshots of `files`, `trials` times each.
pub fn compare_eval(
    config: &Config,
    models: &[String],
    files: &[PathBuf],
    trials: usize,
    k: usize,
    direction_bps: f64,
) -> Result<CompareReport, EvalError> {
    if trials == 0 || k == 0 {
        return Err(EvalError::Usage { what: "--trials and --snapshots must be 1 or more".into() });
    }
    let ai = &config.ai;
    let ttl = ai.ttl_ns();
    let names = || files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    // A first pass finds the span; a second takes the snapshots.
    let probe = walk(files, config, &[])?;
    if probe.frames == 0 {
        return Err(EvalError::NoFrames { files: names() });
    }
    let Some((from, to)) = probe.depth_span() else {
        return Err(EvalError::NoDepth { files: names(), symbol: probe.symbol });
    };
    let times = snapshot_times(from, to, ttl, k);
    if times.is_empty() {
        return Err(EvalError::Usage {
            what: format!(
                "the recording's depth events span {:.1} s, less than one advice lifetime ({:.1} s, [ai] interval_s x \
                 ttl_intervals): give a longer recording",
                (to - from) as f64 / 1e9,
                ttl as f64 / 1e9
            ),
        });
    }
    let path = walk(files, config, &times)?;
    let rules = Rules::from_offline(&offline_rules(config), direction_bps);
    let seen: Vec<(Seen, Realised)> = path.seen.iter().flatten().map(|s| (*s, path.realise(s, ttl, &rules))).collect();
    let happened: Vec<[usize; 3]> = seen.iter().map(|(_, r)| realised_labels(r)).collect();
    let mut out = Vec::new();
    for model in models {
        out.push(one_model(config, model, &seen, &happened, trials));
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.agreement.total_cmp(&a.agreement))
            .then(a.latency_p50_ms.unwrap_or(f64::INFINITY).total_cmp(&b.latency_p50_ms.unwrap_or(f64::INFINITY)))
            .then(a.cost_usd.unwrap_or(f64::INFINITY).total_cmp(&b.cost_usd.unwrap_or(f64::INFINITY)))
            .then(a.model.cmp(&b.model))
    });
    let n = happened.len().max(1) as f64;
    let offline: [f64; 3] = [0, 1, 2]
        .map(|f| seen.iter().zip(&happened).filter(|((s, _), h)| labels_of(&s.offline)[f] == h[f]).count() as f64 / n);
    let majority: [f64; 3] = [0, 1, 2].map(|f| {
        let mut c = [0usize; 3];
        for h in &happened {
            c[h[f]] += 1;
        }
        *c.iter().max().unwrap_or(&0) as f64 / n
    });
    Ok(CompareReport {
        symbol: path.symbol.clone(),
        recording_from: show_ns(path.first_frame_ns),
        recording_to: show_ns(path.last_frame_ns),
        snapshots: seen.len(),
        trials,
        ttl_ns: ttl,
        models: out,
        baselines: vec![
            Baseline { name: "offline rules".into(), accuracy: offline, score: mean3(offline) },
            Baseline { name: "always-majority".into(), accuracy: majority, score: mean3(majority) },
        ],
        happened: happened.iter().map(|h| [0, 1, 2].map(|f| LABELS[f][h[f]])).collect(),
    })
}

fn one_model(
    config: &Config,
    model: &str,
    seen: &[(Seen, Realised)],
    happened: &[[usize; 3]],
    trials: usize,
) -> ModelScore {
    let ai = config.ai.with_model(model);
    let asked = seen.len() * trials;
    let mut s = ModelScore {
        model: model.to_string(),
        asked,
        answered: 0,
        accuracy: [0.0; 3],
        score: 0.0,
        agreement: 0.0,
        latency_p50_ms: None,
        cost_usd: Some(0.0),
        first_error: None,
        first_error_code: None,
    };
    let mut client = match llm_client(&ai) {
        Ok((c, _)) => c,
        Err(e) => {
            s.first_error_code = Some(e.exit_code());
            s.first_error = Some(e.to_string());
            return s;
        }
    };
    let (mut correct, mut agreed, mut latencies) = ([0usize; 3], 0usize, Vec::new());
    for ((snap, _), h) in seen.iter().zip(happened) {
        let mut answers: Vec<Option<[usize; 3]>> = Vec::with_capacity(trials);
        for _ in 0..trials {
            match ask_once(&ai, &mut client, &snap.snapshot) {
                Ok(Answer { completion, reply, cost_usd }) => {
                    latencies.push(completion.latency.as_secs_f64() * 1e3);
                    s.cost_usd = s.cost_usd.zip(cost_usd).map(|(a, b)| a + b);
                    match reply {
                        Ok(p) => {
                            let l = labels_of(&p.advice(snap.snapshot.time_ns, ai.ttl_ns()));
                            for f in 0..3 {
                                correct[f] += usize::from(l[f] == h[f]);
                            }
                            s.answered += 1;
                            answers.push(Some(l));
                        }
                        Err(e) => {
                            s.first_error_code.get_or_insert(5);
                            s.first_error.get_or_insert_with(|| format!("unusable reply: {e}"));
                            answers.push(None);
                        }
                    }
                }
                Err(e) => {
                    s.first_error_code.get_or_insert(e.exit_code());
                    s.first_error.get_or_insert_with(|| e.to_string());
                    answers.push(None);
                }
            }
        }
        if answers.iter().all(|a| a.is_some() && *a == answers[0]) {
            agreed += 1;
        }
    }
    let n = asked.max(1) as f64;
    s.accuracy = correct.map(|c| c as f64 / n);
    s.score = mean3(s.accuracy);
    s.agreement = agreed as f64 / seen.len().max(1) as f64;
    s.latency_p50_ms = p50(latencies);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_leave_a_full_window_after_them() {
        let t = snapshot_times(0, 100, 20, 4);
        assert_eq!(t, vec![10, 30, 50, 70]);
        assert!(t.iter().all(|&x| x + 20 <= 100));
        assert!(snapshot_times(0, 10, 20, 3).is_empty());
        assert_eq!(p50(vec![3.0, 1.0, 2.0, 4.0]), Some(2.0));
    }
}
