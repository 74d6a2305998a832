//! `[net]` in `mmbot.toml`: where the guard's host-wide file lives
//! ([`NetConfig`]). Kept beside the guard so `config.rs` only wires it in.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ipguard::IpGuard;

/// `[net]` as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawNet {
    /// A file path, or `"off"`.
    pub ip_guard_file: Option<String>,
}

/// Validated `[net]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// The file mmbot processes on this host share IP bans and back-offs
    /// through ([`crate::ipguard::host`]); `None` (`"off"`): this process
    /// only. Default: [`IpGuard::default_host_file`].
    pub ip_guard_file: Option<PathBuf>,
    /// Whether the file was named in the config (else the default).
    pub configured: bool,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self { ip_guard_file: Some(IpGuard::default_host_file()), configured: false }
    }
}

impl NetConfig {
    /// Checks `[net]`: `Err((key, value, what is allowed))`.
    pub fn from_raw(n: &RawNet) -> Result<Self, (&'static str, String, String)> {
        const KEY: &str = "net.ip_guard_file";
        let ip_guard_file = match n.ip_guard_file.as_deref() {
            None => Self::default().ip_guard_file,
            Some("off") => None,
            Some(p) if p.trim().is_empty() || p.contains('\0') => {
                return Err((
                    KEY,
                    format!("{p:?}"),
                    "give a file path (e.g. \"/run/user/1000/mmbot-ipguard\"), or \"off\" to share nothing with \
                     other processes"
                        .into(),
                ))
            }
            Some(p) if p.ends_with('/') || Path::new(p).is_dir() => {
                return Err((KEY, format!("{p:?}"), "is a folder; name a file inside it".into()))
            }
            Some(p) => Some(PathBuf::from(p)),
        };
        Ok(Self { ip_guard_file, configured: n.ip_guard_file.is_some() })
    }

    /// The process's guard: sharing through the file, or this process's
    /// own. `all_loopback`: every endpoint the process talks to is on this
    /// machine (`mmbot sim`): there is no Binance IP to share, and a
    /// simulated ban must not stop real bots on the host, so the default
    /// file is not used (a configured one still is).
    pub fn guard(&self, all_loopback: bool) -> Result<IpGuard, crate::ipguard::HostFileError> {
        match &self.ip_guard_file {
            Some(_) if all_loopback && !self.configured => Ok(IpGuard::new()),
            Some(p) => IpGuard::with_host_file(p),
            None => Ok(IpGuard::new()),
        }
    }

    /// True for `127.0.0.1`, `localhost` and `::1` URLs (any scheme).
    pub fn is_loopback(url: &str) -> bool {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let host = if let Some(r) = rest.strip_prefix('[') {
            r.split(']').next().unwrap_or("")
        } else {
            rest.split([':', '/', '?']).next().unwrap_or("")
        };
        matches!(host, "127.0.0.1" | "localhost" | "::1")
    }

    /// The `ip_guard_file = ...` line `mmbot config check` prints.
    pub fn describe(&self) -> String {
        format!("ip_guard_file = \"{}\"", self.ip_guard_file.as_ref().map_or("off".into(), |p| p.display().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        for u in ["ws://127.0.0.1:9000/stream", "http://localhost:1", "https://[::1]:8443/x", "http://127.0.0.1"] {
            assert!(NetConfig::is_loopback(u), "{u}");
        }
        for u in ["wss://stream.binance.com:9443/ws", "https://api.binance.com", "http://127.0.0.2:1"] {
            assert!(!NetConfig::is_loopback(u), "{u}");
        }
    }

    #[test]
    fn the_default_file_is_not_shared_with_a_simulator() {
        let n = NetConfig::from_raw(&RawNet::default()).unwrap();
        assert!(!n.configured && n.ip_guard_file.is_some());
        assert!(n.guard(true).unwrap().host_file().is_none());
        assert!(NetConfig::from_raw(&RawNet { ip_guard_file: Some("off".into()) }).unwrap().ip_guard_file.is_none());
    }
}
