//! Ladders (`[strategy] levels` > 1): several orders a side, each level
//! worked by the paper exchange with its own queue place, in single- and
//! multi-symbol backtests.
//!
//! What is checked: a ladder fills behind the best and a whole ladder
//! filling never takes the position past `max_position`; one level with
//! the ladder keys set is the plain run; the account allocator admits a
//! ladder only as far as a symbol's budget goes; bad ladder settings and
//! a ladder for `run --live` are refused naming the key. Uses the real
//! USD-M captures in ../shared/data (combined streams,
//! web-socket-streams.md §General WSS information; FACTS.md §1.4) and
//! skips without them. No exchange behaviour beyond the paper exchange's
//! is involved.

mod common;

use std::path::PathBuf;
use std::process::Command;

use mmbot::backtest::Report;
use mmbot::backtest::{FillRecord, QuoteSeen, RunObserver};
use mmbot::config::Config;
use mmbot::exec::Side;
use mmbot::hot::fixed::{Qty, SCALE};
use mmbot::hot::strategy::{NativeStrategy, Strategy};
use mmbot::stats::clock::Clock;

/// Quotes at the touch, one unit a level, little latency (as in
/// tests/backtest_multi.rs): fills in a 30-second capture.
const TIGHT: &str = "[strategy]\ntarget_spread_pct = 0.0\nmin_order_size = \"1\"\nmax_position = \"3\"\n\
    [risk]\nmin_spread_bps = 0.0\n[paper]\nlatency_ms = 1\n";

fn capture(test: &str, name: &str) -> Option<PathBuf> {
    let file = common::recordings(test)?.into_iter().find(|f| f.file_name().is_some_and(|n| n == name));
    if file.is_none() {
        eprintln!("SKIP {test}: {name} is not among the recordings");
    }
    file
}

/// What a backtest showed: the largest ladder quoted a side, and each
/// fill's level (from its order id: level `i` of `n` numbers its orders
/// `i + 1`, `i + 1 + n`, ...) and position after.
#[derive(Default)]
struct Seen {
    most_levels: usize,
    /// (level, quantity, position after) per fill.
    fills: Vec<(usize, Qty, Qty)>,
    levels: u64,
}

impl RunObserver for Seen {
    fn on_quote(&mut self, q: &QuoteSeen) {
        self.most_levels = self.most_levels.max(q.quote.levels(Side::Buy)).max(q.quote.levels(Side::Sell));
    }
    fn on_fill(&mut self, f: &FillRecord) {
        self.fills.push((((f.fill.order_id - 1) % self.levels) as usize, f.fill.qty, f.position_after));
    }
}

fn backtest(file: &PathBuf, symbol: &str, extra: &str, levels: u64) -> (Report, Seen) {
    let text = format!("{TIGHT}[market]\nsymbol = \"{symbol}\"\n").replacen(
        "[risk]",
        &format!("levels = {levels}\n{extra}\n[risk]"),
        1,
    );
    let config = Config::from_toml(&text, "ladder").unwrap();
    let mut seen = Seen { levels, ..Seen::default() };
    let (r, _) =
        mmbot::backtest::run_with(std::slice::from_ref(file), &config, NativeStrategy, Clock::instant(), &mut seen)
            .unwrap();
    (r, seen)
}

/// The busy USD-M ETHUSDT capture: trades enough in its minutes to fill
/// levels behind the best (the 30-second captures fill only the best).
fn busy(test: &str) -> Option<PathBuf> {
    let file = common::shared_data().join("busy/usdm_ethusdt_20240808.gz");
    if !file.is_file() {
        eprintln!("SKIP {test}: {} is absent (real captures live in ../shared/data)", file.display());
        return None;
    }
    Some(file)
}

#[test]
fn a_ladder_fills_behind_the_best_within_the_position_limit() {
    let Some(file) = busy("a_ladder_fills_behind_the_best_within_the_position_limit") else { return };
    let (three, seen) = backtest(&file, "ETHUSDT", "level_spacing_ticks = 1", 3);
    assert_eq!(seen.most_levels, 3);
    for level in 0..3 {
        assert!(seen.fills.iter().any(|f| f.0 == level), "no fill at level {level}: {:?}", seen.fills);
    }
    // Three levels of one unit against max_position 3: never past it.
    let max = seen.fills.iter().map(|f| f.2 .0.abs()).max().unwrap();
    assert!(max <= 3 * SCALE, "position reached {}", Qty(max));
    assert!(three.trading.fill_model.ends_with("3 levels a side"), "{}", three.trading.fill_model);
    // Growth 2: 1, 2, 4 units, cut to the room left (3 in all from flat).
    let (_, grown) = backtest(&file, "ETHUSDT", "level_spacing_bps = 1\nlevel_size_growth = 2.0", 3);
    assert!(grown.fills.iter().all(|f| f.1 .0 <= [1, 2, 4][f.0] * SCALE), "{:?}", grown.fills);
    assert!(grown.fills.iter().any(|f| f.0 == 1 && f.1 .0 == 2 * SCALE), "{:?}", grown.fills);
    let max = grown.fills.iter().map(|f| f.2 .0.abs()).max().unwrap();
    assert!(max <= 3 * SCALE, "position reached {}", Qty(max));
}

#[test]
fn one_level_with_ladder_settings_is_the_plain_run() {
    let Some(file) = capture("one_level_with_ladder_settings_is_the_plain_run", "usdm_sushiusdt.gz") else { return };
    let (plain, _) = backtest(&file, "SUSHIUSDT", "", 1);
    let (set, _) = backtest(&file, "SUSHIUSDT", "level_spacing_bps = 3\nlevel_size_growth = 1.5", 1);
    assert_eq!(plain.trading, set.trading);
}

#[test]
fn the_allocator_admits_a_ladder_as_far_as_the_budget_goes() {
    let test = "the_allocator_admits_a_ladder_as_far_as_the_budget_goes";
    let Some(files) = common::recordings(test) else { return };
    let files: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "usdm_sushiusdt.gz" || n == "usdm_akrousdt.gz"))
        .collect();
    if files.len() != 2 {
        eprintln!("SKIP {test}: usdm_sushiusdt.gz and usdm_akrousdt.gz are needed");
        return;
    }
    // SUSHI quotes about 7.6 USDT a level: 20 USDT takes two bid levels of
    // three; AKRO's levels are cents each.
    let text = format!(
        "{TIGHT}[account]\nbalances = {{ USDT = \"100000\" }}\n\
         [[symbols]]\nsymbol = \"AKROUSDT\"\nbudget_quote = \"1000\"\n\
         [[symbols]]\nsymbol = \"SUSHIUSDT\"\nbudget_quote = \"20\"\n"
    )
    .replacen("[risk]", "levels = 3\nlevel_spacing_ticks = 1\n[risk]", 1);
    let config = Config::from_toml(&text, "ladders").unwrap();
    let symbols = config.symbols.expect("[[symbols]]");
    let strategies: Vec<Box<dyn Strategy>> = vec![Box::new(NativeStrategy), Box::new(NativeStrategy)];
    let r = mmbot::backtest::multi::run(&files, &symbols, strategies, Clock::instant()).unwrap();
    let (akro, sushi) = (&r.symbols[0], &r.symbols[1]);
    assert!(sushi.refused.get("symbol_quote_budget").copied().unwrap_or(0) > 0, "{:?}", sushi.refused);
    assert!(sushi.report.trading.orders > 0, "the first levels fit");
    // Asks wait for base bought (budget_base 0) on both: only SUSHI's bids
    // meet their budget.
    assert_eq!(akro.refused.get("symbol_quote_budget"), None, "{:?}", akro.refused);
    assert!(akro.report.trading.orders > 0);
}

/// `mmbot ARGS` with `config` as its file (`--config`, or the file
/// argument of `config check`).
fn mmbot(args: &[&str], config: &str, dir: &std::path::Path) -> std::process::Output {
    let path = dir.join("mmbot.toml");
    std::fs::write(&path, config).unwrap();
    let flag = if args[0] == "config" { None } else { Some("--config") };
    Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(args)
        .args(flag)
        .arg(&path)
        .env_remove("BINANCE_API_KEY")
        .env_remove("BINANCE_API_SECRET")
        .output()
        .unwrap()
}

#[test]
fn bad_ladder_settings_and_a_live_ladder_without_room_are_refused_naming_the_key() {
    let dir = common::temp_dir("ladder-refusals");
    for (config, key) in [
        ("[strategy]\nlevels = 9\n", "strategy.levels"),
        ("[strategy]\nlevels = 2\nlevel_spacing_ticks = 1\nlevel_spacing_bps = 2\n", "strategy.level_spacing_ticks"),
        ("[strategy]\nlevels = 2\nlevel_size_growth = 0\n", "strategy.level_size_growth"),
        ("[strategy]\nlevels = 2\nlevel_spacing_ticks = 0\n", "strategy.level_spacing_ticks"),
    ] {
        let out = mmbot(&["config", "check"], config, &dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{config}: {err}");
        assert!(err.contains(key), "{config}: {err}");
    }
    // A live ladder needs an open order per level a side: refused before
    // anything connects when [live] max_open_orders has no room for it.
    let live = "[market]\nsymbol = \"BTCUSDT\"\n[strategy]\nlevels = 2\n[live]\nmax_position = \"0.01\"\n\
                max_order_notional = \"100\"\ndaily_loss_limit = \"50\"\nmax_open_orders = 3\n";
    let out = mmbot(&["run", "--live", "--yes"], live, &dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("live.max_open_orders") && err.contains("at least 4"), "{err}");
}
