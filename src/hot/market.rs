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
//! bookTicker verification ([`TickerCheck`]): a `bookTicker` whose `u` equals
//! the book's update id must show exactly the book's best bid and ask (price
//! and quantity): it is the exchange's own word on the top of the book, and
//! the only way to notice a book that chains perfectly but is wrong (a
//! snapshot that omitted a level which later becomes best). `mmbot book`
//! counts mismatches; the trading hot path ([`TickerCheck::Resync`]) also
//! makes the book unsynced, which pulls quotes and asks for a new snapshot.
//! Tickers usually arrive before the diff that brings the book to their `u`
//! (the ticker stream is real-time, depth is batched), so a few of the newest
//! are held per book and compared when the book reaches their id; a ticker
//! the synced book has already passed can never match and is skipped after
//! reading only its `u` ([`MarketData::on_ticker_routed`]).

use crate::hot::book::Book;
use crate::hot::compact;
use crate::hot::msg::{BookTicker, Level, Msg, Snapshot, Symbol, Trade};
use crate::hot::parse::{ParseError, Parser, Routed, StreamKind};
use crate::hot::sync::{Applied, SyncConfig, SyncLoss, SyncStats, SyncedBook};

/// What to do with bookTickers whose `u` equals their book's update id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TickerCheck {
    /// Not compared.
    #[default]
    Off,
    /// Compared and counted ([`FeedStats::ticker_checks`],
    /// [`FeedStats::ticker_mismatches`]): `mmbot book`, tests.
    Count,
    /// Compared and counted; a mismatch also makes the book unsynced
    /// ([`SyncLoss::TickerMismatch`]): the trading hot path.
    Resync,
}

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
    /// bookTickers skipped after reading only their `u`: the synced book
    /// was already past it, so it could never be compared (the usual case).
    pub tickers_skipped: u64,
}

/// Tickers waiting for the book to reach their `u`, per symbol: the newest
/// win (the one matching the next diff is among the last before it arrives;
/// busy symbols send ~11 tickers per diff, and on the busy USD-M capture 8
/// slots missed 3 of 551 matches where 32 missed none).
const PENDING_TICKERS: usize = 32;

/// The newest tickers ahead of a book, oldest first: a fixed ring. Tickers
/// of one symbol arrive in `u` order, so when the book reaches an id only
/// the oldest few are resolved and the rest are not looked at.
#[derive(Clone, Copy)]
struct Pending {
    slots: [BookTicker; PENDING_TICKERS],
    head: usize,
    len: usize,
}

impl Pending {
    const EMPTY: Self = Self {
        slots: [BookTicker {
            symbol: Symbol::EMPTY,
            update_id: 0,
            bid: Level::new(0, 0),
            ask: Level::new(0, 0),
            event_time: 0,
        }; PENDING_TICKERS],
        head: 0,
        len: 0,
    };

    /// Holds `t`, dropping the oldest when full.
    #[inline]
    fn push(&mut self, t: BookTicker) {
        if self.len == PENDING_TICKERS {
            self.head = (self.head + 1) % PENDING_TICKERS;
            self.len -= 1;
        }
        self.slots[(self.head + self.len) % PENDING_TICKERS] = t;
        self.len += 1;
    }
}

struct SymbolBook {
    symbol: Symbol,
    book: SyncedBook,
    pending: Pending,
}

/// Parser plus per-symbol synced books.
pub struct MarketData {
    parser: Parser,
    books: Vec<SymbolBook>,
    sizes: BookSizes,
    /// Index of the book that last buffered a diff while unsynced.
    last_waiting: Option<usize>,
    ticker_check: TickerCheck,
    sync: SyncConfig,
    /// Receive time of the frame being applied ([`Self::set_time`]).
    now_ns: i64,
    /// Set by [`MarketData::with_symbols`]: no books for other symbols.
    locked: bool,
    stats: FeedStats,
    last_error: Option<ParseError>,
    /// The latest symbol ignored for having no book (a locked market).
    unknown_symbol: Option<Symbol>,
}

impl MarketData {
    pub fn new(sizes: BookSizes) -> Self {
        Self {
            parser: Parser::new(sizes.max_message_levels, 512 << 10),
            books: Vec::with_capacity(sizes.max_symbols),
            sizes,
            last_waiting: None,
            ticker_check: TickerCheck::Off,
            sync: SyncConfig::default(),
            now_ns: 0,
            locked: false,
            stats: FeedStats::default(),
            last_error: None,
            unknown_symbol: None,
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

    /// Turns bookTicker-versus-book counting on or off (see the module doc):
    /// [`TickerCheck::Count`] or [`TickerCheck::Off`].
    pub fn verify_tickers(&mut self, on: bool) {
        self.ticker_check = if on { TickerCheck::Count } else { TickerCheck::Off };
    }

    /// Sets what a bookTicker check does (see [`TickerCheck`]).
    pub fn set_ticker_check(&mut self, check: TickerCheck) {
        self.ticker_check = check;
    }

    pub fn ticker_check(&self) -> TickerCheck {
        self.ticker_check
    }

    /// Id-sanity and liveness limits for every book, those already created
    /// included.
    pub fn set_sync_config(&mut self, cfg: SyncConfig) {
        self.sync = cfg;
        for b in &mut self.books {
            b.book.set_config(cfg);
        }
    }

    pub fn sync_config(&self) -> SyncConfig {
        self.sync
    }

    /// Sets the receive time (ns) of the next frame: books use it to time
    /// unsynced spells and the stale rule ([`SyncConfig::stale_resync_ns`]).
    /// Callers that never set it get zero durations and no stale resyncs.
    #[inline]
    pub fn set_time(&mut self, now_ns: i64) {
        self.now_ns = now_ns;
    }

    pub fn stats(&self) -> &FeedStats {
        &self.stats
    }

    /// The most recent parse error, for a message naming what was wrong.
    pub fn last_error(&self) -> Option<ParseError> {
        self.last_error
    }

    /// Sum of every book's sync counters (see [`SyncStats::add`]), current
    /// unsynced spells measured up to the latest [`Self::set_time`].
    pub fn sync_stats(&self) -> SyncStats {
        let mut t = SyncStats::default();
        for b in &self.books {
            t.add(&b.book.stats_at(self.now_ns));
        }
        t
    }

    /// Levels dropped because a book side was full, all books.
    pub fn dropped_levels(&self) -> u64 {
        self.books.iter().map(|b| b.book.book().dropped_levels()).sum()
    }

    /// Reads every book's near-touch memory (the warm hot thread, while
    /// idle); a checksum so the reads stay.
    pub fn warm(&self) -> u64 {
        self.books.iter().fold(0u64, |sum, b| sum.wrapping_add(b.book.book().warm()))
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

    /// The latest symbol whose frames were ignored for having no book (see
    /// [`Market::with_symbols`]): what a run quoting nothing names.
    pub fn unknown_symbol(&self) -> Option<Symbol> {
        self.unknown_symbol
    }

    fn book_index(&mut self, symbol: Symbol) -> Option<usize> {
        if let Some(i) = self.books.iter().position(|b| b.symbol == symbol) {
            return Some(i);
        }
        if self.locked {
            self.stats.unknown_symbols += 1;
            self.unknown_symbol = Some(symbol);
            return None;
        }
        if self.books.len() >= self.sizes.max_symbols {
            self.stats.symbols_over_limit += 1;
            return None;
        }
        let s = self.sizes;
        self.books.push(SymbolBook {
            symbol,
            book: SyncedBook::with_config(s.capacity, s.buffer_events, s.buffer_levels, self.sync),
            pending: Pending::EMPTY,
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

    /// Touch-first, before the quote: whether a bookTicker held for
    /// exactly `update_id` (the diff being quoted on) disagrees with
    /// `symbol`'s top as it is now. Changes nothing: the caller then
    /// finishes the diff before quoting, and the check made when the diff
    /// is applied decides (the top read so far could be the inexact one).
    // Out of line: the idle rehearsal (`HotPath::warm`) runs this same
    // code, so it is what is in cache when a diff comes.
    #[inline(never)]
    pub fn ticker_disagrees(&self, symbol: Symbol, update_id: u64) -> bool {
        if self.ticker_check == TickerCheck::Off {
            return false;
        }
        let Some(entry) = self.books.iter().find(|b| b.symbol == symbol) else { return false };
        let (p, book) = (&entry.pending, entry.book.book());
        (0..p.len)
            .map(|k| &p.slots[(p.head + k) % PENDING_TICKERS])
            .any(|t| t.update_id == update_id && (book.best_bid() != Some(t.bid) || book.best_ask() != Some(t.ask)))
    }

    /// Whether the last frame parsed was a diff read by the strict compact
    /// reader (see [`Parser::last_was_compact`]).
    #[inline]
    pub fn parsed_compactly(&self) -> bool {
        self.parser.last_was_compact()
    }

    /// Bid levels of the last depth message parsed, in the order sent.
    #[inline]
    pub fn parser_bids(&self) -> &[Level] {
        self.parser.bids()
    }

    /// Ask levels of the last depth message parsed, in the order sent.
    #[inline]
    pub fn parser_asks(&self) -> &[Level] {
        self.parser.asks()
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
                let verify = self.ticker_check != TickerCheck::Off;
                let entry = &mut self.books[i];
                entry.book.set_time(self.now_ns);
                let (symbol, pending, stats) = (entry.symbol, &mut entry.pending, &mut self.stats);
                let mut mismatch = false;
                entry.book.on_diff(&d, self.parser.bids(), self.parser.asks(), &mut |a, book| {
                    if verify && pending.len > 0 {
                        mismatch |= check_pending(pending, a.update_id, book, stats);
                    }
                    sink(Event::Depth { symbol, applied: a, book });
                });
                self.after_check(i, mismatch);
                if self.books[i].book.wants_snapshot() {
                    self.last_waiting = Some(i);
                }
            }
            Msg::Partial(p) => {
                self.stats.depth_messages += 1;
                let Some(i) = self.book_index(p.symbol) else {
                    return;
                };
                let verify = self.ticker_check != TickerCheck::Off;
                let entry = &mut self.books[i];
                entry.book.set_time(self.now_ns);
                let (symbol, pending, stats) = (entry.symbol, &mut entry.pending, &mut self.stats);
                let mut mismatch = false;
                entry.book.on_partial(&p, self.parser.bids(), self.parser.asks(), &mut |a, book| {
                    if verify && pending.len > 0 {
                        mismatch |= check_pending(pending, a.update_id, book, stats);
                    }
                    sink(Event::Depth { symbol, applied: a, book });
                });
                self.after_check(i, mismatch);
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
                if self.ticker_check != TickerCheck::Off {
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
            b.book.set_time(self.now_ns);
            b.book.invalidate();
            b.pending = Pending::EMPTY;
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
        let verify = self.ticker_check != TickerCheck::Off;
        let entry = &mut self.books[i];
        entry.book.set_time(self.now_ns);
        let (symbol, pending, stats) = (entry.symbol, &mut entry.pending, &mut self.stats);
        let mut mismatch = false;
        entry.book.on_snapshot(s, self.parser.bids(), self.parser.asks(), &mut |a, book| {
            if verify && pending.len > 0 {
                mismatch |= check_pending(pending, a.update_id, book, stats);
            }
            sink(Event::Depth { symbol, applied: a, book });
        });
        self.after_check(i, mismatch);
    }

    /// After a book event: a ticker mismatch found while applying it makes
    /// the book unsynced when [`TickerCheck::Resync`] is on. Done after the
    /// event (the book is borrowed while it is applied), before the caller
    /// quotes from it.
    #[inline]
    fn after_check(&mut self, i: usize, mismatch: bool) {
        if mismatch && self.ticker_check == TickerCheck::Resync {
            let entry = &mut self.books[i];
            entry.book.lose_sync(SyncLoss::TickerMismatch);
            entry.pending = Pending::EMPTY;
        }
    }

    /// The cheap live check of a bookTicker frame, `r` being the frame
    /// split by [`crate::hot::parse::route`] (the hot path routes each frame once): a
    /// `<sym>@bookTicker` payload is read with the compact reader, only its
    /// `u` at first. A ticker the synced book has passed is skipped there
    /// ([`FeedStats::tickers_skipped`]); one at the book's id is compared now;
    /// one ahead of it is held until the book reaches its id. No
    /// [`Event::Ticker`] is produced (the hot path does not use them).
    ///
    /// Returns false, having done nothing, when the check is off or the
    /// frame is not a compact bookTicker frame: the caller then parses it
    /// fully (which also reports a malformed one).
    #[inline]
    pub fn on_ticker_routed(&mut self, r: &Routed<'_>) -> bool {
        if self.ticker_check == TickerCheck::Off || r.kind != StreamKind::BookTicker {
            return false;
        }
        let payload = r.payload;
        let Some(u) = compact::ticker_update_id(payload) else { return false };
        let symbol = Symbol::new(r.symbol);
        let Some(i) = self.books.iter().position(|b| b.symbol == symbol) else {
            // No book for it (the full parse would count it the same way).
            self.stats.frames += 1;
            self.stats.tickers += 1;
            self.stats.tickers_skipped += 1;
            return true;
        };
        let book = &self.books[i].book;
        if book.is_synced() && u < book.update_id() {
            self.stats.frames += 1;
            self.stats.tickers += 1;
            self.stats.tickers_skipped += 1;
            return true;
        }
        let Some(c) = compact::read_ticker(payload) else { return false };
        self.stats.frames += 1;
        self.stats.tickers += 1;
        let event_time = c.event_time.min(i64::MAX as u64) as i64;
        self.ticker_at(i, BookTicker { symbol, update_id: c.update_id, bid: c.bid, ask: c.ask, event_time });
        true
    }

    fn check_ticker(&mut self, t: BookTicker) {
        let Some(i) = self.books.iter().position(|b| b.symbol == t.symbol) else {
            return;
        };
        self.ticker_at(i, t);
    }

    /// Compares `t` with book `i` now, holds it, or forgets it.
    #[inline]
    fn ticker_at(&mut self, i: usize, t: BookTicker) {
        let entry = &mut self.books[i];
        let id = entry.book.update_id();
        if entry.book.is_synced() && t.update_id == id {
            let mismatch = compare(&t, entry.book.book(), &mut self.stats);
            self.after_check(i, mismatch);
        } else if t.update_id > id || !entry.book.is_synced() {
            // Not there yet: hold it until the book reaches its id.
            entry.pending.push(t);
        } else {
            self.stats.tickers_skipped += 1;
        }
    }
}

/// Compares a ticker with the book's top; true on a mismatch.
#[inline]
fn compare(t: &BookTicker, book: &Book, stats: &mut FeedStats) -> bool {
    stats.ticker_checks += 1;
    let mismatch = book.best_bid() != Some(t.bid) || book.best_ask() != Some(t.ask);
    stats.ticker_mismatches += mismatch as u64;
    mismatch
}

/// After the book reached `update_id`: checks tickers for exactly that id and
/// forgets those it has passed (their state fell inside one event). True if
/// one disagreed with the book.
#[inline]
fn check_pending(pending: &mut Pending, update_id: u64, book: &Book, stats: &mut FeedStats) -> bool {
    let mut mismatch = false;
    while pending.len > 0 {
        let t = &pending.slots[pending.head];
        if t.update_id > update_id {
            break;
        }
        if t.update_id == update_id {
            mismatch |= compare(t, book, stats);
        }
        pending.head = (pending.head + 1) % PENDING_TICKERS;
        pending.len -= 1;
    }
    mismatch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::parse::route;

    impl MarketData {
        /// [`MarketData::on_ticker_routed`] of a whole frame.
        fn on_ticker_frame(&mut self, frame: &[u8]) -> bool {
            route(frame).is_some_and(|r| self.on_ticker_routed(&r))
        }
    }

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

    fn t(u: u64) -> BookTicker {
        BookTicker { symbol: Symbol::EMPTY, update_id: u, bid: Level::new(1, 1), ask: Level::new(2, 1), event_time: 0 }
    }

    #[test]
    fn pending_tickers_keep_the_newest_and_resolve_from_the_oldest() {
        let mut p = Pending::EMPTY;
        for u in 1..=(PENDING_TICKERS as u64 + 3) {
            p.push(t(u));
        }
        assert_eq!((p.len, p.slots[p.head].update_id), (PENDING_TICKERS, 4));
        let mut book = Book::with_capacity(64);
        book.load(&[Level::new(1, 1)], &[Level::new(2, 1)]);
        let mut stats = FeedStats::default();
        assert!(!check_pending(&mut p, 10, &book, &mut stats));
        assert_eq!((stats.ticker_checks, p.len, p.slots[p.head].update_id), (1, PENDING_TICKERS - 7, 11));
        book.load(&[Level::new(1, 2)], &[Level::new(2, 1)]);
        assert!(check_pending(&mut p, 11, &book, &mut stats));
        assert_eq!(stats.ticker_mismatches, 1);
    }

    fn spot_snapshot(md: &mut MarketData) {
        let mut noop = |_: Event<'_>| {};
        md.on_frame(diff("BTCUSDT", 100, 110, "1.00").as_bytes(), &mut noop);
        md.on_frame(br#"{"lastUpdateId":105,"bids":[["0.99","1"]],"asks":[["1.01","1"]]}"#, &mut noop);
        assert_eq!(md.book(Symbol::new(b"BTCUSDT")).unwrap().update_id(), 110);
    }

    fn ticker_frame(u: u64, bid: &str) -> String {
        format!(
            r#"{{"stream":"btcusdt@bookTicker","data":{{"u":{u},"s":"BTCUSDT","b":"{bid}","B":"1","a":"1.01","A":"1"}}}}"#
        )
    }

    #[test]
    fn counting_mode_never_unsyncs_and_resync_mode_does() {
        for (check, synced_after) in [(TickerCheck::Count, true), (TickerCheck::Resync, false)] {
            let mut md = MarketData::new(BookSizes::default());
            md.set_ticker_check(check);
            spot_snapshot(&mut md);
            assert!(md.on_ticker_frame(ticker_frame(110, "0.98").as_bytes()));
            let b = md.book(Symbol::new(b"BTCUSDT")).unwrap();
            assert_eq!((md.stats().ticker_mismatches, b.is_synced()), (1, synced_after), "{check:?}");
        }
    }

    #[test]
    fn the_light_path_declines_what_it_cannot_read_and_the_full_parse_reports_it() {
        let mut md = MarketData::new(BookSizes::default());
        assert!(!md.on_ticker_frame(ticker_frame(110, "1.00").as_bytes()), "off by default");
        md.set_ticker_check(TickerCheck::Resync);
        spot_snapshot(&mut md);
        let frames = md.stats().frames;
        assert!(!md.on_ticker_frame(diff("BTCUSDT", 111, 112, "1.00").as_bytes()));
        let bad = ticker_frame(111, "x1.00");
        assert!(!md.on_ticker_frame(bad.as_bytes()));
        assert_eq!(md.stats().frames, frames, "declined frames are not counted twice");
        md.on_frame(bad.as_bytes(), &mut |_| {});
        assert_eq!(md.stats().rejected, 1);
        // Passed by the book: only `u` is read, the rest may be anything.
        assert!(md.on_ticker_frame(br#"{"stream":"btcusdt@bookTicker","data":{"u":100,"s":"BTCUSDT","b":"?"}}"#));
        assert_eq!((md.stats().tickers_skipped, md.stats().ticker_checks), (1, 0));
    }
}
