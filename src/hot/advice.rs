//! Market-regime advice as the hot path reads it: a small `Copy` value.
//!
//! The AI advisor (a side thread) or its offline stand-in produces advice; the
//! hot thread only ever reads the newest value it has been handed. Advice
//! carries its arrival time and a time-to-live: expired advice reads as
//! neutral, so a dead advisor can never pin the bot to a stale regime.

/// The advisor's view of the spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpreadState {
    Narrow,
    #[default]
    Normal,
    Wide,
}

/// The advisor's view of volatility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Volatility {
    Low,
    #[default]
    Medium,
    High,
}

/// The advisor's view of direction. `Neutral` means "no view" (no advice yet,
/// or expired): it leaves the spread alone, unlike `Sideways`, which is a
/// view and narrows it as the original tutorial does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    Up,
    Down,
    Sideways,
    #[default]
    Neutral,
}

/// Where advice came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdviceSource {
    #[default]
    None,
    Offline,
    Llm,
}

/// One piece of advice.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Advice {
    pub spread: SpreadState,
    pub volatility: Volatility,
    pub direction: Direction,
    /// 0-100.
    pub confidence: u8,
    /// The advisor's recommended spread multiplier (already clamped to config bounds).
    pub multiplier: f64,
    pub source: AdviceSource,
    /// Arrival time, ns (simulated time in backtests).
    pub received_ns: i64,
    /// Time to live, ns; 0 = never expires (only neutral advice uses this).
    pub ttl_ns: i64,
}

impl Advice {
    /// No view at all: every multiplier 1.0.
    pub fn neutral() -> Self {
        Self { multiplier: 1.0, ..Self::default() }
    }

    /// The advice as it stands at `now_ns`: itself, or neutral once expired.
    #[inline]
    pub fn at(&self, now_ns: i64) -> Advice {
        if self.ttl_ns > 0 && now_ns.saturating_sub(self.received_ns) > self.ttl_ns {
            Advice::neutral()
        } else {
            *self
        }
    }

    /// The original tutorial's multipliers: spread narrow 0.7 / normal 1.0 /
    /// wide 1.3; volatility high 1.5 / medium 1.0 / low 0.7; direction up or
    /// down 1.1 / sideways 0.9 (and 1.0 for no view).
    #[inline]
    pub fn multipliers(&self) -> (f64, f64, f64) {
        let spread = match self.spread {
            SpreadState::Narrow => 0.7,
            SpreadState::Normal => 1.0,
            SpreadState::Wide => 1.3,
        };
        let vol = match self.volatility {
            Volatility::High => 1.5,
            Volatility::Medium => 1.0,
            Volatility::Low => 0.7,
        };
        let dir = match self.direction {
            Direction::Up | Direction::Down => 1.1,
            Direction::Sideways => 0.9,
            Direction::Neutral => 1.0,
        };
        (spread, vol, dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutral_is_identity_and_expiry_returns_to_it() {
        assert_eq!(Advice::neutral().multipliers(), (1.0, 1.0, 1.0));
        let a = Advice {
            spread: SpreadState::Wide,
            volatility: Volatility::High,
            direction: Direction::Up,
            received_ns: 1_000,
            ttl_ns: 500,
            ..Advice::neutral()
        };
        assert_eq!(a.at(1_400).multipliers(), (1.3, 1.5, 1.1));
        assert_eq!(a.at(1_600), Advice::neutral());
    }
}
