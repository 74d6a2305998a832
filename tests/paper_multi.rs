//! `mmbot paper` with `[[symbols]]` against `mmbot sim` on loopback: three
//! symbols' streams on one connection, one hot thread serving them, paper
//! exchanges and the account allocator on the exec thread
//! (src/runtime/multi.rs). Ephemeral port, bounded duration, no internet.
//! What is checked of Binance's behaviour is only its stream format: every
//! symbol's streams on one combined-stream connection
//! (`/stream?streams=<s1>/<s2>`, each event wrapped as
//! `{"stream":"<streamName>","data":<rawPayload>}`: binance-spot-api-docs
//! web-socket-streams.md §General WSS information, FACTS.md §1.4), which
//! the simulator serves and the hot group routes by. Orders, budgets and
//! the allocator are mmbot's own (the paper exchange and
//! src/exec/allocator.rs), not the exchange's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mmbot::config::Config;
use mmbot::hot::strategy::NativeStrategy;
use mmbot::runtime::multi::{groups, run_paper_multi, Groups, MultiRun, MultiSource};
use mmbot::sim::{Sim, SimConfig, SimSource};

const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "BNBUSDT"];

/// Runs `SYMBOLS` for 4 s against a fresh simulator (seed `seed`), each
/// entry's extra keys from `extra(symbol)`, every symbol on the native
/// strategy; the run and the symbols' groups.
fn run_for_4s(seed: u64, extra: impl Fn(&str) -> String) -> (MultiRun, Groups) {
    let sim = Sim::start(SimConfig {
        symbols: SYMBOLS.iter().map(|s| s.to_string()).collect(),
        source: SimSource::Synthetic { seed, events_per_sec: 300.0 },
        ..SimConfig::default()
    })
    .expect("the simulator starts on an ephemeral port");
    let entries: String = SYMBOLS.iter().map(|s| format!("[[symbols]]\nsymbol = \"{s}\"\n{}", extra(s))).collect();
    let text = format!(
        "[strategy]\ntarget_spread_pct = 0.01\nmin_order_size = \"0.01\"\nmax_position = \"1\"\n\
         [account]\nbalances = {{ USDT = \"200000\" }}\n{entries}"
    );
    let mut config = Config::from_toml(&text, "paper_multi").unwrap();
    let symbols = config.symbols.take().unwrap();
    let plan = groups(&symbols, None);
    let mut feed = config.feed.clone();
    feed.symbols = symbols.entries.iter().map(|e| e.budget.symbol).collect();
    feed.stream_url = Some(sim.ws_base());
    feed.rest_url = Some(sim.http_base());
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(4));
            stop.store(true, Ordering::Relaxed);
        })
    };
    let strategies = vec![NativeStrategy; SYMBOLS.len()];
    let run =
        run_paper_multi(MultiSource::Live(Box::new(feed)), Vec::new(), &symbols, strategies, None, stop, None).unwrap();
    stopper.join().unwrap();
    assert!(run.source_errors.is_empty(), "{:?}", run.source_errors);
    (run, plan)
}

#[test]
fn three_symbols_paper_trade_from_one_connection_and_one_account() {
    // BNBUSDT gets 1 USDT: not enough for any bid.
    let (run, _) = run_for_4s(11, |s| format!("budget_quote = \"{}\"\n", if s == "BNBUSDT" { 1 } else { 50_000 }));
    let [link] = &run.links[..] else { panic!("one group, one feed: {:?}", run.links.len()) };
    assert_eq!(link.connects, 1, "one connection carries every symbol");
    assert_eq!(run.report.unrouted, 0);
    for s in &run.report.symbols {
        let t = &s.report.trading;
        assert!(t.quotes > 0, "{}: never quoted (its book never synced?)", s.symbol);
        if s.symbol == "BNBUSDT" {
            assert_eq!(t.orders, 0, "1 USDT buys nothing");
            assert!(s.refused.get("symbol_quote_budget").copied().unwrap_or(0) > 0, "{:?}", s.refused);
        } else {
            assert!(t.orders > 0, "{}: no orders", s.symbol);
            assert!(s.refused.is_empty(), "{}: {:?}", s.symbol, s.refused);
        }
    }
    assert_eq!(run.report.totals["USDT"].symbols.len(), 3);
}

/// `core` in `[[symbols]]` splits the symbols into groups, each on its own
/// hot thread with its own connection: BTCUSDT and BNBUSDT on core 0,
/// ETHUSDT on core 1 make two groups and two connections, and every symbol
/// still trades from the one account.
#[test]
fn symbols_on_two_cores_make_two_groups_with_their_own_connections() {
    let (run, plan) = run_for_4s(12, |s| format!("budget_quote = \"50000\"\ncore = {}\n", usize::from(s == "ETHUSDT")));
    assert_eq!(plan, vec![(Some(0), vec![0, 2]), (Some(1), vec![1])]);
    assert_eq!(run.links.len(), 2, "a connection per group");
    assert!(run.links.iter().all(|l| l.connects == 1));
    assert_eq!(run.pinned_cores.len(), 2);
    for s in &run.report.symbols {
        assert!(s.report.trading.quotes > 0 && s.report.trading.orders > 0, "{}: {:?}", s.symbol, s.report.trading);
    }
}
