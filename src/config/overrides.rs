//! `--param name=value`: settings changed on the command line, so a sweep
//! (or one backtest) can try a value without editing `mmbot.toml`.
//!
//! A name without a dot is a `[strategy.params]` entry (`--param gamma=0.1`);
//! a dotted name is any config key (`--param paper.latency_ms=50`,
//! `--param strategy.target_spread_pct=0.02`). The overrides are written into
//! the TOML document before it is validated, so a bad value gets the same
//! message a bad file would, prefixed with the `--param` that caused it.
//! Values are read as TOML (`50`, `0.5`, `true`, `"0.001"`); a dotted key's
//! value that is not TOML is taken as a string (`market.symbol=ETHUSDT`).

use std::path::Path;

use super::{Config, ConfigError};

/// Why the configuration with its `--param` overrides was refused.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error(
        "--param {0:?} is not name=value: write e.g. --param gamma=0.1 (a [strategy.params] entry) \
         or --param paper.latency_ms=50 (a config key)"
    )]
    Syntax(String),
    #[error(
        "--param {param}: strategy parameter `{name}` must be a number, not {value:?} \
         ([strategy.params] holds numbers; other settings are section.key=value)"
    )]
    NotANumber { param: String, name: String, value: String },
    #[error("--param {param}: `{path}` holds a value, not a section, in the config, so `{key}` cannot go inside it")]
    NotASection { param: String, path: String, key: String },
    /// The override made the configuration invalid; the message is the one a
    /// file with that value would get.
    #[error("--param {param}: {error}")]
    Rejected { param: String, error: ConfigError },
    /// The config file itself (before any override) was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// One parsed `--param`: where it goes and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// As written, for messages.
    pub text: String,
    /// Table path, e.g. `["paper", "latency_ms"]` or `["strategy", "params", "gamma"]`.
    pub path: Vec<String>,
    pub value: toml::Value,
}

impl Param {
    /// Parses `name=value`.
    pub fn parse(text: &str) -> Result<Self, ParamError> {
        let syntax = || ParamError::Syntax(text.to_string());
        let (name, raw) = text.split_once('=').ok_or_else(syntax)?;
        let (name, raw) = (name.trim(), raw.trim());
        let key_ok = |k: &str| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if raw.is_empty() || !name.split('.').all(key_ok) {
            return Err(syntax());
        }
        let value = toml_value(raw);
        if !name.contains('.') {
            let number = match value {
                Some(toml::Value::Integer(i)) => i as f64,
                Some(toml::Value::Float(f)) => f,
                _ => {
                    return Err(ParamError::NotANumber {
                        param: text.to_string(),
                        name: name.to_string(),
                        value: raw.to_string(),
                    })
                }
            };
            let path = vec!["strategy".into(), "params".into(), name.to_string()];
            return Ok(Self { text: text.to_string(), path, value: toml::Value::Float(number) });
        }
        let path = name.split('.').map(str::to_string).collect();
        let value = value.unwrap_or_else(|| toml::Value::String(raw.to_string()));
        Ok(Self { text: text.to_string(), path, value })
    }

    /// Writes the value into `doc`, making the sections on the way.
    pub fn apply(&self, doc: &mut toml::Table) -> Result<(), ParamError> {
        let (last, sections) = self.path.split_last().expect("a parsed name has a key");
        let mut table = doc;
        for (i, s) in sections.iter().enumerate() {
            let entry = table.entry(s.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = match entry {
                toml::Value::Table(t) => t,
                _ => {
                    return Err(ParamError::NotASection {
                        param: self.text.clone(),
                        path: self.path[..=i].join("."),
                        key: self.path[i + 1..].join("."),
                    })
                }
            };
        }
        table.insert(last.clone(), self.value.clone());
        Ok(())
    }
}

/// `raw` as a TOML value, if it is exactly one.
fn toml_value(raw: &str) -> Option<toml::Value> {
    let mut t: toml::Table = toml::from_str(&format!("v = {raw}")).ok()?;
    (t.len() == 1).then(|| t.remove("v")).flatten()
}

/// Validates a document as the config file it stands for.
fn validate(doc: &toml::Table, origin: &str) -> Result<Config, ConfigError> {
    Config::from_doc(doc, origin)
}

/// Reads `path` (or the defaults) with `params` applied over it, then
/// validates. A refusal names the `--param` that caused it: the first one
/// after which the configuration no longer validates.
pub fn load_with_params(flag: Option<&Path>, params: &[String]) -> Result<Config, ParamError> {
    if params.is_empty() {
        return Ok(Config::load_or_default(flag)?);
    }
    // The same file as without overrides (the one rule, said on the first line).
    let choice = super::source::Choice::for_process(flag);
    crate::say!("mmbot: {}", choice.line());
    let path = choice.path();
    let parsed = params.iter().map(|p| Param::parse(p)).collect::<Result<Vec<_>, _>>()?;
    let (mut doc, origin) = match path {
        Some(p) => {
            // The file alone first, so its own mistakes read as before.
            let text = std::fs::read_to_string(p)
                .map_err(|source| ConfigError::Read { path: p.display().to_string(), source })?;
            Config::from_toml(&text, &p.display().to_string())?;
            let doc: toml::Table = toml::from_str(&text)
                .map_err(|e| ConfigError::Toml { path: p.display().to_string(), message: e.to_string() })?;
            (doc, p.display().to_string())
        }
        None => (toml::Table::new(), "the defaults".to_string()),
    };
    for p in &parsed {
        p.apply(&mut doc)?;
    }
    match validate(&doc, &origin) {
        Ok(config) => Ok(config),
        Err(error) => {
            // Find the override that broke it: apply them one at a time.
            let mut partial = match path {
                Some(p) => toml::from_str(&std::fs::read_to_string(p).unwrap_or_default()).unwrap_or_default(),
                None => toml::Table::new(),
            };
            for p in &parsed {
                p.apply(&mut partial)?;
                if let Err(error) = validate(&partial, &origin) {
                    return Err(ParamError::Rejected { param: p.text.clone(), error });
                }
            }
            Err(ParamError::Rejected { param: params.join(" "), error })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(params: &[&str]) -> Result<Config, ParamError> {
        load_with_params(None, &params.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn plain_names_are_strategy_params_and_dotted_names_config_keys() {
        let c = load(&["gamma=0.25", "k=150", "paper.latency_ms=50", "strategy.target_spread_pct=0.02"]).unwrap();
        assert_eq!(c.params.get("gamma"), Some(&0.25));
        assert_eq!(c.params.get("k"), Some(&150.0));
        assert_eq!(c.paper.entry_latency_ns, 50_000_000);
        assert_eq!(c.hot.params.target_spread_pct, 0.02);
        let c = load(&["market.symbol=ETHUSDT", "paper.maker_fee=\"0.0001\"", "strategy.params.skew=2"]).unwrap();
        assert_eq!(c.hot.symbol.map(|s| s.to_string()), Some("ETHUSDT".into()));
        assert_eq!(c.paper.maker_fee_rate, 10_000);
        assert_eq!(c.params.get("skew"), Some(&2.0));
    }

    #[test]
    fn later_params_win() {
        let c = load(&["paper.latency_ms=50", "paper.latency_ms=7"]).unwrap();
        assert_eq!(c.paper.entry_latency_ns, 7_000_000);
    }

    #[test]
    fn params_override_the_file() {
        let dir = std::env::temp_dir().join(format!("mmbot-overrides-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("mmbot.toml");
        std::fs::write(&file, "[paper]\nlatency_ms = 20\n[strategy.params]\ngamma = 0.1\n").unwrap();
        let c = load_with_params(Some(&file), &["gamma=0.3".into()]).unwrap();
        assert_eq!((c.paper.entry_latency_ns, c.params.get("gamma")), (20_000_000, Some(&0.3)));
        let c = load_with_params(Some(&file), &[]).unwrap();
        assert_eq!(c.params.get("gamma"), Some(&0.1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn errors_name_the_param_and_say_what_is_allowed() {
        let e = load(&["paper.latency_ms=-5"]).unwrap_err().to_string();
        assert!(e.starts_with("--param paper.latency_ms=-5: config key `paper.latency_ms` = -5 is invalid"), "{e}");
        assert!(e.contains("must be a number from 0 to 60000"), "{e}");
        let e = load(&["gamma=0.1", "paper.latency=5"]).unwrap_err().to_string();
        assert!(e.starts_with("--param paper.latency=5: "), "{e}");
        assert!(e.contains("unknown field `latency`") && e.contains("latency_ms"), "{e}");
        let e = load(&["nosection.key=1"]).unwrap_err().to_string();
        assert!(e.contains("--param nosection.key=1") && e.contains("unknown field `nosection`"), "{e}");
        let e = load(&["gamma=high"]).unwrap_err().to_string();
        assert!(e.contains("strategy parameter `gamma` must be a number, not \"high\""), "{e}");
        let e = load(&["gamma"]).unwrap_err().to_string();
        assert!(e.contains("is not name=value"), "{e}");
        let e = load(&["paper..x=1"]).unwrap_err().to_string();
        assert!(e.contains("is not name=value"), "{e}");
        let e = load(&["paper.latency_ms=5", "paper.latency_ms.x=1"]).unwrap_err().to_string();
        assert!(e.contains("`paper.latency_ms` holds a value, not a section"), "{e}");
        let e = load(&["market.symbol=\"BTC-USDT\""]).unwrap_err().to_string();
        assert!(e.contains("--param market.symbol=\"BTC-USDT\": config key `market.symbol`"), "{e}");
    }
}
