//! `fills.csv`: one row per fill, with how its order was placed (queue
//! ahead when it went live, entry latency) and the position after it, so a
//! quant can study fills one by one (queue position against markout, say).

use std::fmt::Write;

use crate::backtest::outputs::utc_iso;
use crate::backtest::FillRecord;
use crate::exec::paper::QUEUE_UNKNOWN;
use crate::exec::{FeeAsset, Side};
use crate::hot::fixed::{Price, Qty};

/// The CSV header; every row has as many fields.
pub const HEADER: &str =
    "time_ns,time_utc,order_id,side,price,qty,fee,fee_asset,maker,queue_ahead,latency_ns,position_after,mid";

/// One fill as `fills.csv` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillRow {
    pub time_ns: i64,
    pub order_id: u64,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    /// Commission in `fee_asset` units (1e-8).
    pub fee: i64,
    pub fee_asset: FeeAsset,
    pub maker: bool,
    /// Visible quantity ahead of the order when it went live; `None` when
    /// unknown (no book seen at its price, or placement forgotten).
    pub queue_ahead: Option<Qty>,
    /// Order entry latency: live since - sent, ns.
    pub latency_ns: Option<i64>,
    pub position_after: Qty,
    /// The mid last seen before the fill.
    pub mid: Option<Price>,
}

impl FillRow {
    pub fn new(f: &FillRecord, mid: Option<Price>) -> Self {
        let fill = &f.fill;
        Self {
            time_ns: fill.time_ns,
            order_id: fill.order_id,
            side: fill.side,
            price: fill.price,
            qty: fill.qty,
            fee: fill.fee,
            fee_asset: fill.fee_asset,
            maker: fill.maker,
            queue_ahead: f.meta.map(|m| m.queue_ahead_at_arrival).filter(|q| *q != QUEUE_UNKNOWN),
            latency_ns: f.meta.map(|m| m.live_since_ns.saturating_sub(m.sent_ns)),
            position_after: f.position_after,
            mid,
        }
    }

    /// The CSV line, with its newline.
    pub fn csv(&self, out: &mut String) {
        let opt = |v: Option<String>| v.unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.time_ns,
            utc_iso(self.time_ns),
            self.order_id,
            side_name(self.side),
            self.price,
            self.qty,
            Price(self.fee),
            fee_asset_name(self.fee_asset),
            self.maker,
            opt(self.queue_ahead.map(|q| q.to_string())),
            opt(self.latency_ns.map(|l| l.to_string())),
            self.position_after,
            opt(self.mid.map(|m| m.to_string())),
        );
    }
}

pub fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn fee_asset_name(a: FeeAsset) -> &'static str {
    match a {
        FeeAsset::Quote => "quote",
        FeeAsset::Base => "base",
        FeeAsset::Bnb => "bnb",
        FeeAsset::Other => "other",
    }
}
