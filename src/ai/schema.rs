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

/// Checks `v` against [`advice_schema`]: `Err` lists every violation, one
/// short sentence each naming the key (`volatility: "extreme" is not one of
/// low, medium, high`). The repair retry quotes these back to the model.
///
/// Only the schema keywords the advice schema uses are understood (`type`,
/// `enum`, `minimum`, `maximum`, `required`, `properties`,
/// `additionalProperties: false`, `items`), with JSON Schema's meaning
/// (an integer is a number with no fractional part, so `80.0` passes).
pub fn check_schema(v: &Value) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    check(&advice_schema(), v, "the reply", &mut errs);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

fn check(schema: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    if let Some(t) = schema.get("type") {
        let allowed: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.is_empty() && !allowed.iter().any(|t| has_type(v, t)) {
            let want: Vec<&str> = allowed.iter().map(|t| type_name(t)).collect();
            errs.push(format!("{path}: {} is {}, not {}", shown(v), kind(v), want.join(" or ")));
            return;
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(v) {
            let list: Vec<String> =
                options.iter().map(|o| o.as_str().map_or_else(|| o.to_string(), String::from)).collect();
            errs.push(format!("{path}: {} is not one of {}", shown(v), list.join(", ")));
        }
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64).filter(|m| n < *m) {
            errs.push(format!("{path}: {} is below the minimum {min}", shown(v)));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64).filter(|m| n > *m) {
            errs.push(format!("{path}: {} is above the maximum {max}", shown(v)));
        }
    }
    match v {
        Value::Object(o) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for key in required(schema) {
                if !o.contains_key(key) {
                    errs.push(format!("{key}: missing (required)"));
                }
            }
            for (k, val) in o {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => check(s, val, k, errs),
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        let allowed: Vec<&str> = required(schema).collect();
                        errs.push(format!(
                            "{}: not a key of the advice (the keys are {})",
                            clip(k),
                            allowed.join(", ")
                        ));
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(s, item, &format!("{path}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}

/// The schema's `required` keys, in the schema's order.
fn required(schema: &Value) -> impl Iterator<Item = &str> {
    schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn type_name(t: &str) -> &str {
    match t {
        "string" => "a string",
        "number" => "a number",
        "integer" => "an integer",
        "boolean" => "true or false",
        "array" => "an array",
        "object" => "an object",
        other => other,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() && n.as_f64().is_some_and(|f| f.fract() != 0.0) => "a fraction",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value as JSON, cut to 40 characters (a model's long text is not
/// worth quoting back in full).
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => Value::String(clip(s)).to_string(),
        other => clip(&other.to_string()),
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(40).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(v: Value) -> Vec<String> {
        check_schema(&v).err().unwrap_or_default()
    }

    #[test]
    fn a_complete_advice_object_passes() {
        let v = json!({"spread_state": "wide", "volatility": "high", "direction": "up", "confidence": 80,
            "spread_multiplier": 1.4, "liquidity_concentration": null, "risk_signals": ["thin asks"],
            "reason": "bids stack up"});
        assert_eq!(check_schema(&v), Ok(()));
        // JSON Schema: 80.0 is an integer.
        let mut w = v.clone();
        w["confidence"] = json!(80.0);
        assert_eq!(check_schema(&w), Ok(()));
    }

    #[test]
    fn each_violation_is_one_specific_sentence() {
        let e = errors(json!({"spread_state": "wide", "volatility": "extreme", "direction": "UP",
            "confidence": 140, "spread_multiplier": "1.4x", "liquidity_concentration": "bid",
            "risk_signals": ["a", 3], "reason": "r", "mood": "calm"}));
        assert_eq!(
            e,
            // Present keys in the object's (sorted) order.
            vec![
                "confidence: 140 is above the maximum 100",
                "direction: \"UP\" is not one of up, down, sideways",
                "mood: not a key of the advice (the keys are spread_state, volatility, direction, confidence, \
                 spread_multiplier, liquidity_concentration, risk_signals, reason)",
                "risk_signals[1]: 3 is a number, not a string",
                "spread_multiplier: \"1.4x\" is a string, not a number",
                "volatility: \"extreme\" is not one of low, medium, high",
            ]
        );
        let e = errors(json!({"volatility": "low", "confidence": 85.5}));
        assert!(e.contains(&"spread_state: missing (required)".to_string()), "{e:?}");
        assert!(e.contains(&"confidence: 85.5 is a fraction, not an integer".to_string()), "{e:?}");
        assert_eq!(errors(json!([1])), vec!["the reply: [1] is an array, not an object"]);
        let long = "x".repeat(100);
        let e = errors(json!({ "volatility": long }));
        assert!(e.iter().any(|m| m.starts_with("volatility: \"xxxx") && m.contains("...\" is not one of")), "{e:?}");
    }
}
