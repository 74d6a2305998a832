//! Parse of a realistic spot diff into fixed-point levels, three ways in the
//! same run: mmbot's default path (the compact-diff reader), mmbot's general
//! path (simd-json tape walk, used for every other frame and for anything the
//! compact reader declines), and the usual serde_json typed parse into strings
//! converted with `f64`. Also the decimal conversion alone.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

use mmbot::hot::fixed::parse_fixed;
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

criterion_group!(benches, bench_diff, bench_decimal);
criterion_main!(benches);
