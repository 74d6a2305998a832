//! mmbot: a low-latency, AI-assisted market-making bot for Binance.
//!
//! Layout follows the architecture in DESIGN.md: [`hot`] is what runs on the
//! pinned thread (parse, book, sync), [`feed`] is where frames come from,
//! [`cli`] holds the commands, [`config`] the validated settings, [`sim`] the
//! local exchange simulator, [`research`] sweeps and walk-forward over many
//! backtests.

#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod ai;
pub mod backtest;
pub mod cli;
pub mod config;
pub mod control;
pub mod exec;
pub mod feed;
pub mod hot;
pub mod ipguard;
pub mod logging;
pub mod research;
pub mod ring;
pub mod runtime;
pub mod script;
pub mod sim;
pub mod stats;
pub mod wait;
