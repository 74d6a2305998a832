//! Binance's payloads cut from the model's book: `bookTicker` frames,
//! `depthUpdate` events in the spot and USD-M layouts and REST snapshot bodies, with prices and
//! quantities written on the symbol's grid.

use super::*;

impl FlowModel {
    /// Sends a bookTicker if the top differs from the last one sent.
    pub(super) fn ticker_if_moved(&mut self, ms: i64, out: &mut Vec<SimFrame>) {
        let top = self.top_ticks();
        if top == self.last_top {
            return;
        }
        self.last_top = top;
        let (Some((bp, bq)), Some((ap, aq))) = top else {
            return;
        };
        let mut s = String::with_capacity(160);
        match self.cfg.market {
            SimMarket::Spot => {
                let _ = write!(s, "{{\"u\":{},\"s\":\"{}\",\"b\":\"", self.update_id, self.cfg.symbol);
            }
            SimMarket::Usdm => {
                let _ =
                    write!(s, "{{\"e\":\"bookTicker\",\"u\":{},\"s\":\"{}\",\"b\":\"", self.update_id, self.cfg.symbol);
            }
        }
        self.push_price(&mut s, bp);
        s.push_str("\",\"B\":\"");
        self.push_qty(&mut s, bq);
        s.push_str("\",\"a\":\"");
        self.push_price(&mut s, ap);
        s.push_str("\",\"A\":\"");
        self.push_qty(&mut s, aq);
        s.push('"');
        if self.cfg.market == SimMarket::Usdm {
            let _ = write!(s, ",\"T\":{ms},\"E\":{ms}");
        }
        s.push('}');
        out.push(SimFrame { kind: StreamKind::BookTicker, payload: s, update_id: self.update_id });
    }

    /// A `depthUpdate` event with the best `limit` levels of `bids`/`asks`
    /// (`ticks -> lots`). Spot lists each side best first, as spot does;
    /// USD-M lists both sides by ascending price, as futures does (see the
    /// captures in data/recordings).
    pub(super) fn depth_event(
        &self,
        (first, last, prev): (u64, u64, u64),
        at_ms: i64,
        bids: &BTreeMap<i64, i64>,
        asks: &BTreeMap<i64, i64>,
        limit: usize,
    ) -> String {
        let sym = &self.cfg.symbol;
        let mut s = String::with_capacity(128 + 48 * (bids.len() + asks.len()).min(limit.saturating_mul(2)));
        match self.cfg.market {
            SimMarket::Spot => {
                let _ = write!(
                    s,
                    "{{\"e\":\"depthUpdate\",\"E\":{at_ms},\"s\":\"{sym}\",\"U\":{first},\"u\":{last},\"b\":"
                );
                self.push_levels(&mut s, bids.iter().rev().take(limit).map(|(&p, &q)| (p, q)));
            }
            SimMarket::Usdm => {
                let t = self.last_change_ms;
                let _ = write!(
                    s,
                    "{{\"e\":\"depthUpdate\",\"E\":{at_ms},\"T\":{t},\"s\":\"{sym}\",\"U\":{first},\"u\":{last},\"pu\":{prev},\"b\":"
                );
                let mut top: Vec<(i64, i64)> = bids.iter().rev().take(limit).map(|(&p, &q)| (p, q)).collect();
                top.reverse();
                self.push_levels(&mut s, top.into_iter());
            }
        }
        s.push_str(",\"a\":");
        self.push_levels(&mut s, asks.iter().take(limit).map(|(&p, &q)| (p, q)));
        s.push('}');
        s
    }

    /// `{"lastUpdateId":..,["E":..,"T":..,]"bids":[..],"asks":[..]}` with
    /// levels best first. USD-M adds `E`/`T` except on the depth20 path,
    /// which uses [`Self::depth_event`] there.
    pub(super) fn snapshot_body(
        &self,
        id: u64,
        last_change_ms: i64,
        bids: impl Iterator<Item = (i64, i64)>,
        asks: impl Iterator<Item = (i64, i64)>,
        limit: usize,
        now_ms: i64,
    ) -> String {
        let mut s = String::with_capacity(64 + 64 * limit.min(self.cfg.levels));
        let _ = write!(s, "{{\"lastUpdateId\":{id}");
        if self.cfg.market == SimMarket::Usdm {
            let _ = write!(s, ",\"E\":{now_ms},\"T\":{}", last_change_ms.min(now_ms.max(0)));
        }
        s.push_str(",\"bids\":");
        self.push_levels(&mut s, bids.take(limit));
        s.push_str(",\"asks\":");
        self.push_levels(&mut s, asks.take(limit));
        s.push('}');
        s
    }

    /// `[["price","qty"],...]` from `(ticks, lots)`.
    pub(super) fn push_levels(&self, s: &mut String, levels: impl Iterator<Item = (i64, i64)>) {
        s.push('[');
        for (i, (ticks, lots)) in levels.enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str("[\"");
            self.push_price(s, ticks);
            s.push_str("\",\"");
            self.push_qty(s, lots);
            s.push_str("\"]");
        }
        s.push(']');
    }

    pub(super) fn push_price(&self, s: &mut String, ticks: i64) {
        push_decimal(s, ticks.saturating_mul(self.cfg.tick), self.price_decimals);
    }

    pub(super) fn push_qty(&self, s: &mut String, lots: i64) {
        push_decimal(s, lots.saturating_mul(self.cfg.step), self.qty_decimals);
    }
}

/// Decimals needed to print multiples of `unit` (1e-8 fixed-point) exactly.
pub(super) fn decimals_of(unit: i64) -> u32 {
    let mut d = 8;
    let mut u = unit;
    while d > 0 && u % 10 == 0 {
        u /= 10;
        d -= 1;
    }
    d
}

/// Appends `v` (1e-8 fixed-point, non-negative) with exactly `decimals` decimals.
pub(super) fn push_decimal(out: &mut String, v: i64, decimals: u32) {
    let v = v.max(0);
    let (int, frac) = (v / SCALE, v % SCALE);
    if decimals == 0 {
        let _ = write!(out, "{int}");
    } else {
        let frac = frac / 10i64.pow(8 - decimals.min(8));
        let _ = write!(out, "{int}.{frac:0width$}", width = decimals as usize);
    }
}
