//! Frames in, synced books and events out: the market-data half of the hot path.
//!
//! [`MarketData`] owns the [`Parser`] and one [`SyncedBook`] per symbol, routes
//! each parsed message to its book, counts everything that goes wrong, and
//! hands what happened to a caller-supplied sink (`FnMut(Event)`), which is how
//! replay, backtest and the live engine all share this code.
//!
//! REST snapshot bodies name no symbol. Live, the feed says which symbol it
//! fetched ([`MarketData::on_snapshot_for`]). In a recording the bare snapshot
//! line is given to the symbol whose book most recently received a diff while
//! waiting for a snapshot: recorders write the snapshot right after the first
//! diffs of the symbol they fetched it for.
//!
//! Optional bookTicker verification: a `bookTicker` whose `u` equals the
//! book's update id right after a depth event must show exactly the book's
//! best bid and ask. This is the ground truth of the real captures, checked by
//! `mmbot book` and the tests.

use crate::hot::book::Book;
use crate::hot::msg::{BookTicker, Msg, Snapshot, Symbol, Trade};
use crate::hot::parse::{ParseError, Parser};
use crate::hot::sync::{Applied, SyncStats, SyncedBook};

/// Sizes of the market-data state, fixed at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookSizes {
    /// Price ticks per side per book (the ladder's window; a power of two).
    pub capacity: usize,
    /// Most levels accepted per side in one message (Binance sends at most 5000).
    pub max_message_levels: usize,
    /// Diffs held per book while waiting for a snapshot.
    pub buffer_events: usize,
    /// Levels held in all those diffs.
    pub buffer_levels: usize,
    /// Most symbols tracked at once.
    pub max_symbols: usize,
}

impl Default for BookSizes {
    fn default() -> Self {
        Self { capacity: 65536, max_message_levels: 5000, buffer_events: 1024, buffer_levels: 16384, max_symbols: 64 }
    }
}

/// What happened, as the sink sees it.
#[derive(Debug)]
pub enum Event<'a> {
    /// A depth event (diff, partial or a buffered diff replayed after a
    /// snapshot) changed a synced book.
    Depth {
        symbol: Symbol,
        applied: Applied,
        book: &'a Book,
    },
    Ticker(BookTicker),
    Trade(Trade),
    /// The server announced it will close the connection.
    ServerShutdown,
}

/// Counters of the feed, beyond the per-book [`SyncStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedStats {
    pub frames: u64,
    /// Diff and partial-depth messages parsed.
    pub depth_messages: u64,
    pub snapshot_messages: u64,
    pub tickers: u64,
    pub trades: u64,
    /// Frames of streams or events not used (klines, subscribe replies, ...).
    pub skipped: u64,
    /// Malformed frames, all kinds.
    pub rejected: u64,
    /// Malformed frames by [`ParseError::kind`].
    pub rejected_by_kind: [u64; ParseError::KINDS],
    pub server_shutdowns: u64,
    /// Recorded reconnects replayed (every book made unsynced).
    pub reconnect_markers: u64,
    /// Snapshot lines that could not be given to any symbol.
    pub orphan_snapshots: u64,
    /// Messages for a symbol beyond `max_symbols`.
    pub symbols_over_limit: u64,
    /// Messages for a symbol not configured (after `with_symbols`).
    pub unknown_symbols: u64,
    /// bookTickers compared with the book / found different.
    pub ticker_checks: u64,
    pub ticker_mismatches: u64,
}

/// Tickers waiting for the book to reach their `u`, per symbol.
const PENDING_TICKERS: usize = 32;

struct SymbolBook {
    symbol: Symbol,
    book: SyncedBook,
    pending: [Option<BookTicker>; PENDING_TICKERS],
}

/// Parser plus per-symbol synced books.
pub struct MarketData {
    parser: Parser,
    books: Vec<SymbolBook>,
    sizes: BookSizes,
    /// Index of the book that last buffered a diff while unsynced.
    last_waiting: Option<usize>,
    verify_tickers: bool,
    /// Set by [`MarketData::with_symbols`]: no books for other symbols.
    locked: bool,
    stats: FeedStats,
    last_error: Option<ParseError>,
}

impl MarketData {
    pub fn new(sizes: BookSizes) -> Self {
        Self {
            parser: Parser::new(sizes.max_message_levels, 512 << 10),
            books: Vec::with_capacity(sizes.max_symbols),
            sizes,
            last_waiting: None,
            verify_tickers: false,
            locked: false,
            stats: FeedStats::default(),
            last_error: None,
        }
    }

    /// Creates the books of known symbols up front, so nothing is allocated
    /// when their first message arrives.
    /// After this, frames for any other symbol are counted
    /// ([`FeedStats::unknown_symbols`]) and ignored rather than given a book,
    /// so the hot path never allocates for a name the network made up.
    pub fn with_symbols(sizes: BookSizes, symbols: &[Symbol]) -> Self {
        let mut md = Self::new(sizes);
        for &s in symbols {
            md.book_index(s);
        }
        md.locked = true;
        md
    }

    /// Turns on bookTicker-versus-book checks (see the module doc).
    pub fn verify_tickers(&mut self, on: bool) {
        self.verify_tickers = on;
    }

    pub fn stats(&self) -> &FeedStats {
        &self.stats
    }

    /// The most recent parse error, for a message naming what was wrong.
    pub fn last_error(&self) -> Option<ParseError> {
        self.last_error
    }

    /// Sum of every book's sync counters.
    pub fn sync_stats(&self) -> SyncStats {
        let mut t = SyncStats::default();
        for b in &self.books {
            let s = b.book.stats();
            t.applied += s.applied;
            t.buffered += s.buffered;
            t.stale += s.stale;
            t.gaps += s.gaps;
            t.crossed += s.crossed;
            t.resyncs += s.resyncs;
            t.snapshots += s.snapshots;
            t.snapshots_too_old += s.snapshots_too_old;
            t.snapshots_unused += s.snapshots_unused;
            t.overlaps += s.overlaps;
            t.buffer_overflows += s.buffer_overflows;
        }
        t
    }

    /// Levels dropped because a book side was full, all books.
    pub fn dropped_levels(&self) -> u64 {
        self.books.iter().map(|b| b.book.book().dropped_levels()).sum()
    }

    /// The synced book of `symbol`, if tracked.
    pub fn book(&self, symbol: Symbol) -> Option<&SyncedBook> {
        self.books.iter().find(|b| b.symbol == symbol).map(|b| &b.book)
    }

    /// Mutable access, for the feed to invalidate a book on reconnect.
    pub fn book_mut(&mut self, symbol: Symbol) -> Option<&mut SyncedBook> {
        self.books.iter_mut().find(|b| b.symbol == symbol).map(|b| &mut b.book)
    }

    /// Symbols tracked, in the order first seen.
    pub fn symbols(&self) -> impl Iterator<Item = Symbol> + '_ {
        self.books.iter().map(|b| b.symbol)
    }

    fn book_index(&mut self, symbol: Symbol) -> Option<usize> {
        if let Some(i) = self.books.iter().position(|b| b.symbol == symbol) {
            return Some(i);
        }
        if self.locked {
            self.stats.unknown_symbols += 1;
            return None;
        }
        if self.books.len() >= self.sizes.max_symbols {
            self.stats.symbols_over_limit += 1;
            return None;
        }
        let s = self.sizes;
        self.books.push(SymbolBook {
            symbol,
            book: SyncedBook::new(s.capacity, s.buffer_events, s.buffer_levels),
            pending: [None; PENDING_TICKERS],
        });
        Some(self.books.len() - 1)
    }

    /// Parses one frame and applies it. Events go to `sink`.
    #[inline]
    pub fn on_frame(&mut self, frame: &[u8], sink: &mut impl FnMut(Event<'_>)) {
        if let Some(msg) = self.parse(frame) {
            self.apply(msg, sink);
        }
    }

    /// Parses one frame (counted); `None` when it was rejected. Level lists
    /// stay in the parser until the next call. Split from [`Self::apply`] so
    /// the hot path can time the two stages apart.
    #[inline]
    pub fn parse(&mut self, frame: &[u8]) -> Option<Msg> {
        self.stats.frames += 1;
        match self.parser.parse(frame) {
            Ok(m) => Some(m),
            Err(e) => {
                self.reject(e);
                None
            }
        }
    }

    /// Applies the message [`Self::parse`] just returned.
    #[inline]
    pub fn apply(&mut self, msg: Msg, sink: &mut impl FnMut(Event<'_>)) {
        match msg {
            Msg::Diff(d) => {
                self.stats.depth_messages += 1;
                let Some(i) = self.book_index(d.symbol) else {
                    return;
                };
                let verify = self.verify_tickers;
                let entry = &mut self.books[i];
                let (symbol, pending, stats) = (entry.symbol, &mut entry.pending, &mut self.stats);
                entry.book.on_diff(&d, self.parser.bids(), self.parser.asks(), &mut |a, book| {
                    if verify {
                        check_pending(pending, a.update_id, book, stats);
                    }
                    sink(Event::Depth { symbol, applied: a, book });
                });
                if entry.book.wants_snapshot() {
                    self.last_waiting = Some(i);
                }
            }
            Msg::Partial(p) => {
                self.stats.depth_messages += 1;
                let Some(i) = self.book_index(p.symbol) else {
                    return;
                };
                let verify = self.verify_tickers;
                let entry = &mut self.books[i];
                let (symbol, pending, stats) = (entry.symbol, &mut entry.pending, &mut self.stats);
                entry.book.on_partial(&p, self.parser.bids(), self.parser.asks(), &mut |a, book| {
                    if verify {
                        check_pending(pending, a.update_id, book, stats);
                    }
                    sink(Event::Depth { symbol, applied: a, book });
                });
            }
            Msg::Snapshot(s) => {
                self.stats.snapshot_messages += 1;
                let target = if s.symbol.is_empty() {
                    self.snapshot_target(s.last_update_id, s.transact_time != 0 || s.event_time != 0)
                } else {
                    self.book_index(s.symbol)
                };
                match target {
                    Some(i) => self.apply_snapshot(i, &s, sink),
                    None => self.stats.orphan_snapshots += 1,
                }
            }
            Msg::BookTicker(t) => {
                self.stats.tickers += 1;
                if self.verify_tickers {
                    self.check_ticker(t);
                }
                sink(Event::Ticker(t));
            }
            Msg::Trade(t) => {
                self.stats.trades += 1;
                sink(Event::Trade(t));
            }
            Msg::ServerShutdown { .. } => {
                self.stats.server_shutdowns += 1;
                sink(Event::ServerShutdown);
            }
            Msg::Reconnect { .. } => {
                self.stats.reconnect_markers += 1;
                for i in 0..self.books.len() {
                    self.invalidate_nth(i);
                }
                self.last_waiting = None;
            }
            Msg::Skipped => self.stats.skipped += 1,
        }
    }

    /// Applies a REST snapshot body fetched for `symbol` (the live path).
    pub fn on_snapshot_for(
        &mut self,
        symbol: Symbol,
        body: &[u8],
        sink: &mut impl FnMut(Event<'_>),
    ) -> Result<(), ParseError> {
        self.stats.frames += 1;
        match self.parser.parse(body) {
            Ok(Msg::Snapshot(s)) => {
                self.stats.snapshot_messages += 1;
                if let Some(i) = self.book_index(symbol) {
                    self.apply_snapshot(i, &s, sink);
                }
                Ok(())
            }
            Ok(_) => Err(self.reject(ParseError::Unrecognised)),
            Err(e) => Err(self.reject(e)),
        }
    }

    /// Counts a body that parsed but was not what the caller expected.
    pub fn reject_unrecognised(&mut self) {
        self.reject(ParseError::Unrecognised);
    }

    /// Invalidates the `i`-th book (in [`Self::symbols`] order): reconnects.
    pub fn invalidate_nth(&mut self, i: usize) {
        if let Some(b) = self.books.get_mut(i) {
            b.book.invalidate();
            b.pending = [None; PENDING_TICKERS];
        }
    }

    fn reject(&mut self, e: ParseError) -> ParseError {
        self.stats.rejected += 1;
        self.stats.rejected_by_kind[e.kind()] += 1;
        self.last_error = Some(e);
        e
    }

    /// Which book a symbol-less snapshot line belongs to (see the module doc).
    /// `usdm`: the body carries USD-M's `E`/`T`.
    fn snapshot_target(&self, last_update_id: u64, usdm: bool) -> Option<usize> {
        let waiting = self.last_waiting.filter(|&i| self.books[i].book.wants_snapshot());
        // USD-M update ids are shared across symbols, so another book's
        // buffered range often "fits" a snapshot that is not its own: only
        // the position in the file can tell, and mmbot's recorder writes each
        // snapshot right after a depth line of its own symbol.
        if usdm {
            if let Some(i) = waiting {
                return Some(i);
            }
        }
        // Spot ids are per symbol: the book whose buffered diffs can take
        // this snapshot (first U - 1 <= id <= last u), the last waiting one first.
        let fits = |b: &SymbolBook| {
            b.book.wants_snapshot()
                && b.book
                    .buffered_range()
                    .is_some_and(|(first, last)| first <= last_update_id.saturating_add(1) && last_update_id <= last)
        };
        if let Some(i) = waiting.filter(|&i| fits(&self.books[i])) {
            return Some(i);
        }
        if let Some(i) = self.books.iter().position(fits) {
            return Some(i);
        }
        // None fits: the waiting book takes it (and counts it as too old or
        // unused), so a lone symbol still resyncs as documented.
        match waiting {
            Some(i) => Some(i),
            None => self.books.iter().position(|b| b.book.wants_snapshot()).or(if self.books.len() == 1 {
                Some(0)
            } else {
                None
            }),
        }
    }

    fn apply_snapshot(&mut self, i: usize, s: &Snapshot, sink: &mut impl FnMut(Event<'_>)) {
        let verify = self.verify_tickers;
        let entry = &mut self.books[i];
        let (symbol, pending, stats) = (entry.symbol, &mut entry.pending, &mut self.stats);
        entry.book.on_snapshot(s, self.parser.bids(), self.parser.asks(), &mut |a, book| {
            if verify {
                check_pending(pending, a.update_id, book, stats);
            }
            sink(Event::Depth { symbol, applied: a, book });
        });
    }

    fn check_ticker(&mut self, t: BookTicker) {
        let Some(i) = self.books.iter().position(|b| b.symbol == t.symbol) else {
            return;
        };
        let entry = &mut self.books[i];
        let id = entry.book.update_id();
        if entry.book.is_synced() && t.update_id == id {
            compare(&t, entry.book.book(), &mut self.stats);
        } else if t.update_id > id || !entry.book.is_synced() {
            // Not there yet: hold it until the book reaches its id.
            if let Some(slot) = entry.pending.iter_mut().find(|p| p.is_none()) {
                *slot = Some(t);
            }
        }
    }
}

fn compare(t: &BookTicker, book: &Book, stats: &mut FeedStats) {
    stats.ticker_checks += 1;
    if book.best_bid() != Some(t.bid) || book.best_ask() != Some(t.ask) {
        stats.ticker_mismatches += 1;
    }
}

/// After the book reached `update_id`: checks tickers for exactly that id and
/// forgets those it has passed (their state fell inside one event).
fn check_pending(pending: &mut [Option<BookTicker>], update_id: u64, book: &Book, stats: &mut FeedStats) {
    for slot in pending.iter_mut() {
        if let Some(t) = *slot {
            if t.update_id == update_id {
                compare(&t, book, stats);
                *slot = None;
            } else if t.update_id < update_id {
                *slot = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(sym: &str, big_u: u64, u: u64, price: &str) -> String {
        format!(
            r#"{{"stream":"{}@depth","data":{{"e":"depthUpdate","E":1,"s":"{}","U":{big_u},"u":{u},"b":[["{price}","1"]],"a":[]}}}}"#,
            sym.to_lowercase(),
            sym
        )
    }

    #[test]
    fn a_bare_snapshot_goes_to_the_book_whose_buffer_it_fits() {
        let mut md = MarketData::new(BookSizes::default());
        let mut noop = |_: Event<'_>| {};
        md.on_frame(diff("AAA", 100, 110, "1.00").as_bytes(), &mut noop);
        md.on_frame(diff("BBB", 50, 60, "50.00").as_bytes(), &mut noop);
        md.on_frame(br#"{"lastUpdateId":105,"bids":[["0.99","1"]],"asks":[["1.01","1"]]}"#, &mut noop);
        let (a, b) = (Symbol::new(b"AAA"), Symbol::new(b"BBB"));
        assert!(md.book(a).unwrap().is_synced());
        assert!(!md.book(b).unwrap().is_synced());
        assert_eq!(md.book(a).unwrap().update_id(), 110);
    }

    fn usdm_diff(sym: &str, big_u: u64, u: u64, pu: u64, price: &str) -> String {
        format!(
            r#"{{"stream":"{}@depth","data":{{"e":"depthUpdate","E":1,"T":1,"s":"{}","U":{big_u},"u":{u},"pu":{pu},"b":[["{price}","1"]],"a":[]}}}}"#,
            sym.to_lowercase(),
            sym
        )
    }

    #[test]
    fn a_usdm_snapshot_goes_to_the_book_of_the_line_before_it() {
        // USD-M ids are shared: AAA's snapshot (L=115) "fits" BBB's buffered
        // range too. The recorder writes it right after an AAA line.
        let mut md = MarketData::new(BookSizes::default());
        let mut noop = |_: Event<'_>| {};
        md.on_frame(usdm_diff("BBB", 100, 120, 99, "50.00").as_bytes(), &mut noop);
        md.on_frame(usdm_diff("AAA", 110, 118, 109, "1.00").as_bytes(), &mut noop);
        md.on_frame(br#"{"lastUpdateId":115,"E":1,"T":1,"bids":[["0.99","1"]],"asks":[["1.01","1"]]}"#, &mut noop);
        let (a, b) = (Symbol::new(b"AAA"), Symbol::new(b"BBB"));
        assert!(md.book(a).unwrap().is_synced(), "AAA got its own snapshot");
        assert!(!md.book(b).unwrap().is_synced());
        assert_eq!(md.book(a).unwrap().update_id(), 118);
    }

    #[test]
    fn configured_symbols_lock_out_others() {
        let mut md = MarketData::with_symbols(BookSizes::default(), &[Symbol::new(b"BTCUSDT")]);
        let mut noop = |_: Event<'_>| {};
        for i in 0..5 {
            md.on_frame(diff(&format!("X{i}"), 1, 2, "1").as_bytes(), &mut noop);
        }
        assert_eq!(md.symbols().count(), 1);
        assert_eq!(md.stats().unknown_symbols, 5);
    }
}
