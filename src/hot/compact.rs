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
//!
//! Levels are read with SSE on x86-64 ([`simd`]: both numbers of a level
//! at once), byte by byte elsewhere and wherever the SSE read declines.
//!
//! The same reader serves bookTickers ([`read_ticker`], [`ticker_update_id`]):
//! the live book check reads only `u` and the four top fields, and only `u`
//! for a ticker the book has already passed.

use crate::hot::fixed::{parse_fixed, parse_fixed_quoted, parse_uint_prefix, Price, Qty};
use crate::hot::msg::Level;

#[cfg(all(target_arch = "x86_64", target_feature = "ssse3", target_feature = "sse4.1"))]
mod simd;

/// The level `["P","Q"]` at the start of `s` read with SSE ([`simd`]):
/// price, quantity and length through its `]`. `None` where the build has
/// no SSE reader or the level is outside its narrow shape: then read it
/// byte by byte, which decides (same values and length wherever both read).
#[inline(always)]
pub(crate) fn level_sse(s: &[u8]) -> Option<(i64, i64, usize)> {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3", target_feature = "sse4.1"))]
    return simd::level(s);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "ssse3", target_feature = "sse4.1")))]
    {
        let _ = s;
        None
    }
}

/// Header fields of a diff read by [`read_diff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

    /// A non-negative integer of 1 to 19 digits (no leading '+', '-', '.',
    /// 'e', no leading zero), read with SWAR where 16 bytes follow.
    #[inline(always)]
    fn uint(&mut self) -> Option<u64> {
        let (v, n) = parse_uint_prefix(self.s.get(self.i..)?)?;
        self.i += n;
        Some(v)
    }

    /// A string without escapes: the bytes between the quotes. Keys,
    /// symbols and numbers are short, so one 8-byte SWAR test finds the end
    /// of most without a `memchr2` call (which costs more than the test).
    #[inline(always)]
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.s[self.i..];
        let end = match rest.get(..8) {
            Some(w) => match quote_or_backslash(u64::from_le_bytes(w.try_into().ok()?)) {
                8 => 8 + memchr::memchr2(b'"', b'\\', &rest[8..])?,
                e => e,
            },
            None => memchr::memchr2(b'"', b'\\', rest)?,
        };
        if rest[end] != b'"' {
            return None;
        }
        self.i += end + 1;
        Some(&rest[..end])
    }

    /// A quoted decimal read in place: the same acceptance and value as
    /// `parse_fixed(self.string()?)`, in one 8-byte load for short numbers.
    #[inline(always)]
    fn number(&mut self) -> Option<i64> {
        self.eat(b'"')?;
        let (v, end) = parse_fixed_quoted(&self.s[self.i..])?;
        self.i += end + 1;
        Some(v)
    }

    /// One level `["p","q"]`: with SSE where it takes it (see [`simd`]),
    /// else byte by byte.
    #[inline(always)]
    fn level(&mut self) -> Option<(i64, i64)> {
        if let Some((p, q, len)) = self.s.get(self.i..).and_then(level_sse) {
            self.i += len;
            return Some((p, q));
        }
        self.eat(b'[')?;
        let p = self.number()?;
        self.eat(b',')?;
        let q = self.number()?;
        self.eat(b']')?;
        Some((p, q))
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
            let (p, q) = self.level()?;
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

/// Index of the first `"` or `\\` among the 8 bytes of `w` (first byte
/// lowest), or 8. A zero-byte test flags false positives only above a true
/// match, so the lowest flag of either test is exact.
#[inline(always)]
fn quote_or_backslash(w: u64) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let hit = zero(w ^ (ONES * b'"' as u64)) | zero(w ^ (ONES * b'\\' as u64));
    (hit.trailing_zeros() / 8) as usize
}

impl<'a> Reader<'a> {
    /// The value of one header key of a diff (`e E T s U u pu`) into `d`,
    /// and the key's bit in the seen-mask; 0 for any other key (the level
    /// arrays are the caller's); `None` for a value out of the grammar.
    #[inline(always)]
    fn diff_header_field(&mut self, key: &[u8], d: &mut CompactDiff<'a>) -> Option<u16> {
        Some(match key {
            b"e" => {
                if self.string()? != b"depthUpdate" {
                    return None;
                }
                1
            }
            b"E" => {
                d.event_time = self.uint()?;
                2
            }
            b"T" => {
                d.transact_time = self.uint()?;
                4
            }
            b"s" => {
                d.symbol = self.string()?;
                if d.symbol.is_empty() || !d.symbol.iter().all(u8::is_ascii_alphanumeric) {
                    return None;
                }
                8
            }
            b"U" => {
                d.first_id = self.uint()?;
                16
            }
            b"u" => {
                d.last_id = self.uint()?;
                32
            }
            b"pu" => {
                d.prev_last_id = Some(self.uint()?);
                64
            }
            _ => 0,
        })
    }
}

/// Reads a compact diff into `bids`/`asks`, or declines with `None`.
#[inline]
pub fn read_diff<'a>(s: &'a [u8], bids: &mut Vec<Level>, asks: &mut Vec<Level>, max: usize) -> Option<CompactDiff<'a>> {
    let mut r = Reader { s, i: 0 };
    r.eat(b'{')?;
    let mut d = CompactDiff::default();
    // Bit per key seen: e E T s U u pu b a. A repeated key declines.
    let mut seen = 0u16;
    loop {
        let key = r.string()?;
        r.eat(b':')?;
        let bit = match r.diff_header_field(key, &mut d)? {
            0 if key == b"b" => {
                r.levels(bids, max)?;
                128
            }
            0 if key == b"a" => {
                r.levels(asks, max)?;
                256
            }
            0 => return None,
            bit => bit,
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

/// A diff's header and where its two level arrays lie, read without
/// reading a single level: touch-first apply ([`crate::hot::touch`]) then
/// reads the levels near the touch first, and the whole diff is read by
/// [`read_diff`] after the quote has gone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffHead<'a> {
    pub diff: CompactDiff<'a>,
    /// Byte ranges `[start, end)` of the `b` and `a` arrays' contents,
    /// brackets excluded (empty for `[]`).
    pub bids: (usize, usize),
    pub asks: (usize, usize),
}

impl Reader<'_> {
    /// Skips a level array `[...]` without reading its levels, returning
    /// the range of its contents. A well-formed level array holds only
    /// digits, `.`, `"`, `,`, `[` and `]`, so the first `a`, `b` or `}`
    /// after it is the next key (`],"a"`) or the object's end (`]}`): one
    /// single-byte SIMD search (`]` itself, in every level, would make a
    /// search for `]]` stop at every level). Anything else is caught when
    /// [`read_diff`] reads the whole frame.
    #[inline(always)]
    fn skip_levels(&mut self) -> Option<(usize, usize)> {
        self.eat(b'[')?;
        let start = self.i;
        if self.eat(b']').is_some() {
            return Some((start, start));
        }
        let rest = &self.s[start..];
        // Binance writes `b` then `a`: after the bids the next non-level
        // byte is the `a` key; after the asks, the closing brace. One
        // single-byte search each in that layout, three bytes otherwise.
        let next = start
            + match memchr::memchr(b'a', rest) {
                Some(i) if rest.get(i.wrapping_sub(2)..i) == Some(b",\"") => i,
                _ => memchr::memchr3(b'a', b'b', b'}', rest)?,
            };
        // The array's closing bracket: before `,"a"` / `,"b"`, or before `}`.
        let close = if self.s[next] == b'}' { next.checked_sub(1)? } else { next.checked_sub(3)? };
        if close <= start || self.s[close] != b']' || self.s[close - 1] != b']' {
            return None;
        }
        self.i = close + 1;
        Some((start, close))
    }
}

impl<'a> Reader<'a> {
    /// Consumes `lit` if the input continues with it.
    #[inline(always)]
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        self.s.get(self.i..)?.starts_with(lit).then(|| self.i += lit.len())
    }

    /// An alphanumeric symbol up to its closing quote (no memchr call: a
    /// symbol is a few bytes).
    #[inline(always)]
    fn symbol(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while self.s.get(self.i)?.is_ascii_alphanumeric() {
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }
}

/// The header exactly as Binance writes it, spot
/// `{"e":"depthUpdate","E":..,"s":"..","U":..,"u":..,"b":[..],"a":[..]}`
/// and USD-M (adding `"T"` after `"E"` and `"pu"` after `"u"`): literal
/// matches and digit loops, no per-key dispatch and no search per string.
/// `None` for any other layout (the general reader then tries).
#[inline(always)]
fn binance_layout(s: &[u8]) -> Option<DiffHead<'_>> {
    let mut r = Reader { s, i: 0 };
    r.lit(b"{\"e\":\"depthUpdate\",\"E\":")?;
    let event_time = r.uint()?;
    let transact_time = if r.lit(b",\"T\":").is_some() { r.uint()? } else { 0 };
    r.lit(b",\"s\":\"")?;
    let symbol = r.symbol()?;
    r.lit(b"\",\"U\":")?;
    let first_id = r.uint()?;
    r.lit(b",\"u\":")?;
    let last_id = r.uint()?;
    let prev_last_id = if r.lit(b",\"pu\":").is_some() { Some(r.uint()?) } else { None };
    r.lit(b",\"b\":")?;
    let bids = r.skip_levels()?;
    r.lit(b",\"a\":")?;
    // The asks run to the end of the object: `...]]}` (or `[]}`).
    let asks = match s.len().checked_sub(r.i + 2) {
        Some(_) if s.ends_with(b"]]}") && s[r.i] == b'[' && s.len() - 2 > r.i + 1 => (r.i + 1, s.len() - 2),
        _ => r.skip_levels()?,
    };
    r.i = s.len() - 1;
    r.eat(b'}')?;
    (r.i == s.len()).then_some(DiffHead {
        diff: CompactDiff { event_time, transact_time, symbol, first_id, last_id, prev_last_id },
        bids,
        asks,
    })
}

/// Reads a compact diff's header and locates its level arrays, or declines
/// with `None`. Same grammar for the header as [`read_diff`]; the arrays'
/// insides are not checked here.
#[inline]
pub fn read_diff_head(s: &[u8]) -> Option<DiffHead<'_>> {
    if let Some(head) = binance_layout(s) {
        return Some(head);
    }
    let mut r = Reader { s, i: 0 };
    r.eat(b'{')?;
    let mut d = CompactDiff::default();
    let (mut bids, mut asks) = ((0, 0), (0, 0));
    let mut seen = 0u16;
    loop {
        let key = r.string()?;
        r.eat(b':')?;
        let bit = match r.diff_header_field(key, &mut d)? {
            0 if key == b"b" => {
                bids = r.skip_levels()?;
                128
            }
            0 if key == b"a" => {
                asks = r.skip_levels()?;
                256
            }
            0 => return None,
            bit => bit,
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
    const REQUIRED: u16 = 1 | 16 | 32 | 128 | 256;
    (r.i == s.len() && seen & REQUIRED == REQUIRED).then_some(DiffHead { diff: d, bids, asks })
}

/// Header and top of a bookTicker read by [`read_ticker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactTicker {
    pub update_id: u64,
    pub bid: Level,
    pub ask: Level,
    /// `E` (USD-M), 0 when absent.
    pub event_time: u64,
}

/// A bookTicker value: a string (prices, symbol, `e`) or an integer (ids, times).
enum TickerValue<'a> {
    Str(&'a [u8]),
    Int(u64),
}

impl<'a> Reader<'a> {
    /// The next `"key":value` pair of a flat bookTicker object, or `None` at
    /// anything else. `first`: no comma before it.
    #[inline(always)]
    fn ticker_pair(&mut self, first: bool) -> Option<(&'a [u8], TickerValue<'a>)> {
        if !first {
            self.eat(b',')?;
        }
        let key = self.string()?;
        self.eat(b':')?;
        let value = if self.s.get(self.i) == Some(&b'"') {
            TickerValue::Str(self.string()?)
        } else {
            TickerValue::Int(self.uint()?)
        };
        Some((key, value))
    }
}

/// Just the `u` of a compact bookTicker (spot `{"u":..,...}`, USD-M
/// `{"e":"bookTicker","u":..,...}`), reading no further than that key: the
/// cheap test that lets the hot path skip tickers the book has passed.
/// `None` (decline) on any irregularity before `u`.
#[inline]
pub fn ticker_update_id(s: &[u8]) -> Option<u64> {
    let mut r = Reader { s, i: 0 };
    r.eat(b'{')?;
    let mut first = true;
    // `u` is the first or second key as Binance writes them; a few more
    // pairs are allowed before declining.
    for _ in 0..4 {
        match r.ticker_pair(first)? {
            (b"u", TickerValue::Int(u)) => return Some(u),
            (b"u", _) => return None,
            _ => first = false,
        }
    }
    None
}

/// Reads a compact bookTicker object, or declines with `None` (the caller
/// then runs the full parse, which names the error). Keys: `e` (must be
/// `bookTicker`), `u`, `s`, `b`, `B`, `a`, `A`, `E`, `T`, each at most once;
/// `u`, `b`, `B`, `a`, `A` required; nothing after the closing brace.
#[inline]
pub fn read_ticker(s: &[u8]) -> Option<CompactTicker> {
    let mut r = Reader { s, i: 0 };
    r.eat(b'{')?;
    let mut t = CompactTicker { update_id: 0, bid: Level::new(0, 0), ask: Level::new(0, 0), event_time: 0 };
    let mut seen = 0u16;
    let mut first = true;
    loop {
        let (key, value) = r.ticker_pair(first)?;
        first = false;
        let bit = match (key, value) {
            (b"e", TickerValue::Str(e)) if e == b"bookTicker" => 1,
            (b"u", TickerValue::Int(u)) => {
                t.update_id = u;
                2
            }
            (b"s", TickerValue::Str(sym)) if !sym.is_empty() && sym.iter().all(u8::is_ascii_alphanumeric) => 4,
            (b"b", TickerValue::Str(v)) => {
                t.bid.price = Price(parse_fixed(v).ok()?);
                8
            }
            (b"B", TickerValue::Str(v)) => {
                t.bid.qty = Qty(parse_fixed(v).ok()?);
                16
            }
            (b"a", TickerValue::Str(v)) => {
                t.ask.price = Price(parse_fixed(v).ok()?);
                32
            }
            (b"A", TickerValue::Str(v)) => {
                t.ask.qty = Qty(parse_fixed(v).ok()?);
                64
            }
            (b"E", TickerValue::Int(v)) => {
                t.event_time = v;
                128
            }
            (b"T", TickerValue::Int(_)) => 256,
            _ => return None,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        if r.s.get(r.i) == Some(&b'}') {
            break;
        }
    }
    r.eat(b'}')?;
    const REQUIRED: u16 = 2 | 8 | 16 | 32 | 64;
    (r.i == s.len() && seen & REQUIRED == REQUIRED).then_some(t)
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

    #[test]
    fn reads_spot_and_usdm_tickers() {
        let spot =
            br#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;
        assert_eq!(ticker_update_id(spot), Some(400900217));
        let t = read_ticker(spot).unwrap();
        assert_eq!(t.update_id, 400900217);
        assert_eq!(t.bid, Level::new(2_535_190_000, 3_121_000_000));
        assert_eq!(t.ask, Level::new(2_536_520_000, 4_066_000_000));
        let usdm = br#"{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;
        assert_eq!(ticker_update_id(usdm), Some(400900217));
        assert_eq!(read_ticker(usdm).map(|t| (t.update_id, t.event_time)), Some((400900217, 1568014460893)));
    }

    #[test]
    fn ticker_reader_declines_outside_the_grammar() {
        for s in [
            r#"{"u":1,"s":"X","b":"1","B":"1","a":"2"}"#,
            r#"{"u":1,"s":"X","b":"1","B":"1","a":"2","A":"1"} "#,
            r#"{"u":1,"u":2,"b":"1","B":"1","a":"2","A":"1"}"#,
            r#"{"u":"1","b":"1","B":"1","a":"2","A":"1"}"#,
            r#"{"u":1,"b":"x","B":"1","a":"2","A":"1"}"#,
            r#"{"e":"trade","u":1,"b":"1","B":"1","a":"2","A":"1"}"#,
            r#"{"u":1,"b":"1","B":"1","a":"2","A":"1","x":1}"#,
            r#"{"u":1,"b":"1","B":"1","a":"2","A":"1""#,
            r#"{"u":-1,"b":"1","B":"1","a":"2","A":"1"}"#,
            "",
        ] {
            assert!(read_ticker(s.as_bytes()).is_none(), "accepted {s}");
        }
        assert_eq!(ticker_update_id(br#"{"u":"1"}"#), None);
        assert_eq!(ticker_update_id(br#"{"a":"1","b":"2","c":"3","d":"4","u":5}"#), None);
    }
}
