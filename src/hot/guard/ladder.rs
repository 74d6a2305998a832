//! A ladder's further levels: what the guard makes of a strategy's deeper
//! quotes, or of a ladder rule (`[strategy] level_spacing_*`,
//! `level_size_growth`) when the strategy asks only for the best of a side.
//!
//! Each further level is held to the same rules as the best one (distance
//! from the mid within `[min, max]` spread / 2, the price grid, the lot
//! grid, min notional) plus two of its own: it stands strictly behind the
//! level before it (a bid lower, an ask higher), and the sizes of a side
//! add up to no more than the room left before `max_position`, so that the
//! whole ladder filling cannot take the position past the limit. A level
//! that cannot be made valid is dropped with every level behind it: a
//! ladder stays contiguous from the touch.

use crate::exec::{Ladder, Side};
use crate::hot::features::Features;
use crate::hot::msg::Level;
use crate::hot::strategy::{Decision, SideIntent, MAX_LEVELS};

use super::{floor_to, to_fixed, valid, Filters, Guard};

/// The distance between a ladder's levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LevelSpacing {
    /// A whole number of ticks (`level_spacing_ticks`).
    Ticks(i64),
    /// Basis points of the mid, at least one tick (`level_spacing_bps`).
    Bps(f64),
}

/// How many levels a side quotes and, for a strategy that gives only the
/// best, where the further ones go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LadderRule {
    /// Quotes per side, the best included (`[strategy] levels`, 1 to
    /// [`MAX_LEVELS`]).
    pub levels: usize,
    pub spacing: LevelSpacing,
    /// Each level's size over the size of the level before it (1: equal).
    pub size_growth: f64,
}

impl Default for LadderRule {
    fn default() -> Self {
        Self { levels: 1, spacing: LevelSpacing::Bps(5.0), size_growth: 1.0 }
    }
}

impl Guard {
    /// The further levels of each side behind the checked best ones
    /// (`bid`, `ask`: price and size). `buy_room` and `sell_room` are what
    /// the best levels left before the position limit.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ladder(
        &mut self,
        d: &Decision,
        f: &Features,
        filters: &Filters,
        bid: Option<(Level, f64)>,
        ask: Option<(Level, f64)>,
        buy_room: i64,
        sell_room: i64,
    ) -> Ladder {
        let mut ladder = Ladder::NONE;
        let n = self.cfg.ladder.levels.clamp(1, MAX_LEVELS);
        for (side, best, asked, room) in
            [(Side::Buy, bid, &d.deeper.bids, buy_room), (Side::Sell, ask, &d.deeper.asks, sell_room)]
        {
            let Some((best, best_size)) = best else { continue };
            let mut room = room;
            let mut prev = best.price.0;
            let by_rule = asked.iter().all(|l| l.is_none());
            for i in 1..n {
                let want =
                    if by_rule { Some(self.by_rule(side, f, filters, prev, best_size, i)) } else { asked[i - 1] };
                let Some(want) = want else { break };
                match self.further(side, f, filters, want, prev, room) {
                    Some(level) => {
                        room -= level.qty.0;
                        prev = level.price.0;
                        ladder.push(side, level);
                    }
                    None => {
                        self.stats.ladder_levels_dropped += 1;
                        break;
                    }
                }
            }
        }
        ladder
    }

    /// Level `i` of a side by the ladder rule: one spacing behind `prev`,
    /// the best's size grown `i` times.
    fn by_rule(&self, side: Side, f: &Features, filters: &Filters, prev: i64, best_size: f64, i: usize) -> SideIntent {
        let tick = filters.tick_size.0.max(1);
        let step = match self.cfg.ladder.spacing {
            LevelSpacing::Ticks(n) => n.max(1).saturating_mul(tick),
            LevelSpacing::Bps(bps) => floor_to(to_fixed(f.mid * bps / 1e4), tick).max(tick),
        };
        let price = match side {
            Side::Buy => prev.saturating_sub(step),
            Side::Sell => prev.saturating_add(step),
        };
        let size = best_size * self.cfg.ladder.size_growth.powi(i as i32);
        SideIntent { price: price as f64 / crate::hot::fixed::SCALE as f64, size }
    }

    /// A further level checked: within the spread bounds, on the grids,
    /// strictly behind `prev`, within `room`; `None` when it cannot be.
    fn further(
        &mut self,
        side: Side,
        f: &Features,
        filters: &Filters,
        want: SideIntent,
        prev: i64,
        room: i64,
    ) -> Option<Level> {
        if !valid(&want) {
            return None;
        }
        let price = self.place(side, want.price, f.mid, filters.tick_size.0.max(1));
        let behind = match side {
            Side::Buy => price < prev,
            Side::Sell => price > prev,
        };
        if !behind || price <= 0 {
            return None;
        }
        self.sized(price, to_fixed(want.size), room, filters)
    }
}
