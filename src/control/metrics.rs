//! `GET /metrics`: the bot's counters, gauges and stage latencies in
//! Prometheus' text exposition format (version 0.0.4), so that a headless
//! run can be scraped, graphed (`docs/grafana-dashboard.json`) and alerted
//! on like any other service.
//!
//! It exists because the snapshots the hot and exchange threads already
//! publish for the terminal dashboard ([`HotStatus`], [`ExecStatus`]) and
//! the hot thread's HdrHistograms are all a scraper needs: [`render`] only
//! reads them, on the control plane's thread, and writes text. No client
//! library, no registry, nothing shared with the hot path.
//!
//! Conventions (<https://prometheus.io/docs/practices/naming/>): every name
//! starts `mmbot_`, counters end in `_total`, units are base units
//! (seconds; prices and amounts in the traded pair's own assets), and every
//! series carries `symbol="..."`. Each latency stage is one Prometheus
//! histogram, `mmbot_stage_latency_seconds{symbol,stage}`, whose cumulative
//! buckets are counted from the HdrHistogram at fixed bounds (a recorded
//! value counts at the highest value HdrHistogram holds it equivalent to,
//! i.e. to its 3 significant digits, as its percentiles do); `_sum` is
//! approximate (each bucket's median value times its count, which is
//! HdrHistogram's mean times the count).
//!
//! Families whose source is missing (no hot status yet, no advisor, no
//! depth event yet; the ratio to a zero position limit) are left out
//! rather than shown as zeros.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::ai::advisor::AdvisorStats;
use crate::hot::fixed::{to_f64, Qty};
use crate::runtime::{ExecStatus, HotStatus};
use crate::stats::latency::{Stage, StageHistograms};

mod symbols;
pub use symbols::render_symbols;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What one scrape reads. Every field is a snapshot the caller already has.
pub struct MetricsInputs<'a> {
    pub symbol: &'a str,
    pub hot: Option<&'a HotStatus>,
    pub exec: &'a ExecStatus,
    pub histograms: &'a StageHistograms,
    pub advisor: Option<&'a AdvisorStats>,
    pub max_position: Qty,
    /// Nanoseconds since the book's last depth event (None before any).
    pub book_age_ns: Option<i64>,
    pub uptime_s: f64,
    pub paused: bool,
}

/// Latency bucket bounds: ns, and the `le` label (seconds). Powers of two
/// from 1 µs where the hot path lives, coarser above for the wire and the
/// feed's delay.
const BUCKETS: [(u64, &str); 22] = [
    (100, "0.0000001"),
    (250, "0.00000025"),
    (500, "0.0000005"),
    (1_000, "0.000001"),
    (2_000, "0.000002"),
    (4_000, "0.000004"),
    (8_000, "0.000008"),
    (16_000, "0.000016"),
    (32_000, "0.000032"),
    (64_000, "0.000064"),
    (128_000, "0.000128"),
    (256_000, "0.000256"),
    (512_000, "0.000512"),
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
    (50_000_000, "0.05"),
    (100_000_000, "0.1"),
    (250_000_000, "0.25"),
    (1_000_000_000, "1"),
];

/// Appends the whole exposition to `out` (every line ends in `\n`).
pub fn render(out: &mut String, m: &MetricsInputs<'_>) {
    let mut w = Writer { out, symbol: escape_label(m.symbol) };
    let e = m.exec;

    if let Some(h) = m.hot {
        let f = &h.feed;
        w.counter("mmbot_feed_frames_total", "Frames the hot path read from the feed.", h.frames);
        w.counter("mmbot_feed_connects_total", "Feed connections made.", f.connects);
        w.counter("mmbot_feed_disconnects_total", "Feed connections lost or renewed.", f.disconnects);
        w.counter("mmbot_feed_gaps_total", "Book gaps: an update id was missing.", h.gaps);
        w.counter("mmbot_feed_resyncs_total", "Book resyncs from a snapshot.", h.resyncs);
        w.counter("mmbot_feed_malformed_frames_total", "Frames refused as malformed.", f.malformed.max(h.rejected));
        w.counter("mmbot_quotes_total", "Quotes the hot path handed to the exchange side (pulls included).", h.quotes);
        let other = h.pulled.saturating_sub(h.pulled_stale).saturating_sub(h.pulled_on_sync_loss);
        w.labeled(
            "mmbot_quote_pulls_total",
            "counter",
            "Quotes pulled, by cause: the book went stale, the book lost sync, or anything else (guard, strategy, \
             pause).",
            "cause",
            &[
                ("stale", Num::U(h.pulled_stale)),
                ("sync_loss", Num::U(h.pulled_on_sync_loss)),
                ("other", Num::U(other)),
            ],
        );
    }

    w.counter("mmbot_orders_total", "Orders placed.", e.orders);
    w.counter("mmbot_cancels_total", "Orders cancelled.", e.cancels);
    w.counter(
        "mmbot_orders_refused_total",
        "Orders refused before sending (exchange filters, pre-trade risk checks).",
        e.refused,
    );
    w.counter("mmbot_exchange_rejects_total", "Orders the exchange rejected.", e.rejected);
    w.counter("mmbot_fills_total", "Own fills.", e.fills);
    w.counter(
        "mmbot_order_unknown_fates_total",
        "Orders whose fate was unknown and had to be looked up.",
        e.unknown_fates,
    );
    w.counter("mmbot_traded_volume_total", "Traded notional, in the quote asset.", to_f64(e.volume));

    w.gauge("mmbot_position", "Position, in the base asset (negative: short).", e.position.to_f64());
    let limit = m.max_position.to_f64();
    w.gauge("mmbot_position_limit", "The position limit ([risk] max_position), in the base asset.", limit);
    if m.max_position.raw() != 0 {
        w.gauge(
            "mmbot_position_limit_ratio",
            "Position over its limit (-1 to 1 within the limit; negative: short).",
            e.position.to_f64() / limit,
        );
    }
    w.gauge("mmbot_pnl", "Profit and loss marked to the last mid, fees included, in the quote asset.", to_f64(e.pnl));
    w.gauge("mmbot_fees", "Fees paid so far, in the quote asset (negative: rebates earned).", to_f64(e.fees));
    w.gauge("mmbot_orders_in_flight", "Order requests sent and not yet answered.", e.in_flight as f64);
    w.gauge("mmbot_trading_stopped", "1 when trading stopped (kill switch, ban, credentials).", bit(e.stopped));

    if let Some(ns) = m.book_age_ns {
        w.gauge("mmbot_book_age_seconds", "Time since the traded book's last depth event.", ns as f64 / 1e9);
    }
    if let Some(h) = m.hot {
        w.gauge("mmbot_feed_connected", "1 while the market data feed is connected.", bit(h.connected));
        w.gauge("mmbot_book_synced", "1 while the traded book is synced.", bit(h.synced));
    }
    w.gauge("mmbot_paused", "1 while quoting is paused by the operator.", bit(m.paused));
    w.gauge("mmbot_uptime_seconds", "Time since the run started.", m.uptime_s);

    if let Some(h) = m.hot {
        let s = &h.script;
        w.gauge("mmbot_script_active", "1 when a strategy script runs (0: the native strategy).", bit(s.active));
        w.counter("mmbot_script_calls_total", "Strategy script calls.", s.calls);
        w.counter("mmbot_script_errors_total", "Strategy script calls that failed.", s.errors);
        w.counter("mmbot_script_bad_outputs_total", "Strategy script results refused as invalid.", s.bad_outputs);
        w.counter(
            "mmbot_script_reverts_total",
            "Times a failing script version went back to the version before it.",
            s.reverts,
        );
    }

    if let Some(a) = m.advisor {
        w.labeled(
            "mmbot_ai_calls_total",
            "counter",
            "AI advisor calls by result: advice handed to the hot path, failed (unparseable replies included), or \
             dropped as too late.",
            "result",
            &[("ok", Num::U(a.ok)), ("failed", Num::U(a.failed)), ("late", Num::U(a.dropped_late))],
        );
        w.counter("mmbot_ai_cost_usd_total", "AI advisor spend, in US dollars (estimates included).", a.cost_total_usd);
        w.labeled(
            "mmbot_ai_tokens_total",
            "counter",
            "AI advisor tokens, by direction (prompt in, reply out).",
            "direction",
            &[("in", Num::U(a.tokens_in)), ("out", Num::U(a.tokens_out))],
        );
    }

    w.head(
        "mmbot_stage_latency_seconds",
        "histogram",
        "Hot path latency per stage (tick_to_quote: frame bytes in memory to quote handed off), from the \
         HdrHistogram; _sum is approximate.",
    );
    for stage in Stage::ALL {
        w.histogram("mmbot_stage_latency_seconds", stage.name(), m.histograms.histogram(stage));
    }
}

/// A sample value: counts stay exact integers.
#[derive(Clone, Copy)]
enum Num {
    U(u64),
    F(f64),
}

impl From<u64> for Num {
    fn from(v: u64) -> Self {
        Num::U(v)
    }
}

impl From<f64> for Num {
    fn from(v: f64) -> Self {
        Num::F(v)
    }
}

struct Writer<'a> {
    out: &'a mut String,
    /// Already escaped.
    symbol: String,
}

impl Writer<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// `name{symbol="...",extra...} value`; `extra` values are escaped here.
    fn sample(&mut self, name: &str, extra: &[(&str, &str)], v: Num) {
        let _ = write!(self.out, "{name}{{symbol=\"{}\"", self.symbol);
        for (k, val) in extra {
            let _ = write!(self.out, ",{k}=\"{}\"", escape_label(val));
        }
        self.out.push_str("} ");
        match v {
            Num::U(u) => {
                let _ = write!(self.out, "{u}");
            }
            Num::F(f) => push_f64(self.out, f),
        }
        self.out.push('\n');
    }

    fn counter(&mut self, name: &str, help: &str, v: impl Into<Num>) {
        debug_assert!(name.ends_with("_total"), "{name}");
        self.head(name, "counter", help);
        self.sample(name, &[], v.into());
    }

    fn gauge(&mut self, name: &str, help: &str, v: f64) {
        self.head(name, "gauge", help);
        self.sample(name, &[], Num::F(v));
    }

    /// One family, one series per value of `label`.
    fn labeled(&mut self, name: &str, kind: &str, help: &str, label: &str, values: &[(&str, Num)]) {
        self.head(name, kind, help);
        for &(l, v) in values {
            self.sample(name, &[(label, l)], v);
        }
    }

    /// One stage's `_bucket`s, `_sum` and `_count` (the family's head is
    /// written once by the caller).
    fn histogram(&mut self, name: &str, stage: &str, h: &Histogram<u64>) {
        let mut counts = [0u64; BUCKETS.len()];
        let (mut total, mut sum_ns) = (0u64, 0u128);
        for v in h.iter_recorded() {
            let (value, n) = (v.value_iterated_to(), v.count_at_value());
            total += n;
            sum_ns += u128::from(h.median_equivalent(value)) * u128::from(n);
            if let Some(i) = BUCKETS.iter().position(|&(bound, _)| value <= bound) {
                counts[i] += n;
            }
        }
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (&(_, le), n) in BUCKETS.iter().zip(counts) {
            cumulative += n;
            self.sample(&bucket, &[("stage", stage), ("le", le)], Num::U(cumulative));
        }
        self.sample(&bucket, &[("stage", stage), ("le", "+Inf")], Num::U(total));
        self.sample(&format!("{name}_sum"), &[("stage", stage)], Num::F(sum_ns as f64 / 1e9));
        self.sample(&format!("{name}_count"), &[("stage", stage)], Num::U(total));
    }
}

fn bit(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// A float as the format spells it (`+Inf`, `-Inf`, `NaN`; Rust's `{}`
/// never uses an exponent, which Go's parser also reads).
fn push_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A label value inside its double quotes: `\` `"` and line feed escaped.
fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text: `\` and line feed escaped.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap, HashSet};

    use super::*;
    use crate::script::health::ScriptStatus;

    /// One sample line, parsed.
    #[derive(Debug, Clone)]
    struct Sample {
        name: String,
        labels: BTreeMap<String, String>,
        value: f64,
    }

    #[derive(Debug, Default)]
    struct Family {
        kind: String,
        help: Option<String>,
        samples: Vec<Sample>,
    }

    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
        matches!(chars.next(), Some(c) if ok_first(c))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }

    fn parse_value(s: &str) -> Result<f64, String> {
        match s {
            "+Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            "NaN" => Ok(f64::NAN),
            _ => s.parse::<f64>().map_err(|e| format!("value {s:?}: {e}")),
        }
    }

    /// `{a="x",b="y"}` starting at `s[0] == '{'`; returns the labels and
    /// the rest after `}`.
    fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
        let mut labels = BTreeMap::new();
        let mut rest = &s[1..];
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                return Ok((labels, r));
            }
            let eq = rest.find('=').ok_or("label without =")?;
            let name = &rest[..eq];
            if !is_name(name, false) {
                return Err(format!("bad label name {name:?}"));
            }
            rest = rest[eq + 1..].strip_prefix('"').ok_or("label value not quoted")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                let (i, c) = chars.next().ok_or("unterminated label value")?;
                match c {
                    '"' => break i,
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    '\n' => return Err("raw line feed in label value".into()),
                    c => value.push(c),
                }
            };
            if labels.insert(name.to_string(), value).is_some() {
                return Err(format!("label {name} twice"));
            }
            rest = &rest[end + 1..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err(format!("expected , or }} at {rest:?}"));
            }
        }
    }

    /// The family a sample name belongs to, given the TYPEs seen so far.
    fn family_of(name: &str, types: &HashMap<String, String>) -> String {
        if types.contains_key(name) {
            return name.to_string();
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if types.get(base).is_some_and(|k| k == "histogram" || k == "summary") {
                    return base.to_string();
                }
            }
        }
        name.to_string()
    }

    /// Parses the text format strictly enough to stand in for `promtool
    /// check metrics`: every line a comment or a sample, HELP and TYPE once
    /// per family and before its samples, families not interleaved,
    /// counters named `_total`, histograms with cumulative buckets ending
    /// in `+Inf` equal to `_count`, and `symbol` on every series.
    fn parse(text: &str, symbol: &str) -> Result<BTreeMap<String, Family>, String> {
        if !text.ends_with('\n') {
            return Err("last line does not end in a line feed".into());
        }
        let mut families: BTreeMap<String, Family> = BTreeMap::new();
        let mut types: HashMap<String, String> = HashMap::new();
        let mut done: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        let mut seen_series: HashSet<(String, BTreeMap<String, String>)> = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
            if line.trim().is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut parts = comment.trim_start().splitn(3, ' ');
                let (Some(kw @ ("HELP" | "TYPE")), Some(name)) = (parts.next(), parts.next()) else { continue };
                let rest = parts.next().unwrap_or("");
                if !is_name(name, true) {
                    return Err(at(format!("bad metric name {name:?}")));
                }
                if done.contains(name) || (current.as_deref().is_some_and(|c| c != name) && families.contains_key(name))
                {
                    return Err(at(format!("{name}: metadata after its samples or another family")));
                }
                let fam = families.entry(name.to_string()).or_default();
                if !fam.samples.is_empty() {
                    return Err(at(format!("{kw} after samples")));
                }
                if kw == "HELP" {
                    if fam.help.replace(rest.to_string()).is_some() {
                        return Err(at("HELP twice".into()));
                    }
                    if rest.is_empty() {
                        return Err(at("empty HELP".into()));
                    }
                } else {
                    if !fam.kind.is_empty() {
                        return Err(at("TYPE twice".into()));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&rest) {
                        return Err(at(format!("bad type {rest:?}")));
                    }
                    fam.kind = rest.to_string();
                    types.insert(name.to_string(), rest.to_string());
                }
                if let Some(prev) = current.replace(name.to_string()) {
                    if prev != name {
                        done.insert(prev);
                    }
                }
                continue;
            }
            let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
            let name = &line[..name_end];
            if !is_name(name, true) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            let (labels, rest) = if line[name_end..].starts_with('{') {
                parse_labels(&line[name_end..]).map_err(at)?
            } else {
                (BTreeMap::new(), &line[name_end..])
            };
            let mut fields = rest.split_whitespace();
            let value = parse_value(fields.next().ok_or_else(|| at("no value".into()))?).map_err(at)?;
            if let Some(ts) = fields.next() {
                ts.parse::<i64>().map_err(|e| at(format!("timestamp: {e}")))?;
            }
            if fields.next().is_some() {
                return Err(at("trailing fields".into()));
            }
            let fam_name = family_of(name, &types);
            if done.contains(&fam_name) || current.as_deref() != Some(fam_name.as_str()) {
                return Err(at(format!("sample of {fam_name} outside its family's block")));
            }
            let fam = families.get_mut(&fam_name).ok_or_else(|| at("no metadata".into()))?;
            if fam.help.is_none() || fam.kind.is_empty() {
                return Err(at("sample before HELP and TYPE".into()));
            }
            if fam.kind == "counter" && !name.ends_with("_total") {
                return Err(at("counter not named _total".into()));
            }
            if fam.kind == "counter" && (value.is_nan() || value < 0.0) {
                return Err(at("negative or NaN counter".into()));
            }
            if labels.get("symbol").map(String::as_str) != Some(symbol) {
                return Err(at(format!("symbol label is not {symbol:?}")));
            }
            if !seen_series.insert((name.to_string(), labels.clone())) {
                return Err(at("duplicate series".into()));
            }
            fam.samples.push(Sample { name: name.to_string(), labels, value });
        }
        for (name, fam) in &families {
            if fam.kind.is_empty() || fam.help.is_none() {
                return Err(format!("{name}: HELP or TYPE missing"));
            }
            if fam.kind == "histogram" {
                check_histogram(name, fam)?;
            }
        }
        Ok(families)
    }

    fn check_histogram(name: &str, fam: &Family) -> Result<(), String> {
        // Series keyed by their labels without `le`.
        let mut buckets: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        let mut counts = BTreeMap::new();
        let mut sums = BTreeMap::new();
        for s in &fam.samples {
            let mut key = s.labels.clone();
            if s.name == format!("{name}_bucket") {
                let le = key.remove("le").ok_or(format!("{name}: bucket without le"))?;
                buckets.entry(key).or_default().push((parse_value(&le)?, s.value));
            } else if s.name == format!("{name}_count") {
                counts.insert(key, s.value);
            } else if s.name == format!("{name}_sum") {
                sums.insert(key, s.value);
            } else {
                return Err(format!("{name}: stray sample {}", s.name));
            }
        }
        if buckets.is_empty() {
            return Err(format!("{name}: no buckets"));
        }
        for (key, bs) in &buckets {
            for pair in bs.windows(2) {
                if pair[0].0.partial_cmp(&pair[1].0) != Some(std::cmp::Ordering::Less) {
                    return Err(format!("{name} {key:?}: le not increasing: {pair:?}"));
                }
                if pair[0].1 > pair[1].1 {
                    return Err(format!("{name} {key:?}: buckets not cumulative: {pair:?}"));
                }
            }
            let last = bs.last().expect("non-empty");
            if last.0 != f64::INFINITY {
                return Err(format!("{name} {key:?}: last bucket is not +Inf"));
            }
            if counts.get(key) != Some(&last.1) {
                return Err(format!("{name} {key:?}: +Inf bucket {} != _count {:?}", last.1, counts.get(key)));
            }
            if !sums.contains_key(key) {
                return Err(format!("{name} {key:?}: no _sum"));
            }
        }
        if counts.len() != buckets.len() || sums.len() != buckets.len() {
            return Err(format!("{name}: _count/_sum without buckets"));
        }
        Ok(())
    }

    fn value(fams: &BTreeMap<String, Family>, name: &str, label: Option<(&str, &str)>) -> f64 {
        let fam = fams.get(name).unwrap_or_else(|| panic!("no family {name}"));
        let s = fam
            .samples
            .iter()
            .find(|s| label.is_none_or(|(k, v)| s.labels.get(k).map(String::as_str) == Some(v)))
            .unwrap_or_else(|| panic!("no sample {name} {label:?}"));
        s.value
    }

    fn full_inputs() -> (HotStatus, ExecStatus, StageHistograms, AdvisorStats) {
        let mut hot = HotStatus {
            frames: 5000,
            quotes: 900,
            pulled: 10,
            pulled_stale: 3,
            pulled_on_sync_loss: 2,
            rejected: 4,
            gaps: 1,
            resyncs: 2,
            connected: true,
            synced: true,
            script: ScriptStatus { active: true, calls: 900, errors: 1, reverts: 2, ..Default::default() },
            ..Default::default()
        };
        hot.feed.connects = 2;
        hot.feed.disconnects = 1;
        hot.feed.malformed = 4;
        let exec = ExecStatus {
            fills: 6,
            orders: 40,
            cancels: 35,
            volume: 240 * 100_000_000,
            fees: 25_000_000,
            pnl: -125_000_000,
            position: Qty::from_raw(200_000),
            refused: 1,
            rejected: 2,
            unknown_fates: 3,
            ..Default::default()
        };
        let mut h = StageHistograms::new();
        for _ in 0..10 {
            h.record(Stage::TickToQuote, 300);
        }
        for _ in 0..5 {
            h.record(Stage::TickToQuote, 5_000);
        }
        h.record(Stage::TickToQuote, 5_000_000_000);
        h.record(Stage::Parse, 100);
        let ai =
            AdvisorStats { calls: 12, ok: 9, failed: 2, dropped_late: 1, cost_total_usd: 0.0125, ..Default::default() };
        (hot, exec, h, ai)
    }

    fn render_full(symbol: &str) -> String {
        let (hot, exec, h, ai) = full_inputs();
        let m = MetricsInputs {
            symbol,
            hot: Some(&hot),
            exec: &exec,
            histograms: &h,
            advisor: Some(&ai),
            max_position: Qty::from_raw(5_000_000),
            book_age_ns: Some(40_000_000),
            uptime_s: 12.5,
            paused: true,
        };
        let mut out = String::new();
        render(&mut out, &m);
        out
    }

    #[test]
    fn full_exposition_parses_and_has_every_family() {
        let text = render_full("BTCUSDT");
        let fams = parse(&text, "BTCUSDT").unwrap_or_else(|e| panic!("{e}\n{text}"));
        for name in [
            "mmbot_feed_frames_total",
            "mmbot_feed_connects_total",
            "mmbot_feed_disconnects_total",
            "mmbot_feed_gaps_total",
            "mmbot_feed_resyncs_total",
            "mmbot_feed_malformed_frames_total",
            "mmbot_quotes_total",
            "mmbot_quote_pulls_total",
            "mmbot_orders_total",
            "mmbot_cancels_total",
            "mmbot_orders_refused_total",
            "mmbot_exchange_rejects_total",
            "mmbot_fills_total",
            "mmbot_order_unknown_fates_total",
            "mmbot_traded_volume_total",
            "mmbot_position",
            "mmbot_position_limit",
            "mmbot_position_limit_ratio",
            "mmbot_pnl",
            "mmbot_fees",
            "mmbot_orders_in_flight",
            "mmbot_trading_stopped",
            "mmbot_book_age_seconds",
            "mmbot_feed_connected",
            "mmbot_book_synced",
            "mmbot_paused",
            "mmbot_uptime_seconds",
            "mmbot_script_active",
            "mmbot_script_calls_total",
            "mmbot_script_errors_total",
            "mmbot_script_bad_outputs_total",
            "mmbot_script_reverts_total",
            "mmbot_ai_calls_total",
            "mmbot_ai_cost_usd_total",
            "mmbot_ai_tokens_total",
            "mmbot_stage_latency_seconds",
        ] {
            assert!(fams.contains_key(name), "{name} missing:\n{text}");
        }
        assert_eq!(fams.len(), 36, "{:?}", fams.keys().collect::<Vec<_>>());
        for (name, fam) in &fams {
            assert!(name.starts_with("mmbot_"), "{name}");
            assert_eq!(fam.kind == "counter", name.ends_with("_total"), "{name} is a {}", fam.kind);
        }
        assert_eq!(value(&fams, "mmbot_feed_frames_total", None), 5000.0);
        assert_eq!(value(&fams, "mmbot_feed_malformed_frames_total", None), 4.0);
        assert_eq!(value(&fams, "mmbot_quote_pulls_total", Some(("cause", "stale"))), 3.0);
        assert_eq!(value(&fams, "mmbot_quote_pulls_total", Some(("cause", "sync_loss"))), 2.0);
        assert_eq!(value(&fams, "mmbot_quote_pulls_total", Some(("cause", "other"))), 5.0);
        assert_eq!(value(&fams, "mmbot_exchange_rejects_total", None), 2.0);
        assert_eq!(value(&fams, "mmbot_traded_volume_total", None), 240.0);
        assert_eq!(value(&fams, "mmbot_position", None), 0.002);
        assert_eq!(value(&fams, "mmbot_position_limit", None), 0.05);
        assert!((value(&fams, "mmbot_position_limit_ratio", None) - 0.04).abs() < 1e-12);
        assert_eq!(value(&fams, "mmbot_pnl", None), -1.25);
        assert_eq!(value(&fams, "mmbot_fees", None), 0.25);
        assert_eq!(value(&fams, "mmbot_book_age_seconds", None), 0.04);
        assert_eq!(value(&fams, "mmbot_feed_connected", None), 1.0);
        assert_eq!(value(&fams, "mmbot_paused", None), 1.0);
        assert_eq!(value(&fams, "mmbot_uptime_seconds", None), 12.5);
        assert_eq!(value(&fams, "mmbot_script_reverts_total", None), 2.0);
        assert_eq!(value(&fams, "mmbot_ai_calls_total", Some(("result", "ok"))), 9.0);
        assert_eq!(value(&fams, "mmbot_ai_calls_total", Some(("result", "failed"))), 2.0);
        assert_eq!(value(&fams, "mmbot_ai_cost_usd_total", None), 0.0125);
        // One HELP and one TYPE per family, nothing else in comments.
        assert_eq!(text.lines().filter(|l| l.starts_with("# HELP ")).count(), fams.len());
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE ")).count(), fams.len());
    }

    #[test]
    fn latency_buckets_come_from_the_hdr_histogram() {
        let text = render_full("BTCUSDT");
        let fams = parse(&text, "BTCUSDT").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let fam = &fams["mmbot_stage_latency_seconds"];
        assert_eq!(fam.kind, "histogram");
        let stages: HashSet<&str> =
            fam.samples.iter().filter_map(|s| s.labels.get("stage").map(|s| s.as_str())).collect();
        assert_eq!(stages.len(), Stage::ALL.len());
        let bucket = |stage: &str, le: &str| {
            fam.samples
                .iter()
                .find(|s| {
                    s.name == "mmbot_stage_latency_seconds_bucket"
                        && s.labels["stage"] == stage
                        && s.labels.get("le").map(String::as_str) == Some(le)
                })
                .unwrap_or_else(|| panic!("no bucket {stage} {le}"))
                .value
        };
        let series = |suffix: &str, stage: &str| {
            fam.samples
                .iter()
                .find(|s| s.name == format!("mmbot_stage_latency_seconds_{suffix}") && s.labels["stage"] == stage)
                .unwrap()
                .value
        };
        // 10 x 300 ns, 5 x 5 µs, 1 x 5 s (beyond the last finite bound).
        assert_eq!(bucket("tick_to_quote", "0.00000025"), 0.0);
        assert_eq!(bucket("tick_to_quote", "0.0000005"), 10.0);
        assert_eq!(bucket("tick_to_quote", "0.000004"), 10.0);
        assert_eq!(bucket("tick_to_quote", "0.000008"), 15.0);
        assert_eq!(bucket("tick_to_quote", "1"), 15.0);
        assert_eq!(bucket("tick_to_quote", "+Inf"), 16.0);
        assert_eq!(series("count", "tick_to_quote"), 16.0);
        let sum = series("sum", "tick_to_quote");
        let exact = 10.0 * 300e-9 + 5.0 * 5e-6 + 5.0;
        assert!((sum - exact).abs() / exact < 1e-3, "{sum} vs {exact}");
        // A value exactly on a bound counts in that bound's bucket.
        assert_eq!(bucket("parse", "0.0000001"), 1.0);
        // An empty stage: all zero.
        assert_eq!(bucket("book", "+Inf"), 0.0);
        assert_eq!(series("sum", "book"), 0.0);
    }

    #[test]
    fn bucket_bounds_are_increasing_and_spelled_as_their_ns() {
        for pair in BUCKETS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{pair:?}");
        }
        for (ns, le) in BUCKETS {
            let s: f64 = le.parse().unwrap();
            assert!((s * 1e9 - ns as f64).abs() < 1e-6, "{le} is not {ns} ns");
        }
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let symbol = "we\"ird\\sym\nbol";
        let text = render_full(symbol);
        assert!(text.contains(r#"mmbot_fills_total{symbol="we\"ird\\sym\nbol"} 6"#), "{text}");
        // Every line is still one line, and the parser reads the value back.
        let fams = parse(&text, symbol).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(value(&fams, "mmbot_fills_total", None), 6.0);
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
        assert_eq!(escape_label("plain"), "plain");
    }

    #[test]
    fn missing_sources_leave_their_families_out() {
        let (exec, h) = (ExecStatus::default(), StageHistograms::new());
        let m = MetricsInputs {
            symbol: "ETHUSDT",
            hot: None,
            exec: &exec,
            histograms: &h,
            advisor: None,
            max_position: Qty::ZERO,
            book_age_ns: None,
            uptime_s: 0.0,
            paused: false,
        };
        let mut text = String::new();
        render(&mut text, &m);
        let fams = parse(&text, "ETHUSDT").unwrap_or_else(|e| panic!("{e}\n{text}"));
        for gone in [
            "mmbot_feed_frames_total",
            "mmbot_quote_pulls_total",
            "mmbot_feed_connected",
            "mmbot_book_age_seconds",
            "mmbot_position_limit_ratio",
            "mmbot_ai_calls_total",
            "mmbot_script_calls_total",
        ] {
            assert!(!fams.contains_key(gone), "{gone}");
        }
        for kept in ["mmbot_fills_total", "mmbot_position", "mmbot_paused", "mmbot_stage_latency_seconds"] {
            assert!(fams.contains_key(kept), "{kept}");
        }
    }

    #[test]
    fn the_parser_refuses_what_prometheus_would() {
        let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{symbol=\"S\"} 1\n";
        assert!(parse(ok, "S").is_ok());
        for bad in [
            // No trailing line feed.
            "# HELP a_total x\n# TYPE a_total counter\na_total{symbol=\"S\"} 1",
            // Counter not named _total.
            "# HELP a x\n# TYPE a counter\na{symbol=\"S\"} 1\n",
            // Sample before TYPE.
            "# HELP a_total x\na_total{symbol=\"S\"} 1\n# TYPE a_total counter\n",
            // TYPE twice.
            "# HELP a_total x\n# TYPE a_total counter\n# TYPE a_total counter\na_total{symbol=\"S\"} 1\n",
            // No symbol.
            "# HELP a_total x\n# TYPE a_total counter\na_total 1\n",
            // Bad escape, unterminated value.
            "# HELP a_total x\n# TYPE a_total counter\na_total{symbol=\"S\\t\"} 1\n",
            "# HELP a_total x\n# TYPE a_total counter\na_total{symbol=\"S} 1\n",
            // Interleaved families.
            "# HELP a x\n# TYPE a gauge\na{symbol=\"S\"} 1\n# HELP b x\n# TYPE b gauge\nb{symbol=\"S\"} 1\n\
             a{symbol=\"S\"} 2\n",
            // Buckets not cumulative / +Inf not the count.
            "# HELP h x\n# TYPE h histogram\nh_bucket{symbol=\"S\",le=\"1\"} 2\nh_bucket{symbol=\"S\",le=\"+Inf\"} 1\n\
             h_sum{symbol=\"S\"} 1\nh_count{symbol=\"S\"} 1\n",
            "# HELP h x\n# TYPE h histogram\nh_bucket{symbol=\"S\",le=\"1\"} 1\nh_bucket{symbol=\"S\",le=\"+Inf\"} 2\n\
             h_sum{symbol=\"S\"} 1\nh_count{symbol=\"S\"} 3\n",
            // No +Inf bucket.
            "# HELP h x\n# TYPE h histogram\nh_bucket{symbol=\"S\",le=\"1\"} 1\nh_sum{symbol=\"S\"} 1\n\
             h_count{symbol=\"S\"} 1\n",
        ] {
            assert!(parse(bad, "S").is_err(), "accepted:\n{bad}");
        }
    }

    #[test]
    fn floats_are_spelled_as_the_format_wants() {
        let mut s = String::new();
        for v in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 0.5, -2.0, 1e-9] {
            push_f64(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "+Inf -Inf NaN 0.5 -2 0.000000001 ");
    }
}
