//! Which configuration file a command reads: one rule for every command,
//! so the same directory and environment give the same settings whatever
//! the command. In order: `--config FILE`; else `$MMBOT_CONFIG`; else
//! `./mmbot.toml` when it exists; else the built-in defaults. The choice is
//! said on the command's first line ([`Choice::line`]), so nobody wonders
//! which file was used.

use std::path::{Path, PathBuf};

/// The environment variable naming a config file.
pub const ENV: &str = "MMBOT_CONFIG";
/// The file looked for in the current directory.
pub const LOCAL: &str = "mmbot.toml";

/// Where the settings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Flag(PathBuf),
    Env(PathBuf),
    Local(PathBuf),
    Defaults,
}

impl Choice {
    /// Applies the rule; `env` is `$MMBOT_CONFIG` (passed in for tests).
    pub fn resolve(flag: Option<&Path>, env: Option<&str>, cwd_has_local: bool) -> Self {
        match (flag, env.filter(|v| !v.trim().is_empty())) {
            (Some(p), _) => Self::Flag(p.to_path_buf()),
            (None, Some(v)) => Self::Env(PathBuf::from(v)),
            (None, None) if cwd_has_local => Self::Local(PathBuf::from(LOCAL)),
            (None, None) => Self::Defaults,
        }
    }

    /// The rule applied to this process's environment and directory.
    pub fn for_process(flag: Option<&Path>) -> Self {
        let env = std::env::var(ENV).ok();
        Self::resolve(flag, env.as_deref(), Path::new(LOCAL).is_file())
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Flag(p) | Self::Env(p) | Self::Local(p) => Some(p),
            Self::Defaults => None,
        }
    }

    /// One line for the top of a command's output.
    pub fn line(&self) -> String {
        match self {
            Self::Flag(p) => format!("config: {} (--config)", p.display()),
            Self::Env(p) => format!("config: {} (${ENV})", p.display()),
            Self::Local(p) => format!("config: {} (found in the current directory)", p.display()),
            Self::Defaults => format!("config: built-in defaults (no --config, no ${ENV}, no ./{LOCAL})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_environment_then_the_local_file() {
        let flag = Path::new("a.toml");
        assert_eq!(Choice::resolve(Some(flag), Some("b.toml"), true), Choice::Flag(flag.into()));
        assert_eq!(Choice::resolve(None, Some("b.toml"), true), Choice::Env("b.toml".into()));
        assert_eq!(Choice::resolve(None, Some("  "), true), Choice::Local(LOCAL.into()));
        assert_eq!(Choice::resolve(None, None, false), Choice::Defaults);
        assert!(Choice::Defaults.line().contains("built-in defaults"));
        assert!(Choice::Env("b.toml".into()).line().contains("$MMBOT_CONFIG"));
    }
}
