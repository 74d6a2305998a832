//! The control API's bearer token: from the environment or `.env`, or
//! generated at start (and then shown once, on stderr, by the caller).
//! Compared in constant time, so the answer's timing says nothing about
//! how much of a guess was right.

use std::path::Path;

/// A token shorter than this is refused: it could be guessed.
pub const MIN_LEN: usize = 16;

/// Where the token came from (the banner says which, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `$NAME` in the environment or `.env`.
    Env(String),
    /// Generated: the caller prints it once.
    Generated,
}

/// The token and where it came from.
#[derive(Clone)]
pub struct Token {
    value: String,
    pub source: TokenSource,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({:?}, {} chars)", self.source, self.value.len())
    }
}

/// Why the token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the control token in ${var} is {len} characters; use at least {MIN_LEN} (e.g. `openssl rand -hex 32`)")]
    TooShort { var: String, len: usize },
    #[error("the control token in ${var} is unusable: {why}")]
    Bad { var: String, why: String },
    #[error("generating a control token failed: the system's random source did not answer")]
    Random,
}

impl Token {
    /// `$var` from the environment, else from `env_file`, else a new one.
    pub fn load(var: &str, env_file: &Path) -> Result<Self, TokenError> {
        match crate::ai::key::find(var, env_file) {
            Ok(Some(k)) => Self::from_value(var, k.key.secret()),
            Ok(None) => Self::generate(),
            Err(e) => Err(TokenError::Bad { var: var.into(), why: e.to_string() }),
        }
    }

    /// 32 random bytes, hex.
    pub fn generate() -> Result<Self, TokenError> {
        use ring::rand::SecureRandom;
        let mut b = [0u8; 32];
        ring::rand::SystemRandom::new().fill(&mut b).map_err(|_| TokenError::Random)?;
        let value = b.iter().map(|x| format!("{x:02x}")).collect();
        Ok(Self { value, source: TokenSource::Generated })
    }

    /// A token given by value (`var` names it in messages), held to the
    /// same minimum length as one from the environment.
    pub fn from_value(var: &str, value: &str) -> Result<Self, TokenError> {
        if value.len() < MIN_LEN {
            return Err(TokenError::TooShort { var: var.into(), len: value.len() });
        }
        Ok(Self { value: value.into(), source: TokenSource::Env(var.into()) })
    }

    #[cfg(test)]
    pub fn fixed(value: &str) -> Self {
        Self { value: value.into(), source: TokenSource::Generated }
    }

    /// The value, for the one place that shows a generated token.
    pub fn reveal(&self) -> &str {
        &self.value
    }

    /// Whether `given` is the token (constant time in its length).
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.value.as_bytes(), given.as_bytes());
        let mut diff = (a.len() ^ b.len()) as u64;
        for (i, x) in a.iter().enumerate() {
            diff |= (x ^ b.get(i).copied().unwrap_or(0)) as u64;
        }
        diff == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let t = Token::fixed("0123456789abcdef0123");
        assert!(t.matches("0123456789abcdef0123"));
        for bad in ["", "0123456789abcdef012", "0123456789abcdef01234", "1123456789abcdef0123"] {
            assert!(!t.matches(bad), "{bad}");
        }
        let g = Token::generate().unwrap();
        assert_eq!(g.reveal().len(), 64);
        assert!(!format!("{g:?}").contains(g.reveal()));
    }
}
