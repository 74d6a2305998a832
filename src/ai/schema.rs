//! The advice's JSON schema: sent as `response_format` `json_schema` (with
//! `strict`) where the provider has structured outputs, and the rules a
//! reply is checked against before a repair retry.
//!
//! Strict structured outputs (OpenAI's "Structured Outputs" guide) require
//! every property to be listed in `required` and `additionalProperties:
//! false`; optional meaning is carried by allowing `null` instead.

use serde_json::{json, Value};

/// The schema's name in `response_format.json_schema.name`.
pub const SCHEMA_NAME: &str = "market_advice";

/// The advice object's schema (strict-mode compatible).
pub fn advice_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spread_state": {"type": "string", "enum": ["narrow", "normal", "wide"]},
            "volatility": {"type": "string", "enum": ["low", "medium", "high"]},
            "direction": {"type": "string", "enum": ["up", "down", "sideways"]},
            "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
            "spread_multiplier": {"type": "number"},
            "liquidity_concentration": {"type": ["string", "null"]},
            "risk_signals": {"type": "array", "items": {"type": "string"}},
            "reason": {"type": "string"}
        },
        "required": [
            "spread_state", "volatility", "direction", "confidence", "spread_multiplier",
            "liquidity_concentration", "risk_signals", "reason"
        ],
        "additionalProperties": false
    })
}

/// `response_format` for structured outputs.
pub fn json_schema_format() -> Value {
    json!({
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "strict": true, "schema": advice_schema()}
    })
}
