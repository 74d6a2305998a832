//! Fixed-point prices and quantities: `i64` counts of 1e-8.
//!
//! Binance sends every price and quantity as a decimal string with at most 8
//! decimals. Going through `f64` would make book keys inexact (0.1 + 0.2 is not
//! 0.3), so the parser turns those strings straight into scaled integers and
//! [`Price`] / [`Qty`] keep them that way. Floats appear only in features and
//! scripts, never in book keys or order prices.
//!
//! Grammar accepted by [`parse_fixed`]: `DIGITS ('.' DIGITS)?` with 1 to 11
//! integer digits and 1 to 8 decimals, and a value that fits in `i64` after
//! scaling (at most `92233720368.54775807`). Anything else is a
//! [`DecimalError`]: Binance never sends signs, exponents or blanks, so such a
//! string means a broken frame, not a number to guess at.

use std::fmt;

/// Number of decimals kept.
pub const DECIMALS: u32 = 8;
/// One unit (`1.0`) in fixed-point.
pub const SCALE: i64 = 100_000_000;
/// Longest integer part accepted; values must also fit in `i64` after scaling.
pub const MAX_INT_DIGITS: usize = 11;

/// Why a decimal string was refused. Small and `Copy` so the hot path can
/// count it without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("empty decimal string")]
    Empty,
    #[error("sign in decimal string (Binance sends unsigned decimals)")]
    Sign,
    #[error("exponent in decimal string (plain decimals only)")]
    Exponent,
    #[error("byte {0:#04x} is not a digit or '.'")]
    NonDigit(u8),
    #[error("a digit is required on both sides of the decimal point")]
    MissingDigits,
    #[error("more than 8 decimals")]
    TooManyDecimals,
    #[error("more than 11 integer digits")]
    TooManyIntegerDigits,
    #[error("value above 92233720368.54775807 does not fit in fixed-point i64")]
    Overflow,
}

/// Classifies the first byte that broke the grammar.
#[cold]
fn bad_byte(b: u8) -> DecimalError {
    match b {
        b'-' | b'+' => DecimalError::Sign,
        b'e' | b'E' => DecimalError::Exponent,
        b'.' => DecimalError::MissingDigits,
        _ => DecimalError::NonDigit(b),
    }
}

/// True when all 8 bytes of `v` are ASCII digits (SWAR, after Lemire).
#[inline(always)]
fn all_digits(v: u64) -> bool {
    const HI: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    ((v & HI) | ((v.wrapping_add(0x0606_0606_0606_0606) & HI) >> 4)) == 0x3333_3333_3333_3333
}

/// Converts 8 ASCII digits, first digit in the lowest byte, to their value.
/// Three multiplies instead of eight multiply-adds. Wrapping throughout:
/// callers may convert before validating (the result is then discarded).
#[inline(always)]
fn eight_digits(v: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = v.wrapping_sub(0x3030_3030_3030_3030);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    (((v & MASK).wrapping_mul(MUL1)).wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2))) >> 32
}

/// The error for the first non-digit inside a fraction: a second '.' is a
/// stray byte, except right after the first ("1..2" lacks digits).
#[cold]
fn bad_fraction(f: &[u8]) -> DecimalError {
    match f.iter().position(|b| !b.is_ascii_digit()) {
        Some(i) if i > 0 && f[i] == b'.' => DecimalError::NonDigit(b'.'),
        Some(i) => bad_byte(f[i]),
        None => DecimalError::TooManyDecimals,
    }
}

/// Parses the fraction digits after '.', 1 to 8 of them, scaled to 8 places.
#[inline(always)]
fn parse_fraction(f: &[u8]) -> Result<u64, DecimalError> {
    let n = f.len();
    if n == 0 {
        return Err(DecimalError::MissingDigits);
    }
    if n > DECIMALS as usize {
        return Err(bad_fraction(f));
    }
    // Right-pad with '0' to exactly 8 digits: "63" becomes "63000000".
    let mut buf = [b'0'; 8];
    buf[..n].copy_from_slice(f);
    let v = u64::from_le_bytes(buf);
    if !all_digits(v) {
        return Err(bad_fraction(f));
    }
    Ok(eight_digits(v))
}

/// Per-byte mask of the bytes of `v` that are NOT ASCII digits: each such
/// byte is non-zero in the result, each digit byte is zero. Carries from the
/// add can only mark extra bytes as non-digits (never a non-digit as a
/// digit), and the fast path only acts on bytes it finds to be digits.
#[inline(always)]
fn non_digit_bytes(v: u64) -> u64 {
    const HI: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    ((v & HI) ^ THREES) | ((v.wrapping_add(0x0606_0606_0606_0606) & HI) ^ THREES)
}

/// Fast path for strings of 10+ bytes shaped `D{1,7} '.' D{8}` or with the
/// fraction ending the string: two 8-byte loads and two SWAR conversions, no
/// per-byte loop. Returns `None` for any other shape (the general path then
/// decides, including every error).
#[inline(always)]
fn parse_swar(s: &[u8]) -> Option<i64> {
    let head = u64::from_le_bytes(s.get(..8)?.try_into().ok()?);
    // Index of the first non-digit among the first 8 bytes = integer digits.
    let k = (non_digit_bytes(head).trailing_zeros() / 8) as usize;
    if k == 0 || k == 8 || s[k] != b'.' {
        return None;
    }
    // Right-align the k integer digits, '0'-filling the low bytes.
    let int_bytes = (head << ((8 - k) * 8)) | (0x3030_3030_3030_3030u64 >> (k * 8));
    let int = eight_digits(int_bytes);
    let frac = &s[k + 1..];
    let n = frac.len();
    if n == 0 || n > 8 {
        return None;
    }
    // The 8 bytes ending at the string's end hold the n fraction digits at
    // the top; shift them down and '0'-fill above. s.len() >= 8 makes the
    // load in bounds.
    let tail = u64::from_le_bytes(s[s.len() - 8..].try_into().ok()?);
    let shift = (8 - n) * 8;
    let frac_bytes = if shift == 0 { tail } else { (tail >> shift) | (0x3030_3030_3030_3030u64 << (n * 8)) };
    if non_digit_bytes(frac_bytes) != 0 {
        return None;
    }
    // int < 1e7, so the value always fits.
    Some((int * SCALE as u64 + eight_digits(frac_bytes)) as i64)
}

/// Fastest path, for the shape spot always sends: 1 to 7 integer digits and
/// exactly 8 decimals (10 to 16 bytes). The split point follows from the
/// length alone, so neither conversion waits on a search for the '.'; the
/// digit checks run beside the arithmetic instead of before it.
#[inline(always)]
fn parse_eight_decimals(s: &[u8]) -> Option<i64> {
    let n = s.len();
    if !(10..=16).contains(&n) || s[n - 9] != b'.' {
        return None;
    }
    let k = n - 9; // integer digits, 1..=7
    let head = u64::from_le_bytes(s[..8].try_into().ok()?);
    let tail = u64::from_le_bytes(s[n - 8..].try_into().ok()?);
    let int_bytes = (head << ((8 - k) * 8)) | (0x3030_3030_3030_3030u64 >> (k * 8));
    let value = eight_digits(int_bytes).wrapping_mul(SCALE as u64).wrapping_add(eight_digits(tail));
    if non_digit_bytes(int_bytes) | non_digit_bytes(tail) != 0 {
        return None;
    }
    Some(value as i64)
}

/// Eight ASCII '0's, the filler that leaves a SWAR conversion's value unchanged.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// Mask of the low `n` bytes, `n` in 1..=7.
#[inline(always)]
fn low_bytes(n: usize) -> u64 {
    (1u64 << (n * 8)) - 1
}

/// The `n` (1..=7) bytes of `s` in the low bytes of a word, first byte
/// lowest, the bytes above zero. Two overlapping loads instead of a
/// variable-length copy: every load stays inside `s` (the string may end
/// its buffer), and where they overlap they read the same bytes.
#[inline(always)]
fn load_short(s: &[u8]) -> u64 {
    let n = s.len();
    debug_assert!((1..8).contains(&n));
    if n >= 4 {
        let lo = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64;
        let hi = u32::from_le_bytes([s[n - 4], s[n - 3], s[n - 2], s[n - 1]]) as u64;
        lo | (hi << ((n - 4) * 8))
    } else if n >= 2 {
        let lo = u16::from_le_bytes([s[0], s[1]]) as u64;
        let hi = u16::from_le_bytes([s[n - 2], s[n - 1]]) as u64;
        lo | (hi << ((n - 2) * 8))
    } else {
        s[0] as u64
    }
}

/// Fast path for strings of 1 to 7 bytes (USD-M prices and quantities,
/// "2681.63", "0.010", "200.00", "10"), held in the low `n` bytes of `v`
/// with zeros above: `D+` or `D+ '.' D+`. The first non-digit found by SWAR
/// must be the '.', and nothing after it may be a non-digit. Such a string
/// has at most 7 integer digits and 6 decimals, so it always fits.
/// Returns `None` for anything else (the general path then names the error).
#[inline(always)]
fn parse_short(v: u64, n: usize) -> Option<i64> {
    debug_assert!((1..8).contains(&n));
    // Non-zero bytes: non-digits among the n bytes of the string (a carry out
    // of a byte >= 0xFA can only mark later bytes, so the lowest marked byte
    // is a real non-digit).
    let odd = non_digit_bytes(v) & low_bytes(n);
    if odd == 0 {
        // All digits: right-align them, '0'-filling the low bytes.
        let int = (v << ((8 - n) * 8)) | (ZEROS >> (n * 8));
        return Some((eight_digits(int) * SCALE as u64) as i64);
    }
    // Integer digits: the bytes before the first non-digit. A digit first,
    // a '.' next, a digit after it, and digits only to the end.
    let k = (odd.trailing_zeros() / 8) as usize;
    if k == 0 || k + 1 >= n || (v >> (k * 8)) as u8 != b'.' || odd >> ((k + 1) * 8) != 0 {
        return None;
    }
    let int = (v << ((8 - k) * 8)) | (ZEROS >> (k * 8));
    let f = n - k - 1; // decimals, 1..=5
                       // The decimals moved to the low bytes (the bytes above the string are
                       // zero), '0'-filled above: "63" becomes "63000000".
    let frac = (v >> ((k + 1) * 8)) | (ZEROS << (f * 8));
    Some((eight_digits(int) * SCALE as u64 + eight_digits(frac)) as i64)
}

/// Parses a Binance decimal string into a count of 1e-8, exactly.
/// Always inlined: the fast paths are ~30 instructions, and a call costs a
/// third of that again on the 40 strings of a typical diff.
#[inline(always)]
pub fn parse_fixed(s: &[u8]) -> Result<i64, DecimalError> {
    let n = s.len();
    if n < 8 {
        if n > 0 {
            if let Some(v) = parse_short(load_short(s), n) {
                return Ok(v);
            }
        }
        return parse_general(s);
    }
    if let Some(v) = parse_eight_decimals(s) {
        return Ok(v);
    }
    if let Some(v) = parse_swar(s) {
        return Ok(v);
    }
    parse_general(s)
}

/// Index of the first `"` among the 8 bytes of `w` (first byte lowest), or 8.
/// The zero-byte test can flag false positives only above a true match, so
/// the lowest flag is exact.
#[inline(always)]
fn first_quote(w: u64) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = w ^ (ONES * b'"' as u64);
    let hit = x.wrapping_sub(ONES) & !x & HIGH;
    (hit.trailing_zeros() / 8) as usize
}

/// Reads a quoted decimal in place: `s` starts right after the opening `"`
/// (inside a frame, so bytes follow the number). Returns the value and the
/// index of the closing `"`, or `None` where the reference reading declines:
/// a `\` or no `"` ahead, or a string [`parse_fixed`] refuses.
///
/// Same result as `memchr2(b'"', b'\\', s)` to the end of the string and
/// `parse_fixed` on it, for every input (tests: `quoted_matches_the_reference`
/// and tests/fixed_props.rs). Faster on the short strings of USD-M: one
/// 8-byte load finds the quote and holds the digits, where a `memchr2` call
/// per string costs more than the conversion. A compact reader calls this
/// instead of reading the string and then parsing it.
#[inline(always)]
pub fn parse_fixed_quoted(s: &[u8]) -> Option<(i64, usize)> {
    if let Some(head) = s.get(..8) {
        let w = u64::from_le_bytes(head.try_into().ok()?);
        let q = first_quote(w);
        if q < 8 {
            // A '\' before the quote is a non-digit: refused either way.
            if q == 0 {
                return None;
            }
            return match parse_short(w & low_bytes(q), q) {
                Some(v) => Some((v, q)),
                None => parse_fixed(&s[..q]).ok().map(|v| (v, q)),
            };
        }
        if let Some(next) = s.get(8..16) {
            let q = 8 + first_quote(u64::from_le_bytes(next.try_into().ok()?));
            if q < 16 {
                return parse_fixed(&s[..q]).ok().map(|v| (v, q));
            }
        }
    }
    parse_quoted_reference(s)
}

/// The value of the `n` (1..=7) digits in the low bytes of `w` (first digit
/// lowest; whatever lies above them is ignored).
#[inline(always)]
fn leading_digits(w: u64, n: usize) -> u64 {
    eight_digits((w << ((8 - n) * 8)) | (ZEROS >> (n * 8)))
}

/// Powers of ten up to 10^7.
const POW10: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// The JSON integer at the start of `s` (what the compact reader accepts:
/// 1 to 19 digits, no sign, no leading zero) and its length, or `None`.
/// Same result as [`parse_uint_prefix_bytewise`] for every input (tests).
///
/// Why: a diff's header carries three such numbers of 11 to 13 digits
/// (`E`, `U`, `u`), and a digit-at-a-time loop is a chain of dependent
/// multiply-adds; two 8-byte loads and SWAR conversions read up to 15
/// digits without one. Numbers of 16 digits or more, and a number within 16
/// bytes of the end of `s`, take the byte loop.
#[inline(always)]
pub fn parse_uint_prefix(s: &[u8]) -> Option<(u64, usize)> {
    let (Some(a), Some(b)) = (s.get(..8), s.get(8..16)) else { return parse_uint_prefix_bytewise(s) };
    let w0 = u64::from_le_bytes(a.try_into().ok()?);
    // Digits before the first non-digit (a carry only marks later bytes).
    let n0 = (non_digit_bytes(w0).trailing_zeros() / 8) as usize;
    let (v, n) = match n0 {
        0 => return None,
        1..=7 => (leading_digits(w0, n0), n0),
        _ => {
            let w1 = u64::from_le_bytes(b.try_into().ok()?);
            match (non_digit_bytes(w1).trailing_zeros() / 8) as usize {
                0 => (eight_digits(w0), 8),
                n1 @ 1..=7 => (eight_digits(w0) * POW10[n1] + leading_digits(w1, n1), 8 + n1),
                _ => return parse_uint_prefix_bytewise(s),
            }
        }
    };
    // JSON forbids leading zeros ("01"); decline rather than reinterpret.
    (n == 1 || s[0] != b'0').then_some((v, n))
}

/// [`parse_uint_prefix`] a digit at a time: the reference, and the path
/// for long numbers and the end of a buffer.
#[inline(never)]
pub fn parse_uint_prefix_bytewise(s: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    let mut n = 0;
    while let Some(&b) = s.get(n) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        // 19 digits always fit in u64; a 20th declines before it can overflow.
        if n == 19 {
            return None;
        }
        v = v * 10 + d as u64;
        n += 1;
    }
    (n > 0 && !(n > 1 && s[0] == b'0')).then_some((v, n))
}

/// [`parse_fixed_quoted`] the plain way: find the end of the string, then parse it.
#[cold]
#[inline(never)]
fn parse_quoted_reference(s: &[u8]) -> Option<(i64, usize)> {
    let end = memchr::memchr2(b'"', b'\\', s)?;
    if s[end] != b'"' {
        return None;
    }
    parse_fixed(&s[..end]).ok().map(|v| (v, end))
}

/// The byte-at-a-time parser that defines [`parse_fixed`]'s results: same
/// value or error for every input, only slower. Public for the differential
/// tests and the benches' baseline; the hot path calls [`parse_fixed`].
#[inline(never)]
pub fn parse_fixed_bytewise(s: &[u8]) -> Result<i64, DecimalError> {
    parse_general(s)
}

/// The byte-at-a-time parser: every shape the grammar allows, and every error.
#[inline(never)]
fn parse_general(s: &[u8]) -> Result<i64, DecimalError> {
    let Some(&first) = s.first() else {
        return Err(DecimalError::Empty);
    };
    if !first.is_ascii_digit() {
        return Err(bad_byte(first));
    }
    let mut int: u64 = 0;
    let mut i = 0;
    while i < s.len() {
        let d = s[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if i == MAX_INT_DIGITS {
            return Err(DecimalError::TooManyIntegerDigits);
        }
        int = int * 10 + d as u64;
        i += 1;
    }
    let frac = if i == s.len() {
        0
    } else if s[i] == b'.' {
        parse_fraction(&s[i + 1..])?
    } else {
        return Err(bad_byte(s[i]));
    };
    // int < 1e11, so int * 1e8 + frac < 1e19 < u64::MAX: only the i64 bound can fail.
    let v = int * SCALE as u64 + frac;
    i64::try_from(v).map_err(|_| DecimalError::Overflow)
}

/// Largest buffer [`write_fixed`] needs: sign, 11 integer digits, point, 8 decimals.
pub const MAX_FORMATTED_LEN: usize = 1 + 11 + 1 + 8;

/// Writes `v` (a count of 1e-8) as an exact decimal with trailing fractional
/// zeros trimmed ("61837.63", "3", "-0.5"), returning the bytes written.
#[inline]
pub fn write_fixed(v: i64, out: &mut [u8; MAX_FORMATTED_LEN]) -> usize {
    let neg = v < 0;
    let abs = v.unsigned_abs();
    let mut int = abs / SCALE as u64;
    let mut frac = abs % SCALE as u64;
    // Build right to left into a scratch array, then copy out.
    let mut tmp = [0u8; MAX_FORMATTED_LEN];
    let mut pos = MAX_FORMATTED_LEN;
    if frac != 0 {
        let mut digits = DECIMALS;
        while frac.is_multiple_of(10) {
            frac /= 10;
            digits -= 1;
        }
        for _ in 0..digits {
            pos -= 1;
            tmp[pos] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        pos -= 1;
        tmp[pos] = b'.';
    }
    loop {
        pos -= 1;
        tmp[pos] = b'0' + (int % 10) as u8;
        int /= 10;
        if int == 0 {
            break;
        }
    }
    if neg {
        pos -= 1;
        tmp[pos] = b'-';
    }
    let n = MAX_FORMATTED_LEN - pos;
    out[..n].copy_from_slice(&tmp[pos..]);
    n
}

/// Appends the exact decimal form of `v` to `buf` (no allocation once `buf`
/// has room).
#[inline]
pub fn push_fixed(v: i64, buf: &mut Vec<u8>) {
    let mut tmp = [0u8; MAX_FORMATTED_LEN];
    let n = write_fixed(v, &mut tmp);
    buf.extend_from_slice(&tmp[..n]);
}

/// `price * qty` in fixed-point (quote-asset units of 1e-8), exact through
/// `i128` and saturating at the `i64` bounds.
#[inline]
pub fn notional(price: i64, qty: i64) -> i64 {
    let v = price as i128 * qty as i128 / SCALE as i128;
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// `price * qty` like [`notional`], but rounded up (toward +infinity)
/// instead of toward zero: for money that must be covered (a buy's cost),
/// where rounding down could pass a balance that is 1e-8 short.
#[inline]
pub fn notional_ceil(price: i64, qty: i64) -> i64 {
    let p = price as i128 * qty as i128;
    let s = SCALE as i128;
    // Truncation already rounds a negative product up; a positive one needs
    // the remainder carried.
    let v = if p > 0 { (p + s - 1) / s } else { p / s };
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// `value * rate` where `rate` is itself fixed-point (e.g. 0.001 = 100_000),
/// exact through `i128`, rounded toward zero, saturating.
#[inline]
pub fn mul_rate(value: i64, rate: i64) -> i64 {
    notional(value, rate)
}

/// Converts to `f64` for features and scripts only (never for book keys).
#[inline]
pub fn to_f64(v: i64) -> f64 {
    v as f64 / SCALE as f64
}

macro_rules! fixed_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub i64);

        impl $name {
            pub const ZERO: Self = Self(0);

            /// Parses a Binance decimal string exactly (see [`parse_fixed`]).
            #[inline]
            pub fn parse(s: &[u8]) -> Result<Self, DecimalError> {
                parse_fixed(s).map(Self)
            }

            /// Builds from a count of 1e-8.
            #[inline]
            pub const fn from_raw(raw: i64) -> Self {
                Self(raw)
            }

            /// The count of 1e-8.
            #[inline]
            pub const fn raw(self) -> i64 {
                self.0
            }

            /// Lossy conversion for features and scripts.
            #[inline]
            pub fn to_f64(self) -> f64 {
                to_f64(self.0)
            }

            #[inline]
            pub const fn is_zero(self) -> bool {
                self.0 == 0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut tmp = [0u8; MAX_FORMATTED_LEN];
                let n = write_fixed(self.0, &mut tmp);
                // write_fixed emits ASCII only.
                f.write_str(std::str::from_utf8(&tmp[..n]).unwrap_or("?"))
            }
        }

        impl std::str::FromStr for $name {
            type Err = DecimalError;
            fn from_str(s: &str) -> Result<Self, DecimalError> {
                Self::parse(s.as_bytes())
            }
        }
    };
}

fixed_newtype!(
    /// A price in 1e-8 of the quote asset.
    Price
);
fixed_newtype!(
    /// A quantity in 1e-8 of the base asset.
    Qty
);

#[cfg(test)]
mod tests {
    /// The SWAR integer reader agrees with the byte loop on every length
    /// 0 to 22, with and without a leading zero, followed by every kind of
    /// byte, at every distance from the end of the buffer.
    #[test]
    fn uint_prefix_matches_the_byte_loop() {
        let mut rnd = crate::hot::test_rng(0x853c_49e6_748f_ea9b);
        let after = [b',', b'}', b'"', b'.', b'-', b'e', b' ', b'/', b':', 0xFF, 0x00, b'a'];
        let mut checked = 0;
        for len in 0..=22usize {
            for _ in 0..300 {
                let mut s: Vec<u8> = (0..len).map(|_| b'0' + rnd(10) as u8).collect();
                if len > 0 && rnd(4) == 0 {
                    s[0] = b'0';
                }
                if len > 0 && rnd(4) == 0 {
                    s[0] = b'1' + rnd(9) as u8;
                }
                s.push(after[rnd(after.len() as u64) as usize]);
                let tail = rnd(20) as usize;
                s.extend((0..tail).map(|_| rnd(256) as u8));
                for cut in [s.len(), len.min(s.len()), (len + 1).min(s.len())] {
                    let b = &s[..cut];
                    assert_eq!(super::parse_uint_prefix(b), super::parse_uint_prefix_bytewise(b), "{:?}", b);
                    checked += 1;
                }
            }
        }
        assert!(checked > 20_000);
        assert_eq!(super::parse_uint_prefix(b"1723161255408,\"s\":\"BTC"), Some((1_723_161_255_408, 13)));
        assert_eq!(super::parse_uint_prefix(b"9999999999999999999,xxxxxxxxxx"), Some((9_999_999_999_999_999_999, 19)));
        assert_eq!(super::parse_uint_prefix(b"99999999999999999999,xxxxxxxxx"), None);
        assert_eq!(super::parse_uint_prefix(b"0123456789012345,xxxxxxxxxxxxxx"), None);
        assert_eq!(super::parse_uint_prefix(b"0,xxxxxxxxxxxxxxxxxxxxxxxxxxxx"), Some((0, 1)));
    }

    use super::*;

    fn p(s: &str) -> Result<i64, DecimalError> {
        parse_fixed(s.as_bytes())
    }

    #[test]
    fn parses_binance_strings_exactly() {
        assert_eq!(p("61837.63"), Ok(6_183_763_000_000));
        assert_eq!(p("0.35130000"), Ok(35_130_000));
        assert_eq!(p("0.00000001"), Ok(1));
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("0.00000000"), Ok(0));
        assert_eq!(p("6195.00000000"), Ok(619_500_000_000));
        assert_eq!(p("437848"), Ok(43_784_800_000_000));
        assert_eq!(p("92233720368.54775807"), Ok(i64::MAX));
        assert_eq!(p("99999999999"), Err(DecimalError::Overflow));
        assert_eq!(p("92233720368.54775808"), Err(DecimalError::Overflow));
    }

    #[test]
    fn rejects_everything_else_with_the_right_reason() {
        assert_eq!(p(""), Err(DecimalError::Empty));
        assert_eq!(p("-1"), Err(DecimalError::Sign));
        assert_eq!(p("+1"), Err(DecimalError::Sign));
        assert_eq!(p("1e5"), Err(DecimalError::Exponent));
        assert_eq!(p("1.5E3"), Err(DecimalError::Exponent));
        assert_eq!(p(".5"), Err(DecimalError::MissingDigits));
        assert_eq!(p("5."), Err(DecimalError::MissingDigits));
        assert_eq!(p("1.123456789"), Err(DecimalError::TooManyDecimals));
        assert_eq!(p("123456789012"), Err(DecimalError::TooManyIntegerDigits));
        assert_eq!(p("12a"), Err(DecimalError::NonDigit(b'a')));
        assert_eq!(p("1.2a"), Err(DecimalError::NonDigit(b'a')));
        assert_eq!(p("1.2 "), Err(DecimalError::NonDigit(b' ')));
        assert_eq!(p(" 1"), Err(DecimalError::NonDigit(b' ')));
        assert_eq!(p("1.2.3"), Err(DecimalError::NonDigit(b'.')));
        assert_eq!(p("1.12345678x"), Err(DecimalError::NonDigit(b'x')));
        assert_eq!(p("1..2"), Err(DecimalError::MissingDigits));
    }

    #[test]
    fn formats_exactly_and_trims() {
        let f = |v: i64| Price(v).to_string();
        assert_eq!(f(6_183_763_000_000), "61837.63");
        assert_eq!(f(300_000_000), "3");
        assert_eq!(f(1), "0.00000001");
        assert_eq!(f(0), "0");
        assert_eq!(f(-50_000_000), "-0.5");
        assert_eq!(f(i64::MAX), "92233720368.54775807");
        assert_eq!(f(i64::MIN), "-92233720368.54775808");
    }

    #[test]
    fn fast_path_agrees_with_the_general_path() {
        for s in [
            "61837.63000000",
            "3.78826000",
            "0.00006547",
            "1234567.1",
            "7.6110",
            "1.5452",
            "12.12345678",
            "1234567.12345678",
            "12345678.5",
            "1.123456789",
            "1.1234567x",
            "1.12e45678",
            "-1.2345678",
            "1..2345678",
            "1.2.345678",
            "0000001.00000001",
            "1.",
            "1234567.",
        ] {
            let general = parse_general(s.as_bytes());
            for v in [parse_swar(s.as_bytes()), parse_eight_decimals(s.as_bytes())].into_iter().flatten() {
                assert_eq!(Ok(v), general, "{s}");
            }
            assert_eq!(parse_fixed(s.as_bytes()), general, "{s}");
        }
        assert_eq!(parse_swar(b"61837.63000000"), Some(6_183_763_000_000));
        assert_eq!(parse_swar(b"3.78826000"), Some(378_826_000));
        assert_eq!(parse_swar(b"0.00006547"), Some(6_547));
        assert_eq!(parse_eight_decimals(b"61837.63000000"), Some(6_183_763_000_000));
        assert_eq!(parse_eight_decimals(b"1234567.12345678"), Some(123_456_712_345_678));
        assert_eq!(parse_eight_decimals(b"12345678.1234567"), None);
        assert_eq!(parse_eight_decimals(b"1234/567.12345678"), None);
    }

    /// Strings of digits with at most one '.', every length 1..=20 and every
    /// position of the '.', digits varying with position so misplaced bytes
    /// show.
    fn every_shape() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for n in 1..=20usize {
            let digits: Vec<u8> = (0..n).map(|i| b'0' + ((i * 7 + n) % 10) as u8).collect();
            out.push(digits.clone());
            for dot in 0..n {
                let mut b = digits.clone();
                b[dot] = b'.';
                out.push(b);
            }
        }
        out
    }

    /// Bytes that break the grammar in every way the parser tells apart, and
    /// the bytes around the SWAR digit test's edges ('/' and ':' border the
    /// digits, 0xfa..=0xff carry).
    const JUNK: [u8; 16] =
        [b'-', b'+', b'e', b'E', b' ', b'.', b'/', b':', b'"', b'\\', b'a', 0, 0x7f, 0xfa, 0xff, b'0'];

    /// `parse_fixed` against the general path, and `parse_fixed_quoted`
    /// against the plain reading, with the string at the end of its buffer
    /// and inside a frame (`"` then more bytes).
    fn check_all_paths(b: &[u8]) {
        let general = parse_general(b);
        assert_eq!(parse_fixed(b), general, "{:?}", String::from_utf8_lossy(b));
        assert_eq!(parse_fixed_bytewise(b), general);
        for tail in [&b""[..], b"\"", b"\",\"1.5\"]]", b"\"0000000000000000", b"\\\"1\""] {
            let mut framed = b.to_vec();
            framed.extend_from_slice(tail);
            // The same buffer with its last bytes cut: loads must stay in bounds.
            for cut in 0..=tail.len() {
                let f = &framed[..framed.len() - cut];
                assert_eq!(parse_fixed_quoted(f), parse_quoted_reference(f), "{:?}", String::from_utf8_lossy(f));
            }
        }
    }

    #[test]
    fn fast_paths_agree_with_the_general_path_on_every_shape() {
        let mut checked = 0;
        for base in every_shape() {
            check_all_paths(&base);
            for at in 0..base.len() {
                for x in JUNK {
                    let mut b = base.clone();
                    b[at] = x;
                    check_all_paths(&b);
                    let mut b = base.clone();
                    b.insert(at, x);
                    check_all_paths(&b);
                    checked += 2;
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn short_strings_agree_exhaustively_over_a_small_alphabet() {
        // Every string of 1 to 6 bytes over digits, '.', the digit borders and
        // a carrying byte: each short-path branch with each neighbour.
        let alphabet = [b'0', b'9', b'.', b'/', b':', 0xfa, b'"'];
        let mut b = Vec::new();
        for n in 1..=6u32 {
            for mut code in 0..alphabet.len().pow(n) {
                b.clear();
                for _ in 0..n {
                    b.push(alphabet[code % alphabet.len()]);
                    code /= alphabet.len();
                }
                assert_eq!(parse_fixed(&b), parse_general(&b), "{:?}", String::from_utf8_lossy(&b));
                let q = parse_fixed_quoted(&b);
                assert_eq!(q, parse_quoted_reference(&b), "{:?}", String::from_utf8_lossy(&b));
            }
        }
    }

    #[test]
    fn short_path_reads_usdm_strings() {
        for (s, v) in [
            ("0.010", 1_000_000),
            ("2681.63", 268_163_000_000),
            ("10.229", 1_022_900_000),
            ("0.000", 0),
            ("200.00", 20_000_000_000),
            ("7", 700_000_000),
            ("1234567", 123_456_700_000_000),
            ("1.5", 150_000_000),
            ("0.00001", 1_000),
        ] {
            assert_eq!(parse_short(load_short(s.as_bytes()), s.len()), Some(v), "{s}");
            assert_eq!(parse_fixed(s.as_bytes()), Ok(v), "{s}");
            let framed = format!("{s}\",\"0.1\"]");
            assert_eq!(parse_fixed_quoted(framed.as_bytes()), Some((v, s.len())), "{s}");
        }
        assert_eq!(parse_short(load_short(b"1.2.3"), 5), None);
        assert_eq!(parse_short(load_short(b"12."), 3), None);
        assert_eq!(parse_short(load_short(b".12"), 3), None);
        assert_eq!(parse_fixed_quoted(b"1\\\"\""), None);
        assert_eq!(parse_fixed_quoted(b"\"1\""), None);
        assert_eq!(parse_fixed_quoted(b"61837.63000000\"]"), Some((6_183_763_000_000, 14)));
        assert_eq!(parse_fixed_quoted(b"92233720368.54775807\"]"), Some((i64::MAX, 20)));
        assert_eq!(parse_fixed_quoted(b"1.5"), None, "no closing quote");
    }

    #[test]
    fn notional_is_exact() {
        // 61837.63 * 0.00123 = 76.0602849
        assert_eq!(notional(6_183_763_000_000, 123_000), 7_606_028_490);
        assert_eq!(mul_rate(7_606_028_490, 100_000), 7_606_028); // 0.1% fee
        assert_eq!(notional(i64::MAX, i64::MAX), i64::MAX);
        // 0.00000001 * 0.5 = 5e-9: zero toward zero, one unit up.
        assert_eq!(notional(1, SCALE / 2), 0);
        assert_eq!(notional_ceil(1, SCALE / 2), 1);
        assert_eq!(notional_ceil(6_183_763_000_000, 123_000), 7_606_028_490);
        assert_eq!(notional_ceil(-1, SCALE / 2), 0);
        assert_eq!(notional_ceil(i64::MAX, i64::MAX), i64::MAX);
    }

    #[test]
    fn swar_matches_byte_loop_for_every_length() {
        for s in ["1", "12", "123", "1234", "12345", "123456", "1234567", "12345678"] {
            let mut expect: u64 = s.bytes().fold(0, |a, b| a * 10 + (b - b'0') as u64);
            for _ in s.len()..8 {
                expect *= 10;
            }
            assert_eq!(parse_fraction(s.as_bytes()), Ok(expect), "{s}");
        }
    }
}
