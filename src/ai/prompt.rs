//! What the model is asked: one system prompt and one user prompt built from
//! the newest [`MarketSnapshot`].
//!
//! The original tutorial made two calls (a spread analysis and a volatility
//! prediction); mmbot asks once for one JSON object that carries both, so a
//! decision costs one round trip and one set of prompt tokens. The user
//! prompt is plain text with fixed number formats: the same snapshot always
//! gives the same prompt (tests and `mmbot ai compare` rely on it), and it
//! stays around 500 tokens, the figure the cost table assumes.

use std::fmt::Write;

use crate::ai::advisor::MarketSnapshot;
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

/// Tokens of `text` by the usual estimate of 4 characters a token (rounded
/// up): what a call is charged when the provider reports no usage.
pub fn estimate_tokens(text: &str) -> u64 {
    text.chars().count().div_ceil(4) as u64
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
}
