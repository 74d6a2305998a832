//! `[ai] daily_budget_usd`: what each call is charged, and whether the next
//! one still fits today's budget.
//!
//! The day is the wall clock's UTC day (providers bill by it, and a replay
//! spends real money in real time). Before a call, the projected spend is
//! today's spend plus what the call is expected to cost: the route's
//! average cost per answered call so far, or before its first answer the
//! prompt's estimated tokens plus `max_tokens` at the model's price (the
//! most the reply may cost). A route whose projection passes the budget is
//! skipped; a cheaper fallback may still fit.
//!
//! Every call is charged ([`crate::ai::cost::charge`] and
//! [`crate::ai::cost::charge_failed`]), failed ones too: a provider bills a
//! prompt it read even when the answer timed out or was cut off, so those
//! are charged the prompt's estimate (marked estimated). A reply without
//! `usage` is charged by its estimated tokens, also marked.

use crate::ai::cost::utc_day;
use crate::ai::AiConfig;

/// The most a call on `route` may cost before its first answer: the
/// prompt's estimated tokens plus its `max_tokens` (`None`: unpriced).
pub fn worst_case(route: &AiConfig, prompt_tokens: u64) -> Option<f64> {
    let max_tokens = route.model_params(&route.model).max_tokens.unwrap_or(route.max_tokens);
    route.prices.cost(&route.model, prompt_tokens, u64::from(max_tokens))
}

/// Today's spend against the budget.
#[derive(Debug, Clone, Default)]
pub struct DailyBudget {
    limit_usd: Option<f64>,
    day: i64,
    spent_usd: f64,
    /// The UTC day the stop was last said (once a day).
    told_day: Option<i64>,
}

impl DailyBudget {
    pub fn new(limit_usd: Option<f64>) -> Self {
        Self { limit_usd, ..Self::default() }
    }

    pub fn limit(&self) -> Option<f64> {
        self.limit_usd
    }

    /// Spent on the UTC day of `wall_ns`.
    pub fn spent(&self, wall_ns: i64) -> f64 {
        if utc_day(wall_ns) == self.day {
            self.spent_usd
        } else {
            0.0
        }
    }

    pub fn add(&mut self, usd: f64, wall_ns: i64) {
        let day = utc_day(wall_ns);
        if day != self.day {
            self.day = day;
            self.spent_usd = 0.0;
        }
        self.spent_usd += usd;
    }

    /// Whether a call expected to cost `expected` fits today (always,
    /// without a budget; an unpriced call is expected to cost nothing).
    pub fn fits(&self, expected: Option<f64>, wall_ns: i64) -> bool {
        self.limit_usd.is_none_or(|limit| self.spent(wall_ns) + expected.unwrap_or(0.0) <= limit)
    }

    /// The message that calls stopped, the first time today (`None` after).
    pub fn stop_message(&mut self, wall_ns: i64) -> Option<String> {
        let (limit, day) = (self.limit_usd?, utc_day(wall_ns));
        if self.told_day == Some(day) {
            return None;
        }
        self.told_day = Some(day);
        Some(format!(
            "daily AI budget reached: ${:.4} of ${limit:.4} spent today; calls resume at 00:00 UTC \
             (raise [ai] daily_budget_usd, pick a cheaper model, or call less often)",
            self.spent(wall_ns)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000_000;

    #[test]
    fn the_budget_counts_per_utc_day_and_says_so_once_a_day() {
        let mut b = DailyBudget::new(Some(0.01));
        let t = 20_000 * DAY + 5;
        assert!(b.fits(Some(0.01), t));
        b.add(0.006, t);
        assert!(b.fits(Some(0.004), t) && !b.fits(Some(0.0041), t));
        assert!(b.fits(None, t), "unpriced calls are not held back");
        let m = b.stop_message(t).unwrap();
        assert!(m.contains("$0.0060 of $0.0100 spent today") && m.contains("00:00 UTC"), "{m}");
        assert_eq!(b.stop_message(t + 1), None, "once a day");
        // Midnight UTC: a new day, a clean slate.
        assert_eq!(b.spent(21_000 * DAY), 0.0);
        assert!(b.fits(Some(0.01), 21_000 * DAY));
        assert!(b.stop_message(21_000 * DAY).is_some());
        assert!(DailyBudget::new(None).fits(Some(1e9), t));
    }

    #[test]
    fn the_first_call_is_expected_to_cost_its_prompt_and_max_tokens() {
        let ai = AiConfig { model: "gpt-4.1".into(), ..AiConfig::default() };
        let table = crate::ai::cost::PriceTable::tutorial();
        let ai = AiConfig { prices: table, ..ai };
        // 1,000 prompt + 800 max_tokens at the tutorial's $3/$12 per million.
        assert!((worst_case(&ai, 1_000).unwrap() - (0.003 + 0.0096)).abs() < 1e-12);
        assert_eq!(worst_case(&AiConfig { model: "no-price".into(), ..ai }, 1_000), None);
    }
}
