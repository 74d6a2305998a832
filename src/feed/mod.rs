//! Where frames come from: recordings on disk, and the live Binance feed.
//!
//! The live feed is split by who may block: [`connector`] (DNS, TCP, TLS,
//! handshake) and [`snapshot`] (REST depth) run on side threads; [`live`]
//! runs on the hot thread, reads the socket without blocking and hands
//! frames to the hot path; [`recorder`] writes what arrives to disk.
//! Planned renewals are made before break ([`switch`]); [`link`] and
//! [`health`] count and report how the feed went.

pub mod connector;
pub mod endpoint;
pub mod health;
pub mod link;
pub mod live;
pub mod recorder;
pub mod recording;
pub mod settings;
pub mod snapshot;
pub mod switch;
pub mod synthetic;
pub mod synthetic_busy;
pub mod tls;
pub mod ws;
pub mod ws_api_depth;
