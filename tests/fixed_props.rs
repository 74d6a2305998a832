//! Properties of the fixed-point decimals (`mmbot::hot::fixed`), checked against
//! an independent reference: the grammar `^[0-9]{1,11}(\.[0-9]{1,8})?$` checked
//! by hand and the value computed with `rust_decimal`.
//!
//! * parse(format(v)) == v for every non-negative `i64`;
//! * `parse_fixed` accepts exactly the strings the reference accepts, with the
//!   reference's value, and for digit-and-dot strings names the right reason;
//! * formatting equals `rust_decimal`'s normalised string;
//! * the SWAR fast paths give exactly the byte-at-a-time parser's result
//!   (`parse_fixed_bytewise`, value or error kind) for every input, and
//!   `parse_fixed_quoted` reads a quoted number in a frame exactly as finding
//!   the string's end and parsing it does.

use std::str::FromStr;

use mmbot::hot::fixed::{
    parse_fixed, parse_fixed_bytewise, parse_fixed_quoted, push_fixed, write_fixed, DecimalError, Price, Qty,
    MAX_FORMATTED_LEN,
};
use proptest::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

fn format(v: i64) -> String {
    let mut buf = [0u8; MAX_FORMATTED_LEN];
    let n = write_fixed(v, &mut buf);
    String::from_utf8(buf[..n].to_vec()).expect("write_fixed writes ASCII")
}

/// The reference: `Some(count of 1e-8)` exactly when `s` is a valid Binance
/// decimal that fits in `i64` after scaling.
fn reference(s: &[u8]) -> Option<i64> {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if int.is_empty() || int.len() > 11 || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 8 || !f.iter().all(u8::is_ascii_digit) {
            return None;
        }
    }
    let text = std::str::from_utf8(s).expect("digits and a dot are ASCII");
    let d = Decimal::from_str(text).expect("rust_decimal parses a plain decimal");
    let scaled = d * Decimal::from(100_000_000i64);
    assert!(scaled.fract().is_zero(), "{text}: at most 8 decimals scale to an integer");
    scaled.to_i64()
}

/// The error `parse_fixed` must give for a string of digits and at most one
/// dot (the shape of `[0-9]{0,13}(\.[0-9]{0,10})?`) that the reference refuses.
fn expected_error(s: &str) -> DecimalError {
    if s.is_empty() {
        return DecimalError::Empty;
    }
    let (int, frac) = match s.find('.') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if int.is_empty() {
        DecimalError::MissingDigits
    } else if int.len() > 11 {
        DecimalError::TooManyIntegerDigits
    } else if frac == Some("") {
        DecimalError::MissingDigits
    } else if frac.is_some_and(|f| f.len() > 8) {
        DecimalError::TooManyDecimals
    } else {
        DecimalError::Overflow
    }
}

/// Values with many trailing zeros as well as arbitrary ones, so trimming is
/// exercised at every length.
fn interesting_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        0i64..1_000,
        0i64..100_000_000_000,
        (0i64..1_000_000_000_000, 0u32..=9).prop_map(|(m, e)| m.saturating_mul(10i64.pow(e))),
        (0i64..=92_233_720_368).prop_map(|int| int * 100_000_000),
        (i64::MAX - 1_000_000..=i64::MAX),
        (i64::MIN..=i64::MIN + 1_000_000),
    ]
}

/// Digit strings around every length limit.
fn digit_strings() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,13}(\\.[0-9]{0,10})?",
        "[0-9]{10,12}(\\.[0-9]{7,9})?",
        // Around i64::MAX / 1e8 = 92233720368.54775807.
        "9223372036[0-9](\\.[0-9]{1,8})?",
        "92233720368\\.5477580[0-9]",
        "0{0,3}[0-9]{1,3}\\.[0-9]{1,8}",
        // Every split of the 8-byte words a SWAR parser would load.
        "[0-9]{1,8}\\.[0-9]{0,9}",
    ]
}

/// Strings with junk: signs, exponents, blanks, extra dots, other bytes.
fn junk_strings() -> impl Strategy<Value = Vec<u8>> {
    let junk_byte = prop::sample::select(vec![
        b'-', b'+', b'e', b'E', b' ', b'.', b'.', b'\t', b'x', b'/', b':', b'0', b'5', b'9', 0u8, 0x80, 0xff, b'_',
        b',',
    ]);
    prop_oneof![
        // Digit strings with junk bytes inserted or overwritten.
        (digit_strings(), prop::collection::vec((any::<usize>(), junk_byte.clone(), any::<bool>()), 1..4)).prop_map(
            |(s, edits)| {
                let mut b = s.into_bytes();
                for (i, x, insert) in edits {
                    let at = i % (b.len() + 1);
                    if insert || at == b.len() {
                        b.insert(at, x);
                    } else {
                        b[at] = x;
                    }
                }
                b
            }
        ),
        // Short strings over a small alphabet: every odd combination.
        prop::collection::vec(prop_oneof![prop::sample::select(b"0123456789".to_vec()), junk_byte], 0..16),
        // Anything at all.
        prop::collection::vec(any::<u8>(), 0..24),
    ]
}

/// How the compact reader read a quoted number before `parse_fixed_quoted`:
/// the string ends at the first `"`, a `\\` first declines, then `parse_fixed`.
fn quoted_reference(s: &[u8]) -> Option<(i64, usize)> {
    let end = memchr::memchr2(b'"', b'\\', s)?;
    if s[end] != b'"' {
        return None;
    }
    parse_fixed(&s[..end]).ok().map(|v| (v, end))
}

/// Every fast path against the byte-at-a-time parser, and the in-place
/// quoted reading against [`quoted_reference`] at the end of a buffer and
/// inside a frame (the loads near the end of a buffer must stay in bounds).
fn assert_paths_agree(b: &[u8]) {
    let shown = String::from_utf8_lossy(b);
    assert_eq!(parse_fixed(b), parse_fixed_bytewise(b), "{shown:?}");
    for tail in [&b""[..], b"\"", b"\",\"0.010\"]]}", b"\"\"\"\"\"\"\"\"\"", b"\\\"", b"5\""] {
        let mut framed = b.to_vec();
        framed.extend_from_slice(tail);
        assert_eq!(parse_fixed_quoted(&framed), quoted_reference(&framed), "{:?}", String::from_utf8_lossy(&framed));
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn write_then_parse_round_trips(v in interesting_i64()) {
        let s = format(v);
        let mut pushed = Vec::new();
        push_fixed(v, &mut pushed);
        prop_assert_eq!(pushed.as_slice(), s.as_bytes());
        prop_assert_eq!(Price(v).to_string(), s.clone());
        prop_assert_eq!(Qty(v).to_string(), s.clone());
        if v >= 0 {
            prop_assert_eq!(parse_fixed(s.as_bytes()), Ok(v), "{}", s);
            prop_assert_eq!(s.parse::<Price>(), Ok(Price(v)));
            prop_assert_eq!(Price::from_str(&Price(v).to_string()), Ok(Price(v)));
            prop_assert_eq!(s.parse::<Qty>(), Ok(Qty(v)));
            // Trailing fractional zeros re-added are still the same value.
            let padded = if s.contains('.') { format!("{s}0") } else { format!("{s}.0") };
            if padded.len() - padded.find('.').unwrap() - 1 <= 8 {
                prop_assert_eq!(parse_fixed(padded.as_bytes()), Ok(v), "{}", padded);
            }
        } else {
            prop_assert_eq!(parse_fixed(s.as_bytes()), Err(DecimalError::Sign), "{}", s);
        }
    }

    #[test]
    fn digit_strings_match_the_reference(s in digit_strings()) {
        let got = parse_fixed(s.as_bytes());
        match reference(s.as_bytes()) {
            Some(v) => prop_assert_eq!(got, Ok(v), "{:?}", s),
            None => prop_assert_eq!(got, Err(expected_error(&s)), "{:?}", s),
        }
    }

    #[test]
    fn junk_strings_match_the_reference(b in junk_strings()) {
        let got = parse_fixed(&b);
        match reference(&b) {
            Some(v) => prop_assert_eq!(got, Ok(v), "{:?}", String::from_utf8_lossy(&b)),
            None => prop_assert!(got.is_err(), "{:?} accepted as {:?}", String::from_utf8_lossy(&b), got),
        }
        // The reason names the first bad byte where there is one.
        if let Err(e) = got {
            match e {
                DecimalError::Empty => prop_assert!(b.is_empty()),
                DecimalError::Sign => prop_assert!(b.iter().any(|c| *c == b'-' || *c == b'+')),
                DecimalError::Exponent => prop_assert!(b.iter().any(|c| *c == b'e' || *c == b'E')),
                DecimalError::NonDigit(x) => prop_assert!(b.contains(&x) && (!x.is_ascii_digit())),
                _ => {}
            }
        }
    }

    #[test]
    fn fast_paths_match_the_bytewise_parser(b in junk_strings(), d in digit_strings()) {
        assert_paths_agree(&b);
        assert_paths_agree(d.as_bytes());
    }

    #[test]
    fn formatting_matches_rust_decimal(v in interesting_i64()) {
        let expect = Decimal::new(v, 8).normalize().to_string();
        prop_assert_eq!(Price(v).to_string(), expect);
    }

    #[test]
    fn parsed_strings_format_to_their_normal_form(s in digit_strings()) {
        if let Ok(v) = parse_fixed(s.as_bytes()) {
            let expect = Decimal::from_str(&s).unwrap().normalize().to_string();
            prop_assert_eq!(Price(v).to_string(), expect, "{:?}", s);
        }
    }
}

#[test]
fn reference_agrees_at_the_edges() {
    // Pins the reference itself, so a broken reference cannot pass silently.
    let cases: [(&str, Option<i64>); 14] = [
        ("0", Some(0)),
        ("0.0024", Some(240_000)),
        ("10", Some(1_000_000_000)),
        ("0.00000001", Some(1)),
        ("92233720368.54775807", Some(i64::MAX)),
        ("92233720368.54775808", None),
        ("99999999999.99999999", None),
        ("00000000000.1", Some(10_000_000)),
        ("000000000000", None),
        ("1.", None),
        (".1", None),
        ("1.123456789", None),
        ("-1", None),
        ("1e5", None),
    ];
    for (s, v) in cases {
        assert_eq!(reference(s.as_bytes()), v, "reference({s:?})");
        assert_eq!(parse_fixed(s.as_bytes()).ok(), v, "parse_fixed({s:?})");
    }
}

#[test]
fn every_shape_with_one_bad_byte_matches_the_reference() {
    // Deterministic sweep: every integer length 1..=12 and fraction length
    // 0..=9 (with and without the dot), then each position overwritten with,
    // or preceded by, each junk byte. Covers every alignment of 8-byte loads.
    let junk = [b'-', b'+', b'e', b'E', b' ', b'.', b'/', b':', b'a', 0u8, 0x7f, 0xff, b'0', b'9'];
    let mut checked = 0;
    let mut check = |b: &[u8]| {
        let got = parse_fixed(b);
        match reference(b) {
            Some(v) => assert_eq!(got, Ok(v), "{:?}", String::from_utf8_lossy(b)),
            None => assert!(got.is_err(), "{:?} accepted as {got:?}", String::from_utf8_lossy(b)),
        }
        checked += 1;
    };
    for k in 1..=12usize {
        for n in 0..=9usize {
            for dot in [true, false] {
                if !dot && n > 0 {
                    continue;
                }
                // Digits that vary with position, so misplaced bytes show.
                let mut base: Vec<u8> = (0..k).map(|i| b'1' + ((i * 7 + k) % 9) as u8).collect();
                if dot {
                    base.push(b'.');
                    base.extend((0..n).map(|i| b'0' + ((i * 3 + n + 1) % 10) as u8));
                }
                check(&base);
                for at in 0..=base.len() {
                    for &x in &junk {
                        if at < base.len() {
                            let mut b = base.clone();
                            b[at] = x;
                            check(&b);
                        }
                        let mut b = base.clone();
                        b.insert(at, x);
                        check(&b);
                    }
                }
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn every_length_and_dot_position_matches_the_bytewise_parser() {
    // Every length 1..=20, the '.' at every position (and none), then every
    // junk byte overwriting or inserted at every position: each split of the
    // 8-byte loads, each short-string load, each error kind.
    let junk = [b'-', b'+', b'e', b'E', b' ', b'.', b'/', b':', b'"', b'\\', b'a', 0u8, 0x7f, 0xfa, 0xff, b'0', b'9'];
    let mut checked = 0;
    for n in 1..=20usize {
        let digits: Vec<u8> = (0..n).map(|i| b'1' + ((i * 5 + n) % 9) as u8).collect();
        for dot in (0..n).map(Some).chain([None]) {
            let mut base = digits.clone();
            if let Some(at) = dot {
                base[at] = b'.';
            }
            assert_paths_agree(&base);
            // Exact values where the grammar accepts.
            if let Some(v) = reference(&base) {
                assert_eq!(parse_fixed(&base), Ok(v), "{:?}", String::from_utf8_lossy(&base));
            }
            for at in 0..=base.len() {
                for &x in &junk {
                    if at < base.len() {
                        let mut b = base.clone();
                        b[at] = x;
                        assert_paths_agree(&b);
                    }
                    let mut b = base.clone();
                    b.insert(at, x);
                    assert_paths_agree(&b);
                    checked += 2;
                }
            }
        }
    }
    assert!(checked > 20_000, "{checked}");
}

#[test]
fn usdm_shapes_read_exactly() {
    // The strings of a USD-M ETHUSDT diff (../shared/data/busy): 2 price
    // decimals, 3 quantity decimals, all under 8 bytes.
    for (s, v) in [
        ("2681.63", 268_163_000_000i64),
        ("0.010", 1_000_000),
        ("10.229", 1_022_900_000),
        ("0.000", 0),
        ("200.00", 20_000_000_000),
        ("163.366", 16_336_600_000),
    ] {
        assert_eq!(parse_fixed(s.as_bytes()), Ok(v), "{s}");
        let framed = format!("{s}\",\"1.000\"],[\"2681.64\",\"0.000\"]]");
        assert_eq!(parse_fixed_quoted(framed.as_bytes()), Some((v, s.len())), "{s}");
    }
}
