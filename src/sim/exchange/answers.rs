//! The JSON the exchange answers with and pushes, shaped as the docs show
//! it: order answers (rest-api.md §New order, §Cancel order, §Query order),
//! account information, `myTrades`, and the user-data events
//! (user-data-stream.md §Order Update, §Account Update) with the
//! conditional STP fields (`v`, `A`, `B`, `u`, `U`, `Cs`, `pl`, `pL`, `pY`).

use std::fmt::Write as _;
use std::sync::mpsc::TrySendError;

use crate::exec::binance::model::OrderStatus;
use crate::exec::Side;
use crate::hot::fixed::{notional, SCALE};
use crate::sim::exchange::wire::{fmt8, json_str};
use crate::sim::exchange::{Account, SimFill, SimOrder};

/// Sends an event to every subscriber of the account, dropping the gone.
pub(crate) fn push(a: &mut Account, event: String) {
    a.subs.retain(|s| match s.try_send(event.clone()) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
    });
}

/// Sends `outboundAccountPosition` for `assets`.
pub(crate) fn position(a: &mut Account, assets: &[&str], now: i64) {
    let mut b = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for asset in assets {
        if seen.contains(asset) {
            continue;
        }
        seen.push(asset);
        let (f, l) = a.balances.get(*asset).copied().unwrap_or((0, 0));
        if !b.is_empty() {
            b.push(',');
        }
        let _ = write!(b, "{{\"a\":\"{asset}\",\"f\":\"{}\",\"l\":\"{}\"}}", fmt8(f), fmt8(l));
    }
    push(a, format!("{{\"e\":\"outboundAccountPosition\",\"E\":{now},\"u\":{now},\"B\":[{b}]}}"));
}

/// A prevented match, for the executionReport's STP fields.
#[derive(Debug, Clone)]
pub(crate) struct Prevention {
    pub match_id: u64,
    /// `B`: quantity expired by this event.
    pub last_qty: i64,
    pub counter_order_id: u64,
    pub price: i64,
}

/// What an executionReport reports besides the order.
pub(crate) struct Exec {
    pub kind: &'static str,
    pub id: u64,
    pub time: i64,
    pub fill: Option<SimFill>,
    /// The cancel request's client id (`c`); the order's goes in `C`.
    pub cancel_id: Option<String>,
    pub prevention: Option<Prevention>,
}

impl Exec {
    pub fn new(kind: &'static str, id: u64, time: i64) -> Self {
        Self { kind, id, time, fill: None, cancel_id: None, prevention: None }
    }
}

pub(crate) fn execution_report(o: &SimOrder, ex: &Exec) -> String {
    let (c, orig) = match &ex.cancel_id {
        Some(cid) => (cid.as_str(), o.client_order_id.as_str()),
        None => (o.client_order_id.as_str(), ""),
    };
    let (l, lp, n, na, t, y, maker) = match &ex.fill {
        Some(f) => (
            f.qty.0,
            f.price.0,
            fmt8(f.commission),
            json_str(&f.commission_asset),
            f.trade_id as i64,
            notional(f.price.0, f.qty.0),
            f.is_maker,
        ),
        None => (0, 0, "0".into(), "null".into(), -1, 0, false),
    };
    let mut stp = String::new();
    if let Some(p) = &ex.prevention {
        let _ = write!(
            stp,
            ",\"v\":{},\"A\":\"{}\",\"B\":\"{}\",\"u\":-1,\"U\":{},\"Cs\":\"{}\",\"pl\":\"{}\",\"pL\":\"{}\",\"pY\":\"{}\"",
            p.match_id,
            fmt8(o.prevented_qty.0),
            fmt8(p.last_qty),
            p.counter_order_id,
            o.symbol,
            fmt8(p.last_qty),
            fmt8(p.price),
            fmt8(notional(p.price, p.last_qty))
        );
    }
    // `W` "is only visible if the order has been placed on the book".
    let working = if o.order_type == "LIMIT_MAKER" { format!(",\"W\":{}", o.time_ms) } else { String::new() };
    format!(
        concat!(
            "{{\"e\":\"executionReport\",\"E\":{E},\"s\":\"{s}\",\"c\":{c},\"S\":\"{S}\",\"o\":\"{o}\",",
            "\"f\":\"{f}\",\"q\":\"{q}\",\"p\":\"{p}\",\"P\":\"0.00000000\",\"F\":\"0.00000000\",\"g\":-1,",
            "\"C\":{C},\"x\":\"{x}\",\"X\":\"{X}\",\"r\":\"NONE\",\"i\":{i},\"l\":\"{l}\",\"z\":\"{z}\",",
            "\"L\":\"{L}\",\"n\":\"{n}\",\"N\":{N},\"T\":{T},\"t\":{t}{stp},\"I\":{I},\"w\":{w},\"m\":{m},",
            "\"M\":false,\"O\":{O},\"Z\":\"{Z}\",\"Y\":\"{Y}\",\"Q\":\"0.00000000\"{W},\"V\":\"{V}\"}}"
        ),
        E = ex.time,
        s = o.symbol,
        c = json_str(c),
        S = side_name(o.side),
        o = o.order_type,
        f = o.time_in_force,
        q = fmt8(o.orig_qty.0),
        p = fmt8(o.price.0),
        C = json_str(orig),
        x = ex.kind,
        X = status_name(&o.status),
        i = o.order_id,
        l = fmt8(l),
        z = fmt8(o.executed_qty.0),
        L = fmt8(lp),
        n = n,
        N = na,
        T = ex.time,
        t = t,
        stp = stp,
        I = ex.id,
        w = o.status.is_open() && o.order_type == "LIMIT_MAKER",
        m = maker,
        O = o.time_ms,
        Z = fmt8(o.cum_quote),
        Y = fmt8(y),
        W = working,
        V = o.stp_mode,
    )
}

pub(crate) fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

pub(crate) fn status_name(s: &OrderStatus) -> &str {
    match s {
        OrderStatus::New => "NEW",
        OrderStatus::PendingNew => "PENDING_NEW",
        OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
        OrderStatus::Filled => "FILLED",
        OrderStatus::Canceled => "CANCELED",
        OrderStatus::PendingCancel => "PENDING_CANCEL",
        OrderStatus::Rejected => "REJECTED",
        OrderStatus::Expired => "EXPIRED",
        OrderStatus::ExpiredInMatch => "EXPIRED_IN_MATCH",
        OrderStatus::Other(o) => o,
    }
}

/// The fields every order answer shares after the ids.
fn order_core(o: &SimOrder) -> String {
    format!(
        concat!(
            "\"price\":\"{}\",\"origQty\":\"{}\",\"executedQty\":\"{}\",\"origQuoteOrderQty\":\"0.00000000\",",
            "\"cummulativeQuoteQty\":\"{}\",\"status\":\"{}\",\"timeInForce\":\"{}\",\"type\":\"{}\",",
            "\"side\":\"{}\""
        ),
        fmt8(o.price.0),
        fmt8(o.orig_qty.0),
        fmt8(o.executed_qty.0),
        fmt8(o.cum_quote),
        status_name(&o.status),
        o.time_in_force,
        o.order_type,
        side_name(o.side)
    )
}

/// `preventedMatchId`/`preventedQuantity` (stp_faq.md: on orders that STP
/// touched).
fn prevented(o: &SimOrder) -> String {
    match o.prevented_match_id {
        Some(id) => format!(",\"preventedMatchId\":{id},\"preventedQuantity\":\"{}\"", fmt8(o.prevented_qty.0)),
        None => String::new(),
    }
}

/// How much a new-order answer says (`newOrderRespType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespType {
    Ack,
    Result,
    Full,
}

/// `POST /api/v3/order` / `order.place` answer in the asked-for type.
pub(crate) fn order_json(o: &SimOrder, resp: RespType, now: i64) -> String {
    let head = format!(
        "{{\"symbol\":\"{}\",\"orderId\":{},\"orderListId\":-1,\"clientOrderId\":{},\"transactTime\":{now}",
        o.symbol,
        o.order_id,
        json_str(&o.client_order_id)
    );
    match resp {
        RespType::Ack => format!("{head}}}"),
        RespType::Result => {
            format!("{head},{},\"workingTime\":{now},\"selfTradePreventionMode\":\"{}\"}}", order_core(o), o.stp_mode)
        }
        // A post-only order never fills on arrival, so FULL has no fills.
        RespType::Full => format!(
            "{head},{},\"workingTime\":{now},\"fills\":[],\"selfTradePreventionMode\":\"{}\"}}",
            order_core(o),
            o.stp_mode
        ),
    }
}

pub(crate) fn cancel_json(o: &SimOrder, cancel_id: &str, now: i64) -> String {
    format!(
        "{{\"symbol\":\"{}\",\"origClientOrderId\":{},\"orderId\":{},\"orderListId\":-1,\"clientOrderId\":{},\"transactTime\":{now},{},\"selfTradePreventionMode\":\"{}\"}}",
        o.symbol,
        json_str(&o.client_order_id),
        o.order_id,
        json_str(cancel_id),
        order_core(o),
        o.stp_mode
    )
}

pub(crate) fn query_json(o: &SimOrder) -> String {
    format!(
        concat!(
            "{{\"symbol\":\"{}\",\"orderId\":{},\"orderListId\":-1,\"clientOrderId\":{},{},",
            "\"stopPrice\":\"0.00000000\",\"icebergQty\":\"0.00000000\",\"time\":{},\"updateTime\":{},",
            "\"isWorking\":true,\"workingTime\":{},\"selfTradePreventionMode\":\"{}\"{}}}"
        ),
        o.symbol,
        o.order_id,
        json_str(&o.client_order_id),
        order_core(o),
        o.time_ms,
        o.update_ms,
        o.time_ms,
        o.stp_mode,
        prevented(o)
    )
}

pub(crate) fn account_json(a: &Account, omit_zero: bool, now: i64) -> String {
    let rate = fmt8(a.cfg.commission);
    let bps = a.cfg.commission / (SCALE / 10_000);
    let balances: Vec<String> = a
        .balances
        .iter()
        .filter(|(_, &(f, l))| !omit_zero || f != 0 || l != 0)
        .map(|(k, &(f, l))| format!("{{\"asset\":\"{k}\",\"free\":\"{}\",\"locked\":\"{}\"}}", fmt8(f), fmt8(l)))
        .collect();
    format!(
        concat!(
            "{{\"makerCommission\":{bps},\"takerCommission\":{bps},\"buyerCommission\":0,\"sellerCommission\":0,",
            "\"commissionRates\":{{\"maker\":\"{rate}\",\"taker\":\"{rate}\",\"buyer\":\"0.00000000\",",
            "\"seller\":\"0.00000000\"}},\"canTrade\":true,\"canWithdraw\":false,\"canDeposit\":false,",
            "\"brokered\":false,\"requireSelfTradePrevention\":false,\"preventSor\":false,\"updateTime\":{now},",
            "\"accountType\":\"SPOT\",\"balances\":[{b}],\"permissions\":[\"SPOT\"],\"uid\":1}}"
        ),
        bps = bps,
        rate = rate,
        now = now,
        b = balances.join(",")
    )
}

/// One fill as `GET /api/v3/myTrades` lists it.
pub(crate) fn my_trade_json(f: &SimFill) -> String {
    format!(
        "{{\"symbol\":{},\"id\":{},\"orderId\":{},\"orderListId\":-1,\"price\":\"{}\",\"qty\":\"{}\",\
         \"quoteQty\":\"{}\",\"commission\":\"{}\",\"commissionAsset\":{},\"time\":{},\"isBuyer\":{},\
         \"isMaker\":{},\"isBestMatch\":true}}",
        json_str(&f.symbol),
        f.trade_id,
        f.order_id,
        fmt8(f.price.0),
        fmt8(f.qty.0),
        fmt8(notional(f.price.0, f.qty.0)),
        fmt8(f.commission),
        json_str(&f.commission_asset),
        f.time_ms,
        f.side == Side::Buy,
        f.is_maker
    )
}
