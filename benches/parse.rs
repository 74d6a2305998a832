//! Parse of a realistic spot diff into fixed-point levels, three ways in the
//! same run: mmbot's default path (the compact-diff reader), mmbot's general
//! path (simd-json tape walk, used for every other frame and for anything the
//! compact reader declines), and the usual serde_json typed parse into strings
//! converted with `f64`. Also the decimal conversion alone.
//!
//! The real USD-M ETHUSDT capture (`../shared/data/busy`, or the file named by
//! `MMBOT_BUSY_CAPTURE`) adds per-level cases on real frames: the whole
//! parse, the decimals alone (price + qty per level), and the level-array
//! reading with and without [`parse_fixed_quoted`]. Criterion's time per
//! iteration divided by the level count printed at the start is ns/level
//! (`thrpt` shows the same as levels per second). Skipped with a message
//! when the capture is absent.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

use mmbot::hot::fixed::{parse_fixed, parse_fixed_bytewise, parse_fixed_quoted};
use mmbot::hot::msg::Level;
use mmbot::hot::msg::Msg;
use mmbot::hot::parse::Parser;
use mmbot::stats::baseline;

fn bench_diff(c: &mut Criterion) {
    let raw = common::spot_diff_10x10();
    let combined = common::spot_diff_10x10_combined();
    eprintln!("spot diff: {} bytes raw, {} bytes combined", raw.len(), combined.len());
    let mut parser = Parser::new(5000, 1 << 16);
    assert!(matches!(parser.parse(&raw), Ok(Msg::Diff(_))));
    assert_eq!(parser.bids().len() + parser.asks().len(), 20);

    let mut g = c.benchmark_group("parse_spot_diff_10x10");
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("mmbot_default", |b| {
        b.iter(|| {
            let m = parser.parse(black_box(&raw));
            black_box((m.is_ok(), parser.bids()[0], parser.asks()[9]))
        })
    });
    g.bench_function("mmbot_default_combined", |b| {
        b.iter(|| {
            let m = parser.parse(black_box(&combined));
            black_box((m.is_ok(), parser.bids()[0], parser.asks()[9]))
        })
    });
    let mut tape = Parser::new(5000, 1 << 16);
    tape.set_compact_diffs(false);
    g.bench_function("mmbot_simd_json_tape", |b| {
        b.iter(|| {
            let m = tape.parse(black_box(&raw));
            black_box((m.is_ok(), tape.bids()[0], tape.asks()[9]))
        })
    });
    g.bench_function("serde_json_typed_f64_baseline", |b| b.iter(|| black_box(baseline::parse_raw(black_box(&raw)))));
    g.finish();
}

fn bench_decimal(c: &mut Criterion) {
    let inputs: Vec<&[u8]> = vec![b"61837.63000000", b"3.78826000", b"0.00006547", b"437848", b"1.5452"];
    let mut g = c.benchmark_group("decimal_5_strings");
    g.bench_function("parse_fixed", |b| {
        b.iter(|| {
            let mut s = 0i64;
            for x in &inputs {
                s = s.wrapping_add(parse_fixed(black_box(x)).unwrap());
            }
            s
        })
    });
    g.bench_function("str_parse_f64_baseline", |b| {
        b.iter(|| {
            let mut s = 0f64;
            for x in &inputs {
                s += std::str::from_utf8(black_box(x)).unwrap().parse::<f64>().unwrap();
            }
            s
        })
    });
    g.finish();
}

/// The capture's diff frames (combined-stream lines), at most `max`.
fn capture_diffs(max: usize) -> Option<Vec<Vec<u8>>> {
    use std::io::BufRead;
    let name = "shared/data/busy/usdm_ethusdt_20240808.gz";
    let candidates = match std::env::var("MMBOT_BUSY_CAPTURE") {
        Ok(p) => vec![p],
        Err(_) => ["..", "../.."].iter().map(|up| format!("{}/{up}/{name}", env!("CARGO_MANIFEST_DIR"))).collect(),
    };
    let Some(file) = candidates.iter().find_map(|p| std::fs::File::open(p).ok()) else {
        eprintln!(
            "busy capture absent ({candidates:?}): skipping the real-frame cases (set MMBOT_BUSY_CAPTURE to its path)"
        );
        return None;
    };
    let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file));
    let mut out = Vec::new();
    for line in reader.split(b'\n').map_while(Result::ok) {
        let Some((_, json)) = mmbot::feed::recording::split_line(&line) else { continue };
        if memchr::memmem::find(&json[..json.len().min(48)], b"@depth@").is_some() {
            out.push(json.to_vec());
            if out.len() == max {
                break;
            }
        }
    }
    Some(out)
}

/// The `[["p","q"],...]` arrays of a frame (bids then asks), as bytes.
fn level_arrays(frame: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for key in [&b"\"b\":["[..], b"\"a\":["] {
        if let Some(at) = memchr::memmem::find(frame, key) {
            let start = at + key.len() - 1;
            if frame.get(start + 1) == Some(&b']') {
                continue; // `[]`: no levels on that side
            }
            let end = memchr::memmem::find(&frame[start..], b"]]").map_or(start + 2, |e| start + e + 2);
            out.push(&frame[start..end]);
        }
    }
    out
}

/// The level loop of `hot::compact` as it is: find each string's end with
/// `memchr2`, then convert it.
fn levels_memchr(s: &[u8], out: &mut Vec<Level>) -> Option<()> {
    fn string<'a>(s: &'a [u8], i: &mut usize) -> Option<&'a [u8]> {
        (s.get(*i)? == &b'"').then_some(())?;
        let rest = &s[*i + 1..];
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        (rest[end] == b'"').then_some(())?;
        *i += end + 2;
        Some(&rest[..end])
    }
    let mut i = 1;
    out.clear();
    loop {
        i += 1; // '['
        let p = parse_fixed(string(s, &mut i)?).ok()?;
        i += 1; // ','
        let q = parse_fixed(string(s, &mut i)?).ok()?;
        i += 1; // ']'
        out.push(Level::new(p, q));
        if s.get(i)? != &b',' {
            return Some(());
        }
        i += 1;
    }
}

/// The same loop reading each number in place with [`parse_fixed_quoted`].
fn levels_quoted(s: &[u8], out: &mut Vec<Level>) -> Option<()> {
    let mut i = 1;
    out.clear();
    loop {
        i += 2; // '["'
        let (p, end) = parse_fixed_quoted(&s[i..])?;
        i += end + 3; // '","'
        let (q, end) = parse_fixed_quoted(&s[i..])?;
        i += end + 2; // '"]'
        out.push(Level::new(p, q));
        if s.get(i)? != &b',' {
            return Some(());
        }
        i += 1;
    }
}

fn bench_usdm_capture(c: &mut Criterion) {
    let Some(frames) = capture_diffs(2_000) else { return };
    let mut parser = Parser::new(5000, 1 << 16);
    let mut levels = 0u64;
    for f in &frames {
        assert!(matches!(parser.parse(f), Ok(Msg::Diff(_))), "{}", String::from_utf8_lossy(f));
        levels += (parser.bids().len() + parser.asks().len()) as u64;
    }
    // The strings as sent (trailing zeros kept), for the decimals-alone cases.
    let mut strings: Vec<&[u8]> = Vec::new();
    let arrays: Vec<&[u8]> = frames.iter().flat_map(|f| level_arrays(f)).collect();
    for a in &arrays {
        for part in a.split(|&b| b == b'"').skip(1).step_by(2) {
            strings.push(part);
        }
    }
    assert_eq!(strings.len() as u64, 2 * levels, "two strings per level");
    let mut check = Vec::new();
    let mut check2 = Vec::new();
    for a in &arrays {
        assert!(levels_memchr(a, &mut check).is_some() && levels_quoted(a, &mut check2).is_some());
        assert_eq!(check, check2);
    }
    eprintln!(
        "USD-M ETHUSDT capture: {} diff frames, {levels} levels ({:.1} per frame); ns/level = time / {levels}",
        frames.len(),
        levels as f64 / frames.len() as f64
    );
    let mut g = c.benchmark_group("usdm_eth_capture_levels");
    g.throughput(Throughput::Elements(levels));
    g.sample_size(30);
    g.bench_function("parse_mmbot_default", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(parser.parse(black_box(f)).is_ok());
            }
        })
    });
    g.bench_function("parse_serde_json_f64_baseline", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(baseline::parse_combined(black_box(f)));
            }
        })
    });
    g.bench_function("decimals_parse_fixed", |b| {
        b.iter(|| {
            let mut s = 0i64;
            for x in &strings {
                s = s.wrapping_add(parse_fixed(black_box(x)).unwrap_or(0));
            }
            s
        })
    });
    g.bench_function("decimals_bytewise_reference", |b| {
        b.iter(|| {
            let mut s = 0i64;
            for x in &strings {
                s = s.wrapping_add(parse_fixed_bytewise(black_box(x)).unwrap_or(0));
            }
            s
        })
    });
    let mut out = Vec::with_capacity(5000);
    g.bench_function("level_arrays_memchr2_then_parse_fixed", |b| {
        b.iter(|| {
            for a in &arrays {
                black_box(levels_memchr(black_box(a), &mut out));
            }
        })
    });
    g.bench_function("level_arrays_parse_fixed_quoted", |b| {
        b.iter(|| {
            for a in &arrays {
                black_box(levels_quoted(black_box(a), &mut out));
            }
        })
    });
    g.finish();
}

/// The level arrays of the synthetic spot 10+10 diff (8-decimal strings).
fn bench_spot_levels(c: &mut Criterion) {
    let raw = common::spot_diff_10x10();
    let arrays = level_arrays(&raw);
    let strings: Vec<&[u8]> = arrays.iter().flat_map(|a| a.split(|&b| b == b'"').skip(1).step_by(2)).collect();
    assert_eq!(strings.len(), 40);
    let mut out = Vec::with_capacity(64);
    let mut g = c.benchmark_group("spot_10x10_levels");
    g.throughput(Throughput::Elements(20));
    g.bench_function("decimals_parse_fixed", |b| {
        b.iter(|| {
            let mut s = 0i64;
            for x in &strings {
                s = s.wrapping_add(parse_fixed(black_box(x)).unwrap_or(0));
            }
            s
        })
    });
    g.bench_function("level_arrays_memchr2_then_parse_fixed", |b| {
        b.iter(|| {
            for a in &arrays {
                black_box(levels_memchr(black_box(a), &mut out));
            }
        })
    });
    g.bench_function("level_arrays_parse_fixed_quoted", |b| {
        b.iter(|| {
            for a in &arrays {
                black_box(levels_quoted(black_box(a), &mut out));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_diff, bench_decimal, bench_spot_levels, bench_usdm_capture);
criterion_main!(benches);
