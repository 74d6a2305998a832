//! The WebSocket API session thread behind [`OrderGateway`]: requests
//! pipelined on one session and matched to their answers by id, user data
//! on the same session, and sessions replaced without a gap.
//!
//! - **Pipelining** (web-socket-api.md §Request format: "Arbitrary ID used
//!   to match responses to requests"): every request gets a fresh numeric
//!   id; answers may come in any order and are matched by it. Nothing waits
//!   for an answer before the next request goes out.
//! - **Unknown fate**: a request unanswered after the timeout, or in flight
//!   when its connection drops, is answered locally with
//!   [`BinanceError::Unknown`](crate::exec::binance::errors::BinanceError)
//!   (reads: `Unavailable`) and never resent (§Status codes).
//! - **Switching**: on `serverShutdown` (§Server Shutdown), on an
//!   `eventStreamTerminated`, and before the 24 h connection limit (§General
//!   API Information), a new session is opened (logon, subscribe) on a
//!   helper thread while the old one keeps serving; new requests then go to
//!   the new one, and the old one is closed once its in-flight requests are
//!   answered. User-data events seen on both during the overlap are handed
//!   out once.
//! - **Drops**: reconnect with a doubling back-off; meanwhile calls go to
//!   the REST workers. Every connect asks the [`IpGuard`] first, so during a
//!   418 ban nobody connects.
//!
//! [`OrderGateway`]: crate::exec::binance::gateway::OrderGateway
//! [`IpGuard`]: crate::ipguard::IpGuard

pub mod conn;
pub mod request;

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::exec::binance::errors::{self, BinanceError};
use crate::exec::binance::gateway::{
    Answer, Call, Counters, GatewayConfig, GatewayEvent, Job, Reply, RequestId, Shared, Transport,
};
use crate::exec::binance::rest::MyTrade;
use crate::exec::userdata::{self, Parsed, UserEvent};
use conn::{Conn, OpenError, Setup};
use request::{Auth, MethodInfo};

/// The longest the thread sleeps with nothing to do: it wakes at once for
/// a new call (the gateway's waker) or a readable socket, and this bounds
/// how late a finished connect or a renewal is noticed.
const IDLE_WAIT: Duration = Duration::from_millis(5);
/// The poller token of the gateway's waker; sessions use their number.
pub(crate) const WAKE: mio::Token = mio::Token(0);
/// Frames read from one connection per turn (the others get their turn).
const READS_PER_TURN: usize = 256;
/// User-data events remembered to drop the copy a second session delivers.
const SEEN_EVENTS: usize = 4096;

/// One request on the wire, waiting for its answer.
struct Pending {
    id: RequestId,
    /// The symbol the call trades (the gateway may serve several).
    symbol: Arc<str>,
    call: Call,
    info: MethodInfo,
    /// [`Conn::number`] of the session it went out on.
    session: u64,
    /// The first page's send time (`myTrades` pages add up).
    sent_at: Instant,
    deadline: Instant,
    timestamp_ms: i64,
    /// `myTrades` pages so far.
    trades: Vec<MyTrade>,
}

/// The session thread; [`SessionThread::run`] until the gateway stops.
pub(crate) struct SessionThread {
    setup: Arc<Setup>,
    recv_window: Duration,
    timeout: Duration,
    renew_after: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    backoff: Duration,
    jobs: Receiver<Job>,
    rest: Sender<Job>,
    events: Sender<GatewayEvent>,
    shared: Arc<Shared>,
    /// Wakes on the gateway's waker and on every session's socket.
    poll: mio::Poll,
    /// A turn stopped reading with frames left: do not sleep.
    more: bool,
    active: Option<Conn>,
    /// Replaced sessions finishing their in-flight requests, and since when.
    draining: Vec<(Conn, Instant)>,
    opening: Option<Receiver<Result<Conn, OpenError>>>,
    /// Why the active session is being replaced (a new one is wanted).
    replace: Option<&'static str>,
    retry_at: Instant,
    pending: HashMap<u64, Pending>,
    next_wire: u64,
    next_number: u64,
    generation: u64,
    reported_up: Option<bool>,
    seen: VecDeque<u64>,
    seen_set: HashSet<u64>,
}

impl SessionThread {
    pub(crate) fn new(
        cfg: &GatewayConfig,
        setup: Setup,
        jobs: Receiver<Job>,
        rest: Sender<Job>,
        events: Sender<GatewayEvent>,
        shared: Arc<Shared>,
        poll: mio::Poll,
    ) -> Self {
        Self {
            setup: Arc::new(setup),
            recv_window: cfg.recv_window,
            timeout: cfg.timeout,
            renew_after: cfg.renew_after,
            backoff_min: cfg.backoff_min,
            backoff_max: cfg.backoff_max.max(cfg.backoff_min),
            backoff: cfg.backoff_min,
            jobs,
            rest,
            events,
            shared,
            poll,
            more: false,
            active: None,
            draining: Vec::new(),
            opening: None,
            replace: None,
            retry_at: Instant::now(),
            pending: HashMap::new(),
            next_wire: 1,
            next_number: 1,
            generation: 0,
            reported_up: None,
            seen: VecDeque::with_capacity(SEEN_EVENTS),
            seen_set: HashSet::with_capacity(SEEN_EVENTS),
        }
    }

    pub(crate) fn run(mut self) {
        let mut events = mio::Events::with_capacity(16);
        while !self.shared.stop.load(Ordering::Relaxed) {
            let wait = if self.more { Duration::ZERO } else { self.next_wait() };
            // Which source woke us does not matter: every turn does it all.
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            loop {
                match self.jobs.try_recv() {
                    Ok(job) => self.dispatch(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.finish();
                        return;
                    }
                }
            }
            self.read_all();
            self.expire();
            self.manage();
        }
        self.finish();
    }

    fn close(&self, c: Conn) {
        let _ = self.poll.registry().deregister(&mut mio::unix::SourceFd(&c.raw_fd()));
        c.close();
    }

    /// Until the next request deadline, at most [`IDLE_WAIT`].
    fn next_wait(&self) -> Duration {
        let now = Instant::now();
        self.pending
            .values()
            .map(|p| p.deadline.saturating_duration_since(now))
            .min()
            .map_or(IDLE_WAIT, |d| d.min(IDLE_WAIT))
    }

    fn emit(&self, e: GatewayEvent) {
        let _ = self.events.send(e);
    }

    fn answer(&self, p: &Pending, via: Transport, result: Result<Reply, BinanceError>) {
        self.emit(GatewayEvent::Answer(Answer {
            id: p.id,
            method: p.call.method(),
            via,
            sent_at: p.sent_at,
            timestamp_ms: p.timestamp_ms,
            recv_window: self.recv_window,
            rtt: p.sent_at.elapsed(),
            result,
        }));
    }

    /// Sends a call on the active session, or hands it to REST.
    fn dispatch(&mut self, job: Job) {
        let ws = self.active.is_some() && !matches!(job.call, Call::SyncClock);
        if !ws {
            if !matches!(job.call, Call::SyncClock) {
                Counters::inc(&self.shared.counters.fallbacks);
            }
            if let Err(e) = self.rest.send(job) {
                let job = e.0;
                let info = request::method_info(&job.call);
                let p = self.pending_for(job, info, 0, 0);
                let why = "the REST workers have stopped".to_string();
                self.answer(&p, Transport::NotSent, Err(BinanceError::NotSent { request: info.endpoint.label, why }));
            }
            return;
        }
        let info = request::method_info(&job.call);
        if let Err(r) = self.setup.guard.admit_ws_api(info.request()) {
            let p = self.pending_for(job, info, 0, 0);
            self.answer(&p, Transport::NotSent, Err(request::refused(info.endpoint, &r)));
            return;
        }
        let params = request::call_params(&job.call, &job.symbol, None);
        let number = self.active.as_ref().map_or(0, |c| c.number);
        let p = self.pending_for(job, info, number, 0);
        self.send(number, p, params);
    }

    fn pending_for(&self, job: Job, info: MethodInfo, session: u64, ts: i64) -> Pending {
        let now = Instant::now();
        Pending {
            id: job.id,
            symbol: job.symbol,
            call: job.call,
            info,
            session,
            sent_at: now,
            deadline: now + self.timeout,
            timestamp_ms: ts,
            trades: vec![],
        }
    }

    fn conn_mut(&mut self, number: u64) -> Option<&mut Conn> {
        if self.active.as_ref().is_some_and(|c| c.number == number) {
            return self.active.as_mut();
        }
        self.draining.iter_mut().map(|(c, _)| c).find(|c| c.number == number)
    }

    /// Writes one request (a call or its next `myTrades` page) on session
    /// `number` and files it as pending.
    fn send(&mut self, number: u64, mut p: Pending, params: Vec<(&'static str, request::Param)>) {
        let wire = self.next_wire;
        self.next_wire += 1;
        let ts = self.setup.server_ms();
        let (recv_ms, setup) = (self.setup.recv_window_ms, self.setup.clone());
        let deadline = Instant::now() + self.timeout;
        let Some(conn) = self.conn_mut(number) else {
            let why = "the session it was meant for is gone".to_string();
            self.answer(&p, Transport::NotSent, Err(BinanceError::NotSent { request: p.info.endpoint.label, why }));
            return;
        };
        let auth: Auth = conn.auth;
        let text = request::frame(&wire.to_string(), p.info.wire, params, auth, &setup.creds, recv_ms, ts);
        if p.timestamp_ms == 0 {
            p.timestamp_ms = ts;
        }
        p.session = number;
        p.deadline = deadline;
        let sent = conn.send(text);
        self.pending.insert(wire, p);
        Counters::inc(&self.shared.counters.sent_ws);
        if let Err(why) = sent {
            self.lost(number, &format!("writing a request failed: {why}"));
        }
    }

    /// Reads what every connection has, then handles it.
    fn read_all(&mut self) {
        let mut frames: Vec<(u64, Value)> = Vec::new();
        let mut broken: Vec<(u64, String)> = Vec::new();
        self.more = false;
        let conns = self.active.iter_mut().chain(self.draining.iter_mut().map(|(c, _)| c));
        for c in conns {
            let mut read = 0;
            loop {
                if read == READS_PER_TURN {
                    // Edge-triggered: what is left will not wake us again.
                    self.more = true;
                    break;
                }
                read += 1;
                match c.read() {
                    Ok(Some(v)) => frames.push((c.number, v)),
                    Ok(None) => break,
                    Err(why) => {
                        broken.push((c.number, why));
                        break;
                    }
                }
            }
            if let Err(why) = c.flush() {
                broken.push((c.number, why));
            }
        }
        // Answers that came before the break are still answers.
        for (n, v) in frames {
            self.frame(n, v);
        }
        for (n, why) in broken {
            self.lost(n, &why);
        }
    }

    fn frame(&mut self, number: u64, v: Value) {
        if v.is_null() {
            Counters::inc(&self.shared.counters.bad_frames);
            return;
        }
        if let Some(ev) = v.get("event") {
            self.event(number, ev);
            return;
        }
        let wire = match v.get("id") {
            Some(Value::String(s)) => s.parse::<u64>().ok(),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        let Some(wire) = wire else {
            // `"id": null` with an error: the session itself was refused
            // (e.g. -2015 after the key was revoked, §Session Authentication).
            if v.get("error").is_some() {
                let status = v.get("status").and_then(Value::as_u64).unwrap_or(0);
                let msg = self.setup.creds.redact(&v["error"].to_string());
                self.lost(number, &format!("the session was refused (status {status}, {msg})"));
            }
            return;
        };
        match self.pending.remove(&wire) {
            Some(p) => self.finish_request(p, &v),
            None => Counters::inc(&self.shared.counters.late_answers),
        }
    }

    fn finish_request(&mut self, mut p: Pending, v: &Value) {
        let ep = p.info.endpoint;
        let status = v.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
        let err = (status != 200).then(|| {
            request::parse_error(ep, status, v.get("error"), self.setup.server_ms())
                .map_text(|t| self.setup.creds.redact(t))
        });
        request::report_to_guard(&self.setup.guard, v, err.as_ref());
        let result = match err {
            // None open is not a failure (as the REST client does).
            Some(BinanceError::UnknownOrder { .. }) if matches!(p.call, Call::CancelAll) => Ok(Reply::Orders(vec![])),
            Some(e) => Err(e),
            None => request::parse_result(&p.call, ep, v.get("result").unwrap_or(&Value::Null)),
        };
        let result = match (result, &p.call) {
            (Ok(Reply::Trades(page)), Call::MyTrades { .. }) => {
                let full = page.len() >= request::TRADES_PAGE;
                let next = page.last().map(|t| t.id + 1);
                p.trades.extend(page);
                if let (true, Some(from)) = (full, next) {
                    // Another page: same call, `fromId` after the last trade.
                    let params = request::call_params(&p.call, &p.symbol, Some(from));
                    let number = p.session;
                    self.send(number, p, params);
                    return;
                }
                Ok(Reply::Trades(std::mem::take(&mut p.trades)))
            }
            (r, _) => r,
        };
        self.shared.record_rtt(p.call.method(), Transport::WsApi, p.sent_at.elapsed());
        self.answer(&p, Transport::WsApi, result);
    }

    /// A user-data or connection event.
    fn event(&mut self, number: u64, ev: &Value) {
        let is_active = self.active.as_ref().is_some_and(|c| c.number == number);
        if ev.get("e").and_then(Value::as_str) == Some("serverShutdown") {
            if is_active && self.replace.is_none() {
                self.replace = Some("serverShutdown");
                // Open the replacement now, whatever the back-off says.
                self.retry_at = Instant::now();
            }
            return;
        }
        // The same event on two sessions (during a switch) is one event.
        let mut h = DefaultHasher::new();
        ev.to_string().hash(&mut h);
        let key = h.finish();
        if !self.seen_set.insert(key) {
            Counters::inc(&self.shared.counters.duplicate_events);
            return;
        }
        self.seen.push_back(key);
        if self.seen.len() > SEEN_EVENTS {
            if let Some(old) = self.seen.pop_front() {
                self.seen_set.remove(&old);
            }
        }
        let mut out = Vec::new();
        match userdata::parse_event(ev, &mut out) {
            Parsed::Bad => Counters::inc(&self.shared.counters.bad_frames),
            Parsed::Terminated if is_active && self.replace.is_none() => {
                self.replace = Some("eventStreamTerminated");
                self.retry_at = Instant::now();
            }
            _ => {}
        }
        for e in out {
            Counters::inc(&self.shared.counters.user_events);
            self.emit(GatewayEvent::User(e));
        }
    }

    /// Answers requests whose time is up.
    fn expire(&mut self) {
        let now = Instant::now();
        let due: Vec<u64> = self.pending.iter().filter(|(_, p)| now >= p.deadline).map(|(w, _)| *w).collect();
        for w in due {
            if let Some(p) = self.pending.remove(&w) {
                Counters::inc(&self.shared.counters.timeouts);
                let why = format!(
                    "no answer within {:.1} s on WebSocket API session {}",
                    self.timeout.as_secs_f64(),
                    p.session
                );
                self.answer(&p, Transport::WsApi, Err(errors::unknown(p.info.endpoint, why)));
            }
        }
    }

    /// Session `number` is gone: its in-flight requests are answered
    /// "fate unknown", and if it was the active one, calls go to REST until
    /// a new one is up.
    fn lost(&mut self, number: u64, why: &str) {
        let was_active = self.active.as_ref().is_some_and(|c| c.number == number);
        if was_active {
            let conn = self.active.take();
            self.shared.session_up.store(false, Ordering::Release);
            self.replace = None;
            self.retry_at = Instant::now() + self.backoff;
            self.backoff = self.backoff.saturating_mul(2).min(self.backoff_max);
            self.report(false, format!("WebSocket API session {number} lost: {why}; calls go over REST meanwhile"));
            if conn.as_ref().is_some_and(|c| c.subscribed) {
                self.emit(GatewayEvent::User(UserEvent::Disconnected));
            }
            if let Some(c) = conn {
                self.close(c);
            }
        } else if let Some(i) = self.draining.iter().position(|(c, _)| c.number == number) {
            let c = self.draining.swap_remove(i).0;
            self.close(c);
        }
        let gone: Vec<u64> = self.pending.iter().filter(|(_, p)| p.session == number).map(|(w, _)| *w).collect();
        for w in gone {
            if let Some(p) = self.pending.remove(&w) {
                Counters::inc(&self.shared.counters.dropped_in_flight);
                let why = format!("the WebSocket API connection dropped with the request in flight ({why})");
                self.answer(&p, Transport::WsApi, Err(errors::unknown(p.info.endpoint, why)));
            }
        }
    }

    fn report(&mut self, up: bool, why: String) {
        if self.reported_up != Some(up) || up {
            self.reported_up = Some(up);
            self.emit(GatewayEvent::Session { up, why });
        }
    }

    /// Opens sessions when one is needed, installs them when ready, and
    /// closes drained ones.
    fn manage(&mut self) {
        let now = Instant::now();
        if let Some(rx) = &self.opening {
            match rx.try_recv() {
                Ok(res) => {
                    self.opening = None;
                    self.opened(res);
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    self.opening = None;
                    self.failed(&OpenError::Closed("the connecting thread could not start".into()));
                }
            }
        }
        if self.opening.is_none() && now >= self.retry_at {
            let want = match &self.active {
                None => true,
                Some(c) => {
                    if self.replace.is_none() && c.opened.elapsed() >= self.renew_after {
                        self.replace = Some("the 24 h connection limit is near");
                    }
                    self.replace.is_some()
                }
            };
            if want {
                let number = self.next_number;
                self.next_number += 1;
                self.opening = Some(conn::spawn_open(self.setup.clone(), number));
            }
        }
        // Replaced sessions close once their requests are answered (or
        // timed out, which answers them too).
        let grace = self.timeout + Duration::from_secs(1);
        let mut i = 0;
        while i < self.draining.len() {
            let (n, since) = (self.draining[i].0.number, self.draining[i].1);
            let busy = self.pending.values().any(|p| p.session == n);
            if !busy || since.elapsed() > grace {
                if busy {
                    self.lost(n, "closed after the switch to a new session");
                } else {
                    let c = self.draining.swap_remove(i).0;
                    self.close(c);
                }
                continue;
            }
            i += 1;
        }
    }

    fn opened(&mut self, res: Result<Conn, OpenError>) {
        let conn = match res {
            Ok(c) => c,
            Err(e) => return self.failed(&e),
        };
        let c = &self.shared.counters;
        Counters::inc(&c.sessions_opened);
        let how = if conn.auth == Auth::LoggedOn { "logged on" } else { "requests signed one by one" };
        let why = match (self.active.take(), self.replace.take()) {
            (Some(old), reason) => {
                match reason {
                    Some("serverShutdown") => Counters::inc(&c.shutdowns_handled),
                    Some("the 24 h connection limit is near") => Counters::inc(&c.renewals),
                    _ => {}
                }
                let r = reason.unwrap_or("replacement");
                let msg = format!("WebSocket API session {} replaces session {} ({r}), {how}", conn.number, old.number);
                self.draining.push((old, Instant::now()));
                msg
            }
            (None, _) => {
                if conn.number > 1 {
                    Counters::inc(&c.reconnects);
                }
                format!("WebSocket API session {} up, {how}", conn.number)
            }
        };
        let subscribed = conn.subscribed;
        let token = mio::Token(conn.number as usize);
        let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
        // If this fails the session still works, read every IDLE_WAIT.
        let _ = self.poll.registry().register(&mut mio::unix::SourceFd(&conn.raw_fd()), token, interest);
        // Frames may already sit in the connection's buffer (edge-triggered).
        self.more = true;
        self.active = Some(conn);
        self.backoff = self.backoff_min;
        self.shared.session_up.store(true, Ordering::Release);
        self.report(true, why);
        if subscribed {
            self.generation += 1;
            self.emit(GatewayEvent::User(UserEvent::Subscribed { generation: self.generation }));
        }
    }

    fn failed(&mut self, e: &OpenError) {
        Counters::inc(&self.shared.counters.connect_failures);
        let wait = match e {
            OpenError::Guard(r) => r.retry_in().max(self.backoff),
            _ => self.backoff,
        };
        self.retry_at = Instant::now() + wait;
        self.backoff = self.backoff.saturating_mul(2).min(self.backoff_max);
        if self.active.is_none() {
            let why = format!(
                "WebSocket API session could not be opened: {e}; calls go over REST, retrying in {:.1} s",
                wait.as_secs_f64()
            );
            self.report(false, why);
        }
    }

    /// The gateway stopped: everything in flight is answered, sessions close.
    fn finish(&mut self) {
        for (_, p) in std::mem::take(&mut self.pending) {
            let why = "the order gateway stopped with the request in flight".to_string();
            self.answer(&p, Transport::WsApi, Err(errors::unknown(p.info.endpoint, why)));
        }
        if let Some(c) = self.active.take() {
            self.close(c);
        }
        for (c, _) in std::mem::take(&mut self.draining) {
            self.close(c);
        }
        self.shared.session_up.store(false, Ordering::Release);
    }
}
