//! A symbol group: one hot thread quoting several symbols, each on its own
//! [`HotPath`] (book, features, strategy, guard, position, histograms).
//!
//! Why a group of whole hot paths rather than one hot path with per-symbol
//! arrays: every symbol then runs exactly the code (and the tests, and the
//! touch-first and rehearsal machinery) a single-symbol run does, and one
//! symbol's state is one contiguous object, so a frame of one symbol
//! touches that symbol's memory only. What the group adds per frame is the
//! route: the combined-stream wrapper's name (`{"stream":"btcusdt@depth",..`)
//! is read without parsing JSON and looked up in a fixed open-addressing
//! table, so the cost per event does not grow with the number of symbols
//! (`mmbot bench --symbols N` measures it). A frame with no wrapper (a REST
//! snapshot's body in a recording) goes to the symbol of the wrapped frame
//! before it, which is where recordings put them (nowhere when that symbol
//! is not this group's); live snapshots come with their
//! symbol ([`HotGroup::on_snapshot`]). A control stream (`!serverShutdown`,
//! a recording's `!mmbotReconnect` marker) concerns the connection, so it
//! goes to every symbol.
//!
//! Nothing here allocates after [`HotGroup::new`].

use crate::hot::engine::{HotEvent, HotPath};
use crate::hot::msg::Symbol;
use crate::hot::parse::{classify_stream, split_combined, StreamKind};
use crate::hot::strategy::Strategy;

/// Slots of the route table: a power of two, at least twice the most
/// symbols a group may hold, so probes stay short.
const SLOTS: usize = 256;

/// Most symbols one group serves.
pub const MAX_GROUP: usize = SLOTS / 2;

/// Why a group could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("a symbol group holds at most {MAX_GROUP} symbols; {0} were given: split them into groups")]
    TooMany(usize),
    #[error("{0} is given twice: each symbol belongs to one group once")]
    Duplicate(Symbol),
}

/// Counters of the group beyond its hot paths'.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Frames whose stream names a symbol the group does not serve.
    pub unrouted: u64,
    /// Frames with no wrapper and no symbol routed before them.
    pub unattributed: u64,
}

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To one symbol's desk.
    Desk(usize),
    /// To every desk (a control stream).
    All,
    /// Nowhere (a symbol not served, or nothing routed yet).
    None,
}

/// Stream-name symbol (lower case, as Binance names streams) to desk index.
struct Routes {
    /// (name bytes, length, desk + 1); 0 = empty.
    slots: Box<[([u8; Symbol::MAX_LEN], u8, u16); SLOTS]>,
    /// Names held (at most half the slots, so probes stay short).
    len: usize,
}

/// FNV-1a of the name: cheap for 6-12 bytes, and spreads them well enough
/// for a table kept at most half full.
#[inline]
fn hash(name: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for &b in name {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h as usize
}

impl Routes {
    fn new() -> Self {
        Self { slots: Box::new([([0; Symbol::MAX_LEN], 0, 0); SLOTS]), len: 0 }
    }

    fn insert(&mut self, name: &[u8], desk: usize) {
        let mut i = hash(name) & (SLOTS - 1);
        while self.slots[i].2 != 0 {
            i = (i + 1) & (SLOTS - 1);
        }
        let mut bytes = [0u8; Symbol::MAX_LEN];
        bytes[..name.len()].copy_from_slice(name);
        self.slots[i] = (bytes, name.len() as u8, (desk as u16).saturating_add(1));
        self.len += 1;
    }

    /// The marker of a symbol another group serves.
    const ELSEWHERE: u16 = u16::MAX;

    #[inline]
    fn get(&self, name: &[u8]) -> Option<usize> {
        if name.len() > Symbol::MAX_LEN {
            return None;
        }
        let mut i = hash(name) & (SLOTS - 1);
        loop {
            let (bytes, len, desk) = &self.slots[i];
            if *desk == 0 {
                return None;
            }
            if *len as usize == name.len() && &bytes[..name.len()] == name {
                return Some(*desk as usize - 1);
            }
            i = (i + 1) & (SLOTS - 1);
        }
    }
}

/// Where the last wrapped frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Nothing routed yet, or a symbol nobody serves.
    Unknown,
    /// A symbol another group serves.
    Elsewhere,
    Desk(usize),
}

/// Several symbols on one hot thread. See the module docs.
pub struct HotGroup<S: Strategy> {
    desks: Vec<HotPath<S>>,
    routes: Routes,
    /// Where the last wrapped frame went: a bare body that follows it
    /// (a recording's snapshot) is that symbol's.
    last: Last,
    stats: GroupStats,
}

impl<S: Strategy> HotGroup<S> {
    /// A group of `desks`, each configured for its one symbol
    /// (`HotConfig::symbol`), in the order given.
    pub fn new(desks: Vec<HotPath<S>>) -> Result<Self, GroupError> {
        if desks.len() > MAX_GROUP {
            return Err(GroupError::TooMany(desks.len()));
        }
        let mut routes = Routes::new();
        for (i, d) in desks.iter().enumerate() {
            let Some(symbol) = d.traded_symbol() else { continue };
            let name = symbol.as_str().to_ascii_lowercase();
            if routes.get(name.as_bytes()).is_some() {
                return Err(GroupError::Duplicate(symbol));
            }
            routes.insert(name.as_bytes(), i);
        }
        Ok(Self { desks, routes, last: Last::Unknown, stats: GroupStats::default() })
    }

    pub fn len(&self) -> usize {
        self.desks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.desks.is_empty()
    }

    pub fn desks(&self) -> &[HotPath<S>] {
        &self.desks
    }

    pub fn desk_mut(&mut self, i: usize) -> &mut HotPath<S> {
        &mut self.desks[i]
    }

    pub fn stats(&self) -> GroupStats {
        self.stats
    }

    /// The hot paths, in the order given (the run is over).
    pub fn into_desks(self) -> Vec<HotPath<S>> {
        self.desks
    }

    /// The desk serving `symbol`.
    /// Called on the hot thread (the live feed asks per snapshot and per
    /// turn): the name is lower-cased on the stack, never allocated.
    pub fn desk_of(&self, symbol: Symbol) -> Option<usize> {
        let name = symbol.as_str().as_bytes();
        let mut lower = [0u8; Symbol::MAX_LEN];
        let lower = &mut lower[..name.len()];
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        self.routes.get(lower).filter(|&d| d < self.desks.len())
    }

    /// Symbols other groups serve (several groups reading one recording):
    /// their frames are skipped here without being counted as unrouted.
    pub fn served_elsewhere(&mut self, symbols: &[Symbol]) {
        for s in symbols {
            let name = s.as_str().to_ascii_lowercase();
            if self.routes.get(name.as_bytes()).is_none() && self.routes.len < MAX_GROUP {
                self.routes.insert(name.as_bytes(), Routes::ELSEWHERE as usize - 1);
            }
        }
    }

    /// Where `frame` goes (see the module docs).
    #[inline]
    pub fn route(&mut self, frame: &[u8]) -> Route {
        match split_combined(frame) {
            Some((name, _)) => {
                let (kind, symbol) = classify_stream(name);
                if kind == StreamKind::Control {
                    return Route::All;
                }
                match self.routes.get(symbol) {
                    Some(d) if d >= self.desks.len() => {
                        self.last = Last::Elsewhere;
                        Route::None
                    }
                    Some(d) => {
                        self.last = Last::Desk(d);
                        Route::Desk(d)
                    }
                    None => {
                        self.last = Last::Unknown;
                        self.stats.unrouted += 1;
                        Route::None
                    }
                }
            }
            None => match self.last {
                Last::Desk(d) => Route::Desk(d),
                Last::Elsewhere => Route::None,
                Last::Unknown => {
                    self.stats.unattributed += 1;
                    Route::None
                }
            },
        }
    }

    /// One frame: routed to its symbol's hot path, which handles it as a
    /// single-symbol run would (a control frame to every one); returns
    /// where it went.
    #[inline]
    pub fn on_frame(
        &mut self,
        frame: &[u8],
        recv_ns: i64,
        t_in: u64,
        out: &mut impl FnMut(usize, HotEvent<'_>),
    ) -> Route {
        let route = self.route(frame);
        match route {
            Route::Desk(d) => self.desks[d].on_frame(frame, recv_ns, t_in, &mut |ev| out(d, ev)),
            Route::All => {
                for (d, desk) in self.desks.iter_mut().enumerate() {
                    desk.on_frame(frame, recv_ns, t_in, &mut |ev| out(d, ev));
                }
            }
            Route::None => {}
        }
        route
    }

    /// A REST snapshot for `symbol`.
    pub fn on_snapshot(
        &mut self,
        symbol: Symbol,
        body: &[u8],
        recv_ns: i64,
        t_in: u64,
        out: &mut impl FnMut(usize, HotEvent<'_>),
    ) -> Option<usize> {
        let d = self.desk_of(symbol)?;
        self.desks[d].on_snapshot(symbol, body, recv_ns, t_in, &mut |ev| out(d, ev));
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::engine::HotConfig;
    use crate::hot::strategy::NativeStrategy;
    use crate::stats::clock::Clock;

    fn desk(symbol: &str) -> HotPath<NativeStrategy> {
        let cfg = HotConfig { symbol: Some(Symbol::new(symbol.as_bytes())), ..HotConfig::default() };
        HotPath::new(cfg, NativeStrategy, Clock::instant())
    }

    #[test]
    fn routes_find_every_symbol_and_nothing_else() {
        let names: Vec<String> = (0..MAX_GROUP).map(|i| format!("S{i}USDT")).collect();
        let g = HotGroup::new(names.iter().map(|n| desk(n)).collect()).unwrap();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(g.routes.get(n.to_ascii_lowercase().as_bytes()), Some(i));
            assert_eq!(g.desk_of(Symbol::new(n.as_bytes())), Some(i));
        }
        assert_eq!(g.routes.get(b"btcusdt"), None);
        assert_eq!(g.routes.get(&[b'a'; 40]), None);
    }

    #[test]
    fn too_many_or_twice_is_refused() {
        let many: Vec<_> = (0..=MAX_GROUP).map(|i| desk(&format!("S{i}USDT"))).collect();
        assert!(matches!(HotGroup::new(many), Err(GroupError::TooMany(_))));
        assert!(matches!(HotGroup::new(vec![desk("BTCUSDT"), desk("BTCUSDT")]), Err(GroupError::Duplicate(_))));
    }

    #[test]
    fn wrapped_frames_go_by_stream_and_bare_ones_to_the_last_routed() {
        let mut g = HotGroup::new(vec![desk("BTCUSDT"), desk("ETHUSDT")]).unwrap();
        assert_eq!(g.route(b"{\"lastUpdateId\":1,\"bids\":[],\"asks\":[]}"), Route::None);
        assert_eq!(g.stats().unattributed, 1);
        assert_eq!(g.route(b"{\"stream\":\"ethusdt@depth@100ms\",\"data\":{}}"), Route::Desk(1));
        assert_eq!(g.route(b"{\"lastUpdateId\":1,\"bids\":[],\"asks\":[]}"), Route::Desk(1));
        assert_eq!(g.route(b"{\"stream\":\"btcusdt@bookTicker\",\"data\":{}}"), Route::Desk(0));
        assert_eq!(g.route(b"{\"stream\":\"xrpusdt@trade\",\"data\":{}}"), Route::None);
        assert_eq!(g.stats().unrouted, 1);
        // Another group's symbol: skipped, not counted.
        g.served_elsewhere(&[Symbol::new(b"XRPUSDT"), Symbol::new(b"BTCUSDT")]);
        assert_eq!(g.route(b"{\"stream\":\"xrpusdt@trade\",\"data\":{}}"), Route::None);
        assert_eq!(g.stats().unrouted, 1);
        assert_eq!(g.desk_of(Symbol::new(b"XRPUSDT")), None);
        assert_eq!(g.route(b"{\"stream\":\"btcusdt@trade\",\"data\":{}}"), Route::Desk(0), "its own stay its own");
        // A bare body after another group's frame is that group's; after an
        // unknown symbol's, nobody's.
        g.route(b"{\"stream\":\"xrpusdt@trade\",\"data\":{}}");
        assert_eq!(g.route(b"{\"lastUpdateId\":1,\"bids\":[],\"asks\":[]}"), Route::None);
        g.route(b"{\"stream\":\"solusdt@trade\",\"data\":{}}");
        assert_eq!(g.route(b"{\"lastUpdateId\":1,\"bids\":[],\"asks\":[]}"), Route::None);
        assert_eq!(g.stats().unattributed, 2);
        assert_eq!(
            g.route(b"{\"stream\":\"!serverShutdown\",\"data\":{\"e\":\"serverShutdown\",\"E\":1}}"),
            Route::All
        );
        // Every desk hears the shutdown.
        g.on_frame(
            b"{\"stream\":\"!serverShutdown\",\"data\":{\"e\":\"serverShutdown\",\"E\":1}}",
            1,
            0,
            &mut |_, _| {},
        );
        assert!(g.desks().iter().all(|d| d.market().stats().server_shutdowns == 1));
    }
}
