//! The position checked against the account: [`BalanceCheck`] compares the
//! base position the bot built from its own fills
//! ([`crate::exec::position::Position::qty`]) with what the exchange's base
//! balance says it must be, on every balance refresh (the user-data
//! stream's `outboundAccountPosition`, the REST `GET /api/v3/account`).
//!
//! Why: the design rule is that truth comes from the exchange. Fills the
//! bot missed, a commission counted in the wrong asset, or somebody else
//! trading or moving the asset on the same account all make the position
//! the strategy skews on and the limits count wrong, silently. Comparing
//! with the balance catches every one of them.
//!
//! What is compared (all base asset, 1e-8):
//!
//! ```text
//! account = (free + locked now) - (free + locked at start) + carried
//! drift   = position - account
//! ```
//!
//! `carried` is the position earlier runs left (replayed from the journal
//! when this run started, with any fill settled at start): it is inside
//! `position`, and inside the balance at start, so adding it back compares
//! like with like. The baseline must be taken with nothing in flight: the
//! balance read and the position it is paired with at the same moment,
//! before this run quotes. `locked` counts because a resting sell locks
//! base that the account still holds. Deposits, withdrawals and transfers
//! (the stream's `balanceUpdate`) are not trading: they move the baseline
//! ([`BalanceCheck::on_external_change`]), not the drift.
//!
//! Verdicts ([`Verdict`]): `|drift| <= [live] balance_tolerance` is
//! [`Verdict::Ok`]; beyond it, [`Verdict::Drift`] (logged and counted);
//! beyond `[live] balance_kill_tolerance` on [`KILL_CONFIRMATIONS`]
//! observations in a row, [`Verdict::Kill`], which trips the kill switch
//! with [`KillReason::BalanceDrift`]. One observation alone never kills:
//! a balance update can arrive a moment before the execution report of the
//! fill that caused it (they are separate user-data events, and a REST
//! account read can fall between them), and the next observation, made
//! after that fill is applied, settles it.

use crate::exec::risk::{Balance, KillReason};
use crate::hot::fixed::Qty;

/// Consecutive observations beyond the kill tolerance that trip the kill
/// switch (see the module docs for why not one).
pub const KILL_CONFIRMATIONS: u32 = 2;

/// Where a balance came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BalanceSource {
    /// The account read when the run started (the baseline).
    Start,
    /// `GET /api/v3/account` (reconciliation).
    Rest,
    /// The user-data stream's `outboundAccountPosition`.
    Stream,
}

impl BalanceSource {
    /// The journal's spelling: `start`, `rest`, `stream`.
    pub fn as_str(self) -> &'static str {
        match self {
            BalanceSource::Start => "start",
            BalanceSource::Rest => "rest",
            BalanceSource::Stream => "stream",
        }
    }

    pub fn parse(s: &str) -> Option<BalanceSource> {
        Some(match s {
            "start" => BalanceSource::Start,
            "rest" => BalanceSource::Rest,
            "stream" => BalanceSource::Stream,
            _ => return None,
        })
    }
}

/// How far the position may drift from the balance, base asset, 1e-8.
/// `[live] balance_tolerance` and `[live] balance_kill_tolerance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceTolerance {
    /// Beyond this, a drift is logged and counted.
    pub warn: Qty,
    /// Beyond this (on [`KILL_CONFIRMATIONS`] observations in a row),
    /// trading stops. At least `warn`.
    pub kill: Qty,
}

/// What one comparison found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Within `balance_tolerance`.
    Ok,
    /// Beyond `balance_tolerance` (or beyond the kill tolerance, not yet
    /// confirmed): log it.
    Drift,
    /// Beyond `balance_kill_tolerance`, confirmed: trip the kill switch.
    Kill,
}

impl Verdict {
    /// The journal's spelling: `ok`, `drift`, `kill`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Drift => "drift",
            Verdict::Kill => "kill",
        }
    }
}

/// One comparison of the position with the balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// The base asset compared.
    pub asset: String,
    pub source: BalanceSource,
    /// Wall clock, ns.
    pub time_ns: i64,
    /// The balance now (free + locked is what counts).
    pub balance: Balance,
    /// free + locked when the run started.
    pub start_balance: i64,
    /// The position earlier runs left (from the journal).
    pub carried: Qty,
    /// The position from fills (earlier runs' included).
    pub position: Qty,
    /// The position the balance implies: balance now - at start + carried.
    pub account: Qty,
    /// `position - account`.
    pub drift: i64,
    pub verdict: Verdict,
}

impl Reconciliation {
    /// [`KillReason::BalanceDrift`] when the verdict is [`Verdict::Kill`].
    pub fn kill_reason(&self) -> Option<KillReason> {
        (self.verdict == Verdict::Kill)
            .then_some(KillReason::BalanceDrift { position: self.position, account: self.account })
    }
}

/// Counters of a [`BalanceCheck`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BalanceCounters {
    /// Comparisons made.
    pub checks: u64,
    /// Comparisons beyond `balance_tolerance` (kills included).
    pub drifts: u64,
    /// Comparisons that said [`Verdict::Kill`].
    pub kills: u64,
    /// Largest |drift| seen, base asset.
    pub max_abs_drift: i64,
}

/// Compares the position with the account's base balance. See the module
/// docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceCheck {
    asset: String,
    tolerance: BalanceTolerance,
    /// free + locked at start.
    start: i64,
    carried: Qty,
    /// Observations beyond the kill tolerance in a row.
    over_kill: u32,
    counters: BalanceCounters,
    last: Option<Reconciliation>,
}

impl BalanceCheck {
    /// A check of `asset` (the symbol's base asset) against `start`, the
    /// account's balance of it when the run started, read after `carried`
    /// (the position replayed from the journal) and before any fill of
    /// this run.
    pub fn new(asset: &str, tolerance: BalanceTolerance, start: Balance, carried: Qty) -> Self {
        Self {
            asset: asset.to_string(),
            tolerance: BalanceTolerance { warn: tolerance.warn, kill: Qty(tolerance.kill.0.max(tolerance.warn.0)) },
            start: start.free.saturating_add(start.locked),
            carried,
            over_kill: 0,
            counters: BalanceCounters::default(),
            last: None,
        }
    }

    pub fn asset(&self) -> &str {
        &self.asset
    }

    pub fn tolerance(&self) -> BalanceTolerance {
        self.tolerance
    }

    /// free + locked at start.
    pub fn start_balance(&self) -> i64 {
        self.start
    }

    pub fn carried(&self) -> Qty {
        self.carried
    }

    /// A deposit, withdrawal or transfer of the base asset (`balanceUpdate`'s
    /// delta, signed): the balance moves without a fill, so the baseline
    /// moves with it.
    pub fn on_external_change(&mut self, delta: i64) {
        self.start = self.start.saturating_add(delta);
    }

    /// The position `balance` implies: balance - start + carried.
    pub fn account_position(&self, balance: Balance) -> Qty {
        Qty(balance.free.saturating_add(balance.locked).saturating_sub(self.start).saturating_add(self.carried.0))
    }

    /// Compares `position` (from fills) with `balance` (the base asset's,
    /// fresh from `source`) and counts the outcome.
    pub fn observe(&mut self, position: Qty, balance: Balance, source: BalanceSource, time_ns: i64) -> Reconciliation {
        let account = self.account_position(balance);
        let drift = position.0.saturating_sub(account.0);
        let abs = drift.unsigned_abs();
        let verdict = if abs <= self.tolerance.kill.0.unsigned_abs() {
            self.over_kill = 0;
            if abs <= self.tolerance.warn.0.unsigned_abs() {
                Verdict::Ok
            } else {
                Verdict::Drift
            }
        } else {
            self.over_kill = self.over_kill.saturating_add(1);
            if self.over_kill >= KILL_CONFIRMATIONS {
                Verdict::Kill
            } else {
                Verdict::Drift
            }
        };
        let c = &mut self.counters;
        c.checks += 1;
        c.drifts += (verdict != Verdict::Ok) as u64;
        c.kills += (verdict == Verdict::Kill) as u64;
        c.max_abs_drift = c.max_abs_drift.max(drift.saturating_abs());
        let r = Reconciliation {
            asset: self.asset.clone(),
            source,
            time_ns,
            balance,
            start_balance: self.start,
            carried: self.carried,
            position,
            account,
            drift,
            verdict,
        };
        self.last = Some(r.clone());
        r
    }

    pub fn counters(&self) -> BalanceCounters {
        self.counters
    }

    /// The latest comparison.
    pub fn last(&self) -> Option<&Reconciliation> {
        self.last.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::fixed::SCALE;

    fn tol() -> BalanceTolerance {
        BalanceTolerance { warn: Qty(SCALE / 1000), kill: Qty(SCALE / 100) }
    }

    fn bal(free: i64, locked: i64) -> Balance {
        Balance { free, locked }
    }

    #[test]
    fn balance_change_plus_carried_is_the_account_position() {
        // Earlier runs left 0.5 long; the account held 2 at start.
        let mut c = BalanceCheck::new("BTC", tol(), bal(2 * SCALE, 0), Qty(SCALE / 2));
        // This run bought 0.999 net of fee: 1 free + 1.999 locked in a sell.
        let r = c.observe(Qty(SCALE / 2 + 99_900_000), bal(SCALE, 199_900_000), BalanceSource::Stream, 7);
        assert_eq!(r.account, Qty(SCALE / 2 + 99_900_000));
        assert_eq!((r.drift, r.verdict), (0, Verdict::Ok));
        assert_eq!(r.kill_reason(), None);
        assert_eq!(c.counters().checks, 1);
    }

    /// The bug the position fix removes: counting a buy's full quantity
    /// when the fee was taken in base drifts by the fee.
    #[test]
    fn a_base_fee_counted_as_inventory_is_a_drift() {
        let mut c = BalanceCheck::new("BTC", tol(), bal(0, 0), Qty::ZERO);
        // Bought 10 x 1 BTC, paid 0.001 BTC each: the account has 9.99.
        let r = c.observe(Qty(10 * SCALE), bal(999 * SCALE / 100, 0), BalanceSource::Rest, 1);
        assert_eq!(r.drift, SCALE / 100);
        assert_eq!(r.verdict, Verdict::Drift);
        assert_eq!(c.counters().drifts, 1);
    }

    #[test]
    fn kill_needs_two_observations_in_a_row() {
        let mut c = BalanceCheck::new("BTC", tol(), bal(SCALE, 0), Qty::ZERO);
        let far = bal(SCALE - SCALE / 10, 0);
        // One over the kill tolerance: a drift, not yet a kill.
        assert_eq!(c.observe(Qty::ZERO, far, BalanceSource::Stream, 1).verdict, Verdict::Drift);
        // Back within: the streak resets.
        assert_eq!(c.observe(Qty::ZERO, bal(SCALE, 0), BalanceSource::Stream, 2).verdict, Verdict::Ok);
        assert_eq!(c.observe(Qty::ZERO, far, BalanceSource::Stream, 3).verdict, Verdict::Drift);
        let r = c.observe(Qty::ZERO, far, BalanceSource::Rest, 4);
        assert_eq!(r.verdict, Verdict::Kill);
        let reason = r.kill_reason().unwrap();
        assert_eq!(reason, KillReason::BalanceDrift { position: Qty::ZERO, account: Qty(-SCALE / 10) });
        let text = reason.to_string();
        assert!(text.contains("0 base") && text.contains("-0.1") && text.contains("myTrades"), "{text}");
        let mut k = crate::exec::risk::KillSwitch::new(crate::exec::risk::KillConfig {
            max_rejects: 0,
            reject_window_ns: 1,
            stale_feed_ns: 1,
            unsynced_ns: 1,
        });
        assert_eq!(k.on_balance(&r, 5), Some(reason));
        let counters = c.counters();
        assert_eq!((counters.checks, counters.drifts, counters.kills), (4, 3, 1));
        assert_eq!(counters.max_abs_drift, SCALE / 10);
        assert_eq!(c.last().unwrap().time_ns, 4);
    }

    #[test]
    fn a_transfer_moves_the_baseline_not_the_drift() {
        let mut c = BalanceCheck::new("BTC", tol(), bal(SCALE, 0), Qty::ZERO);
        // The operator deposits 2 BTC: balanceUpdate, then the new balance.
        c.on_external_change(2 * SCALE);
        let r = c.observe(Qty::ZERO, bal(3 * SCALE, 0), BalanceSource::Stream, 1);
        assert_eq!((r.drift, r.verdict, r.start_balance), (0, Verdict::Ok, 3 * SCALE));
    }

    #[test]
    fn sources_round_trip() {
        for s in [BalanceSource::Start, BalanceSource::Rest, BalanceSource::Stream] {
            assert_eq!(BalanceSource::parse(s.as_str()), Some(s));
        }
        assert_eq!(BalanceSource::parse("x"), None);
    }
}
