//! The exec thread's order throughput with a ladder on many symbols: per
//! quote, the account allocator admits the ladder and the symbol's paper
//! ladder (`src/exec/paper/ladder.rs`) cancels and replaces every level,
//! then time passes so the orders arrive. The quote moves one tick each
//! time, so every level of every side is replaced: 2 x levels new orders
//! per quote. Measured in the same run: 8 symbols x 3 levels, 8 x 1 and
//! 1 x 1. Prints the median over batches of ns per quote and orders per
//! second. Run: `cargo bench --bench exec`.

use std::time::Instant;

use mmbot::exec::allocator::{AccountLimits, Allocator, SymbolBudget};
use mmbot::exec::paper::{PaperConfig, PaperLadder};
use mmbot::exec::{Quote, Side};
use mmbot::hot::book::TopOfBook;
use mmbot::hot::fixed::{Price, SCALE};
use mmbot::hot::msg::{Level, Symbol};

const BATCHES: usize = 41;
const QUOTES_PER_BATCH: usize = 4_000;

struct Run {
    symbols: usize,
    levels: usize,
}

fn symbol(i: usize) -> Symbol {
    Symbol::new(format!("SYM{i}USDT").as_bytes())
}

/// A ladder around 100 + `shift` ticks: bids below, asks above, one tick
/// apart, 0.01 a level.
fn quote(sym: Symbol, levels: usize, shift: i64, t: i64) -> Quote {
    let tick = SCALE / 100;
    let bid = 100 * SCALE + shift * tick;
    let mut q = Quote::pulled(sym, t, 0);
    q.bid = Some(Level::new(bid, SCALE / 100));
    q.ask = Some(Level::new(bid + 2 * tick, SCALE / 100));
    for i in 1..levels as i64 {
        q.deeper.push(Side::Buy, Level::new(bid - i * tick, SCALE / 100));
        q.deeper.push(Side::Sell, Level::new(bid + (2 + i) * tick, SCALE / 100));
    }
    q
}

/// Median ns per quote and orders per second.
fn measure(run: &Run) -> (f64, f64) {
    let cfg = PaperConfig::default().with_latency(1_000);
    let budgets = (0..run.symbols)
        .map(|i| SymbolBudget {
            symbol: symbol(i),
            base: format!("SYM{i}"),
            quote: "USDT".into(),
            quote_budget: 1_000_000 * SCALE,
            base_budget: 1_000 * SCALE,
        })
        .collect();
    let limits = AccountLimits {
        balances: vec![("USDT".into(), 100_000_000 * SCALE)]
            .into_iter()
            .chain((0..run.symbols).map(|i| (format!("SYM{i}"), 10_000 * SCALE)))
            .collect(),
        ..AccountLimits::default()
    };
    let mut allocator = Allocator::new(budgets, limits);
    let mut ladders: Vec<PaperLadder> =
        (0..run.symbols).map(|i| PaperLadder::new(symbol(i), cfg, run.levels)).collect();
    let book = TopOfBook::default();
    let tick = Price(SCALE / 100);
    let mut t = 0i64;
    let mut per_quote = Vec::with_capacity(BATCHES);
    let mut orders_per_s = Vec::with_capacity(BATCHES);
    for batch in 0..BATCHES {
        let orders_before: u64 = ladders.iter().map(|l| l.stats().orders).sum();
        let start = Instant::now();
        for n in 0..QUOTES_PER_BATCH {
            let d = n % run.symbols;
            let shift = ((batch * QUOTES_PER_BATCH + n) / run.symbols % 2) as i64;
            let q = allocator.admit_quote(d, quote(symbol(d), run.levels, shift, t));
            ladders[d].on_quote(&q, tick, t);
            t += 2_000;
            ladders[d].on_book(&book, t, &mut |_| {});
        }
        let ns = start.elapsed().as_nanos() as f64;
        let orders: u64 = ladders.iter().map(|l| l.stats().orders).sum::<u64>() - orders_before;
        per_quote.push(ns / QUOTES_PER_BATCH as f64);
        orders_per_s.push(orders as f64 / (ns / 1e9));
    }
    (median(&mut per_quote), median(&mut orders_per_s))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    println!("exec thread: allocator + paper ladder per quote, every level replaced each quote");
    for run in [Run { symbols: 1, levels: 1 }, Run { symbols: 8, levels: 1 }, Run { symbols: 8, levels: 3 }] {
        let (ns, ops) = measure(&run);
        println!(
            "{:>2} symbols x {} levels: {:>8.0} ns per quote, {:>10.0} orders/s ({} new orders a quote)",
            run.symbols,
            run.levels,
            ns,
            ops,
            2 * run.levels
        );
    }
}
