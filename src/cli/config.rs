//! `mmbot config check [FILE]`: validates a configuration file and prints
//! the effective configuration (every key, defaults filled in). A bad value
//! is reported with its key, the value and what is allowed (exit code 2).

use std::path::PathBuf;

use crate::config::Config;

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a config file (default: ./mmbot.toml if present) and print the effective configuration.
    Check {
        /// The file to check.
        file: Option<PathBuf>,
    },
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<i32> {
    let ConfigCommand::Check { file } = cmd;
    let file = file.or_else(|| Some(PathBuf::from("mmbot.toml")).filter(|p| p.exists()));
    match Config::load_or_default(file.as_deref()) {
        Ok(config) => {
            println!(
                "# {} is valid; effective configuration (API keys come from the environment or .env, never from this file):\n",
                file.as_ref().map_or("no config file: defaults".into(), |p| p.display().to_string())
            );
            print!("{}", config.describe());
            Ok(0)
        }
        Err(e) => {
            eprintln!("mmbot config check: {e}");
            Ok(2)
        }
    }
}
