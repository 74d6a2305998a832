//! Decimal strings <-> fixed-point `i64` with 8 decimals (1e-8), the double's own
//! arithmetic (deliberately not mmbot's `src/hot/fixed.rs`, so a shared bug cannot hide).
//! Binance sends prices and quantities as JSON strings with up to 8 decimals
//! (rest-api.md §Exchange information: `baseAssetPrecision: 8`).

/// 1.0 in fixed point.
pub const ONE: i64 = 100_000_000;

/// Why a decimal string was refused; the API maps these to -1100 / -1111 (errors.md §11xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not `^[0-9]{1,20}(\.[0-9]{1,20})?$` (errors.md §-1100 ILLEGAL_CHARS).
    Illegal,
    /// More than 8 decimals that are not zero (errors.md §-1111 BAD_PRECISION).
    TooPrecise,
}

/// Parses `"123.45600000"` into fixed point. Refuses signs, exponents and overflow.
pub fn parse(s: &str) -> Result<i64, DecimalError> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() || int.len() > 20 || frac.len() > 20 || (s.contains('.') && frac.is_empty()) {
        return Err(DecimalError::Illegal);
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::Illegal);
    }
    if frac.len() > 8 && frac[8..].bytes().any(|b| b != b'0') {
        return Err(DecimalError::TooPrecise);
    }
    let mut v: i128 = 0;
    for b in int.bytes() {
        v = v * 10 + i128::from(b - b'0');
        if v > i128::from(i64::MAX) {
            return Err(DecimalError::Illegal);
        }
    }
    let mut f: i128 = 0;
    for i in 0..8 {
        let d = frac.as_bytes().get(i).map_or(0, |b| b - b'0');
        f = f * 10 + i128::from(d);
    }
    let total = v * i128::from(ONE) + f;
    i64::try_from(total).map_err(|_| DecimalError::Illegal)
}

/// Formats with exactly 8 decimals, as Binance prints balances and order fields.
pub fn fmt(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:08}", a / ONE as u64, a % ONE as u64)
}

/// `a * b` in fixed point, rounded half away from zero to 1e-8 (saturating).
pub fn mul(a: i64, b: i64) -> i64 {
    let p = i128::from(a) * i128::from(b);
    let half = i128::from(ONE) / 2;
    let q = if p >= 0 { (p + half) / i128::from(ONE) } else { (p - half) / i128::from(ONE) };
    q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// `a * b` rounded up (used for what must be locked: never lock too little).
pub fn mul_ceil(a: i64, b: i64) -> i64 {
    let p = i128::from(a) * i128::from(b);
    let one = i128::from(ONE);
    let q = if p >= 0 { (p + one - 1) / one } else { p / one };
    q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// `a / b` in fixed point, rounded half up; 0 when `b == 0`.
pub fn div(a: i64, b: i64) -> i64 {
    if b == 0 {
        return 0;
    }
    let n = i128::from(a) * i128::from(ONE);
    let d = i128::from(b);
    let q = (n + d / 2) / d;
    q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}
