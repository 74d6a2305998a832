//! Touch-first apply: the levels of a diff that can reach the top of the
//! book are read and applied before the quote; the rest of the frame after.
//!
//! Why: on a BTCUSDT-sized stream a diff carries 22 levels a side at the
//! median and hundreds at p99, most of them thousands of ticks from the
//! touch. The quote depends only on the top `k` levels a side (what the
//! features and the strategy read), so reading and applying the far levels
//! before quoting puts ~75 ns a level on the tick-to-quote path for nothing.
//!
//! How it stays exact:
//! - A side is read from its best end: Binance does not promise an order
//!   inside `b` and `a` (FACTS.md, "Do not assume an ordering inside `b`";
//!   spot sends both sides best-first, USD-M sends bids worst-first), so the
//!   first and last levels say which end is best, and the walk starts there.
//! - The walk stops at the first level with at least `k` levels strictly
//!   better than it already in the book ([`Book::bid_beyond`], a count
//!   carried down the side rather than a walk from the touch per level): every
//!   later level of a sorted side is worse still, so none of them can change
//!   the top `k`.
//! - The levels read must be strictly sorted; a side that is not declines
//!   the whole touch-first read (the caller applies the whole diff before
//!   quoting, as without it).
//! - After the quote the whole diff is read and applied through the normal
//!   path (applying a level twice is applying it once), and the levels not
//!   read before the quote are checked against the stop price
//!   ([`TouchRead::tail_is_beyond`]): a level that would have reached the top
//!   means the quote was made on an inexact top, and the caller quotes again.
//!
//! Nothing here allocates, and nothing panics on any input: every problem
//! is a decline (`None`).

use crate::hot::book::Book;
use crate::hot::compact::DiffHead;
use crate::hot::fixed::{parse_fixed_quoted, Price, Qty};
use crate::hot::msg::Level;

/// Which end of a side's list the best level is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    BestFirst,
    BestLast,
}

/// Which end of each side's list was best in the last diff read exactly:
/// a stream keeps its order (spot: both best-first; USD-M: bids
/// worst-first), so reading both ends of every side to find it again is
/// skipped. A wrong guess costs nothing in exactness: the walk or the check
/// after the whole diff finds the order broken, and the caller forgets the
/// guess ([`SideOrders::forget`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideOrders {
    bids: Option<bool>,
    asks: Option<bool>,
}

impl SideOrders {
    /// Keeps the orders `read` found (after its diff proved exact).
    /// Sides of one level (or none) say nothing about the order.
    pub fn learn(&mut self, read: &TouchRead) {
        if read.bids.order_found {
            self.bids = Some(read.bids.order_best_first);
        }
        if read.asks.order_found {
            self.asks = Some(read.asks.order_best_first);
        }
    }

    pub fn forget(&mut self) {
        *self = Self::default();
    }
}

/// What touch-first read of one side: how many levels (from its best end)
/// were applied, and the price it stopped at (`None`: it read them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideRead {
    order_best_first: bool,
    /// The order came from comparing two levels (not a guess, nor a side
    /// of one level).
    order_found: bool,
    pub applied: usize,
    pub stop: Option<Price>,
}

/// What touch-first read of a diff, for the check after the whole diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TouchRead {
    pub bids: SideRead,
    pub asks: SideRead,
}

impl TouchRead {
    /// Levels applied before the quote, both sides.
    pub fn applied(&self) -> usize {
        self.bids.applied + self.asks.applied
    }

    /// True when every level of the whole diff (`bids`, `asks` in the order
    /// sent) that was not applied before the quote lies beyond the stop
    /// price of its side: then the top `k` the quote saw was the top after
    /// the whole diff.
    pub fn tail_is_beyond(&self, bids: &[Level], asks: &[Level]) -> bool {
        fn tail<'l>(side: &SideRead, levels: &'l [Level]) -> &'l [Level] {
            let n = levels.len();
            let h = side.applied.min(n);
            if side.order_best_first {
                &levels[h..]
            } else {
                &levels[..n - h]
            }
        }
        let bids_ok = match self.bids.stop {
            None => tail(&self.bids, bids).is_empty(),
            Some(stop) => tail(&self.bids, bids).iter().all(|l| l.price <= stop),
        };
        let asks_ok = match self.asks.stop {
            None => tail(&self.asks, asks).is_empty(),
            Some(stop) => tail(&self.asks, asks).iter().all(|l| l.price >= stop),
        };
        bids_ok && asks_ok
    }
}

/// Reads `["price","qty"]` starting at `at`; returns it and the index after
/// its closing bracket.
#[inline(always)]
fn level_at(s: &[u8], at: usize) -> Option<(Level, usize)> {
    let rest = s.get(at..)?;
    // With SSE where it takes the level (the same values and length as
    // below, which decides everything else).
    if let Some((price, qty, len)) = crate::hot::compact::level_sse(rest) {
        return Some((Level { price: Price(price), qty: Qty(qty) }, at + len));
    }
    let body = rest.strip_prefix(b"[\"")?;
    // Each number read in place up to its closing quote (one 8-byte load
    // for short numbers, no search per string).
    let (price, p_end) = parse_fixed_quoted(body)?;
    let after = body[p_end..].strip_prefix(b"\",\"")?;
    let (qty, q_end) = parse_fixed_quoted(after)?;
    if after.get(q_end + 1) != Some(&b']') {
        return None;
    }
    // `at` + `["` + price + `","` + qty + `"]`
    let end = at + 2 + p_end + 3 + q_end + 2;
    Some((Level { price: Price(price), qty: Qty(qty) }, end))
}

/// Yields a side's levels from one end of its array contents `[lo, hi)`.
struct Walk<'a> {
    s: &'a [u8],
    lo: usize,
    hi: usize,
    order: Order,
}

impl Walk<'_> {
    #[inline(always)]
    fn next(&mut self) -> Option<Option<Level>> {
        if self.lo >= self.hi {
            return Some(None);
        }
        match self.order {
            Order::BestFirst => {
                let (l, end) = level_at(self.s, self.lo)?;
                if end > self.hi {
                    return None;
                }
                self.lo = if end == self.hi {
                    end
                } else {
                    if self.s[end] != b',' {
                        return None;
                    }
                    end + 1
                };
                Some(Some(l))
            }
            Order::BestLast => {
                let start = self.lo + memchr::memrchr(b'[', &self.s[self.lo..self.hi])?;
                let (l, end) = level_at(self.s, start)?;
                if end != self.hi {
                    return None;
                }
                self.hi = if start == self.lo {
                    start
                } else {
                    if self.s[start - 1] != b',' {
                        return None;
                    }
                    start - 1
                };
                Some(Some(l))
            }
        }
    }
}

/// Which end of `[lo, hi)` holds the best level (`bids`: the highest
/// price), and whether two levels said so (a side of one level is read
/// from its start). `None` when the ends tie or do not read.
#[inline(always)]
fn order_of(s: &[u8], (lo, hi): (usize, usize), bids: bool) -> Option<(Order, bool)> {
    let (first, first_end) = level_at(s, lo)?;
    if first_end == hi {
        return Some((Order::BestFirst, false));
    }
    let last_start = lo + memchr::memrchr(b'[', &s[lo..hi])?;
    let (last, _) = level_at(s, last_start)?;
    let first_better = if bids { first.price > last.price } else { first.price < last.price };
    let last_better = if bids { last.price > first.price } else { last.price < first.price };
    match (first_better, last_better) {
        (true, _) => Some((Order::BestFirst, true)),
        (_, true) => Some((Order::BestLast, true)),
        _ => None,
    }
}

/// Reads one side from its best end, applying each level until one can no
/// longer reach the top `k`. `None`: malformed or not sorted, or (`mode`
/// [`TouchMode::Rehearse`]) a level the book does not already hold.
#[inline(always)]
fn read_side(
    s: &[u8],
    range: (usize, usize),
    bids: bool,
    book: &mut Book,
    k: usize,
    known: Option<bool>,
    mode: TouchMode,
) -> Option<SideRead> {
    if range.0 == range.1 {
        return Some(SideRead { order_best_first: known.unwrap_or(true), order_found: false, applied: 0, stop: None });
    }
    let (order, order_found) = match known {
        Some(true) => (Order::BestFirst, false),
        Some(false) => (Order::BestLast, false),
        None => order_of(s, range, bids)?,
    };
    let mut walk = Walk { s, lo: range.0, hi: range.1, order };
    let mut read = SideRead { order_best_first: order == Order::BestFirst, order_found, applied: 0, stop: None };
    let mut prev: Option<Price> = None;
    let mut top = if bids { book.bid_count() } else { book.ask_count() };
    while let Some(l) = walk.next()? {
        // Strictly worse than the level before it, or the order is not
        // what the ends said and nothing can be skipped.
        if prev.is_some_and(|p| if bids { l.price >= p } else { l.price <= p }) {
            return None;
        }
        prev = Some(l.price);
        let beyond = if bids { book.bid_beyond(&mut top, l.price, k) } else { book.ask_beyond(&mut top, l.price, k) };
        if beyond {
            read.stop = Some(l.price);
            return Some(read);
        }
        if mode == TouchMode::Rehearse {
            let held = if bids { book.bid_qty_at(l.price) } else { book.ask_qty_at(l.price) };
            if held != l.qty {
                return None;
            }
        }
        if bids {
            book.apply_bid_counted(l, &mut top);
        } else {
            book.apply_ask_counted(l, &mut top);
        }
        read.applied += 1;
    }
    Some(read)
}

/// What [`apply_touch`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchMode {
    /// A diff being quoted on: its near-touch levels go into the book.
    Apply,
    /// A rehearsal while idle (the warm hot thread,
    /// [`crate::hot::engine::HotPath::warm`]): the latest diff read again
    /// through this same code, so that code and the book's memory near the
    /// touch are in cache when the next diff comes. It changes nothing: a
    /// level is applied only when the book already holds exactly its
    /// quantity at its price (an update to the same quantity, or a removal
    /// of an absent price), and the first level that is not so ends the
    /// read (`None`).
    Rehearse,
}

/// Applies the levels of the diff `payload` (whose header and arrays `head`
/// located) that can reach the top `k` of `book`, best first. `None` when a
/// side is malformed or unsorted: then some levels may have been applied,
/// and the caller must apply the whole diff before reading the book. In
/// [`TouchMode::Rehearse`] also `None` at the first level the book does not
/// already hold; nothing has moved then.
///
/// Kept out of line: the idle rehearsal ([`TouchMode::Rehearse`]) warms
/// the very instructions a diff runs, not a copy inlined elsewhere.
#[inline(never)]
pub fn apply_touch(
    payload: &[u8],
    head: &DiffHead<'_>,
    book: &mut Book,
    k: usize,
    orders: SideOrders,
    mode: TouchMode,
) -> Option<TouchRead> {
    let bids = read_side(payload, head.bids, true, book, k, orders.bids, mode)?;
    let asks = read_side(payload, head.asks, false, book, k, orders.asks, mode)?;
    Some(TouchRead { bids, asks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::compact::{read_diff, read_diff_head};
    use crate::hot::fixed::SCALE;

    fn lv(p: i64, q: i64) -> Level {
        Level::new(p * SCALE, q * SCALE)
    }

    fn frame(bids: &[(i64, i64)], asks: &[(i64, i64)]) -> String {
        let side =
            |l: &[(i64, i64)]| l.iter().map(|(p, q)| format!("[\"{p}.00\",\"{q}.000\"]")).collect::<Vec<_>>().join(",");
        format!(
            "{{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"BTCUSDT\",\"U\":2,\"u\":3,\"b\":[{}],\"a\":[{}]}}",
            side(bids),
            side(asks)
        )
    }

    fn book() -> Book {
        let mut b = Book::with_capacity(1 << 12);
        let bids: Vec<Level> = (0..40).map(|i| lv(1000 - i, 1)).collect();
        let asks: Vec<Level> = (0..40).map(|i| lv(1001 + i, 1)).collect();
        b.load(&bids, &asks);
        b
    }

    fn full(b: &mut Book, f: &str) {
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        read_diff(f.as_bytes(), &mut bids, &mut asks, 1000).unwrap();
        bids.iter().for_each(|&l| {
            b.apply_bid(l);
        });
        asks.iter().for_each(|&l| {
            b.apply_ask(l);
        });
    }

    fn top(b: &Book, k: usize) -> (Vec<Level>, Vec<Level>) {
        (b.bids().take(k).collect(), b.asks().take(k).collect())
    }

    #[test]
    fn reads_only_what_reaches_the_top_and_the_rest_changes_nothing_there() {
        // Best-first bids and asks (spot), a far tail on each side.
        let f =
            frame(&[(1000, 5), (999, 0), (990, 2), (950, 1), (900, 3)], &[(1001, 0), (1003, 7), (1030, 1), (1100, 2)]);
        let head = read_diff_head(f.as_bytes()).unwrap();
        let mut b = book();
        let read = apply_touch(f.as_bytes(), &head, &mut b, 5, SideOrders::default(), TouchMode::Apply).unwrap();
        // 999 removed: the fifth best is then 995, better than 990.
        assert_eq!((read.bids.applied, read.asks.applied), (2, 2));
        assert_eq!(read.bids.stop, Some(lv(990, 0).price));
        assert_eq!(read.asks.stop, Some(lv(1030, 0).price));
        let quoted = top(&b, 5);
        full(&mut b, &f);
        assert_eq!(top(&b, 5), quoted);
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        read_diff(f.as_bytes(), &mut bids, &mut asks, 1000).unwrap();
        assert!(read.tail_is_beyond(&bids, &asks));
    }

    #[test]
    fn a_worst_first_side_is_read_from_its_end() {
        // USD-M writes bids ascending: the best bid last.
        let f = frame(&[(900, 3), (950, 1), (990, 2), (999, 0), (1000, 5)], &[(1001, 0), (1003, 7)]);
        let head = read_diff_head(f.as_bytes()).unwrap();
        let mut b = book();
        let read = apply_touch(f.as_bytes(), &head, &mut b, 5, SideOrders::default(), TouchMode::Apply).unwrap();
        assert!(!read.bids.order_best_first);
        assert_eq!(read.bids.applied, 2);
        let quoted = top(&b, 5);
        let mut reference = book();
        full(&mut reference, &f);
        assert_eq!(top(&reference, 5), quoted);
    }

    #[test]
    fn an_unsorted_side_declines_and_a_bad_tail_is_caught() {
        let f = frame(&[(1000, 5), (1002, 1), (990, 2)], &[]);
        let head = read_diff_head(f.as_bytes()).unwrap();
        assert!(apply_touch(f.as_bytes(), &head, &mut book(), 5, SideOrders::default(), TouchMode::Apply).is_none());
        // Sorted where read, but a level past the stop is better than it.
        let f = frame(&[(1000, 5), (950, 1), (999, 0), (940, 1)], &[]);
        let head = read_diff_head(f.as_bytes()).unwrap();
        let read = apply_touch(f.as_bytes(), &head, &mut book(), 5, SideOrders::default(), TouchMode::Apply).unwrap();
        assert_eq!(read.bids.stop, Some(lv(950, 0).price));
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        read_diff(f.as_bytes(), &mut bids, &mut asks, 1000).unwrap();
        assert!(!read.tail_is_beyond(&bids, &asks));
    }

    #[test]
    fn a_rehearsal_applies_only_what_the_book_already_holds() {
        let all = |b: &Book| (b.bids().collect::<Vec<_>>(), b.asks().collect::<Vec<_>>(), b.dropped_levels());
        let f =
            frame(&[(1000, 5), (999, 0), (990, 2), (950, 1), (900, 3)], &[(1001, 0), (1003, 7), (1030, 1), (1100, 2)]);
        let head = read_diff_head(f.as_bytes()).unwrap();
        // The book the diff left: every level read again is a no-op.
        let mut b = book();
        full(&mut b, &f);
        let before = all(&b);
        let applied = apply_touch(f.as_bytes(), &head, &mut b, 5, SideOrders::default(), TouchMode::Apply);
        let mut again = book();
        full(&mut again, &f);
        let rehearsed =
            apply_touch(f.as_bytes(), &head, &mut again, 5, SideOrders::default(), TouchMode::Rehearse).unwrap();
        assert_eq!(all(&again), before, "nothing moved");
        assert_eq!(Some(rehearsed), applied, "the same walk");
        // A book the diff has not reached (1000 holds 1, the diff says 5):
        // the walk ends at that level, and nothing moves.
        let mut behind = book();
        let before = all(&behind);
        assert!(apply_touch(f.as_bytes(), &head, &mut behind, 5, SideOrders::default(), TouchMode::Rehearse).is_none());
        assert_eq!(all(&behind), before);
        // Only the second level differs (999 is in the book, the diff
        // removes it): the first is read, the walk ends at the second.
        let mut b = book();
        b.apply_bid(lv(1000, 5));
        let before = all(&b);
        assert!(apply_touch(f.as_bytes(), &head, &mut b, 5, SideOrders::default(), TouchMode::Rehearse).is_none());
        assert_eq!(all(&b), before);
    }

    #[test]
    fn malformed_levels_decline_without_panicking() {
        let good = frame(&[(1000, 5), (990, 2)], &[(1003, 7), (1004, 1)]);
        for cut in 0..good.len() {
            let mut f = good.clone().into_bytes();
            f[cut] = b'x';
            if let Some(head) = read_diff_head(&f) {
                let _ = apply_touch(&f, &head, &mut book(), 5, SideOrders::default(), TouchMode::Apply);
            }
            let _ = read_diff_head(&good.as_bytes()[..cut]);
        }
    }
}
