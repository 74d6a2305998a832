//! `[ai]` validated: the advisor's provider, model and its fallbacks, when it
//! is asked (`call_on`), what it may spend (`daily_budget_usd`), how its
//! replies are dated (`max_age_s`) and priced (`[ai.prices]`), and the
//! per-model request parameters of `[ai.models."name"]` (reasoning models
//! take `max_completion_tokens` and `reasoning_effort`, not `temperature`).
//! Each key is checked alone, then in combination.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{float_in, in_range, invalid, ConfigError};
use crate::ai::cost::ModelPrice;
use crate::ai::{AiConfig, AiRoute, CallOn, ModelParams, Provider, ReasoningEffort, ResponseFormat};
use crate::feed::endpoint::Url;

/// `[ai]`: the advisor (LLM gateway or offline rules), as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAi {
    pub provider: Option<String>,
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key_env: Option<String>,
    pub env_file: Option<String>,
    pub region: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i64>,
    pub interval_s: Option<f64>,
    pub ttl_intervals: Option<f64>,
    pub max_age_s: Option<f64>,
    pub call_on: Option<String>,
    pub min_interval_s: Option<f64>,
    pub max_interval_s: Option<f64>,
    pub connect_timeout_s: Option<f64>,
    pub timeout_s: Option<f64>,
    pub retries: Option<i64>,
    pub backoff_ms: Option<i64>,
    pub json_mode: Option<bool>,
    pub response_format: Option<String>,
    pub reasoning_effort: Option<String>,
    pub min_multiplier: Option<f64>,
    pub max_multiplier: Option<f64>,
    pub apply_multiplier: Option<bool>,
    pub daily_budget_usd: Option<f64>,
    pub log: Option<String>,
    pub fallback: Option<Vec<RawRoute>>,
    pub models: Option<BTreeMap<String, RawModel>>,
    pub prices: Option<BTreeMap<String, RawPrice>>,
}

/// One `[ai.prices]` entry: USD per million tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub input: f64,
    pub output: f64,
    /// Cached prompt tokens (OpenAI `prompt_tokens_details.cached_tokens`,
    /// Anthropic `cache_read_input_tokens`); the input price when absent.
    pub cached_input: Option<f64>,
}

/// One `[[ai.fallback]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
}

/// One `[ai.models."name"]` table.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub reasoning: Option<bool>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i64>,
    pub reasoning_effort: Option<String>,
    pub response_format: Option<String>,
    /// Sent as they are in the request body (e.g. `top_p`, `seed`).
    pub params: Option<toml::Table>,
}

fn secs(key: &'static str, v: Option<f64>, default: Duration, lo: f64, hi: f64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs_f64(float_in(key, v, default.as_secs_f64(), lo, hi)?))
}

fn provider_of(key: &'static str, p: Option<&str>, default: Provider) -> Result<Provider, ConfigError> {
    match p {
        None => Ok(default),
        Some(p) => Provider::parse(p.trim())
            .ok_or_else(|| invalid(key, format!("{p:?}"), format!("must be {}", Provider::NAMES))),
    }
}

fn base_url_of(
    key: &'static str,
    provider: Provider,
    url: Option<&str>,
    region: Option<&str>,
) -> Result<Option<String>, ConfigError> {
    match url.map(str::trim) {
        _ if provider.llm().is_none() => Ok(None),
        None | Some("") if provider == Provider::Custom => Err(invalid(
            key,
            "\"\"",
            "provider \"custom\" needs the server's OpenAI-compatible base URL, e.g. \"http://127.0.0.1:8080/v1\"",
        )),
        None | Some("") => Ok(provider.preset_base_url(region)),
        Some(u) => match Url::parse(u) {
            Ok(parsed) if !parsed.websocket => {
                // A pasted full endpoint is accepted: the path is appended again later.
                let u = u.trim_end_matches('/');
                let u = u.strip_suffix("/chat/completions").unwrap_or(u);
                Ok(Some(u.strip_suffix("/messages").unwrap_or(u).to_string()))
            }
            Ok(_) => Err(invalid(key, format!("{u:?}"), "must be an http:// or https:// URL")),
            Err(e) => Err(invalid(key, format!("{u:?}"), e)),
        },
    }
}

fn model_of(key: &'static str, provider: Provider, m: Option<&str>) -> Result<String, ConfigError> {
    match m.map(str::trim) {
        None => Ok(provider.default_model().to_string()),
        Some("") => Err(invalid(key, "\"\"", "give a model name such as \"gpt-5-mini\", or leave the key out")),
        Some(m) => Ok(m.to_string()),
    }
}

fn key_var_of(key: &'static str, provider: Provider, v: Option<&str>) -> Result<String, ConfigError> {
    match v.map(str::trim) {
        None | Some("") => Ok(provider.key_var().to_string()),
        Some(v)
            if v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Ok(v.to_string())
        }
        // Not echoed: people paste the key itself here.
        Some(_) => Err(invalid(
            key,
            "(not shown: it may be a key)",
            "must be the NAME of an environment variable, e.g. \"MY_LLM_KEY\"; the key itself goes in the \
             environment or .env, never in this file",
        )),
    }
}

fn response_format_of(key: &'static str, v: Option<&str>) -> Result<Option<ResponseFormat>, ConfigError> {
    v.map(|s| ResponseFormat::parse(s.trim()).ok_or_else(|| invalid(key, format!("{s:?}"), ResponseFormat::NAMES)))
        .transpose()
}

fn effort_of(key: &'static str, v: Option<&str>) -> Result<Option<ReasoningEffort>, ConfigError> {
    v.map(|s| ReasoningEffort::parse(s.trim()).ok_or_else(|| invalid(key, format!("{s:?}"), ReasoningEffort::NAMES)))
        .transpose()
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => serde_json::Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            serde_json::Value::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect())
        }
    }
}

/// Request keys mmbot sets itself: `[ai.models."m"] params` may not override them.
const RESERVED_PARAMS: [&str; 4] = ["model", "messages", "system", "stream"];

pub(super) fn validate_ai(a: &RawAi) -> Result<AiConfig, ConfigError> {
    let d = AiConfig::default();
    let provider = provider_of("ai.provider", a.provider.as_deref(), d.provider)?;
    let region = match a.region.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) if r.len() <= 32 && r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') => {
            Some(r.to_string())
        }
        Some(r) => return Err(invalid("ai.region", format!("{r:?}"), "must be an AWS region such as \"us-east-1\"")),
    };
    let base_url = base_url_of("ai.base_url", provider, a.base_url.as_deref(), region.as_deref())?;
    let model = model_of("ai.model", provider, a.model.as_deref())?;
    let key_var = key_var_of("ai.api_key_env", provider, a.api_key_env.as_deref())?;
    let env_file = match a.env_file.as_deref() {
        None => d.env_file.clone(),
        Some("") => return Err(invalid("ai.env_file", "\"\"", "give a path such as \".env\", or leave the key out")),
        Some(p) => std::path::PathBuf::from(p),
    };
    // A provider's own endpoint charges its list prices; the tutorial's
    // gateway (and `auto`) its own where it has them.
    let mut prices = crate::ai::cost::PriceTable::for_provider(provider);
    for (m, p) in a.prices.iter().flatten() {
        for v in [Some(p.input), Some(p.output), p.cached_input].into_iter().flatten() {
            if !(v.is_finite() && (0.0..=10_000.0).contains(&v)) {
                return Err(invalid(
                    "ai.prices",
                    format!("\"{m}\" = {{ input = {}, output = {} }}", p.input, p.output),
                    "prices are USD per million tokens, from 0 to 10000",
                ));
            }
        }
        prices.set(m, ModelPrice { input_per_m: p.input, output_per_m: p.output, cached_input_per_m: p.cached_input });
    }
    let mut fallback = Vec::new();
    for r in a.fallback.iter().flatten() {
        let p = provider_of("ai.fallback.provider", r.provider.as_deref(), provider)?;
        if p.llm().is_none() {
            return Err(invalid(
                "ai.fallback.provider",
                format!("{:?}", p.name()),
                "a fallback must be an LLM provider; when every route fails the last valid advice is kept, then \
                 neutral advice once it expires",
            ));
        }
        // The same provider keeps the primary's URL and key unless told otherwise.
        let same = p == provider;
        let url = match r.base_url.as_deref() {
            None if same => base_url.clone(),
            u => base_url_of("ai.fallback.base_url", p, u, region.as_deref())?,
        };
        let var = match r.api_key_env.as_deref() {
            None if same => key_var.clone(),
            v => key_var_of("ai.fallback.api_key_env", p, v)?,
        };
        let m = model_of("ai.fallback.model", p, r.model.as_deref())?;
        fallback.push(AiRoute { provider: p, base_url: url, model: m, key_var: var });
    }
    let mut models = BTreeMap::new();
    for (name, m) in a.models.iter().flatten() {
        let mut extra = serde_json::Map::new();
        for (k, v) in m.params.iter().flatten() {
            if RESERVED_PARAMS.contains(&k.as_str()) {
                return Err(invalid(
                    "ai.models.params",
                    format!("\"{name}\".{k}"),
                    "mmbot sets `model`, `messages`, `system` and `stream` itself; remove the key",
                ));
            }
            // The token cap has its own key, sent under the name the model takes.
            if k == "max_tokens" || k == "max_completion_tokens" {
                return Err(invalid(
                    "ai.models.params",
                    format!("\"{name}\".{k}"),
                    format!(
                        "set the cap with [ai.models.\"{name}\"] max_tokens = N: mmbot sends it as max_tokens, or as \
                         max_completion_tokens to reasoning models (sending both is refused by OpenAI)"
                    ),
                ));
            }
            extra.insert(k.clone(), toml_to_json(v));
        }
        let params = ModelParams {
            reasoning: m.reasoning,
            temperature: m.temperature.map(|t| float_in("ai.models.temperature", Some(t), t, 0.0, 2.0)).transpose()?,
            max_tokens: m
                .max_tokens
                .map(|t| in_range("ai.models.max_tokens", Some(t), t, 16, 200_000).map(|v| v as u32))
                .transpose()?,
            reasoning_effort: effort_of("ai.models.reasoning_effort", m.reasoning_effort.as_deref())?,
            response_format: response_format_of("ai.models.response_format", m.response_format.as_deref())?,
            extra,
        };
        models.insert(name.clone(), params);
    }
    let interval = secs("ai.interval_s", a.interval_s, d.interval, 0.1, 3600.0)?;
    let call_on = match a.call_on.as_deref().map(str::trim) {
        None => d.call_on,
        Some(s) => CallOn::parse(s).ok_or_else(|| invalid("ai.call_on", format!("{s:?}"), CallOn::NAMES))?,
    };
    let min_interval = secs("ai.min_interval_s", a.min_interval_s, interval, 0.1, 3600.0)?;
    let max_interval = secs("ai.max_interval_s", a.max_interval_s, (interval * 12).max(min_interval), 0.1, 86_400.0)?;
    if min_interval > max_interval {
        return Err(invalid(
            "ai.min_interval_s",
            min_interval.as_secs_f64(),
            format!("must not exceed ai.max_interval_s ({})", max_interval.as_secs_f64()),
        ));
    }
    // `json_mode = false` (the old switch) means no response_format at all.
    let response_format = match (response_format_of("ai.response_format", a.response_format.as_deref())?, a.json_mode) {
        (Some(f), _) => f,
        (None, Some(false)) => ResponseFormat::None,
        (None, _) => d.response_format,
    };
    let daily_budget_usd = match a.daily_budget_usd {
        None => None,
        Some(b) if b.is_finite() && b > 0.0 && b <= 1e6 => Some(b),
        Some(b) => {
            return Err(invalid(
                "ai.daily_budget_usd",
                b,
                "must be a number of USD above 0 (and at most 1000000); leave it out for no daily limit",
            ))
        }
    };
    let ai = AiConfig {
        provider,
        base_url,
        model,
        key_var,
        env_file,
        region,
        temperature: float_in("ai.temperature", a.temperature, d.temperature, 0.0, 2.0)?,
        max_tokens: in_range("ai.max_tokens", a.max_tokens, d.max_tokens as i64, 16, 200_000)? as u32,
        interval,
        ttl_intervals: float_in("ai.ttl_intervals", a.ttl_intervals, d.ttl_intervals, 1.0, 100.0)?,
        max_age: secs("ai.max_age_s", a.max_age_s, interval, 0.05, 3600.0)?,
        call_on,
        min_interval,
        max_interval,
        connect_timeout: secs("ai.connect_timeout_s", a.connect_timeout_s, d.connect_timeout, 0.05, 120.0)?,
        timeout: secs("ai.timeout_s", a.timeout_s, d.timeout, 0.05, 600.0)?,
        retries: in_range("ai.retries", a.retries, d.retries as i64, 0, 10)? as u32,
        backoff: Duration::from_millis(
            in_range("ai.backoff_ms", a.backoff_ms, d.backoff.as_millis() as i64, 1, 60_000)? as u64,
        ),
        response_format,
        reasoning_effort: effort_of("ai.reasoning_effort", a.reasoning_effort.as_deref())?,
        min_multiplier: float_in("ai.min_multiplier", a.min_multiplier, d.min_multiplier, 0.05, 20.0)?,
        max_multiplier: float_in("ai.max_multiplier", a.max_multiplier, d.max_multiplier, 0.05, 20.0)?,
        apply_multiplier: a.apply_multiplier.unwrap_or(d.apply_multiplier),
        daily_budget_usd,
        log: a.log.as_deref().filter(|p| !p.trim().is_empty()).map(std::path::PathBuf::from),
        fallback,
        models,
        prices,
    };
    if ai.min_multiplier > ai.max_multiplier {
        return Err(invalid(
            "ai.min_multiplier",
            ai.min_multiplier,
            format!("must not exceed ai.max_multiplier ({})", ai.max_multiplier),
        ));
    }
    Ok(ai)
}

#[cfg(test)]
mod tests {
    use crate::ai::{CallOn, Provider, ReasoningEffort, ResponseFormat};
    use crate::config::Config;

    fn err(text: &str) -> String {
        Config::from_toml(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn each_new_key_names_itself_when_wrong() {
        for (text, key, hint) in [
            ("[ai]\ncall_on = \"sometimes\"\n", "ai.call_on", "regime_change"),
            ("[ai]\nresponse_format = \"xml\"\n", "ai.response_format", "json_schema"),
            ("[ai]\nreasoning_effort = \"max\"\n", "ai.reasoning_effort", "minimal"),
            ("[ai]\ndaily_budget_usd = 0\n", "ai.daily_budget_usd", "above 0"),
            ("[ai]\ndaily_budget_usd = -3\n", "ai.daily_budget_usd", "above 0"),
            ("[ai]\nmin_interval_s = 30\nmax_interval_s = 10\n", "ai.min_interval_s", "must not exceed"),
            ("[ai]\nmax_age_s = 0\n", "ai.max_age_s", "from 0.05"),
            ("[ai]\nregion = \"US East\"\n", "ai.region", "us-east-1"),
            ("[[ai.fallback]]\nprovider = \"offline\"\n", "ai.fallback.provider", "LLM provider"),
            ("[[ai.fallback]]\nprovider = \"gpt\"\n", "ai.fallback.provider", "\"openai\""),
            ("[[ai.fallback]]\nmodel = \"\"\n", "ai.fallback.model", "model name"),
            ("[[ai.fallback]]\nprovider = \"openai\"\napi_key_env = \"sk-123\"\n", "ai.fallback.api_key_env", "NAME"),
            ("[ai.models.\"gpt-5\"]\nparams = { model = \"x\" }\n", "ai.models.params", "sets `model`"),
            ("[ai.models.\"gpt-5\"]\nparams = { stream = true }\n", "ai.models.params", "`stream`"),
            ("[ai.models.\"gpt-5\"]\nparams = { max_tokens = 9 }\n", "ai.models.params", "max_completion_tokens"),
            ("[ai.models.\"gpt-5\"]\nreasoning_effort = \"extreme\"\n", "ai.models.reasoning_effort", "minimal"),
            ("[ai.models.\"gpt-5\"]\nmax_tokens = 3\n", "ai.models.max_tokens", "16"),
            ("[ai.prices]\n\"m\" = { input = 1, output = 2, cached_input = -1 }\n", "ai.prices", "per million"),
        ] {
            let e = err(text);
            assert!(e.contains(key) && e.contains(hint), "{text}: {e}");
        }
        assert!(err("[ai.models.\"gpt-5\"]\ncolour = 1\n").contains("colour"), "unknown keys are refused");
        for effort in ["none", "minimal", "low", "medium", "high", "xhigh"] {
            let c = Config::from_toml(&format!("[ai]\nreasoning_effort = \"{effort}\"\n"), "t.toml").unwrap();
            assert_eq!(c.ai.reasoning_effort.map(ReasoningEffort::name), Some(effort));
        }
    }

    #[test]
    fn routes_models_and_defaults() {
        let c = Config::from_toml(
            "[ai]\nprovider = \"openai\"\nmodel = \"gpt-5-mini\"\ninterval_s = 2\ncall_on = \"regime_change\"\n\
             daily_budget_usd = 3.5\nreasoning_effort = \"low\"\n\
             [[ai.fallback]]\nmodel = \"gpt-5-nano\"\n\
             [[ai.fallback]]\nprovider = \"anthropic\"\n\
             [ai.models.\"gpt-5-nano\"]\nreasoning_effort = \"minimal\"\nparams = { seed = 7, top_p = 0.5 }\n\
             [ai.prices]\n\"gpt-5-mini\" = { input = 0.25, output = 2.0, cached_input = 0.025 }\n",
            "t.toml",
        )
        .unwrap();
        let ai = &c.ai;
        assert_eq!(
            (ai.call_on, ai.daily_budget_usd, ai.reasoning_effort),
            (CallOn::RegimeChange, Some(3.5), Some(ReasoningEffort::Low))
        );
        assert_eq!(
            (ai.min_interval.as_secs_f64(), ai.max_interval.as_secs_f64(), ai.max_age.as_secs_f64()),
            (2.0, 24.0, 2.0)
        );
        assert_eq!(ai.response_format, ResponseFormat::JsonSchema);
        let routes = ai.routes();
        assert_eq!(routes.len(), 3);
        assert_eq!((routes[1].provider, routes[1].model.as_str()), (Provider::OpenAi, "gpt-5-nano"));
        assert_eq!((routes[1].base_url.clone(), routes[1].key_var.as_str()), (ai.base_url.clone(), "OPENAI_API_KEY"));
        assert_eq!(routes[2].provider, Provider::Anthropic);
        assert_eq!(routes[2].base_url.as_deref(), Some("https://api.anthropic.com/v1"));
        assert_eq!((routes[2].key_var.as_str(), routes[2].model.as_str()), ("ANTHROPIC_API_KEY", "claude-haiku-4-5"));
        assert_eq!(ai.for_route(&routes[2]).endpoint().unwrap(), "https://api.anthropic.com/v1/messages");
        let p = ai.model_params("openai/GPT-5-NANO");
        assert_eq!((p.reasoning_effort, p.extra["seed"].as_i64()), (Some(ReasoningEffort::Minimal), Some(7)));
        assert!(ai.is_reasoning("gpt-5-nano") && ai.is_reasoning("o4-mini") && !ai.is_reasoning("gpt-4.1"));
        assert!(!ai.is_reasoning("ollama/llama3.1") && !ai.is_reasoning("openai/gpt-4o"));
        let price = ai.prices.get("gpt-5-mini").unwrap();
        assert_eq!(price.cached_input_per_m, Some(0.025));
        // 1,000 prompt tokens of which 800 cached, 100 out.
        let usd = ai.prices.cost_cached("gpt-5-mini", 1_000, 800, 100).unwrap();
        assert!((usd - (200.0 * 0.25 + 800.0 * 0.025 + 100.0 * 2.0) / 1e6).abs() < 1e-15);
        // The old switch still works.
        let c = Config::from_toml("[ai]\njson_mode = false\n", "t.toml").unwrap();
        assert_eq!(c.ai.response_format, ResponseFormat::None);
        let c = Config::from_toml("[ai]\nprovider = \"bedrock\"\nregion = \"eu-west-1\"\n", "t.toml").unwrap();
        assert_eq!(
            c.ai.endpoint().unwrap(),
            "https://bedrock-runtime.eu-west-1.amazonaws.com/openai/v1/chat/completions"
        );
        assert_eq!(c.ai.key_var, "AWS_BEARER_TOKEN_BEDROCK");
    }

    #[test]
    fn the_example_round_trips_through_describe() {
        let c = Config::from_toml(
            "[ai]\nprovider = \"openai\"\n[[ai.fallback]]\nmodel = \"gpt-5-nano\"\n\
             [ai.models.\"gpt-5-nano\"]\nreasoning = true\nparams = { seed = 7 }\n",
            "t.toml",
        )
        .unwrap();
        // The [ai] part of `config show` reads back as the same settings.
        let text = c.describe();
        let start = text.find("\n[ai]").unwrap();
        let end = text[start..].find("\n[feed]").map_or(text.len(), |e| start + e);
        let again = Config::from_toml(&text[start..end], "described").unwrap();
        assert_eq!(again.ai, c.ai);
    }
}
