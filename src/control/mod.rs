//! The control plane: a web dashboard, a JSON control API, a WebSocket
//! stream, Prometheus metrics and alert webhooks, for operators who run
//! mmbot on a headless host and watch it from elsewhere (docs/control.md).
//!
//! All of it runs on threads of its own, off the hot path. It reads what
//! the session's view loop already reads (the hot and exchange threads'
//! snapshots, the stats thread's histograms), published on a [`Board`];
//! its commands travel the same roads as the terminal dashboard's keys and
//! the config file's live edits ([`api::Commands`]).

pub mod alerts;
pub mod api;
pub mod board;
pub mod http;
pub mod metrics;
pub mod server;
pub mod stream;
pub mod symbols;
pub mod token;

pub use api::{Commands, ControlSender, ScriptTarget};
pub use board::{Board, Sources};
pub use server::{ControlError, ControlServer, ServerSettings};
pub use symbols::SymbolsPanel;

/// What the script watcher last said (reloads and refusals), shared by
/// the session, the terminal dashboard and the control plane.
#[derive(Debug, Clone, Default)]
pub struct ScriptNote {
    pub reloads: u64,
    pub last_event: Option<String>,
}
