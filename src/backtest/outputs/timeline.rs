//! `timeline.csv`: the market and our side of it every N ms of simulated
//! time and at every fill (mid, touch, own quotes, position, equity), so a
//! run can be replotted or joined with other data without rerunning it.
//! [`Sampler`] decides when a book event is due for a row, so the file stays
//! small however many book events the recording has.

use std::fmt::Write;

use crate::backtest::outputs::utc_iso;
use crate::hot::fixed::{Price, Qty};

/// The CSV header; every row has as many fields.
pub const HEADER: &str =
    "time_ns,time_utc,kind,mid,best_bid,best_ask,own_bid,own_bid_qty,own_ask,own_ask_qty,position,equity";

/// Why a row was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// The first book event of an N ms interval.
    Sample,
    /// A fill (the market as last seen, the position after the fill).
    Fill,
}

/// One row of `timeline.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineRow {
    pub time_ns: i64,
    pub kind: RowKind,
    pub mid: Option<Price>,
    pub best_bid: Option<Price>,
    pub best_ask: Option<Price>,
    /// Our resting orders: price and quantity remaining.
    pub own_bid: Option<(Price, Qty)>,
    pub own_ask: Option<(Price, Qty)>,
    /// Net position, base units.
    pub position: Qty,
    /// PnL marked to `mid`, net of fees, quote units (1e-8).
    pub equity: i64,
}

impl TimelineRow {
    /// The CSV line, with its newline.
    pub fn csv(&self, out: &mut String) {
        let p = |v: Option<Price>| v.map(|p| p.to_string()).unwrap_or_default();
        let (ob, obq) = split(self.own_bid);
        let (oa, oaq) = split(self.own_ask);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            self.time_ns,
            utc_iso(self.time_ns),
            match self.kind {
                RowKind::Sample => "sample",
                RowKind::Fill => "fill",
            },
            p(self.mid),
            p(self.best_bid),
            p(self.best_ask),
            ob,
            obq,
            oa,
            oaq,
            self.position,
            Price(self.equity),
        );
    }
}

fn split(o: Option<(Price, Qty)>) -> (String, String) {
    o.map(|(p, q)| (p.to_string(), q.to_string())).unwrap_or_default()
}

/// Picks the first book event at or after each multiple of the interval.
#[derive(Debug, Clone, Copy)]
pub struct Sampler {
    interval_ns: i64,
    next_ns: i64,
}

impl Sampler {
    /// `interval_ns` <= 0 is taken as 1 ns (every event).
    pub fn new(interval_ns: i64) -> Self {
        Self { interval_ns: interval_ns.max(1), next_ns: i64::MIN }
    }

    /// True when a book event at `time_ns` is due for a row (and moves the
    /// next due time to the next multiple of the interval after it).
    pub fn due(&mut self, time_ns: i64) -> bool {
        if time_ns < self.next_ns {
            return false;
        }
        let i = self.interval_ns;
        self.next_ns = time_ns.div_euclid(i).saturating_add(1).saturating_mul(i);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_takes_the_first_event_of_each_interval() {
        let mut s = Sampler::new(1000);
        let due: Vec<i64> = [5, 10, 999, 1000, 1500, 3999, 4000].into_iter().filter(|&t| s.due(t)).collect();
        assert_eq!(due, vec![5, 1000, 3999, 4000]);
    }

    #[test]
    fn rows_have_as_many_fields_as_the_header() {
        let r = TimelineRow {
            time_ns: 1_723_161_255_009_000_000,
            kind: RowKind::Fill,
            mid: Some(Price(100)),
            best_bid: None,
            best_ask: Some(Price(101)),
            own_bid: Some((Price(99), Qty(5))),
            own_ask: None,
            position: Qty(-3),
            equity: -150_000_000,
        };
        let mut s = String::new();
        r.csv(&mut s);
        assert_eq!(s.split(',').count(), HEADER.split(',').count());
        assert!(s.starts_with("1723161255009000000,2024-08-08T23:54:15.009000000Z,fill,"), "{s}");
        assert!(s.trim_end().ends_with(",-1.5"), "{s}");
    }
}
