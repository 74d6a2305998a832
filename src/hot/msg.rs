//! Parsed market-data messages: small `Copy` values the hot path passes around.
//!
//! Level lists are not inside these values: they stay in the parser's
//! preallocated buffers (see [`crate::hot::parse::Parser::bids`]), so a message
//! costs no allocation and moves in a few cache lines.

use crate::hot::fixed::{Price, Qty};

/// One price level: absolute quantity at a price (`0` removes the level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Level {
    pub price: Price,
    pub qty: Qty,
}

impl Level {
    /// No level (price and quantity 0).
    pub const ZERO: Level = Level::new(0, 0);

    pub const fn new(price: i64, qty: i64) -> Self {
        Self { price: Price(price), qty: Qty(qty) }
    }
}

/// A symbol name, upper-cased, stored inline (no heap) so messages stay `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Symbol {
    len: u8,
    bytes: [u8; Symbol::MAX_LEN],
}

impl Symbol {
    /// Longest symbol kept; Binance's longest are well under this.
    pub const MAX_LEN: usize = 31;

    /// The empty symbol (also `Symbol::default()`), usable in constants.
    pub const EMPTY: Symbol = Symbol { len: 0, bytes: [0; Symbol::MAX_LEN] };

    /// Upper-cases `name`; names longer than [`Symbol::MAX_LEN`] or with
    /// non-alphanumeric bytes give the empty symbol.
    pub fn new(name: &[u8]) -> Self {
        let mut s = Self::default();
        if name.len() > Self::MAX_LEN || !name.iter().all(u8::is_ascii_alphanumeric) {
            return s;
        }
        for (dst, src) in s.bytes.iter_mut().zip(name) {
            *dst = src.to_ascii_uppercase();
        }
        s.len = name.len() as u8;
        s
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics are ever stored.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The symbol as four words (its length byte, then its 31 bytes), for
    /// hand-offs that move words ([`crate::ring::latest`]).
    pub fn to_words(&self) -> [u64; 4] {
        let mut raw = [0u8; 32];
        raw[0] = self.len;
        raw[1..].copy_from_slice(&self.bytes);
        std::array::from_fn(|i| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default()))
    }

    /// The symbol [`Symbol::to_words`] made, or `None` for words it never
    /// makes (a length over [`Symbol::MAX_LEN`], a byte that is not an
    /// ASCII letter or digit within the length).
    pub fn from_words(words: [u64; 4]) -> Option<Self> {
        let mut raw = [0u8; 32];
        for (chunk, w) in raw.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        let len = raw[0];
        let mut bytes = [0u8; Symbol::MAX_LEN];
        bytes.copy_from_slice(&raw[1..]);
        let name = bytes.get(..len as usize)?;
        name.iter().all(u8::is_ascii_alphanumeric).then_some(Symbol { len, bytes })
    }
}

impl std::fmt::Debug for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

impl std::fmt::Display for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which update-id rule a diff stream follows (binance/FACTS.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    /// Spot: first event straddles `lastUpdateId + 1`, then `U == prev u + 1`.
    Spot,
    /// USD-M futures: first event straddles `lastUpdateId`, then `pu == prev u`.
    UsdM,
}

/// A diff-depth event (`depthUpdate`): levels to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthDiff {
    pub symbol: Symbol,
    /// `E`, exchange event time in ms.
    pub event_time: i64,
    /// `T`, transaction time in ms (USD-M only, else 0).
    pub transact_time: i64,
    /// `U`, first update id in the event.
    pub first_id: u64,
    /// `u`, final update id in the event.
    pub last_id: u64,
    /// `pu`, final update id of the previous event (USD-M only).
    pub prev_last_id: Option<u64>,
}

impl DepthDiff {
    /// USD-M diffs carry `pu`; spot diffs never do.
    pub fn market(&self) -> Market {
        if self.prev_last_id.is_some() {
            Market::UsdM
        } else {
            Market::Spot
        }
    }
}

/// A partial-depth message: the whole top-N book, replacing what was there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialDepth {
    pub symbol: Symbol,
    /// Spot `lastUpdateId`, or USD-M `u`.
    pub update_id: u64,
    /// `E` where the message has it (USD-M), else 0.
    pub event_time: i64,
}

/// A REST depth snapshot (`/api/v3/depth`, `/fapi/v1/depth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Empty: the REST body names no symbol; the caller knows which it asked for.
    pub symbol: Symbol,
    pub last_update_id: u64,
    /// `E` (USD-M only, else 0).
    pub event_time: i64,
    /// `T` (USD-M only, else 0).
    pub transact_time: i64,
}

/// Best bid and ask (`bookTicker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookTicker {
    pub symbol: Symbol,
    /// `u`, the order-book update id this ticker reflects.
    pub update_id: u64,
    pub bid: Level,
    pub ask: Level,
    /// `E` (USD-M only, else 0).
    pub event_time: i64,
}

/// Side of the taker in a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggressor {
    Buy,
    Sell,
}

/// A public trade (`trade`) or aggregated trade (`aggTrade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade {
    pub symbol: Symbol,
    /// `t` for trades, `a` for aggregated trades.
    pub id: u64,
    pub price: Price,
    pub qty: Qty,
    /// `T`, trade time in ms.
    pub trade_time: i64,
    /// `E`, event time in ms.
    pub event_time: i64,
    /// From `m` (buyer is maker -> the seller took liquidity).
    pub aggressor: Aggressor,
    pub aggregated: bool,
}

/// One parsed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    Diff(DepthDiff),
    Partial(PartialDepth),
    Snapshot(Snapshot),
    BookTicker(BookTicker),
    Trade(Trade),
    /// The server will close this connection soon: reconnect.
    ServerShutdown {
        event_time: i64,
    },
    /// A recorder's marker that its connection was replaced here
    /// (`{"stream":"!mmbotReconnect","data":{"e":"mmbotReconnect","E":..}}`):
    /// a replay makes every book unsynced, as the live bot did.
    Reconnect {
        event_time: i64,
    },
    /// A stream or event mmbot does not use (kline, subscribe replies, ...).
    Skipped,
}
