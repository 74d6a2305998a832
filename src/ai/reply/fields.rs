//! Reading the advice fields out of one JSON object, leniently: each field
//! from the first key that matches one of its aliases (case, spaces and
//! underscores ignored; nested objects searched), English and Korean values
//! in any case, numbers clamped to their range. Missing or unreadable fields
//! become neutral and are listed in [`ParsedReply::defaulted`].

use serde_json::Value;

use super::{Bounds, ParsedReply, ReplyError};
use crate::hot::advice::{Direction, SpreadState, Volatility};

/// Lower-case with everything but letters and digits removed: `Spread State`,
/// `spread_state` and `spreadState` all read `spreadstate`.
fn norm_key(k: &str) -> String {
    k.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

const SPREAD_KEYS: &[&str] = &[
    "spreadstate",
    "spreadstatus",
    "spreadcondition",
    "spreadanalysis",
    "currentspread",
    "spread",
    "스프레드상태",
    "스프레드",
];
const VOL_KEYS: &[&str] = &[
    "volatility",
    "volatilityprediction",
    "volatilityforecast",
    "volatilitylevel",
    "predictedvolatility",
    "vol",
    "변동성",
    "변동성예측",
];
const DIR_KEYS: &[&str] =
    &["direction", "directionprediction", "marketdirection", "trend", "bias", "방향", "방향성", "추세", "방향예측"];
const CONF_KEYS: &[&str] = &["confidence", "confidencescore", "confidencelevel", "신뢰도", "확신도"];
const MULT_KEYS: &[&str] = &[
    "spreadmultiplier",
    "recommendedspreadmultiplier",
    "recommendedmultiplier",
    "multiplier",
    "spreadadjustment",
    "추천스프레드배수",
    "스프레드배수",
    "배수",
];
const LIQ_KEYS: &[&str] =
    &["liquidityconcentration", "liquidity", "liquidityzone", "liquidityclusters", "유동성집중", "유동성"];
const RISK_KEYS: &[&str] = &["risksignals", "risks", "riskfactors", "risk", "리스크신호", "위험신호", "리스크"];
const REASON_KEYS: &[&str] = &["reason", "reasoning", "rationale", "explanation", "summary", "이유", "근거", "설명"];
/// Inside a nested object such as `"volatility": {"level": "high"}`.
const INNER_KEYS: &[&str] = &["level", "state", "value", "prediction", "status", "label", "상태", "수준"];

/// Every key/value pair, breadth first, up to 3 levels deep.
fn pairs(obj: &serde_json::Map<String, Value>) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    let mut level: Vec<&serde_json::Map<String, Value>> = vec![obj];
    for _ in 0..3 {
        let mut next = Vec::new();
        for o in level {
            for (k, v) in o {
                out.push((norm_key(k), v));
                if let Value::Object(inner) = v {
                    next.push(inner);
                }
            }
        }
        level = next;
    }
    out
}

/// The first value under one of `keys` (in key order) that `read` accepts.
/// `Err(())`: a key was there but no value under it was readable.
fn lookup<T>(pairs: &[(String, &Value)], keys: &[&str], read: impl Fn(&Value) -> Option<T>) -> Result<T, bool> {
    let mut seen = false;
    for key in keys {
        for (_, v) in pairs.iter().filter(|(k, _)| k == key) {
            seen = true;
            if let Some(t) = read(v) {
                return Ok(t);
            }
            if let Value::Object(inner) = v {
                for ik in INNER_KEYS {
                    if let Some(t) = inner.iter().find(|(k, _)| norm_key(k) == *ik).and_then(|(_, v)| read(v)) {
                        return Ok(t);
                    }
                }
            }
        }
    }
    Err(seen)
}

/// A label's words, lower-cased (`"High (rising)"` -> `["high", "rising"]`).
fn words(v: &Value) -> Option<Vec<String>> {
    let s = v.as_str()?;
    let w: Vec<String> = s
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    (!w.is_empty()).then_some(w)
}

/// Matches the first word against English labels, or any word against Korean
/// stems (Korean answers add particles and endings: 높음, 높다, 높은 편).
fn classify<T: Copy>(v: &Value, english: &[(&str, T)], korean: &[(&str, T)]) -> Option<T> {
    let w = words(v)?;
    let first = w[0].as_str();
    if let Some((_, t)) = english.iter().find(|(e, _)| *e == first) {
        return Some(*t);
    }
    for word in &w {
        if let Some((_, t)) = korean.iter().find(|(k, _)| word.starts_with(k)) {
            return Some(*t);
        }
    }
    // "medium-high", "low-to-medium": the first part decides.
    let head = first.split('-').next().unwrap_or(first);
    english.iter().find(|(e, _)| *e == head).map(|(_, t)| *t)
}

fn spread_of(v: &Value) -> Option<SpreadState> {
    use SpreadState::*;
    classify(
        v,
        &[
            ("narrow", Narrow),
            ("tight", Narrow),
            ("narrowing", Narrow),
            ("normal", Normal),
            ("medium", Normal),
            ("moderate", Normal),
            ("average", Normal),
            ("neutral", Normal),
            ("wide", Wide),
            ("widening", Wide),
            ("wider", Wide),
        ],
        &[("좁", Narrow), ("보통", Normal), ("정상", Normal), ("중간", Normal), ("넓", Wide)],
    )
}

fn volatility_of(v: &Value) -> Option<Volatility> {
    use Volatility::*;
    classify(
        v,
        &[
            ("high", High),
            ("elevated", High),
            ("extreme", High),
            ("medium", Medium),
            ("moderate", Medium),
            ("mid", Medium),
            ("normal", Medium),
            ("low", Low),
            ("calm", Low),
        ],
        &[("높", High), ("중간", Medium), ("보통", Medium), ("낮", Low)],
    )
}

fn direction_of(v: &Value) -> Option<Direction> {
    use Direction::*;
    classify(
        v,
        &[
            ("up", Up),
            ("upward", Up),
            ("bullish", Up),
            ("rising", Up),
            ("long", Up),
            ("down", Down),
            ("downward", Down),
            ("bearish", Down),
            ("falling", Down),
            ("short", Down),
            ("sideways", Sideways),
            ("flat", Sideways),
            ("neutral", Sideways),
            ("range", Sideways),
            ("ranging", Sideways),
            ("range-bound", Sideways),
        ],
        &[("상승", Up), ("하락", Down), ("횡보", Sideways), ("보합", Sideways), ("중립", Sideways)],
    )
}

/// A number, or the first number in a string (`"85%"`, `"x1.3"`).
fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => {
            let start = s.find(|c: char| c.is_ascii_digit() || c == '.')?;
            let neg = s[..start].ends_with('-');
            let digits: String = s[start..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect::<String>();
            let x: f64 = digits.parse().ok()?;
            let x = if neg { -x } else { x };
            if s.trim_end().ends_with('%') {
                x / 100.0
            } else {
                x
            }
        }
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// Confidence in 0-100; a fraction below 1 is read as a share (0.85 -> 85).
fn confidence_of(v: &Value) -> Option<f64> {
    let n = match v {
        // "85%" is 85, not 0.85.
        Value::String(s) if s.trim_end().ends_with('%') => number(v)? * 100.0,
        _ => number(v)?,
    };
    Some(if n > 0.0 && n < 1.0 { n * 100.0 } else { n })
}

fn text_of(v: &Value, max: usize) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Null => return None,
        other => other.to_string(),
    };
    (!s.is_empty()).then(|| s.chars().take(max).collect())
}

fn risks_of(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(a) => Some(a.iter().filter_map(|x| text_of(x, 200)).take(10).collect()),
        Value::String(_) => Some(text_of(v, 200).into_iter().collect()),
        _ => None,
    }
}

pub(super) fn read_fields(obj: &serde_json::Map<String, Value>, b: Bounds) -> Result<ParsedReply, ReplyError> {
    let p = pairs(obj);
    let mut defaulted = Vec::new();
    let mut clamped = Vec::new();
    let mut found = 0;
    let mut field = |name: &'static str, r: Result<(), bool>| match r {
        Ok(()) => found += 1,
        Err(_) => defaulted.push(name),
    };

    let spread = lookup(&p, SPREAD_KEYS, spread_of);
    field("spread_state", spread.map(|_| ()));
    let volatility = lookup(&p, VOL_KEYS, volatility_of);
    field("volatility", volatility.map(|_| ()));
    let direction = lookup(&p, DIR_KEYS, direction_of);
    field("direction", direction.map(|_| ()));
    let confidence = lookup(&p, CONF_KEYS, confidence_of);
    field("confidence", confidence.map(|_| ()));
    let multiplier = lookup(&p, MULT_KEYS, |v| number(v).filter(|m| *m > 0.0));
    field("spread_multiplier", multiplier.map(|_| ()));
    if found == 0 {
        return Err(ReplyError::NoFields { keys: obj.keys().take(12).cloned().collect::<Vec<_>>().join(", ") });
    }

    let confidence = match confidence {
        Ok(c) => {
            if !(0.0..=100.0).contains(&c) {
                clamped.push("confidence");
            }
            c.clamp(0.0, 100.0).round() as u8
        }
        Err(_) => 50,
    };
    let multiplier = match multiplier {
        Ok(m) => {
            if m < b.min_multiplier || m > b.max_multiplier {
                clamped.push("spread_multiplier");
            }
            m.clamp(b.min_multiplier, b.max_multiplier)
        }
        Err(_) => 1.0f64.clamp(b.min_multiplier, b.max_multiplier),
    };
    Ok(ParsedReply {
        spread: spread.unwrap_or_default(),
        volatility: volatility.unwrap_or_default(),
        direction: direction.unwrap_or(Direction::Neutral),
        confidence,
        multiplier,
        liquidity: lookup(&p, LIQ_KEYS, |v| text_of(v, 200)).ok(),
        risk_signals: lookup(&p, RISK_KEYS, risks_of).unwrap_or_default(),
        reason: lookup(&p, REASON_KEYS, |v| text_of(v, 500)).ok(),
        defaulted,
        clamped,
    })
}
