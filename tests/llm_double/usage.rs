//! The double's token counts: a fixed, documented rule computed from the
//! request and the reply, so a test can predict exactly what the "gateway"
//! bills and check that mmbot charges that and nothing else.
//!
//! The rule (not any real tokenizer; real providers count with theirs):
//! - prompt tokens = sum over input messages (and Anthropic's top-level
//!   `system`) of `4 + ceil(chars(content) / 4)`;
//! - completion tokens = `ceil(chars(reply) / 4)`, plus `REASONING_TOKENS`
//!   for a reasoning-flavoured model (they bill hidden reasoning as output:
//!   OpenAI "Reasoning models", "How reasoning works": reasoning tokens are
//!   billed as output tokens and reported in
//!   `completion_tokens_details.reasoning_tokens`);
//! - cached tokens = the behaviour's `cached_tokens`, capped at the prompt.

use serde_json::Value;

/// Hidden reasoning tokens a reasoning model "spends" per request.
pub const REASONING_TOKENS: u64 = 64;

/// Token count of one text under the double's rule.
pub fn text_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Text of a message's `content`: a string, or an array of parts whose
/// `text` fields are joined (both forms are in the Chat Completions and
/// Messages request schemas).
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
        }
        _ => String::new(),
    }
}

/// Prompt tokens of a `messages` array plus an optional system text.
pub fn prompt_tokens(messages: &[Value], system: Option<&str>) -> u64 {
    let mut n = system.map(|s| 4 + text_tokens(s)).unwrap_or(0);
    for m in messages {
        n += 4 + text_tokens(&content_text(m.get("content").unwrap_or(&Value::Null)));
    }
    n
}

/// The counts one reply is billed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// All prompt tokens, cached ones included (OpenAI `prompt_tokens`).
    pub prompt: u64,
    /// Of which served from cache.
    pub cached: u64,
    /// Output tokens, reasoning included (OpenAI `completion_tokens`).
    pub completion: u64,
    /// Of which hidden reasoning.
    pub reasoning: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt + self.completion
    }
}
