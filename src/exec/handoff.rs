//! How a quote crosses from the hot thread to the exec thread: the quote and
//! its tick as words for the latest-value slot ([`crate::ring::latest`]).
//!
//! Why words: the slot's writer only stores, and a value made of atomic
//! words can be read while it is being written without undefined behaviour
//! (a torn read is caught by the slot's sequence). A one-level quote is 12
//! words, two cache lines; each ladder level behind the best adds two.
//!
//! Layout: word 0 holds which best levels are present (bits 0 and 1) and
//! the ladder's depth per side (bits 8-15 bids, 16-23 asks); words 1-4 the
//! symbol; 5-6 the best bid, 7-8 the best ask (price, quantity; 0 when
//! absent); 9 the time; 10 the book update id; 11 the tick; then the
//! ladder's bids and asks behind the best, two words each.

use crate::exec::{Ladder, Quote, Side};
use crate::hot::fixed::{Price, Qty};
use crate::hot::msg::{Level, Symbol};
use crate::hot::strategy::MAX_LEVELS;
use crate::ring::latest::{Packed, Words};

/// Words before the ladder.
const HEAD: usize = 12;
/// Ladder levels a side can hold behind the best.
const DEEPER: usize = MAX_LEVELS - 1;

fn put_level(w: &Words<'_>, at: usize, level: Option<Level>) {
    let l = level.unwrap_or_default();
    w.set(at, l.price.0 as u64);
    w.set(at + 1, l.qty.0 as u64);
}

fn get_level(w: &Words<'_>, at: usize) -> Level {
    Level { price: Price(w.get(at) as i64), qty: Qty(w.get(at + 1) as i64) }
}

impl Packed for (Quote, Price) {
    const WORDS: usize = HEAD + 2 * 2 * DEEPER;

    #[inline(always)]
    fn pack(&self, w: &Words<'_>) {
        let (q, tick) = self;
        let (bids, asks) = (q.deeper.side(Side::Buy), q.deeper.side(Side::Sell));
        let head = q.bid.is_some() as u64
            | (q.ask.is_some() as u64) << 1
            | (bids.len() as u64) << 8
            | (asks.len() as u64) << 16;
        w.set(0, head);
        for (i, word) in q.symbol.to_words().into_iter().enumerate() {
            w.set(1 + i, word);
        }
        put_level(w, 5, q.bid);
        put_level(w, 7, q.ask);
        w.set(9, q.time_ns as u64);
        w.set(10, q.update_id);
        w.set(11, tick.0 as u64);
        for (i, level) in bids.iter().chain(asks).enumerate() {
            put_level(w, HEAD + 2 * i, Some(*level));
        }
    }

    #[inline(always)]
    fn unpack(w: &Words<'_>) -> Option<Self> {
        let head = w.get(0);
        let (n_bids, n_asks) = (((head >> 8) & 0xFF) as usize, ((head >> 16) & 0xFF) as usize);
        if head >> 24 != 0 || head & 0xFC != 0 || n_bids > DEEPER || n_asks > DEEPER {
            return None;
        }
        let symbol = Symbol::from_words([w.get(1), w.get(2), w.get(3), w.get(4)])?;
        let bid = (head & 1 == 1).then(|| get_level(w, 5));
        let ask = (head & 2 == 2).then(|| get_level(w, 7));
        // A ladder stands only behind a best level of its side.
        if (bid.is_none() && n_bids > 0) || (ask.is_none() && n_asks > 0) {
            return None;
        }
        let mut deeper = Ladder::NONE;
        for i in 0..n_bids + n_asks {
            let side = if i < n_bids { Side::Buy } else { Side::Sell };
            deeper.push(side, get_level(w, HEAD + 2 * i));
        }
        let quote = Quote { symbol, bid, ask, deeper, time_ns: w.get(9) as i64, update_id: w.get(10) };
        Some((quote, Price(w.get(11) as i64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::latest::latest;

    fn quote(bid: Option<(i64, i64)>, ask: Option<(i64, i64)>, bids: usize, asks: usize) -> Quote {
        let mut q = Quote::pulled(Symbol::new(b"btcusdt"), 1_700_000_000_123_456_789, 77_001);
        q.bid = bid.map(|(p, s)| Level::new(p, s));
        q.ask = ask.map(|(p, s)| Level::new(p, s));
        for i in 0..bids {
            q.deeper.push(Side::Buy, Level::new(100 - i as i64, 3 + i as i64));
        }
        for i in 0..asks {
            q.deeper.push(Side::Sell, Level::new(200 + i as i64, 5 + i as i64));
        }
        q
    }

    fn shapes() -> Vec<(Quote, Price)> {
        let mut all = vec![
            (quote(None, None, 0, 0), Price(1)),
            (quote(Some((99, 1)), None, 0, 0), Price(1_000_000)),
            (quote(None, Some((-5, i64::MAX)), 0, 0), Price(0)),
            (quote(Some((i64::MIN, -1)), Some((i64::MAX, 0)), 0, 0), Price(-7)),
            (quote(Some((99, 1)), Some((101, 2)), DEEPER, DEEPER), Price(1)),
            (quote(Some((99, 1)), Some((101, 2)), 3, 0), Price(1)),
            (quote(Some((99, 1)), Some((101, 2)), 0, 2), Price(1)),
        ];
        let mut odd = quote(Some((1, 1)), Some((2, 2)), 1, 1);
        odd.symbol = Symbol::new(b"A1234567890123456789012345678901"[..31].as_ref());
        all.push((odd, Price(5)));
        let mut empty = quote(Some((1, 1)), None, 0, 0);
        empty.symbol = Symbol::EMPTY;
        all.push((empty, Price(5)));
        all
    }

    #[test]
    fn every_quote_shape_round_trips_through_the_slot() {
        let (tx, mut rx) = latest::<(Quote, Price)>();
        for v in shapes() {
            tx.publish(&v);
            assert_eq!(rx.latest(), Some(v));
        }
        // Values follow one another in the same words: a short one after a
        // long one reads as itself.
        let (long, short) = (shapes()[4], shapes()[1]);
        tx.publish(&long);
        tx.publish(&short);
        assert_eq!((rx.latest(), rx.superseded()), (Some(short), 1));
    }

    #[test]
    fn symbols_round_trip_as_words() {
        for name in [&b""[..], b"BTCUSDT", b"1000SHIBUSDT", &[b'Z'; Symbol::MAX_LEN]] {
            let s = Symbol::new(name);
            assert_eq!(Symbol::from_words(s.to_words()), Some(s));
        }
        let mut w = Symbol::new(b"ETHUSDT").to_words();
        w[0] = (w[0] & !0xFF) | 40; // a length over MAX_LEN
        assert_eq!(Symbol::from_words(w), None);
        let mut w = Symbol::new(b"ETHUSDT").to_words();
        w[0] = (w[0] & !0xFF00) | (u64::from(b'-') << 8); // a byte no symbol holds
        assert_eq!(Symbol::from_words(w), None);
    }

    #[test]
    fn random_words_unpack_without_panicking() {
        use crate::ring::latest::with_words;
        // Words as a torn read could leave them: unpacking refuses or
        // returns some value, and never panics.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2_000 {
            let mut words = [0u64; <(Quote, Price)>::WORDS];
            for w in words.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *w = x;
            }
            // Half the cases with a plausible head, so the deeper checks run.
            if x & 1 == 0 {
                words[0] &= 0x0007_0703;
                words[1] &= 0xFF00;
            }
            let _ = with_words(&words, <(Quote, Price)>::unpack);
        }
    }
}
