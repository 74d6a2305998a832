//! One whole level, `["P","Q"]`, read with SSE (SSSE3 and SSE4.1, which
//! `.cargo/config.toml` asks for on x86-64: every x86-64 CPU since 2009).
//!
//! The decimals are most of a diff's read: the scalar SWAR conversion costs
//! about 4 to 7 ns a string, 40 strings in a 20-level diff. Here one level's
//! four quotes come from two 16-byte compares, so each number's length is
//! known before it is read and the two conversions run side by side; each
//! conversion packs its digits with one shuffle (the integer part
//! right-aligned, the fraction left-aligned, the '.' dropped) and turns them
//! into two 8-digit integers with three multiply-adds. The position of the
//! next level depends only on the quote search, not on the conversions.
//!
//! It accepts a strict subset of what the scalar reader accepts, with the
//! same values: exactly `["P","Q"]` where each number has 1 to 8 integer
//! digits and, after a '.', 1 to 8 decimals, 16 bytes at most (spot's
//! longest, 7 digits and 8 decimals, included), with 32 bytes readable from
//! the `[` (48 for a level longer than 31) and 16 from each number's start.
//! Anything else, including every error, is declined and the scalar reader
//! decides (tests below and `tests/compact_differential.rs`).

use core::arch::x86_64::{
    __m128i, _mm_add_epi8, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cvtsi128_si64, _mm_madd_epi16, _mm_maddubs_epi16,
    _mm_movemask_epi8, _mm_or_si128, _mm_packus_epi32, _mm_set1_epi16, _mm_set1_epi32, _mm_set1_epi8, _mm_setr_epi8,
    _mm_setzero_si128, _mm_shuffle_epi8, _mm_sub_epi8, _mm_subs_epu8,
};

use crate::hot::fixed::SCALE;

/// The 16 bytes of `s` from `at`, or `None` where fewer remain.
#[inline(always)]
fn load(s: &[u8], at: usize) -> Option<__m128i> {
    let bytes = s.get(at..at.checked_add(16)?)?;
    // SAFETY: `bytes` is 16 readable bytes (the `get` above), and
    // `_mm_loadu_si128` has no alignment requirement.
    Some(unsafe { core::arch::x86_64::_mm_loadu_si128(bytes.as_ptr().cast::<__m128i>()) })
}

/// Bit `i` set where byte `i` of `v` equals `b`.
#[inline(always)]
fn bytes_equal(v: __m128i, b: u8) -> u32 {
    // SAFETY: SSE2, which every x86-64 CPU has.
    unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8))) as u32 }
}

/// The decimal of `n` (at most 16) bytes at `s[at..]`: `D{1,8}` or
/// `D{1,8} '.' D{1,8}`, as a count of 1e-8; `None` for any other shape or byte (the scalar
/// parser then decides) or where 16 bytes are not readable from `at`.
#[inline(always)]
fn decimal(s: &[u8], at: usize, n: usize) -> Option<i64> {
    let v = load(s, at)?;
    if n == 0 || n > 16 {
        return None;
    }
    let dots = bytes_equal(v, b'.') & ((1u32 << n) - 1);
    // k integer digits, f decimals (0: no '.'); a second '.' is a
    // non-digit among the decimals and fails the digit test below.
    let (k, f) =
        if dots == 0 { (n, 0) } else { (dots.trailing_zeros() as usize, n - dots.trailing_zeros() as usize - 1) };
    if k == 0 || k > 8 || f > 8 || (dots != 0 && f == 0) {
        return None;
    }
    // SAFETY: this module is compiled only where the build enables SSSE3
    // and SSE4.1 for every function (`cfg` on `mod simd`), so the CPU
    // running it has them (and SSE2, as every x86-64 CPU).
    let both = unsafe {
        // Byte j of the packed digits takes byte j + k - 8 (low half: the
        // integer right-aligned; a negative index has its high bit set, which
        // makes the shuffle write 0) or byte j + k - 7 (high half: the decimals
        // after the '.', left-aligned) while j < 8 + f, and 0 above.
        let from = _mm_setr_epi8(-8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8);
        let iota = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let beyond = _mm_cmpgt_epi8(iota, _mm_set1_epi8(7 + f as i8));
        let shuffle = _mm_or_si128(_mm_add_epi8(_mm_set1_epi8(k as i8), from), beyond);
        let digits = _mm_shuffle_epi8(_mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8)), shuffle);
        // Every byte a digit value: none above 9 (unsigned: a byte below '0'
        // wraps high). The shuffle's zeros pass, and they stand for '0's.
        let over = _mm_subs_epu8(digits, _mm_set1_epi8(9));
        if _mm_movemask_epi8(_mm_cmpeq_epi8(over, _mm_setzero_si128())) != 0xFFFF {
            return None;
        }
        // Pairs (d0 * 10 + d1), then fours, then eights: lane 0 the integer
        // part, lane 1 the decimals scaled to 8 places. Each stays below 1e8,
        // inside the i16 and i32 lanes the multiply-adds use.
        let pairs = _mm_maddubs_epi16(digits, _mm_set1_epi16(0x010A));
        let fours = _mm_madd_epi16(pairs, _mm_set1_epi32(0x0001_0064));
        let eights = _mm_madd_epi16(_mm_packus_epi32(fours, fours), _mm_set1_epi32(0x0001_2710));
        _mm_cvtsi128_si64(eights) as u64
    };
    // int < 1e8, so int * 1e8 + frac < 1e16 fits.
    Some(((both & 0xFFFF_FFFF) * SCALE as u64 + (both >> 32)) as i64)
}

/// The level `["P","Q"]` at the start of `s`: its price, quantity and
/// length in bytes (through the closing `]`), or `None` where the scalar
/// reader must decide.
#[inline(always)]
pub(super) fn level(s: &[u8]) -> Option<(i64, i64, usize)> {
    let mut quotes = u64::from(bytes_equal(load(s, 0)?, b'"')) | u64::from(bytes_equal(load(s, 16)?, b'"')) << 16;
    // A level is at most 39 bytes (16-byte numbers); most fit in 32.
    if quotes.count_ones() < 4 {
        quotes |= u64::from(bytes_equal(load(s, 32)?, b'"')) << 32;
    }
    // The opening quote at 1 (after the '['), then the price's closing
    // quote, the quantity's opening quote two bytes on (after the ','),
    // and its closing quote, with the ']' after it.
    if quotes & 0b11 != 0b10 {
        return None;
    }
    let rest = quotes & (quotes - 1);
    let p_end = rest.trailing_zeros() as usize;
    let rest = rest & rest.wrapping_sub(1);
    let q_start = rest.trailing_zeros() as usize + 1;
    let rest = rest & rest.wrapping_sub(1);
    let q_end = rest.trailing_zeros() as usize;
    if q_start != p_end + 3 || q_end == 64 {
        return None;
    }
    if s[0] != b'[' || s.get(p_end + 1) != Some(&b',') || s.get(q_end + 1) != Some(&b']') {
        return None;
    }
    let price = decimal(s, 2, p_end - 2);
    let qty = decimal(s, q_start, q_end - q_start);
    Some((price?, qty?, q_end + 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::fixed::parse_fixed;
    use proptest::prelude::*;

    /// What the scalar reader makes of a level: both numbers through
    /// [`parse_fixed`] (the strings between the quotes, which hold no
    /// quote or backslash here).
    fn scalar(p: &[u8], q: &[u8]) -> Option<(i64, i64)> {
        Some((parse_fixed(p).ok()?, parse_fixed(q).ok()?))
    }

    /// The level `["p","q"]` followed by `tail`.
    fn frame(p: &[u8], q: &[u8], tail: &[u8]) -> Vec<u8> {
        [b"[\"".as_slice(), p, b"\",\"", q, b"\"]", tail].concat()
    }

    /// The SIMD read either declines or agrees with the scalar one.
    fn agrees(p: &[u8], q: &[u8], tail: &[u8]) -> Option<(i64, i64, usize)> {
        let f = frame(p, q, tail);
        let got = level(&f);
        if let Some((price, qty, used)) = got {
            assert_eq!(scalar(p, q), Some((price, qty)), "{}", String::from_utf8_lossy(&f));
            assert_eq!(used, p.len() + q.len() + 7);
        }
        got
    }

    const TAIL: &[u8] = b",[\"0.00000000\",\"0.00000000\"]]],\"a\":[]}";

    #[test]
    fn reads_spot_and_usdm_levels() {
        for (p, q) in [
            ("61837.63000000", "3.78826000"),
            ("0.00001234", "123456.00000000"),
            ("9999999.99999999", "0.00000001"),
            ("2681.63", "0.010"),
            ("2681.63", "200"),
            ("12345678", "1"),
            ("99999999.9999999", "0.5"),
        ] {
            let got = agrees(p.as_bytes(), q.as_bytes(), TAIL);
            assert!(got.is_some(), "{p} {q} should take the SIMD read");
        }
    }

    #[test]
    fn declines_what_it_does_not_read_and_what_is_wrong() {
        for (p, q) in [
            ("123456789.5", "1"),                                // 9 integer digits: the scalar reader's
            ("12345678.12345678", "1"),                          // 17 bytes: the scalar reader's
            ("1.123456789", "1"),                                // 9 decimals: an error, the scalar reader's
            ("1.", "1"),                                         // no decimals
            (".5", "1"),                                         // no integer digits
            ("1.2.3", "1"),                                      // two points
            ("1e5", "1"),                                        // exponent
            ("-1", "1"),                                         // sign
            ("", "1"),                                           // empty
            ("1", " 1"),                                         // blank
            ("1\\", "1"),                                        // escape
            ("61837.63000000", "3.788260000000000000000000000"), // past 48 bytes
        ] {
            assert!(agrees(p.as_bytes(), q.as_bytes(), TAIL).is_none(), "{p} {q} should be declined");
        }
        // Fewer than 32 bytes readable (the last level of a frame), or a
        // number without 16.
        assert!(level(&frame(b"1.5", b"2", b"]}")).is_none());
        assert!(level(&frame(b"1.5", b"2", b"]],\"a\":[]}")).is_none());
        assert!(level(&frame(b"1.5", b"2", b"]],\"a\":[[\"2.5\",\"1\"]]}")).is_some());
        // Not the level's own shape.
        for bad in [
            &b"[\"1\" ,\"2\"]"[..],
            b"[\"1\",\"2\" ]",
            b"{\"1\",\"2\"]",
            b"[\"1\",\"2\"}",
            b"[\"1\";\"2\"]",
            b"[[\"1\",\"2\"]",
        ] {
            let f = [bad, TAIL].concat();
            assert!(level(&f).is_none(), "{}", String::from_utf8_lossy(&f));
        }
    }

    /// Digits, points and a few other bytes, 0 to 17 of them.
    fn number() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(b"0123456789.......\"\\e-+ /:".to_vec()), 0..18)
    }

    /// Well-formed Binance decimals of every length the read takes.
    fn decimal_string() -> impl Strategy<Value = Vec<u8>> {
        (1usize..=9, 0usize..=9, any::<u64>()).prop_map(|(k, f, seed)| {
            let digits: Vec<u8> = (0..k + f).map(|i| b'0' + ((seed >> (i % 16 * 4)) % 10) as u8).collect();
            let mut s = digits[..k].to_vec();
            if f > 0 {
                s.push(b'.');
                s.extend_from_slice(&digits[k..]);
            }
            s
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn any_bytes_are_read_as_the_scalar_reader_reads_them(p in number(), q in number()) {
            agrees(&p, &q, TAIL);
        }

        #[test]
        fn every_well_formed_shape_is_read_exactly(p in decimal_string(), q in decimal_string()) {
            let got = agrees(&p, &q, TAIL);
            let fits = |s: &[u8]| {
                let k = s.iter().position(|&b| b == b'.').unwrap_or(s.len());
                k <= 8 && s.len() - k <= 9 && s.len() <= 16
            };
            // Every shape it should take, it takes.
            if fits(&p) && fits(&q) {
                prop_assert!(got.is_some());
            }
        }
    }
}
