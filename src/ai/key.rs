//! The LLM API key: read from the environment, or from a `.env` file when the
//! environment lacks it, and never from `mmbot.toml` (secrets do not belong
//! in a file that gets copied around and committed).
//!
//! [`ApiKey`] keeps the value private: its `Debug` shows only the variable,
//! the length and (for long keys) the first 4 characters, and nothing in
//! mmbot prints more. `.env` is read with `dotenvy`'s iterator, without
//! setting process environment variables (other threads may be reading it).
//!
//! Pasting mistakes are repaired with a warning: surrounding quotes, spaces
//! and a `Bearer ` prefix are stripped. A key with inner whitespace or
//! control characters cannot be sent in a header and is refused.

use std::fmt;
use std::path::Path;

use crate::ai::AiError;

/// A key and the variable it came from.
#[derive(Clone)]
pub struct ApiKey {
    var: String,
    value: String,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}: {})", self.var, self.hint())
    }
}

/// Where a key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    EnvFile(String),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => f.write_str("the environment"),
            Self::EnvFile(p) => write!(f, "{p}"),
        }
    }
}

/// A key found, where, and what was repaired in it.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    pub key: ApiKey,
    pub source: KeySource,
    /// Set when quotes, spaces or a `Bearer ` prefix were stripped.
    pub warning: Option<String>,
}

impl ApiKey {
    /// A key given directly (tests).
    pub fn new(var: &str, value: &str) -> Self {
        Self { var: var.to_string(), value: value.to_string() }
    }

    /// The variable it came from.
    pub fn var(&self) -> &str {
        &self.var
    }

    /// The value, for the `Authorization` header only.
    pub(crate) fn secret(&self) -> &str {
        &self.value
    }

    /// What may be shown: the length, and the first 4 characters of keys long
    /// enough that 4 characters give nothing away (prefixes such as `sk-`).
    pub fn hint(&self) -> String {
        let n = self.value.chars().count();
        if n >= 16 {
            format!("{n} characters, starts \"{}\"", self.value.chars().take(4).collect::<String>())
        } else {
            format!("{n} characters")
        }
    }

    /// Replaces the key wherever it appears in `text` (server messages may
    /// echo it).
    pub fn redact(&self, text: &str) -> String {
        if self.value.len() >= 4 {
            text.replace(&self.value, "[key]")
        } else {
            text.to_string()
        }
    }
}

/// Looks `var` up in the environment, then in `env_file`. `Ok(None)`: not
/// set anywhere (or empty).
pub fn find(var: &str, env_file: &Path) -> Result<Option<LoadedKey>, AiError> {
    let (raw, source) = match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => (v, KeySource::Environment),
        _ => match from_env_file(var, env_file) {
            Some(v) if !v.trim().is_empty() => (v, KeySource::EnvFile(env_file.display().to_string())),
            _ => return Ok(None),
        },
    };
    let (value, repaired) = clean(&raw);
    if value.is_empty() {
        return Ok(None);
    }
    if let Some(bad) = value.chars().find(|c| c.is_whitespace() || c.is_control() || !c.is_ascii()) {
        let what = if bad.is_whitespace() {
            "it contains whitespace inside it"
        } else if bad.is_control() {
            "it contains a control character"
        } else {
            "it contains a non-ASCII character"
        };
        return Err(AiError::BadKey {
            var: var.to_string(),
            source_of_key: source.to_string(),
            why: format!("{what} ({} characters); paste the key again, exactly as the provider shows it", value.len()),
        });
    }
    let key = ApiKey { var: var.to_string(), value };
    let warning = repaired.then(|| {
        format!(
            "the key in {var} ({source}) had quotes, spaces or a \"Bearer \" prefix around it; stripped them \
             (key now {}). Fix the value to silence this warning.",
            key.hint()
        )
    });
    Ok(Some(LoadedKey { key, source, warning }))
}

/// Like [`find`], but a missing key is an error naming the variable and the file.
pub fn require(provider: &'static str, var: &str, env_file: &Path) -> Result<LoadedKey, AiError> {
    find(var, env_file)?.ok_or_else(|| AiError::MissingKey {
        provider,
        var: var.to_string(),
        env_file: env_file.display().to_string(),
    })
}

/// `var` from a `.env` file, if the file exists and sets it. Lines that do
/// not parse are skipped: their content is never echoed (it may be a secret).
fn from_env_file(var: &str, path: &Path) -> Option<String> {
    let iter = dotenvy::from_path_iter(path).ok()?;
    let mut found = None;
    for item in iter {
        match item {
            // The last assignment wins, as when the file is sourced.
            Ok((k, v)) if k == var => found = Some(v),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    found
}

/// Strips spaces, matching quotes and a `Bearer ` prefix; says whether
/// anything was stripped.
fn clean(raw: &str) -> (String, bool) {
    let mut s = raw.trim();
    loop {
        let before = s;
        for q in ['"', '\'', '`'] {
            if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
                s = s[1..s.len() - 1].trim();
            }
        }
        if s.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("bearer ")) {
            s = s[7..].trim();
        }
        if s == before {
            break;
        }
    }
    (s.to_string(), s != raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasting_mistakes_are_repaired_and_flagged() {
        assert_eq!(clean("sk-abc"), ("sk-abc".into(), false));
        assert_eq!(clean("  \"sk-abc\" \n"), ("sk-abc".into(), true));
        assert_eq!(clean("'sk-abc'"), ("sk-abc".into(), true));
        assert_eq!(clean("Bearer sk-abc"), ("sk-abc".into(), true));
        assert_eq!(clean("\" 'Bearer sk-abc' \""), ("sk-abc".into(), true));
    }

    #[test]
    fn the_key_is_never_shown() {
        let k = ApiKey::new("X_KEY", "sk-1234567890abcdefSECRET");
        let shown = format!("{k:?} {}", k.hint());
        assert!(!shown.contains("567890") && shown.contains("sk-1") && shown.contains("25 characters"), "{shown}");
        assert_eq!(ApiKey::new("X", "short-secret").hint(), "12 characters");
        assert_eq!(k.redact("bad key sk-1234567890abcdefSECRET!"), "bad key [key]!");
    }

    #[test]
    fn env_file_is_read_without_touching_the_environment() {
        let dir = std::env::temp_dir().join(format!("mmbot-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join(".env");
        std::fs::write(&f, "# keys\nOTHER=1\nMMBOT_TEST_KEY_A=\"  sk-from-env-file-0001  \"\n").unwrap();
        let k = find("MMBOT_TEST_KEY_A", &f).unwrap().unwrap();
        assert_eq!(k.key.secret(), "sk-from-env-file-0001");
        assert!(k.warning.is_some() && matches!(k.source, KeySource::EnvFile(_)));
        assert!(std::env::var("MMBOT_TEST_KEY_A").is_err());
        assert!(find("MMBOT_TEST_KEY_B", &f).unwrap().is_none());
        assert!(find("MMBOT_TEST_KEY_B", &dir.join("absent.env")).unwrap().is_none());
        std::fs::write(&f, "MMBOT_TEST_KEY_A=\"sk-has space-inside\"\n").unwrap();
        let e = find("MMBOT_TEST_KEY_A", &f).unwrap_err().to_string();
        assert!(e.contains("MMBOT_TEST_KEY_A") && e.contains("whitespace") && !e.contains("space-inside"), "{e}");
        let e = require("holysheep", "MMBOT_TEST_KEY_B", &f).unwrap_err().to_string();
        assert!(e.contains("MMBOT_TEST_KEY_B") && e.contains(".env"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
