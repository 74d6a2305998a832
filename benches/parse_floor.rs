//! Where the parse time goes, with steady numbers on a noisy machine: the
//! minimum and median over 31 repetitions of a tight loop for
//! (1) simd-json alone filling its tape (the floor any tape walk sits on),
//! (2) mmbot's whole parse of the same frame into fixed-point levels, and
//! (3) the decimal conversion alone. Run: `cargo bench --bench parse_floor`.

mod common;

use std::hint::black_box;
use std::time::Instant;

fn measure(name: &str, iters: u32, mut f: impl FnMut()) {
    let mut v: Vec<f64> = (0..31)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f()
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    println!("{name:40} min {:8.1} ns   median {:8.1} ns", v[0], v[15]);
}

fn main() {
    // `cargo bench` passes `--bench`; this harness has no options.
    let raw = common::spot_diff_10x10();
    let len = raw.len();
    let mut input = raw.clone();
    input.resize(len + simd_json::INPUT_PADDING, b' ');
    let mut buffers = simd_json::Buffers::new(4096);
    let mut nodes: Vec<simd_json::Node<'static>> = Vec::with_capacity(1024);
    measure("simd_json_fill_tape_only (floor)", 20_000, || {
        let mut tape = simd_json::Tape(std::mem::take(&mut nodes)).reset();
        let r = simd_json::fill_tape_padded(black_box(&mut input), len, &mut buffers, &mut tape);
        nodes = tape.reset().0;
        black_box(r.is_ok());
    });
    let mut p = mmbot::hot::parse::Parser::new(5000, 1 << 16);
    measure("mmbot_parse_spot_diff_10x10", 20_000, || {
        black_box(p.parse(black_box(&raw)).is_ok());
    });
    let strs: [&[u8]; 2] = [b"61837.63000000", b"3.78826000"];
    measure("parse_fixed_price_and_qty", 200_000, || {
        for s in &strs {
            black_box(mmbot::hot::fixed::parse_fixed(black_box(s)).ok());
        }
    });
}
