//! `mmbot ai eval --log ADVICE.jsonl RECORDING... [--config F] [--json OUT]`
//! and `mmbot ai compare --models a,b --eval RECORDING [--trials N]
//! [--snapshots K]`: the command-line side of [`crate::ai::eval`]. Text
//! tables on stdout; `--json` writes the same report for machines.
//!
//! Exit status: 0 done, 2 unusable input (a missing or garbled log, a
//! recording without frames, a log whose times miss the recording), 1 a
//! backtest that failed, 78 a bad config; `compare` as `mmbot ai compare`.

use std::path::{Path, PathBuf};

use crate::ai::eval::compare::compare_eval;
use crate::ai::eval::outcome::DIRECTION_BPS;
use crate::ai::eval::render::{compare_text, eval_text};
use crate::ai::eval::{evaluate, EvalOptions};
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The advice log (JSONL) a run with `[ai] log` wrote.
    #[arg(long)]
    pub log: PathBuf,
    /// The recording(s) of the same period, in order.
    #[arg(required = true)]
    pub recordings: Vec<PathBuf>,
    /// Config file (strategy, [ai], [market] symbol; default: $MMBOT_CONFIG, else ./mmbot.toml if present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A mid move beyond this many bps over an advice's TTL counts as up or down.
    #[arg(long, default_value_t = DIRECTION_BPS)]
    pub direction_bps: f64,
    /// Skip the paired backtests (scores only).
    #[arg(long)]
    pub no_backtest: bool,
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| format!("encoding the JSON report: {e}"))?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {} (--json): {e}", path.display()))
}

fn direction_ok(bps: f64) -> bool {
    bps.is_finite() && bps >= 0.0
}

/// `mmbot ai eval`.
pub fn run(args: EvalArgs, config: &Config) -> i32 {
    if !direction_ok(args.direction_bps) {
        crate::say!(
            "mmbot ai eval: --direction-bps {} is invalid: give a number of bps, 0 or more",
            args.direction_bps
        );
        return 2;
    }
    if !args.log.is_file() {
        crate::say!(
            "mmbot ai eval: the advice log {} does not exist; give the JSONL file a run with [ai] log wrote",
            args.log.display()
        );
        return 2;
    }
    let opts = EvalOptions { direction_bps: args.direction_bps, backtests: !args.no_backtest };
    let report = match evaluate(&args.log, &args.recordings, config, &opts) {
        Ok(r) => r,
        Err(e) => {
            crate::say!("mmbot ai eval: {e}");
            return e.exit_code();
        }
    };
    print!("{}", eval_text(&report));
    if let Some(path) = &args.json {
        if let Err(e) = write_json(path, &report) {
            crate::say!("mmbot ai eval: {e}");
            return 1;
        }
    }
    0
}

/// `mmbot ai compare --eval`.
pub fn compare(
    config: &Config,
    models: &[String],
    recordings: &[PathBuf],
    trials: usize,
    snapshots: usize,
    json: Option<&Path>,
) -> i32 {
    let models: Vec<String> = models.iter().map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect();
    if models.is_empty() {
        crate::say!("mmbot ai compare: --models is empty; give e.g. --models gpt-4.1,deepseek-v3.2");
        return 2;
    }
    if config.ai.provider.llm().is_none() {
        crate::say!(
            "mmbot ai compare: [ai] provider \"{}\" does not call an LLM; set [ai] provider to an LLM gateway",
            config.ai.provider.name()
        );
        return 2;
    }
    let report = match compare_eval(config, &models, recordings, trials, snapshots, DIRECTION_BPS) {
        Ok(r) => r,
        Err(e) => {
            crate::say!("mmbot ai compare: {e}");
            return e.exit_code();
        }
    };
    print!("{}", compare_text(&report));
    if let Some(path) = json {
        if let Err(e) = write_json(path, &report) {
            crate::say!("mmbot ai compare: {e}");
            return 1;
        }
    }
    // As plain `compare`: a model that never answered usably fails the run.
    report.models.iter().filter(|m| m.answered == 0).find_map(|m| m.first_error_code).unwrap_or(0)
}
