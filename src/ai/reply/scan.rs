//! Finding the answer in a model's reply text: reasoning blocks
//! (`<think>...</think>`, `<thinking>...</thinking>`, `<reasoning>...`) set aside, then every
//! complete JSON object in what is left, fenced or not, in order.
//!
//! Why every object and not the first: models quote the format they were
//! given ("reply like {"spread_state": "narrow|normal|wide", ...}") before
//! answering, and correct themselves ("wait, volatility is high: {...}").
//! The caller picks the object with the most advice fields, the last on a
//! tie. An object inside another is part of it, not a candidate of its own.

use serde_json::{Map, Value};

/// Most `{` positions tried that did not start an object (each try may scan
/// to the end of the text, so this bounds the work on a rambling reply).
const MAX_FAILED_STARTS: usize = 64;
/// Most objects collected from one reply.
const MAX_OBJECTS: usize = 32;

/// Opening tags of a reasoning block (matched ignoring ASCII case).
/// DeepSeek-R1 and its distills, Qwen3 and others write `<think>`; Claude's
/// prompt-engineering habit is `<thinking>`.
// `<reasoning>`: what gpt-oss models (Bedrock's default) may put in content.
const OPEN_TAGS: &[&str] = &["<think>", "<thinking>", "<reasoning>"];
const CLOSE_TAGS: &[&str] = &["</think>", "</thinking>", "</reasoning>"];

/// A reply split into its answer and the reasoning set aside.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split<'a> {
    /// The text outside reasoning blocks.
    pub answer: String,
    /// An unclosed block's text (`<think>` with no `</think>` after it): the
    /// model either ran out of tokens while reasoning or answered without
    /// closing the block; searched only when the answer holds no advice.
    pub open_reasoning: Option<&'a str>,
    /// Characters of reasoning set aside (closed and unclosed blocks).
    pub reasoning_chars: usize,
}

/// Sets reasoning blocks aside. A closing tag with no opening tag before it
/// (chat templates that put `<think>` in the prompt, so the reply starts
/// mid-reasoning) drops everything up to it.
pub fn split_reasoning(text: &str) -> Split<'_> {
    // ASCII lower-casing keeps byte offsets, so positions found in `lower`
    // index `text` too.
    let lower = text.to_ascii_lowercase();
    let mut split = Split::default();
    let mut pos = 0;
    if let Some((close, len)) = find_tag(&lower, 0, CLOSE_TAGS) {
        if find_tag(&lower, 0, OPEN_TAGS).is_none_or(|(open, _)| close < open) {
            split.reasoning_chars += text[..close].chars().count();
            pos = close + len;
        }
    }
    loop {
        let Some((open, open_len)) = find_tag(&lower, pos, OPEN_TAGS) else {
            split.answer.push_str(&text[pos..]);
            break;
        };
        split.answer.push_str(&text[pos..open]);
        let inner = open + open_len;
        match find_tag(&lower, inner, CLOSE_TAGS) {
            Some((close, close_len)) => {
                split.reasoning_chars += text[inner..close].chars().count();
                pos = close + close_len;
            }
            None => {
                split.reasoning_chars += text[inner..].chars().count();
                split.open_reasoning = Some(&text[inner..]);
                break;
            }
        }
    }
    split
}

/// The earliest of `tags` in `lower` at or after `from`: (position, length).
fn find_tag(lower: &str, from: usize, tags: &[&str]) -> Option<(usize, usize)> {
    tags.iter().filter_map(|t| lower[from..].find(t).map(|i| (from + i, t.len()))).min_by_key(|(i, _)| *i)
}

/// Every complete JSON object in `text`, in order: for each `{`, the
/// balanced span from it (strings and escapes respected) that parses as an
/// object, or does once trailing commas are removed; scanning goes on after
/// the object, so objects nested in it are not listed again.
pub fn objects(text: &str) -> Vec<Map<String, Value>> {
    let bytes = text.as_bytes();
    let (mut from, mut failed) = (0, 0);
    let mut out = Vec::new();
    while failed < MAX_FAILED_STARTS && out.len() < MAX_OBJECTS {
        let Some(i) = text[from..].find('{') else { break };
        let start = from + i;
        if let Some(end) = balanced_end(&bytes[start..]) {
            let span = &text[start..start + end];
            let parsed = serde_json::from_str::<Value>(span)
                .ok()
                .or_else(|| serde_json::from_str::<Value>(&drop_trailing_commas(span)).ok());
            if let Some(Value::Object(o)) = parsed {
                out.push(o);
                from = start + end;
                continue;
            }
        }
        failed += 1;
        from = start + 1;
    }
    out
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
