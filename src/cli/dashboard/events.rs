//! The session's event log: fills, pulled quotes, script reloads, feed
//! disconnects, resyncs and malformed frames, new advice, pauses, as one line each with the
//! time since the session started. The dashboard shows its tail, the status
//! line view prints it, and `mmbot demo` writes it to `events.jsonl`.
//!
//! Why it is derived here: the runtime publishes running totals (the hot
//! thread's [`HotStatus`], the exchange side's [`ExecStatus`]), latest wins,
//! and no per-event stream. Events are the changes between two snapshots.
//! Fills are exact in count; their side comes from the position's change,
//! which is exact whenever the snapshots between two reads hold fills of one
//! side only (the exchange side publishes after each batch of market data,
//! and the reader takes every snapshot, so two fills of opposite sides
//! between reads are rare; they are then split by the traded volume).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::cli::session::ScriptInfo;
use crate::feed::health::FeedLogger;
use crate::hot::fixed::{Price, Qty, SCALE};
use crate::ring::Consumer;
use crate::runtime::{ExecStatus, HotStatus};

/// Events kept for display (the counters below cover the whole run).
const KEPT: usize = 500;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Fill,
    Pull,
    Reload,
    Feed,
    Advice,
    Operator,
    /// An alert the control plane's watch raised (`[alerts]`).
    Alert,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Fill => "fill",
            EventKind::Pull => "pull",
            EventKind::Reload => "reload",
            EventKind::Feed => "feed",
            EventKind::Advice => "advice",
            EventKind::Operator => "operator",
            EventKind::Alert => "alert",
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Seconds since the session started.
    pub t_s: f64,
    pub kind: EventKind,
    /// Fills: "buy" or "sell" (several fills read at once: one event per side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<&'static str>,
    /// Fills: how many fills this event stands for; pulls: how many quotes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fills: Option<u64>,
    pub text: String,
}

impl Event {
    /// `  12.3 s  fill    bought 0.001 @ 60000.01; position 0.001`
    pub fn line(&self) -> String {
        format!("{:7.1} s  {:<8} {}", self.t_s, self.kind.name(), self.text)
    }
}

/// Turns snapshots into events. Feed it every [`ExecStatus`] it can get
/// (not only the latest) and the latest [`HotStatus`] and [`ScriptInfo`].
#[derive(Debug, Default)]
pub struct EventLog {
    events: VecDeque<Event>,
    /// Events ever logged (the deque keeps the last [`KEPT`]).
    pub total: u64,
    pub buys: u64,
    pub sells: u64,
    /// When the first fill was seen, seconds since the start.
    pub first_fill_s: Option<f64>,
    exec: ExecStatus,
    hot: Option<HotStatus>,
    feed: FeedLogger,
    reloads: u64,
    advice_ns: i64,
}

impl EventLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last events, oldest first.
    pub fn recent(&self) -> impl DoubleEndedIterator<Item = &Event> + ExactSizeIterator {
        self.events.iter()
    }

    pub fn fills(&self) -> u64 {
        self.buys + self.sells
    }

    /// Adds an event (also used for the operator's own actions).
    pub fn push(&mut self, t_s: f64, kind: EventKind, text: String) {
        self.push_event(Event { t_s, kind, side: None, fills: None, text });
    }

    fn push_event(&mut self, e: Event) {
        if self.events.len() == KEPT {
            self.events.pop_front();
        }
        self.total += 1;
        self.events.push_back(e);
    }

    /// One snapshot of the exchange side's totals.
    pub fn on_exec(&mut self, now: &ExecStatus, t_s: f64) {
        let prev = std::mem::replace(&mut self.exec, *now);
        let n = now.fills.saturating_sub(prev.fills);
        if n == 0 {
            return;
        }
        self.first_fill_s.get_or_insert(t_s);
        let dpos = now.position.0.saturating_sub(prev.position.0);
        let dvol = now.volume.saturating_sub(prev.volume);
        let pos = now.position;
        // Quantities bought and sold since the last snapshot: bought - sold
        // is the position's change; bought + sold is the volume over the
        // price (one side only: |dpos| exactly).
        let (buys, sells, bought, sold) = if n == 1 || dpos != 0 && self.one_sided(dpos, dvol) {
            if dpos >= 0 {
                (n, 0, dpos, 0)
            } else {
                (0, n, 0, -dpos)
            }
        } else {
            let mid = self.mid().unwrap_or(Price(0)).0;
            let total = if mid > 0 { (dvol as i128 * SCALE as i128 / mid as i128) as i64 } else { dpos.abs() };
            let bought = ((total + dpos) / 2).max(0);
            let sold = ((total - dpos) / 2).max(0);
            let buys =
                if total > 0 { ((n as i128 * bought as i128 + total as i128 / 2) / total as i128) as u64 } else { 0 };
            let buys = buys.clamp(u64::from(bought > 0), n - u64::from(sold > 0));
            (buys, n - buys, bought, sold)
        };
        let price = |qty: i64| {
            if qty > 0 && dvol > 0 && (buys == 0 || sells == 0) {
                format!(" @ {}", Price((dvol as i128 * SCALE as i128 / qty as i128) as i64))
            } else {
                String::new()
            }
        };
        let several = |k: u64| if k > 1 { format!("{k} fills: ") } else { String::new() };
        if buys > 0 {
            self.buys += buys;
            self.push_event(Event {
                t_s,
                kind: EventKind::Fill,
                side: Some("buy"),
                fills: Some(buys),
                text: format!("{}bought {}{}; position {pos}", several(buys), Qty(bought), price(bought)),
            });
        }
        if sells > 0 {
            self.sells += sells;
            self.push_event(Event {
                t_s,
                kind: EventKind::Fill,
                side: Some("sell"),
                fills: Some(sells),
                text: format!("{}sold {}{}; position {pos}", several(sells), Qty(sold), price(sold)),
            });
        }
    }

    /// Whether a change of `dpos` with traded volume `dvol` is all one side
    /// (the volume is |dpos| at about the mid, not more).
    fn one_sided(&self, dpos: i64, dvol: i64) -> bool {
        match self.mid() {
            Some(m) if m.0 > 0 => {
                let one_side = (dpos.unsigned_abs() as i128 * m.0 as i128 / SCALE as i128) as i64;
                // Within 1%: prices move little between two snapshots.
                dvol <= one_side + one_side / 100 + 1
            }
            _ => true,
        }
    }

    fn mid(&self) -> Option<Price> {
        let s = self.hot.as_ref()?;
        match (s.bids[0], s.asks[0]) {
            (Some(b), Some(a)) => Some(Price((b.price.0 + a.price.0) / 2)),
            _ => None,
        }
    }

    /// The latest hot-thread snapshot: pulls, feed events, advice, pauses.
    pub fn on_status(&mut self, now: &HotStatus, t_s: f64) {
        for line in self.feed.update(now.feed, now.synced) {
            self.push(t_s, EventKind::Feed, line);
        }
        let Some(prev) = self.hot.replace(*now) else {
            if now.synced {
                self.push(t_s, EventKind::Feed, format!("book synced at update id {}", now.update_id));
            }
            return;
        };
        if now.synced && !prev.synced && now.feed.resyncs == prev.feed.resyncs && prev.update_id == 0 {
            self.push(t_s, EventKind::Feed, format!("book synced at update id {}", now.update_id));
        }
        let bad = now.rejected.saturating_sub(prev.rejected);
        if bad > 0 {
            let s = if bad == 1 { "" } else { "s" };
            self.push(t_s, EventKind::Feed, format!("{bad} malformed frame{s} rejected ({} so far)", now.rejected));
        }
        let stale = now.pulled_stale.saturating_sub(prev.pulled_stale);
        let sync = now.pulled_on_sync_loss.saturating_sub(prev.pulled_on_sync_loss);
        let all = now.pulled.saturating_sub(prev.pulled);
        if stale > 0 {
            self.push(t_s, EventKind::Pull, "quotes pulled: the book went stale (no depth event in time)".into());
        }
        if sync > 0 {
            self.push(t_s, EventKind::Pull, "quotes pulled: the book lost sync".into());
        }
        // Paused: every quote is a pull, said once by the pause itself.
        if all > stale + sync && !now.paused && !prev.paused {
            let n = all - stale - sync;
            // A run of them within a few seconds is one line, counted.
            let n = match self.events.back_mut() {
                Some(e) if e.kind == EventKind::Pull && e.fills.is_some() && t_s - e.t_s < 5.0 => {
                    let total = e.fills.unwrap_or(0) + n;
                    self.events.pop_back();
                    self.total -= 1;
                    total
                }
                _ => n,
            };
            self.push_event(Event {
                t_s,
                kind: EventKind::Pull,
                side: None,
                // The quotes this line stands for.
                fills: Some(n),
                text: format!(
                    "{n} quote{} pulled (strategy or guard: nothing safe to quote)",
                    if n == 1 { "" } else { "s" }
                ),
            });
        }
        if now.paused != prev.paused {
            let text = if now.paused { "quoting paused, quotes pulled" } else { "quoting resumed" };
            self.push(t_s, EventKind::Operator, text.into());
        }
        let a = &now.advice;
        if a.received_ns != 0 && a.received_ns != self.advice_ns {
            self.advice_ns = a.received_ns;
            let source = match a.source {
                crate::hot::advice::AdviceSource::Llm => "LLM",
                crate::hot::advice::AdviceSource::Offline => "offline",
                crate::hot::advice::AdviceSource::None => "none",
            };
            let text = format!(
                "{source}: spread {:?}, volatility {:?}, direction {:?}, confidence {}, multiplier {:.2}",
                a.spread, a.volatility, a.direction, a.confidence, a.multiplier
            )
            .to_lowercase();
            self.push(t_s, EventKind::Advice, text);
        }
    }

    /// The script watcher's state: one event per reload or refused change.
    pub fn on_script(&mut self, info: &ScriptInfo, t_s: f64) {
        if info.reloads > self.reloads {
            self.reloads = info.reloads;
            let text = info.last_event.clone().unwrap_or_else(|| "script reloaded".into());
            self.push(t_s, EventKind::Reload, text);
        }
    }

    /// One JSON object per line, oldest first (the kept events).
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            out.push_str(&serde_json::to_string(e).unwrap_or_default());
            out.push('\n');
        }
        out
    }
}

/// Reads the runtime's snapshots for a view and keeps the event log: every
/// exchange-side snapshot (so fills keep their side), the latest hot-thread
/// one, the script watcher's state.
pub struct Observer {
    status: Consumer<HotStatus>,
    exec: Consumer<ExecStatus>,
    script: Arc<Mutex<ScriptInfo>>,
    started: Instant,
    pub log: EventLog,
    pub last_status: Option<HotStatus>,
    pub last_exec: ExecStatus,
    tap: Option<Tap>,
}

/// Called after each [`Observer::poll`] with the log, the latest snapshots
/// and the time since the start (the control plane publishes from here).
pub type Tap = Box<dyn FnMut(&mut EventLog, Option<&HotStatus>, &ExecStatus, f64) + Send>;

impl Observer {
    pub fn new(status: Consumer<HotStatus>, exec: Consumer<ExecStatus>, script: Arc<Mutex<ScriptInfo>>) -> Self {
        Self {
            status,
            exec,
            script,
            started: Instant::now(),
            log: EventLog::new(),
            last_status: None,
            last_exec: ExecStatus::default(),
            tap: None,
        }
    }

    /// Sets the [`Tap`].
    pub fn set_tap(&mut self, tap: Tap) {
        self.tap = Some(tap);
    }

    /// Takes the [`Tap`] back (what it holds is released).
    pub fn take_tap(&mut self) -> Option<Tap> {
        self.tap.take()
    }

    /// Seconds since the observer started (the session's start).
    pub fn t_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Takes what arrived; true when there was a new hot-thread snapshot.
    pub fn poll(&mut self) -> bool {
        let t = self.t_s();
        let status = self.status.latest();
        if let Some(s) = &status {
            // Status first: fills read the mid from it.
            self.log.on_status(s, t);
            self.last_status = Some(*s);
        }
        while let Some(e) = self.exec.pop() {
            self.log.on_exec(&e, t);
            self.last_exec = e;
        }
        let info = self.script.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.log.on_script(&info, t);
        if let Some(tap) = &mut self.tap {
            tap(&mut self.log, self.last_status.as_ref(), &self.last_exec, t);
        }
        status.is_some()
    }

    pub fn script(&self) -> ScriptInfo {
        self.script.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::msg::Level;

    fn exec(fills: u64, position: i64, volume: i64) -> ExecStatus {
        ExecStatus { fills, position: Qty(position), volume, ..ExecStatus::default() }
    }

    fn status_at(mid_bid: i64) -> HotStatus {
        let mut s = HotStatus::default();
        s.bids[0] = Some(Level { price: Price(mid_bid), qty: Qty(SCALE) });
        s.asks[0] = Some(Level { price: Price(mid_bid + 1_000_000), qty: Qty(SCALE) });
        s
    }

    #[test]
    fn fills_get_their_side_from_the_position() {
        let mut log = EventLog::new();
        log.on_status(&status_at(60_000 * SCALE), 0.5);
        // Bought 0.001 at 60000: volume 60.
        log.on_exec(&exec(1, 100_000, 60 * SCALE), 1.0);
        // Sold 0.001 at 60000.01.
        log.on_exec(&exec(2, 0, 120 * SCALE + 1_000), 2.0);
        assert_eq!((log.buys, log.sells, log.first_fill_s), (1, 1, Some(1.0)));
        let fills: Vec<_> = log.recent().filter(|e| e.kind == EventKind::Fill).collect();
        assert_eq!(fills[0].text, "bought 0.001 @ 60000; position 0.001");
        assert_eq!(fills[1].side, Some("sell"));
        assert!(fills[1].text.starts_with("sold 0.001 @ 60000.01"), "{}", fills[1].text);
    }

    #[test]
    fn a_buy_and_a_sell_read_at_once_are_split_by_volume() {
        let mut log = EventLog::new();
        log.on_status(&status_at(60_000 * SCALE), 0.0);
        // One buy and one sell of 0.001 each: position unchanged, volume 120.
        log.on_exec(&exec(2, 0, 120 * SCALE), 1.0);
        assert_eq!((log.buys, log.sells), (1, 1));
        // Two buys of 0.001: position +0.002, volume 120.
        log.on_exec(&exec(4, 200_000, 240 * SCALE), 2.0);
        assert_eq!((log.buys, log.sells), (3, 1));
        assert!(log.recent().last().unwrap().text.starts_with("2 fills: bought 0.002"));
    }

    #[test]
    fn pulls_pauses_advice_and_reloads_are_logged_once_each() {
        let mut log = EventLog::new();
        let mut s = status_at(60_000 * SCALE);
        s.synced = true;
        s.update_id = 7;
        log.on_status(&s, 0.0);
        s.pulled_stale = 1;
        s.pulled = 1;
        log.on_status(&s, 1.0);
        log.on_status(&s, 1.5);
        s.paused = true;
        s.pulled = 2;
        log.on_status(&s, 2.0);
        s.pulled = 9;
        log.on_status(&s, 2.5);
        s.advice.received_ns = 5;
        log.on_status(&s, 3.0);
        log.on_script(&ScriptInfo { reloads: 1, last_event: Some("x.rhai reloaded".into()) }, 4.0);
        log.on_script(&ScriptInfo { reloads: 1, last_event: Some("x.rhai reloaded".into()) }, 5.0);
        let kinds: Vec<_> = log.recent().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EventKind::Feed, EventKind::Pull, EventKind::Operator, EventKind::Advice, EventKind::Reload],
            "{:?}",
            log.recent().map(Event::line).collect::<Vec<_>>()
        );
        assert!(log.to_jsonl().lines().count() == 5);
        // Pulls in a row are one line, counted.
        s.paused = false;
        log.on_status(&s, 6.0);
        for (i, t) in [(10, 6.5), (12, 7.0), (13, 8.0)] {
            s.pulled = i;
            log.on_status(&s, t);
        }
        let last = log.recent().last().unwrap();
        assert_eq!(last.text, "4 quotes pulled (strategy or guard: nothing safe to quote)");
        assert_eq!(log.recent().filter(|e| e.kind == EventKind::Pull).count(), 2);
    }
}
