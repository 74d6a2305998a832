//! Settings from `mmbot.toml`, read in two steps: raw (serde, every key
//! optional with a default) then validated (impossible values refused with a
//! message naming the key, the value and what is allowed).
//!
//! Secrets never live here: they come from the environment or `.env` only.

use std::path::Path;

use serde::Deserialize;

use crate::hot::market::BookSizes;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path} is not valid TOML for mmbot: {message}")]
    Toml { path: String, message: String },
    #[error("config key `{key}` = {value} is invalid: {allowed}")]
    Invalid { key: &'static str, value: String, allowed: String },
}

/// `[book]` as written in the file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBook {
    pub capacity: Option<i64>,
    pub max_message_levels: Option<i64>,
    pub buffer_events: Option<i64>,
    pub buffer_levels: Option<i64>,
    pub max_symbols: Option<i64>,
}

/// The whole file as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub book: RawBook,
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    pub book: BookSizes,
}

fn in_range(key: &'static str, v: Option<i64>, default: usize, lo: i64, hi: i64) -> Result<usize, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if (lo..=hi).contains(&v) => Ok(v as usize),
        Some(v) => Err(ConfigError::Invalid {
            key,
            value: v.to_string(),
            allowed: format!("must be an integer from {lo} to {hi}"),
        }),
    }
}

impl Config {
    /// Parses and validates TOML text; `origin` names it in messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Toml { path: origin.to_string(), message: e.to_string() })?;
        Self::validate(raw)
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Reads `path` when given, else the defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, ConfigError> {
        path.map_or_else(|| Ok(Self::default()), Self::load)
    }

    pub fn validate(raw: RawConfig) -> Result<Self, ConfigError> {
        let d = BookSizes::default();
        let b = &raw.book;
        let book = BookSizes {
            // Ticks per side the ladder spans; rounded up to a power of two.
            capacity: in_range("book.capacity", b.capacity, d.capacity, 64, 1 << 22)?,
            // Binance snapshots hold at most 5000 levels per side.
            max_message_levels: in_range(
                "book.max_message_levels",
                b.max_message_levels,
                d.max_message_levels,
                20,
                100_000,
            )?,
            buffer_events: in_range("book.buffer_events", b.buffer_events, d.buffer_events, 16, 1_000_000)?,
            buffer_levels: in_range("book.buffer_levels", b.buffer_levels, d.buffer_levels, 256, 10_000_000)?,
            max_symbols: in_range("book.max_symbols", b.max_symbols, d.max_symbols, 1, 1024)?,
        };
        Ok(Self { book })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_empty() {
        assert_eq!(Config::from_toml("", "t").unwrap(), Config::default());
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::from_toml("[book]\ncapacity = 3\n", "t").unwrap_err().to_string();
        assert!(e.contains("book.capacity") && e.contains('3') && e.contains("64 to 4194304"), "{e}");
        let e = Config::from_toml("[book]\ncapcity = 3000\n", "t").unwrap_err().to_string();
        assert!(e.contains("capcity"), "{e}");
    }
}
