//! Multi-symbol backtests: several symbols (`[[symbols]]`), each with its
//! own strategy and settings, trading from one account.
//!
//! The recordings (one per symbol, or combined ones) are merged in receive
//! time order: of the files' next lines, the earliest goes first (ties: the
//! file named first). Each line goes to its symbol's [`Desk`], the same
//! per-line code a single-symbol backtest runs: a combined-stream frame by
//! the symbol its stream names; a line that names none (a REST snapshot's
//! bare body) to the symbol the same file named last, or, before any, the
//! first one it names; a control stream (a recording's `!mmbotReconnect`
//! marker) to every symbol. Lines of symbols not configured are counted and
//! skipped.
//!
//! With an `[account]`, the [`Allocator`] sits between every desk's quotes
//! and its paper exchange: what does not fit the symbol's budget or the
//! account's balances and limits is taken off before the exchange sees it,
//! and counted per symbol and reason. Without one (or when budgets do not
//! bind), each symbol's result equals its own single-symbol backtest.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::symbols::Symbols;
use crate::exec::allocator::{Allocator, Refusal};
use crate::exec::{Fill, Quote};
use crate::feed::recording::{lines, split_line, LineChunks, Piece};
use crate::hot::fixed::{parse_fixed, Price, Qty};
use crate::hot::msg::Symbol;
use crate::hot::parse::{route, StreamKind};
use crate::hot::peers::PeerBoard;
use crate::hot::strategy::Strategy;
use crate::stats::clock::Clock;

use super::desk::{Desk, Gate, Ungated};
use super::{BacktestError, Report, RunObserver};

/// One symbol's part of a multi-symbol report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SymbolReport {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    /// Its budget (empty without an `[account]`).
    #[serde(default)]
    pub budget_quote: String,
    #[serde(default)]
    pub budget_base: String,
    /// Levels the allocator refused, per reason (only reasons that occurred).
    #[serde(default)]
    pub refused: BTreeMap<String, u64>,
    /// The symbol's own report, as a single-symbol backtest writes it.
    pub report: Report,
    /// How its live trading went (`run --live` only), as a single-symbol
    /// live report's `live` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<serde_json::Value>,
}

/// Totals over the symbols quoted in one asset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AssetTotals {
    pub symbols: Vec<String>,
    pub pnl: String,
    pub fees: String,
    pub volume: String,
    pub fills: u64,
    pub orders: u64,
}

/// What `mmbot backtest` writes for a `[[symbols]]` config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MultiReport {
    pub files: Vec<String>,
    /// Lines merged from all files, and those of symbols not configured.
    pub frames: u64,
    pub unrouted: u64,
    pub wall_s: f64,
    /// "account" (the allocator) or "none" (symbols independent).
    pub allocator: String,
    /// The account's daily-loss kill, if it happened: asset, PnL, time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub killed: Option<String>,
    pub symbols: Vec<SymbolReport>,
    /// Per quote asset (PnL of different quote assets do not add up).
    pub totals: BTreeMap<String, AssetTotals>,
}

/// The allocator as one desk's gate.
struct AccountGate<'a> {
    allocator: &'a mut Allocator,
    desk: usize,
}

impl Gate for AccountGate<'_> {
    fn admit(&mut self, quote: Quote) -> Quote {
        self.allocator.admit_quote(self.desk, quote)
    }
    fn on_fill(&mut self, fill: &Fill) {
        self.allocator.on_fill(self.desk, fill);
    }
    fn on_mid(&mut self, mid: Price, time_ns: i64) {
        self.allocator.mark(self.desk, mid, time_ns);
    }
}

/// Multi-symbol runs report per symbol; nothing observes their events.
struct Quiet;

impl RunObserver for Quiet {
    fn wants_progress(&self) -> bool {
        false
    }
}

/// One file's lines, one at a time, with the next one held for the merge.
struct FileLines {
    chunks: LineChunks,
    buf: Vec<u8>,
    at: usize,
    /// The next line: receive time and JSON.
    head: Option<(i64, Vec<u8>)>,
    /// The desk the file's latest routed line went to.
    current: Option<usize>,
    done: bool,
}

impl FileLines {
    fn new(path: PathBuf) -> Self {
        Self { chunks: LineChunks::start(vec![path]), buf: Vec::new(), at: 0, head: None, current: None, done: false }
    }

    /// Fills `head` with the next line, if any.
    fn advance(&mut self) -> Result<(), BacktestError> {
        self.head = None;
        while !self.done {
            if self.at < self.buf.len() {
                let rest = &self.buf[self.at..];
                let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
                let line = &rest[..end];
                self.at += end;
                let mut it = lines(line);
                if let Some((ts, json)) = it.next().and_then(split_line) {
                    self.head = Some((ts as i64, json.to_vec()));
                    return Ok(());
                }
                continue;
            }
            match self.chunks.next_piece() {
                Some(Piece::Lines(buf)) => {
                    let old = std::mem::replace(&mut self.buf, buf);
                    self.chunks.recycle(old);
                    self.at = 0;
                }
                Some(Piece::FileError { path, error }) => {
                    return Err(BacktestError::Unreadable { path: path.display().to_string(), error })
                }
                Some(Piece::Truncated { path, error }) => crate::say!(
                    "mmbot backtest: warning: {} ends early ({error}); used up to its last complete line",
                    path.display()
                ),
                None => self.done = true,
            }
        }
        Ok(())
    }
}

/// Where a line goes, by its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    /// A configured symbol's desk.
    Desk(usize),
    /// A symbol not configured.
    Other,
    /// A control stream (`!mmbotReconnect`, `!serverShutdown`): it concerns
    /// the connection, so every desk.
    All,
    /// No stream name (a snapshot's bare body).
    Nothing,
}

/// Where `json` goes by the stream it names.
fn named_desk(json: &[u8], symbols: &[Symbol]) -> Named {
    let Some(r) = route(json) else { return Named::Nothing };
    if r.kind == StreamKind::Control {
        return Named::All;
    }
    // Stream names are lower case, symbols upper: compared without a copy.
    symbols.iter().position(|s| s.as_str().as_bytes().eq_ignore_ascii_case(r.symbol)).map_or(Named::Other, Named::Desk)
}

/// The desk each file's first routed line goes to (what its leading
/// unrouted lines, such as a snapshot written before any frame, belong to).
fn first_desks(files: &[PathBuf], symbols: &[Symbol]) -> Result<Vec<Option<usize>>, BacktestError> {
    files
        .iter()
        .map(|f| {
            let mut lines = FileLines::new(f.clone());
            // Bounded: a file whose first 10,000 lines name no symbol
            // feeds its unnamed lines to no desk until one does.
            for _ in 0..10_000 {
                lines.advance()?;
                let Some((_, json)) = &lines.head else { break };
                if let Named::Desk(d) = named_desk(json, symbols) {
                    return Ok(Some(d));
                }
            }
            Ok(None)
        })
        .collect()
}

/// Runs a multi-symbol backtest of `files` with `symbols` (each entry's
/// config) and `strategies` (one per entry, in order).
pub fn run<S: Strategy>(
    files: &[PathBuf],
    symbols: &Symbols,
    strategies: Vec<S>,
    clock: Clock,
) -> Result<MultiReport, BacktestError> {
    let names: Vec<Symbol> = symbols.entries.iter().map(|e| e.budget.symbol).collect();
    let mut allocator = symbols
        .account
        .clone()
        .map(|limits| Allocator::new(symbols.entries.iter().map(|e| e.budget.clone()).collect(), limits));
    let mut desks: Vec<Desk<'_, S>> = symbols
        .entries
        .iter()
        .zip(strategies)
        .map(|(e, s)| Desk::new(&e.config, s, clock))
        .collect::<Result<_, _>>()?;
    // Each symbol's mid and volatility, for the others' scripts.
    let board = std::sync::Arc::new(PeerBoard::new(desks.len()));
    for (i, d) in desks.iter_mut().enumerate() {
        d.hot.set_peers(board.clone(), i);
    }
    let firsts = first_desks(files, &names)?;
    let mut readers: Vec<FileLines> = files.iter().map(|f| FileLines::new(f.clone())).collect();
    for (r, first) in readers.iter_mut().zip(&firsts) {
        r.current = *first;
        r.advance()?;
    }
    let started = Instant::now();
    let (mut frames, mut unrouted) = (0u64, 0u64);
    loop {
        // The earliest head; ties to the file named first.
        let next = readers.iter().enumerate().filter_map(|(i, r)| r.head.as_ref().map(|(ts, _)| (*ts, i))).min();
        let Some((now, i)) = next else { break };
        let Some((_, json)) = readers[i].head.take() else { break };
        frames += 1;
        let to = match named_desk(&json, &names) {
            Named::Desk(d) => {
                readers[i].current = Some(d);
                d..d + 1
            }
            Named::All => 0..desks.len(),
            Named::Other => 0..0,
            Named::Nothing => readers[i].current.map_or(0..0, |d| d..d + 1),
        };
        if to.is_empty() {
            unrouted += 1;
        }
        for d in to {
            let observer = &mut Quiet;
            match allocator.as_mut() {
                Some(a) => desks[d].on_line(&json, now, observer, &mut AccountGate { allocator: a, desk: d }),
                None => desks[d].on_line(&json, now, observer, &mut Ungated),
            }
        }
        readers[i].advance()?;
    }
    let wall_s = started.elapsed().as_secs_f64();
    let reports =
        desks.into_iter().map(|desk| desk.finish(files, wall_s).map(|(r, _)| r)).collect::<Result<Vec<_>, _>>()?;
    Ok(assemble(files, frames, unrouted, wall_s, symbols, allocator.as_ref(), reports))
}

/// The multi-symbol report from each symbol's own report (in the order of
/// `symbols`), the allocator's refusals, and totals per quote asset: what
/// backtests and threaded runs (`crate::runtime::multi`) write alike.
pub fn assemble(
    files: &[PathBuf],
    frames: u64,
    unrouted: u64,
    wall_s: f64,
    symbols: &Symbols,
    allocator: Option<&Allocator>,
    reports: Vec<Report>,
) -> MultiReport {
    let mut out = Vec::with_capacity(reports.len());
    for (d, (report, entry)) in reports.into_iter().zip(&symbols.entries).enumerate() {
        let b = &entry.budget;
        let refused = allocator.map_or_else(BTreeMap::new, |a| {
            let r = a.refused(d);
            Refusal::ALL.iter().filter(|&&k| r.get(k) > 0).map(|&k| (k.as_str().to_string(), r.get(k))).collect()
        });
        let amount = |v: i64| if allocator.is_some() { Qty(v).to_string() } else { String::new() };
        out.push(SymbolReport {
            symbol: b.symbol.to_string(),
            base: b.base.clone(),
            quote: b.quote.clone(),
            budget_quote: amount(b.quote_budget),
            budget_base: amount(b.base_budget),
            refused,
            report,
            live: None,
        });
    }
    let mut totals: BTreeMap<String, AssetTotals> = BTreeMap::new();
    // Report amounts are exact decimals, signed (PnL can be negative).
    let num = |s: &str| match s.strip_prefix('-') {
        Some(abs) => -parse_fixed(abs.as_bytes()).unwrap_or(0),
        None => parse_fixed(s.as_bytes()).unwrap_or(0),
    };
    for s in &out {
        let t = totals.entry(s.quote.clone()).or_insert_with(|| AssetTotals {
            symbols: Vec::new(),
            pnl: "0".into(),
            fees: "0".into(),
            volume: "0".into(),
            fills: 0,
            orders: 0,
        });
        let tr = &s.report.trading;
        t.symbols.push(s.symbol.clone());
        t.pnl = Price(num(&t.pnl) + num(&tr.pnl)).to_string();
        t.fees = Price(num(&t.fees) + num(&tr.fees)).to_string();
        t.volume = Price(num(&t.volume) + num(&tr.volume)).to_string();
        t.fills += tr.fills;
        t.orders += tr.orders;
    }
    MultiReport {
        files: files.iter().map(|p| p.display().to_string()).collect(),
        frames,
        unrouted,
        wall_s,
        allocator: if allocator.is_some() { "account" } else { "none" }.into(),
        killed: allocator.and_then(|a| a.killed()).map(|k| k.describe()),
        symbols: out,
        totals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_to_their_symbol_control_streams_to_all_bare_bodies_to_none() {
        let names = [Symbol::new(b"BTCUSDT"), Symbol::new(b"ETHUSDT")];
        assert_eq!(named_desk(b"{\"stream\":\"ethusdt@depth@100ms\",\"data\":{}}", &names), Named::Desk(1));
        assert_eq!(named_desk(b"{\"stream\":\"btcusdt@trade\",\"data\":{}}", &names), Named::Desk(0));
        assert_eq!(named_desk(b"{\"stream\":\"xrpusdt@trade\",\"data\":{}}", &names), Named::Other);
        let marker = b"{\"stream\":\"!mmbotReconnect\",\"data\":{\"e\":\"mmbotReconnect\",\"E\":1}}";
        assert_eq!(named_desk(marker, &names), Named::All);
        assert_eq!(named_desk(b"{\"lastUpdateId\":1,\"bids\":[],\"asks\":[]}", &names), Named::Nothing);
    }
}
