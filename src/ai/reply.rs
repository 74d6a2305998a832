//! Reading what the model said, defensively: models wrap JSON in code fences,
//! prefix it with `json`, bury it in prose, answer in Korean, rename keys,
//! nest them, leave fields out, and return numbers out of any sane range.
//!
//! [`parse_reply`] finds the first complete JSON object in the text (after
//! stripping fences and a `json` tag; a trailing comma is forgiven), then
//! reads each advice field from the first key that matches one of its
//! aliases (case, spaces and underscores ignored; nested objects searched),
//! accepting English and Korean values in any case. Numbers are clamped
//! (confidence 0-100, the multiplier to the configured bounds); missing or
//! unreadable fields become neutral and are listed in
//! [`ParsedReply::defaulted`]. Text with no JSON object, or an object with
//! none of the advice fields, is a [`ReplyError`]: the caller counts it and
//! keeps the last valid advice.

use serde_json::Value;

use crate::hot::advice::{Advice, AdviceSource, Direction, SpreadState, Volatility};

/// The configured range of the recommended spread multiplier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub min_multiplier: f64,
    pub max_multiplier: f64,
}

/// The model's advice, read and clamped.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReply {
    pub spread: SpreadState,
    pub volatility: Volatility,
    /// `Neutral` (no view) when the reply gave none.
    pub direction: Direction,
    pub confidence: u8,
    pub multiplier: f64,
    pub liquidity: Option<String>,
    pub risk_signals: Vec<String>,
    pub reason: Option<String>,
    /// Fields missing or unreadable, set to neutral.
    pub defaulted: Vec<&'static str>,
    /// Numbers pulled into their range.
    pub clamped: Vec<&'static str>,
}

impl ParsedReply {
    /// The hot path's value: stamped with its arrival time and time-to-live.
    pub fn advice(&self, received_ns: i64, ttl_ns: i64) -> Advice {
        Advice {
            spread: self.spread,
            volatility: self.volatility,
            direction: self.direction,
            confidence: self.confidence,
            multiplier: self.multiplier,
            source: AdviceSource::Llm,
            received_ns,
            ttl_ns,
            apply_multiplier: false,
        }
    }
}

/// Why a reply gave no advice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("the reply is empty")]
    Empty,
    #[error("no complete JSON object in the reply ({len} characters, starting {start:?})")]
    NoJson { len: usize, start: String },
    #[error(
        "the JSON object holds none of the advice fields (spread_state, volatility, direction, confidence, \
         spread_multiplier); its keys: {keys}"
    )]
    NoFields { keys: String },
}

/// Longest reply examined (a model that rambles past this is not advising).
const MAX_REPLY: usize = 256 * 1024;
/// Most `{` positions tried as the start of an object.
const MAX_STARTS: usize = 64;

/// Reads advice from a model's reply text.
pub fn parse_reply(text: &str, bounds: Bounds) -> Result<ParsedReply, ReplyError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(ReplyError::Empty);
    }
    let text = &text[..floor_char_boundary(text, MAX_REPLY)];
    let obj = find_object(text)
        .ok_or_else(|| ReplyError::NoJson { len: text.chars().count(), start: text.chars().take(60).collect() })?;
    read_fields(&obj, bounds)
}

fn floor_char_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    (0..=i).rev().find(|&j| s.is_char_boundary(j)).unwrap_or(0)
}

/// The first complete JSON object in `text`: inside a code fence first, then
/// anywhere (after a leading `json` tag).
fn find_object(text: &str) -> Option<serde_json::Map<String, Value>> {
    if let Some(inner) = fenced(text) {
        if let Some(o) = scan(inner) {
            return Some(o);
        }
    }
    scan(strip_json_tag(text))
}

/// The body of the first ``` fence (its language tag dropped); an unclosed
/// fence runs to the end.
fn fenced(text: &str) -> Option<&str> {
    let start = text.find("```")? + 3;
    let rest = &text[start..];
    // The info string (`json`, `JSON`, ...) runs to the end of the line.
    let body = match rest.find('\n') {
        Some(nl) if rest[..nl].trim().chars().all(|c| c.is_ascii_alphanumeric()) => &rest[nl + 1..],
        _ => rest,
    };
    Some(body.find("```").map_or(body, |end| &body[..end]))
}

fn strip_json_tag(text: &str) -> &str {
    let t = text.trim_start();
    match t.get(..4) {
        Some(tag) if tag.eq_ignore_ascii_case("json") => t[4..].trim_start_matches([':', ' ', '\n', '\r', '\t']),
        _ => t,
    }
}

/// Tries each `{` in turn: the balanced span from it (strings and escapes
/// respected) that parses as an object, or with trailing commas removed.
fn scan(text: &str) -> Option<serde_json::Map<String, Value>> {
    let bytes = text.as_bytes();
    let mut from = 0;
    for _ in 0..MAX_STARTS {
        let start = from + text[from..].find('{')?;
        if let Some(end) = balanced_end(&bytes[start..]) {
            let span = &text[start..start + end];
            let parsed = serde_json::from_str::<Value>(span)
                .ok()
                .or_else(|| serde_json::from_str::<Value>(&drop_trailing_commas(span)).ok());
            if let Some(Value::Object(o)) = parsed {
                return Some(o);
            }
        }
        from = start + 1;
    }
    None
}

/// Length of the balanced `{...}` at the start of `b`, if it closes.
fn balanced_end(b: &[u8]) -> Option<usize> {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for (i, &c) in b.iter().enumerate() {
        if in_str {
            match c {
                _ if esc => esc = false,
                b'\\' => esc = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// `{"a": 1,}` -> `{"a": 1}` (outside strings): a common model slip.
fn drop_trailing_commas(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut in_str, mut esc) = (false, false);
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_str {
            match c {
                _ if esc => esc = false,
                '\\' => esc = true,
                '"' => in_str = false,
                _ => {}
            }
        } else if c == '"' {
            in_str = true;
        } else if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

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

fn read_fields(obj: &serde_json::Map<String, Value>, b: Bounds) -> Result<ParsedReply, ReplyError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds { min_multiplier: 0.5, max_multiplier: 2.0 };

    fn ok(text: &str) -> ParsedReply {
        parse_reply(text, B).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    const CLEAN: &str = r#"{"spread_state":"wide","volatility":"high","direction":"up","confidence":80,
        "spread_multiplier":1.4,"liquidity_concentration":"bid","risk_signals":["thin asks"],"reason":"bids stack up"}"#;

    #[test]
    fn clean_fenced_tagged_and_prose_replies_read_the_same() {
        let want = ok(CLEAN);
        assert_eq!(
            (want.spread, want.volatility, want.direction, want.confidence, want.multiplier),
            (SpreadState::Wide, Volatility::High, Direction::Up, 80, 1.4)
        );
        assert_eq!(want.liquidity.as_deref(), Some("bid"));
        assert_eq!(want.risk_signals, vec!["thin asks".to_string()]);
        assert!(want.defaulted.is_empty() && want.clamped.is_empty());
        for text in [
            format!("```json\n{CLEAN}\n```"),
            format!("```\n{CLEAN}\n```"),
            format!("Here is my analysis:\n```JSON\n{CLEAN}\n```\nHope it helps."),
            format!("json\n{CLEAN}"),
            format!("JSON: {CLEAN}"),
            format!("Sure! Based on the book {{thinking}} I think: {CLEAN} -- let me know."),
            format!("[{CLEAN}]"),
            CLEAN.replace("\"bids stack up\"}", "\"bids stack up\",}"),
        ] {
            assert_eq!(ok(&text), want, "{text}");
        }
    }

    #[test]
    fn korean_values_and_any_case() {
        let r = ok(
            r#"{"spread_state":"넓음","volatility":"높음","direction":"상승","confidence":"75%","spread_multiplier":"1.3x"}"#,
        );
        assert_eq!(
            (r.spread, r.volatility, r.direction, r.confidence),
            (SpreadState::Wide, Volatility::High, Direction::Up, 75)
        );
        assert!((r.multiplier - 1.3).abs() < 1e-12);
        let r = ok(r#"{"스프레드":"좁음","변동성":"낮음","방향":"하락","신뢰도":60}"#);
        assert_eq!(
            (r.spread, r.volatility, r.direction, r.confidence),
            (SpreadState::Narrow, Volatility::Low, Direction::Down, 60)
        );
        let r = ok(r#"{"Spread State":"NORMAL","Volatility":"Medium","Direction":"횡보"}"#);
        assert_eq!(
            (r.spread, r.volatility, r.direction),
            (SpreadState::Normal, Volatility::Medium, Direction::Sideways)
        );
        let r = ok(r#"{"spread_state":"보통","volatility":"중간","direction":"SIDEWAYS"}"#);
        assert_eq!(
            (r.spread, r.volatility, r.direction),
            (SpreadState::Normal, Volatility::Medium, Direction::Sideways)
        );
        let r = ok(
            r#"{"spreadState":"Wide spread","volatilityPrediction":{"level":"High","confidence":0.9},"trend":"bearish"}"#,
        );
        assert_eq!(
            (r.spread, r.volatility, r.direction, r.confidence),
            (SpreadState::Wide, Volatility::High, Direction::Down, 90)
        );
    }

    #[test]
    fn numbers_are_clamped_and_missing_fields_are_neutral() {
        let r = ok(r#"{"volatility":"high","confidence":250,"spread_multiplier":9}"#);
        assert_eq!((r.confidence, r.multiplier), (100, 2.0));
        assert_eq!(r.clamped, vec!["confidence", "spread_multiplier"]);
        assert_eq!((r.spread, r.direction), (SpreadState::Normal, Direction::Neutral));
        assert_eq!(r.defaulted, vec!["spread_state", "direction"]);
        let r = ok(r#"{"direction":"up","confidence":-5,"spread_multiplier":0.01}"#);
        assert_eq!((r.confidence, r.multiplier), (0, 0.5));
        let r = ok(r#"{"volatility":"extreme-ish","spread_multiplier":"lots","confidence":null}"#);
        assert_eq!((r.volatility, r.multiplier, r.confidence), (Volatility::High, 1.0, 50));
        assert_eq!(r.defaulted, vec!["spread_state", "direction", "confidence", "spread_multiplier"]);
        let a = r.advice(7, 9);
        assert_eq!((a.source, a.received_ns, a.ttl_ns), (AdviceSource::Llm, 7, 9));
    }

    #[test]
    fn garbage_is_an_error() {
        for text in ["", "   ", "I cannot help with that.", "{\"spread_state\": \"wide\"", "{not json}", "[1,2,3]"] {
            assert!(matches!(parse_reply(text, B), Err(ReplyError::Empty | ReplyError::NoJson { .. })), "{text:?}");
        }
        let e = parse_reply(r#"{"error":"overloaded","retry":true}"#, B).unwrap_err();
        assert!(e.to_string().contains("error, retry"), "{e}");
        // A mismatched value under a known key is readable only if it is a label.
        let e = parse_reply(r#"{"spread": 1.5}"#, B).unwrap_err();
        assert!(matches!(e, ReplyError::NoFields { .. }), "{e}");
    }

    #[test]
    fn nothing_panics_on_odd_text() {
        let samples = [
            "{",
            "}",
            "{{{{",
            "\"{\"",
            "```",
            "```json",
            "json",
            "{\"a\":\"\\\"}\"}",
            "ㅎ{ㅎ}ㅎ",
            "{\"변동성\":\"높\"}",
        ];
        for s in samples {
            let _ = parse_reply(s, B);
        }
        let long = "x".repeat(MAX_REPLY + 10) + CLEAN;
        assert!(parse_reply(&long, B).is_err());
    }
}
