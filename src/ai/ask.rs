//! One question to the model about one market snapshot, as the advisor,
//! `mmbot ai check`, `compare` and `eval` all ask it: the system prompt and
//! the market, the reply read defensively, and (when the reply fails the
//! schema) one retry with the validation error fed back.

use std::sync::atomic::AtomicBool;

use crate::ai::advisor::MarketSnapshot;
use crate::ai::llm::{Completion, LlmClient, Message};
use crate::ai::prompt::{user_prompt, SYSTEM_PROMPT};
use crate::ai::reply::{parse_reply, Bounds, ParsedReply, ReplyError};
use crate::ai::{AiConfig, AiError};

/// What one question came to.
#[derive(Debug, Clone)]
pub struct Asked {
    /// Every answered request, in order (two when the reply was repaired).
    pub completions: Vec<Completion>,
    /// The advice read from the last reply, or why none could be.
    pub reply: Result<ParsedReply, ReplyError>,
    /// Whether a retry with the validation error was made.
    pub repaired: bool,
}

impl Asked {
    /// The last answer (the one `reply` was read from).
    pub fn last(&self) -> &Completion {
        self.completions.last().expect("an Asked holds at least one completion")
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

/// Asks `client`'s model about `snapshot`. `Err` only when no answer came
/// at all (the client's `last_call` says how long and how many attempts).
pub fn ask(
    client: &mut LlmClient,
    ai: &AiConfig,
    snapshot: &MarketSnapshot,
    stop: &AtomicBool,
) -> Result<Asked, AiError> {
    let c = client.complete(&messages(ai, snapshot), stop)?;
    let reply = parse_reply(&c.content, bounds(ai));
    Ok(Asked { completions: vec![c], reply, repaired: false })
}
