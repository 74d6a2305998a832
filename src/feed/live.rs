//! The live feed on the hot thread: reads the market-data WebSocket without
//! blocking, hands each frame to a [`FeedHandler`] (the hot path, or the
//! recorder), and keeps the connection honest.
//!
//! Per turn ([`LiveFeed::turn`]): take a new connection if the connector has
//! one; wait for readiness (`mio` poll with a short timeout) or, when
//! busy-polling, just try; read frames until the socket would block; flush
//! queued pongs (tungstenite answers each ping with its payload); run the
//! timers; hand over snapshots and ask for new ones.
//!
//! Connection care: reconnect on close, error, an invalid UTF-8 text frame,
//! read silence longer than `stale_after`, and our ping unanswered for
//! `pong_timeout`. Such a reconnect makes every book unsynced
//! ([`FeedHandler::on_disconnected`]) and it resyncs with a fresh snapshot;
//! replies to requests made on an older connection are discarded
//! (`generation`). Planned renewals (`serverShutdown`, `max_connection_age`
//! before Binance's 24-hour limit) make the new connection before breaking
//! the old one and keep every book ([`crate::feed::switch`]).
//!
//! Nothing here allocates per frame: tungstenite's buffers are reused (the
//! payload is split off its read buffer and dropped before the next read),
//! pings carry a static payload, snapshot bodies come in reused buffers,
//! old sockets are closed on the connector thread.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tungstenite::Message;

use crate::feed::connector::{Connector, ConnectorConfig, ConnectorStats, Reason, Request};
use crate::feed::endpoint::{DepthStream, Url, UrlError};
pub use crate::feed::link::{reason_names, LinkStats, REASONS, REASON_COUNT};
pub use crate::feed::settings::FeedConfig;
use crate::feed::snapshot::{wall_ns, SnapshotConfig, SnapshotFetcher, SnapshotRequest};
use crate::feed::switch::{Standby, SwitchVerdict};
use crate::feed::ws::Ws;
use crate::feed::ws_api_depth::WsApiDepth;
use crate::hot::msg::Symbol;
use crate::ipguard::IpGuard;
use crate::stats::clock::Clock;

/// Why the feed could not start.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("feed URL: {0}")]
    Url(#[from] UrlError),
    #[error("cannot create the socket poller (mio): {0}")]
    Poll(std::io::Error),
}

/// Where the feed's frames go: the hot path, or the recorder.
pub trait FeedHandler {
    /// A whole frame: `recv_ns` wall-clock receive time, `t_ready` clock
    /// ticks when its bytes were ready, `wire_ns` its wire time. Returns true
    /// when the frame was `serverShutdown` (the feed reconnects).
    fn on_frame(&mut self, frame: &[u8], recv_ns: i64, t_ready: u64, wire_ns: u64) -> bool;
    /// A REST snapshot body fetched for `symbol`.
    fn on_snapshot(&mut self, symbol: Symbol, body: &[u8], recv_ns: i64);
    /// A new connection is up (books start buffering).
    fn on_connected(&mut self, _now_ns: i64) {}
    /// The connection ended: books are no longer trustworthy.
    fn on_disconnected(&mut self, reason: Reason, now_ns: i64);
    /// The run is ending and the connection was closed on purpose.
    fn on_shutdown(&mut self, now_ns: i64) {
        self.on_disconnected(Reason::Closed, now_ns);
    }
    /// Time passed (once per turn).
    fn on_idle(&mut self, now_ns: i64);
    /// Whether `symbol`'s book has buffered diffs and waits for a snapshot.
    fn wants_snapshot(&self, symbol: Symbol) -> bool;
    /// `symbol`'s book update id if the book is synced (the make-before-break
    /// switch waits until the old connection has applied what the new one
    /// delivered). `None`: unsynced, or the handler keeps no books (then a
    /// planned renewal switches as soon as the new connection delivers).
    fn synced_update_id(&self, _symbol: Symbol) -> Option<u64> {
        None
    }
    /// A planned renewal switched to the new connection with every book
    /// kept (`forced`: without waiting for it to catch up).
    fn on_switched(&mut self, _reason: Reason, _forced: bool, _now_ns: i64) {}

    /// `symbol`'s book was rebuilt from the top-20 stream while REST was
    /// refused: rebuild it from a full snapshot now that REST answers.
    fn refresh_book(&mut self, _symbol: Symbol, _now_ns: i64) {}
}

/// Frames read per turn at most, so timers and snapshots are never starved.
const FRAMES_PER_TURN: usize = 64;
/// Our ping's payload (static: sending it allocates nothing).
const PING_PAYLOAD: &[u8] = b"mmbot";
const SOCKET: Token = Token(0);
/// The new connection of a planned renewal, until the switch.
const STANDBY: Token = Token(1);

struct Conn {
    ws: Ws,
    since: Instant,
    /// Last text or binary frame: pings and pongs do not count, so a socket
    /// that only keeps itself alive (a wrong stream name, a retired URL)
    /// is still replaced.
    last_data: Instant,
    last_ping: Instant,
    ping_outstanding: Option<Instant>,
    /// A book was synced while this connection served it: it was healthy.
    synced: bool,
}

impl Conn {
    fn new(ws: Ws, now: Instant) -> Self {
        Self { ws, since: now, last_data: now, last_ping: now, ping_outstanding: None, synced: false }
    }
}

#[derive(Clone, Copy, Default)]
struct SnapshotState {
    /// When the outstanding request was made.
    in_flight: Option<Instant>,
    /// A second request went out for it.
    hedged: bool,
    retry_at: Option<Instant>,
    /// Failed fetches in a row (HTTP errors, timeouts): the retry doubles.
    failures: u32,
    /// The book was rebuilt from the depth20 stream (REST refused): it is
    /// rebuilt from a full REST snapshot once the guard lets REST through.
    top20: bool,
    /// Not before then: a refresh that met a refused REST again waits twice
    /// as long the next time (1 s doubling to a minute; a REST snapshot
    /// that loads resets it).
    top20_refresh_at: Option<Instant>,
    top20_backoff: Duration,
}

/// Longest wait between snapshot retries after repeated failures.
const MAX_SNAPSHOT_RETRY: Duration = Duration::from_secs(60);

/// The hot thread's live feed.
pub struct LiveFeed {
    cfg: FeedConfig,
    poll: Poll,
    events: Events,
    connector: Connector,
    fetcher: Option<SnapshotFetcher>,
    guard: IpGuard,
    conn: Option<Conn>,
    /// A planned renewal's new connection, until the switch.
    standby: Option<(Conn, Standby)>,
    /// The standby's per-symbol buffer between renewals (allocated once).
    standby_buffer: Vec<Option<u64>>,
    /// A planned renewal asked of the connector, its connection not here yet.
    renewal: Option<Reason>,
    /// When the last unplanned disconnect happened (reconnect timing).
    disconnected_at: Option<Instant>,
    /// Bumped per connection; snapshot replies carry the one they were asked on.
    generation: u32,
    snapshots: Vec<SnapshotState>,
    clock: Clock,
    stats: LinkStats,
    /// Ticks when the socket was seen readable (poll mode) or the first
    /// frame of a burst was read (busy mode); every frame read before the
    /// socket runs dry is timed from it, so queueing inside a burst counts.
    t_readable: Option<u64>,
    /// The last read loop stopped at its frame limit, not at `WouldBlock`:
    /// bytes are waiting that edge-triggered readiness will not announce.
    more_pending: bool,
}

impl LiveFeed {
    /// Starts the connector (and the snapshot thread, for diff streams) and
    /// asks for the first connection.
    pub fn start(cfg: FeedConfig, clock: Clock) -> Result<Self, FeedError> {
        let url = Url::parse(&cfg.stream_url())?;
        let tls = crate::feed::tls::client_config();
        let guard = cfg.guard();
        let ws_api = match cfg.ws_api_depth_url() {
            Some(u) => Some(WsApiDepth { url: Url::parse(&u)?, tls: tls.clone(), timeout: cfg.snapshot_timeout }),
            None => None,
        };
        let connector = Connector::start(
            ConnectorConfig {
                url,
                connect_timeout: cfg.connect_timeout,
                backoff_min: cfg.backoff_min,
                backoff_max: cfg.backoff_max,
                max_attempts: cfg.max_connect_attempts,
                guard: guard.clone(),
            },
            tls,
        );
        let fetcher = match cfg.depth {
            DepthStream::Diff => {
                let rest = cfg.rest_url();
                Url::parse(&rest)?;
                Some(SnapshotFetcher::start(SnapshotConfig {
                    market: cfg.market,
                    url: rest,
                    limit: cfg.snapshot_limit,
                    timeout: cfg.snapshot_timeout,
                    weight_per_minute: cfg.weight_per_minute,
                    ip_weight_limit: cfg.ip_weight_limit(),
                    guard: guard.clone(),
                    ws_api,
                }))
            }
            // Each top-20 message is a whole book: nothing to sync.
            DepthStream::Top20 => None,
        };
        connector.request(Request::start());
        let poll = Poll::new().map_err(FeedError::Poll)?;
        Ok(Self {
            snapshots: vec![SnapshotState::default(); cfg.symbols.len()],
            standby_buffer: Vec::with_capacity(cfg.symbols.len()),
            cfg,
            poll,
            events: Events::with_capacity(16),
            connector,
            fetcher,
            guard,
            conn: None,
            standby: None,
            renewal: None,
            disconnected_at: None,
            generation: 0,
            clock,
            stats: LinkStats::default(),
            t_readable: None,
            more_pending: false,
        })
    }

    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    pub fn connector_stats(&self) -> ConnectorStats {
        self.connector.stats()
    }

    /// The IP guard the feed asks (takes a lock to query: not for the hot
    /// thread).
    pub fn ip_guard(&self) -> &IpGuard {
        &self.guard
    }

    /// Connects and snapshots that had to wait for the IP guard (a ban or
    /// back-off, maybe another process's). Lock-free.
    pub fn guard_waits(&self) -> u64 {
        let snapshots =
            self.fetcher.as_ref().map_or(0, |f| f.counters().guard_waits.load(std::sync::atomic::Ordering::Relaxed));
        self.connector.stats().guard_waits + snapshots
    }

    /// The snapshot threads' counters (lock-free).
    pub fn snapshot_totals(&self) -> crate::feed::health::SnapshotTotals {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(f) = self.fetcher.as_ref() else { return Default::default() };
        let c = f.counters();
        crate::feed::health::SnapshotTotals {
            sent: c.requests.load(Relaxed),
            hedges_skipped: c.hedges_skipped.load(Relaxed),
            weight_waits: c.weight_waits.load(Relaxed),
            guard_waits: c.guard_waits.load(Relaxed),
            ws_api_ok: c.ws_api_ok.load(Relaxed),
            ws_api_failed: c.ws_api_failed.load(Relaxed),
        }
    }

    /// The last connection error (takes a lock: not for the hot thread).
    pub fn last_connect_error(&self) -> Option<String> {
        self.connector.last_error()
    }

    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    pub fn config(&self) -> &FeedConfig {
        &self.cfg
    }

    /// One turn of the feed (see the module doc). Never blocks longer than
    /// `poll_timeout` (poll mode) and never at all when busy-polling.
    pub fn turn(&mut self, h: &mut impl FeedHandler) {
        if self.conn.is_none() || self.renewal.is_some() {
            self.adopt_connection(h);
        }
        if self.conn.is_some() {
            self.read(h);
        } else if !self.cfg.busy_poll {
            // Nothing registered: the poll is the short wait between turns.
            let _ = self.poll.poll(&mut self.events, Some(self.cfg.poll_timeout));
        }
        if self.standby.is_some() {
            self.read_standby();
            self.maybe_switch(h);
        }
        self.timers(h);
        self.snapshots(h);
        h.on_idle(wall_ns());
    }

    /// Closes the connection (books unsynced, quotes pulled through the
    /// handler) at the end of a run.
    pub fn shutdown(&mut self, h: &mut impl FeedHandler) {
        if let Some((c, _)) = self.standby.take() {
            self.retire(c, STANDBY_CLOSE);
        }
        if let Some(mut c) = self.conn.take() {
            let _ = c.ws.close(None);
            let _ = c.ws.flush();
            let _ = self.poll.registry().deregister(&mut SourceFd(&c.ws.get_ref().tcp().as_raw_fd()));
            self.connector.retire(c.ws);
            h.on_shutdown(wall_ns());
        }
    }

    fn adopt_connection(&mut self, h: &mut impl FeedHandler) {
        let Some(ws) = self.connector.take() else { return };
        let fd = ws.get_ref().tcp().as_raw_fd();
        let token = if self.conn.is_some() { STANDBY } else { SOCKET };
        if self.poll.registry().register(&mut SourceFd(&fd), token, Interest::READABLE).is_err() {
            // Counted, not logged: this is the hot thread. A renewal stays
            // asked for (`renewal`), and so does a reconnect.
            self.stats.register_failures += 1;
            self.connector.retire(ws);
            self.connector.request(Request::retry());
            return;
        }
        let now = Instant::now();
        if self.conn.is_some() {
            // A planned renewal's new connection: read, not applied, until
            // the old one has caught up with it.
            let reason = self.renewal.take().unwrap_or(Reason::Renew);
            let buffer = std::mem::take(&mut self.standby_buffer);
            let standby = Standby::reusing(buffer, self.cfg.symbols.len(), reason, now);
            self.standby = Some((Conn::new(ws, now), standby));
            self.stats.connects += 1;
            return;
        }
        self.renewal = None;
        if let Some(t) = self.disconnected_at.take() {
            let ns = t.elapsed().as_nanos() as u64;
            self.stats.reconnect_ns_total += ns;
            self.stats.reconnect_ns_max = self.stats.reconnect_ns_max.max(ns);
        }
        self.conn = Some(Conn::new(ws, now));
        self.new_generation();
        self.stats.connects += 1;
        self.t_readable = None;
        h.on_connected(wall_ns());
    }

    /// A new connection, or none: snapshot replies and requests made before
    /// now are thrown away.
    fn new_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.snapshots.iter_mut().for_each(|s| *s = SnapshotState::default());
        if let Some(f) = &self.fetcher {
            f.set_generation(self.generation);
        }
    }

    fn read(&mut self, h: &mut impl FeedHandler) {
        if !self.cfg.busy_poll {
            // Bytes already waiting: look again at once instead of sleeping.
            let timeout = if self.more_pending { Duration::ZERO } else { self.cfg.poll_timeout };
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) if !self.events.is_empty() => {
                    self.t_readable.get_or_insert(self.clock.now());
                }
                _ => {}
            }
        }
        self.more_pending = true;
        let mut end: Option<Reason> = None;
        let mut shutdown_announced = false;
        let Some(conn) = self.conn.as_mut() else { return };
        for _ in 0..FRAMES_PER_TURN {
            let t_try = self.clock.now();
            match conn.ws.read() {
                Ok(msg) => {
                    let t_ready = self.clock.now();
                    let frame: &[u8] = match &msg {
                        Message::Text(t) => t.as_bytes(),
                        Message::Binary(b) => b,
                        Message::Ping(_) => {
                            self.stats.pings_received += 1;
                            continue;
                        }
                        Message::Pong(p) => {
                            self.stats.pongs_received += 1;
                            if p.as_ref() == PING_PAYLOAD {
                                conn.ping_outstanding = None;
                            }
                            continue;
                        }
                        Message::Close(_) => {
                            end = Some(Reason::Closed);
                            break;
                        }
                        Message::Frame(_) => continue,
                    };
                    conn.last_data = Instant::now();
                    if self.cfg.top20_fallback() {
                        if let Some(i) = top20_symbol(frame, &self.cfg.symbols) {
                            // Never applied as a partial book: only as a
                            // snapshot while REST is refused.
                            let symbol = self.cfg.symbols[i];
                            // A REST-only refusal (RAW_REQUESTS) is not one
                            // while the WebSocket API can be asked instead.
                            let ws_api_instead = self.cfg.ws_api_depth_url().is_some()
                                && matches!(self.guard.blocked(), Some(crate::ipguard::Refusal::RestBackOff { .. }));
                            let rest_refused = self.fetcher.as_ref().is_some_and(|f| {
                                f.counters().waiting_for_guard.load(std::sync::atomic::Ordering::Relaxed)
                            }) || (self.snapshots[i].failures > 0 && !ws_api_instead);
                            match data_of(frame) {
                                Some(body) if rest_refused && h.wants_snapshot(symbol) => {
                                    self.stats.top20_rebuilds += 1;
                                    let st = &mut self.snapshots[i];
                                    st.top20 = true;
                                    st.top20_backoff =
                                        (st.top20_backoff * 2).clamp(Duration::from_secs(1), MAX_SNAPSHOT_RETRY);
                                    st.top20_refresh_at = Some(Instant::now() + st.top20_backoff);
                                    h.on_snapshot(symbol, body, wall_ns());
                                }
                                _ => self.stats.top20_frames_skipped += 1,
                            }
                            continue;
                        }
                    }
                    // From readiness (or, busy-polling, the read that found
                    // the burst's first bytes) to a whole frame in memory.
                    let wire = self.clock.ns(*self.t_readable.get_or_insert(t_try), t_ready);
                    self.stats.frames += 1;
                    self.stats.bytes += frame.len() as u64;
                    if h.on_frame(frame, wall_ns(), t_ready, wire) {
                        // The old connection keeps serving until the new
                        // one has caught up (make before break).
                        shutdown_announced = true;
                    }
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // Dry: the next bytes start a new burst.
                    self.more_pending = false;
                    self.t_readable = None;
                    break;
                }
                Err(e) => {
                    end = Some(read_error_reason(&e));
                    break;
                }
            }
        }
        if end.is_none() {
            // Queued pongs (and anything else pending) go out now.
            match conn.ws.flush() {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => end = Some(Reason::Error),
            }
        }
        if shutdown_announced {
            self.renew(Reason::ServerShutdown);
        }
        if let Some(reason) = end {
            self.disconnect(reason, h);
        }
    }

    /// Asks for a planned renewal's new connection (once), the old one
    /// serving meanwhile.
    fn renew(&mut self, reason: Reason) {
        if self.renewal.is_some() || self.standby.is_some() {
            return;
        }
        let Some(conn) = self.conn.as_ref() else { return };
        self.renewal = Some(reason);
        self.connector.request_after(Request { reason, lived: conn.since.elapsed() }, conn.synced);
    }

    /// Reads the renewal's new connection: pings answered, data frames
    /// noted (their depth ids) and skipped. A failure drops it and asks for
    /// another.
    fn read_standby(&mut self) {
        let Some((conn, standby)) = self.standby.as_mut() else { return };
        let mut end = None;
        for _ in 0..FRAMES_PER_TURN {
            match conn.ws.read() {
                Ok(Message::Text(t)) => standby.on_frame(t.as_bytes(), &self.cfg.symbols),
                Ok(Message::Binary(b)) => standby.on_frame(&b, &self.cfg.symbols),
                Ok(Message::Ping(_)) => self.stats.pings_received += 1,
                Ok(Message::Close(_)) => {
                    end = Some(Reason::Closed);
                    break;
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    end = Some(read_error_reason(&e));
                    break;
                }
            }
        }
        if end.is_none() {
            match conn.ws.flush() {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => end = Some(Reason::Error),
            }
        }
        if end.is_some() {
            let (conn, standby) = self.standby.take().expect("checked above");
            self.stats.standby_failures += 1;
            let lived = conn.since.elapsed();
            self.retire(conn, STANDBY_CLOSE);
            // Asked again as a failure: the backoff applies.
            self.renewal = Some(standby.reason);
            self.connector.request_after(Request { reason: standby.reason, lived }, false);
            self.standby_buffer = standby.into_buffer();
        }
    }

    /// Switches to the renewal's new connection once it has caught up.
    fn maybe_switch(&mut self, h: &mut impl FeedHandler) {
        let Some((_, standby)) = self.standby.as_ref() else { return };
        let symbols = &self.cfg.symbols;
        match standby.caught_up(Instant::now(), |i| h.synced_update_id(symbols[i])) {
            SwitchVerdict::Wait => {}
            SwitchVerdict::CaughtUp => self.switch(false, h),
            SwitchVerdict::TimedOut => self.switch(true, h),
        }
    }

    /// The new connection takes over at this frame boundary; the old one is
    /// closed off the hot thread. Books, snapshot requests and their
    /// generation are kept: both connections carry the same diff stream.
    fn switch(&mut self, forced: bool, h: &mut impl FeedHandler) {
        let Some((mut new, standby)) = self.standby.take() else { return };
        if let Some(old) = self.conn.take() {
            self.stats.disconnects[standby.reason as usize] += 1;
            new.synced |= old.synced;
            self.retire(old, SOCKET_CLOSE);
        }
        let fd = new.ws.get_ref().tcp().as_raw_fd();
        if self.poll.registry().reregister(&mut SourceFd(&fd), SOCKET, Interest::READABLE).is_err() {
            self.stats.register_failures += 1;
        }
        self.stats.switches += 1;
        self.stats.switches_forced += u64::from(forced);
        let waited = standby.since.elapsed().as_nanos() as u64;
        self.stats.switch_wait_ns_max = self.stats.switch_wait_ns_max.max(waited);
        new.last_data = Instant::now();
        self.conn = Some(new);
        self.t_readable = None;
        // Its bytes may already be waiting: edge-triggered readiness
        // would not announce them again.
        self.more_pending = true;
        h.on_switched(standby.reason, forced, wall_ns());
        self.standby_buffer = standby.into_buffer();
    }

    /// Closes a connection (a goodbye frame when `say_goodbye`) and hands it
    /// to the connector thread to drop.
    fn retire(&mut self, mut conn: Conn, say_goodbye: bool) {
        if say_goodbye {
            let _ = conn.ws.close(None);
            let _ = conn.ws.flush();
        }
        let _ = self.poll.registry().deregister(&mut SourceFd(&conn.ws.get_ref().tcp().as_raw_fd()));
        self.connector.retire(conn.ws);
    }

    fn timers(&mut self, h: &mut impl FeedHandler) {
        self.refresh_top20_books(h);
        let now = Instant::now();
        let Some(conn) = self.conn.as_mut() else { return };
        if !conn.synced && self.cfg.symbols.iter().any(|&s| h.synced_update_id(s).is_some()) {
            conn.synced = true;
        }
        let reason = if now.duration_since(conn.last_data) > self.cfg.stale_after {
            Some(Reason::Silence)
        } else if conn.ping_outstanding.is_some_and(|t| now.duration_since(t) > self.cfg.pong_timeout) {
            Some(Reason::NoPong)
        } else if now.duration_since(conn.since) > self.cfg.max_connection_age
            && self.renewal.is_none()
            && self.standby.is_none()
        {
            // Renewed before Binance's 24-hour limit, made before broken.
            self.renew(Reason::Renew);
            None
        } else {
            if conn.ping_outstanding.is_none() && now.duration_since(conn.last_ping) >= self.cfg.ping_interval {
                conn.last_ping = now;
                conn.ping_outstanding = Some(now);
                self.stats.pings_sent += 1;
                match conn.ws.send(Message::Ping(tungstenite::Bytes::from_static(PING_PAYLOAD))) {
                    Ok(()) => None,
                    Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                    Err(_) => Some(Reason::Error),
                }
            } else {
                None
            }
        };
        if let Some(r) = reason {
            self.disconnect(r, h);
        }
    }

    /// Books rebuilt from depth20 get a full REST snapshot as soon as the
    /// guard lets REST through again (nothing refused, no failed fetch
    /// pending a retry).
    fn refresh_top20_books(&mut self, h: &mut impl FeedHandler) {
        if !self.snapshots.iter().any(|s| s.top20) || self.cfg.ip_guard.as_ref().is_some_and(|g| g.blocked().is_some())
        {
            return;
        }
        let now = Instant::now();
        for i in 0..self.snapshots.len() {
            if self.snapshots[i].top20 && self.snapshots[i].top20_refresh_at.is_none_or(|t| now >= t) {
                self.snapshots[i].top20 = false;
                self.snapshots[i].failures = 0;
                self.stats.top20_refreshes += 1;
                h.refresh_book(self.cfg.symbols[i], wall_ns());
            }
        }
    }

    fn disconnect(&mut self, reason: Reason, h: &mut impl FeedHandler) {
        if self.standby.is_some() {
            // A renewal's new connection is up: switch to it now, books
            // kept (a diff it lacks shows as a gap and resyncs as usual).
            if let Some(old) = self.conn.take() {
                self.stats.disconnects[reason as usize] += 1;
                let synced = old.synced;
                self.retire(old, false);
                if let Some((c, _)) = self.standby.as_mut() {
                    c.synced |= synced;
                }
            }
            self.switch(true, h);
            return;
        }
        let Some(conn) = self.conn.take() else { return };
        // Say goodbye where the server may still listen; errors change nothing.
        let goodbye = matches!(reason, Reason::Renew | Reason::Silence | Reason::NoPong | Reason::InvalidUtf8);
        let (lived, synced) = (conn.since.elapsed(), conn.synced);
        self.retire(conn, goodbye);
        if self.renewal.take().is_none() {
            // A renewal already asked the connector: its connection becomes
            // the next one. Otherwise ask now.
            self.connector.request_after(Request { reason, lived }, synced);
        }
        self.disconnected_at = Some(Instant::now());
        self.stats.disconnects[reason as usize] += 1;
        self.stats.last_disconnect = Some(reason);
        self.t_readable = None;
        self.more_pending = false;
        // Replies to requests made on this connection must not land on the
        // next one's books.
        self.new_generation();
        h.on_disconnected(reason, wall_ns());
    }

    fn snapshots(&mut self, h: &mut impl FeedHandler) {
        let Some(fetcher) = self.fetcher.as_mut() else { return };
        let now = Instant::now();
        while let Some(reply) = fetcher.take() {
            let Some(i) = self.cfg.symbols.iter().position(|&s| s == reply.request.symbol) else { continue };
            if reply.request.generation != self.generation {
                self.stats.snapshots_discarded += 1;
                if let Ok(buf) = reply.body {
                    fetcher.recycle(buf);
                }
                continue;
            }
            let state = &mut self.snapshots[i];
            if state.in_flight.is_none() {
                // The other of two requests answered first: already used.
                self.stats.snapshots_duplicate += 1;
                if let Ok(buf) = reply.body {
                    fetcher.recycle(buf);
                }
                continue;
            }
            if reply.body.is_err() && state.hedged && !reply.hedge {
                // The first request failed; the second may still answer.
                state.hedged = false;
                self.stats.snapshots_failed += 1;
                continue;
            }
            state.in_flight = None;
            state.hedged = false;
            match reply.body {
                Ok(buf) => {
                    state.failures = 0;
                    state.top20_backoff = Duration::ZERO;
                    self.stats.snapshots_received += 1;
                    // Stamped now, on this thread: lines and quotes stay in
                    // time order (the body may have waited in the ring).
                    h.on_snapshot(reply.request.symbol, &buf, wall_ns());
                    fetcher.recycle(buf);
                }
                Err(_) => {
                    state.failures = state.failures.saturating_add(1);
                    self.stats.snapshots_failed += 1;
                }
            }
            // Too old or failed: ask again after a pause, longer after each
            // failure in a row (a 4xx must not drain the weight budget).
            let backoff = self.cfg.snapshot_retry.saturating_mul(1 << state.failures.min(10)).min(MAX_SNAPSHOT_RETRY);
            state.retry_at = Some(now + backoff.max(self.cfg.snapshot_retry));
        }
        if self.conn.is_none() {
            return;
        }
        // A reply that never came (lost to a full ring): ask again. Not
        // while the fetcher waits for the IP guard (a ban can last days):
        // the request is still there, and asking again would only queue a
        // duplicate.
        let give_up = self.cfg.snapshot_timeout + Duration::from_secs(5);
        let guard_wait = fetcher.counters().waiting_for_guard.load(std::sync::atomic::Ordering::Relaxed);
        for (i, &symbol) in self.cfg.symbols.iter().enumerate() {
            let state = &mut self.snapshots[i];
            if guard_wait && state.in_flight.is_some() {
                state.in_flight = Some(now);
            }
            if state.in_flight.is_some_and(|t| now.duration_since(t) > give_up) {
                state.in_flight = None;
                state.hedged = false;
                self.stats.snapshots_lost += 1;
            }
            let hedge_after = self.cfg.snapshot_hedge_after;
            if !hedge_after.is_zero()
                && !guard_wait
                && !state.hedged
                && state.in_flight.is_some_and(|t| now.duration_since(t) >= hedge_after)
                && fetcher.has_idle_worker()
                && fetcher.hedge(SnapshotRequest { symbol, generation: self.generation })
            {
                // No answer yet: ask again on the idle worker instead of
                // waiting out the timeout.
                state.hedged = true;
                self.stats.snapshots_hedged += 1;
                self.stats.snapshots_requested += 1;
            }
            if state.in_flight.is_some() || state.retry_at.is_some_and(|t| now < t) || !h.wants_snapshot(symbol) {
                continue;
            }
            if fetcher.request(SnapshotRequest { symbol, generation: self.generation }) {
                state.in_flight = Some(now);
                self.stats.snapshots_requested += 1;
            } else {
                self.stats.snapshot_ring_full += 1;
            }
        }
    }
}

/// Close frames: the old connection of a switch gets one, a failed
/// renewal connection does not need one.
const SOCKET_CLOSE: bool = true;
const STANDBY_CLOSE: bool = true;

/// The symbol (index into `symbols`) of a combined-stream `@depth20` frame.
fn top20_symbol(frame: &[u8], symbols: &[Symbol]) -> Option<usize> {
    const KEY: &[u8] = b"{\"stream\":\"";
    let rest = frame.strip_prefix(KEY)?;
    let at = memchr::memchr(b'@', &rest[..rest.len().min(48)])?;
    if !rest[at..].starts_with(b"@depth20") {
        return None;
    }
    symbols.iter().position(|s| s.as_str().as_bytes().eq_ignore_ascii_case(&rest[..at]))
}

/// The `data` object of a combined-stream frame (the raw payload).
fn data_of(frame: &[u8]) -> Option<&[u8]> {
    let start = memchr::memmem::find(frame, b"\"data\":")? + 7;
    let end = memchr::memrchr(b'}', frame)?;
    (end > start).then(|| &frame[start..end])
}

/// Why a read failed, in the trade's words: an invalid UTF-8 text frame
/// says so (tungstenite checks text frames, RFC 6455 §8.1).
fn read_error_reason(e: &tungstenite::Error) -> Reason {
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => Reason::Closed,
        tungstenite::Error::Utf8(_) => Reason::InvalidUtf8,
        _ => Reason::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth20_frames_are_told_apart_and_their_payload_is_a_snapshot_body() {
        let symbols = [Symbol::new(b"BTCUSDT"), Symbol::new(b"ETHUSDT")];
        let frame = br#"{"stream":"ethusdt@depth20@100ms","data":{"lastUpdateId":160,"bids":[["1.0","2"]],"asks":[]}}"#;
        assert_eq!(top20_symbol(frame, &symbols), Some(1));
        assert_eq!(data_of(frame), Some(&br#"{"lastUpdateId":160,"bids":[["1.0","2"]],"asks":[]}"#[..]));
        let diff = br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","U":1,"u":2}}"#;
        assert_eq!(top20_symbol(diff, &symbols), None);
        assert_eq!(top20_symbol(br#"{"stream":"xrpusdt@depth20@100ms","data":{}}"#, &symbols), None);
    }

    #[test]
    fn reasons_are_listed_once_each_in_counter_order() {
        for (i, r) in REASONS.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        assert_eq!(read_error_reason(&tungstenite::Error::Utf8("bad".into())), Reason::InvalidUtf8);
        assert_eq!(read_error_reason(&tungstenite::Error::ConnectionClosed), Reason::Closed);
    }
}
