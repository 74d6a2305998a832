//! Reading what the model said, defensively: models think aloud in
//! `<think>` blocks, wrap JSON in code fences, prefix it with `json`, bury it
//! in prose next to an example object, correct themselves, answer in Korean,
//! rename keys, nest them, leave fields out, and return numbers out of any
//! sane range.
//!
//! [`parse_reply`] sets reasoning blocks aside ([`scan::split_reasoning`]),
//! collects every complete JSON object in the rest ([`scan::objects`]; a
//! trailing comma is forgiven) and reads each leniently ([`fields`]); the
//! advice is the object with the most advice fields read, the last one on a
//! tie (a model that corrects itself means the later object). Numbers are
//! clamped (confidence 0-100, the multiplier to the configured bounds);
//! missing or unreadable fields become neutral and are listed in
//! [`ParsedReply::defaulted`]. Text with no JSON object, or with none that
//! holds an advice field, is a [`ReplyError`]: the caller counts it and
//! keeps the last valid advice.
//!
//! A reply *fails the schema* ([`Reading::fails_schema`]) when it gave no
//! advice or one of the three labels (spread state, volatility, direction)
//! had to be defaulted; [`Reading::problems`] says why, in the words the
//! repair retry quotes back to the model (see [`crate::ai::ask`]).

mod fields;
pub mod scan;

use serde_json::{Map, Value};

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
    /// The reply was cut off at the token limit before it held usable
    /// advice: a repair retry would be cut off the same way.
    #[error(
        "the reply was cut off at max_tokens = {max_tokens} (finish_reason \"length\") before the advice was \
         complete ({detail}): raise [ai] max_tokens (reasoning models spend part of it thinking)"
    )]
    CutOff { max_tokens: u32, detail: String },
    #[error(
        "the reply holds only the model's reasoning ({reasoning_chars} characters in a <think> block) and no \
         answer after it"
    )]
    OnlyReasoning { reasoning_chars: usize },
}

/// The labels whose absence makes a reply fail the schema (the numbers have
/// neutral defaults that cost nothing; a missing label is a missing view).
pub const LABELS: [&str; 3] = ["spread_state", "volatility", "direction"];

impl ParsedReply {
    /// How many of the five advice fields were read (not defaulted).
    pub fn fields_read(&self) -> usize {
        5usize.saturating_sub(self.defaulted.len())
    }

    /// Labels ([`LABELS`]) that had to be defaulted.
    pub fn missing_labels(&self) -> Vec<&'static str> {
        self.defaulted.iter().copied().filter(|d| LABELS.contains(d)).collect()
    }
}

/// Longest reply examined (a model that rambles past this is not advising).
const MAX_REPLY: usize = 256 * 1024;
/// Most problems quoted back to the model.
const MAX_PROBLEMS: usize = 12;

/// A reply read: the advice (or why none), and the JSON object it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The object the advice was read from (or, when none held an advice
    /// field, the last object found).
    pub object: Option<Value>,
    pub reply: Result<ParsedReply, ReplyError>,
}

impl Reading {
    /// No advice, or a label defaulted: worth one repair retry.
    pub fn fails_schema(&self) -> bool {
        self.reply.as_ref().map_or(true, |p| !p.missing_labels().is_empty())
    }

    /// What was wrong, one short sentence each: the reading error, then the
    /// object's violations of [`crate::ai::schema::advice_schema`] (at most
    /// 12 in all). Empty when the reply passes.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = &self.reply {
            out.push(e.to_string());
        }
        if let Some(Err(errs)) = self.object.as_ref().map(crate::ai::schema::check_schema) {
            out.extend(errs);
        }
        if out.is_empty() {
            if let Ok(p) = &self.reply {
                out.extend(p.missing_labels().iter().map(|l| format!("{l}: missing or unreadable")));
            }
        }
        out.truncate(MAX_PROBLEMS);
        out
    }
}

/// Reads advice from a model's reply text.
pub fn parse_reply(text: &str, bounds: Bounds) -> Result<ParsedReply, ReplyError> {
    read_reply(text, bounds).reply
}

/// Reads advice from a model's reply text, keeping the object it came from.
pub fn read_reply(text: &str, bounds: Bounds) -> Reading {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Reading { object: None, reply: Err(ReplyError::Empty) };
    }
    let text = &text[..floor_char_boundary(text, MAX_REPLY)];
    let split = scan::split_reasoning(text);
    let mut best = pick(scan::objects(&split.answer), bounds);
    // An unclosed <think>: the model may have answered inside it.
    if !matches!(best, Some((_, Ok(_)))) {
        if let Some(found @ (_, Ok(_))) = split.open_reasoning.and_then(|r| pick(scan::objects(r), bounds)) {
            best = Some(found);
        }
    }
    match best {
        Some((o, reply)) => Reading { object: Some(Value::Object(o)), reply },
        None if split.answer.trim().is_empty() && split.reasoning_chars > 0 => {
            Reading { object: None, reply: Err(ReplyError::OnlyReasoning { reasoning_chars: split.reasoning_chars }) }
        }
        None => {
            let answer = split.answer.trim();
            let (len, start) = (answer.chars().count(), answer.chars().take(60).collect());
            Reading { object: None, reply: Err(ReplyError::NoJson { len, start }) }
        }
    }
}

/// The object with the most advice fields read, the last on a tie; when
/// none holds any, the last object with its [`ReplyError::NoFields`].
fn pick(
    objects: Vec<Map<String, Value>>,
    bounds: Bounds,
) -> Option<(Map<String, Value>, Result<ParsedReply, ReplyError>)> {
    let mut best: Option<(Map<String, Value>, Result<ParsedReply, ReplyError>)> = None;
    for o in objects {
        let r = fields::read_fields(&o, bounds);
        let better = match (&best, &r) {
            (None, _) | (Some((_, Err(_))), _) => true,
            (Some((_, Ok(b))), Ok(p)) => p.fields_read() >= b.fields_read(),
            (Some((_, Ok(_))), Err(_)) => false,
        };
        if better {
            best = Some((o, r));
        }
    }
    best
}

fn floor_char_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    (0..=i).rev().find(|&j| s.is_char_boundary(j)).unwrap_or(0)
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
            "<think>",
            "</think>",
            "<thinking></think>{",
            "ㅎ</THINK>ㅎ<think>{\"volatility\":\"high\"}",
            "<think><think></think></think>{}",
        ];
        for s in samples {
            let _ = parse_reply(s, B);
        }
        let long = "x".repeat(MAX_REPLY + 10) + CLEAN;
        assert!(parse_reply(&long, B).is_err());
        // Random mixes of the characters the scanner cares about.
        let alphabet: Vec<char> = "{}[]\",:\\ <>/thinkTHINKg\n`jsonv높0.5-".chars().collect();
        let mut rng = crate::feed::synthetic::Rng(7);
        for _ in 0..2_000 {
            let len = rng.below(60) as usize;
            let text: String = (0..len).map(|_| alphabet[rng.below(alphabet.len() as u64) as usize]).collect();
            let reading = read_reply(&text, B);
            let _ = (reading.fails_schema(), reading.problems());
        }
    }

    #[test]
    fn reasoning_blocks_are_set_aside() {
        let want = ok(CLEAN);
        for text in [
            format!("<think>The book is thin; maybe {{\"volatility\": \"low\"}}? No.</think>\n{CLEAN}"),
            format!("<THINK>\nhmm\n</THINK>{CLEAN}"),
            format!("<thinking>{{\"spread_state\":\"narrow\",\"volatility\":\"low\",\"direction\":\"down\"}}</thinking>{CLEAN}"),
            // The template opened the block in the prompt: the reply starts mid-reasoning.
            format!("so the spread is wide {{\"spread_state\":\"narrow\"}}</think>\n\n{CLEAN}"),
            // Two blocks around the answer.
            format!("<think>a</think>{CLEAN}<think>b {{\"volatility\":\"low\"}}</think>"),
        ] {
            assert_eq!(ok(&text), want, "{text}");
        }
        // Unclosed: the model answered inside its reasoning.
        let r = ok(&format!("<think>Let me see. The answer: {CLEAN}"));
        assert_eq!(r, want);
        // Unclosed with a draft in it, but an answer outside before it.
        let r = ok(&format!("{CLEAN}\n<think>{{\"spread_state\":\"narrow\",\"volatility\":\"low\",\"direction\":\"down\",\"confidence\":1,\"spread_multiplier\":1}}"));
        assert_eq!(r, want);
        // Only reasoning (cut off): named as such.
        let e = parse_reply("<think>The spread is 0.08 bps, which is", B).unwrap_err();
        assert!(matches!(e, ReplyError::OnlyReasoning { reasoning_chars: 32 }), "{e}");
        assert!(e.to_string().contains("only the model's reasoning"), "{e}");
        let e = parse_reply("<think>long thought</think>\n", B).unwrap_err();
        assert!(matches!(e, ReplyError::OnlyReasoning { .. }), "{e}");
    }

    #[test]
    fn the_object_with_most_advice_fields_wins_the_last_on_a_tie() {
        // The format quoted in prose first, then the answer: a tie (all five
        // read), so the last.
        let example = r#"{"spread_state": "narrow|normal|wide", "volatility": "high|medium|low", "direction": "up|down|sideways", "confidence": 0, "spread_multiplier": 1.0}"#;
        let text = format!("The format is {example}. My answer:\n{CLEAN}");
        assert_eq!(ok(&text), ok(CLEAN));
        // A correction after the first answer.
        let first = CLEAN.replace("\"high\"", "\"low\"");
        let r = ok(&format!("{first}\nWait, the trade flow says otherwise:\n{CLEAN}"));
        assert_eq!(r.volatility, Volatility::High);
        // A full object beats a later partial one, whatever the order.
        let r = ok(&format!("{CLEAN} and note {{\"volatility\": \"low\"}}"));
        assert_eq!(r.volatility, Volatility::High);
        let r = ok(&format!("{{\"volatility\": \"low\"}} then {CLEAN}"));
        assert_eq!(r.volatility, Volatility::High);
        // Objects with no advice fields do not hide one that has some.
        let r = ok(r#"{"note": 1} {"volatility": "low"} {"meta": {"id": 3}}"#);
        assert_eq!((r.volatility, r.fields_read()), (Volatility::Low, 1));
        // Several fenced blocks: each is a candidate.
        let r = ok(&format!("```json\n{{\"volatility\": \"low\"}}\n```\nor better:\n```json\n{CLEAN}\n```"));
        assert_eq!(r, ok(CLEAN));
    }

    #[test]
    fn a_nested_object_is_read_once_as_part_of_its_parent() {
        let text = r#"{"analysis": {"spread_state": "wide", "volatility": {"level": "high"}}, "direction": "up"}"#;
        let reading = read_reply(text, B);
        let r = reading.reply.unwrap();
        assert_eq!((r.spread, r.volatility, r.direction), (SpreadState::Wide, Volatility::High, Direction::Up));
        assert_eq!(reading.object.unwrap()["direction"], "up");
        assert_eq!(scan::objects(text).len(), 1);
        assert_eq!(scan::objects(&format!("{text} {text} {{x}} {{}}")).len(), 3);
    }

    #[test]
    fn a_reading_says_whether_and_why_it_fails_the_schema() {
        let good = read_reply(CLEAN, B);
        assert!(!good.fails_schema());
        assert!(good.problems().is_empty(), "{:?}", good.problems());
        let partial = read_reply(r#"{"volatility": "extreme", "spread_state": "wide", "confidence": 70}"#, B);
        assert!(partial.fails_schema(), "direction missing");
        let p = partial.problems();
        assert!(p.contains(&"direction: missing (required)".to_string()), "{p:?}");
        assert!(p.contains(&"volatility: \"extreme\" is not one of low, medium, high".to_string()), "{p:?}");
        // Lenient reading passes what the schema would not: aliases, case.
        let lenient = read_reply(r#"{"Spread State": "WIDE", "vol": "High", "trend": "bullish"}"#, B);
        assert!(!lenient.fails_schema());
        let none = read_reply("I think volatility is high.", B);
        assert!(none.fails_schema());
        assert_eq!(none.problems().len(), 1);
        assert!(none.problems()[0].starts_with("no complete JSON object"), "{:?}", none.problems());
        let keys = read_reply(r#"{"error": "overloaded"}"#, B);
        assert!(keys.problems()[0].contains("none of the advice fields"), "{:?}", keys.problems());
        assert!(keys.problems().iter().any(|p| p == "spread_state: missing (required)"), "{:?}", keys.problems());
        assert!(keys.problems().len() <= MAX_PROBLEMS);
    }
}
