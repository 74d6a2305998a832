//! `mmbot script ...`: tools for strategy scripts.
//! * `check FILE`: compile it, run it over a sample through the hot path,
//!   print what it quoted and what it costs ([`check`]);
//! * `test FILE`: run the script's own `fn test_*()` ([`test`]).

mod check;
mod test;

pub use check::CheckArgs;
pub use test::TestArgs;

#[derive(clap::Subcommand, Debug)]
pub enum ScriptCommand {
    /// Compile a script, run it over a sample, print its output ranges and cost; fails on a script that
    /// errors, returns mostly wrong-shaped outputs or never quotes.
    Check(CheckArgs),
    /// Run the script's own tests (fn test_*() with assert/assert_eq/assert_near and quote_at(state)); exit 1 if
    /// any fails.
    Test(TestArgs),
}

pub fn run(cmd: ScriptCommand) -> anyhow::Result<i32> {
    match cmd {
        ScriptCommand::Check(args) => check::run(args),
        ScriptCommand::Test(args) => test::run(args),
    }
}
