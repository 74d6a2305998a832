//! `[feed] warm_every_us` validated: how often a busy-polling hot thread
//! re-reads the memory the next frame will use, and rehearses the latest
//! diff through the code the next one will run, while nothing arrives
//! ([`WarmConfig`]).
//!
//! Why: at Binance's cadence (a diff every 100 ms on spot, ~50 ms on the
//! USD-M `@depth@0ms` capture) a hot thread that only waits finds its caches
//! cold when the next frame comes, and tick_to_quote pays for it. Warming
//! only helps a thread that owns its core and never sleeps, so the key needs
//! `poll = "busy"`; a polling thread sleeps in `epoll` between frames.

use std::time::Duration;

use super::{invalid, ConfigError, RawFeed};

/// Warming while idle: the period between two warmings of an idle hot
/// thread (`Duration::ZERO`: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WarmConfig {
    pub every: Duration,
}

impl WarmConfig {
    /// The default period with `poll = "busy"`: short against the 50-100 ms
    /// between diffs (caches stay warm), long against one warming (about
    /// 2.5 us on a BTCUSDT-shaped book, 0.5 us of it the rehearsal's walk,
    /// features, strategy and guard, the rest its whole parse of the kept
    /// diff: `cargo bench --bench book -- idle_warm`), so a frame finds the
    /// thread mid-warming about one time in twenty and waits at most that.
    pub const BUSY_DEFAULT_US: i64 = 50;
    /// The longest period allowed: Binance's diff cadence (100 ms, FACTS.md
    /// §1.1); warming less often than frames arrive does nothing.
    pub const MAX_US: i64 = 100_000;

    /// Off.
    pub const OFF: WarmConfig = WarmConfig { every: Duration::ZERO };

    pub fn is_on(&self) -> bool {
        !self.every.is_zero()
    }
}

/// `[feed] warm_every_us`: 0 (off) or 1 to [`WarmConfig::MAX_US`], only
/// with `poll = "busy"`. Default: [`WarmConfig::BUSY_DEFAULT_US`] when
/// busy-polling, off otherwise.
pub(super) fn validate_warm(f: &RawFeed, busy_poll: bool) -> Result<WarmConfig, ConfigError> {
    const KEY: &str = "feed.warm_every_us";
    let default = if busy_poll { WarmConfig::BUSY_DEFAULT_US } else { 0 };
    let us = match f.warm_every_us {
        None => default,
        Some(v) if (0..=WarmConfig::MAX_US).contains(&v) => v,
        Some(v) => {
            return Err(invalid(
                KEY,
                v,
                format!(
                    "must be an integer from 0 (off) to {} microseconds (Binance's 100 ms diff cadence), e.g. {}",
                    WarmConfig::MAX_US,
                    WarmConfig::BUSY_DEFAULT_US
                ),
            ))
        }
    };
    if us > 0 && !busy_poll {
        return Err(invalid(
            KEY,
            us,
            "needs feed.poll = \"busy\" (a polling hot thread sleeps between frames, so there is nothing to keep \
             warm): set poll = \"busy\" on a dedicated core, or warm_every_us = 0",
        ));
    }
    Ok(WarmConfig { every: Duration::from_micros(us as u64) })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    fn err(toml: &str) -> String {
        Config::from_toml(toml, "t").unwrap_err().to_string()
    }

    #[test]
    fn on_by_default_only_when_busy_polling() {
        assert!(!Config::default().warm.is_on());
        let c = Config::from_toml("[feed]\npoll = \"busy\"\n", "t").unwrap();
        assert_eq!(c.warm.every, Duration::from_micros(50));
        let c = Config::from_toml("[feed]\npoll = \"busy\"\nwarm_every_us = 0\n", "t").unwrap();
        assert!(!c.warm.is_on());
        let c = Config::from_toml("[feed]\npoll = \"busy\"\nwarm_every_us = 100000\n", "t").unwrap();
        assert_eq!(c.warm.every, Duration::from_millis(100));
        let c = Config::from_toml("[feed]\nwarm_every_us = 0\n", "t").unwrap();
        assert!(!c.warm.is_on());
    }

    #[test]
    fn bad_periods_name_the_key_and_the_fix() {
        for (toml, hint) in [
            ("[feed]\npoll = \"busy\"\nwarm_every_us = -1\n", "from 0 (off) to 100000"),
            ("[feed]\npoll = \"busy\"\nwarm_every_us = 100001\n", "from 0 (off) to 100000"),
            ("[feed]\nwarm_every_us = 50\n", "needs feed.poll = \"busy\""),
            ("[feed]\npoll = \"poll\"\nwarm_every_us = 1\n", "or warm_every_us = 0"),
        ] {
            let e = err(toml);
            assert!(e.contains("feed.warm_every_us") && e.contains(hint), "{toml}: {e}");
        }
        // Not an integer: the TOML reader names the key.
        let e = err("[feed]\npoll = \"busy\"\nwarm_every_us = 2.5\n");
        assert!(e.contains("warm_every_us"), "{e}");
        let e = err("[feed]\npoll = \"busy\"\nwarm_every_us = \"50us\"\n");
        assert!(e.contains("warm_every_us"), "{e}");
    }

    #[test]
    fn the_effective_period_is_described() {
        let c = Config::from_toml("[feed]\npoll = \"busy\"\nwarm_every_us = 20\n", "t").unwrap();
        assert!(
            c.describe().contains("poll = \"busy\"\npoll_timeout_us = 1000\nwarm_every_us = 20\n"),
            "{}",
            c.describe()
        );
        assert!(Config::default().describe().contains("warm_every_us = 0\n"));
    }
}
