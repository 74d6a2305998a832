//! Scoring labels against what happened: accuracy per field next to the
//! base rate (always predicting the realised majority), the offline rules'
//! accuracy on the same snapshots, a confusion table, and the Brier score of
//! the stated confidence.
//!
//! Brier score: the advice's `confidence / 100` read as the probability that
//! the stated label is right; the mean of `(p - hit)^2` over the calls, hit
//! 1 or 0. 0 is perfect, 0.25 is what "50%" on every call earns, lower is
//! better. Calls whose confidence the model did not give are left out of it.

use serde::Serialize;

use crate::ai::eval::outcome::Realised;
use crate::hot::advice::{Advice, Direction, SpreadState, Volatility};

/// The three judged fields, in report order.
pub const FIELDS: [&str; 3] = ["volatility", "spread", "direction"];

/// Each field's labels, indexed as [`labels_of`] indexes them.
pub const LABELS: [[&str; 3]; 3] =
    [["low", "medium", "high"], ["narrow", "normal", "wide"], ["down", "sideways", "up"]];

fn vol(v: Volatility) -> usize {
    match v {
        Volatility::Low => 0,
        Volatility::Medium => 1,
        Volatility::High => 2,
    }
}

fn spread(s: SpreadState) -> usize {
    match s {
        SpreadState::Narrow => 0,
        SpreadState::Normal => 1,
        SpreadState::Wide => 2,
    }
}

fn dir(d: Direction) -> usize {
    match d {
        Direction::Down => 0,
        // "neutral" states no direction: judged as sideways.
        Direction::Sideways | Direction::Neutral => 1,
        Direction::Up => 2,
    }
}

/// An advice's labels: [volatility, spread, direction].
pub fn labels_of(a: &Advice) -> [usize; 3] {
    [vol(a.volatility), spread(a.spread), dir(a.direction)]
}

/// What happened, as labels.
pub fn realised_labels(r: &Realised) -> [usize; 3] {
    [vol(r.volatility), spread(r.spread), dir(r.direction)]
}

/// One judged call: what was said, with what confidence, what the offline
/// rules said, and what happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    pub said: [usize; 3],
    /// `None`: not given by the model.
    pub confidence: Option<u8>,
    pub offline: [usize; 3],
    pub offline_confidence: u8,
    pub happened: [usize; 3],
}

/// How one field scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldScore {
    pub field: &'static str,
    pub calls: usize,
    pub correct: usize,
    pub accuracy: f64,
    /// The realised majority label, and "always predict it"'s accuracy.
    pub majority: &'static str,
    pub majority_accuracy: f64,
    pub offline_correct: usize,
    pub offline_accuracy: f64,
    /// Over the calls with a stated confidence (`None`: none had one).
    pub brier: Option<f64>,
    pub brier_calls: usize,
    pub offline_brier: Option<f64>,
    /// `confusion[said][happened]`, labels in [`LABELS`] order.
    pub confusion: [[u64; 3]; 3],
    /// How often each label happened.
    pub happened: [u64; 3],
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn brier(items: impl Iterator<Item = (u8, bool)>) -> (Option<f64>, usize) {
    let (mut sum, mut n) = (0.0, 0usize);
    for (c, hit) in items {
        let p = f64::from(c.min(100)) / 100.0;
        let y = if hit { 1.0 } else { 0.0 };
        sum += (p - y) * (p - y);
        n += 1;
    }
    ((n > 0).then(|| sum / n as f64), n)
}

/// Scores every field over `judged`.
pub fn score(judged: &[Judged]) -> Vec<FieldScore> {
    (0..3)
        .map(|k| {
            let mut confusion = [[0u64; 3]; 3];
            let mut happened = [0u64; 3];
            for j in judged {
                confusion[j.said[k]][j.happened[k]] += 1;
                happened[j.happened[k]] += 1;
            }
            // Ties go to the first label in order: deterministic.
            let maj = (0..3).fold(0, |best, i| if happened[i] > happened[best] { i } else { best });
            let correct = judged.iter().filter(|j| j.said[k] == j.happened[k]).count();
            let offline_correct = judged.iter().filter(|j| j.offline[k] == j.happened[k]).count();
            let (b, bn) = brier(judged.iter().filter_map(|j| Some((j.confidence?, j.said[k] == j.happened[k]))));
            let (ob, _) = brier(judged.iter().map(|j| (j.offline_confidence, j.offline[k] == j.happened[k])));
            FieldScore {
                field: FIELDS[k],
                calls: judged.len(),
                correct,
                accuracy: ratio(correct, judged.len()),
                majority: LABELS[k][maj],
                majority_accuracy: ratio(happened[maj] as usize, judged.len()),
                offline_correct,
                offline_accuracy: ratio(offline_correct, judged.len()),
                brier: b,
                brier_calls: bn,
                offline_brier: ob,
                confusion,
                happened,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(said: [usize; 3], conf: Option<u8>, happened: [usize; 3]) -> Judged {
        Judged { said, confidence: conf, offline: [1, 1, 1], offline_confidence: 50, happened }
    }

    #[test]
    fn accuracy_sits_next_to_the_base_rate() {
        let judged = [
            j([2, 1, 2], Some(100), [2, 1, 1]),
            j([2, 1, 2], Some(100), [0, 1, 1]),
            j([0, 0, 1], None, [0, 1, 1]),
            j([0, 2, 0], Some(0), [0, 1, 0]),
        ];
        let s = score(&judged);
        let v = &s[0];
        assert_eq!((v.correct, v.accuracy), (3, 0.75));
        assert_eq!((v.majority, v.majority_accuracy), ("low", 0.75));
        assert_eq!(v.offline_correct, 0, "offline said medium; it never happened");
        assert_eq!(v.confusion[2], [1, 0, 1]);
        // Brier over the three calls with a confidence: sure and right (0),
        // sure and wrong (1), "0%" and right (1).
        assert_eq!(v.brier_calls, 3);
        assert!((v.brier.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((v.offline_brier.unwrap() - 0.25).abs() < 1e-12);
        let d = &s[2];
        assert_eq!((d.majority, d.majority_accuracy, d.correct), ("sideways", 0.75, 2));
    }
}
