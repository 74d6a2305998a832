//! The simulator's market: where its frames come from (the order-flow model
//! or a recording), the true book behind its REST snapshots, and the
//! history of tops tests check quotes against.
//!
//! One thread advances the market and broadcasts frames to every connected
//! client; REST handlers read the same state under a lock. This is test and
//! demo infrastructure, not a hot path: it may allocate and lock freely.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::hot::fixed::{Price, Qty};
use crate::hot::market::{BookSizes, Event, MarketData};
use crate::hot::msg::Symbol;
use crate::runtime::{FrameSource, RecordingSource};

use crate::sim::flow::{CommonFactor, FlowConfig, FlowModel, SimMarket, StreamKind, TopAt};

/// A frame for the clients: which symbol and stream kind, and its payload
/// as sent on a raw `/ws` stream.
#[derive(Debug)]
pub struct Outgoing {
    pub symbol: usize,
    pub kind: StreamKind,
    pub payload: String,
}

/// A book as the exchange holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrueBook {
    pub update_id: u64,
    /// Best first, (price, qty) in 1e-8 units.
    pub bids: Vec<(i64, i64)>,
    pub asks: Vec<(i64, i64)>,
}

/// Where the market's events come from.
pub enum Source {
    Synthetic(Vec<FlowModel>),
    Replay(Box<Replay>),
}

/// A recording served back: its frames are broadcast as recorded, `speed`
/// times faster, and its diffs kept in a book of our own for REST snapshots.
pub struct Replay {
    source: RecordingSource,
    speed: f64,
    md: MarketData,
    symbols: Vec<Symbol>,
    buf: Vec<u8>,
    /// Receive time of the line in `buf`, not yet served.
    ahead: Option<i64>,
    /// Receive time of the first line (replay time zero).
    first_ns: Option<i64>,
    tops: Vec<Vec<TopAt>>,
    finished: bool,
}

impl Replay {
    pub fn new(files: Vec<PathBuf>, speed: f64, symbols: &[String]) -> Self {
        let symbols: Vec<Symbol> = symbols.iter().map(|s| Symbol::new(s.to_ascii_uppercase().as_bytes())).collect();
        Self {
            source: RecordingSource::new(files, None),
            speed,
            md: MarketData::with_symbols(BookSizes::default(), &symbols),
            tops: vec![Vec::new(); symbols.len()],
            symbols,
            buf: Vec::with_capacity(1 << 20),
            ahead: None,
            first_ns: None,
            finished: false,
        }
    }

    /// Serves every line due `elapsed_ms` (sim time) after the start.
    fn serve(&mut self, elapsed_ms: i64, out: &mut Vec<Outgoing>) {
        // Bounded per turn so REST handlers get the lock between batches.
        for _ in 0..10_000 {
            if self.ahead.is_none() {
                match self.source.next_frame(&mut self.buf) {
                    Some(ts) => self.ahead = Some(ts),
                    None => {
                        self.finished = true;
                        return;
                    }
                }
            }
            let ts = self.ahead.expect("read ahead above");
            let first = *self.first_ns.get_or_insert(ts);
            let due_ms = ((ts - first) as f64 / 1e6 / self.speed) as i64;
            if due_ms > elapsed_ms {
                return;
            }
            self.ahead = None;
            self.serve_line(out);
        }
    }

    fn serve_line(&mut self, out: &mut Vec<Outgoing>) {
        let line = &self.buf;
        let (symbols, tops) = (&self.symbols, &mut self.tops);
        self.md.on_frame(line, &mut |ev| {
            if let Event::Depth { symbol, book, applied } = ev {
                if let Some(i) = symbols.iter().position(|&s| s == symbol) {
                    let lvl = |l: Option<crate::hot::msg::Level>| l.map(|l| (l.price.0, l.qty.0));
                    tops[i].push(TopAt {
                        update_id: applied.update_id,
                        bid: lvl(book.best_bid()),
                        ask: lvl(book.best_ask()),
                    });
                }
            }
        });
        // Snapshot lines feed our book only; frames go out as recorded.
        let Some((stream, data)) = split_wrapper(line) else { return };
        let Some((sym, kind)) = parse_stream_name(stream) else { return };
        if let Some(i) = self.symbols.iter().position(|s| s.as_str().eq_ignore_ascii_case(sym)) {
            out.push(Outgoing { symbol: i, kind, payload: String::from_utf8_lossy(data).into_owned() });
        }
    }
}

/// The symbols (upper case) whose depth streams a recording carries in its
/// first `max_lines` lines: what `mmbot sim --replay` checks before it
/// starts serving, so a file it cannot serve fails at once with a reason.
pub fn replay_depth_symbols(path: &std::path::Path, max_lines: usize) -> std::io::Result<Vec<String>> {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(crate::feed::recording::open(path)?);
    let mut found: Vec<String> = Vec::new();
    for line in reader.split(b'\n').take(max_lines) {
        let line = line?;
        let Some((_, json)) = crate::feed::recording::split_line(&line) else { continue };
        if let Some((sym, StreamKind::Depth)) = split_wrapper(json).and_then(|(name, _)| parse_stream_name(name)) {
            let sym = sym.to_ascii_uppercase();
            if !found.contains(&sym) {
                found.push(sym);
            }
        }
    }
    Ok(found)
}

/// `{"stream":"<name>","data":<data>}` -> (name, data).
pub fn split_wrapper(line: &[u8]) -> Option<(&str, &[u8])> {
    let rest = line.strip_prefix(br#"{"stream":""#)?;
    let end = memchr::memchr(b'"', rest)?;
    let name = std::str::from_utf8(&rest[..end]).ok()?;
    let rest = rest[end + 1..].strip_prefix(br#","data":"#)?;
    let close = memchr::memrchr(b'}', rest)?;
    Some((name, &rest[..close]))
}

/// `btcusdt@depth@100ms` -> ("btcusdt", Depth); None for streams we do not serve.
///
/// The update speed (`@0ms`, `@100ms`, `@250ms`, `@500ms`, or none) is not
/// part of the kind: a replayed USD-M capture recorded on `@depth@0ms` is
/// served to a client subscribed to `@depth@100ms` (and the other way
/// round), under the name the client asked for. The frames are the
/// recording's; only the cadence differs from what a real subscription at
/// that speed would get.
pub fn parse_stream_name(name: &str) -> Option<(&str, StreamKind)> {
    let (sym, rest) = name.split_once('@')?;
    let base = match rest.split_once('@') {
        Some((base, speed)) => {
            let ms = speed.strip_suffix("ms")?;
            if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            base
        }
        None => rest,
    };
    let kind = match base {
        "depth" => StreamKind::Depth,
        "depth20" => StreamKind::Depth20,
        "trade" if base == rest => StreamKind::Trade,
        "bookTicker" if base == rest => StreamKind::BookTicker,
        _ => return None,
    };
    Some((sym, kind))
}

/// Formats a REST snapshot body from a true book (spot, or USD-M with E/T).
pub fn snapshot_body(book: &TrueBook, market: SimMarket, limit: usize, now_ms: i64) -> String {
    let mut s = format!("{{\"lastUpdateId\":{}", book.update_id);
    if market == SimMarket::Usdm {
        s.push_str(&format!(",\"E\":{now_ms},\"T\":{now_ms}"));
    }
    let side = |s: &mut String, name: &str, levels: &[(i64, i64)]| {
        s.push_str(&format!(",\"{name}\":["));
        for (i, &(p, q)) in levels.iter().take(limit).enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!("[\"{}\",\"{}\"]", Price(p), Qty(q)));
        }
        s.push(']');
    };
    side(&mut s, "bids", &book.bids);
    side(&mut s, "asks", &book.asks);
    s.push('}');
    s
}

/// The market state shared by the market thread and the REST handlers.
pub struct MarketState {
    pub market: SimMarket,
    pub symbols: Vec<String>,
    pub source: Source,
    /// Sim time now, ms since the epoch.
    pub now_ms: i64,
    /// For replays: the first true book of each symbol (the stale-snapshot fault).
    first_books: Vec<Option<TrueBook>>,
}

impl MarketState {
    /// Each symbol its own flow model, seeded `seed + i`, at
    /// `events_per_sec`, started and correlated per `dynamics`.
    pub fn synthetic(
        market: SimMarket,
        symbols: &[String],
        (seed, events_per_sec): (u64, f64),
        record_tops: bool,
        dynamics: &super::Dynamics,
    ) -> Self {
        let now_ms = crate::feed::snapshot::wall_ns() / 1_000_000;
        // One factor for all: every model regenerates the same path.
        let common = (dynamics.correlation > 0.0).then_some(CommonFactor { seed, correlation: dynamics.correlation });
        let models = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let name = s.to_ascii_uppercase();
                let mut cfg = FlowConfig::new(&name, market, seed.wrapping_add(i as u64));
                cfg.events_per_sec = events_per_sec;
                cfg.record_tops = record_tops;
                cfg.common = common;
                if let Some((_, p)) = dynamics.start_prices.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                    cfg.start_price = *p;
                }
                FlowModel::new(cfg, now_ms)
            })
            .collect();
        Self {
            market,
            symbols: symbols.iter().map(|s| s.to_ascii_uppercase()).collect(),
            source: Source::Synthetic(models),
            now_ms,
            first_books: vec![None; symbols.len()],
        }
    }

    pub fn replay(market: SimMarket, symbols: &[String], files: Vec<PathBuf>, speed: f64) -> Self {
        Self {
            market,
            symbols: symbols.iter().map(|s| s.to_ascii_uppercase()).collect(),
            source: Source::Replay(Box::new(Replay::new(files, speed, symbols))),
            now_ms: crate::feed::snapshot::wall_ns() / 1_000_000,
            first_books: vec![None; symbols.len()],
        }
    }

    pub fn symbol_index(&self, name: &str) -> Option<usize> {
        self.symbols.iter().position(|s| s.eq_ignore_ascii_case(name))
    }

    /// The true book of symbol `i` now; `None` while a replay has not synced it.
    pub fn true_book(&self, i: usize) -> Option<TrueBook> {
        match &self.source {
            Source::Synthetic(models) => {
                let m = models.get(i)?;
                let (bids, asks) = m.levels();
                Some(TrueBook { update_id: m.update_id(), bids, asks })
            }
            Source::Replay(r) => {
                let b = r.md.book(*r.symbols.get(i)?)?;
                if !b.is_synced() {
                    return None;
                }
                Some(TrueBook {
                    update_id: b.update_id(),
                    bids: b.book().bids().map(|l| (l.price.0, l.qty.0)).collect(),
                    asks: b.book().asks().map(|l| (l.price.0, l.qty.0)).collect(),
                })
            }
        }
    }

    /// A REST snapshot body for symbol `i`; `stale` serves an older one.
    pub fn snapshot(&self, i: usize, limit: usize, stale: bool) -> Option<String> {
        match &self.source {
            Source::Synthetic(models) => {
                let m = models.get(i)?;
                Some(if stale {
                    m.stale_snapshot_json(limit, self.now_ms)
                } else {
                    m.snapshot_json(limit, self.now_ms)
                })
            }
            Source::Replay(_) => {
                let book = if stale { self.first_books.get(i)?.clone()? } else { self.true_book(i)? };
                Some(snapshot_body(&book, self.market, limit, self.now_ms))
            }
        }
    }

    /// A snapshot body of the current book of symbol `i` without its `nth`
    /// best bid (the omit-level fault), and whether a bid was left out.
    pub fn snapshot_without_bid(&self, i: usize, limit: usize, nth: usize) -> Option<(String, bool)> {
        let mut book = self.true_book(i)?;
        let omitted = crate::sim::faults::omit_bid(&mut book.bids, nth);
        Some((snapshot_body(&book, self.market, limit, self.now_ms), omitted))
    }

    /// Top of book of symbol `i` after each update id (when recorded).
    pub fn tops(&self, i: usize) -> Vec<TopAt> {
        match &self.source {
            Source::Synthetic(models) => models.get(i).map(|m| m.top_history().to_vec()).unwrap_or_default(),
            Source::Replay(r) => r.tops.get(i).cloned().unwrap_or_default(),
        }
    }

    /// Whether a replay has served its whole recording.
    pub fn finished(&self) -> bool {
        matches!(&self.source, Source::Replay(r) if r.finished)
    }

    /// A short status: regime and trades (synthetic) or progress (replay).
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Synthetic(models) => models
                .iter()
                .zip(&self.symbols)
                .map(|(m, s)| format!("{s} id {} {} trades {}", m.update_id(), m.regime(), m.trades()))
                .collect::<Vec<_>>()
                .join("; "),
            Source::Replay(r) => {
                if r.finished {
                    "replay finished".into()
                } else {
                    "replaying".into()
                }
            }
        }
    }
}

/// Advances the market to `sim_ms` (synthetic models run their events; a
/// replay serves the lines due by then). Frames go to `out`.
pub fn advance(state: &Arc<Mutex<MarketState>>, start_ms: i64, sim_ms: i64, out: &mut Vec<Outgoing>) {
    let mut guard = state.lock().unwrap_or_else(|p| p.into_inner());
    let s = &mut *guard;
    match &mut s.source {
        Source::Synthetic(models) => {
            let mut frames = Vec::new();
            for (i, m) in models.iter_mut().enumerate() {
                m.advance_to(sim_ms, &mut frames);
                out.extend(frames.drain(..).map(|f| Outgoing { symbol: i, kind: f.kind, payload: f.payload }));
            }
        }
        Source::Replay(r) => r.serve(sim_ms - start_ms, out),
    }
    s.now_ms = sim_ms;
    for i in 0..s.symbols.len() {
        if s.first_books[i].is_none() {
            s.first_books[i] = s.true_book(i);
        }
    }
}

/// Wall time a replay waits between turns when nothing is due.
pub const TURN: Duration = Duration::from_millis(2);

/// Sim-time clock that can be paused (tests freeze the market to compare
/// books once the bot has caught up).
pub struct SimClock {
    start_wall: Instant,
    start_ms: i64,
    paused_at: Option<Instant>,
    paused_total: Duration,
}

impl SimClock {
    pub fn new(start_ms: i64) -> Self {
        Self { start_wall: Instant::now(), start_ms, paused_at: None, paused_total: Duration::ZERO }
    }

    pub fn now_ms(&self) -> i64 {
        let wall = self.paused_at.unwrap_or_else(Instant::now);
        let run = wall.duration_since(self.start_wall).saturating_sub(self.paused_total);
        self.start_ms + run.as_millis() as i64
    }

    pub fn pause(&mut self) {
        self.paused_at.get_or_insert_with(Instant::now);
    }

    pub fn resume(&mut self) {
        if let Some(t) = self.paused_at.take() {
            self.paused_total += t.elapsed();
        }
    }

    pub fn paused(&self) -> bool {
        self.paused_at.is_some()
    }
}

/// Per-symbol counters of dropped diffs (the drop-diff fault).
pub type DiffCounts = BTreeMap<usize, u64>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_ignore_the_update_speed() {
        for name in ["x@depth", "x@depth@0ms", "x@depth@100ms", "x@depth@250ms", "x@depth@500ms"] {
            assert_eq!(parse_stream_name(name), Some(("x", StreamKind::Depth)), "{name}");
        }
        assert_eq!(parse_stream_name("x@depth20@0ms"), Some(("x", StreamKind::Depth20)));
        assert_eq!(parse_stream_name("x@bookTicker"), Some(("x", StreamKind::BookTicker)));
        for bad in ["x@depth@ms", "x@depth@10s", "x@trade@100ms", "x@kline_1m", "x"] {
            assert_eq!(parse_stream_name(bad), None, "{bad}");
        }
    }
}
