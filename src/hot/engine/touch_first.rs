//! Touch-first apply on the hot path: the engine's side of
//! [`crate::hot::touch`]. A diff of the traded book that is next in sequence
//! is quoted after the levels that can reach its top; the whole frame is
//! read, checked and applied after the quote, and anything it does not
//! confirm makes the book resync. Apart from [`super`] so the engine's
//! common path (parse, apply, decide) reads on its own.

use super::{HotEvent, HotPath, Ticks};
use crate::hot::compact::{self, DiffHead};
use crate::hot::msg::{DepthDiff, Msg, Symbol};
use crate::hot::parse::{Routed, StreamKind};
use crate::hot::strategy::{Strategy, DECISION_DEPTH};
use crate::hot::sync::SyncLoss;
use crate::hot::touch::{self, TouchMode, TouchRead};

impl<S: Strategy> HotPath<S> {
    /// The payload of `frame` (`routed`: its stream, if combined) if it is
    /// a diff of the traded symbol.
    #[inline(always)]
    pub(super) fn traded_diff<'f>(&self, frame: &'f [u8], routed: Option<&Routed<'f>>) -> Option<(&'f [u8], Symbol)> {
        let traded = self.traded?;
        match routed {
            Some(r) => (r.kind == StreamKind::Diff && traded.as_str().as_bytes().eq_ignore_ascii_case(r.symbol))
                .then_some((r.payload, traded)),
            None => frame.starts_with(b"{\"e\":\"depthUpdate\"").then_some((frame, traded)),
        }
    }

    /// The header of `frame` (`routed`: its stream, if combined) if it is
    /// a diff of the traded symbol that the strict reader reads: its
    /// payload, symbol, located header and ids.
    #[inline(always)]
    pub(super) fn traded_head<'f>(
        &self,
        frame: &'f [u8],
        routed: Option<&Routed<'f>>,
    ) -> Option<(&'f [u8], Symbol, DiffHead<'f>, DepthDiff)> {
        let (payload, symbol) = self.traded_diff(frame, routed)?;
        let head = compact::read_diff_head(payload)?;
        if !symbol.as_str().as_bytes().eq_ignore_ascii_case(head.diff.symbol) {
            return None;
        }
        let time = |v: u64| v.min(i64::MAX as u64) as i64;
        let diff = DepthDiff {
            symbol,
            event_time: time(head.diff.event_time),
            transact_time: time(head.diff.transact_time),
            first_id: head.diff.first_id,
            last_id: head.diff.last_id,
            prev_last_id: head.diff.prev_last_id,
        };
        Some((payload, symbol, head, diff))
    }

    /// Levels a side touch-first keeps exact before the quote: what the
    /// features read, or what the strategy reads if deeper.
    #[inline(always)]
    pub(super) fn touch_k(&self) -> usize {
        self.touch_levels.max(self.strategy.book_depth().min(DECISION_DEPTH))
    }

    /// Touch-first apply of a diff of the traded book (see
    /// [`HotPath::set_touch_levels`]). False when it did not apply (not a
    /// diff of the traded book, not next in sequence, not readable by the
    /// strict reader, a side unsorted): the frame then takes the full path,
    /// which, levels being idempotent, is right whatever was applied here.
    #[inline]
    pub(super) fn touch_first(
        &mut self,
        frame: &[u8],
        routed: Option<&Routed<'_>>,
        recv_ns: i64,
        t_in: u64,
        out: &mut impl FnMut(HotEvent<'_>),
    ) -> bool {
        let Some((payload, symbol, head, diff)) = self.traded_head(frame, routed) else { return false };
        let k = self.touch_k();
        let Some(synced) = self.md.book_mut(symbol) else { return false };
        synced.set_time(recv_ns);
        if !synced.would_apply(&diff) {
            return false;
        }
        let t_parsed = self.clock.now();
        // From here levels may be in the book: a decline leaves the frame
        // to the whole-diff path, which must read this same diff.
        self.touch_dirty = true;
        let read = touch::apply_touch(payload, &head, synced.touch_book(), k, self.side_orders, TouchMode::Apply);
        let crossed = synced.book().is_crossed();
        let Some(read) = read else {
            self.stats.touch_declined += 1;
            self.side_orders.forget();
            return false;
        };
        // A crossed top (the whole diff crosses too: the top is exact) goes
        // the whole-diff way, which loses sync and pulls without asking the
        // strategy. A bookTicker for this very id that disagrees with the
        // top: the whole diff first, and the check made as it is applied
        // decides (the book loses sync before any quote is made on it).
        if crossed || self.md.ticker_disagrees(symbol, diff.last_id) {
            self.stats.touch_declined += 1;
            return false;
        }
        self.touch_dirty = false;
        // The sample of this quote, and no other, gets the rest's figures.
        self.last_sample = None;
        let t_book = self.clock.now();
        self.note_exchange_time(diff.event_time, Some(symbol), recv_ns);
        self.decide_at(symbol, Some(diff.last_id), recv_ns, Ticks { t_in, t_parsed, t_book }, true, out);
        self.touch_rest(frame, symbol, read, recv_ns, out);
        true
    }

    /// Whether the whole-frame parse just made read the diff touch-first
    /// read part of: a diff of the traded book, read from the same bytes by
    /// the strict compact reader (so its ids and level arrays are the ones
    /// walked; a frame only simd-json accepts, e.g. with a repeated key,
    /// may carry other levels).
    #[inline]
    pub(super) fn same_diff_read(&self, msg: &Option<Msg>) -> bool {
        self.md.parsed_compactly() && matches!(msg, Some(Msg::Diff(d)) if Some(d.symbol) == self.traded)
    }

    /// Touch-first put levels of a frame into the traded book that the
    /// whole frame then did not confirm (unreadable, or not the same diff):
    /// the book holds part of a diff, so it is missing updates. It resyncs
    /// and the quotes are pulled.
    #[cold]
    pub(super) fn drop_partial_diff(&mut self, recv_ns: i64, out: &mut impl FnMut(HotEvent<'_>)) {
        let Some(symbol) = self.traded else { return };
        if let Some(b) = self.md.book_mut(symbol) {
            b.lose_sync(SyncLoss::Gap);
        }
        let now = self.clock.now();
        self.decide(symbol, recv_ns, Ticks { t_in: now, t_parsed: now, t_book: now }, false, out);
    }

    /// The rest of a touch-first diff, after its quote: the whole diff read
    /// (validating every byte) and applied, its book and trade events out,
    /// and a new quote if the rest reached the top after all or the whole
    /// diff left the book untrustworthy.
    #[inline]
    fn touch_rest(
        &mut self,
        frame: &[u8],
        symbol: Symbol,
        read: TouchRead,
        recv_ns: i64,
        out: &mut impl FnMut(HotEvent<'_>),
    ) {
        let t_rest = self.clock.now();
        let msg = self.md.parse(frame);
        if !self.same_diff_read(&msg) {
            self.drop_partial_diff(recv_ns, out);
            return;
        }
        let Some(msg) = msg else { return };
        let t_parsed = self.clock.now();
        let levels = (self.md.parser_bids().len() + self.md.parser_asks().len()) as u32;
        let exact = read.tail_is_beyond(self.md.parser_bids(), self.md.parser_asks());
        self.apply_msg(msg, recv_ns, out);
        let t_applied = self.clock.now();
        self.stats.touch_first += 1;
        self.stats.touch_levels_before += read.applied() as u64;
        self.stats.touch_levels_total += u64::from(levels);
        if let Some(s) = self.last_sample.as_mut() {
            s.rest_parse = self.clock.ns(t_rest, t_parsed);
            s.rest_apply = self.clock.ns(t_parsed, t_applied);
            s.levels = levels;
        }
        let synced = self.md.book(symbol).is_some_and(|b| b.is_synced());
        if exact {
            self.side_orders.learn(&read);
        } else {
            self.side_orders.forget();
            if synced {
                self.stats.touch_requotes += 1;
            }
        }
        // A crossed book pulls (lost sync); an inexact top quotes again.
        if !synced || !exact {
            self.decide(symbol, recv_ns, Ticks { t_in: t_rest, t_parsed, t_book: t_applied }, !exact, out);
        }
    }
}
