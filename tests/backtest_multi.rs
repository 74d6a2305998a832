//! Multi-symbol backtests (`[[symbols]]`, `src/backtest/multi.rs`): several
//! recordings merged in receive-time order, one desk per symbol, the account
//! allocator between their quotes and their paper exchanges.
//!
//! What is checked: with no allocator, or budgets that do not bind, every
//! symbol's result equals its own single-symbol backtest; a symbol held to
//! a small budget trades less while the others are untouched (no symbol
//! trades on another's budget); account limits (open orders, the daily
//! loss) hold across symbols. Uses the real captures in ../shared/data and
//! skips without them. The captures are real Binance combined streams
//! (`{"stream":..,"data":..}`, web-socket-streams.md §General WSS
//! information, FACTS.md §1.4): lines are routed by that stream name, and a
//! REST snapshot's bare body (rest-api.md §Order book, FACTS.md §1.7: no
//! symbol in it) by the file it came in. No exchange behaviour beyond the
//! paper exchange's is involved; the allocator's rules are mmbot's own
//! (its unit tests).

mod common;

use std::path::PathBuf;

use mmbot::backtest::multi::{run, MultiReport};
use mmbot::backtest::Report;
use mmbot::config::Config;
use mmbot::hot::strategy::{NativeStrategy, Strategy};
use mmbot::stats::clock::Clock;

/// Quotes at the touch, small sizes, little latency: fills in 30-second
/// captures (as in tests/backtest.rs).
const TIGHT: &str = "[strategy]\ntarget_spread_pct = 0.0\nmin_order_size = \"1\"\nmax_position = \"3\"\n\
    [risk]\nmin_spread_bps = 0.0\n[paper]\nlatency_ms = 1\n";

/// The captures and their symbols (`usdm_akrousdt.gz` -> AKROUSDT).
fn captures(test: &str) -> Option<Vec<(String, PathBuf)>> {
    let files = common::recordings(test)?;
    Some(
        files
            .into_iter()
            .filter_map(|f| {
                let stem = f.file_name()?.to_str()?.split('.').next()?.to_string();
                let (_, sym) = stem.split_once('_')?;
                Some((sym.to_ascii_uppercase(), f))
            })
            .collect(),
    )
}

fn single(symbol: &str, file: &PathBuf) -> Report {
    let config = Config::from_toml(&format!("{TIGHT}[market]\nsymbol = \"{symbol}\"\n"), "single").unwrap();
    mmbot::backtest::run(std::slice::from_ref(file), &config, NativeStrategy, Clock::instant()).unwrap().0
}

fn multi(config: &str, files: &[PathBuf]) -> MultiReport {
    let config = Config::from_toml(config, "multi").unwrap();
    let symbols = config.symbols.expect("[[symbols]]");
    let strategies: Vec<Box<dyn Strategy>> =
        symbols.entries.iter().map(|_| Box::new(NativeStrategy) as Box<dyn Strategy>).collect();
    run(files, &symbols, strategies, Clock::instant()).unwrap()
}

fn entries(symbols: &[&str], extra: impl Fn(&str) -> String) -> String {
    symbols.iter().map(|s| format!("[[symbols]]\nsymbol = \"{s}\"\n{}", extra(s))).collect()
}

/// The parts of two reports of one symbol that must agree.
fn assert_same(name: &str, multi: &Report, own: &Report) {
    assert_eq!(multi.trading, own.trading, "{name}: trading differs from its own backtest");
    let (m, o) = (&multi.input, &own.input);
    assert_eq!(
        (m.frames, m.depth_events, m.trades, m.gaps, m.resyncs),
        (o.frames, o.depth_events, o.trades, o.gaps, o.resyncs),
        "{name}: input differs"
    );
}

#[test]
fn each_symbol_of_a_multi_symbol_backtest_equals_its_own_backtest() {
    let Some(caps) = captures("each_symbol_of_a_multi_symbol_backtest_equals_its_own_backtest") else { return };
    let names: Vec<&str> = caps.iter().map(|(s, _)| s.as_str()).collect();
    let files: Vec<PathBuf> = caps.iter().map(|(_, f)| f.clone()).collect();
    let free = multi(&format!("{TIGHT}{}", entries(&names, |_| String::new())), &files);
    // Budgets far beyond what a 30-second run can use: the allocator
    // admits everything, and nothing changes.
    let assets = ["USDT", "ETH", "BTC", "EUR"];
    let balances: Vec<String> = assets.iter().map(|a| format!("{a} = \"1000000\"")).collect();
    let roomy = multi(
        &format!(
            "{TIGHT}[account]\nbalances = {{ {} }}\n{}",
            balances.join(", "),
            entries(&names, |_| "budget_quote = \"10000\"\n".into())
        ),
        &files,
    );
    assert_eq!(roomy.allocator, "account");
    let mut fills = 0;
    for (i, (sym, file)) in caps.iter().enumerate() {
        let own = single(sym, file);
        assert_same(sym, &free.symbols[i].report, &own);
        assert_same(sym, &roomy.symbols[i].report, &own);
        assert!(roomy.symbols[i].refused.is_empty(), "{sym}: refused {:?}", roomy.symbols[i].refused);
        fills += own.trading.fills;
    }
    assert!(fills > 0, "the comparison covered fills");
    assert_eq!(free.unrouted, 0);
    let lines: u64 = caps.iter().map(|(_, f)| common::lines(f).len() as u64).sum();
    assert_eq!(free.frames, lines, "every line of every file was merged in");
}

/// The USD-M captures share USDT as their quote asset.
fn usdt_captures(test: &str) -> Option<Vec<(String, PathBuf)>> {
    let caps: Vec<_> = captures(test)?.into_iter().filter(|(s, _)| s.ends_with("USDT") && s != "NKNUSDT").collect();
    (caps.len() >= 2).then_some(caps)
}

#[test]
fn a_symbol_on_a_small_budget_cannot_use_another_symbols() {
    let Some(caps) = usdt_captures("a_symbol_on_a_small_budget_cannot_use_another_symbols") else { return };
    let names: Vec<&str> = caps.iter().map(|(s, _)| s.as_str()).collect();
    let files: Vec<PathBuf> = caps.iter().map(|(_, f)| f.clone()).collect();
    // SUSHIUSDT (about 7.6 USDT a unit, quoted 1 unit a side) gets 5 USDT;
    // the others 1,000 each, with the account holding plenty more.
    let small = "SUSHIUSDT";
    let text = format!(
        "{TIGHT}[account]\nbalances = {{ USDT = \"100000\" }}\n{}",
        entries(&names, |s| format!("budget_quote = \"{}\"\n", if s == small { "5" } else { "1000" }))
    );
    let r = multi(&text, &files);
    for (i, (sym, file)) in caps.iter().enumerate() {
        let own = single(sym, file);
        let got = &r.symbols[i];
        if sym == small {
            assert!(got.refused.get("symbol_quote_budget").copied().unwrap_or(0) > 0, "{:?}", got.refused);
            assert_eq!(got.report.trading.fills, 0, "no budget for a bid, so no base for an ask");
            assert!(own.trading.fills > 0, "{sym} trades on its own");
        } else {
            assert_same(sym, &got.report, &own);
            assert!(got.refused.is_empty(), "{sym}: {:?}", got.refused);
        }
    }
    let usdt = &r.totals["USDT"];
    assert_eq!(usdt.symbols.len(), caps.len());
    assert_eq!(usdt.fills, r.symbols.iter().map(|s| s.report.trading.fills).sum::<u64>());
    // PnL (negative here: quoting at the touch pays the spread) adds up.
    let cents = |s: &str| (s.parse::<f64>().unwrap() * 1e8).round() as i64;
    let sum: i64 = r.symbols.iter().map(|s| cents(&s.report.trading.pnl)).sum();
    assert_eq!(
        cents(&usdt.pnl),
        sum,
        "total {} of {:?}",
        usdt.pnl,
        r.symbols.iter().map(|s| &s.report.trading.pnl).collect::<Vec<_>>()
    );
    assert_ne!(sum, 0, "the captures' fills made some PnL");
}

#[test]
fn account_limits_hold_across_symbols() {
    let Some(caps) = usdt_captures("account_limits_hold_across_symbols") else { return };
    let names: Vec<&str> = caps.iter().map(|(s, _)| s.as_str()).collect();
    let files: Vec<PathBuf> = caps.iter().map(|(_, f)| f.clone()).collect();
    let budgets = entries(&names, |_| "budget_quote = \"1000\"\n".into());
    let account = |limits: &str| format!("{TIGHT}[account]\nbalances = {{ USDT = \"100000\" }}\n{limits}\n{budgets}");
    let free = multi(&account(""), &files);
    let orders = |r: &MultiReport| r.symbols.iter().map(|s| s.report.trading.orders).sum::<u64>();
    let refused =
        |r: &MultiReport, why: &str| r.symbols.iter().map(|s| s.refused.get(why).copied().unwrap_or(0)).sum::<u64>();
    // Two orders at once across four symbols that each want one a side.
    let capped = multi(&account("max_open_orders = 2"), &files);
    assert!(refused(&capped, "open_orders") > 0);
    assert!(orders(&capped) < orders(&free), "{} orders capped, {} free", orders(&capped), orders(&free));
    // A loss of a thousandth of a USDT over all symbols stops them all.
    let stopped = multi(&account("daily_loss_limit = { USDT = \"0.001\" }"), &files);
    let kill = stopped.killed.as_deref().expect("the day's loss passed the limit");
    assert!(kill.starts_with("USDT day loss -"), "{kill}");
    assert!(refused(&stopped, "killed") > 0);
    assert!(orders(&stopped) < orders(&free));
}

#[test]
fn the_cli_backtests_a_symbols_config_and_one_symbol_commands_refuse_it() {
    let Some(caps) = usdt_captures("the_cli_backtests_a_symbols_config_and_one_symbol_commands_refuse_it") else {
        return;
    };
    let dir = common::temp_dir("backtest-multi-cli");
    let config = dir.join("multi.toml");
    let names: Vec<&str> = caps.iter().map(|(s, _)| s.as_str()).collect();
    std::fs::write(&config, format!("{TIGHT}{}", entries(&names, |_| String::new()))).unwrap();
    let report = dir.join("report.json");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mmbot"));
    cmd.arg("backtest").args(caps.iter().map(|(_, f)| f)).arg("--config").arg(&config).arg("--report").arg(&report);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: MultiReport = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r.symbols.iter().map(|s| s.symbol.as_str()).collect::<Vec<_>>(), names);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: ", names[0])) && stderr.contains("levels refused by the allocator"),
        "{stderr}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["bench", "--events", "100", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("`mmbot bench` trades one so far"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `mmbot replay` with `[[symbols]]`: the symbols on one hot thread, the
/// paper exchanges and the allocator on the exec thread
/// (src/runtime/multi.rs). Threaded runs are not deterministic, so this
/// checks what must hold whatever the timing.
#[test]
fn a_threaded_replay_runs_every_symbol_on_one_hot_thread_within_budgets() {
    let Some(caps) = usdt_captures("a_threaded_replay_runs_every_symbol_on_one_hot_thread_within_budgets") else {
        return;
    };
    let dir = common::temp_dir("replay-multi");
    let config = dir.join("multi.toml");
    let names: Vec<&str> = caps.iter().map(|(s, _)| s.as_str()).collect();
    let small = "SUSHIUSDT";
    // The small-budget symbol on a hot thread of its own (core 1), the
    // others together (core 0): two groups.
    let budgets = entries(&names, |s| {
        format!("budget_quote = \"{}\"\ncore = {}\n", if s == small { "5" } else { "1000" }, usize::from(s == small))
    });
    std::fs::write(&config, format!("{TIGHT}[account]\nbalances = {{ USDT = \"100000\" }}\n{budgets}")).unwrap();
    let report = dir.join("report.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .arg("replay")
        .args(caps.iter().map(|(_, f)| f))
        // Paced (30 s of capture in about 1.5 s) so the exec thread keeps
        // up on a loaded machine: every symbol's quotes reach its exchange.
        .args(["--speed", "20"])
        .arg("--config")
        .arg(&config)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("{} symbols on threads (2 hot", caps.len())), "{stderr}");
    let r: MultiReport = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r.unrouted, 0);
    for (s, (_, file)) in r.symbols.iter().zip(&caps) {
        let t = &s.report.trading;
        assert!(t.quotes > 0, "{}: no quotes", s.symbol);
        assert_eq!(s.report.input.frames as usize, common::lines(file).len(), "{}: frames", s.symbol);
        if s.symbol == small {
            assert_eq!((t.orders, t.fills), (0, 0), "{small}: 5 USDT buys no unit");
            assert!(s.refused.get("symbol_quote_budget").copied().unwrap_or(0) > 0, "{:?}", s.refused);
        } else {
            assert!(s.refused.is_empty(), "{}: {:?}", s.symbol, s.refused);
            assert!(t.orders > 0, "{}: no orders", s.symbol);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A script reads the other symbols' mids (`m.peer_mid(i)`, in
/// `[[symbols]]` order): quoting CTKUSDT only once AKROUSDT has a mid makes
/// orders in a multi-symbol run and none alone, where there are no peers.
#[test]
fn a_script_reads_another_symbols_mid() {
    let Some(caps) = usdt_captures("a_script_reads_another_symbols_mid") else { return };
    let pick = |name: &str| caps.iter().find(|(s, _)| s == name).map(|(_, f)| f.clone());
    let (Some(akro), Some(ctk)) = (pick("AKROUSDT"), pick("CTKUSDT")) else {
        common::skip(format_args!("a_script_reads_another_symbols_mid: needs the AKROUSDT and CTKUSDT captures"));
        return;
    };
    let dir = common::temp_dir("peer-script");
    let script = dir.join("follow.rhai");
    std::fs::write(
        &script,
        "fn quote(m) {\n    if m.peer_count == 2.0 && m.peer_mid(0) > 0.0 && m.peer_age_s(0) >= 0.0 && m.peer_mid(5) == 0.0 {\n        \
         bid(m.best_bid, m.min_order_size);\n    } else {\n        pull();\n    }\n}\n",
    )
    .unwrap();
    let text = format!(
        "{TIGHT}[[symbols]]\nsymbol = \"AKROUSDT\"\n[[symbols]]\nsymbol = \"CTKUSDT\"\n[symbols.strategy]\nscript = {:?}\n",
        script.display().to_string()
    );
    let config = Config::from_toml(&text, "peers").unwrap();
    let symbols = config.symbols.unwrap();
    let mut strategies: Vec<Box<dyn Strategy>> = vec![Box::new(NativeStrategy)];
    let c = &symbols.entries[1].config;
    let s = mmbot::script::ScriptStrategy::from_file(&script, &c.params, &c.script_limits).unwrap();
    assert!(s.name().contains("compiled"), "the fast path reads peers too: {}", s.name());
    strategies.push(Box::new(s));
    let r = run(&[akro, ctk.clone()], &symbols, strategies, Clock::instant()).unwrap();
    let follower = &r.symbols[1].report.trading;
    assert!(follower.orders > 0, "CTKUSDT never quoted on AKROUSDT's mid: {follower:?}");
    // Alone, the same script has no peers and never bids.
    let alone = Config::from_toml(&format!("{TIGHT}[market]\nsymbol = \"CTKUSDT\"\n"), "alone").unwrap();
    let s = mmbot::script::ScriptStrategy::from_file(&script, &alone.params, &alone.script_limits).unwrap();
    let (own, _) = mmbot::backtest::run(&[ctk], &alone, s, Clock::instant()).unwrap();
    assert_eq!(own.trading.orders, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
