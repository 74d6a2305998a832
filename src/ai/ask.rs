//! One question to the model about one market snapshot, as the advisor,
//! `mmbot ai check`, `compare` and `eval` all ask it: the system prompt and
//! the market, the reply read defensively, and (when the reply fails the
//! schema) one retry with the validation error fed back.
//!
//! The repair retry: a reply *fails the schema* when no advice could be
//! read from it or one of its labels (spread state, volatility, direction)
//! had to be defaulted ([`crate::ai::reply::Reading::fails_schema`]). Then the conversation is
//! sent again, extended by the model's own reply (as the assistant) and a
//! user message quoting what was wrong ([`crate::ai::reply::Reading::problems`]) and asking
//! for exactly one JSON object. One retry only: a model that fails twice
//! will not be talked round within an interval, and each retry is paid for.
//! No retry when the first reply was cut off at the token limit (OpenAI's
//! Chat Completions reference, the chat completion object: `finish_reason`
//! is "length if the maximum number of tokens specified in the request was
//! reached"): the same limit would cut the retry too, so the error says to
//! raise `[ai] max_tokens` instead.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::ai::advisor::MarketSnapshot;
use crate::ai::llm::{Completion, LlmClient, Message};
use crate::ai::prompt::{user_prompt, SYSTEM_PROMPT};
use crate::ai::reply::{read_reply, scan, Bounds, ParsedReply, ReplyError};
use crate::ai::{AiConfig, AiError};

/// Longest part of the model's bad reply echoed back in a repair request
/// (a rambling reply is not worth paying for twice).
const MAX_ECHO: usize = 4_000;

/// What one question came to.
#[derive(Debug, Clone)]
pub struct Asked {
    /// Every answered request, in order (two when the reply was repaired).
    pub completions: Vec<Completion>,
    /// The advice read from the better reply, or why none could be.
    pub reply: Result<ParsedReply, ReplyError>,
    /// Whether a repair retry was answered (`completions` holds both).
    pub repaired: bool,
    /// Index in `completions` of the reply `reply` was read from: the
    /// repaired one if it reads at least as well, else the first.
    pub read_from: usize,
    /// A repair retry that was sent but got no answer: why (the client's
    /// `last_call` then describes that request, for logging and charging).
    pub repair_error: Option<String>,
}

impl Asked {
    /// The last answer (the repair's, when one was made).
    pub fn last(&self) -> &Completion {
        self.completions.last().expect("an Asked holds at least one completion")
    }

    /// The answer `reply` was read from.
    pub fn read(&self) -> &Completion {
        self.completions.get(self.read_from).unwrap_or_else(|| self.last())
    }

    fn one(c: Completion, reply: Result<ParsedReply, ReplyError>) -> Self {
        Self { completions: vec![c], reply, repaired: false, read_from: 0, repair_error: None }
    }
}

/// The multiplier bounds of `ai`.
pub fn bounds(ai: &AiConfig) -> Bounds {
    Bounds { min_multiplier: ai.min_multiplier, max_multiplier: ai.max_multiplier }
}

/// The conversation for `snapshot`: system prompt, then the market.
pub fn messages(ai: &AiConfig, snapshot: &MarketSnapshot) -> Vec<Message> {
    vec![Message::system(SYSTEM_PROMPT), Message::user(user_prompt(snapshot, ai.min_multiplier, ai.max_multiplier))]
}

/// Asks `client`'s model about `snapshot`, with one repair retry when the
/// reply fails the schema. `Err` only when the first request got no answer
/// (the client's `last_call` says how long and how many attempts); a
/// repair request that fails leaves the first answer standing.
pub fn ask(
    client: &mut LlmClient,
    ai: &AiConfig,
    snapshot: &MarketSnapshot,
    stop: &AtomicBool,
) -> Result<Asked, AiError> {
    ask_with(client, ai, snapshot, stop, true)
}

/// [`ask`], with the repair retry allowed or not (the advisor forbids it
/// when a second request would not fit the daily budget).
pub fn ask_with(
    client: &mut LlmClient,
    ai: &AiConfig,
    snapshot: &MarketSnapshot,
    stop: &AtomicBool,
    may_repair: bool,
) -> Result<Asked, AiError> {
    let mut conversation = messages(ai, snapshot);
    let first = client.complete(&conversation, stop)?;
    let reading = read_reply(&first.content, bounds(ai));
    if !reading.fails_schema() {
        return Ok(Asked::one(first, reading.reply));
    }
    if cut_off(&first) {
        let reply = explain_cut_off(reading.reply, max_tokens(ai, client.model()));
        return Ok(Asked::one(first, reply));
    }
    if stop.load(Ordering::Relaxed) || !may_repair {
        // Shutting down, or no room in the budget: no new request.
        return Ok(Asked::one(first, reading.reply));
    }
    conversation.push(Message::assistant(echo(&first.content)));
    conversation.push(Message::user(repair_request(&reading.problems())));
    let second = match client.complete(&conversation, stop) {
        Ok(c) => c,
        Err(e) => {
            let mut asked = Asked::one(first, reading.reply);
            asked.repair_error = Some(e.to_string());
            return Ok(asked);
        }
    };
    let mut again = read_reply(&second.content, bounds(ai)).reply;
    if cut_off(&second) {
        again = explain_cut_off(again, max_tokens(ai, client.model()));
    }
    let take_second = better(&again, &reading.reply);
    let reply = if take_second { again } else { reading.reply };
    Ok(Asked {
        completions: vec![first, second],
        reply,
        repaired: true,
        read_from: usize::from(take_second),
        repair_error: None,
    })
}

/// Whether the repaired reading `second` is to be used over `first`: it
/// reads and has no more defaulted labels; or neither reads (the latest
/// error is the one that describes what the model does now).
fn better(second: &Result<ParsedReply, ReplyError>, first: &Result<ParsedReply, ReplyError>) -> bool {
    match (second, first) {
        (Ok(s), Ok(f)) => s.missing_labels().len() <= f.missing_labels().len(),
        (Ok(_), Err(_)) | (Err(_), Err(_)) => true,
        (Err(_), Ok(_)) => false,
    }
}

/// The model stopped at the token limit (OpenAI: `finish_reason` "length").
fn cut_off(c: &Completion) -> bool {
    c.finish_reason.as_deref() == Some("length")
}

/// The token limit the request was sent with: `[ai.models."m"] max_tokens`,
/// else `[ai] max_tokens`.
fn max_tokens(ai: &AiConfig, model: &str) -> u32 {
    ai.model_params(model).max_tokens.unwrap_or(ai.max_tokens)
}

/// A cut-off reply that gave no advice says to raise the limit; one that
/// read (leniently) is kept.
fn explain_cut_off(reply: Result<ParsedReply, ReplyError>, max_tokens: u32) -> Result<ParsedReply, ReplyError> {
    reply.map_err(|e| ReplyError::CutOff { max_tokens, detail: e.to_string() })
}

/// The model's reply as it is echoed in the repair request: without its
/// reasoning blocks, cut to [`MAX_ECHO`] characters. Earlier turns'
/// reasoning is not sent back: Qwen3's chat template drops it from history
/// (QwenLM/Qwen3 discussion 1398: "the thinking content of the previous
/// turns should be removed"), DeepSeek refuses `reasoning_content` in input
/// messages, and it would be paid for again.
fn echo(content: &str) -> String {
    let answer = scan::split_reasoning(content).answer;
    let text = if answer.trim().is_empty() { content.trim() } else { answer.trim() };
    if text.chars().count() <= MAX_ECHO {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(MAX_ECHO).collect::<String>())
    }
}

/// The user message of a repair retry: what was wrong, and the one thing
/// wanted.
pub fn repair_request(problems: &[String]) -> String {
    let mut m = String::from("Your reply could not be used as the advice:\n");
    for p in problems {
        m.push_str("- ");
        m.push_str(p);
        m.push('\n');
    }
    m.push_str(
        "Answer again with exactly one JSON object and nothing else (no code fences, no prose), with the keys \
         spread_state (\"narrow\", \"normal\" or \"wide\"), volatility (\"low\", \"medium\" or \"high\"), direction \
         (\"up\", \"down\" or \"sideways\"), confidence (integer 0-100), spread_multiplier (number), \
         liquidity_concentration, risk_signals (array of strings) and reason.",
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(defaulted: Vec<&'static str>) -> ParsedReply {
        ParsedReply {
            spread: Default::default(),
            volatility: Default::default(),
            direction: crate::hot::advice::Direction::Neutral,
            confidence: 50,
            multiplier: 1.0,
            liquidity: None,
            risk_signals: Vec::new(),
            reason: None,
            defaulted,
            clamped: Vec::new(),
        }
    }

    #[test]
    fn the_repaired_reading_wins_unless_it_is_worse() {
        let good = Ok(parsed(vec![]));
        let partial = Ok(parsed(vec!["direction"]));
        let worse = Ok(parsed(vec!["direction", "volatility"]));
        let bad: Result<ParsedReply, ReplyError> = Err(ReplyError::Empty);
        assert!(better(&good, &partial));
        assert!(better(&partial, &partial));
        assert!(!better(&worse, &partial));
        assert!(better(&worse, &bad));
        assert!(!better(&bad, &partial));
        assert!(better(&bad, &bad));
    }

    #[test]
    fn the_echo_drops_reasoning_and_is_capped() {
        assert_eq!(echo("<think>hmm</think> {\"volatility\": 1}"), "{\"volatility\": 1}");
        assert_eq!(echo("<think>only this</think>"), "<think>only this</think>");
        assert_eq!(echo(&"y".repeat(MAX_ECHO + 50)).chars().count(), MAX_ECHO + 3);
    }

    #[test]
    fn the_repair_request_quotes_each_problem() {
        let m = repair_request(&["volatility: missing (required)".into(), "direction: \"UP\" is not one of".into()]);
        assert!(m.contains("- volatility: missing (required)\n- direction: \"UP\" is not one of\n"), "{m}");
        assert!(m.contains("exactly one JSON object"), "{m}");
    }

    #[test]
    fn a_cut_off_reply_says_to_raise_max_tokens() {
        let e = explain_cut_off(Err(ReplyError::Empty), 800).unwrap_err();
        assert!(e.to_string().contains("raise [ai] max_tokens") && e.to_string().contains("800"), "{e}");
        assert!(explain_cut_off(Ok(parsed(vec!["direction"])), 800).is_ok());
    }
}
