//! What the control plane shows: the latest snapshots the session's view
//! loop reads anyway (the hot thread's [`HotStatus`], the exchange side's
//! [`ExecStatus`]) and a numbered log of events and alerts, behind one
//! mutex that only off-hot-path threads ever take. The view loop publishes
//! here after each read; HTTP handlers and stream clients read here. No
//! reader ever holds a client's socket while holding the lock.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};

use crate::ai::advisor::AdvisorHandle;
use crate::hot::advice::Advice;
use crate::hot::fixed::{Price, Qty, SCALE};
use crate::hot::msg::Level;
use crate::runtime::{ExecStatus, HotStatus};
use crate::stats::latency::{Stage, StageHistograms};

/// Entries (events and alerts) kept for the stream and `GET /api/events`.
pub const KEPT: usize = 4096;

/// One numbered line of the stream's log.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub t_s: f64,
    /// `"event"` or `"alert"`.
    pub kind: &'static str,
    pub data: Value,
}

/// Things that do not change while the run goes on, and the shared
/// handles the status reads at request time.
pub struct Sources {
    pub title: String,
    pub mode: String,
    pub symbol: String,
    pub max_position: Qty,
    pub script_file: Option<PathBuf>,
    pub histograms: Arc<Mutex<StageHistograms>>,
    pub advisor: Option<Arc<AdvisorHandle>>,
    /// What the run's script watcher last said, shared with the session.
    pub script_note: Arc<Mutex<crate::control::ScriptNote>>,
}

#[derive(Default)]
struct Inner {
    hot: Option<HotStatus>,
    exec: ExecStatus,
    entries: VecDeque<Entry>,
    next_seq: u64,
}

/// Counters of the control plane itself.
#[derive(Default)]
pub struct ServerCounters {
    pub requests: AtomicU64,
    pub unauthorized: AtomicU64,
    pub refused: AtomicU64,
    pub busy: AtomicU64,
    pub stream_clients: AtomicU64,
    pub stream_dropped: AtomicU64,
}

/// The shared picture.
pub struct Board {
    pub sources: Sources,
    pub started: Instant,
    pub stopping: AtomicBool,
    pub counters: Arc<ServerCounters>,
    inner: Mutex<Inner>,
    /// Operator actions taken through the API, for the session's event
    /// log (the view loop takes them; they come back here as events).
    operator: Mutex<Vec<String>>,
}

impl Board {
    pub fn new(sources: Sources) -> Arc<Self> {
        Arc::new(Self {
            sources,
            started: Instant::now(),
            stopping: AtomicBool::new(false),
            counters: Arc::default(),
            inner: Mutex::new(Inner { next_seq: 1, ..Inner::default() }),
            operator: Mutex::new(Vec::new()),
        })
    }

    /// An operator action, for the event log.
    pub fn note_operator(&self, line: String) {
        let mut o = self.operator.lock().unwrap_or_else(|p| p.into_inner());
        if o.len() < 1024 {
            o.push(line);
        }
    }

    /// The operator actions since the last call.
    pub fn take_operator_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.operator.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The view loop's latest snapshots.
    pub fn publish(&self, hot: Option<&HotStatus>, exec: &ExecStatus) {
        let mut i = self.lock();
        if let Some(h) = hot {
            i.hot = Some(*h);
        }
        i.exec = *exec;
    }

    /// Adds a line to the log (`kind`: `"event"` or `"alert"`).
    pub fn push(&self, t_s: f64, kind: &'static str, mut data: Value) {
        let mut i = self.lock();
        let seq = i.next_seq;
        i.next_seq += 1;
        if let Value::Object(m) = &mut data {
            m.insert("seq".into(), seq.into());
        }
        if i.entries.len() == KEPT {
            i.entries.pop_front();
        }
        i.entries.push_back(Entry { seq, t_s, kind, data });
    }

    /// The next sequence number to be given out.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Entries numbered above `since`, at most `max`, and the oldest
    /// number still kept.
    pub fn entries_after(&self, since: u64, max: usize) -> (Vec<Entry>, u64) {
        let i = self.lock();
        let oldest = i.entries.front().map_or(i.next_seq, |e| e.seq);
        let out = i.entries.iter().filter(|e| e.seq > since).take(max).cloned().collect();
        (out, oldest)
    }

    pub fn snapshots(&self) -> (Option<HotStatus>, ExecStatus) {
        let i = self.lock();
        (i.hot, i.exec)
    }

    pub fn uptime_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// `GET /api/status`.
    pub fn status(&self) -> Value {
        let (hot, exec) = self.snapshots();
        let h = hot.unwrap_or_default();
        let s = &self.sources;
        let now = crate::feed::snapshot::wall_ns();
        let book = book_json(&h);
        // A pulled quote is no quote.
        let quote = h.last_quote.filter(|q| !q.is_pulled()).map(|q| side_pair(q.bid, q.ask));
        let working = h.working;
        let level = |l: Option<Level>| l.map(|l| json!([px(l.price), qty(l.qty)]));
        let book_age_ms = (h.last_depth_ns > 0).then(|| (now - h.last_depth_ns).max(0) / 1_000_000);
        let script = &h.script;
        let note = s.script_note.lock().map(|n| n.clone()).unwrap_or_default();
        json!({
            "title": s.title,
            "mode": s.mode,
            "symbol": s.symbol,
            "uptime_s": round3(self.uptime_s()),
            "paused": h.paused,
            "stopping": self.stopping.load(Ordering::Relaxed) || exec.stopped,
            "feed": {
                "connected": h.connected,
                "connects": h.connects,
                "disconnects": h.feed.disconnects,
                "synced": h.synced,
                "update_id": h.update_id,
                "book_age_ms": book_age_ms,
                "unsynced_cause": (!h.synced).then(|| h.unsynced_cause.name()),
            },
            "book": book,
            "quote": quote,
            "orders": {"bid": level(working.bid), "ask": level(working.ask)},
            "position": qty(exec.position),
            "pnl": {
                "total": money(exec.pnl),
                "realized": money(h.working.account.realized),
                "fees": money(exec.fees),
                "volume": money(exec.volume),
            },
            "counters": {
                "frames": h.frames,
                "quotes": h.quotes,
                "pulled": h.pulled,
                "pulled_stale": h.pulled_stale,
                "pulled_on_sync_loss": h.pulled_on_sync_loss,
                "rejected": h.rejected,
                "gaps": h.gaps,
                "resyncs": h.resyncs,
                "malformed": h.feed.malformed,
                "orders": exec.orders,
                "cancels": exec.cancels,
                "fills": exec.fills,
                "refused": exec.refused,
                "exchange_rejects": exec.rejected,
                "unknown_fates": exec.unknown_fates,
            },
            "advice": self.advice_json(&h.advice, now),
            "script": {
                "active": script.active,
                "file": s.script_file.as_ref().map(|p| p.display().to_string()),
                "hash": script.active.then(|| format!("{:016x}", script.hash)),
                "compiled": script.compiled,
                "calls": script.calls,
                "errors": script.errors,
                "bad_outputs": script.bad_outputs,
                "reverts": script.reverts,
                "last_error": script.last_error.as_ref().map(|e| e.as_str().to_string()),
                "reloads": note.reloads,
                "last_event": note.last_event,
            },
            "latency": self.latency_json(),
            "limits": {"max_position": qty(s.max_position)},
            "control": {
                "requests": self.counters.requests.load(Ordering::Relaxed),
                "unauthorized": self.counters.unauthorized.load(Ordering::Relaxed),
                "refused": self.counters.refused.load(Ordering::Relaxed),
                "busy": self.counters.busy.load(Ordering::Relaxed),
                "stream_clients": self.counters.stream_clients.load(Ordering::Relaxed),
                "stream_dropped": self.counters.stream_dropped.load(Ordering::Relaxed),
            },
        })
    }

    /// The status's `advice`.
    pub fn advice_json(&self, a: &Advice, now_ns: i64) -> Value {
        let advisor = self.sources.advisor.as_ref().map(|h| h.stats().to_json());
        json!({
            "spread": format!("{:?}", a.spread).to_lowercase(),
            "volatility": format!("{:?}", a.volatility).to_lowercase(),
            "direction": format!("{:?}", a.direction).to_lowercase(),
            "confidence": a.confidence,
            "multiplier": a.multiplier,
            "source": format!("{:?}", a.source).to_lowercase(),
            "age_s": (a.received_ns > 0).then(|| round3((now_ns - a.received_ns).max(0) as f64 / 1e9)),
            "advisor": advisor,
        })
    }

    /// The status's `latency`: percentiles per stage since the start.
    pub fn latency_json(&self) -> Value {
        let h = self.sources.histograms.lock().unwrap_or_else(|p| p.into_inner());
        let mut m = serde_json::Map::new();
        for s in STAGES {
            let p = h.percentiles(s);
            m.insert(s.name().into(), json!({"count": p.count, "p50_ns": p.p50, "p99_ns": p.p99, "p999_ns": p.p999}));
        }
        Value::Object(m)
    }
}

/// The stages the dashboard and the status show.
pub const STAGES: [Stage; 5] = [Stage::TickToQuote, Stage::Parse, Stage::Book, Stage::Strategy, Stage::Quote];

/// The status's `book`: ten levels a side, mid and spread.
fn book_json(h: &HotStatus) -> Value {
    let side = |levels: &[Option<Level>]| -> Vec<Value> {
        levels.iter().flatten().map(|l| json!([px(l.price), qty(l.qty)])).collect()
    };
    let (bb, ba) = (h.bids[0], h.asks[0]);
    let (mid, spread) = match (bb, ba) {
        (Some(b), Some(a)) => (Some((px(b.price) + px(a.price)) / 2.0), Some(px(a.price) - px(b.price))),
        _ => (None, None),
    };
    json!({"bids": side(&h.bids), "asks": side(&h.asks), "mid": mid, "spread": spread.map(round8)})
}

fn side_pair(bid: Option<Level>, ask: Option<Level>) -> Value {
    json!({
        "bid": bid.map(|l| px(l.price)),
        "bid_qty": bid.map(|l| qty(l.qty)),
        "ask": ask.map(|l| px(l.price)),
        "ask_qty": ask.map(|l| qty(l.qty)),
    })
}

/// Display values: fixed-point to `f64` (the journal keeps exact ones).
pub fn px(p: Price) -> f64 {
    p.0 as f64 / SCALE as f64
}

pub fn qty(q: Qty) -> f64 {
    q.0 as f64 / SCALE as f64
}

pub fn money(v: i64) -> f64 {
    v as f64 / SCALE as f64
}

fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

fn round8(v: f64) -> f64 {
    (v * 1e8).round() / 1e8
}
