//! Per-call cost of a strategy decision, in the same run and on the same
//! realistic input (BTCUSDT book around 61,837, long half the limit, wide
//! spread / high volatility / up advice): the native strategy,
//! `tutorial.rhai` on the compiled fast path, and `tutorial.rhai` in the Rhai
//! interpreter. Each is the whole `Strategy::decide` the hot path calls
//! (market state built, script run, result turned into a decision). Also
//! the other shipped scripts on both paths, and the bare compiled call.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};

use mmbot::hot::advice::{Advice, Direction, SpreadState, Volatility};
use mmbot::hot::features::Features;
use mmbot::hot::fixed::Qty;
use mmbot::hot::msg::Level;
use mmbot::hot::strategy::{NativeStrategy, Strategy, StrategyInput, StrategyParams};
use mmbot::script::fast::Frame;
use mmbot::script::{MarketState, ScriptLimits, ScriptStrategy};

fn script(name: &str, fast: bool) -> ScriptStrategy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name);
    let mut s = ScriptStrategy::from_file(&path, &Default::default(), &ScriptLimits::default()).unwrap();
    assert!(s.script().fast().is_some(), "{name}: {:?}", s.script().not_compiled());
    s.set_fast_path(fast);
    s
}

fn bench_decide(c: &mut Criterion) {
    let features = Features {
        best_bid: Level::new(6_183_763_000_000, 378_826_000),
        best_ask: Level::new(6_183_764_000_000, 154_520_000),
        mid: 61_837.635,
        microprice: 61_837.637,
        spread_bps: 0.0016,
        imbalance: 0.42,
        volatility_bps: 0.8,
        trade_flow: -0.35,
        time_ns: 1_723_161_255_408_000_000,
        update_id: 50_093_239_224,
        ..Features::default()
    };
    let params = StrategyParams {
        target_spread_pct: 0.1,
        min_order_size: Qty(100_000), // 0.001
        max_position: Qty(1_000_000), // 0.01
    };
    let advice = Advice {
        spread: SpreadState::Wide,
        volatility: Volatility::High,
        direction: Direction::Up,
        confidence: 70,
        multiplier: 1.2,
        received_ns: 1_723_161_250_000_000_000,
        ..Advice::neutral()
    };
    let input = StrategyInput {
        features: &features,
        position: Qty(500_000),
        advice,
        params: &params,
        scope: Default::default(),
    };

    // Same decisions from all three before timing them.
    let want = NativeStrategy.decide(&input);
    for fast in [true, false] {
        let got = script("tutorial.rhai", fast).decide(&input);
        assert_eq!((got.bid, got.ask, got.pull), (want.bid, want.ask, want.pull));
    }

    let mut g = c.benchmark_group("strategy_decide");
    g.bench_function("native", |b| b.iter(|| black_box(NativeStrategy.decide(black_box(&input)))));
    for name in ["tutorial.rhai", "inventory_skew.rhai", "avellaneda_stoikov.rhai"] {
        let mut compiled = script(name, true);
        g.bench_function(format!("{name}/compiled"), |b| b.iter(|| black_box(compiled.decide(black_box(&input)))));
        let mut interpreted = script(name, false);
        g.bench_function(format!("{name}/interpreted"), |b| {
            b.iter(|| black_box(interpreted.decide(black_box(&input))))
        });
    }
    g.finish();

    // The compiled call alone, on a market state built once.
    let s = script("tutorial.rhai", true);
    let fast = s.script().fast().unwrap();
    let m = MarketState::from_input(&input);
    let mut frame = Frame::boxed();
    let mut g = c.benchmark_group("fast_quote_run");
    g.bench_function("tutorial.rhai", |b| b.iter(|| black_box(fast.run(black_box(&m), &mut frame))));
    g.bench_function("market_state_from_input", |b| b.iter(|| black_box(MarketState::from_input(black_box(&input)))));
    g.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
