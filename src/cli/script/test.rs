//! `mmbot script test FILE [--config mmbot.toml]`: runs the script's own
//! tests ([`crate::script::testing`]) and prints one line per test, the
//! failing ones with file:line:col and the message, then a summary. Exit
//! status for CI: 0 when every test passed, 1 when any failed or the file
//! has no tests or does not compile.

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::exit;
use crate::config::Config;
use crate::script::testing::run_tests;

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The .rhai file.
    pub file: PathBuf,
    /// Config file ([strategy.params] the tests see, [script] caps).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub fn run(args: TestArgs) -> anyhow::Result<i32> {
    let config = Config::load_or_default(args.config.as_deref()).context("loading the configuration")?;
    let tests = match run_tests(&args.file, &config.params, &config.script_limits) {
        Ok(t) => t,
        Err(e) => {
            crate::say!("mmbot script test: {e}");
            return Ok(exit::ERROR);
        }
    };
    for t in &tests.outcomes {
        match &t.result {
            Ok(()) => println!("ok   {} ({}:{})", t.name, tests.file, t.line),
            Err(e) => println!("FAIL {}: {e}", t.name),
        }
        for line in &t.printed {
            println!("     | {line}");
        }
    }
    let (passed, failed) = (tests.passed(), tests.failed());
    println!("{}: {} tests, {passed} passed, {failed} failed", tests.file, tests.outcomes.len());
    Ok(if failed == 0 { exit::OK } else { exit::ERROR })
}
