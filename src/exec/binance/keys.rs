//! Binance API credentials: where they come from and how they stay secret.
//!
//! [`Credentials`] is the API key (`BINANCE_API_KEY`, sent in the
//! `X-MBX-APIKEY` header) plus the signing key: an HMAC secret
//! (`BINANCE_SECRET_KEY`) or the path of an Ed25519 PKCS#8 PEM file
//! (`BINANCE_ED25519_KEY_FILE`). Each variable is looked up in the
//! environment first, then in a `.env` file read with `dotenvy`'s iterator
//! (process environment variables are never set: other threads may read
//! them). Secrets never go in `mmbot.toml`, which gets copied and committed.
//!
//! Nothing here prints a key: `Debug` shows the key type, the API key's
//! length and its first 4 characters, and [`Credentials::redact`] removes the
//! API key from server text that might echo it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::exec::binance::sign::{Ed25519Key, HmacKey, KeyKind, SignError, Signer};

/// The API key variable.
pub const API_KEY_VAR: &str = "BINANCE_API_KEY";
/// The HMAC secret variable.
pub const SECRET_KEY_VAR: &str = "BINANCE_SECRET_KEY";
/// The Ed25519 PEM file variable.
pub const ED25519_KEY_FILE_VAR: &str = "BINANCE_ED25519_KEY_FILE";

/// Why credentials could not be loaded. Messages name variables and files,
/// never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no Binance API key: set {API_KEY_VAR} in the environment or in {env_file}, plus either {SECRET_KEY_VAR} \
         (HMAC key) or {ED25519_KEY_FILE_VAR} (path of an Ed25519 PKCS#8 PEM file)"
    )]
    MissingApiKey { env_file: String },
    #[error(
        "{API_KEY_VAR} is set but no signing key is: set {SECRET_KEY_VAR} (HMAC key) or {ED25519_KEY_FILE_VAR} \
         (path of an Ed25519 PKCS#8 PEM file) in the environment or in {env_file}"
    )]
    MissingSigningKey { env_file: String },
    #[error(
        "both {SECRET_KEY_VAR} and {ED25519_KEY_FILE_VAR} are set ({secret_from}; {file_from}); an API key has one \
         type, so keep only the one that matches {API_KEY_VAR}"
    )]
    BothSigningKeys { secret_from: String, file_from: String },
    #[error("{var} (from {from}) cannot be used: {why}")]
    BadValue { var: &'static str, from: String, why: String },
    #[error("{var} (from {from}): {source}")]
    Sign {
        var: &'static str,
        from: String,
        #[source]
        source: SignError,
    },
}

/// Where a value was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Environment,
    EnvFile(PathBuf),
    /// Given directly by code (tests, tools).
    Direct,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => f.write_str("the environment"),
            Self::EnvFile(p) => write!(f, "{}", p.display()),
            Self::Direct => f.write_str("code"),
        }
    }
}

/// The API key and the key that signs requests.
pub struct Credentials {
    api_key: String,
    signer: Signer,
    source: Source,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({} key from {}; {API_KEY_VAR} {})", self.signer.kind(), self.source, self.api_key_hint())
    }
}

/// For people (banners): what kind of key, where it came from, and a hint
/// of the API key; never the secret.
impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} key from {}; {API_KEY_VAR} {}", self.signer.kind(), self.source, self.api_key_hint())
    }
}

impl Credentials {
    /// Looks the variables up in the process environment, then in `env_file`.
    pub fn load(env_file: &Path) -> Result<Self, KeyError> {
        Self::load_with(|var| std::env::var(var).ok(), env_file)
    }

    /// As [`Credentials::load`], with `env` standing in for the process
    /// environment (tests must not set real environment variables).
    pub fn load_with(env: impl Fn(&str) -> Option<String>, env_file: &Path) -> Result<Self, KeyError> {
        let file_vars = read_env_file(env_file);
        let find = |var: &str| -> Option<(String, Source)> {
            if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
                return Some((v, Source::Environment));
            }
            let v = file_vars.iter().rev().find(|(k, _)| k == var).map(|(_, v)| v.clone())?;
            (!v.trim().is_empty()).then(|| (v, Source::EnvFile(env_file.to_path_buf())))
        };
        let env_file_shown = env_file.display().to_string();
        let (api_raw, api_from) =
            find(API_KEY_VAR).ok_or(KeyError::MissingApiKey { env_file: env_file_shown.clone() })?;
        let api_key = clean(&api_raw);
        check_header_safe(API_KEY_VAR, &api_from, &api_key)?;
        let signer = match (find(SECRET_KEY_VAR), find(ED25519_KEY_FILE_VAR)) {
            (Some((_, s)), Some((_, f))) => {
                return Err(KeyError::BothSigningKeys {
                    secret_from: format!("{SECRET_KEY_VAR} from {s}"),
                    file_from: format!("{ED25519_KEY_FILE_VAR} from {f}"),
                });
            }
            (None, None) => return Err(KeyError::MissingSigningKey { env_file: env_file_shown }),
            (Some((raw, from)), None) => {
                let secret = clean(&raw);
                check_header_safe(SECRET_KEY_VAR, &from, &secret)?;
                Signer::Hmac(HmacKey::new(&secret).map_err(|source| KeyError::Sign {
                    var: SECRET_KEY_VAR,
                    from: from.to_string(),
                    source,
                })?)
            }
            (None, Some((raw, from))) => {
                let path = PathBuf::from(clean(&raw));
                // A relative path in .env means relative to that file, as a
                // reader of the file would expect; from the environment, to
                // the working directory.
                let path = match &from {
                    Source::EnvFile(f) if path.is_relative() => f.parent().map_or(path.clone(), |dir| dir.join(&path)),
                    _ => path,
                };
                Signer::Ed25519(Ed25519Key::from_pem_file(&path).map_err(|source| KeyError::Sign {
                    var: ED25519_KEY_FILE_VAR,
                    from: from.to_string(),
                    source,
                })?)
            }
        };
        Ok(Self { api_key, signer, source: api_from })
    }

    /// HMAC credentials given directly.
    pub fn hmac(api_key: &str, secret: &str) -> Result<Self, KeyError> {
        check_header_safe(API_KEY_VAR, &Source::Direct, api_key)?;
        let signer = Signer::Hmac(HmacKey::new(secret).map_err(|source| KeyError::Sign {
            var: SECRET_KEY_VAR,
            from: "code".into(),
            source,
        })?);
        Ok(Self { api_key: api_key.to_string(), signer, source: Source::Direct })
    }

    /// Ed25519 credentials given directly.
    pub fn ed25519(api_key: &str, key: Ed25519Key) -> Result<Self, KeyError> {
        check_header_safe(API_KEY_VAR, &Source::Direct, api_key)?;
        Ok(Self { api_key: api_key.to_string(), signer: Signer::Ed25519(key), source: Source::Direct })
    }

    pub fn kind(&self) -> KeyKind {
        self.signer.kind()
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Where the API key was found.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The API key, for the `X-MBX-APIKEY` header and WS-API `apiKey` only.
    pub(crate) fn api_key(&self) -> &str {
        &self.api_key
    }

    /// What may be shown of the API key: its length, and its first 4
    /// characters when it is long enough that they give nothing away.
    pub fn api_key_hint(&self) -> String {
        let n = self.api_key.chars().count();
        if n >= 16 {
            format!("{n} characters, starts \"{}\"", self.api_key.chars().take(4).collect::<String>())
        } else {
            format!("{n} characters")
        }
    }

    /// `text` with the API key replaced by `[api key]` (error bodies may echo it).
    pub fn redact(&self, text: &str) -> String {
        if self.api_key.len() >= 4 && text.contains(&self.api_key) {
            text.replace(&self.api_key, "[api key]")
        } else {
            text.to_string()
        }
    }
}

/// All `KEY=value` pairs of a `.env` file, in order; nothing when absent.
/// A line that does not parse ends the read, and its content is never shown.
fn read_env_file(path: &Path) -> Vec<(String, String)> {
    let Ok(iter) = dotenvy::from_path_iter(path) else {
        return Vec::new();
    };
    iter.map_while(Result::ok).collect()
}

/// Strips surrounding spaces and matching quotes: the usual pasting slips.
fn clean(raw: &str) -> String {
    let mut s = raw.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            s = s[1..s.len() - 1].trim();
        }
    }
    s.to_string()
}

/// Keys go in a header or a query string: visible ASCII only.
fn check_header_safe(var: &'static str, from: &Source, value: &str) -> Result<(), KeyError> {
    let why = if value.is_empty() {
        "it is empty"
    } else if value.chars().any(char::is_whitespace) {
        "it contains whitespace inside it; paste it again exactly as Binance shows it"
    } else if !value.chars().all(|c| c.is_ascii_graphic()) {
        "it contains a non-ASCII or control character; paste it again exactly as Binance shows it"
    } else {
        return Ok(());
    };
    Err(KeyError::BadValue { var, from: from.to_string(), why: format!("{why} ({} characters)", value.len()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
    const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mmbot-bkeys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn env_wins_over_the_env_file_and_nothing_is_shown() {
        let d = dir("env");
        let f = d.join(".env");
        std::fs::write(&f, format!("BINANCE_API_KEY=\"file-key-0000000000000\"\nBINANCE_SECRET_KEY='{SECRET}'\n"))
            .unwrap();
        let env = |v: &str| (v == API_KEY_VAR).then(|| API.to_string());
        let c = Credentials::load_with(env, &f).unwrap();
        assert_eq!(c.api_key(), API);
        assert_eq!(c.kind(), KeyKind::Hmac);
        assert_eq!(c.source(), &Source::Environment);
        let shown = format!("{c:?}");
        assert!(shown.contains("64 characters") && shown.contains("vmPU"), "{shown}");
        assert!(!shown.contains(&API[4..12]) && !shown.contains(&SECRET[..8]), "{shown}");
        assert_eq!(c.redact(&format!("echo {API}!")), "echo [api key]!");
        let c = Credentials::load_with(|_| None, &f).unwrap();
        assert_eq!(c.api_key(), "file-key-0000000000000");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn missing_and_conflicting_keys_name_the_variables_and_the_file() {
        let d = dir("missing");
        let f = d.join(".env");
        let e = Credentials::load_with(|_| None, &f).unwrap_err().to_string();
        assert!(e.contains(API_KEY_VAR) && e.contains(SECRET_KEY_VAR) && e.contains(".env"), "{e}");
        let e = Credentials::load_with(|v| (v == API_KEY_VAR).then(|| API.into()), &f).unwrap_err().to_string();
        assert!(e.contains(ED25519_KEY_FILE_VAR) && e.contains(".env") && !e.contains(API), "{e}");
        let both = |v: &str| match v {
            API_KEY_VAR => Some(API.to_string()),
            SECRET_KEY_VAR => Some(SECRET.to_string()),
            _ => Some("key.pem".to_string()),
        };
        let e = Credentials::load_with(both, &f).unwrap_err().to_string();
        assert!(e.contains("both") && !e.contains(SECRET), "{e}");
        let spaced = |v: &str| match v {
            API_KEY_VAR => Some("abc def-secretish".to_string()),
            _ => None,
        };
        let e = Credentials::load_with(spaced, &f).unwrap_err().to_string();
        assert!(e.contains("whitespace") && !e.contains("secretish"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn ed25519_key_file_relative_to_the_env_file() {
        let d = dir("ed");
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
                   -----END PRIVATE KEY-----\n";
        std::fs::write(d.join("binance.pem"), pem).unwrap();
        let f = d.join(".env");
        std::fs::write(&f, "BINANCE_API_KEY=ed-api-key-0123456789\nBINANCE_ED25519_KEY_FILE=binance.pem\n").unwrap();
        let c = Credentials::load_with(|_| None, &f).unwrap();
        assert_eq!(c.kind(), KeyKind::Ed25519);
        assert!(!format!("{c:?}").contains("MC4CAQ"));
        std::fs::write(&f, "BINANCE_API_KEY=ed-api-key-0123456789\nBINANCE_ED25519_KEY_FILE=absent.pem\n").unwrap();
        let e = Credentials::load_with(|_| None, &f).unwrap_err().to_string();
        assert!(e.contains(ED25519_KEY_FILE_VAR) && e.contains("absent.pem"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
