//! What the model is asked: one system prompt and one user prompt built from
//! the newest [`MarketSnapshot`].
//!
//! The original tutorial made two calls (a spread analysis and a volatility
//! prediction); mmbot asks once for one JSON object that carries both, so a
//! decision costs one round trip and one set of prompt tokens. The user
//! prompt is plain text with fixed number formats: the same snapshot always
//! gives the same prompt (tests and `mmbot ai compare` rely on it).
//!
//! Its size, measured ([`measured_prompt_tokens`]): about 700 prompt tokens
//! a question (698 by [`estimate_tokens`] with the chat framing; tiktoken's
//! `o200k_base` counts 206 for the system prompt and 495 for the user
//! prompt of the sample snapshot, 710 with the framing). Most of the user
//! prompt is numbers, which BPE tokenizers cut into chunks of 1-3 digits:
//! the 20 book levels alone take 278.

use std::fmt::Write;

use crate::ai::advisor::MarketSnapshot;
use crate::ai::llm::Message;
use crate::hot::msg::Level;

/// The instructions: the reply's schema, and JSON only.
pub const SYSTEM_PROMPT: &str = "You are a market-microstructure analyst advising an automated market maker on \
Binance. From the order-book snapshot you are given, judge the current spread, predict short-term volatility \
(next few minutes) and direction, and recommend a multiplier for the market maker's quoted spread (1.0 = keep it; \
above 1.0 = widen for risk; below 1.0 = tighten to compete). Answer with exactly one JSON object and nothing else \
(no code fences, no prose), with these keys:\n\
{\"spread_state\": \"narrow\" | \"normal\" | \"wide\",\n \
\"volatility\": \"high\" | \"medium\" | \"low\",\n \
\"direction\": \"up\" | \"down\" | \"sideways\",\n \
\"confidence\": integer 0-100,\n \
\"spread_multiplier\": number,\n \
\"liquidity_concentration\": \"bid\" | \"ask\" | \"balanced\", plus the price where liquidity clusters if any,\n \
\"risk_signals\": [short strings],\n \
\"reason\": one short sentence}";

/// The user prompt for `s`; `min_mult`/`max_mult` are the multiplier bounds
/// the reply will be clamped to (telling the model saves a clamp).
pub fn user_prompt(s: &MarketSnapshot, min_mult: f64, max_mult: f64) -> String {
    let f = &s.features;
    let mut p = String::with_capacity(1600);
    let sym = if s.symbol.is_empty() { "UNKNOWN" } else { s.symbol.as_str() };
    let lean_bps = if f.mid > 0.0 { (f.microprice - f.mid) / f.mid * 1e4 } else { 0.0 };
    let _ = writeln!(p, "Symbol: {sym}");
    let _ = writeln!(
        p,
        "Mid: {:.8}  best bid: {} x {}  best ask: {} x {}",
        f.mid, f.best_bid.price, f.best_bid.qty, f.best_ask.price, f.best_ask.qty
    );
    let _ = writeln!(p, "Spread: {:.3} bps", f.spread_bps);
    let _ = writeln!(
        p,
        "Order-book imbalance (top levels, -1 all asks .. +1 all bids): {:+.3}; microprice lean from mid: {:+.3} bps",
        f.imbalance, lean_bps
    );
    let _ = writeln!(p, "Recent volatility of the mid (EWMA, per book event): {:.4} bps", f.volatility_bps);
    let _ = writeln!(p, "Recent trade flow (decayed, taker buys minus sells, base units): {:+.8}", f.trade_flow);
    let (bid_depth, ask_depth) = (depth(s.bids()), depth(s.asks()));
    let _ = writeln!(
        p,
        "Visible depth, top {} bid / {} ask levels: {:.8} / {:.8} (base units)",
        s.bids().len(),
        s.asks().len(),
        bid_depth,
        ask_depth
    );
    if s.max_position.0 > 0 {
        let _ = writeln!(p, "Own position: {} (limit +/-{})", s.position, s.max_position);
    } else {
        let _ = writeln!(p, "Own position: {}", s.position);
    }
    let _ = writeln!(p, "Asks (price x quantity, best last):");
    for l in s.asks().iter().rev() {
        let _ = writeln!(p, "  {} x {}", l.price, l.qty);
    }
    let _ = writeln!(p, "Bids (best first):");
    for l in s.bids() {
        let _ = writeln!(p, "  {} x {}", l.price, l.qty);
    }
    let _ = write!(p, "Keep spread_multiplier between {min_mult} and {max_mult}. Reply with the JSON object only.");
    p
}

fn depth(levels: &[Level]) -> f64 {
    levels.iter().map(|l| l.qty.to_f64()).sum()
}

/// Tokens of `text` as a BPE tokenizer of the o200k/cl100k kind counts
/// them, approximated without its vocabulary: what a call is charged when
/// the provider reports no usage, and the prompt size `ai cost` shows.
///
/// The rule follows the tokenizers' pre-tokenizer (the regular expression
/// that splits text before byte-pair merging; tiktoken's `o200k_base` and
/// `cl100k_base`), then guesses the merges:
/// * a run of letters with the one space or mark before it is one token
///   (`" volatility"`, `"-book"`); long words take one more per 5 letters
///   past 10; capitals run three letters a token (`BTCUSDT` = 3); letters
///   outside ASCII (Korean, CJK) one token each;
/// * a run of digits is split into chunks of up to 3, one token each
///   (`61837` = 2), and the space before a number is a token of its own;
/// * a run of other marks is one token per two (`{"`, `":`, `).`), with
///   one space before it and the line breaks after it included;
/// * a line break (with the spaces before it) is one token; spaces before
///   a word or mark join it, all but the last of a longer run are one more
///   token.
///
/// Checked against tiktoken's `o200k_base` and `cl100k_base` (tiktoken
/// 1.0.22) on mmbot's own texts, and against the counts published in
/// OpenAI's cookbook "How to count tokens with tiktoken" (cl100k_base):
///
/// | text | o200k | cl100k | estimate | chars/4 |
/// |---|---|---|---|---|
/// | [`SYSTEM_PROMPT`] | 206 | 205 | 200 | 205 |
/// | user prompt of `sample_snapshot()` | 495 | 495 | 489 | 273 |
/// | a compact advice reply (`CLEAN` of the tests) | 52 | 49 | 57 | 51 |
/// | a Korean advice reply | 53 | 64 | 58 | 34 |
/// | cookbook: `tiktoken is great!` | 6 | 6 | 4 | 5 |
/// | cookbook: `antidisestablishmentarianism` | 6 | 6 | 5 | 7 |
/// | cookbook: `2 + 2 = 4` | 7 | 7 | 7 | 3 |
///
/// Within 3% on the prompt (chars/4 is 45% low on the user prompt, whose
/// numbers cost a token per 1-3 digits); within about 10% on replies; rare
/// words are undercounted (a vocabulary is what the rule does without).
pub fn estimate_tokens(text: &str) -> u64 {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let (mut i, mut tokens) = (0usize, 0u64);
    while i < n {
        match class(chars[i]) {
            Class::Letter => {
                let j = run(&chars, i, Class::Letter);
                tokens += word_tokens(&chars[i..j]);
                i = j;
            }
            Class::Digit => {
                let j = run(&chars, i, Class::Digit);
                tokens += (j - i).div_ceil(3) as u64;
                i = j;
            }
            Class::Mark => {
                // One mark straight before letters leads the word.
                if chars.get(i + 1).is_some_and(|c| class(*c) == Class::Letter) {
                    let j = run(&chars, i + 1, Class::Letter);
                    tokens += word_tokens(&chars[i + 1..j]);
                    i = j;
                } else {
                    let (t, j) = marks(&chars, i);
                    tokens += t;
                    i = j;
                }
            }
            Class::Space | Class::Newline => {
                let j = (i..n).find(|&k| !matches!(class(chars[k]), Class::Space | Class::Newline)).unwrap_or(n);
                let last_break = (i..j).rev().find(|&k| class(chars[k]) == Class::Newline);
                let spaces_from = match last_break {
                    Some(b) => {
                        tokens += 1;
                        b + 1
                    }
                    None => i,
                };
                let spaces = j - spaces_from;
                if spaces > 0 {
                    match chars.get(j).map(|c| class(*c)) {
                        // The last space leads the word.
                        Some(Class::Letter) => tokens += u64::from(spaces >= 2),
                        // ... or the marks, which then stand alone.
                        Some(Class::Mark) => {
                            tokens += u64::from(spaces >= 2);
                            let (t, k) = marks(&chars, j);
                            tokens += t;
                            i = k;
                            continue;
                        }
                        // Before a number the space is a token of its own.
                        Some(Class::Digit) => tokens += 1 + u64::from(spaces >= 2),
                        _ => tokens += 1,
                    }
                }
                i = j;
            }
        }
    }
    tokens
}

/// Tokens a chat request of `messages` is billed for its prompt: each
/// message's text plus its framing, 3 tokens a message and 3 that prime the
/// reply (OpenAI's cookbook, "How to count tokens with tiktoken", section
/// "Counting tokens for chat completions API calls").
pub fn estimate_chat_tokens(messages: &[Message]) -> u64 {
    messages.iter().map(|m| estimate_tokens(&m.content) + TOKENS_PER_MESSAGE).sum::<u64>() + TOKENS_REPLY_PRIMER
}

/// Framing tokens of one chat message (`<|start|>role<|message|>...<|end|>`).
pub const TOKENS_PER_MESSAGE: u64 = 3;
/// Framing tokens that prime the assistant's reply.
pub const TOKENS_REPLY_PRIMER: u64 = 3;

/// The prompt tokens of one advisor question as mmbot sends it, estimated:
/// [`SYSTEM_PROMPT`] and the user prompt of
/// [`crate::ai::advisor::sample_snapshot`] (20 book levels, the default
/// multiplier bounds), chat framing included. 698 today (tiktoken's
/// `o200k_base` counts 710); the figure `ai cost` and the README use.
pub fn measured_prompt_tokens() -> u64 {
    static MEASURED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MEASURED.get_or_init(|| sample_prompt_tokens(&crate::ai::AiConfig::default()))
}

/// The same for `ai`'s multiplier bounds (they appear in the prompt):
/// what `mmbot ai cost` prices by default.
pub fn sample_prompt_tokens(ai: &crate::ai::AiConfig) -> u64 {
    estimate_chat_tokens(&crate::ai::ask::messages(ai, &crate::ai::advisor::sample_snapshot()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Space,
    Newline,
    Mark,
}

fn class(c: char) -> Class {
    if c == '\n' || c == '\r' {
        Class::Newline
    } else if c.is_whitespace() {
        Class::Space
    } else if c.is_alphabetic() {
        Class::Letter
    } else if c.is_numeric() {
        Class::Digit
    } else {
        Class::Mark
    }
}

/// End of the run of `class` starting at `i`.
fn run(chars: &[char], i: usize, of: Class) -> usize {
    (i..chars.len()).find(|&k| class(chars[k]) != of).unwrap_or(chars.len())
}

/// Tokens of the run of marks at `i` (two a token), the line breaks after
/// it included; and where it ends.
fn marks(chars: &[char], i: usize) -> (u64, usize) {
    let j = run(chars, i, Class::Mark);
    let k = run(chars, j, Class::Newline);
    ((j - i).div_ceil(2) as u64, k)
}

fn word_tokens(word: &[char]) -> u64 {
    let len = word.len();
    if word.iter().any(|c| !c.is_ascii()) {
        return len as u64;
    }
    if len >= 2 && word.iter().all(|c| c.is_ascii_uppercase()) {
        return len.div_ceil(3) as u64;
    }
    1 + len.saturating_sub(10).div_ceil(5) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::advisor::sample_snapshot;

    #[test]
    fn the_prompt_carries_the_book_and_is_stable() {
        let s = sample_snapshot();
        let p = user_prompt(&s, 0.4, 2.5);
        assert_eq!(p, user_prompt(&s, 0.4, 2.5));
        assert!(p.contains("Symbol: BTCUSDT") && p.contains("Spread:") && p.contains("imbalance"), "{p}");
        assert_eq!(p.lines().filter(|l| l.starts_with("  ")).count(), 20, "{p}");
        assert!(p.contains(&format!("{}", s.bids()[0].price)));
        assert!(SYSTEM_PROMPT.contains("spread_multiplier") && SYSTEM_PROMPT.contains("risk_signals"));
    }

    /// Counts by tiktoken 1.0.22 (`o200k_base`) of the same texts: the
    /// estimate is held within 3% on the prompt, 15% on replies.
    #[test]
    fn the_estimate_is_near_a_real_tokenizer() {
        let ai = crate::ai::AiConfig::default();
        let user = user_prompt(&sample_snapshot(), ai.min_multiplier, ai.max_multiplier);
        let clean = r#"{"spread_state":"wide","volatility":"high","direction":"up","confidence":80,"spread_multiplier":1.4,"liquidity_concentration":"bid","risk_signals":["thin asks"],"reason":"bids stack up under the touch"}"#;
        let korean = r#"{"spread_state":"좁음","volatility":"낮음","direction":"하락","confidence":65,"spread_multiplier":0.8,"reason":"매도 우위, 호가 잔량이 매도 쪽에 몰려 있습니다"}"#;
        for (name, text, real, tolerance) in [
            ("system prompt", SYSTEM_PROMPT, 206.0, 0.03),
            ("user prompt", user.as_str(), 495.0, 0.03),
            ("clean reply", clean, 52.0, 0.15),
            ("korean reply", korean, 53.0, 0.15),
            // OpenAI cookbook, "How to count tokens with tiktoken".
            ("2 + 2 = 4", "2 + 2 = 4", 7.0, 0.0),
        ] {
            let est = estimate_tokens(text) as f64;
            assert!((est - real).abs() <= real * tolerance, "{name}: estimate {est}, tokenizer {real}");
        }
        // chars/4, the old rule, was 45% low on the user prompt.
        assert!((user.chars().count().div_ceil(4) as f64) < 495.0 * 0.6);
    }

    /// Each figure is also `o200k_base`'s count of the same text.
    #[test]
    fn each_kind_of_text_counts_by_its_rule() {
        assert_eq!(estimate_tokens(""), 0);
        // Digits in chunks of 3; the space before a number stands alone.
        assert_eq!(estimate_tokens("61837"), 2);
        assert_eq!(estimate_tokens("x 61837.35"), 6);
        // A word takes its leading space or mark.
        assert_eq!(estimate_tokens("the order-book"), 3);
        assert_eq!(estimate_tokens("BTCUSDT"), 3);
        // Marks two a token, with the space before and the breaks after.
        assert_eq!(estimate_tokens("{\"a\": 1}\n"), 6);
        assert_eq!(estimate_tokens("\n\n"), 1);
        assert_eq!(estimate_tokens("변동성"), 3);
    }

    #[test]
    fn the_measured_prompt_is_about_700_tokens() {
        let n = measured_prompt_tokens();
        // 698 when written; the docs quote it.
        assert!((680..=720).contains(&n), "{n}: update this module's doc, measured_prompt_tokens' doc and the README");
        let messages = [Message::system("a"), Message::user("b")];
        assert_eq!(estimate_chat_tokens(&messages), 1 + 1 + 2 * TOKENS_PER_MESSAGE + TOKENS_REPLY_PRIMER);
    }
}
