//! Order round-trip times (`order_rtt`): send to answer, per method, as
//! HdrHistograms. Measured here from every answer the exchange gave (local
//! refusals are not round trips), so reports, the dashboard and the
//! journal can show them and backtests can replay them.

use hdrhistogram::Histogram;

use crate::stats::latency::Percentiles;

/// The methods timed, in report order.
pub const METHODS: [&str; 5] = ["place", "cancel_replace", "cancel", "query", "other"];

/// One histogram per method, 1 ns to 60 s at 3 significant digits.
#[derive(Clone)]
pub struct OrderRtt {
    h: [Histogram<u64>; METHODS.len()],
}

impl std::fmt::Debug for OrderRtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts: Vec<(&str, u64)> = METHODS.iter().zip(&self.h).map(|(m, h)| (*m, h.len())).collect();
        f.debug_struct("OrderRtt").field("counts", &counts).finish()
    }
}

impl Default for OrderRtt {
    fn default() -> Self {
        Self::new()
    }
}

fn slot(method: &str) -> usize {
    METHODS.iter().position(|m| *m == method).unwrap_or(METHODS.len() - 1)
}

impl OrderRtt {
    pub fn new() -> Self {
        let mk = || Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds are valid");
        Self { h: std::array::from_fn(|_| mk()) }
    }

    /// Records one round trip of `method` ([`Call::method`](crate::exec::binance::gateway::Call::method)
    /// names; anything else counts as "other").
    pub fn record(&mut self, method: &str, ns: u64) {
        self.h[slot(method)].saturating_record(ns.max(1));
    }

    pub fn histogram(&self, method: &str) -> &Histogram<u64> {
        &self.h[slot(method)]
    }

    pub fn percentiles(&self, method: &str) -> Percentiles {
        Percentiles::of(self.histogram(method))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_kept_apart_and_unknown_ones_are_other() {
        let mut r = OrderRtt::new();
        r.record("place", 2_000_000);
        r.record("place", 4_000_000);
        r.record("cancel", 1_000_000);
        r.record("my_trades", 9_000_000);
        assert_eq!(r.percentiles("place").count, 2);
        assert_eq!(r.percentiles("cancel").count, 1);
        assert_eq!(r.percentiles("other").count, 1);
        assert_eq!(r.percentiles("cancel_replace"), Percentiles::default());
        assert!((r.percentiles("place").max as f64 - 4e6).abs() < 4e3);
    }
}
