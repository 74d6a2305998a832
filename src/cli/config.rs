//! `mmbot config check [FILE]`: validates a configuration file and prints
//! the effective configuration (every key, defaults filled in). A bad value
//! is reported with its key, the value and what is allowed (exit status
//! 78, as for a bad config in every command).

use std::path::PathBuf;

use crate::cli::exit;
use crate::config::source::Choice;
use crate::config::Config;

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a config file and print the effective configuration.
    Check {
        /// The file to check (default: $MMBOT_CONFIG, else ./mmbot.toml if present).
        file: Option<PathBuf>,
    },
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<i32> {
    let ConfigCommand::Check { file } = cmd;
    let choice = Choice::for_process(file.as_deref());
    crate::say!("mmbot: {}", choice.line());
    match Config::load_chosen(&choice) {
        Ok(config) => {
            println!(
                "# {} is valid; effective configuration (API keys come from the environment or .env, never from this file):\n",
                choice.line()
            );
            print!("{}", config.describe());
            Ok(exit::OK)
        }
        Err(e) => {
            crate::say!("mmbot config check: {}", exit::message_of(&anyhow::Error::new(e)));
            Ok(exit::CONFIG)
        }
    }
}
