//! The position against the account's balances: truth comes from the
//! exchange. Every balance the exchange reports (the account over REST at
//! start and at each reconciliation, `outboundAccountPosition` on the
//! stream) is journaled, and the base asset's is compared with the
//! position by the [`BalanceCheck`]: a drift beyond `[live]
//! balance_tolerance` is logged and counted, one beyond
//! `balance_kill_tolerance` (confirmed) trips the kill switch. Binance
//! charges a buy's commission in the base asset (commission_faq.md), so
//! the position is base received net of base commission, and equals the
//! change in the base balance when nothing else trades the account.

use crate::exec::inventory::{BalanceCheck, BalanceSource, Verdict};
use crate::exec::journal::BalanceSnapshot;
use crate::exec::position::{BnbPrice, BnbPriceSource};
use crate::exec::risk::Balance;
use crate::hot::fixed::Qty;

use super::{wall_ns, LiveExchange, StopReason};

impl LiveExchange {
    /// Starts the comparison from the balance at start (after fills that
    /// earlier runs left were recovered), and values BNB commissions at
    /// `[live] bnb_price` until a BNB mid is known.
    pub(super) fn start_balance_check(&mut self, base: Balance) {
        if let Some(price) = self.cfg.bnb_price {
            self.position.set_bnb_price(Some(BnbPrice { price, source: BnbPriceSource::Config }));
        }
        if self.cfg.dry_run {
            return;
        }
        let check = BalanceCheck::new(&self.rules.base_asset, self.cfg.balance_tolerance, base, self.position.qty());
        self.balance_check = Some(check);
        self.journal_balance(&self.rules.base_asset.clone(), base, BalanceSource::Start);
    }

    /// A balance the exchange reported: kept for the pre-trade checks,
    /// journaled, and for the base asset compared with the position.
    pub(super) fn on_balance(&mut self, asset: &str, balance: Balance, source: BalanceSource) {
        self.risk.set_balance(asset, balance);
        if asset != self.rules.base_asset && asset != self.rules.quote_asset {
            return;
        }
        self.journal_balance(asset, balance, source);
        if asset != self.rules.base_asset {
            return;
        }
        // Other symbols of the account trading this asset move its balance
        // too: what their fills moved it, as of this balance, counts as if
        // it were this symbol's ([`super::hub`]).
        let others = self.gateway.others_flow(asset);
        let Some(check) = self.balance_check.as_mut() else { return };
        let now = wall_ns();
        let r = check.observe(Qty(self.position.qty().0.saturating_add(others)), balance, source, now);
        self.stats.balance_checks += 1;
        if let Err(e) = self.journal.record_reconciliation(self.run, self.symbol, &r) {
            self.stats.last_error = Some(e.to_string());
        }
        if r.verdict != Verdict::Ok {
            self.stats.balance_drifts += 1;
            tracing::warn!(
                position = %self.position.qty(),
                account = %r.account,
                drift = %crate::hot::fixed::Qty(r.drift),
                verdict = r.verdict.as_str(),
                source = source.as_str(),
                "live: the position and the {} balance disagree beyond [live] balance_tolerance",
                self.rules.base_asset
            );
            self.stats.last_error = Some(format!(
                "position {} {} but the {} balance implies {} (drift {}, {}): other trading or transfers on the \
                 account, or fills missing from the journal (compare with myTrades)",
                self.position.qty(),
                self.rules.base_asset,
                source.as_str(),
                r.account,
                crate::hot::fixed::Qty(r.drift),
                r.verdict.as_str()
            ));
        }
        if let Some(reason) = self.kill.on_balance(&r, now) {
            self.shutdown(StopReason::Kill(reason));
        }
    }

    /// A deposit, withdrawal or transfer (`balanceUpdate`): not trading,
    /// so it moves the comparison's baseline.
    pub(super) fn on_transfer(&mut self, asset: &str, delta: i64) {
        let b = self.risk.balances().get(asset);
        self.risk.set_balance(asset, Balance { free: b.free.saturating_add(delta), ..b });
        if asset == self.rules.base_asset {
            if let Some(check) = self.balance_check.as_mut() {
                check.on_external_change(delta);
            }
        }
    }

    fn journal_balance(&mut self, asset: &str, balance: Balance, source: BalanceSource) {
        if self.cfg.dry_run {
            return;
        }
        let snap = BalanceSnapshot { run: self.run, time_ns: wall_ns(), asset: asset.to_string(), balance, source };
        if let Err(e) = self.journal.record_balance(snap) {
            self.stats.last_error = Some(e.to_string());
        }
    }
}
