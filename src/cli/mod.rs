//! The command line: one subcommand per job, each in its own module.

pub mod ai;
pub mod ai_eval;
pub mod backtest;
pub mod bench;
pub mod bench_group;
pub mod book;
pub mod config;
pub mod control_plane;
pub mod dashboard;
pub mod demo;
pub mod demo_multi;
pub mod exit;
pub mod feed_args;
pub mod multi;
pub mod multi_live;
pub mod outputs;
pub mod paper;
pub mod record;
pub mod replay;
pub mod report;
pub mod script;
pub mod session;
pub mod sim;
pub mod sweep;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mmbot", version, about = "Low-latency, AI-assisted market maker for Binance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole bot offline: a simulated market on loopback, paper trading, outputs in mmbot-out/.
    Demo(demo::DemoArgs),
    /// Trade live Binance data (or `mmbot sim`): paper by default, real orders with --live; writes the report, .hgrm files and plots.
    Run(paper::RunArgs),
    /// Re-render a saved report JSON in the terminal (and as SVG plots with --svg DIR).
    Report(report::ReportArgs),
    /// Replay recordings through the parser and the book; print top of book per depth event.
    Book(book::BookArgs),
    /// Replay recordings through the hot path and the paper exchange; write a report.
    Backtest(backtest::BacktestArgs),
    /// Many backtests at once: a grid or list of params and scripts on every core; sweep.csv/json, heatmap, walk-forward.
    Sweep(Box<sweep::SweepArgs>),
    /// Measure the hot path's per-stage latency (on a recording or synthetic diffs).
    Bench(bench::BenchArgs),
    /// Paper-trade on threads (pinned hot path, exec thread, rings), fed from recordings.
    Replay(replay::ReplayArgs),
    /// Paper-trade on the live feed (Binance, or `mmbot sim` with --stream-url/--rest-url).
    Paper(paper::PaperArgs),
    /// Record the live feed (frames exactly as received, plus REST snapshots) to a file.
    Record(record::RecordArgs),
    /// Run a local Binance-compatible market-data simulator (synthetic order flow or a recording, with faults).
    Sim(Box<sim::SimArgs>),
    /// Configuration: `mmbot config check [FILE]`.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Strategy scripts: `mmbot script check FILE`, `mmbot script test FILE`.
    #[command(subcommand)]
    Script(script::ScriptCommand),
    /// The AI advisor: `mmbot ai check`, `mmbot ai compare --models ..`, `mmbot ai cost`.
    #[command(subcommand)]
    Ai(ai::AiCommand),
}

/// Runs the command line; returns the process exit code ([`exit`]).
pub fn run() -> anyhow::Result<i32> {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // `--help` and `--version` are answers, not errors.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return Ok(exit::OK);
        }
        Err(e) => {
            let _ = e.print();
            let args: Vec<String> = std::env::args().skip(1).collect();
            let live_flag = args.iter().any(|a| matches!(a.as_str(), "--live" | "--yes" | "--dry-run"));
            if args.first().is_some_and(|c| c == "paper") && live_flag {
                crate::say!("`mmbot paper` only paper-trades; real orders are `mmbot run --live`");
            }
            return Ok(exit::USAGE);
        }
    };
    // Sessions with a dashboard decide where their logs go themselves.
    let _logs = match &cli.command {
        Command::Demo(_) | Command::Run(_) | Command::Paper(_) => None,
        _ => Some(crate::logging::init(true, None)),
    };
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Run(args) => paper::run(args.paper, args.live, "run"),
        Command::Report(args) => report::run(args),
        Command::Book(args) => book::run(args),
        Command::Backtest(args) => backtest::run(args),
        Command::Sweep(args) => sweep::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Paper(args) => paper::run(args, paper::LiveFlags::default(), "paper"),
        Command::Record(args) => record::run(args),
        Command::Sim(args) => sim::run(*args),
        Command::Script(cmd) => script::run(cmd),
        Command::Config(cmd) => config::run(cmd),
        Command::Ai(cmd) => ai::run(cmd),
    }
}

/// Checks a command line against mmbot's real parser without running
/// anything: `args` are the words after `mmbot` (`["backtest", "x.rec"]`).
/// `--help` and `--version` count as valid. Why: every command the README
/// shows is parsed by `tests/readme.rs`, so the documentation cannot drift
/// from the command line.
pub fn check_args(args: &[String]) -> Result<(), String> {
    let argv = std::iter::once("mmbot".to_string()).chain(args.iter().cloned());
    match Cli::try_parse_from(argv) {
        Ok(_) => Ok(()),
        Err(e) if !e.use_stderr() => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
