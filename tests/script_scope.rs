//! What a script sees and keeps (scripts issue, "State and scope"): every
//! getter of `m` on a hand-built book, trade ring, own orders and account;
//! top-level values and `state` kept between calls, across a reload with
//! `keep_state()`, reset with `reset_state()`; `fn on_fill(f)` told once per
//! own fill in a backtest, with the fill's fields, its errors counted.

mod common;

use std::cell::RefCell;

use mmbot::backtest::{run_with, FillRecord, RunObserver};
use mmbot::config::Config;
use mmbot::exec::Side;
use mmbot::hot::advice::Advice;
use mmbot::hot::book::Book;
use mmbot::hot::features::{FeatureConfig, FeatureState};
use mmbot::hot::fixed::{Price, Qty, SCALE};
use mmbot::hot::msg::{Aggressor, Level, Symbol, Trade};
use mmbot::hot::strategy::{
    Account, Decision, MarketScope, NativeStrategy, OwnOrder, OwnOrders, Strategy, StrategyFill, StrategyInput,
    StrategyParams,
};
use mmbot::script::api::ScopeNeeds;
use mmbot::script::{compile, engine, MarketState, Params, ScriptLimits, ScriptStrategy};
use mmbot::stats::clock::Clock;

fn fx(v: f64) -> i64 {
    (v * SCALE as f64).round() as i64
}

fn lv(p: f64, q: f64) -> Level {
    Level::new(fx(p), fx(q))
}

fn trade(i: i64) -> Trade {
    Trade {
        symbol: Symbol::default(),
        id: i as u64,
        price: Price(fx(100.0 + i as f64 * 0.01)),
        qty: Qty(fx(0.1 * (i + 1) as f64)),
        trade_time: 1_700_000_000_000 + i,
        event_time: 1_700_000_000_000 + i,
        aggressor: if i % 2 == 0 { Aggressor::Buy } else { Aggressor::Sell },
        aggregated: false,
    }
}

/// A book of 25 levels a side (99.99 down, 100.01 up, qty 1 + i), 70
/// trades (only the latest 64 kept), two own bids and one ask, an account.
fn hand_built() -> MarketState {
    hand_built_with(ScopeNeeds::ALL)
}

fn hand_built_with(needs: ScopeNeeds) -> MarketState {
    let bids: Vec<Level> = (0..25).map(|i| lv(99.99 - i as f64 * 0.01, 1.0 + i as f64)).collect();
    let asks: Vec<Level> = (0..25).map(|i| lv(100.01 + i as f64 * 0.01, 1.0 + i as f64)).collect();
    let mut book = Book::with_capacity(4096);
    book.load(&bids, &asks);
    let mut fs = FeatureState::new(FeatureConfig::default());
    let now_ns = 1_700_000_010_000_000_000;
    for i in 0..70 {
        fs.on_trade(&trade(i), now_ns);
    }
    let features = fs.on_book(&book, now_ns, 42).unwrap();
    let mut orders = OwnOrders::default();
    orders.push(
        true,
        OwnOrder {
            price: Price(fx(99.98)),
            qty: Qty(fx(0.5)),
            queue_ahead: Some(Qty(fx(1.5))),
            since_ns: now_ns - 2_000_000_000,
        },
    );
    orders.push(
        true,
        OwnOrder { price: Price(fx(99.90)), qty: Qty(fx(0.25)), queue_ahead: None, since_ns: now_ns - 500_000_000 },
    );
    orders.push(
        false,
        OwnOrder { price: Price(fx(100.03)), qty: Qty(fx(0.75)), queue_ahead: Some(Qty(0)), since_ns: now_ns },
    );
    let params = StrategyParams { target_spread_pct: 0.1, min_order_size: Qty(fx(0.5)), max_position: Qty(fx(3.0)) };
    let input = StrategyInput {
        features: &features,
        position: Qty(fx(2.0)),
        advice: Advice::neutral(),
        params: &params,
        scope: MarketScope {
            book: Some(&book),
            trades: Some(fs.trades()),
            orders: Some(&orders),
            account: Account {
                avg_entry: Price(fx(99.5)),
                open_cost: fx(199.0),
                realized: fx(1.25),
                fees: fx(0.125),
                last_fill_ns: Some(now_ns - 3_000_000_000),
            },
            tick_size: Price(fx(0.01)),
            step_size: Qty(fx(0.001)),
            exchange_time_ns: now_ns - 7_000_000,
            advice_expired: true,
            peers: None,
        },
    };
    MarketState::from_input_with(&input, needs)
}

/// `expr` evaluated by the engine scripts run in, with `m` in scope.
fn eval(m: &MarketState, expr: &str) -> f64 {
    let e = engine(&ScriptLimits::default(), &Params::new(), None);
    let mut scope = rhai::Scope::new();
    scope.push("m", *m);
    e.eval_with_scope::<f64>(&mut scope, expr).unwrap_or_else(|err| panic!("{expr}: {err}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn every_getter_reads_the_scope() {
    let m = hand_built();
    let cases: &[(&str, f64)] = &[
        ("m.tick_size", 0.01),
        ("m.step_size", 0.001),
        ("m.avg_entry", 99.5),
        ("m.realized_pnl", 1.25),
        // 2 x mid 100 - cost 199.
        ("m.unrealized_pnl", 1.0),
        ("m.fees", 0.125),
        ("m.time_local_s", 1_700_000_010.0),
        ("m.time_s", 1_700_000_010.0),
        ("m.time_exchange_s", 1_700_000_009.993),
        ("m.since_fill_s", 3.0),
        ("m.advice_expired", 1.0),
        ("m.depth", 20.0),
        ("m.trade_count", 64.0),
        ("m.bid_order_count", 2.0),
        ("m.ask_order_count", 1.0),
        // Levels: the touch first; 20 kept, 0.0 beyond and below 0.
        ("m.bid_price(0)", 99.99),
        ("m.bid_qty(0)", 1.0),
        ("m.bid_price(19)", 99.80),
        ("m.bid_qty(19)", 20.0),
        ("m.bid_price(20)", 0.0),
        ("m.bid_price(-1)", 0.0),
        ("m.ask_price(0)", 100.01),
        ("m.ask_qty(3)", 4.0),
        ("m.ask_price(19)", 100.20),
        ("m.ask_qty(20)", 0.0),
        // Trades newest first: trade 69 is the latest, 6 the oldest kept.
        ("m.trade_price(0)", 100.69),
        ("m.trade_qty(0)", 7.0),
        ("m.trade_time_s(0)", 1_700_000_000.069),
        ("m.trade_side(0)", -1.0),
        ("m.trade_side(1)", 1.0),
        ("m.trade_price(63)", 100.06),
        ("m.trade_price(64)", 0.0),
        ("m.trade_qty(-1)", 0.0),
        // Own orders, innermost first.
        ("m.bid_order_price(0)", 99.98),
        ("m.bid_order_qty(0)", 0.5),
        ("m.bid_order_queue(0)", 1.5),
        ("m.bid_order_age_s(0)", 2.0),
        ("m.bid_order_price(1)", 99.90),
        ("m.bid_order_queue(1)", -1.0),
        ("m.bid_order_age_s(1)", 0.5),
        ("m.bid_order_price(2)", 0.0),
        ("m.ask_order_price(0)", 100.03),
        ("m.ask_order_qty(0)", 0.75),
        ("m.ask_order_queue(0)", 0.0),
        ("m.ask_order_age_s(0)", 0.0),
        ("m.ask_order_qty(1)", 0.0),
        ("m.ask_order_queue(1)", 0.0),
    ];
    for &(expr, want) in cases {
        let got = eval(&m, expr);
        assert!(close(got, want), "{expr}: {got}, want {want}");
    }
    // 70 trades at one instant with the 10 s flow half-life: 70 / (10 / ln 2).
    let tau = 10.0 / std::f64::consts::LN_2;
    assert!(close(eval(&m, "m.trade_intensity"), 70.0 / tau), "{}", m.trade_intensity);
    assert_eq!(eval(&m, "m.volatility_bps_per_s"), 0.0, "one event: no volatility yet");
    // The scalars the hot path had already stay as they were.
    assert!(close(eval(&m, "m.best_bid"), 99.99) && close(eval(&m, "m.mid"), 100.0));
    assert!(close(eval(&m, "m.bid_qty"), 1.0));
}

#[test]
fn building_m_copies_only_what_the_script_reads() {
    let e = engine(&ScriptLimits::default(), &Params::new(), None);
    let needs = |src: &str| ScopeNeeds::of(compile(&e, "needs.rhai", src).unwrap().ast());
    let none = ScopeNeeds { levels: false, trades: false, orders: false, peers: false };
    assert_eq!(needs("fn quote(m) { bid(m.mid - m.tick_size * m.depth, m.bid_qty) }"), none);
    assert_eq!(needs("fn f(m) { m.trade_qty(0) } fn quote(m) { bid(f(m), 1.0) }"), ScopeNeeds { trades: true, ..none });
    assert_eq!(needs("fn quote(m) { bid(m.ask_qty(2), 1.0) }"), ScopeNeeds { levels: true, ..none });
    assert_eq!(needs("fn quote(m) { bid(m.bid_order_age_s(0), 1.0) }"), ScopeNeeds { orders: true, ..none });
    assert_eq!(needs("fn quote(m) { bid(m.peer_mid(1), 1.0) }"), ScopeNeeds { peers: true, ..none });
    // Left out, the data reads 0.0; the counts stay right.
    let m = hand_built_with(none);
    assert_eq!((m.depth, m.trade_count, m.bid_order_count, m.ask_order_count), (20.0, 64.0, 2.0, 1.0));
    assert_eq!((m.bid_price(0), m.trade_qty(0), m.bid_order_qty(0)), (0.0, 0.0, 0.0));
    let all = hand_built();
    let copied = MarketState {
        bids: all.bids,
        asks: all.asks,
        bid_levels: all.bid_levels,
        ask_levels: all.ask_levels,
        trades: all.trades,
        orders: all.orders,
        ..m
    };
    assert_eq!(copied, all);
}

#[test]
fn an_empty_scope_reads_zeros_never_errors() {
    let m = MarketState::default();
    for expr in ["m.bid_price(0)", "m.trade_side(5)", "m.ask_order_age_s(0)", "m.bid_order_queue(0)", "m.depth"] {
        assert_eq!(eval(&m, expr), 0.0, "{expr}");
    }
    assert_eq!(eval(&m, "m.since_fill_s"), 0.0, "a default state has no account (the hot path sets -1)");
    let params = StrategyParams::default();
    let f = mmbot::hot::features::Features::default();
    let input = StrategyInput {
        features: &f,
        position: Qty(0),
        advice: Advice::neutral(),
        params: &params,
        scope: MarketScope::default(),
    };
    assert_eq!(MarketState::from_input(&input).since_fill_s, -1.0, "no fill yet");
}

fn script(source: &str) -> ScriptStrategy {
    let e = engine(&ScriptLimits::default(), &Params::new(), None);
    let c = compile(&e, "state_test.rhai", source).unwrap();
    ScriptStrategy::new(e, c)
}

fn market() -> MarketState {
    MarketState { mid: 100.0, best_bid: 99.0, best_ask: 101.0, min_order_size: 1.0, ..Default::default() }
}

fn bid(d: &Decision) -> f64 {
    d.bid.map_or(f64::NAN, |b| b.price)
}

fn float(s: &ScriptStrategy, name: &str) -> f64 {
    s.state_var(name).unwrap_or_else(|| panic!("{name} not in scope")).as_float().unwrap()
}

fn state_float(s: &ScriptStrategy, key: &str) -> f64 {
    let state = s.state_var("state").expect("state").cast::<rhai::Map>();
    state.get(key).unwrap_or_else(|| panic!("state.{key} missing")).as_float().unwrap()
}

const COUNTER: &str = r#"
let calls = 0.0;
const STEP = 2.0;
state.n = 0.0;
fn quote(m) {
    calls += STEP;
    state.n += 1.0;
    bid(m.mid - calls, 1.0);
}
"#;

#[test]
fn top_level_values_and_state_persist_between_calls() {
    let mut s = script(COUNTER);
    assert!(!s.fast_path(), "a script using its state runs interpreted");
    for i in 1..=3 {
        let d = s.decide_market(market());
        assert_eq!(bid(&d), 100.0 - 2.0 * i as f64, "call {i}: {:?}", s.last_error());
    }
    assert_eq!(float(&s, "calls"), 6.0);
    assert_eq!(state_float(&s, "n"), 3.0);
    assert_eq!(s.stats().errors, 0);
}

#[test]
fn keep_state_carries_across_a_reload_and_fresh_otherwise() {
    let mut s = script(COUNTER);
    for _ in 0..2 {
        s.decide_market(market());
    }
    // The new version asks to keep: `calls` and `state` carry over; its
    // new variable starts from its own value; a constant is its own.
    let v2 = r#"
keep_state();
let calls = 1000.0;
let extra = 5.0;
const STEP = 10.0;
fn quote(m) {
    calls += STEP;
    state.n += 1.0;
    bid(m.mid - calls - extra, 1.0);
}
"#;
    let e = engine(&ScriptLimits::default(), &Params::new(), None);
    s.replace(compile(&e, "v2.rhai", v2).unwrap());
    let d = s.decide_market(market());
    assert_eq!(bid(&d), 100.0 - 14.0 - 5.0, "{:?}", s.last_error());
    assert_eq!(state_float(&s, "n"), 3.0);
    // A version that does not ask starts fresh.
    s.replace(compile(&e, "v3.rhai", COUNTER).unwrap());
    let d = s.decide_market(market());
    assert_eq!(bid(&d), 98.0);
    assert_eq!(state_float(&s, "n"), 1.0);
}

#[test]
fn reset_state_starts_the_next_call_fresh() {
    let mut s = script(
        r#"
let calls = 0.0;
fn quote(m) {
    calls += 1.0;
    if calls >= 3.0 { reset_state(); }
    bid(m.mid - calls, 1.0);
}
"#,
    );
    let bids: Vec<f64> = (0..5).map(|_| bid(&s.decide_market(market()))).collect();
    assert_eq!(bids, vec![99.0, 98.0, 97.0, 99.0, 98.0], "{:?}", s.last_error());
}

#[test]
fn helpers_called_in_the_callers_scope_share_the_state() {
    let mut s = script(
        r#"
let ema = 0.0;
fn update(x) { ema = 0.5 * ema + 0.5 * x; }
fn quote(m) {
    update!(m.mid);
    bid(ema, 1.0);
}
"#,
    );
    assert_eq!(bid(&s.decide_market(market())), 50.0, "{:?}", s.last_error());
    assert_eq!(bid(&s.decide_market(market())), 75.0);
}

fn fill(price: f64, qty: f64, side: f64) -> StrategyFill {
    StrategyFill { price, qty, side, fee: 0.01, time_s: 12.5, maker: true, position: side * qty }
}

#[test]
fn on_fill_sees_the_fill_and_the_state() {
    let mut s = script(
        r#"
state.fills = 0.0;
let last = #{};
fn on_fill(f) {
    state.fills += 1.0;
    last = #{ price: f.price, qty: f.qty, side: f.side, fee: f.fee, time_s: f.time_s, maker: f.maker,
              position: f.position };
}
fn quote(m) { bid(m.mid - state.fills, 1.0); }
"#,
    );
    s.on_fill(&fill(101.5, 0.25, -1.0));
    assert_eq!(state_float(&s, "fills"), 1.0, "{:?}", s.last_error());
    let last = s.state_var("last").unwrap().cast::<rhai::Map>();
    let get = |k: &str| last.get(k).unwrap().clone();
    assert_eq!(get("price").as_float().unwrap(), 101.5);
    assert_eq!(get("qty").as_float().unwrap(), 0.25);
    assert_eq!(get("side").as_float().unwrap(), -1.0);
    assert_eq!(get("fee").as_float().unwrap(), 0.01);
    assert_eq!(get("time_s").as_float().unwrap(), 12.5);
    assert!(get("maker").as_bool().unwrap());
    assert_eq!(get("position").as_float().unwrap(), -0.25);
    // The quote sees what on_fill left.
    assert_eq!(bid(&s.decide_market(market())), 99.0);
    assert_eq!(s.stats().errors, 0);
}

#[test]
fn an_on_fill_error_counts_like_a_quote_error() {
    let mut s = script(
        r#"
fn on_fill(f) {
    let x = f.price / 0;
    throw "on_fill failed at " + x;
}
fn quote(m) { bid(m.mid - 1.0, 1.0); }
"#,
    );
    s.on_fill(&fill(100.0, 1.0, 1.0));
    assert_eq!(s.stats().errors, 1);
    let err = s.last_error().expect("the error is kept");
    assert!(err.message.contains("on_fill failed"), "{err}");
    assert_eq!(err.line, 4, "{err}");
    // Quoting goes on.
    assert_eq!(bid(&s.decide_market(market())), 99.0);
    // A script without on_fill: nothing happens, nothing counted.
    let mut plain = script("fn quote(m) { bid(m.mid, 1.0); }");
    plain.on_fill(&fill(100.0, 1.0, 1.0));
    assert_eq!(plain.stats().errors, 0);
}

/// Quotes at the touch, small sizes, little latency (as tests/backtest.rs).
const TIGHT: &str = "
[strategy]
target_spread_pct = 0.0
min_order_size = \"1\"
max_position = \"3\"
[risk]
min_spread_bps = 0.0
[paper]
latency_ms = 1
";

/// The native strategy, noting the fills it is told and what its inputs held.
struct Spy<'a> {
    told: &'a RefCell<Vec<StrategyFill>>,
    seen: &'a RefCell<(f64, f64, f64, f64)>,
}

impl Strategy for Spy<'_> {
    fn decide(&mut self, input: &StrategyInput<'_>) -> Decision {
        let m = MarketState::from_input(input);
        let mut seen = self.seen.borrow_mut();
        seen.0 = seen.0.max(m.depth);
        seen.1 = seen.1.max(m.tick_size);
        seen.2 = seen.2.max(m.time_exchange_s);
        seen.3 = seen.3.max(m.bid_order_count + m.ask_order_count);
        NativeStrategy.decide(input)
    }
    fn on_fill(&mut self, fill: &StrategyFill) {
        self.told.borrow_mut().push(*fill);
    }
    fn name(&self) -> &str {
        "spy"
    }
}

struct Fills(Vec<FillRecord>);

impl RunObserver for Fills {
    fn wants_progress(&self) -> bool {
        false
    }
    fn on_fill(&mut self, f: &FillRecord) {
        self.0.push(*f);
    }
}

/// A script strategy lent to a backtest (which takes its strategy by value).
struct Lent<'a>(&'a mut ScriptStrategy);

impl Strategy for Lent<'_> {
    fn decide(&mut self, input: &StrategyInput<'_>) -> Decision {
        self.0.decide(input)
    }
    fn on_fill(&mut self, fill: &StrategyFill) {
        self.0.on_fill(fill)
    }
    fn name(&self) -> &str {
        "lent"
    }
}

#[test]
fn on_fill_is_told_once_per_fill_in_a_backtest() {
    let Some(files) = common::recordings("on_fill_is_told_once_per_fill_in_a_backtest") else { return };
    let config = Config::from_toml(TIGHT, "tight").unwrap();
    let mut total = 0;
    let mut orders_seen = 0.0f64;
    for file in &files {
        let told = RefCell::new(Vec::new());
        let seen = RefCell::new((0.0, 0.0, 0.0, 0.0));
        let mut fills = Fills(Vec::new());
        let spy = Spy { told: &told, seen: &seen };
        let name = file.display();
        let Ok(_) = run_with(std::slice::from_ref(file), &config, spy, Clock::instant(), &mut fills) else { continue };
        let told = told.into_inner();
        let made = &fills.0;
        // Each fill is told once, in order; fills whose report would come
        // back after the recording ends are never heard.
        assert!(
            told.len() <= made.len() && made.len() - told.len() <= 2,
            "{name}: {} told, {} made",
            told.len(),
            made.len()
        );
        let mut position = 0.0;
        for (t, r) in told.iter().zip(made) {
            let f = &r.fill;
            let side = if f.side == Side::Buy { 1.0 } else { -1.0 };
            position += side * f.qty.to_f64();
            assert_eq!((t.price, t.qty, t.side, t.maker), (f.price.to_f64(), f.qty.to_f64(), side, f.maker), "{name}");
            assert_eq!(t.time_s, f.time_ns as f64 / 1e9, "{name}");
            assert!(t.fee >= 0.0, "{name}: fee {}", t.fee);
            assert!(close(t.position, position), "{name}: position {} vs {position}", t.position);
        }
        let (depth, tick, exchange_s, _) = *seen.borrow();
        assert!(
            depth >= 1.0 && tick > 0.0 && exchange_s > 1.0e9,
            "{name}: the hot path fills the scope: {:?}",
            seen.borrow()
        );
        total += told.len();
        orders_seen = orders_seen.max(seen.borrow().3);
    }
    assert!(total > 0, "no fill was told across the captures");
    assert!(orders_seen > 0.0, "the strategy never saw its own working orders");

    // The same through a script: its on_fill counts into its state.
    let mut s = script(
        r#"
state.fills = 0.0;
fn on_fill(f) { state.fills += 1.0; }
fn quote(m) {
    let size = m.min_order_size;
    #{ bid: m.best_bid, ask: m.best_ask, bid_size: size, ask_size: size }
}
"#,
    );
    let mut told_total = 0.0;
    let mut made_total = 0;
    for file in &files {
        let mut fills = Fills(Vec::new());
        // A compiled quote never loads the state; the first on_fill does.
        let told = |s: &ScriptStrategy| s.state_var("state").map_or(0.0, |_| state_float(s, "fills"));
        let before = told(&s);
        if run_with(std::slice::from_ref(file), &config, Lent(&mut s), Clock::instant(), &mut fills).is_err() {
            continue;
        }
        made_total += fills.0.len();
        told_total += told(&s) - before;
    }
    assert!(told_total > 0.0 && told_total <= made_total as f64, "{told_total} told, {made_total} made");
    assert_eq!(s.stats().errors, 0, "{:?}", s.last_error());
}

#[test]
fn the_hot_path_m_follows_new_trades_and_levels_between_decisions() {
    // `decide` keeps one `m` and updates it in place: what changed between
    // two decisions must show, whichever data the script reads.
    let mut s = script("fn quote(m) { bid(m.trade_price(0) + m.bid_qty(0), m.trade_count) }");
    let mut book = Book::with_capacity(1024);
    book.load(&[lv(99.0, 1.0)], &[lv(101.0, 1.0)]);
    let mut fs = FeatureState::new(FeatureConfig::default());
    let params = StrategyParams::default();
    let decide = |s: &mut ScriptStrategy, fs: &mut FeatureState, book: &Book| {
        let f = fs.on_book(book, 1_000, 1).unwrap();
        let input = StrategyInput {
            features: &f,
            position: Qty(0),
            advice: Advice::neutral(),
            params: &params,
            scope: MarketScope { book: Some(book), trades: Some(fs.trades()), ..MarketScope::default() },
        };
        s.decide(&input).bid.map(|b| (b.price, b.size))
    };
    fs.on_trade(&trade(0), 1_000);
    assert_eq!(decide(&mut s, &mut fs, &book), Some((101.0, 1.0)), "{:?}", s.last_error());
    fs.on_trade(&trade(5), 1_000);
    book.load(&[lv(99.0, 3.0)], &[lv(101.0, 1.0)]);
    assert_eq!(decide(&mut s, &mut fs, &book), Some((100.05 + 3.0, 2.0)));
    // A version reading no trade: the count still follows.
    let e = engine(&ScriptLimits::default(), &Params::new(), None);
    s.replace(compile(&e, "count.rhai", "fn quote(m) { bid(m.mid, m.trade_count + m.depth) }").unwrap());
    fs.on_trade(&trade(6), 1_000);
    assert_eq!(decide(&mut s, &mut fs, &book), Some((100.0, 4.0)));
}
