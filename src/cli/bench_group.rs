//! `mmbot bench --symbols N`: the hot path's cost per event when one hot
//! thread serves N symbols ([`crate::hot::group::HotGroup`]), against one
//! symbol, on the same number of frames, in the same run.
//!
//! The frames are N copies of the built-in stream (`--profile`), each with
//! its own seed and symbol name (`S0USDT`, `S1USDT`, ...), interleaved frame
//! by frame, so every symbol's book is touched once every N frames, as on a
//! combined stream of N busy symbols; each stream's snapshot follows its
//! first diff. The baseline, in the same run, is each of those streams
//! alone on the thread (a group of one), histograms merged: the same
//! frames per symbol, so what differs is the route and N symbols sharing
//! the core's caches.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Config;
use crate::feed::{synthetic, synthetic_busy};
use crate::hot::engine::{HotConfig, HotPath};
use crate::hot::group::HotGroup;
use crate::hot::msg::Symbol;
use crate::hot::strategy::NativeStrategy;
use crate::stats::clock::Clock;
use crate::stats::host::Host;
use crate::stats::latency::{Percentiles, Stage, StageHistograms};

use super::bench::{Frames, Profile};

/// `bytes` with every `from` replaced by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// One stream of the profile for symbol `k`, renamed.
fn stream(profile: Profile, diffs: usize, k: usize) -> Frames {
    let seed = 42 + k as u64;
    let frames = match profile {
        Profile::Busy => synthetic_busy::busy_frames(diffs, seed).frames,
        Profile::Synthetic => synthetic::spot_frames(diffs, seed),
    };
    let (stream, sym) = (format!("\"stream\":\"s{k}usdt@"), format!("\"s\":\"S{k}USDT\""));
    frames
        .into_iter()
        .map(|(ts, f)| {
            let f = replace(&f, b"\"stream\":\"btcusdt@", stream.as_bytes());
            (ts, replace(&f, b"\"s\":\"BTCUSDT\"", sym.as_bytes()))
        })
        .collect()
}

/// `n` streams of `diffs / n` diffs each, interleaved (see the module docs).
pub fn group_frames(profile: Profile, diffs: usize, n: usize) -> Frames {
    let streams: Vec<Frames> = (0..n).map(|k| stream(profile, (diffs / n).max(2), k)).collect();
    let mut out = Vec::with_capacity(streams.iter().map(Vec::len).sum());
    // Each stream up to and including its snapshot (a bare body, routed to
    // the symbol named last), stream by stream; then frame by frame.
    let mut at = Vec::with_capacity(n);
    for s in &streams {
        let head = s.iter().position(|(_, f)| !f.starts_with(b"{\"stream\"")).map_or(0, |i| i + 1);
        out.extend(s[..head].iter().cloned());
        at.push(head);
    }
    let longest = streams.iter().map(Vec::len).max().unwrap_or(0);
    for j in 0..longest {
        for (s, &head) in streams.iter().zip(&at) {
            if let Some(f) = s.get(head + j) {
                out.push(f.clone());
            }
        }
    }
    out
}

/// What one group run measured.
#[derive(Serialize, Clone)]
pub struct GroupRun {
    pub symbols: usize,
    pub frames: usize,
    pub quotes: u64,
    pub unrouted: u64,
    pub latency_ns: BTreeMap<String, Percentiles>,
}

/// Runs `frames` through a group of `n` native-strategy desks (`S0USDT`..).
fn run_group(config: &Config, frames: &Frames, n: usize, clock: Clock, warmup: usize) -> anyhow::Result<GroupRun> {
    run_desks(config, frames, 0..n, clock, warmup)
}

/// Runs `frames` through a group of the desks `S{k}USDT` for `ks`.
fn run_desks(
    config: &Config,
    frames: &Frames,
    ks: std::ops::Range<usize>,
    clock: Clock,
    warmup: usize,
) -> anyhow::Result<GroupRun> {
    Ok(run_desks_hist(config, frames, ks, clock, warmup)?.0)
}

/// [`run_desks`], with the desks' stage histograms merged.
fn run_desks_hist(
    config: &Config,
    frames: &Frames,
    ks: std::ops::Range<usize>,
    clock: Clock,
    warmup: usize,
) -> anyhow::Result<(GroupRun, StageHistograms)> {
    let n = ks.len();
    let desks = ks
        .map(|k| {
            let cfg = HotConfig { symbol: Some(Symbol::new(format!("S{k}USDT").as_bytes())), ..config.hot };
            HotPath::new(cfg, NativeStrategy, clock)
        })
        .collect();
    let mut group = HotGroup::new(desks)?;
    let mut quotes = 0u64;
    let mut buf: Vec<u8> = Vec::with_capacity(frames.iter().map(|(_, f)| f.len()).max().unwrap_or(0));
    for (i, (ts, frame)) in frames.iter().enumerate() {
        // In cache when its clock starts, as a frame just read live is.
        buf.clear();
        buf.extend_from_slice(frame);
        if i == warmup {
            for d in 0..group.len() {
                group.desk_mut(d).reset_histograms();
            }
        }
        let t_in = clock.now();
        group.on_frame(&buf, *ts, t_in, &mut |_, ev| {
            if let crate::hot::engine::HotEvent::Quote { quote, .. } = ev {
                quotes += quote.bid.is_some() as u64;
            }
        });
    }
    let mut all = StageHistograms::new();
    for d in group.desks() {
        all.add(d.histograms());
    }
    let run = GroupRun {
        symbols: n,
        frames: frames.len(),
        quotes: std::hint::black_box(quotes),
        unrouted: group.stats().unrouted,
        latency_ns: Stage::ALL.iter().map(|&s| (s.name().to_string(), all.percentiles(s))).collect(),
    };
    Ok((run, all))
}

#[derive(Serialize)]
struct GroupOut {
    profile: String,
    diffs: usize,
    pinned_core: Option<usize>,
    /// The machine: figures compare only between runs on the same one.
    host: Host,
    /// The same streams, each alone on the thread (a group of one), in the
    /// same run: their stage histograms merged.
    baseline: GroupRun,
    group: GroupRun,
}

/// `mmbot bench --symbols N` (N > 1).
pub fn run(
    config: &Config,
    profile: Profile,
    diffs: usize,
    n: usize,
    json: bool,
    pinned: Option<usize>,
) -> anyhow::Result<i32> {
    anyhow::ensure!(
        n <= crate::hot::group::MAX_GROUP,
        "--symbols {n}: a group serves at most {}",
        crate::hot::group::MAX_GROUP
    );
    let clock = Clock::calibrate();
    let many = group_frames(profile, diffs, n);
    let warmup = |f: &Frames, n: usize| (f.len() / 20).min(5_000 * n);
    // Each stream alone first: the same frames per symbol, without the
    // others sharing the core's caches.
    let mut alone = StageHistograms::new();
    let (mut frames, mut quotes) = (0, 0);
    for k in 0..n {
        let one = stream(profile, (diffs / n).max(2), k);
        let r = run_desks_hist(config, &one, k..k + 1, clock, warmup(&one, 1))?;
        alone.add(&r.1);
        frames += r.0.frames;
        quotes += r.0.quotes;
    }
    let baseline = GroupRun {
        symbols: 1,
        frames,
        quotes,
        unrouted: 0,
        latency_ns: Stage::ALL.iter().map(|&s| (s.name().to_string(), alone.percentiles(s))).collect(),
    };
    let group = run_group(config, &many, n, clock, warmup(&many, n))?;
    let out = GroupOut {
        profile: format!("{profile:?}").to_lowercase(),
        diffs,
        pinned_core: pinned,
        host: Host::read(clock.tsc_ghz()),
        baseline,
        group,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    println!(
        "mmbot bench --symbols {n}: {} profile, {diffs} diffs in all; {}",
        out.profile,
        pinned.map_or("not pinned".into(), |c| format!("pinned to core {c}"))
    );
    println!("host: {}", out.host.line());
    println!(
        "{:<24} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9}  (ns)",
        "run", "symbols", "events", "p50", "p90", "p99", "max"
    );
    for (name, r) in [("each symbol alone", &out.baseline), ("all on one thread", &out.group)] {
        let s = &r.latency_ns[Stage::TickToQuote.name()];
        println!("{name:<24} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9}", r.symbols, s.count, s.p50, s.p90, s.p99, s.max);
    }
    println!("tick_to_quote per quoted event; stages per symbol are in --json");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_symbol_syncs_and_quotes_in_the_interleaved_stream() {
        let frames = group_frames(Profile::Synthetic, 400, 8);
        let config = Config::default();
        let r = run_group(&config, &frames, 8, Clock::instant(), 0).unwrap();
        assert_eq!(r.unrouted, 0);
        // Every diff quotes, each stream's first once its snapshot applies it.
        assert_eq!(r.latency_ns["tick_to_quote"].count, 400);
        let busy = group_frames(Profile::Busy, 64, 4);
        let r = run_group(&config, &busy, 4, Clock::instant(), 0).unwrap();
        assert!(r.latency_ns["tick_to_quote"].count >= 4 * 15, "{:?}", r.latency_ns["tick_to_quote"]);
    }
}
