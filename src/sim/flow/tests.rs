//! Tests of the order-flow model: payload layouts, reproducibility,
//! and that mmbot's own parser and sync code rebuild the model's book.

use std::collections::HashSet;

use super::*;
use crate::hot::market::{BookSizes, Event, MarketData};
use crate::hot::msg::{Level, Msg, Symbol};
use crate::hot::parse::Parser;

const START: i64 = 1_700_000_000_000;

fn config(market: SimMarket, seed: u64) -> FlowConfig {
    let mut c = FlowConfig::new("BTCUSDT", market, seed);
    c.record_tops = true;
    c
}

fn run(model: &mut FlowModel, until_ms: i64) -> Vec<SimFrame> {
    let mut out = Vec::new();
    model.advance_to(until_ms, &mut out);
    out
}

fn of_kind(frames: &[SimFrame], kind: StreamKind) -> Vec<&SimFrame> {
    frames.iter().filter(|f| f.kind == kind).collect()
}

/// The top the model recorded right after update id `id`.
fn top_at(m: &FlowModel, id: u64) -> TopAt {
    let tops = m.top_history();
    let t = tops[(id - tops[0].update_id) as usize];
    assert_eq!(t.update_id, id);
    t
}

fn pairs(levels: impl Iterator<Item = Level>) -> Vec<(i64, i64)> {
    levels.map(|l| (l.price.0, l.qty.0)).collect()
}

fn level_pair(l: Level) -> (i64, i64) {
    (l.price.0, l.qty.0)
}

/// `(U, u, pu)` of a diff payload, through mmbot's own parser.
fn diff_ids(parser: &mut Parser, payload: &str) -> (u64, u64, Option<u64>) {
    match parser.parse(payload.as_bytes()) {
        Ok(Msg::Diff(d)) => (d.first_id, d.last_id, d.prev_last_id),
        other => panic!("not a diff: {other:?} {payload}"),
    }
}

/// Raw depth20 payloads name no stream; the combined wrapper tells the
/// parser it is a partial book (a bare spot one reads as a snapshot, a
/// bare USD-M one as a diff).
fn wrap_partial(payload: &str) -> String {
    format!("{{\"stream\":\"btcusdt@depth20@100ms\",\"data\":{payload}}}")
}

#[test]
fn chunked_advances_give_identical_frames() {
    for market in [SimMarket::Spot, SimMarket::Usdm] {
        let end = START + 30_000;
        let mut whole = FlowModel::new(config(market, 42), START);
        let one = run(&mut whole, end);
        let mut chunked = FlowModel::new(config(market, 42), START);
        let mut many = Vec::new();
        let mut r = Rng(7);
        let mut t = START;
        while t < end {
            // 0 to 249 ms: on, between and across flush boundaries,
            // sometimes the same time twice, sometimes a step back.
            t = (t + r.below(250) as i64).min(end);
            chunked.advance_to(t, &mut many);
            if r.below(20) == 0 {
                chunked.advance_to(t - 50, &mut many);
            }
        }
        assert!(one.len() > 2_000, "{}", one.len());
        assert!(one == many, "{market:?}: frames differ");
        assert_eq!(whole.levels(), chunked.levels());
        assert_eq!((whole.update_id(), whole.trades()), (chunked.update_id(), chunked.trades()));
        assert_eq!(whole.snapshot_json(1000, end), chunked.snapshot_json(1000, end));
        assert_eq!(whole.stale_snapshot_json(1000, end), chunked.stale_snapshot_json(1000, end));
        assert_eq!(whole.top_history(), chunked.top_history());
        let mut other = FlowModel::new(config(market, 43), START);
        assert!(run(&mut other, end) != one, "another seed, another market");
    }
}

/// Syncs mmbot's book the way a client does (diffs buffered, snapshot
/// taken between two flushes, later frames applied) and holds every
/// frame to the model.
fn sync_matches_the_model(market: SimMarket, seed: u64) {
    let sym = Symbol::new(b"BTCUSDT");
    let mut m = FlowModel::new(config(market, seed), START);
    let before = run(&mut m, START + 5_000);
    // Halfway to the next boundary: the snapshot holds changes that no
    // diff has carried yet.
    let mut after = run(&mut m, START + 5_050);
    assert!(after.iter().all(|f| !matches!(f.kind, StreamKind::Depth | StreamKind::Depth20)));
    assert!(m.batch_first.is_some(), "the snapshot must fall inside a batch");
    let snapshot = m.snapshot_json(1000, START + 5_050);
    let l = m.update_id();
    // Ends on a boundary, so the last diff carries every change.
    after.extend(run(&mut m, START + 65_000));

    let mut md = MarketData::new(BookSizes::default());
    md.verify_tickers(true);
    let mut noop = |_: Event<'_>| {};
    let buffered = of_kind(&before, StreamKind::Depth);
    for f in &buffered[buffered.len() - 3..] {
        md.on_frame(f.payload.as_bytes(), &mut noop);
    }
    md.on_snapshot_for(sym, snapshot.as_bytes(), &mut noop).unwrap();
    assert!(md.book(sym).unwrap().is_synced());
    assert_eq!(md.book(sym).unwrap().update_id(), l);

    // The first later diff straddles the snapshot strictly: U <= L < u,
    // which both the spot rule (U <= L+1 <= u) and the USD-M one
    // (U <= L <= u) accept.
    let mut parser = Parser::new(5000, 1 << 16);
    let first = of_kind(&after, StreamKind::Depth)[0];
    let (big_u, u, _) = diff_ids(&mut parser, &first.payload);
    assert!(big_u <= l && l < u, "U {big_u} L {l} u {u}");

    let (mut diffs, mut partials, mut tickers) = (0, 0, 0);
    for f in &after {
        if f.kind == StreamKind::Depth20 {
            let Ok(Msg::Partial(p)) = parser.parse(wrap_partial(&f.payload).as_bytes()) else {
                panic!("not a partial: {}", f.payload)
            };
            let book = md.book(sym).unwrap();
            assert_eq!((p.update_id, f.update_id), (book.update_id(), book.update_id()));
            let mut bids = pairs(parser.bids().iter().copied());
            bids.sort_by_key(|l| std::cmp::Reverse(l.0));
            let mut asks = pairs(parser.asks().iter().copied());
            asks.sort();
            assert_eq!(bids, pairs(book.book().bids().take(20)));
            assert_eq!(asks, pairs(book.book().asks().take(20)));
            partials += 1;
            continue;
        }
        if f.kind == StreamKind::BookTicker {
            let Ok(Msg::BookTicker(t)) = parser.parse(f.payload.as_bytes()) else { panic!("{}", f.payload) };
            let top = top_at(&m, t.update_id);
            assert_eq!(t.update_id, f.update_id);
            assert_eq!((Some(level_pair(t.bid)), Some(level_pair(t.ask))), (top.bid, top.ask));
            tickers += 1;
        }
        md.on_frame(f.payload.as_bytes(), &mut |ev| {
            if let Event::Depth { applied, book, .. } = ev {
                let top = top_at(&m, applied.update_id);
                assert_eq!((book.best_bid().map(level_pair), book.best_ask().map(level_pair)), (top.bid, top.ask));
                diffs += 1;
            }
        });
    }
    let stats = md.stats();
    assert_eq!((stats.rejected, stats.ticker_mismatches), (0, 0), "{:?}", md.last_error());
    assert!(stats.ticker_checks > 100 && stats.trades > 100, "{stats:?}");
    let sync = md.sync_stats();
    assert_eq!((sync.gaps, sync.crossed, sync.resyncs, sync.overlaps), (0, 0, 0, 0), "{sync:?}");
    assert_eq!(md.dropped_levels(), 0);
    assert!(diffs > 500 && partials > 500 && tickers > 1_000, "{diffs} {partials} {tickers}");
    let book = md.book(sym).unwrap();
    assert_eq!(book.update_id(), m.update_id());
    assert_eq!((pairs(book.book().bids()), pairs(book.book().asks())), m.levels());
}

#[test]
fn spot_sync_rebuilds_the_model_book_exactly() {
    sync_matches_the_model(SimMarket::Spot, 1);
    sync_matches_the_model(SimMarket::Spot, 2);
}

#[test]
fn usdm_sync_rebuilds_the_model_book_exactly() {
    sync_matches_the_model(SimMarket::Usdm, 3);
    sync_matches_the_model(SimMarket::Usdm, 4);
}

#[test]
fn stale_snapshot_is_older_than_the_newest_diff() {
    let sym = Symbol::new(b"BTCUSDT");
    let mut noop = |_: Event<'_>| {};
    for market in [SimMarket::Spot, SimMarket::Usdm] {
        let now = START + 10_000;
        let mut m = FlowModel::new(config(market, 5), START);
        let frames = run(&mut m, now);
        let diffs = of_kind(&frames, StreamKind::Depth);
        let newest = diffs[diffs.len() - 1];
        let mut parser = Parser::new(5000, 1 << 16);
        let (big_u, _, _) = diff_ids(&mut parser, &newest.payload);
        let (_, two_back, _) = diff_ids(&mut parser, &diffs[diffs.len() - 3].payload);
        let stale = m.stale_snapshot_json(1000, now);
        let Ok(Msg::Snapshot(s)) = parser.parse(stale.as_bytes()) else { panic!("{stale}") };
        let l = s.last_update_id;
        // Too old under the spot rule (L + 1 < U) as well as USD-M's (L < U).
        assert!(l + 1 < big_u, "{market:?}: L {l} U {big_u}");
        assert_eq!(l, two_back);
        // A real past book: its top is the one the model had at L.
        let top = top_at(&m, l);
        assert_eq!(
            (parser.bids().first().copied().map(level_pair), parser.asks().first().copied().map(level_pair)),
            (top.bid, top.ask)
        );

        // A client whose buffer starts at the newest diff refuses it...
        let mut md = MarketData::new(BookSizes::default());
        md.on_frame(newest.payload.as_bytes(), &mut noop);
        md.on_snapshot_for(sym, stale.as_bytes(), &mut noop).unwrap();
        assert!(!md.book(sym).unwrap().is_synced());
        assert_eq!(md.sync_stats().snapshots_too_old, 1);
        // ...and syncs from a fresh one.
        md.on_snapshot_for(sym, m.snapshot_json(1000, now).as_bytes(), &mut noop).unwrap();
        let book = md.book(sym).unwrap();
        assert!(book.is_synced());
        assert_eq!((pairs(book.book().bids()), pairs(book.book().asks())), m.levels());

        // One that has the diffs since L reaches the current book from it.
        let mut md = MarketData::new(BookSizes::default());
        md.on_snapshot_for(sym, stale.as_bytes(), &mut noop).unwrap();
        for f in &diffs[diffs.len() - 3..] {
            md.on_frame(f.payload.as_bytes(), &mut noop);
        }
        let book = md.book(sym).unwrap();
        assert_eq!((md.sync_stats().gaps, book.update_id()), (0, m.update_id()));
        assert_eq!((pairs(book.book().bids()), pairs(book.book().asks())), m.levels());
    }
}

#[test]
fn market_trades_moves_and_never_crosses() {
    for (market, seed) in [(SimMarket::Spot, 1), (SimMarket::Usdm, 2), (SimMarket::Spot, 3)] {
        let cfg = config(market, seed);
        let (tick, step, levels) = (cfg.tick, cfg.step, cfg.levels);
        let mut m = FlowModel::new(cfg, START);
        let mut frames = Vec::new();
        let mut regimes = HashSet::new();
        let mut mids = Vec::new();
        // Two simulated minutes, looked at every 100 ms.
        for k in 1..=1_200 {
            m.advance_to(START + k * 100, &mut frames);
            regimes.insert(m.regime());
            let (b, a) = m.levels();
            assert!(!b.is_empty() && !a.is_empty() && b.len() <= levels && a.len() <= levels);
            assert!(b[0].0 < a[0].0, "crossed at {k}");
            assert!(b.windows(2).all(|w| w[0].0 > w[1].0) && a.windows(2).all(|w| w[0].0 < w[1].0));
            assert!(b.iter().chain(&a).all(|&(p, q)| p > 0 && p % tick == 0 && q > 0 && q % step == 0));
            mids.push((b[0].0 + a[0].0) / 2);
        }
        let minute = &mids[..600];
        let range = (minute.iter().max().unwrap() - minute.iter().min().unwrap()) / tick;
        assert!(range >= 5, "{market:?} seed {seed}: the price moved {range} ticks in a minute");
        assert_eq!(regimes.len(), 2, "{regimes:?}");
        assert!(m.trades() > 1_000, "{}", m.trades());
        let trades = of_kind(&frames, StreamKind::Trade);
        assert_eq!(trades.len() as u64, m.trades());
        assert!(trades.iter().any(|t| t.payload.contains("\"m\":true")));
        assert!(trades.iter().any(|t| t.payload.contains("\"m\":false")));
        // The top after every single change: never crossed, never one-sided.
        let tops = m.top_history();
        assert_eq!(tops.len() as u64, m.update_id() - FIRST_UPDATE_ID + 1);
        assert!(tops.windows(2).all(|w| w[1].update_id == w[0].update_id + 1));
        assert!(tops.iter().all(|t| matches!((t.bid, t.ask), (Some(b), Some(a)) if b.0 < a.0)));
    }
}

#[test]
fn payloads_follow_the_binance_layouts() {
    let keys = |payload: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let decimals = |s: &str| s.split_once('.').map_or(0, |(_, f)| f.len());
    for market in [SimMarket::Spot, SimMarket::Usdm] {
        let mut m = FlowModel::new(config(market, 8), START);
        let frames = run(&mut m, START + 5_000);
        let first = |k: StreamKind| frames.iter().find(|f| f.kind == k).unwrap().payload.clone();
        let diff: serde_json::Value = serde_json::from_str(&first(StreamKind::Depth)).unwrap();
        let price = diff["b"][0][0].as_str().unwrap();
        let qty = diff["b"][0][1].as_str().unwrap();
        let expect: [&[&str]; 5] = match market {
            SimMarket::Spot => {
                assert_eq!((decimals(price), decimals(qty)), (8, 8), "{price} {qty}");
                [
                    &["E", "U", "a", "b", "e", "s", "u"],
                    &["asks", "bids", "lastUpdateId"],
                    &["E", "M", "T", "e", "m", "p", "q", "s", "t"],
                    &["A", "B", "a", "b", "s", "u"],
                    &["asks", "bids", "lastUpdateId"],
                ]
            }
            SimMarket::Usdm => {
                assert_eq!((decimals(price), decimals(qty)), (2, 5), "{price} {qty}");
                [
                    &["E", "T", "U", "a", "b", "e", "pu", "s", "u"],
                    &["E", "T", "U", "a", "b", "e", "pu", "s", "u"],
                    &["E", "T", "X", "e", "m", "p", "q", "s", "t"],
                    &["A", "B", "E", "T", "a", "b", "e", "s", "u"],
                    &["E", "T", "asks", "bids", "lastUpdateId"],
                ]
            }
        };
        let kinds = [StreamKind::Depth, StreamKind::Depth20, StreamKind::Trade, StreamKind::BookTicker];
        for (kind, want) in kinds.iter().zip(expect) {
            assert_eq!(keys(&first(*kind)), want, "{market:?} {kind:?}");
        }
        assert_eq!(keys(&m.snapshot_json(5, START + 5_000)), expect[4]);
        // Ids: each diff starts right after the previous one; USD-M's pu
        // names the previous u.
        let mut parser = Parser::new(5000, 1 << 16);
        let mut prev = FIRST_UPDATE_ID;
        for f in of_kind(&frames, StreamKind::Depth) {
            let (big_u, u, pu) = diff_ids(&mut parser, &f.payload);
            assert_eq!((big_u, f.update_id), (prev + 1, u));
            assert!(big_u <= u);
            assert_eq!(pu, (market == SimMarket::Usdm).then_some(prev));
            prev = u;
        }
    }
}

#[test]
fn quiet_intervals_send_no_depth_frames() {
    let mut c = config(SimMarket::Spot, 9);
    c.events_per_sec = 2.0;
    let mut m = FlowModel::new(c, START);
    let frames = run(&mut m, START + 20_000);
    let (diffs, partials) = (of_kind(&frames, StreamKind::Depth), of_kind(&frames, StreamKind::Depth20));
    assert!(!diffs.is_empty() && diffs.len() < 150, "{} of 200 intervals", diffs.len());
    assert_eq!(diffs.len(), partials.len());
}

#[test]
fn degenerate_configs_run_without_panics() {
    let mut cases = Vec::new();
    let mut c = FlowConfig::new("btc-usdt\"", SimMarket::Spot, 0);
    (c.tick, c.step, c.start_price, c.events_per_sec, c.depth_interval_ms, c.levels) = (0, -1, -5, f64::NAN, 0, 0);
    cases.push((c, 2_000));
    // The lowest price there is, one level a side.
    let mut c = FlowConfig::new("X", SimMarket::Usdm, u64::MAX);
    (c.levels, c.start_price, c.events_per_sec) = (1, c.tick, 5_000.0);
    cases.push((c, 2_000));
    // A coarse grid and a three-level book; the finest grid.
    let mut c = FlowConfig::new("ABC", SimMarket::Usdm, 9);
    (c.tick, c.step, c.start_price, c.levels) = (SCALE, SCALE, 3 * SCALE, 3);
    cases.push((c, 2_000));
    let mut c = FlowConfig::new("ABC", SimMarket::Spot, 9);
    (c.tick, c.step, c.start_price) = (1, 1, 1_000);
    cases.push((c, 2_000));
    let mut c = FlowConfig::new("HUGE", SimMarket::Usdm, 3);
    // Price and rate far out of range (the rate is capped at 1e6 events/s).
    (c.start_price, c.step, c.events_per_sec) = (i64::MAX, 1, 1e300);
    cases.push((c, 20));
    for (mut c, ms) in cases {
        c.record_tops = true;
        let name = format!("{c:?}");
        let mut m = FlowModel::new(c, START);
        let frames = run(&mut m, START + ms);
        assert!(!frames.is_empty(), "{name}");
        let mut parser = Parser::new(100_000, 1 << 16);
        for f in &frames {
            let bytes = if f.kind == StreamKind::Depth20 { wrap_partial(&f.payload) } else { f.payload.clone() };
            assert!(matches!(parser.parse(bytes.as_bytes()), Ok(m) if m != Msg::Skipped), "{name}: {}", f.payload);
        }
        for body in [m.snapshot_json(usize::MAX, START), m.stale_snapshot_json(0, START)] {
            assert!(matches!(parser.parse(body.as_bytes()), Ok(Msg::Snapshot(_))), "{name}: {body}");
        }
        let (b, a) = m.levels();
        assert!(!b.is_empty() && !a.is_empty() && b[0].0 < a[0].0 && b.iter().all(|l| l.0 > 0), "{name}");
        assert!(m.top_history().iter().all(|t| matches!((t.bid, t.ask), (Some(b), Some(a)) if b.0 < a.0)));
    }
}

/// Fair-value changes (ticks) of two symbols' models over `steps` seconds
/// (20 events a second), with the market factor at `correlation` (`None`:
/// no factor).
fn fair_moves(correlation: Option<f64>, steps: i64) -> (Vec<f64>, Vec<f64>) {
    let model = |seed: u64, symbol: &str| {
        let mut c = FlowConfig::new(symbol, SimMarket::Spot, seed);
        c.events_per_sec = 20.0;
        c.common = correlation.map(|correlation| CommonFactor { seed: 77, correlation });
        FlowModel::new(c, START)
    };
    let (mut a, mut b) = (model(1, "BTCUSDT"), model(2, "ETHUSDT"));
    let (mut moves_a, mut moves_b) = (Vec::new(), Vec::new());
    let (mut last_a, mut last_b) = (a.fair, b.fair);
    let mut out = Vec::new();
    for s in 1..=steps {
        a.advance_to(START + s * 1_000, &mut out);
        b.advance_to(START + s * 1_000, &mut out);
        out.clear();
        moves_a.push(a.fair - last_a);
        moves_b.push(b.fair - last_b);
        (last_a, last_b) = (a.fair, b.fair);
    }
    (moves_a, moves_b)
}

fn correlation_of(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

/// Symbols that share the market factor move together by about the
/// correlation asked for; without it they do not, and correlation 0 is
/// exactly no factor. Measured on one-second fair-value changes (the touch
/// follows the fair value through the book, with the book's own noise).
#[test]
fn a_shared_market_factor_correlates_symbols() {
    let (a, b) = fair_moves(Some(0.8), 200);
    let high = correlation_of(&a, &b);
    let (a, b) = fair_moves(None, 200);
    let none = correlation_of(&a, &b);
    // Each symbol's own regime (calm or volatile scales its walk) and the
    // impact of its sweeps take some of the correlation off: 0.66 here.
    assert!((0.5..0.95).contains(&high), "correlation 0.8 gave {high:.3}");
    assert!(none.abs() < 0.25, "independent symbols gave {none:.3}");
    assert_eq!(fair_moves(Some(0.0), 5), fair_moves(None, 5));
    // Deterministic: the same seeds give the same paths.
    assert_eq!(fair_moves(Some(0.8), 5), fair_moves(Some(0.8), 5));
}
