//! Market-regime advice as the hot path reads it: a small `Copy` value.
//!
//! The AI advisor (a side thread) or its offline stand-in produces advice; the
//! hot thread only ever reads the newest value it has been handed. Advice
//! carries the time of the market state it describes and a time-to-live
//! counted from there: expired advice reads as neutral, so a dead advisor
//! can never pin the bot to a stale regime.
//!
//! How much advice widens or narrows the spread is [`Advice::spread_factor`]:
//! the product of the original tutorial's label multipliers, or (with
//! `[ai] apply_multiplier`) the model's own clamped `spread_multiplier`.

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
    /// Hot-path time of the market snapshot this advice describes, ns (the
    /// recording's time in replays and backtests), not when the reply
    /// arrived: the lifetime runs from here, so a slow reply lives less.
    pub received_ns: i64,
    /// Time to live, ns; 0 = never expires (only neutral advice uses this).
    pub ttl_ns: i64,
    /// Whether `multiplier` sizes the spread (`[ai] apply_multiplier`);
    /// otherwise only the labels do, as in the original tutorial.
    pub apply_multiplier: bool,
}

impl Advice {
    /// No view at all: every multiplier 1.0.
    pub fn neutral() -> Self {
        Self { multiplier: 1.0, ..Self::default() }
    }

    /// The advice as it stands at `now_ns`: itself, or neutral once expired.
    #[inline]
    pub fn at(&self, now_ns: i64) -> Advice {
        if self.expired_at(now_ns) {
            Advice::neutral()
        } else {
            *self
        }
    }

    /// Whether its time to live has run out at `now_ns`.
    #[inline]
    pub fn expired_at(&self, now_ns: i64) -> bool {
        self.ttl_ns > 0 && now_ns.saturating_sub(self.received_ns) > self.ttl_ns
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

    /// The multiplier that sizes the spread when `apply_multiplier` is set
    /// and it is usable (finite, > 0); `None`: the labels size it.
    #[inline]
    pub fn applied_multiplier(&self) -> Option<f64> {
        (self.apply_multiplier && self.multiplier.is_finite() && self.multiplier > 0.0).then_some(self.multiplier)
    }

    /// How much this advice scales the base spread: the model's
    /// `multiplier` when applied ([`Advice::applied_multiplier`]), else the
    /// product of [`Advice::multipliers`].
    #[inline]
    pub fn spread_factor(&self) -> f64 {
        self.applied_multiplier().unwrap_or_else(|| {
            let (s, v, d) = self.multipliers();
            s * v * d
        })
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

    #[test]
    fn the_spread_factor_is_the_labels_unless_the_multiplier_is_applied() {
        let a = Advice { spread: SpreadState::Wide, volatility: Volatility::Low, multiplier: 2.0, ..Advice::neutral() };
        assert!((a.spread_factor() - 1.3 * 0.7).abs() < 1e-12, "labels only by default");
        assert_eq!(a.applied_multiplier(), None);
        let applied = Advice { apply_multiplier: true, ..a };
        assert_eq!((applied.spread_factor(), applied.applied_multiplier()), (2.0, Some(2.0)));
        // An unusable multiplier never zeroes the spread: the labels size it.
        for m in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let bad = Advice { multiplier: m, ..applied };
            assert!((bad.spread_factor() - 1.3 * 0.7).abs() < 1e-12, "{m}");
        }
        assert_eq!(Advice::neutral().spread_factor(), 1.0);
    }
}
