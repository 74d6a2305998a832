//! Binance market-data frames to [`Msg`] values, via the simd-json tape.
//!
//! Why a tape walk and not serde: the tape is one flat array of nodes that
//! simd-json fills with SIMD; walking it once, we turn each price and quantity
//! string straight into fixed-point ([`crate::hot::fixed`]) without building a
//! DOM, a `String` or an `f64`. The padded input copy, simd-json's buffers, the
//! tape and the level buffers are all owned by [`Parser`] and reused, so a
//! frame costs no allocation once the largest frame has been seen.
//!
//! Routing: combined-stream frames start `{"stream":"<name>","data":`. The
//! stream name is read with a prefix match before any JSON parsing, so frames
//! of streams mmbot does not use (klines, tickers) are skipped for the price of
//! a `memchr`, and the wrapper itself is never put on the tape. Frames of any
//! other shape (raw streams, REST bodies, unusual key order) take the general
//! path, which parses the whole frame.
//!
//! Nothing here panics on input: every lookup into the tape is checked and
//! every problem is a small `Copy` [`ParseError`] the caller counts.

use simd_json::{Node, StaticNode};

use crate::hot::compact;
use crate::hot::fixed::{parse_fixed, DecimalError, Price, Qty};
use crate::hot::msg::{Aggressor, BookTicker, DepthDiff, Level, Msg, PartialDepth, Snapshot, Symbol, Trade};

/// Largest frame accepted (a 5000-level REST snapshot is ~400 KB).
pub const MAX_FRAME: usize = 16 << 20;

/// Why a frame was rejected. `Copy` and allocation-free so the hot path can
/// count it (see [`ParseError::kind`]) and move on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty frame")]
    Empty,
    #[error("frame larger than {MAX_FRAME} bytes")]
    TooLarge,
    #[error("frame is not valid JSON (truncated or corrupt)")]
    Json,
    #[error("frame is JSON but not an object")]
    NotObject,
    #[error("required field `{0}` is missing")]
    Missing(&'static str),
    #[error("field `{0}` has the wrong JSON type")]
    WrongType(&'static str),
    #[error("field `{field}` holds a bad decimal: {err}")]
    Decimal { field: &'static str, err: DecimalError },
    #[error(
        "`{field}` has {len} levels, more than the {max} one message may carry (raise `[book] max_message_levels`)"
    )]
    TooManyLevels { field: &'static str, len: usize, max: usize },
    #[error("JSON object matches no known Binance message")]
    Unrecognised,
}

impl ParseError {
    /// Number of distinct kinds, for per-kind counters.
    pub const KINDS: usize = 9;
    /// Names of the kinds, indexed by [`ParseError::kind`].
    pub const KIND_NAMES: [&'static str; Self::KINDS] = [
        "empty",
        "too_large",
        "json",
        "not_object",
        "missing_field",
        "wrong_type",
        "bad_decimal",
        "too_many_levels",
        "unrecognised",
    ];

    /// Index of this error's kind in [`ParseError::KIND_NAMES`].
    pub fn kind(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::TooLarge => 1,
            Self::Json => 2,
            Self::NotObject => 3,
            Self::Missing(_) => 4,
            Self::WrongType(_) => 5,
            Self::Decimal { .. } => 6,
            Self::TooManyLevels { .. } => 7,
            Self::Unrecognised => 8,
        }
    }
}

/// What a stream name says its payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `<sym>@depth` or `<sym>@depth@100ms` (also `@0ms`, `@250ms`, `@500ms`).
    Diff,
    /// `<sym>@depth5|10|20[@speed]`: whole top-N books.
    Partial,
    BookTicker,
    Trade,
    AggTrade,
    /// `!serverShutdown` and similar control streams.
    Control,
    /// Anything else: skipped without parsing.
    Unused,
}

/// Classifies a stream name and returns its (lower-case) symbol part.
pub fn classify_stream(name: &[u8]) -> (StreamKind, &[u8]) {
    let Some(at) = memchr::memchr(b'@', name) else {
        let kind = if name.first() == Some(&b'!') { StreamKind::Control } else { StreamKind::Unused };
        return (kind, &[]);
    };
    let (sym, rest) = (&name[..at], &name[at + 1..]);
    let kind = if let Some(after) = rest.strip_prefix(b"depth") {
        let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
        let tail = &after[digits..];
        if !(tail.is_empty() || tail[0] == b'@') {
            StreamKind::Unused
        } else if digits == 0 {
            StreamKind::Diff
        } else {
            StreamKind::Partial
        }
    } else {
        match rest {
            b"bookTicker" => StreamKind::BookTicker,
            b"trade" => StreamKind::Trade,
            b"aggTrade" => StreamKind::AggTrade,
            _ => StreamKind::Unused,
        }
    };
    (kind, sym)
}

/// A combined-stream frame split and its stream classified once, for the
/// checks the hot path makes before parsing (the live ticker check and
/// touch-first apply both ask which stream a frame is).
#[derive(Debug, Clone, Copy)]
pub struct Routed<'f> {
    pub kind: StreamKind,
    /// The stream name's symbol part, lower case as Binance names streams.
    pub symbol: &'f [u8],
    pub payload: &'f [u8],
}

/// [`split_combined`] and [`classify_stream`] of `frame`; `None` for a
/// frame that is not a combined-stream wrapper.
#[inline]
pub fn route(frame: &[u8]) -> Option<Routed<'_>> {
    let (name, payload) = split_combined(frame)?;
    let (kind, symbol) = classify_stream(name);
    Some(Routed { kind, symbol, payload })
}

/// Splits `{"stream":"<name>","data":<payload>}` without parsing JSON.
/// Returns `None` for any other shape; the general path handles those.
pub fn split_combined(frame: &[u8]) -> Option<(&[u8], &[u8])> {
    const PREFIX: &[u8] = b"{\"stream\":\"";
    const DATA: &[u8] = b",\"data\":";
    let rest = frame.strip_prefix(PREFIX)?;
    let q = memchr::memchr2(b'"', b'\\', rest)?;
    if rest[q] != b'"' {
        return None;
    }
    let name = &rest[..q];
    let payload = rest[q + 1..].strip_prefix(DATA)?;
    let payload = payload.trim_ascii_end().strip_suffix(b"}")?;
    Some((name, payload))
}

/// Node count of the value starting at `n`, itself included.
#[inline(always)]
fn span(n: &Node<'_>) -> usize {
    match n {
        Node::Object { count, .. } | Node::Array { count, .. } => 1 + count,
        _ => 1,
    }
}

/// Tape positions of the fields mmbot reads; everything else is skipped.
/// Keys are matched by name and interpreted by the type of their value, which
/// is what tells depth `"a"` (asks, an array) from bookTicker `"a"` (a price
/// string) and aggTrade `"a"` (an id number).
#[derive(Default)]
struct Fields {
    e: Option<usize>,
    big_e: Option<usize>,
    big_t: Option<usize>,
    s: Option<usize>,
    big_u: Option<usize>,
    u: Option<usize>,
    pu: Option<usize>,
    b: Option<usize>,
    a: Option<usize>,
    big_b: Option<usize>,
    big_a: Option<usize>,
    last_update_id: Option<usize>,
    bids: Option<usize>,
    asks: Option<usize>,
    p: Option<usize>,
    q: Option<usize>,
    t: Option<usize>,
    m: Option<usize>,
    stream: Option<usize>,
    data: Option<usize>,
    result: Option<usize>,
}

/// Read-only view of a filled tape with checked accessors.
struct Tape<'t, 'i> {
    nodes: &'t [Node<'i>],
}

impl<'t, 'i> Tape<'t, 'i> {
    #[inline(always)]
    fn node(&self, i: usize) -> Result<Node<'i>, ParseError> {
        self.nodes.get(i).copied().ok_or(ParseError::Json)
    }

    fn fields(&self, obj: usize) -> Result<Fields, ParseError> {
        let Node::Object { len, .. } = self.node(obj)? else {
            return Err(ParseError::NotObject);
        };
        let mut f = Fields::default();
        let mut p = obj + 1;
        for _ in 0..len {
            let Node::String(key) = self.node(p)? else {
                return Err(ParseError::Json);
            };
            let v = p + 1;
            let slot = match key.as_bytes() {
                b"e" => &mut f.e,
                b"E" => &mut f.big_e,
                b"T" => &mut f.big_t,
                b"s" => &mut f.s,
                b"U" => &mut f.big_u,
                b"u" => &mut f.u,
                b"pu" => &mut f.pu,
                b"b" => &mut f.b,
                b"a" => &mut f.a,
                b"B" => &mut f.big_b,
                b"A" => &mut f.big_a,
                b"lastUpdateId" => &mut f.last_update_id,
                b"bids" => &mut f.bids,
                b"asks" => &mut f.asks,
                b"p" => &mut f.p,
                b"q" => &mut f.q,
                b"t" => &mut f.t,
                b"m" => &mut f.m,
                b"stream" => &mut f.stream,
                b"data" => &mut f.data,
                b"result" => &mut f.result,
                _ => {
                    p = v + span(&self.node(v)?);
                    continue;
                }
            };
            *slot = Some(v);
            p = v + span(&self.node(v)?);
        }
        Ok(f)
    }

    fn str(&self, at: Option<usize>, field: &'static str) -> Result<&'i str, ParseError> {
        match self.node(at.ok_or(ParseError::Missing(field))?)? {
            Node::String(s) => Ok(s),
            _ => Err(ParseError::WrongType(field)),
        }
    }

    fn opt_str(&self, at: Option<usize>) -> Option<&'i str> {
        match at.map(|i| self.node(i)) {
            Some(Ok(Node::String(s))) => Some(s),
            _ => None,
        }
    }

    fn u64(&self, at: Option<usize>, field: &'static str) -> Result<u64, ParseError> {
        match self.node(at.ok_or(ParseError::Missing(field))?)? {
            Node::Static(StaticNode::U64(v)) => Ok(v),
            Node::Static(StaticNode::I64(v)) if v >= 0 => Ok(v as u64),
            _ => Err(ParseError::WrongType(field)),
        }
    }

    fn opt_u64(&self, at: Option<usize>, field: &'static str) -> Result<Option<u64>, ParseError> {
        at.map(|_| self.u64(at, field)).transpose()
    }

    /// Millisecond timestamps; absent is 0.
    fn time(&self, at: Option<usize>, field: &'static str) -> Result<i64, ParseError> {
        Ok(self.opt_u64(at, field)?.map_or(0, |v| v.min(i64::MAX as u64) as i64))
    }

    fn bool(&self, at: Option<usize>, field: &'static str) -> Result<bool, ParseError> {
        match self.node(at.ok_or(ParseError::Missing(field))?)? {
            Node::Static(StaticNode::Bool(b)) => Ok(b),
            _ => Err(ParseError::WrongType(field)),
        }
    }

    fn fixed(&self, at: Option<usize>, field: &'static str) -> Result<i64, ParseError> {
        let s = self.str(at, field)?;
        parse_fixed(s.as_bytes()).map_err(|err| ParseError::Decimal { field, err })
    }

    fn is_array(&self, at: Option<usize>) -> bool {
        matches!(at.map(|i| self.node(i)), Some(Ok(Node::Array { .. })))
    }

    /// Parses `[[price, qty], ...]` into `out` (cleared first, capacity kept).
    fn levels(
        &self,
        at: Option<usize>,
        field: &'static str,
        out: &mut Vec<Level>,
        max: usize,
    ) -> Result<(), ParseError> {
        out.clear();
        let i = at.ok_or(ParseError::Missing(field))?;
        let Node::Array { len, .. } = self.node(i)? else {
            return Err(ParseError::WrongType(field));
        };
        if len > max {
            return Err(ParseError::TooManyLevels { field, len, max });
        }
        let decimal = |s: &str| parse_fixed(s.as_bytes()).map_err(|err| ParseError::Decimal { field, err });
        // Fast path: every level is exactly `[string, string]`, three nodes
        // each, so the whole array is one slice walked in fixed strides.
        if let Node::Array { count, .. } = self.node(i)? {
            if count == 3 * len {
                let body = self.nodes.get(i + 1..i + 1 + count).ok_or(ParseError::Json)?;
                for level in body.chunks_exact(3) {
                    let [Node::Array { len: 2, .. }, Node::String(ps), Node::String(qs)] = level else {
                        return Err(ParseError::WrongType(field));
                    };
                    out.push(Level { price: Price(decimal(ps)?), qty: Qty(decimal(qs)?) });
                }
                return Ok(());
            }
        }
        let mut p = i + 1;
        for _ in 0..len {
            let level = self.node(p)?;
            // Old Binance levels carried a third, ignored element: accept len >= 2.
            let Node::Array { len: 2.., .. } = level else {
                return Err(ParseError::WrongType(field));
            };
            let (Node::String(ps), Node::String(qs)) = (self.node(p + 1)?, self.node(p + 2)?) else {
                return Err(ParseError::WrongType(field));
            };
            out.push(Level { price: Price(decimal(ps)?), qty: Qty(decimal(qs)?) });
            p += span(&level);
        }
        Ok(())
    }
}

/// Reusable frame parser. One per hot thread.
pub struct Parser {
    /// Copy of the JSON being parsed plus simd-json's padding (parsing
    /// unescapes strings in place, so the caller's frame is never touched).
    input: Vec<u8>,
    buffers: simd_json::Buffers,
    /// Tape storage, empty between calls (see `parse_json`).
    nodes: Vec<Node<'static>>,
    bids: Vec<Level>,
    asks: Vec<Level>,
    max_levels: usize,
    /// Try [`compact::read_diff`] before simd-json for diff frames.
    compact_diffs: bool,
    /// The last frame parsed was a diff read by the strict compact reader.
    last_compact: bool,
}

impl Parser {
    /// `max_levels`: most levels accepted per side in one message (the book's
    /// capacity); `frame_hint`: expected largest frame, preallocated.
    pub fn new(max_levels: usize, frame_hint: usize) -> Self {
        let frame_hint = frame_hint.max(4096);
        Self {
            input: Vec::with_capacity(frame_hint + simd_json::INPUT_PADDING),
            buffers: simd_json::Buffers::new(frame_hint),
            nodes: Vec::with_capacity(frame_hint / 4),
            bids: Vec::with_capacity(max_levels),
            asks: Vec::with_capacity(max_levels),
            max_levels,
            compact_diffs: true,
            last_compact: false,
        }
    }

    /// Turns the compact-diff fast path on or off (on by default). Off, every
    /// frame goes through simd-json; tests and benches compare the two.
    pub fn set_compact_diffs(&mut self, on: bool) {
        self.compact_diffs = on;
    }

    /// Bid levels of the last depth message, in the order sent.
    pub fn bids(&self) -> &[Level] {
        &self.bids
    }

    /// Ask levels of the last depth message, in the order sent.
    pub fn asks(&self) -> &[Level] {
        &self.asks
    }

    pub fn max_levels(&self) -> usize {
        self.max_levels
    }

    /// Whether the last frame parsed was a diff read by the strict compact
    /// reader ([`compact::read_diff`]): then its level arrays are exactly
    /// the ones [`compact::read_diff_head`] located.
    pub fn last_was_compact(&self) -> bool {
        self.last_compact
    }

    /// Parses one frame (a WebSocket text message or a REST body).
    pub fn parse(&mut self, frame: &[u8]) -> Result<Msg, ParseError> {
        self.last_compact = false;
        if frame.is_empty() {
            return Err(ParseError::Empty);
        }
        if frame.len() > MAX_FRAME {
            return Err(ParseError::TooLarge);
        }
        if let Some((name, payload)) = split_combined(frame) {
            let (kind, sym) = classify_stream(name);
            if kind == StreamKind::Unused {
                return Ok(Msg::Skipped);
            }
            if kind == StreamKind::Diff && self.compact_diffs {
                if let Some(m) = self.try_compact(payload, Symbol::new(sym)) {
                    return Ok(m);
                }
            }
            // The cheap split can be fooled by keys after "data"; on failure
            // the general path below settles it.
            if let Ok(msg) = self.parse_json(payload, Some(kind), Symbol::new(sym)) {
                return Ok(msg);
            }
        }
        if self.compact_diffs && frame.starts_with(b"{\"e\":\"depthUpdate\"") {
            if let Some(m) = self.try_compact(frame, Symbol::default()) {
                return Ok(m);
            }
        }
        self.parse_json(frame, None, Symbol::default())
    }

    /// The compact-diff fast path; `None` means "use simd-json".
    #[inline]
    fn try_compact(&mut self, json: &[u8], stream_symbol: Symbol) -> Option<Msg> {
        let d = compact::read_diff(json, &mut self.bids, &mut self.asks, self.max_levels)?;
        self.last_compact = true;
        let symbol = if stream_symbol.is_empty() { Symbol::new(d.symbol) } else { stream_symbol };
        let time = |v: u64| v.min(i64::MAX as u64) as i64;
        Some(Msg::Diff(DepthDiff {
            symbol,
            event_time: time(d.event_time),
            transact_time: time(d.transact_time),
            first_id: d.first_id,
            last_id: d.last_id,
            prev_last_id: d.prev_last_id,
        }))
    }

    fn parse_json(&mut self, json: &[u8], hint: Option<StreamKind>, symbol: Symbol) -> Result<Msg, ParseError> {
        let len = json.len();
        self.input.clear();
        self.input.extend_from_slice(json);
        self.input.resize(len + simd_json::INPUT_PADDING, b' ');
        // Reuse the tape's allocation: an empty Vec carries no borrows, so
        // `reset` can re-tie it to this input's lifetime.
        let mut tape = simd_json::Tape(std::mem::take(&mut self.nodes)).reset();
        let out = match simd_json::fill_tape_padded(&mut self.input, len, &mut self.buffers, &mut tape) {
            Ok(()) => {
                let t = Tape { nodes: &tape.0 };
                decode(&t, hint, symbol, &mut self.bids, &mut self.asks, self.max_levels)
            }
            Err(_) => Err(ParseError::Json),
        };
        self.nodes = tape.reset().0;
        out
    }
}

/// Turns the root object on the tape into a message.
fn decode(
    t: &Tape<'_, '_>,
    hint: Option<StreamKind>,
    mut symbol: Symbol,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
    max: usize,
) -> Result<Msg, ParseError> {
    let mut f = t.fields(0)?;
    let mut hint = hint;
    if hint.is_none() {
        // General path for a combined wrapper: route by the stream name.
        if let (Some(name), Some(data)) = (t.opt_str(f.stream), f.data) {
            let (kind, sym) = classify_stream(name.as_bytes());
            if kind == StreamKind::Unused {
                return Ok(Msg::Skipped);
            }
            hint = Some(kind);
            symbol = Symbol::new(sym);
            f = t.fields(data)?;
        }
    }
    if symbol.is_empty() {
        if let Some(s) = t.opt_str(f.s) {
            symbol = Symbol::new(s.as_bytes());
        }
    }
    let event = match f.e {
        Some(_) => Some(t.str(f.e, "e")?),
        None => None,
    };
    match event {
        Some("depthUpdate") => {
            t.levels(f.b, "b", bids, max)?;
            t.levels(f.a, "a", asks, max)?;
            let last_id = t.u64(f.u, "u")?;
            let event_time = t.time(f.big_e, "E")?;
            if hint == Some(StreamKind::Partial) {
                // USD-M partial depth uses the diff layout but is a whole top-N book.
                return Ok(Msg::Partial(PartialDepth { symbol, update_id: last_id, event_time }));
            }
            Ok(Msg::Diff(DepthDiff {
                symbol,
                event_time,
                transact_time: t.time(f.big_t, "T")?,
                first_id: t.u64(f.big_u, "U")?,
                last_id,
                prev_last_id: t.opt_u64(f.pu, "pu")?,
            }))
        }
        Some("bookTicker") => book_ticker(t, &f, symbol),
        Some("trade") | Some("aggTrade") => {
            let aggregated = event == Some("aggTrade");
            let id = if aggregated { t.u64(f.a, "a")? } else { t.u64(f.t, "t")? };
            Ok(Msg::Trade(Trade {
                symbol,
                id,
                price: Price(t.fixed(f.p, "p")?),
                qty: Qty(t.fixed(f.q, "q")?),
                trade_time: t.time(f.big_t, "T")?,
                event_time: t.time(f.big_e, "E")?,
                aggressor: if t.bool(f.m, "m")? { Aggressor::Sell } else { Aggressor::Buy },
                aggregated,
            }))
        }
        Some("serverShutdown") => Ok(Msg::ServerShutdown { event_time: t.time(f.big_e, "E")? }),
        Some("mmbotReconnect") => Ok(Msg::Reconnect { event_time: t.time(f.big_e, "E")? }),
        Some(_) => Ok(Msg::Skipped),
        None if f.last_update_id.is_some() => {
            t.levels(f.bids, "bids", bids, max)?;
            t.levels(f.asks, "asks", asks, max)?;
            let id = t.u64(f.last_update_id, "lastUpdateId")?;
            let event_time = t.time(f.big_e, "E")?;
            if hint == Some(StreamKind::Partial) {
                Ok(Msg::Partial(PartialDepth { symbol, update_id: id, event_time }))
            } else {
                Ok(Msg::Snapshot(Snapshot {
                    symbol,
                    last_update_id: id,
                    event_time,
                    transact_time: t.time(f.big_t, "T")?,
                }))
            }
        }
        // Spot bookTicker has no "e": recognise it by its fields.
        None if f.u.is_some() && f.big_b.is_some() && !t.is_array(f.b) => book_ticker(t, &f, symbol),
        // Subscription replies ({"result":null,"id":1}) carry nothing to act on.
        None if f.result.is_some() => Ok(Msg::Skipped),
        None => Err(ParseError::Unrecognised),
    }
}

fn book_ticker(t: &Tape<'_, '_>, f: &Fields, symbol: Symbol) -> Result<Msg, ParseError> {
    Ok(Msg::BookTicker(BookTicker {
        symbol,
        update_id: t.u64(f.u, "u")?,
        bid: Level::new(t.fixed(f.b, "b")?, t.fixed(f.big_b, "B")?),
        ask: Level::new(t.fixed(f.a, "a")?, t.fixed(f.big_a, "A")?),
        event_time: t.time(f.big_e, "E")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_stream_names() {
        assert_eq!(classify_stream(b"btcusdt@depth"), (StreamKind::Diff, &b"btcusdt"[..]));
        assert_eq!(classify_stream(b"btcusdt@depth@100ms").0, StreamKind::Diff);
        assert_eq!(classify_stream(b"btcusdt@depth@0ms").0, StreamKind::Diff);
        assert_eq!(classify_stream(b"btcusdt@depth20@100ms").0, StreamKind::Partial);
        assert_eq!(classify_stream(b"btcusdt@depth5").0, StreamKind::Partial);
        assert_eq!(classify_stream(b"btcusdt@bookTicker").0, StreamKind::BookTicker);
        assert_eq!(classify_stream(b"btcusdt@trade").0, StreamKind::Trade);
        assert_eq!(classify_stream(b"btcusdt@aggTrade").0, StreamKind::AggTrade);
        assert_eq!(classify_stream(b"btcusdt@kline_1m").0, StreamKind::Unused);
        assert_eq!(classify_stream(b"btcusdt@depthX").0, StreamKind::Unused);
        assert_eq!(classify_stream(b"!serverShutdown").0, StreamKind::Control);
        assert_eq!(classify_stream(b"garbage").0, StreamKind::Unused);
    }

    #[test]
    fn splits_combined_frames_without_parsing() {
        let f = br#"{"stream":"x@depth","data":{"a":1}}"#;
        assert_eq!(split_combined(f), Some((&b"x@depth"[..], &br#"{"a":1}"#[..])));
        assert_eq!(split_combined(br#"{"data":{},"stream":"x"}"#), None);
        assert_eq!(split_combined(br#"{"stream":"x\"y","data":{}}"#), None);
    }

    #[test]
    fn unused_streams_are_skipped_even_when_the_payload_is_junk() {
        let mut p = Parser::new(100, 1024);
        assert_eq!(p.parse(br#"{"stream":"x@kline_1m","data":not json at all}"#), Ok(Msg::Skipped));
    }

    #[test]
    fn keys_after_data_fall_back_to_the_general_path() {
        let mut p = Parser::new(100, 1024);
        let f = br#"{"stream":"abc@trade","data":{"e":"trade","E":1,"s":"ABC","t":7,"p":"1.5","q":"2","T":1,"m":true},"x":1}"#;
        let Ok(Msg::Trade(t)) = p.parse(f) else { panic!("not a trade") };
        assert_eq!((t.id, t.price, t.aggressor), (7, Price(150_000_000), Aggressor::Sell));
        assert_eq!(t.symbol.as_str(), "ABC");
    }
}
