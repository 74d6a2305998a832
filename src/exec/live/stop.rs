//! Stopping: nothing of this account may keep resting on the symbol, and
//! the journal must agree with the exchange afterwards.
//!
//! In order: answers already in flight are taken (bounded by the request
//! timeout); cancel-all, retried through a 429 back-off and waiting out a
//! ban that lifts within `ban_wait_max`; every order of unknown fate is
//! waited out to its deadline (and cancelled if it turns up); the open
//! orders are checked once more; fills of every order that ended are
//! recovered with `myTrades`; the stream's last fills are journaled, the
//! run closed and the journal flushed.

use std::time::{Duration, Instant};

use crate::exec::binance::errors::Action;
use crate::exec::binance::gateway::{Answer, Call, GatewayEvent, Reply, Target};
use crate::exec::userdata::{ExecType, UserEvent};

use super::side::SideState;
use super::{wall_ns, LiveExchange, Purpose, StopReason};

/// Cancel-all is tried this many times (besides waiting out back-offs).
const CANCEL_ALL_TRIES: u32 = 5;

impl LiveExchange {
    pub(super) fn shutdown(&mut self, reason: StopReason) {
        if self.stopped.is_some() {
            return;
        }
        self.stopped = Some(reason);
        if self.cfg.dry_run {
            // Nothing of ours rests, and what others placed is theirs.
            self.slots.iter_mut().for_each(|s| *s = SideState::Idle);
        } else {
            self.cancel_everything(reason);
        }
        // Fills already delivered are journaled (the journal drops those
        // recovered above); then the gateway stops (calls still in flight
        // are answered) and what it handed out last is taken too.
        self.drain_fills();
        self.gateway.stop();
        self.drain_fills();
        if let Some(mut s) = self.stream.take() {
            s.stop();
        }
        if let Some(mid) = self.last_mid {
            self.snapshot_pnl(mid, wall_ns());
        }
        let _ = self.journal.end_run(self.run, &reason.to_string(), wall_ns());
        if let Err(e) = self.journal.flush() {
            self.stats.last_error = Some(e.to_string());
        }
    }

    /// The stream's last fills (nothing else is acted on after the stop).
    fn drain_fills(&mut self) {
        let mut last = Vec::new();
        while let Some(ev) = self.gateway.poll() {
            if let GatewayEvent::User(UserEvent::Execution(r)) = ev {
                last.push(r);
            }
        }
        while let Some(ev) = self.stream.as_mut().and_then(|s| s.poll()) {
            if let UserEvent::Execution(r) = ev {
                last.push(r);
            }
        }
        for r in last {
            if r.exec_type == ExecType::Trade && r.symbol == self.symbol && r.last_qty.0 > 0 {
                self.apply_fill(self.stream_fill(&r));
            }
        }
    }

    /// How long a request may take before its fate is unknown.
    fn request_limit(&self) -> Duration {
        self.cfg.timeout + Duration::from_secs(2)
    }

    fn cancel_everything(&mut self, reason: StopReason) {
        // 1. What is in flight is answered first: an order placed just now
        //    must be known before cancel-all, or it would be missed.
        let end = Instant::now() + self.request_limit();
        self.pump_until(end, |ex| ex.slots.iter().all(|s| s.accepts_decision()));
        // 2. Cancel-all.
        let canceled_all = self.cancel_all(reason);

        // 3. Orders of unknown fate are waited out to their deadlines; any
        //    that turns up (or any side still live) is cancelled.
        let latest = self
            .slots
            .iter()
            .filter_map(|s| match s {
                SideState::Unknown(u) => u.deadline,
                _ => None,
            })
            .max()
            .unwrap_or_else(Instant::now);
        let end = latest.max(Instant::now()) + self.request_limit();
        self.pump_until(end, |ex| {
            for s in 0..ex.slots.len() {
                if matches!(ex.slots[s], SideState::Live(_)) {
                    ex.send_cancel(s, "stop");
                }
                ex.fate_tick(s);
                ex.cancel_retry_tick(s);
            }
            ex.slots.iter().all(|s| matches!(s, SideState::Idle))
        });
        // 4. The open orders once more.
        if canceled_all {
            if let Some(Ok(Reply::Orders(open))) = self.call_wait(Call::OpenOrders).map(|a| a.result) {
                for o in open {
                    let id = o.placed_client_order_id().to_string();
                    self.stats.orphans_canceled += 1;
                    if let Some(Ok(Reply::Order(c))) =
                        self.call_wait(Call::Cancel(Target::OrderId(o.order_id))).map(|a| a.result)
                    {
                        self.record_canceled(
                            &id,
                            &c,
                            format!("cancel at stop (still open after cancel-all): {reason}"),
                        );
                        if c.executed_qty.0 > 0 {
                            self.recover_fills(c.order_id, &id);
                        }
                    }
                }
            }
        }

        // 5. Fills being recovered are waited for.
        let end = Instant::now() + self.request_limit();
        self.pump_until(end, |ex| !ex.pending.values().any(|p| matches!(p, Purpose::Trades { .. })));

        // Could not cancel: say how many of ours may still rest. The next
        // start reconciles them (orphans) before quoting.
        self.stats.left_open = self.slots.iter().filter(|s| s.shown().is_some()).count() as u64;
        if !canceled_all && self.stats.left_open == 0 {
            self.stats.left_open = self.slots.iter().flat_map(|s| s.orders()).count() as u64;
        }
    }

    /// Cancel-all with retries; true when the exchange confirmed it.
    fn cancel_all(&mut self, reason: StopReason) -> bool {
        let prefix = format!("{}-", self.ids.prefix());
        let mut waited = false;
        let mut attempt = 0;
        loop {
            let Some(a) = self.call_wait(Call::CancelAll) else {
                attempt += 1;
                if attempt >= CANCEL_ALL_TRIES {
                    return false;
                }
                continue;
            };
            match a.result {
                Ok(Reply::Orders(list)) => {
                    for c in list {
                        let id = c.placed_client_order_id().to_string();
                        let mut seen = None;
                        if let Some(s) = self.slot_tracking(&id) {
                            if let SideState::Live(o) = &self.slots[s] {
                                seen = Some(o.filled);
                                self.slots[s] = SideState::Idle;
                            }
                        }
                        self.record_canceled(&id, &c, format!("cancel all: {reason}"));
                        let ours = seen.is_some() || id.starts_with(&prefix);
                        if ours && c.executed_qty > seen.unwrap_or_default() {
                            self.recover_fills(c.order_id, &id);
                        }
                    }
                    // Live orders the cancel did not list were no longer
                    // open (filled, or gone): settle them by lookup.
                    for s in 0..self.slots.len() {
                        if matches!(self.slots[s], SideState::Live(_)) {
                            if let SideState::Live(o) = std::mem::take(&mut self.slots[s]) {
                                self.settle(s, o);
                            }
                        }
                    }
                    return true;
                }
                Ok(_) => return true,
                Err(e) => {
                    self.note_error(&e);
                    match e.action() {
                        Action::StopTrading { retry_after: Some(d) } if !waited && d <= self.cfg.ban_wait_max => {
                            // The ban lifts soon enough: wait it out rather
                            // than leave orders resting unattended.
                            waited = true;
                            self.stats.ban_waits += 1;
                            self.sleep_pumping(d + Duration::from_millis(200));
                        }
                        Action::StopTrading { .. } | Action::FixCredentials => return false,
                        _ if attempt >= CANCEL_ALL_TRIES => return false,
                        // A 429 back-off: the cancel waits its turn (a
                        // minute at most) rather than giving up.
                        Action::Wait(d) if d <= Duration::from_secs(60) => {
                            attempt += 1;
                            self.sleep_pumping(d + Duration::from_millis(50));
                        }
                        _ => {
                            attempt += 1;
                            self.sleep_pumping(Duration::from_millis(100 << attempt));
                        }
                    }
                }
            }
        }
    }

    /// Sends `call` and waits for its answer (up to the request limit),
    /// handling every other answer and stream event meanwhile.
    fn call_wait(&mut self, call: Call) -> Option<Answer> {
        let id = self.gateway.submit(call);
        let end = Instant::now() + self.request_limit();
        while Instant::now() < end {
            while let Some(ev) = self.gateway.poll() {
                match ev {
                    GatewayEvent::Answer(a) if a.id == id => {
                        self.time_answer(&a);
                        return Some(a);
                    }
                    other => self.on_gateway_event(other),
                }
            }
            self.drain_stream();
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }

    /// Handles answers and events until `done` says so or `end` passes.
    fn pump_until(&mut self, end: Instant, mut done: impl FnMut(&mut Self) -> bool) {
        loop {
            self.drain_gateway();
            self.drain_stream();
            if done(self) || Instant::now() >= end {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn sleep_pumping(&mut self, d: Duration) {
        let end = Instant::now() + d;
        self.pump_until(end, |_| false);
    }
}
