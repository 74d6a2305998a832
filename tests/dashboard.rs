//! The terminal dashboard. Its layouts on ratatui's `TestBackend`: at 80x24
//! (compact) and at larger sizes every panel is there and nothing that
//! matters is cut off. Then the real thing through tmux (skipped where tmux
//! is not installed): `mmbot demo` draws the ladder, latency and key help;
//! `p` pauses quoting, `q` quits cleanly and the outputs are still written.

use std::process::Command;
use std::time::Duration;

use mmbot::cli::dashboard::draw::{draw, Screen};
use mmbot::cli::dashboard::events::{EventKind, EventLog};
use mmbot::cli::dashboard::symbols::{self, SymbolsScreen};
use mmbot::exec::paper::WorkingOrder;
use mmbot::exec::Quote;
use mmbot::exec::Side;
use mmbot::hot::fixed::{Price, Qty};
use mmbot::hot::msg::{Level, Symbol};
use mmbot::runtime::multi_status::{MultiStatus, SymbolRow, SymbolState};
use mmbot::runtime::{ExecStatus, HotStatus};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

mod common;

use common::tmux;

/// 0.01 in 1e-8 units: the simulated BTCUSDT tick.
const TICK: i64 = 1_000_000;
const BEST_BID: i64 = 5_999_999_000_000; // 59999.99

/// A screen as a demo shows it a minute in: ten levels a side, own orders
/// at the best bid and one tick outside the best ask, some fills and events.
fn screen() -> Screen {
    let mut status = HotStatus {
        connected: true,
        synced: true,
        connects: 1,
        frames: 5_644,
        update_id: 40_000_014_273,
        ..HotStatus::default()
    };
    for i in 0..10 {
        status.bids[i] =
            Some(Level { price: Price(BEST_BID - i as i64 * TICK), qty: Qty(12_345_000 + i as i64 * 1_000) });
        status.asks[i] = Some(Level { price: Price(BEST_BID + (i as i64 + 1) * TICK), qty: Qty(2_340_000 + i as i64) });
    }
    let own_bid = Level { price: Price(BEST_BID), qty: Qty(100_000) };
    let own_ask = Level { price: Price(BEST_BID + 2 * TICK + TICK / 2 * 2), qty: Qty(100_000) };
    status.working.bid = Some(own_bid);
    status.working.ask = Some(Level { price: Price(BEST_BID + 12 * TICK), ..own_ask });
    status.last_quote = Some(Quote {
        symbol: Symbol::new(b"BTCUSDT"),
        bid: Some(own_bid),
        ask: Some(own_ask),
        time_ns: 1,
        update_id: 1,
        deeper: Default::default(),
    });
    status.position = Qty(200_000);
    let mut log = EventLog::new();
    log.on_status(&status, 0.3);
    let mut exec = ExecStatus::default();
    for i in 1..=30u64 {
        let buy = i % 2 == 1 || i == 2;
        exec.fills = i;
        exec.position = Qty(exec.position.0 + if buy { 100_000 } else { -100_000 });
        exec.volume += 60 * 100_000_000;
        exec.fees += 6_000_000;
        log.on_exec(&exec, i as f64 * 0.7);
    }
    log.push(21.5, EventKind::Reload, "inventory_skew.rhai reloaded (fnv1a 0123456789abcdef), compiled".into());
    exec.pnl = -123_456_789;
    exec.orders = 120;
    exec.cancels = 100;
    Screen {
        title: "mmbot demo BTCUSDT".into(),
        mode: "SIMULATOR · paper orders".into(),
        strategy: "mmbot-out/20261201-222856/inventory_skew.rhai (fnv1a 0123456789abcdef, compiled)".into(),
        watched: Some("mmbot-out/20261201-222856/inventory_skew.rhai".into()),
        status,
        exec,
        max_position: Qty(500_000),
        latency: vec![("tick_to_quote", 600, 30_000, 150_000, 200_000), ("parse", 600, 2_000, 9_000, 12_000)],
        elapsed_s: 65,
        log,
        now_ns: 2,
        ..Screen::default()
    }
}

/// The screen drawn at `w`x`h`, one string per row.
fn render(w: u16, h: u16) -> Vec<String> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let v = screen();
    t.draw(|f| draw(f, &v)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..h).map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>()).collect()
}

fn check(w: u16, h: u16, parts: &[&str]) -> Vec<String> {
    let rows = render(w, h);
    let text = rows.join("\n");
    if std::env::var_os("MMBOT_SHOW_DASHBOARD").is_some() {
        println!("{w}x{h}:\n{text}");
    }
    for p in parts {
        assert!(text.contains(p), "{w}x{h}: missing {p:?}:\n{text}");
    }
    rows
}

/// What every layout must show, whole: the title with the venue, the
/// ladder with both own orders and the mid/spread line, the PnL and
/// inventory panel, the event log with its newest line, the keys.
const EVERYWHERE: &[&str] = &[
    "mmbot demo BTCUSDT",
    "SIMULATOR",
    "00:01:05",
    "book (top",
    "60000",
    "59999.99",
    "mid 59999.995",
    "spread 0.01",
    "<- own 0.001",
    "pnl & inventory",
    "position 0.002 of max 0.005",
    "short [",
    "] long",
    "pnl -1.2346",
    "fills 30: 16 buys, 14 sells",
    "events (30 fills",
    "inventory_skew.rhai reloaded",
    "q quit",
    "p pause",
    "r reload",
];

#[test]
fn the_compact_layout_fits_80_by_24() {
    let rows = check(80, 24, EVERYWHERE);
    // Asks above the mid line, bids below.
    let at = |s: &str| rows.iter().position(|r| r.contains(s)).unwrap();
    assert!(at("60000.01") < at("mid 59999.995") && at("mid 59999.995") < at("59999.98"), "{}", rows.join("\n"));
    check(
        80,
        24,
        &[
            "edge +0.5654, fees -1.8000",
            "t2q p50 30.000 us p99 150.000 us",
            "advice",
            "strategy inventory_skew.rhai",
            "quote bid 0.001 @ 59999.99",
            "ask 0.001 @ 60000.02",
        ],
    );
}

#[test]
fn larger_terminals_get_the_wide_layout_with_every_panel() {
    let wide = [
        "book (top 10)",
        "latency",
        "tick_to_quote",
        "p99.9",
        "quote, advice, strategy",
        "watching",
        "connected synced",
        "pnl -1.2346 = edge +0.5654 - fees 1.8000",
        "the first at 0.7 s",
        "(fnv1a 0123456789abcdef), compiled",
    ];
    for (w, h) in [(160, 48), (110, 44), (200, 60)] {
        check(w, h, EVERYWHERE);
        check(w, h, &wide);
    }
    check(
        160,
        48,
        &["watching mmbot-out/20261201-222856/inventory_skew.rhai", "pulled stale 0 sync 0 | connections 1"],
    );
    // In between: compact, still whole.
    check(100, 30, EVERYWHERE);
    check(120, 40, EVERYWHERE);
    check(80, 40, EVERYWHERE);
    check(140, 24, EVERYWHERE);
}

/// Starts `cmd` in a detached tmux session `dash` on `socket`, `w` x `h`,
/// in `dir`, away from any API key (offline advice, no network).
fn start_tmux(socket: &str, dir: &std::path::Path, (w, h): (u16, u16), cmd: &str) {
    let started = Command::new("tmux")
        .args(["-L", socket, "new-session", "-d", "-s", "dash", "-x", &w.to_string(), "-y", &h.to_string()])
        .arg("-c")
        .arg(dir)
        .arg(cmd)
        .env("TERM", "xterm-256color")
        .env_remove("HOLYSHEEP_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .status()
        .unwrap();
    assert!(started.success(), "tmux did not start {cmd}");
}

fn wait_for(socket: &str, text: &str, limit: Duration) -> Result<String, String> {
    common::tmux_wait_for(socket, "dash", text, limit)
}

#[test]
fn the_dashboard_draws_and_answers_its_keys() {
    if Command::new("tmux").arg("-V").output().is_err() {
        common::skip(format_args!("the_dashboard_draws_and_answers_its_keys: tmux is not installed"));
        return;
    }
    let socket = format!("mmbot-test-{}", std::process::id());
    let out = std::env::temp_dir().join(format!("mmbot-dash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let cmd = format!(
        "env -u HOLYSHEEP_API_KEY -u OPENAI_API_KEY {} demo --duration 60s --out {}; echo EXITED $?; sleep 30",
        env!("CARGO_BIN_EXE_mmbot"),
        out.join("runs").display()
    );
    std::fs::create_dir_all(&out).unwrap();
    start_tmux(&socket, &out, (160, 45), &cmd);
    let result = (|| -> Result<(), String> {
        let screen = wait_for(&socket, "connected synced", Duration::from_secs(20))?;
        for part in [
            "book (top 10)",
            "latency",
            "tick_to_quote",
            "q quit",
            "advice",
            "strategy",
            "inventory_skew.rhai",
            "offline",
            "SIMULATOR",
            "mid ",
            "pnl & inventory",
            "events (",
        ] {
            if !screen.contains(part) {
                return Err(format!("missing {part:?}:\n{screen}"));
            }
        }
        tmux(&socket, &["send-keys", "-t", "dash", "p"]);
        wait_for(&socket, "PAUSED", Duration::from_secs(5))?;
        tmux(&socket, &["send-keys", "-t", "dash", "p"]);
        let screen = wait_for(&socket, "tick_to_quote", Duration::from_secs(5))?;
        if screen.contains("PAUSED") {
            // Redraws come every 250 ms; give it one more.
            std::thread::sleep(Duration::from_millis(600));
            let again = tmux(&socket, &["capture-pane", "-t", "dash", "-p"]);
            if again.contains("PAUSED") {
                return Err(format!("still paused after the second p:\n{again}"));
            }
        }
        tmux(&socket, &["send-keys", "-t", "dash", "q"]);
        wait_for(&socket, "EXITED 0", Duration::from_secs(20))?;
        Ok(())
    })();
    tmux(&socket, &["kill-server"]);
    if let Err(screen) = result {
        panic!("dashboard check failed; last screen:\n{screen}");
    }
    let dirs: Vec<_> = std::fs::read_dir(out.join("runs")).unwrap().filter_map(|e| e.ok()).collect();
    assert_eq!(dirs.len(), 1);
    assert!(dirs[0].path().join("report.json").exists());
    let report = std::fs::read_to_string(dirs[0].path().join("report.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert!(v["trading"]["pulled"].as_u64().unwrap() >= 1, "pausing pulls the quotes");
    let _ = std::fs::remove_dir_all(&out);
}

// ---------------------------------------------------------------------------
// The symbols dashboard of a multi-symbol run

fn order(side: Side, price: i64, id: u64) -> WorkingOrder {
    WorkingOrder {
        id,
        side,
        price: Price(price),
        qty: Qty(100_000),
        orig_qty: Qty(100_000),
        queue_ahead: Qty(2_000_000),
        live_since_ns: 0,
        cancel_at_ns: None,
    }
}

/// Three symbols: BTCUSDT quoting a three-level ladder, ETHUSDT pulled,
/// BNBUSDT waiting for its book.
fn symbols_screen(selected: usize) -> SymbolsScreen {
    let btc = SymbolRow {
        symbol: Symbol::new(b"BTCUSDT"),
        quote_asset: "USDT".into(),
        best_bid: Some(Price(BEST_BID)),
        best_ask: Some(Price(BEST_BID + TICK)),
        working: (0..3)
            .flat_map(|i| {
                [
                    order(Side::Buy, BEST_BID - i * TICK, 1 + 2 * i as u64),
                    order(Side::Sell, BEST_BID + (i + 1) * TICK, 2 + 2 * i as u64),
                ]
            })
            .collect(),
        position: Qty(300_000),
        pnl: -12_345_678,
        fees: 6_000_000,
        quotes: 420,
        orders: 96,
        fills: 7,
        refused: 3,
        state: SymbolState::Quoting,
    };
    let eth = SymbolRow {
        symbol: Symbol::new(b"ETHUSDT"),
        best_bid: Some(Price(300_000_000_000)),
        best_ask: Some(Price(300_001_000_000)),
        pnl: 2_345_678,
        fills: 2,
        state: SymbolState::Pulled,
        ..SymbolRow { quote_asset: "USDT".into(), ..SymbolRow::default() }
    };
    let bnb = SymbolRow { symbol: Symbol::new(b"BNBUSDT"), quote_asset: "USDT".into(), ..SymbolRow::default() };
    SymbolsScreen {
        title: "mmbot demo --symbols 3".into(),
        mode: "SIMULATOR · paper orders".into(),
        status: MultiStatus { rows: vec![btc, eth, bnb], killed: None, allocator: true, elapsed_s: 42.0 },
        selected,
        quitting: false,
    }
}

fn render_symbols(v: &SymbolsScreen, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| symbols::draw(f, v)).unwrap();
    let buf = t.backend().buffer().clone();
    let rows: Vec<String> =
        (0..h).map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>()).collect();
    let text = rows.join("\n");
    if std::env::var_os("MMBOT_SHOW_DASHBOARD").is_some() {
        println!("{w}x{h}:\n{text}");
    }
    text
}

#[test]
fn the_symbols_table_shows_every_symbol_and_the_selected_ones_ladder() {
    for (w, h) in [(80, 24), (140, 40)] {
        let text = render_symbols(&symbols_screen(0), w, h);
        for part in
            ["mmbot demo --symbols 3", "BTCUSDT", "ETHUSDT", "BNBUSDT", "quoting", "pulled", "waiting", "totals"]
        {
            assert!(text.contains(part), "{w}x{h}: missing {part:?}:\n{text}");
        }
        // BTCUSDT's detail: its three levels a side, each with its queue.
        for part in ["level 1: bid", "level 3: bid", "59999.97", "(q 0.02)", "allocator on"] {
            assert!(text.contains(part), "{w}x{h}: missing {part:?}:\n{text}");
        }
    }
    // The best own bid and how many levels stand behind it.
    let wide = render_symbols(&symbols_screen(0), 140, 40);
    assert!(wide.contains("0.001@59999.99 +2"), "{wide}");
    assert!(wide.contains("USDT: pnl -0.1"), "totals add the symbols' PnL:\n{wide}");
    // Selecting ETHUSDT shows its detail instead.
    let eth = render_symbols(&symbols_screen(1), 140, 40);
    assert!(eth.contains("no orders working") && !eth.contains("level 1: bid"), "{eth}");
    // A kill is said on top, and every row says so.
    let mut killed = symbols_screen(0);
    killed.status.killed = Some("USDT day loss -50 at 1 ns: every symbol stopped".into());
    killed.status.rows.iter_mut().for_each(|r| r.state = SymbolState::Killed);
    let text = render_symbols(&killed, 140, 40);
    assert!(text.contains("KILLED: USDT day loss -50") && text.matches("killed").count() >= 3, "{text}");
}

#[test]
fn without_a_terminal_the_symbols_print_as_status_lines() {
    let lines = symbols::lines("mmbot paper", &symbols_screen(0).status);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(lines[0].starts_with("mmbot paper: 42 s BTCUSDT quoting, mid 59999.995,"), "{}", lines[0]);
    assert!(lines[0].contains("bid 0.001@59999.99 +2") && lines[0].contains("3 refused"), "{}", lines[0]);
    assert!(lines[3].starts_with("mmbot paper: USDT total pnl -0.1"), "{}", lines[3]);
}

#[test]
fn the_symbols_dashboard_draws_a_demo_of_three_symbols_and_quits() {
    if Command::new("tmux").arg("-V").output().is_err() {
        common::skip(format_args!(
            "the_symbols_dashboard_draws_a_demo_of_three_symbols_and_quits: tmux is not installed"
        ));
        return;
    }
    let socket = format!("mmbot-test-sym-{}", std::process::id());
    let out = std::env::temp_dir().join(format!("mmbot-dash-sym-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let cmd = format!(
        "{} demo --symbols 3 --duration 60s --out {}; echo EXITED $?; sleep 30",
        env!("CARGO_BIN_EXE_mmbot"),
        out.join("runs").display()
    );
    start_tmux(&socket, &out, (140, 40), &cmd);
    let wait = |text: &str, secs: u64| common::tmux_wait_for(&socket, "dash", text, Duration::from_secs(secs));
    let result = (|| -> Result<(), String> {
        // Quoting at once; the orders rest one entry latency later.
        let screen = wait("level 1: bid", 30)?;
        for part in ["mmbot demo --symbols 3", "SIMULATOR", "BTCUSDT", "ETHUSDT", "BNBUSDT", "quoting", "totals"] {
            if !screen.contains(part) {
                return Err(format!("missing {part:?}:\n{screen}"));
            }
        }
        // Down: ETHUSDT's detail (its name opens the detail panel's first
        // line, before its counts).
        tmux(&socket, &["send-keys", "-t", "dash", "Down"]);
        let detail_of = |screen: &str, sym: &str| {
            screen.lines().any(|l| l.starts_with(&format!("│{sym}  ")) && l.contains(" quotes · "))
        };
        let end = std::time::Instant::now() + Duration::from_secs(5);
        let mut screen = tmux(&socket, &["capture-pane", "-t", "dash", "-p"]);
        while !detail_of(&screen, "ETHUSDT") && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
            screen = tmux(&socket, &["capture-pane", "-t", "dash", "-p"]);
        }
        if !detail_of(&screen, "ETHUSDT") {
            return Err(format!("Down did not select ETHUSDT:\n{screen}"));
        }
        tmux(&socket, &["send-keys", "-t", "dash", "q"]);
        wait("EXITED 0", 20)?;
        Ok(())
    })();
    tmux(&socket, &["kill-server"]);
    if let Err(screen) = result {
        panic!("symbols dashboard check failed; last screen:\n{screen}");
    }
    let dirs: Vec<_> = std::fs::read_dir(out.join("runs")).unwrap().filter_map(|e| e.ok()).collect();
    assert_eq!(dirs.len(), 1);
    assert!(dirs[0].path().join("report.json").exists(), "q still writes the report");
    let _ = std::fs::remove_dir_all(&out);
}

/// A terminal that goes away (an SSH session dropped, a tmux pane killed)
/// must not leave the bot spinning: crossterm's input poll never returns
/// on a hung-up tty (crossterm-rs/crossterm issue #793), so the dashboards
/// watch the terminal themselves (src/cli/dashboard/tty.rs). The hang-up's
/// SIGHUP stops the run, which ends with its report written.
#[test]
fn a_dashboard_whose_terminal_goes_away_ends_its_run_with_the_report() {
    if Command::new("tmux").arg("-V").output().is_err() {
        common::skip(format_args!("a_dashboard_whose_terminal_goes_away_ends_its_run_with_the_report: no tmux"));
        return;
    }
    for (name, args) in [("one", "demo"), ("three", "demo --symbols 3")] {
        let socket = format!("mmbot-test-hup-{name}-{}", std::process::id());
        let out = std::env::temp_dir().join(format!("mmbot-dash-hup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let runs = out.join("runs");
        let cmd = format!("{} {args} --duration 120s --out {}", env!("CARGO_BIN_EXE_mmbot"), runs.display());
        start_tmux(&socket, &out, (140, 40), &cmd);
        let drawn = common::tmux_wait_for(&socket, "dash", "SIMULATOR", Duration::from_secs(30));
        tmux(&socket, &["kill-server"]);
        drawn.unwrap_or_else(|screen| panic!("{args}: never drew:\n{screen}"));
        // The run ends (well before its 120 s) and writes its report.
        let end = std::time::Instant::now() + Duration::from_secs(30);
        let report = || {
            std::fs::read_dir(&runs)
                .ok()?
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("report.json"))
                .find(|p| p.exists())
        };
        let alive =
            || Command::new("pgrep").arg("-f").arg(runs.to_str().unwrap()).output().is_ok_and(|o| o.status.success());
        while (report().is_none() || alive()) && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(200));
        }
        let still = alive();
        if still {
            let _ = Command::new("pkill").arg("-9").arg("-f").arg(runs.to_str().unwrap()).status();
        }
        assert!(!still, "{args}: still running 30 s after its terminal went away");
        let report = report().unwrap_or_else(|| panic!("{args}: no report.json after the hang-up"));
        let log = std::fs::read_to_string(report.with_file_name("mmbot.log")).unwrap_or_default();
        assert!(log.contains("the terminal went away"), "{args}: {log}");
        let _ = std::fs::remove_dir_all(&out);
    }
}
