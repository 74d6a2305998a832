//! Per-stage latency histograms (HdrHistogram) and their report forms.
//!
//! The hot thread records into its own [`StageHistograms`] (recording is a
//! few ns and never allocates: the histograms are sized at start-up for 1 ns
//! to 60 s at 3 significant digits). Reports read percentiles from them and
//! write the percentile-distribution text (`.hgrm`) that the HdrHistogram
//! plotter reads.

use std::io::{self, Write};

use hdrhistogram::Histogram;

/// The stages of the hot path, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Frame bytes in memory to quote handed off.
    TickToQuote,
    Parse,
    Book,
    Strategy,
    /// Guard and hand-off of the quote.
    Quote,
    /// Live feed: socket seen readable to a whole frame's bytes ready
    /// (TLS decrypted, WebSocket deframed).
    Wire,
    /// Exchange event time `E` to local receive time (includes clock skew
    /// between the exchange and this machine). Negative delays (this clock
    /// behind the exchange's) are not recorded but counted apart
    /// (`feed_delay_negative`), so the percentiles are of real delays.
    FeedDelay,
}

impl Stage {
    /// Every stage, in pipeline order (what tables and plots list them in):
    /// bytes off the wire, parsed, applied to the book, the strategy, the
    /// quote handed off, then the whole tick-to-quote, then the feed's delay.
    pub const ALL: [Stage; 7] =
        [Stage::Wire, Stage::Parse, Stage::Book, Stage::Strategy, Stage::Quote, Stage::TickToQuote, Stage::FeedDelay];

    pub fn name(self) -> &'static str {
        match self {
            Stage::TickToQuote => "tick_to_quote",
            Stage::Parse => "parse",
            Stage::Book => "book",
            Stage::Strategy => "strategy",
            Stage::Quote => "quote",
            Stage::Wire => "wire",
            Stage::FeedDelay => "feed_delay",
        }
    }
}

/// Percentiles of one stage, ns (the shape reports and `mmbot bench` print).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of `h` (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One histogram per [`Stage`].
#[derive(Clone)]
pub struct StageHistograms {
    h: [Histogram<u64>; Stage::ALL.len()],
}

impl std::fmt::Debug for StageHistograms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts: Vec<(&str, u64)> = Stage::ALL.iter().map(|&s| (s.name(), self.h[s as usize].len())).collect();
        f.debug_struct("StageHistograms").field("counts", &counts).finish()
    }
}

impl Default for StageHistograms {
    fn default() -> Self {
        Self::new()
    }
}

impl StageHistograms {
    pub fn new() -> Self {
        let mk = || Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds are valid");
        Self { h: std::array::from_fn(|_| mk()) }
    }

    /// Records one duration; values outside the range are clamped, never lost.
    #[inline(always)]
    pub fn record(&mut self, stage: Stage, ns: u64) {
        self.h[stage as usize].saturating_record(ns.max(1));
    }

    pub fn histogram(&self, stage: Stage) -> &Histogram<u64> {
        &self.h[stage as usize]
    }

    pub fn percentiles(&self, stage: Stage) -> Percentiles {
        Percentiles::of(&self.h[stage as usize])
    }

    /// The percentile distribution, (percentile, ns), at HdrHistogram's
    /// usual resolution (5 steps per halving of the remaining tail).
    pub fn distribution(&self, stage: Stage) -> Vec<(f64, u64)> {
        let h = &self.h[stage as usize];
        let mut out: Vec<(f64, u64)> = h
            .iter_quantiles(5)
            .map(|v| (v.quantile_iterated_to(), v.value_iterated_to()))
            .filter(|&(q, _)| q < 1.0)
            .collect();
        out.dedup_by(|a, b| a.0 == b.0);
        if !h.is_empty() {
            out.push((0.99999f64.max(out.last().map_or(0.0, |l| l.0)), h.max()));
        }
        out
    }

    /// Adds another set (e.g. from a previous run segment).
    pub fn add(&mut self, other: &StageHistograms) {
        for (a, b) in self.h.iter_mut().zip(&other.h) {
            let _ = a.add(b);
        }
    }

    pub fn reset(&mut self) {
        for h in &mut self.h {
            h.reset();
        }
    }
}

/// Writes a histogram as HdrHistogram's percentile distribution text (the
/// `.hgrm` format its plotter reads), values in microseconds.
pub fn write_hgrm(h: &Histogram<u64>, w: &mut impl Write) -> io::Result<()> {
    const SCALE_US: f64 = 1000.0;
    // The unit, for people and for plotters (HdrHistogram's plotter takes
    // the numeric rows; the value column is microseconds).
    writeln!(w, "#[Unit    = microseconds (us): recorded in ns, output scaled by 1000]")?;
    writeln!(w, "{:>12} {:>14} {:>10} {:>14}\n", "Value(us)", "Percentile", "TotalCount", "1/(1-Percentile)")?;
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value = v.value_iterated_to() as f64 / SCALE_US;
        if q < 1.0 {
            writeln!(w, "{value:>12.3} {q:>2.12} {total:>10} {:>14.2}", 1.0 / (1.0 - q))?;
        } else {
            writeln!(w, "{value:>12.3} {q:>2.12} {total:>10}")?;
        }
    }
    let (mean, sd) = if h.is_empty() { (0.0, 0.0) } else { (h.mean() / SCALE_US, h.stdev() / SCALE_US) };
    writeln!(w, "#[Mean    = {mean:>12.3}, StdDeviation   = {sd:>12.3}]")?;
    writeln!(w, "#[Max     = {:>12.3}, Total count    = {:>12}]", h.max() as f64 / SCALE_US, h.len())?;
    writeln!(w, "#[Buckets = {:>12}, SubBuckets     = {:>12}]", h.buckets(), h.distinct_values())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_hgrm() {
        let mut s = StageHistograms::new();
        for v in 1..=1000u64 {
            s.record(Stage::Parse, v * 10);
        }
        let p = s.percentiles(Stage::Parse);
        assert_eq!(p.count, 1000);
        assert!((4990..=5010).contains(&p.p50), "{p:?}");
        assert!((9890..=9910).contains(&p.p99), "{p:?}");
        assert_eq!(s.percentiles(Stage::Book), Percentiles::default());
        let mut out = Vec::new();
        write_hgrm(s.histogram(Stage::Parse), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("#[Unit    = microseconds (us)"), "{text}");
        assert!(text.lines().nth(1).unwrap().starts_with("   Value(us)     Percentile TotalCount 1/(1-Percentile)"));
        assert!(text.contains("#[Max     =       10.007") || text.contains("#[Max     =       10.000"), "{text}");
        assert!(text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count() > 20);
    }
}
