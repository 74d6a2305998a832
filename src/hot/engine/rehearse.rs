//! The idle rehearsal of a warm hot thread ([`HotPath::warm`] with
//! [`HotPath::enable_rehearsal`]): while no frame arrives, the latest depth
//! diff runs again through the code the next diff will run, changing
//! nothing, so that code and its data are in cache when the diff comes.
//!
//! Why: on a shared host, code and data the hot thread has not run for a
//! few milliseconds are out of its core's caches whatever it reads while
//! idle: in a paced replay of a spot capture at its recorded pace each
//! stage took 3 to 5 us against 0.1 to 0.2 us back to back, and reading the
//! book and parsing the diff again while idle took back only the parse
//! stage's share. The stages it did not run (touch-first's walk, the
//! features, the strategy, the guard) stayed cold. Running the very
//! instructions the next diff runs is what keeps them warm.
//!
//! How it changes nothing:
//! * the kept diff (the latest small diff of the traded book) goes through
//!   the same header reader and sequence test, which only read;
//! * its near-touch levels go through touch-first's walk in
//!   [`TouchMode::Rehearse`], which applies a level only when the book
//!   already holds exactly its quantity at its price (an update to the same
//!   quantity, or the removal of an absent price: nothing moves) and ends
//!   at the first level that is not so. That check is the guarantee. The
//!   walk is only tried while the book is synced at the kept diff's last
//!   update id, where (a Binance level being absolute) every level the diff
//!   set still holds;
//! * the features and the guard run on copies made for the rehearsal, and
//!   the strategy only through [`Strategy::rehearse`] (native: stateless;
//!   scripts do not rehearse); while quoting is paused the strategy is not
//!   asked, as on the real path;
//! * nothing goes out: no event, no histogram, no counter but its own.
//!
//! Bounded: one kept diff of at most [`KEPT_FRAME`] bytes, the top `k`
//! levels a side, one decision (`cargo bench --bench book -- idle_warm`
//! measures one warming). No allocation after
//! [`HotPath::enable_rehearsal`].

use super::HotPath;
use crate::hot::features::FeatureState;
use crate::hot::guard::{BookHealth, Guard};
use crate::hot::parse::{route, Parser};
use crate::hot::strategy::{MarketScope, Strategy, StrategyInput};
use crate::hot::touch::{self, TouchMode};

/// Largest depth diff kept to be rehearsed (bytes, ~150 levels): the
/// rehearsal stays short (the whole-diff parse it includes grows with the
/// diff), and larger diffs run the same code.
pub const KEPT_FRAME: usize = 4096;

/// The rehearsal's own memory, made once at start-up.
pub(super) struct Rehearsal {
    /// The latest depth diff of at most [`KEPT_FRAME`] bytes.
    kept: Vec<u8>,
    /// Parses the kept diff whole (the path a frame touch-first does not
    /// take), into its own buffers.
    parser: Parser,
    /// Copies the features and the guard run on.
    features: FeatureState,
    guard: Guard,
    /// Levels the rehearsals read again into the traded book (each a
    /// no-op).
    levels: u64,
}

impl Rehearsal {
    pub(super) fn new(max_levels: usize, features: FeatureState, guard: Guard) -> Self {
        Self {
            kept: Vec::with_capacity(KEPT_FRAME),
            parser: Parser::new(max_levels, KEPT_FRAME),
            features,
            guard,
            levels: 0,
        }
    }

    /// Keeps `frame` (a diff of the traded book, checked by the caller) if
    /// it is at most [`KEPT_FRAME`] bytes (the previous one stays
    /// otherwise). No allocation: `kept` has that capacity.
    #[inline]
    fn keep(&mut self, frame: &[u8]) {
        if frame.len() <= KEPT_FRAME.min(self.kept.capacity()) {
            self.kept.clear();
            self.kept.extend_from_slice(frame);
        }
    }

    /// Parses the kept diff whole with the rehearsal's parser. Returns a
    /// checksum.
    #[inline]
    fn parse_again(&mut self) -> u64 {
        if self.kept.is_empty() {
            return 0;
        }
        let ok = self.parser.parse(&self.kept).is_ok() as u64;
        ok.wrapping_add(self.parser.bids().len() as u64).wrapping_add(self.parser.asks().len() as u64)
    }
}

impl<S: Strategy> HotPath<S> {
    /// Turns the idle rehearsal on: [`HotPath::warm`] then also runs the
    /// latest depth diff again through touch-first's reader and walk, the
    /// features, the strategy and the guard, changing nothing (see
    /// [`crate::hot::engine`]'s `rehearse` module). Allocates its buffers:
    /// call at start-up. Frames are kept with
    /// [`HotPath::keep_for_rehearsal`].
    pub fn enable_rehearsal(&mut self) {
        let r = Rehearsal::new(self.cfg.sizes.max_message_levels, self.features, self.guard.clone());
        self.rehearsal = Some(Box::new(r));
    }

    /// After a frame is handled: keeps it for the rehearsal if it is a
    /// small depth diff of the traded book (a diff of another symbol would
    /// warm nothing the next quote uses). Nothing when the rehearsal is off.
    #[inline]
    pub fn keep_for_rehearsal(&mut self, frame: &[u8]) {
        if self.rehearsal.is_none() || frame.len() > KEPT_FRAME {
            return;
        }
        let routed = route(frame);
        if self.traded_diff(frame, routed.as_ref()).is_some() {
            if let Some(r) = self.rehearsal.as_mut() {
                r.keep(frame);
            }
        }
    }

    /// Levels the rehearsals have read again into the traded book so far
    /// (each a no-op): zero when it is off, or never found the book where
    /// the kept diff left it.
    pub fn rehearsed_levels(&self) -> u64 {
        self.rehearsal.as_ref().map_or(0, |r| r.levels)
    }

    /// One rehearsal (see the module doc). Returns a checksum, so that
    /// nothing it reads is optimised away.
    pub(super) fn rehearse(&mut self, r: &mut Rehearsal) -> u64 {
        let mut sum = r.parse_again();
        let kept = &r.kept[..];
        let routed = route(kept);
        let Some((payload, symbol, head, diff)) = self.traded_head(kept, routed.as_ref()) else { return sum };
        let k = self.touch_k();
        let Some(synced) = self.md.book_mut(symbol) else { return sum };
        // Run for its code (it only reads).
        sum = sum.wrapping_add(synced.would_apply(&diff) as u64);
        if !synced.is_synced() {
            return sum;
        }
        // Touch-first's walk, when diffs take it, and only on the book the
        // kept diff left (nothing applied since).
        if self.touch_levels > 0 && synced.update_id() == diff.last_id {
            let book = synced.touch_book();
            if let Some(read) = touch::apply_touch(payload, &head, book, k, self.side_orders, TouchMode::Rehearse) {
                r.levels += read.applied() as u64;
                sum = sum.wrapping_add(read.applied() as u64);
            }
        }
        let Some(book) = self.md.book(symbol).map(|b| b.book()) else { return sum };
        sum = sum.wrapping_add(self.md.ticker_disagrees(symbol, diff.last_id) as u64);
        let now_ns = self.last_depth_ns;
        r.features = self.features;
        let Some(f) = r.features.on_book(book, now_ns, diff.last_id) else { return sum };
        let filters = self.filters_for(book);
        if self.paused {
            return sum;
        }
        let input = strategy_input!(self, &f, book, filters, now_ns);
        let Some(decision) = self.strategy.rehearse(&input) else { return sum };
        let health = BookHealth { synced: true, crossed: book.is_crossed(), last_depth_ns: self.last_depth_ns };
        r.guard.clone_from(&self.guard);
        let quote = r.guard.check(symbol, &decision, &f, health, self.position, &filters, now_ns);
        sum.wrapping_add(quote.is_pulled() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::engine::HotConfig;
    use crate::hot::msg::Symbol;
    use crate::hot::strategy::NativeStrategy;
    use crate::stats::clock::Clock;

    #[test]
    fn only_small_diffs_of_the_traded_book_are_kept_and_parse_again_the_same() {
        let cfg = HotConfig { symbol: Some(Symbol::new(b"BTCUSDT")), ..HotConfig::default() };
        let mut hot = HotPath::new(cfg, NativeStrategy, Clock::instant());
        hot.keep_for_rehearsal(b"{}");
        assert!(hot.rehearsal.is_none(), "off until enabled");
        hot.enable_rehearsal();
        let kept = |hot: &HotPath<NativeStrategy>| hot.rehearsal.as_ref().unwrap().kept.clone();
        let diff = br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":6,"b":[["100.5","1.0"]],"a":[["101.0","2.0"],["102","0"]]}}"#;
        let ticker =
            br#"{"stream":"btcusdt@bookTicker","data":{"u":7,"s":"BTCUSDT","b":"100.5","B":"1","a":"101","A":"2"}}"#;
        let other = br#"{"stream":"ethusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":5,"u":6,"b":[],"a":[]}}"#;
        assert_eq!(hot.rehearsal.as_mut().unwrap().parse_again(), 0, "nothing kept yet");
        hot.keep_for_rehearsal(diff);
        hot.keep_for_rehearsal(ticker);
        hot.keep_for_rehearsal(other);
        assert_eq!(kept(&hot), diff.to_vec(), "tickers and other books' diffs are not kept");
        let mut big = diff.to_vec();
        big.resize(KEPT_FRAME + 1, b' ');
        hot.keep_for_rehearsal(&big);
        assert_eq!(kept(&hot), diff.to_vec(), "a diff over the limit is not kept");
        let raw = br#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":8,"b":[],"a":[]}"#;
        hot.keep_for_rehearsal(raw);
        assert_eq!(kept(&hot), raw.to_vec(), "a diff outside a combined stream is kept");
        hot.keep_for_rehearsal(diff);
        let r = hot.rehearsal.as_mut().unwrap();
        assert_eq!(r.parse_again(), 1 + 1 + 2);
        assert_eq!(r.kept.capacity(), KEPT_FRAME, "no growth");
    }
}
