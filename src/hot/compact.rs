//! A strict reader for the one layout that dominates the feed: Binance's
//! compact `depthUpdate` object, exactly as the exchange writes it
//! (`{"e":"depthUpdate","E":..,"s":"..","U":..,"u":..,"b":[["p","q"],..],"a":[..]}`,
//! USD-M adding `T` and `pu`).
//!
//! Why: simd-json's generic tape costs ~600 ns on a 10+10-level diff before a
//! single level is read (stage 2 alone is ~6,000 instructions, measured with
//! callgrind), which leaves no room for the conversions inside the 900 ns
//! budget. A reader that knows the layout reads each byte once.
//!
//! Safety net: it accepts only a narrow grammar (no whitespace, no escapes,
//! digits-only numbers, alphanumeric symbol, the known keys each at most once,
//! the whole input consumed). Every accepted byte is ASCII and means what a
//! JSON parser would make of it. Anything else, including every malformed
//! frame, makes it decline (`None`), and the caller runs the full validating
//! simd-json parse, which produces the error. A differential test holds the
//! two paths to the same result on real and mutated frames.

use crate::hot::fixed::{parse_fixed, Price, Qty};
use crate::hot::msg::Level;

/// Header fields of a diff read by [`read_diff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactDiff<'a> {
    pub event_time: u64,
    pub transact_time: u64,
    pub symbol: &'a [u8],
    pub first_id: u64,
    pub last_id: u64,
    pub prev_last_id: Option<u64>,
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn eat(&mut self, b: u8) -> Option<()> {
        if *self.s.get(self.i)? == b {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// A non-negative integer of 1 to 19 digits (no leading '+', '-', '.', 'e').
    #[inline(always)]
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&b) = self.s.get(self.i) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // 19 digits always fit in u64; a 20th declines before it can overflow.
            if self.i - start == 19 {
                return None;
            }
            v = v * 10 + d as u64;
            self.i += 1;
        }
        // JSON forbids leading zeros ("01"); decline rather than reinterpret.
        let n = self.i - start;
        (n > 0 && !(n > 1 && self.s[start] == b'0')).then_some(v)
    }

    /// A string without escapes: the bytes between the quotes.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.s[self.i..];
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] != b'"' {
            return None;
        }
        self.i += end + 1;
        Some(&rest[..end])
    }

    /// `[["p","q"],...]` into `out`; declines on any irregularity.
    #[inline(always)]
    fn levels(&mut self, out: &mut Vec<Level>, max: usize) -> Option<()> {
        out.clear();
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            self.eat(b'[')?;
            let p = parse_fixed(self.string()?).ok()?;
            self.eat(b',')?;
            let q = parse_fixed(self.string()?).ok()?;
            self.eat(b']')?;
            if out.len() == max {
                return None; // the full parser reports TooManyLevels
            }
            out.push(Level { price: Price(p), qty: Qty(q) });
            if self.eat(b',').is_none() {
                return self.eat(b']');
            }
        }
    }
}

/// Reads a compact diff into `bids`/`asks`, or declines with `None`.
#[inline]
pub fn read_diff<'a>(s: &'a [u8], bids: &mut Vec<Level>, asks: &mut Vec<Level>, max: usize) -> Option<CompactDiff<'a>> {
    let mut r = Reader { s, i: 0 };
    r.eat(b'{')?;
    let mut d =
        CompactDiff { event_time: 0, transact_time: 0, symbol: &[], first_id: 0, last_id: 0, prev_last_id: None };
    // Bit per key seen: e E T s U u pu b a. A repeated key declines.
    let mut seen = 0u16;
    loop {
        let key = r.string()?;
        r.eat(b':')?;
        let bit = match key {
            b"e" => {
                if r.string()? != b"depthUpdate" {
                    return None;
                }
                1
            }
            b"E" => {
                d.event_time = r.uint()?;
                2
            }
            b"T" => {
                d.transact_time = r.uint()?;
                4
            }
            b"s" => {
                d.symbol = r.string()?;
                if d.symbol.is_empty() || !d.symbol.iter().all(u8::is_ascii_alphanumeric) {
                    return None;
                }
                8
            }
            b"U" => {
                d.first_id = r.uint()?;
                16
            }
            b"u" => {
                d.last_id = r.uint()?;
                32
            }
            b"pu" => {
                d.prev_last_id = Some(r.uint()?);
                64
            }
            b"b" => {
                r.levels(bids, max)?;
                128
            }
            b"a" => {
                r.levels(asks, max)?;
                256
            }
            _ => return None,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        if r.eat(b',').is_none() {
            break;
        }
    }
    r.eat(b'}')?;
    // All of it consumed, and the fields a diff needs present.
    const REQUIRED: u16 = 1 | 16 | 32 | 128 | 256;
    (r.i == s.len() && seen & REQUIRED == REQUIRED).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Option<(CompactDiff<'_>, Vec<Level>, Vec<Level>)> {
        let (mut b, mut a) = (Vec::new(), Vec::new());
        read_diff(s.as_bytes(), &mut b, &mut a, 100).map(|d| (d, b, a))
    }

    #[test]
    fn reads_spot_and_usdm_diffs() {
        let (d, b, a) = read(
            r#"{"e":"depthUpdate","E":17,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}"#,
        )
        .unwrap();
        assert_eq!(
            (d.event_time, d.symbol, d.first_id, d.last_id, d.prev_last_id),
            (17, &b"BNBBTC"[..], 157, 160, None)
        );
        assert_eq!((b, a), (vec![Level::new(240_000, 1_000_000_000)], vec![Level::new(260_000, 10_000_000_000)]));
        let (d, b, a) =
            read(r#"{"e":"depthUpdate","E":1,"T":2,"s":"BTCUSDT","U":3,"u":4,"pu":2,"b":[],"a":[]}"#).unwrap();
        assert_eq!((d.transact_time, d.prev_last_id, b.len(), a.len()), (2, Some(2), 0, 0));
    }

    #[test]
    fn declines_everything_outside_the_narrow_grammar() {
        for s in [
            r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[] }"#,
            r#"{ "e":"depthUpdate","U":1,"u":2,"b":[],"a":[]}"#,
            r#"{"e":"depthUpdate","U":1,"u":2,"b":[],"a":[],"ps":"X"}"#,
            r#"{"e":"depthUpdate","U":1,"u":2,"b":[],"a":[],"u":3}"#,
            r#"{"e":"depthUpdate","U":1,"u":2,"b":[]}"#,
            r#"{"e":"depthUpdate","U":01,"u":2,"b":[],"a":[]}"#,
            r#"{"e":"depthUpdate","U":-1,"u":2,"b":[],"a":[]}"#,
            r#"{"e":"depthUpdate","U":1.5,"u":2,"b":[],"a":[]}"#,
            r#"{"e":"depthUpdate","U":1,"u":2,"b":[["1","2",[]]],"a":[]}"#,
            r#"{"e":"depthUpdate","U":1,"u":2,"b":[["1\u0030","2"]],"a":[]}"#,
            r#"{"e":"depthUpdate","U":1,"u":2,"b":[["1e3","2"]],"a":[]}"#,
            r#"{"e":"depthUpdate","U":1,"u":2,"b":[],"a":[]}x"#,
            r#"{"e":"bookTicker","U":1,"u":2,"b":[],"a":[]}"#,
            r#"{"e":"depthUpdate","s":"BTC-USDT","U":1,"u":2,"b":[],"a":[]}"#,
            r#"{"e":"depthUpdate","U":12345678901234567890,"u":2,"b":[],"a":[]}"#,
            r#"{"e":"depthUpdate","U":1,"u":2,"b":[["1","2"],],"a":[]}"#,
            r#"{"e":"depthUpdate","U":1,"u":2,"b":[["1","2"]"#,
            r#"{"e":"depthUpdate","U":99999999999999999999,"u":2,"b":[],"a":[]}"#,
        ] {
            assert!(read(s).is_none(), "accepted {s}");
        }
    }
}
