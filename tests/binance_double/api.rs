//! One request, whichever transport brought it: rate limits, the IP ban, signature and timing,
//! then the method. REST paths are mapped to the WebSocket API's method names
//! (web-socket-api.md §Trading requests / §Account requests document the same parameters), so
//! both transports share one implementation and one request log.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::auth::{self, Refusal};
use super::engine::{NewOrder, OrderRef, Side, Sym};
use super::fixed::{self, fmt, DecimalError};
use super::limits::Refused;
use super::{LoggedRequest, Shared, State};

/// Which door the request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Rest,
    Ws,
}

/// How the request proves who sent it.
pub enum Auth {
    /// rest-api.md: `X-MBX-APIKEY` header, signature over query + body as sent.
    Rest { api_key: Option<String>, payload: Vec<u8>, signature: Option<String> },
    /// web-socket-api.md: `apiKey`/`signature` params, or the key of a `session.logon`.
    Ws { session_key: Option<String> },
}

/// A parsed request.
pub struct Call {
    pub transport: Transport,
    /// WebSocket API method name (`order.place`, ...).
    pub method: String,
    /// As the log shows it: `POST /api/v3/order` or `order.place`.
    pub label: String,
    pub params: BTreeMap<String, String>,
    pub auth: Auth,
}

/// The answer, before it is framed for REST or WebSocket.
pub struct Reply {
    pub status: u16,
    /// `result` on success, `{code,msg[,data]}` on failure.
    pub body: Value,
    pub ok: bool,
    /// Seconds, for the `Retry-After` header (418/429).
    pub retry_after_s: Option<u64>,
    /// Epoch ms for the WebSocket `error.data.retryAfter` (418/429).
    pub retry_at_ms: Option<i64>,
    /// The request was an order request: show ORDERS counts (header / rateLimits).
    pub order_request: bool,
    /// A ban began with this request: drop WebSocket connections.
    pub ban_started: bool,
    /// For `session.logon`: the key now authenticated.
    pub logon_key: Option<String>,
    /// Held this much longer than the global answer delay (the -1007 fault's own wait).
    pub extra_delay: Duration,
}

impl Reply {
    pub fn ok(v: Value) -> Reply {
        Reply {
            status: 200,
            body: v,
            ok: true,
            retry_after_s: None,
            retry_at_ms: None,
            order_request: false,
            ban_started: false,
            logon_key: None,
            extra_delay: Duration::ZERO,
        }
    }
    pub fn err(status: u16, code: i64, msg: &str) -> Reply {
        Reply { status, body: json!({"code": code, "msg": msg}), ok: false, ..Reply::ok(Value::Null) }
    }
    pub fn refusal(r: Refusal) -> Reply {
        // web-socket-api.md §Session Authentication shows -2015 with status 401.
        let status = if r.0 == -2015 || r.0 == -2014 { 401 } else { 400 };
        Reply::err(status, r.0, &r.1)
    }
}

/// HTTP status for -1006/-1007: rest-api.md §HTTP Return Codes: "5XX ... the execution status is
/// UNKNOWN" (the docs give no exact number; 503 is the double's choice).
pub const UNKNOWN_STATUS_HTTP: u16 = 503;

fn refused_reply(r: Refused) -> Reply {
    match r {
        Refused::Banned { until_ms, retry_after_s } => Reply {
            retry_after_s: Some(retry_after_s),
            retry_at_ms: Some(until_ms),
            ..Reply::err(
                418,
                -1003,
                &format!("Way too much request weight used; IP banned until {until_ms}. Please use WebSocket Streams for live updates to avoid bans."),
            )
        },
        Refused::Weight { retry_after_s, retry_at_ms } => Reply { retry_after_s: Some(retry_after_s), retry_at_ms: Some(retry_at_ms), ..Reply::err(429, -1003, "") },
        Refused::Orders { retry_after_s, retry_at_ms, msg } => Reply { retry_after_s: Some(retry_after_s), retry_at_ms: Some(retry_at_ms), order_request: true, ..Reply::err(429, -1015, &msg) },
    }
}

/// Request weights (rest-api.md / web-socket-api.md, each method's **Weight**).
fn weight(method: &str, p: &BTreeMap<String, String>) -> u32 {
    match method {
        "exchangeInfo" | "account.status" | "account.commission" => 20,
        "account.rateLimits.orders" => 40,
        "order.status" => 4,
        "openOrders.status" => {
            if p.contains_key("symbol") {
                6
            } else {
                80
            }
        }
        "myTrades" => {
            if p.contains_key("orderId") {
                5
            } else {
                20
            }
        }
        "order.test" if p.get("computeCommissionRates").map(String::as_str) == Some("true") => 20,
        "session.logon"
        | "session.status"
        | "session.logout"
        | "userDataStream.subscribe"
        | "userDataStream.subscribe.signature"
        | "userDataStream.unsubscribe"
        | "session.subscriptions" => 2,
        _ => 1,
    }
}

/// Methods that need a signed request (security type other than NONE).
pub fn is_signed(method: &str) -> bool {
    !matches!(
        method,
        "time"
            | "ping"
            | "exchangeInfo"
            | "session.status"
            | "session.logout"
            | "session.subscriptions"
            | "userDataStream.subscribe"
            | "userDataStream.unsubscribe"
    )
}

/// Methods that place orders (count toward ORDERS; subject to the -1007/-1006 faults).
fn is_order_request(method: &str) -> bool {
    matches!(method, "order.place" | "order.cancelReplace")
}

/// Maps a REST method and path to the WebSocket API method name.
pub fn rest_method(verb: &str, path: &str) -> Option<&'static str> {
    Some(match (verb, path) {
        ("GET", "/api/v3/ping") => "ping",
        ("GET", "/api/v3/time") => "time",
        ("GET", "/api/v3/exchangeInfo") => "exchangeInfo",
        ("GET", "/api/v3/account") => "account.status",
        ("POST", "/api/v3/order") => "order.place",
        ("POST", "/api/v3/order/test") => "order.test",
        ("DELETE", "/api/v3/order") => "order.cancel",
        ("GET", "/api/v3/order") => "order.status",
        ("POST", "/api/v3/order/cancelReplace") => "order.cancelReplace",
        ("GET", "/api/v3/openOrders") => "openOrders.status",
        ("DELETE", "/api/v3/openOrders") => "openOrders.cancelAll",
        ("GET", "/api/v3/myTrades") => "myTrades",
        ("GET", "/api/v3/rateLimit/order") => "account.rateLimits.orders",
        ("GET", "/api/v3/account/commission") => "account.commission",
        _ => return None,
    })
}

/// Checks the API key and signature; returns the key's index.
pub fn authenticate(sh: &Shared, call: &Call) -> Result<(), Refusal> {
    let p = &call.params;
    match &call.auth {
        Auth::Rest { api_key, payload, signature } => {
            let Some(k) = api_key.as_deref().filter(|k| !k.is_empty()) else {
                return Err((-2014, "API-key format invalid.".into()));
            };
            let key = sh
                .cfg
                .keys
                .iter()
                .find(|x| x.key == k)
                .ok_or((-2015, "Invalid API-key, IP, or permissions for action.".to_string()))?;
            let Some(sig) = signature else {
                return Err((
                    -1102,
                    "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.".into(),
                ));
            };
            let sig = auth::url_decode(sig).ok_or((-1022, "Signature for this request is not valid.".to_string()))?;
            auth::verify(key, payload, &sig)
        }
        Auth::Ws { session_key } => match (p.get("apiKey"), p.get("signature")) {
            (None, None) if session_key.is_some() => Ok(()),
            (Some(k), Some(sig)) => {
                let key = sh
                    .cfg
                    .keys
                    .iter()
                    .find(|x| &x.key == k)
                    .ok_or((-2015, "Invalid API-key, IP, or permissions for action.".to_string()))?;
                auth::verify(key, auth::ws_payload(p).as_bytes(), sig)
            }
            (None, _) => {
                Err((-1102, "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.".into()))
            }
            (Some(_), None) => {
                Err((-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.".into()))
            }
        },
    }
}

/// Logs the request, counts its weight (refusing 418/429) and, for signed methods, checks
/// the key, signature and timing. `None` means admitted.
pub fn admit(sh: &Shared, st: &mut State, call: &Call, now: i64) -> Option<Reply> {
    let banned_before = st.limiter.ban_until(now).is_some();
    let mut logged = call.params.clone();
    logged.remove("signature");
    if st.log.len() < super::MAX_LOG {
        st.log.push(LoggedRequest {
            transport: call.transport,
            label: call.label.clone(),
            method: call.method.clone(),
            params: logged,
            at_ms: now,
            during_ban: banned_before,
        });
    }
    if let Err(r) = st.limiter.add_weight(weight(&call.method, &call.params), now) {
        let mut rep = refused_reply(r);
        if rep.status == 429 {
            let lim = st.limiter.cfg.weight_per_minute;
            rep.body = json!({"code": -1003, "msg": format!("Too much request weight used; current limit is {lim} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.")});
        }
        rep.ban_started = rep.status == 418 && !banned_before;
        return Some(rep);
    }
    if is_signed(&call.method) {
        if let Err(r) = authenticate(sh, call) {
            return Some(Reply::refusal(r));
        }
        if let Err(r) = auth::check_timing(
            call.params.get("timestamp").map(String::as_str),
            call.params.get("recvWindow").map(String::as_str),
            sh.now_us(),
        ) {
            return Some(Reply::refusal(r));
        }
    }
    None
}

/// Handles one request end to end.
pub fn handle(sh: &Arc<Shared>, call: Call) -> Reply {
    let now = sh.now_ms();
    let mut st = sh.lock();
    if let Some(rep) = admit(sh, &mut st, &call, now) {
        return rep;
    }
    let faulted = if st.faults.methods.is_empty() {
        is_order_request(&call.method)
    } else {
        st.faults.methods.iter().any(|m| m == &call.method)
    };
    if faulted {
        st.faults.order_requests += 1;
        let n = st.faults.order_requests;
        let unknown_status = if st.faults.unknown_status == 0 { UNKNOWN_STATUS_HTTP } else { st.faults.unknown_status };
        if let Some((every, delay, answer_after)) = st.faults.timeout_every {
            if every > 0 && n.is_multiple_of(every) {
                drop(st);
                defer(sh, call, delay);
                return Reply { order_request: true, extra_delay: answer_after, ..Reply::err(unknown_status, -1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown.") };
            }
        }
        let unexpected = st.faults.unexpected_every.is_some_and(|e| e > 0 && n.is_multiple_of(e));
        let rep = dispatch(sh, &mut st, &call, now);
        sh.flush_events(&mut st);
        if unexpected {
            return Reply {
                order_request: true,
                ..Reply::err(
                    unknown_status,
                    -1006,
                    "An unexpected response was received from the message bus. Execution status unknown.",
                )
            };
        }
        return rep;
    }
    let rep = dispatch(sh, &mut st, &call, now);
    sh.flush_events(&mut st);
    rep
}

/// The -1007 fault: the request reaches the engine only after `delay` (rest-api.md §General API
/// Information: a -1007 "does not always mean that the request failed in the Matching Engine").
fn defer(sh: &Arc<Shared>, call: Call, delay: Duration) {
    if sh.deferred_inflight.fetch_add(1, Ordering::SeqCst) >= 256 {
        sh.deferred_inflight.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let sh2 = Arc::clone(sh);
    let spawned = std::thread::Builder::new().name("dbl-deferred".into()).spawn(move || {
        let end = super::after(delay);
        while std::time::Instant::now() < end && !sh2.shutdown.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2).min(end.saturating_duration_since(std::time::Instant::now())));
        }
        if !sh2.shutdown.load(Ordering::SeqCst) {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let now = sh2.now_ms();
                let mut st = sh2.lock();
                let _ = dispatch(&sh2, &mut st, &call, now);
                sh2.flush_events(&mut st);
            }));
            if run.is_err() {
                sh2.panics.fetch_add(1, Ordering::SeqCst);
            }
        }
        sh2.deferred_inflight.fetch_sub(1, Ordering::SeqCst);
    });
    if spawned.is_err() {
        sh.deferred_inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn req<'a>(p: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, Refusal> {
    p.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| (-1102, format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")))
}

fn decimal(p: &BTreeMap<String, String>, name: &str) -> Result<i64, Refusal> {
    let v = req(p, name)?;
    fixed::parse(v).map_err(|e| match e {
        DecimalError::Illegal => (-1100, format!("Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.")),
        DecimalError::TooPrecise => (-1111, format!("Parameter '{name}' has too much precision.")),
    })
}

fn long(p: &BTreeMap<String, String>, name: &str) -> Result<Option<i64>, Refusal> {
    match p.get(name) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            (-1100, format!("Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."))
        }),
    }
}

/// The symbol a request names (mandatory `symbol`), as an index into the engine's markets;
/// a symbol the double does not serve is errors.md §-1121 BAD_SYMBOL "Invalid symbol.".
fn check_symbol(st: &State, p: &BTreeMap<String, String>) -> Result<Sym, Refusal> {
    let s = req(p, "symbol")?;
    st.engine.market(s).ok_or_else(|| (-1121, "Invalid symbol.".to_string()))
}

/// The markets `exchangeInfo` describes (rest-api.md §Exchange information, web-socket-api.md
/// §Exchange information): `symbol` (one), `symbols` (a JSON array of names, e.g.
/// `["BTCUSDT","BNBBTC"]`, percent-encoded on REST), or, with neither, every symbol. "If the value
/// provided to `symbol` or `symbols` do not exist, the endpoint will throw an error saying the
/// symbol is invalid" (-1121).
fn info_symbols(st: &State, p: &BTreeMap<String, String>) -> Result<Vec<Sym>, Refusal> {
    let names: Vec<String> = match (p.get("symbol"), p.get("symbols")) {
        (None, None) => return Ok((0..st.engine.markets.len()).collect()),
        // The docs list both as optional without saying they combine; the other endpoints that
        // take both say "cannot be used in combination", so the double refuses the pair with
        // errors.md §-1128 OPTIONAL_PARAMS_BAD_COMBO (UNVERIFIED for exchangeInfo).
        (Some(_), Some(_)) => return Err((-1128, "Combination of optional parameters invalid.".into())),
        (Some(one), None) => vec![one.clone()],
        (None, Some(list)) => match serde_json::from_str::<Vec<String>>(list) {
            Ok(v) if !v.is_empty() => v,
            // Not a JSON array of names: errors.md §-1100 ILLEGAL_CHARS (the code is the double's choice).
            _ => return Err((-1100, "Illegal characters found in parameter 'symbols'.".into())),
        },
    };
    let mut out = Vec::new();
    for n in names {
        let i = st.engine.market(&n).ok_or_else(|| (-1121, "Invalid symbol.".to_string()))?;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(out)
}

/// Parses and filters a new order (rest-api.md §New order; filters.md) against the named
/// symbol's rules. MAX_NUM_ORDERS is checked later, at placement.
fn parse_new_order(st: &State, p: &BTreeMap<String, String>) -> Result<(Sym, NewOrder, String), Refusal> {
    let sym = check_symbol(st, p)?;
    let side = Side::parse(req(p, "side")?).ok_or((-1117, "Invalid side.".to_string()))?;
    let ty = req(p, "type")?;
    match ty {
        "LIMIT" | "LIMIT_MAKER" => {}
        "MARKET" | "STOP_LOSS" | "STOP_LOSS_LIMIT" | "TAKE_PROFIT" | "TAKE_PROFIT_LIMIT" => {
            // The double serves only the two limit types (exchangeInfo `orderTypes` says so).
            return Err((-1020, "This operation is not supported.".into()));
        }
        _ => return Err((-1116, "Invalid orderType.".into())),
    }
    let tif = match (ty, p.get("timeInForce")) {
        // errors.md §-1114 TIF_NOT_REQUIRED; rest-api.md lists only quantity and price for LIMIT_MAKER.
        // UNVERIFIED that Binance answers -1114 (rather than -1106) here.
        ("LIMIT_MAKER", Some(_)) => return Err((-1114, "TimeInForce parameter sent when not required.".into())),
        ("LIMIT_MAKER", None) => "GTC".to_string(),
        (_, None) => {
            return Err((-1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.".into()))
        }
        (_, Some(t)) if matches!(t.as_str(), "GTC" | "IOC" | "FOK") => t.clone(),
        _ => return Err((-1115, "Invalid timeInForce.".into())),
    };
    let qty = decimal(p, "quantity")?;
    let price = decimal(p, "price")?;
    let client = match p.get("newClientOrderId") {
        None => None,
        Some(c)
            if !c.is_empty()
                && c.len() <= 36
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b)) =>
        {
            Some(c.clone())
        }
        Some(_) => return Err((
            -1100,
            "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'."
                .into(),
        )),
    };
    let r = &st.engine.markets[sym].rules;
    let stp = p.get("selfTradePreventionMode").cloned().unwrap_or_else(|| r.default_stp_mode.clone());
    if !r.allowed_stp_modes.contains(&stp) {
        // stp_faq.md §How do I know which symbol uses STP?
        return Err((-1013, "This symbol does not allow the specified self-trade prevention mode.".into()));
    }
    let resp = match p.get("newOrderRespType").map(String::as_str) {
        None => if ty == "LIMIT" { "FULL" } else { "ACK" }.to_string(),
        Some(x @ ("ACK" | "RESULT" | "FULL")) => x.to_string(),
        Some(_) => return Err((-1130, "Data sent for parameter 'newOrderRespType' is not valid.".into())),
    };
    // filters.md §PRICE_FILTER
    if (r.min_price > 0 && price < r.min_price)
        || (r.max_price > 0 && price > r.max_price)
        || (r.tick_size > 0 && price % r.tick_size != 0)
    {
        return Err((-1013, "Filter failure: PRICE_FILTER".into()));
    }
    // filters.md §PERCENT_PRICE_BY_SIDE, against the reference price when one is known.
    if let Some(refp) = st.engine.reference_price(sym) {
        let (up, down) = match side {
            Side::Buy => (r.bid_multiplier_up, r.bid_multiplier_down),
            Side::Sell => (r.ask_multiplier_up, r.ask_multiplier_down),
        };
        if price > fixed::mul(refp, up) || price < fixed::mul(refp, down) {
            return Err((-1013, "Filter failure: PERCENT_PRICE_BY_SIDE".into()));
        }
    }
    // filters.md §LOT_SIZE
    if qty < r.min_qty || (r.max_qty > 0 && qty > r.max_qty) || (r.step_size > 0 && qty % r.step_size != 0) {
        return Err((-1013, "Filter failure: LOT_SIZE".into()));
    }
    // filters.md §NOTIONAL
    let notional = fixed::mul(price, qty);
    if notional < r.min_notional || (r.max_notional > 0 && notional > r.max_notional) {
        return Err((-1013, "Filter failure: NOTIONAL".into()));
    }
    Ok((
        sym,
        NewOrder {
            side,
            order_type: ty.to_string(),
            time_in_force: tif,
            price,
            qty,
            client_order_id: client,
            stp_mode: stp,
        },
        resp,
    ))
}

/// filters.md §MAX_NUM_ORDERS ("the maximum number of orders an account is allowed to have open
/// on a symbol": counted on symbol `sym` only), then the engine.
fn place(st: &mut State, sym: Sym, n: NewOrder, resp: &str, now: i64) -> Result<Value, Refusal> {
    if st.engine.open_count(sym, None) >= st.engine.markets[sym].rules.max_num_orders {
        return Err((-1013, "Filter failure: MAX_NUM_ORDERS".into()));
    }
    let placed = st.engine.place(sym, n, now)?;
    Ok(match resp {
        "ACK" => st.engine.ack_json(&placed.order, now),
        "RESULT" => st.engine.result_json(&placed.order, now),
        _ => st.engine.full_json(&placed.order, &placed.fills, now),
    })
}

fn order_ref(p: &BTreeMap<String, String>, id_name: &str, client_name: &str) -> Result<OrderRef, Refusal> {
    let r = OrderRef { order_id: long(p, id_name)?, client_order_id: p.get(client_name).cloned() };
    if r.order_id.is_none() && r.client_order_id.is_none() {
        return Err((-1102, format!("Param '{id_name}' or '{client_name}' must be sent, but both were empty/null!")));
    }
    Ok(r)
}

fn restrictions(p: &BTreeMap<String, String>) -> Result<Option<&str>, Refusal> {
    match p.get("cancelRestrictions").map(String::as_str) {
        None => Ok(None),
        Some(x @ ("ONLY_NEW" | "ONLY_PARTIALLY_FILLED")) => Ok(Some(x)),
        // rest-api.md §Regarding `cancelRestrictions`.
        Some(_) => Err((-1145, "Invalid cancelRestrictions".into())),
    }
}

fn dispatch(sh: &Shared, st: &mut State, call: &Call, now: i64) -> Reply {
    match dispatch_inner(sh, st, call, now) {
        Ok(r) => r,
        Err(r) => Reply::refusal(r),
    }
}

fn dispatch_inner(sh: &Shared, st: &mut State, call: &Call, now: i64) -> Result<Reply, Refusal> {
    let p = &call.params;
    match call.method.as_str() {
        "ping" => Ok(Reply::ok(json!({}))),
        "time" => Ok(Reply::ok(json!({"serverTime": now}))),
        "exchangeInfo" => {
            let which = info_symbols(st, p)?;
            Ok(Reply::ok(exchange_info(st, &which, now)))
        }
        "account.status" => Ok(Reply::ok(account(sh, st, p, now))),
        "order.test" => {
            let (_, n, _) = parse_new_order(st, p)?;
            if p.get("computeCommissionRates").map(String::as_str) == Some("true") {
                let c = &st.engine.commission;
                let side_rate = if n.side == Side::Buy { c.buyer } else { c.seller };
                // rest-api.md §Test new order: rates "already taken into account based on the order side".
                return Ok(Reply::ok(json!({
                    "standardCommissionForOrder": {"maker": fmt(c.maker + side_rate), "taker": fmt(c.taker + side_rate)},
                    "specialCommissionForOrder": {"maker": fmt(0), "taker": fmt(0)},
                    "taxCommissionForOrder": {"maker": fmt(0), "taker": fmt(0)},
                    "discount": {"enabledForAccount": c.pay_in_bnb, "enabledForSymbol": true, "discountAsset": "BNB", "discount": fmt(c.bnb_discount_multiplier)}
                })));
            }
            Ok(Reply::ok(json!({})))
        }
        "order.place" => {
            let (sym, n, resp) = parse_new_order(st, p)?;
            if let Err(r) = st.limiter.order_room(now) {
                let banned = st.limiter.note_order_429(now).err();
                let rep = refused_reply(banned.unwrap_or(r));
                return Ok(Reply { ban_started: rep.status == 418, ..rep });
            }
            let v = place(st, sym, n, &resp, now)?;
            st.limiter.count_order(now);
            Ok(Reply { order_request: true, ..Reply::ok(v) })
        }
        "order.cancel" => {
            let sym = check_symbol(st, p)?;
            let r = order_ref(p, "orderId", "origClientOrderId")?;
            let rs = restrictions(p)?;
            let (o, cid) = st.engine.cancel(sym, &r, p.get("newClientOrderId").cloned(), rs, now)?;
            Ok(Reply::ok(st.engine.cancel_json(&o, &cid, now)))
        }
        // rest-api.md §Cancel All Open Orders on a Symbol: "Cancels all active orders on a symbol".
        "openOrders.cancelAll" => {
            let sym = check_symbol(st, p)?;
            let name = st.engine.markets[sym].rules.symbol.clone();
            let ids: Vec<i64> = st
                .engine
                .orders
                .iter()
                .filter(|o| o.symbol == name && o.status.is_open())
                .map(|o| o.order_id)
                .collect();
            if ids.is_empty() {
                // UNVERIFIED in the docs: Binance answers -2011 "Unknown order sent." when nothing is open.
                return Err((-2011, "Unknown order sent.".into()));
            }
            let mut out = Vec::new();
            for id in ids {
                if let Ok((o, cid)) =
                    st.engine.cancel(sym, &OrderRef { order_id: Some(id), client_order_id: None }, None, None, now)
                {
                    out.push(st.engine.cancel_json(&o, &cid, now));
                }
            }
            Ok(Reply::ok(Value::Array(out)))
        }
        "order.status" => {
            let sym = check_symbol(st, p)?;
            let r = order_ref(p, "orderId", "origClientOrderId")?;
            let i = st.engine.find(sym, &r, false).ok_or((-2013, "Order does not exist.".to_string()))?;
            Ok(Reply::ok(st.engine.query_json(&st.engine.orders[i])))
        }
        // rest-api.md §Current open orders: `symbol` optional; "If the symbol is not sent, orders
        // for all symbols will be returned in an array" (weight 80 instead of 6, see `weight`).
        "openOrders.status" => {
            let only = if p.contains_key("symbol") {
                Some(st.engine.markets[check_symbol(st, p)?].rules.symbol.clone())
            } else {
                None
            };
            let v: Vec<Value> = st
                .engine
                .orders
                .iter()
                .filter(|o| o.status.is_open() && only.as_ref().is_none_or(|s| &o.symbol == s))
                .map(|o| st.engine.query_json(o))
                .collect();
            Ok(Reply::ok(Value::Array(v)))
        }
        // rest-api.md §Account trade list: "Get trades for a specific account and symbol".
        "myTrades" => {
            let sym = check_symbol(st, p)?;
            let name = st.engine.markets[sym].rules.symbol.clone();
            let limit = long(p, "limit")?.unwrap_or(500).clamp(1, 1000) as usize;
            let order_id = long(p, "orderId")?;
            let from_id = long(p, "fromId")?;
            let start = long(p, "startTime")?;
            let end = long(p, "endTime")?;
            let sel: Vec<&super::engine::Trade> = st
                .engine
                .trades
                .iter()
                .filter(|t| t.symbol == name)
                .filter(|t| order_id.is_none_or(|o| t.order_id == o))
                .filter(|t| from_id.is_none_or(|f| t.id >= f))
                .filter(|t| start.is_none_or(|s| t.time >= s))
                .filter(|t| end.is_none_or(|e| t.time <= e))
                .collect();
            // rest-api.md §General API Information: without startTime/fromId "returns the most
            // recent items up to the limit"; with them, the oldest from there. Chronological order.
            let picked: Vec<Value> = if from_id.is_some() || start.is_some() {
                sel.iter().take(limit).map(|t| st.engine.trade_json(t)).collect()
            } else {
                sel[sel.len().saturating_sub(limit)..].iter().map(|t| st.engine.trade_json(t)).collect()
            };
            Ok(Reply::ok(Value::Array(picked)))
        }
        "order.cancelReplace" => cancel_replace(st, p, now),
        // rest-api.md §Query Unfilled Order Count.
        "account.rateLimits.orders" => {
            let (o10, od) = st.limiter.orders_used(now);
            let l = &st.limiter.cfg;
            Ok(Reply::ok(json!([
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": l.orders_per_10s, "count": o10},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": l.orders_per_day, "count": od}
            ])))
        }
        // rest-api.md §Query Commission Rates; commission_faq.md shows the shape.
        "account.commission" => {
            let sym = check_symbol(st, p)?;
            let c = &st.engine.commission;
            let zero = json!({"maker": fmt(0), "taker": fmt(0), "buyer": fmt(0), "seller": fmt(0)});
            Ok(Reply::ok(json!({
                "symbol": st.engine.markets[sym].rules.symbol,
                "standardCommission": {"maker": fmt(c.maker), "taker": fmt(c.taker), "buyer": fmt(c.buyer), "seller": fmt(c.seller)},
                "specialCommission": zero, "taxCommission": zero,
                "discount": {"enabledForAccount": c.pay_in_bnb, "enabledForSymbol": true, "discountAsset": "BNB", "discount": fmt(c.bnb_discount_multiplier)}
            })))
        }
        other => Err((-1020, format!("This operation is not supported. (the double does not serve '{other}')"))),
    }
}

/// rest-api.md §Cancel an Existing Order and Send a New Order, with its table of
/// `cancelReplaceMode` × `orderRateLimitExceededMode` × unfilled order count → status.
fn cancel_replace(st: &mut State, p: &BTreeMap<String, String>, now: i64) -> Result<Reply, Refusal> {
    let sym = check_symbol(st, p)?;
    let mode = req(p, "cancelReplaceMode")?.to_string();
    if mode != "STOP_ON_FAILURE" && mode != "ALLOW_FAILURE" {
        return Err((-1130, "Data sent for parameter 'cancelReplaceMode' is not valid.".into()));
    }
    let rl_mode = p.get("orderRateLimitExceededMode").cloned().unwrap_or_else(|| "DO_NOTHING".into());
    if rl_mode != "DO_NOTHING" && rl_mode != "CANCEL_ONLY" {
        return Err((-1130, "Data sent for parameter 'orderRateLimitExceededMode' is not valid.".into()));
    }
    let r = order_ref(p, "cancelOrderId", "cancelOrigClientOrderId")?;
    let rs = restrictions(p)?;
    if !st.engine.markets[sym].rules.cancel_replace_allowed {
        return Err((-2010, "Order cancel-replace is not supported for this symbol.".into()));
    }
    // "Filters and Order Count are evaluated before the processing of the cancellation and order placement occurs."
    let (_, n, resp) = parse_new_order(st, p)?;
    let cancel_cid = p.get("cancelNewClientOrderId").cloned();
    let err_json = |r: &Refusal| json!({"code": r.0, "msg": r.1});
    if let Err(limit) = st.limiter.order_room(now) {
        let _ = st.limiter.note_order_429(now);
        let Refused::Orders { retry_after_s, retry_at_ms, msg } = limit else { return Ok(refused_reply(limit)) };
        if rl_mode == "DO_NOTHING" {
            return Ok(Reply {
                retry_after_s: Some(retry_after_s),
                retry_at_ms: Some(retry_at_ms),
                order_request: true,
                ..Reply::err(429, -1015, &msg)
            });
        }
        // CANCEL_ONLY: "will always cancel the order".
        let body = match st.engine.cancel(sym, &r, cancel_cid, rs, now) {
            Ok((o, cid)) => json!({"code": -2021, "msg": "Order cancel-replace partially failed.", "data": {
                "cancelResult": "SUCCESS", "newOrderResult": "FAILURE",
                "cancelResponse": st.engine.cancel_json(&o, &cid, now),
                "newOrderResponse": {"code": -1015, "msg": msg}}}),
            Err(e) => json!({"code": -2022, "msg": "Order cancel-replace failed.", "data": {
                "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                "cancelResponse": err_json(&e), "newOrderResponse": null}}),
        };
        return Ok(Reply {
            status: 429,
            body,
            ok: false,
            retry_after_s: Some(retry_after_s),
            retry_at_ms: Some(retry_at_ms),
            order_request: true,
            ..Reply::ok(Value::Null)
        });
    }
    // "A new order that was not attempted ... will still increase the unfilled order count by 1."
    st.limiter.count_order(now);
    let cancel = st.engine.cancel(sym, &r, cancel_cid, rs, now);
    let cancel_json = match &cancel {
        Ok((o, cid)) => st.engine.cancel_json(o, cid, now),
        Err(e) => err_json(e),
    };
    if cancel.is_err() && mode == "STOP_ON_FAILURE" {
        let body = json!({"code": -2022, "msg": "Order cancel-replace failed.", "data": {
            "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED", "cancelResponse": cancel_json, "newOrderResponse": null}});
        return Ok(Reply { status: 400, body, ok: false, order_request: true, ..Reply::ok(Value::Null) });
    }
    let placed = place(st, sym, n.clone(), &resp, now);
    if let (Ok(_), Err(e)) = (&cancel, &placed) {
        st.engine.report_rejected(sym, &n, &e.1, now);
    }
    let res = |ok: bool| if ok { "SUCCESS" } else { "FAILURE" };
    let new_json = match &placed {
        Ok(v) => v.clone(),
        Err(e) => err_json(e),
    };
    let inner = json!({"cancelResult": res(cancel.is_ok()), "newOrderResult": res(placed.is_ok()), "cancelResponse": cancel_json, "newOrderResponse": new_json});
    Ok(match (cancel.is_ok(), placed.is_ok()) {
        (true, true) => Reply { order_request: true, ..Reply::ok(inner) },
        (false, false) => Reply {
            status: 400,
            body: json!({"code": -2022, "msg": "Order cancel-replace failed.", "data": inner}),
            ok: false,
            order_request: true,
            ..Reply::ok(Value::Null)
        },
        _ => Reply {
            status: 409,
            body: json!({"code": -2021, "msg": "Order cancel-replace partially failed.", "data": inner}),
            ok: false,
            order_request: true,
            ..Reply::ok(Value::Null)
        },
    })
}

/// rest-api.md §Exchange information, with filters.md's formats: the symbols in `which`, in
/// the order served (the default symbol first).
fn exchange_info(st: &State, which: &[Sym], now: i64) -> Value {
    let symbols: Vec<Value> = which.iter().map(|&i| symbol_info(&st.engine.markets[i].rules)).collect();
    json!({
        "timezone": "UTC",
        "serverTime": now,
        "rateLimits": st.limiter.exchange_info_limits(),
        "exchangeFilters": [],
        "symbols": symbols
    })
}

/// One entry of `exchangeInfo.symbols` (rest-api.md §Exchange information).
fn symbol_info(r: &super::config::SymbolRules) -> Value {
    json!({
        "symbol": r.symbol, "status": "TRADING", "baseAsset": r.base, "baseAssetPrecision": 8,
        "quoteAsset": r.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER"],
        "icebergAllowed": false, "ocoAllowed": false, "otoAllowed": false, "opoAllowed": false,
        "quoteOrderQtyMarketAllowed": false, "allowTrailingStop": false,
        "cancelReplaceAllowed": r.cancel_replace_allowed, "amendAllowed": false,
        "pegInstructionsAllowed": false, "isSpotTradingAllowed": true, "isMarginTradingAllowed": false,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": fmt(r.min_price), "maxPrice": fmt(r.max_price), "tickSize": fmt(r.tick_size)},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": fmt(r.bid_multiplier_up), "bidMultiplierDown": fmt(r.bid_multiplier_down),
             "askMultiplierUp": fmt(r.ask_multiplier_up), "askMultiplierDown": fmt(r.ask_multiplier_down), "avgPriceMins": r.avg_price_mins},
            {"filterType": "LOT_SIZE", "minQty": fmt(r.min_qty), "maxQty": fmt(r.max_qty), "stepSize": fmt(r.step_size)},
            {"filterType": "NOTIONAL", "minNotional": fmt(r.min_notional), "applyMinToMarket": true,
             "maxNotional": fmt(r.max_notional), "applyMaxToMarket": false, "avgPriceMins": r.avg_price_mins},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": r.max_num_orders}
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": r.default_stp_mode,
        "allowedSelfTradePreventionModes": r.allowed_stp_modes
    })
}

/// rest-api.md §Account information.
fn account(_sh: &Shared, st: &State, p: &BTreeMap<String, String>, now: i64) -> Value {
    let c = &st.engine.commission;
    let omit_zero = p.get("omitZeroBalances").map(String::as_str) == Some("true");
    let bps = |x: i64| x / (fixed::ONE / 10_000);
    let balances: Vec<Value> = st
        .engine
        .balances
        .iter()
        .filter(|(_, b)| !omit_zero || b.free != 0 || b.locked != 0)
        .map(|(a, b)| json!({"asset": a, "free": fmt(b.free), "locked": fmt(b.locked)}))
        .collect();
    json!({
        "makerCommission": bps(c.maker), "takerCommission": bps(c.taker), "buyerCommission": bps(c.buyer), "sellerCommission": bps(c.seller),
        "commissionRates": {"maker": fmt(c.maker), "taker": fmt(c.taker), "buyer": fmt(c.buyer), "seller": fmt(c.seller)},
        "canTrade": st.engine.can_trade, "canWithdraw": true, "canDeposit": true, "brokered": false,
        "requireSelfTradePrevention": false, "preventSor": false, "updateTime": now, "accountType": "SPOT",
        "balances": balances, "permissions": ["SPOT"], "uid": 1
    })
}
