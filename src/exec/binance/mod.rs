//! Live trading on Binance spot: the exchange client the exec thread will
//! drive. This is the foundation only; the order manager, the user-data
//! stream, the journal and the kill switch build on it.
//!
//! - [`sign`]: HMAC-SHA256 and Ed25519 request signatures (REST and WS-API forms).
//! - [`keys`]: [`Credentials`] from `BINANCE_*` variables or `.env`, never printed.
//! - [`filters`]: exchangeInfo into exact [`SymbolRules`] and [`RateLimit`]s.
//! - [`limits`]: moved to [`crate::ipguard`] (one guard per process, shared
//!   per host, for IP-wide limits and bans); re-exported here.
//! - [`model`]: orders and the account, in fixed-point.
//! - [`errors`]: [`BinanceError`] and the [`Action`] the caller takes.
//! - [`rest`]: the blocking [`RestClient`] and the [`ClientIds`] orders are
//!   placed under.
//!
//! Nothing here runs on the hot thread: every call may block on the network.

pub mod errors;
pub mod filters;
pub mod gateway;
pub mod keys;
pub mod limits;
pub mod model;
pub mod rest;
pub mod sign;
pub mod wsapi;

pub use errors::{Action, BinanceError, ReplaceHalves};
pub use filters::{ExchangeInfo, FilterViolation, RateLimit, SymbolRules, SymbolStatus};
pub use keys::Credentials;
pub use model::{Account, Balance, Order, OrderStatus, ReplaceHalf};
pub use rest::{ClientIds, ClientOrderId, MyTrade, OrderRef, ReplaceMode, RestClient, RestConfig};
