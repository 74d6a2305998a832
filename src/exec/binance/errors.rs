//! What went wrong talking to Binance, in plain words, and what the caller
//! does next.
//!
//! Every failure is a [`BinanceError`]; [`BinanceError::action`] turns it
//! into one [`Action`]. The point is that the order manager never parses
//! messages: it matches on the action. The mapping follows Binance's
//! errors.md and rest-api.md (see ../shared/binance/FACTS.md section 4):
//!
//! | answer | action |
//! |---|---|
//! | -1013 filter failure, other 4xx | [`Action::FixRequest`] |
//! | -1021 timestamp outside recvWindow | [`Action::ResyncClockAndRetry`] |
//! | -2010 would take / insufficient balance / duplicate | [`Action::Requote`] / [`Action::RefreshBalances`] / [`Action::LookUpOrder`] |
//! | -2011 / -2013 unknown order | [`Action::ForgetOrder`] |
//! | -2014 / -2015 / -1022 key, permissions, signature | [`Action::FixCredentials`] |
//! | 429 / -1003 request weight | [`Action::Wait`] (`Retry-After`), every request |
//! | 429 / -1015 too many new orders | [`Action::Wait`] (`Retry-After`), new orders only ([`Limited::Orders`]) |
//! | 418 IP ban, 403 WAF | [`Action::StopTrading`] |
//! | 409 cancelReplace partial success (also 429 with both halves under `CANCEL_ONLY`) | [`Action::ApplyBothResults`] |
//! | 5xx, -1006, -1007, timeouts, unreadable success on an order request | [`Action::LookUpOrder`] |
//!
//! The unknown-fate rule matters most: Binance says a 5xx means "execution
//! status UNKNOWN", and a timeout or a dropped connection after the request
//! left says the same. Treating that as "not placed" and sending again
//! doubles the order; treating it as "placed" leaks one. So the only safe
//! move is to look the order up by its client order id first.
//!
//! Server messages are kept as sent (they name the filter, the limit), with
//! the API key removed by the client before they get here.

use std::fmt;
use std::time::Duration;

use crate::exec::binance::filters::FilterViolation;
use crate::exec::binance::model::ReplaceHalf;

/// What the caller does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The request was refused before it reached the matching engine, and
    /// sending it again unchanged would fail again: fix what the message
    /// names. Nothing changed on the exchange.
    FixRequest,
    /// A post-only order would have taken liquidity; it was not placed.
    /// Requote from the latest book.
    Requote,
    /// Not enough free balance; the order was not placed. Refresh balances
    /// (`account()`) and size down.
    RefreshBalances,
    /// The order is not open on the exchange (filled, canceled, expired or
    /// never placed): drop it from the working set; fills come from the
    /// user-data stream.
    ForgetOrder,
    /// The fate of what was sent is unknown: look the order up by client
    /// order id before doing anything else with it.
    LookUpOrder,
    /// Our clock is off from the server's: re-measure the clock offset
    /// (`sync_clock()`) and retry once.
    ResyncClockAndRetry,
    /// Nothing reached the exchange, or a read failed: safe to send again.
    Retry,
    /// Rate limited: send nothing before this long has passed. Which
    /// requests wait depends on the limit ([`BinanceError::limited`]):
    /// [`Limited::RequestWeight`] (-1003, or a local weight refusal): every
    /// request; [`Limited::Orders`] (-1015 TOO_MANY_ORDERS, or the local
    /// ORDERS count): only requests that place orders (new orders,
    /// cancelReplace); cancels, queries and market data may go on, and the
    /// process's `IpGuard` lets them through (rest-api.md §Unfilled Order
    /// Count: the order count limits new orders, not cancels).
    Wait(Duration),
    /// Stop trading: the IP is banned (for `retry_after`, when known) or the
    /// WAF blocks us; a person has to look.
    StopTrading { retry_after: Option<Duration> },
    /// The API key, its permissions, its IP whitelist or the signing key is
    /// wrong: stop and fix the credentials.
    FixCredentials,
    /// A cancelReplace half succeeded: apply each half's own result.
    ApplyBothResults,
}

/// Which limit a 429 (or a local refusal) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// REQUEST_WEIGHT (-1003 TOO_MANY_REQUESTS): per IP, every request waits.
    RequestWeight,
    /// ORDERS (-1015 TOO_MANY_ORDERS): the unfilled order count, per
    /// account; only new orders wait.
    Orders,
}

/// `Retry-After` assumed when a 429 comes without one.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// An error answer's body: `{"code": -1121, "msg": "Invalid symbol."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiMessage {
    pub code: i64,
    pub msg: String,
}

impl fmt::Display for ApiMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Binance {} \"{}\"", self.code, self.msg)
    }
}

/// Everything that can go wrong calling Binance REST.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinanceError {
    /// -1013: an exchange filter refused the order.
    #[error("{request}: refused by the exchange's {filter} filter ({api})")]
    Filter { request: &'static str, filter: String, api: ApiMessage },
    /// The local copy of the exchange's filters refused the order; nothing was sent.
    #[error("{request}: not sent, {violation}")]
    LocalFilter {
        request: &'static str,
        #[source]
        violation: FilterViolation,
    },
    /// -1021.
    #[error(
        "{request}: the timestamp was outside recvWindow ({api}); our clock is off from Binance's, so measure the \
         offset again and retry once"
    )]
    Timestamp { request: &'static str, api: ApiMessage },
    /// -2010 "Order would immediately match and take."
    #[error("{request}: not placed, the post-only (LIMIT_MAKER) order would have taken liquidity ({api})")]
    WouldTake { request: &'static str, api: ApiMessage },
    /// -2010 "Account has insufficient balance for requested action."
    #[error("{request}: not placed, the account has too little free balance ({api})")]
    InsufficientBalance { request: &'static str, api: ApiMessage },
    /// -2010 "Duplicate order sent.": an open order already has this client id.
    #[error(
        "{request}: not placed, an open order already has this client order id ({api}); an earlier attempt \
         probably landed, so look it up"
    )]
    DuplicateOrder { request: &'static str, api: ApiMessage },
    /// -2010 with another message.
    #[error("{request}: the matching engine rejected the order ({api})")]
    OrderRejected { request: &'static str, api: ApiMessage },
    /// -2011 "Unknown order sent." / -2013 "Order does not exist."
    #[error("{request}: the order is not open on the exchange ({api})")]
    UnknownOrder { request: &'static str, api: ApiMessage },
    /// -2011 with another message (cancel restrictions).
    #[error("{request}: the cancel was refused ({api})")]
    CancelRejected { request: &'static str, api: ApiMessage },
    /// -2014 / -2015 / -1022.
    #[error(
        "{request}: Binance refused our credentials ({api}); check BINANCE_API_KEY, its permissions and IP \
         whitelist, and that the signing key belongs to it"
    )]
    Credentials { request: &'static str, api: ApiMessage },
    /// 429, -1003, -1015; `limit` says which (see [`Action::Wait`]).
    #[error(
        "{request}: rate limited (HTTP {status}, {api}); {} wait {}s as asked",
        if *limit == Limited::Orders { "new orders" } else { "all requests" },
        retry_after.as_secs()
    )]
    RateLimited { request: &'static str, status: u16, api: ApiMessage, retry_after: Duration, limit: Limited },
    /// 418.
    #[error(
        "{request}: HTTP 418, this IP is banned for ignoring rate limits ({api}); stop trading, the ban lasts \
         {}s",
        retry_after.as_secs()
    )]
    Banned { request: &'static str, api: ApiMessage, retry_after: Duration },
    /// 403.
    #[error("{request}: HTTP 403, Binance's web application firewall blocked the request; stop and look")]
    Firewall { request: &'static str },
    /// 409 (-2021): one half of a cancelReplace happened.
    #[error(
        "{request}: cancelReplace partly succeeded ({api}); cancel: {}, new order: {}",
        half(&halves.cancel),
        half(&halves.new_order)
    )]
    ReplacePartial { request: &'static str, api: ApiMessage, halves: Box<ReplaceHalves> },
    /// 400 (-2022): neither half happened.
    #[error(
        "{request}: cancelReplace failed ({api}); cancel: {}, new order: {}",
        half(&halves.cancel),
        half(&halves.new_order)
    )]
    ReplaceFailed { request: &'static str, api: ApiMessage, halves: Box<ReplaceHalves> },
    /// 5xx, -1006, -1007, a timeout or a dropped connection on a request
    /// that places or cancels: it may or may not have happened.
    #[error(
        "{request}: fate unknown ({why}); look the order up by client order id before doing anything else with it"
    )]
    Unknown { request: &'static str, why: String },
    /// The same on a read-only request: nothing changed, ask again.
    #[error("{request}: no usable answer ({why}); safe to ask again")]
    Unavailable { request: &'static str, why: String },
    /// The request never left (connection refused, DNS): nothing changed.
    #[error("{request}: not sent ({why}); nothing changed on the exchange")]
    NotSent { request: &'static str, why: String },
    /// Any other error answer.
    #[error("{request}: refused (HTTP {status}, {api})")]
    Api { request: &'static str, status: u16, api: ApiMessage },
    /// Refused locally to stay under a limit from exchangeInfo (or a
    /// `Retry-After` still running); nothing was sent. `limit` as for
    /// [`BinanceError::RateLimited`].
    #[error("{request}: not sent, {why}; wait {}ms", retry_in.as_millis())]
    LocalRateLimit { request: &'static str, why: String, retry_in: Duration, limit: Limited },
    /// Refused locally: an IP ban (418) is still running.
    #[error("{request}: not sent, this IP is banned for {}s more (HTTP 418 earlier)", retry_in.as_secs())]
    LocalBan { request: &'static str, retry_in: Duration },
    /// A bad argument or setting, caught before sending.
    #[error("{0}")]
    Invalid(String),
}

/// Both halves of a cancelReplace answer (boxed in [`BinanceError`] to keep
/// the common errors small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaceHalves {
    pub cancel: ReplaceHalf,
    pub new_order: ReplaceHalf,
}

fn half(h: &ReplaceHalf) -> String {
    match h {
        ReplaceHalf::Success(o) => format!("done (order {} {:?})", o.order_id, o.status),
        ReplaceHalf::Failure { code, msg } => format!("failed ({code} \"{msg}\")"),
        ReplaceHalf::NotAttempted => "not attempted".into(),
    }
}

impl BinanceError {
    /// What the caller does next.
    pub fn action(&self) -> Action {
        match self {
            Self::Filter { .. }
            | Self::LocalFilter { .. }
            | Self::OrderRejected { .. }
            | Self::CancelRejected { .. }
            | Self::Api { .. }
            | Self::Invalid(_) => Action::FixRequest,
            Self::Timestamp { .. } => Action::ResyncClockAndRetry,
            Self::WouldTake { .. } => Action::Requote,
            Self::InsufficientBalance { .. } => Action::RefreshBalances,
            Self::DuplicateOrder { .. } | Self::Unknown { .. } => Action::LookUpOrder,
            Self::UnknownOrder { .. } => Action::ForgetOrder,
            Self::Credentials { .. } => Action::FixCredentials,
            Self::RateLimited { retry_after, .. } => Action::Wait(*retry_after),
            Self::LocalRateLimit { retry_in, .. } => Action::Wait(*retry_in),
            Self::Banned { retry_after, .. } => Action::StopTrading { retry_after: Some(*retry_after) },
            Self::LocalBan { retry_in, .. } => Action::StopTrading { retry_after: Some(*retry_in) },
            Self::Firewall { .. } => Action::StopTrading { retry_after: None },
            Self::ReplacePartial { .. } => Action::ApplyBothResults,
            // Nothing changed; what to do is what the failed half says.
            Self::ReplaceFailed { request, halves, .. } => {
                let failed = match (&halves.cancel, &halves.new_order) {
                    (ReplaceHalf::Failure { code, msg }, _) | (_, ReplaceHalf::Failure { code, msg }) => {
                        Some(ApiMessage { code: *code, msg: msg.clone() })
                    }
                    _ => None,
                };
                failed.map_or(Action::FixRequest, |api| from_code(request, 400, api, None).action())
            }
            Self::Unavailable { .. } | Self::NotSent { .. } => Action::Retry,
        }
    }

    /// True when an order request may or may not have taken effect.
    pub fn fate_unknown(&self) -> bool {
        matches!(self, Self::Unknown { .. })
    }

    /// Which limit a rate-limit error is about (`None` for other errors):
    /// with [`Limited::Orders`] only new orders wait ([`Action::Wait`]).
    pub fn limited(&self) -> Option<Limited> {
        match self {
            Self::RateLimited { limit, .. } | Self::LocalRateLimit { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    /// Rewrites every piece of server or transport text the error quotes
    /// (used to remove the API key should a server echo it), keeping the
    /// variant and so the action.
    pub fn map_text(mut self, f: impl Fn(&str) -> String) -> Self {
        let fix = |s: &mut String| *s = f(s);
        match &mut self {
            Self::Filter { api, filter, .. } => {
                fix(&mut api.msg);
                fix(filter);
            }
            Self::ReplacePartial { api, halves, .. } | Self::ReplaceFailed { api, halves, .. } => {
                fix(&mut api.msg);
                for h in [&mut halves.cancel, &mut halves.new_order] {
                    if let ReplaceHalf::Failure { msg, .. } = h {
                        fix(msg);
                    }
                }
            }
            Self::Timestamp { api, .. }
            | Self::WouldTake { api, .. }
            | Self::InsufficientBalance { api, .. }
            | Self::DuplicateOrder { api, .. }
            | Self::OrderRejected { api, .. }
            | Self::UnknownOrder { api, .. }
            | Self::CancelRejected { api, .. }
            | Self::Credentials { api, .. }
            | Self::RateLimited { api, .. }
            | Self::Banned { api, .. }
            | Self::Api { api, .. } => fix(&mut api.msg),
            Self::Unknown { why, .. }
            | Self::Unavailable { why, .. }
            | Self::NotSent { why, .. }
            | Self::LocalRateLimit { why, .. }
            | Self::Invalid(why) => fix(why),
            Self::LocalFilter { .. } | Self::Firewall { .. } | Self::LocalBan { .. } => {}
        }
        self
    }

    /// Binance's error code, when the answer had one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Filter { api, .. }
            | Self::Timestamp { api, .. }
            | Self::WouldTake { api, .. }
            | Self::InsufficientBalance { api, .. }
            | Self::DuplicateOrder { api, .. }
            | Self::OrderRejected { api, .. }
            | Self::UnknownOrder { api, .. }
            | Self::CancelRejected { api, .. }
            | Self::Credentials { api, .. }
            | Self::RateLimited { api, .. }
            | Self::Banned { api, .. }
            | Self::ReplacePartial { api, .. }
            | Self::ReplaceFailed { api, .. }
            | Self::Api { api, .. } => (api.code != 0).then_some(api.code),
            _ => None,
        }
    }
}

/// The request an answer belongs to: its label and whether it places or
/// cancels orders (which decides between "fate unknown" and "ask again").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub label: &'static str,
    pub mutating: bool,
}

/// Classifies a non-200 answer. `retry_after` is the `Retry-After` header.
pub fn from_response(ep: Endpoint, status: u16, body: &[u8], retry_after: Option<Duration>) -> BinanceError {
    let request = ep.label;
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let api = parsed.as_ref().and_then(|v| {
        let code = v.get("code")?.as_i64()?;
        let msg = v.get("msg").and_then(|m| m.as_str()).unwrap_or("").to_string();
        Some(ApiMessage { code, msg })
    });
    let api_or_text = || api.clone().unwrap_or_else(|| ApiMessage { code: 0, msg: snippet(body) });
    match status {
        // Binance: "Retry-After" comes with both; a ban is 2 minutes at least.
        418 => {
            return BinanceError::Banned { request, api: api_or_text(), retry_after: retry_after.unwrap_or(secs(120)) }
        }
        // cancelReplace with orderRateLimitExceededMode=CANCEL_ONLY over
        // the order count answers 429 with both halves (the cancel may have
        // happened): handled with the other -2021/-2022 answers below.
        429 if !matches!(api.as_ref().map(|a| a.code), Some(-2021 | -2022)) => {
            let api = api_or_text();
            let limit = if api.code == -1015 { Limited::Orders } else { Limited::RequestWeight };
            return BinanceError::RateLimited {
                request,
                status,
                api,
                retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
                limit,
            };
        }
        403 => return BinanceError::Firewall { request },
        _ => {}
    }
    // cancelReplace answers carry both halves under "data".
    if let (Some(api), Some(data)) = (&api, parsed.as_ref().and_then(|v| v.get("data"))) {
        if matches!(api.code, -2021 | -2022) {
            let halves = ReplaceHalf::from_parts(data.get("cancelResult"), data.get("cancelResponse")).and_then(|c| {
                ReplaceHalf::from_parts(data.get("newOrderResult"), data.get("newOrderResponse")).map(|n| (c, n))
            });
            return match halves {
                Ok((cancel, new_order)) if api.code == -2021 || status == 409 => BinanceError::ReplacePartial {
                    request,
                    api: api.clone(),
                    halves: Box::new(ReplaceHalves { cancel, new_order }),
                },
                Ok((cancel, new_order)) => BinanceError::ReplaceFailed {
                    request,
                    api: api.clone(),
                    halves: Box::new(ReplaceHalves { cancel, new_order }),
                },
                Err(e) => BinanceError::Unknown { request, why: format!("{api}, halves unreadable: {e}") },
            };
        }
    }
    if status == 409 {
        return BinanceError::Unknown { request, why: format!("HTTP 409 with an unreadable body: {}", snippet(body)) };
    }
    if status >= 500 {
        // Binance: 5XX means the execution status is UNKNOWN.
        let why = format!("HTTP {status}{}", api.as_ref().map(|a| format!(", {a}")).unwrap_or_default());
        return unknown(ep, why);
    }
    match api {
        Some(api) => from_code(request, status, api, retry_after).with_fate(ep),
        None => BinanceError::Api { request, status, api: api_or_text() },
    }
}

/// Maps a Binance error code (and its message, where the code is shared).
fn from_code(request: &'static str, status: u16, api: ApiMessage, retry_after: Option<Duration>) -> BinanceError {
    let msg = api.msg.to_ascii_lowercase();
    match api.code {
        -1003 | -1015 => {
            let limit = if api.code == -1015 { Limited::Orders } else { Limited::RequestWeight };
            BinanceError::RateLimited {
                request,
                status,
                api,
                retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
                limit,
            }
        }
        // errors.md: -1006 UNEXPECTED_RESP "Execution status unknown", -1007
        // TIMEOUT "execution status unknown": whatever the HTTP status, the
        // order may exist (rest-api.md §HTTP Return Codes says the same of 5XX).
        -1006 | -1007 => BinanceError::Unknown { request, why: api.to_string() },
        -1013 => {
            let filter = api
                .msg
                .split_once("Filter failure:")
                .map(|(_, f)| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| "an unnamed".to_string());
            BinanceError::Filter { request, filter, api }
        }
        -1021 => BinanceError::Timestamp { request, api },
        -1022 | -2014 | -2015 => BinanceError::Credentials { request, api },
        -2010 if msg.contains("would immediately match") => BinanceError::WouldTake { request, api },
        -2010 if msg.contains("insufficient balance") => BinanceError::InsufficientBalance { request, api },
        -2010 if msg.contains("duplicate") => BinanceError::DuplicateOrder { request, api },
        -2010 => BinanceError::OrderRejected { request, api },
        -2011 if msg.contains("unknown order") => BinanceError::UnknownOrder { request, api },
        -2011 => BinanceError::CancelRejected { request, api },
        -2013 => BinanceError::UnknownOrder { request, api },
        _ => BinanceError::Api { request, status, api },
    }
}

impl BinanceError {
    /// -1007 on a read-only request is "ask again", not "look the order up".
    fn with_fate(self, ep: Endpoint) -> Self {
        match self {
            Self::Unknown { request, why } if !ep.mutating => Self::Unavailable { request, why },
            other => other,
        }
    }
}

/// Unknown fate for order requests; "ask again" for reads.
pub(crate) fn unknown(ep: Endpoint, why: String) -> BinanceError {
    if ep.mutating {
        BinanceError::Unknown { request: ep.label, why }
    } else {
        BinanceError::Unavailable { request: ep.label, why }
    }
}

/// The start of a non-JSON body (an HTML error page), printable and short.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    let t: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if t.trim().is_empty() {
        "empty body".into()
    } else {
        t.trim().to_string()
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: Endpoint = Endpoint { label: "POST /api/v3/order", mutating: true };
    const READ: Endpoint = Endpoint { label: "GET /api/v3/account", mutating: false };

    fn act(ep: Endpoint, status: u16, body: &str) -> Action {
        from_response(ep, status, body.as_bytes(), Some(secs(7))).action()
    }

    #[test]
    fn codes_map_to_actions() {
        let b = |code: i64, msg: &str| format!("{{\"code\":{code},\"msg\":\"{msg}\"}}");
        assert_eq!(act(ORDER, 400, &b(-1013, "Filter failure: LOT_SIZE")), Action::FixRequest);
        let e = from_response(ORDER, 400, b(-1013, "Filter failure: LOT_SIZE").as_bytes(), None);
        assert!(matches!(&e, BinanceError::Filter { filter, .. } if filter == "LOT_SIZE"), "{e}");
        assert!(e.to_string().contains("LOT_SIZE filter"), "{e}");
        assert_eq!(
            act(ORDER, 400, &b(-1021, "Timestamp for this request is outside of the recvWindow.")),
            Action::ResyncClockAndRetry
        );
        assert_eq!(act(ORDER, 400, &b(-2010, "Order would immediately match and take.")), Action::Requote);
        assert_eq!(
            act(ORDER, 400, &b(-2010, "Account has insufficient balance for requested action.")),
            Action::RefreshBalances
        );
        assert_eq!(act(ORDER, 400, &b(-2010, "Duplicate order sent.")), Action::LookUpOrder);
        assert_eq!(act(ORDER, 400, &b(-2011, "Unknown order sent.")), Action::ForgetOrder);
        assert_eq!(act(ORDER, 400, &b(-2013, "Order does not exist.")), Action::ForgetOrder);
        assert_eq!(
            act(ORDER, 400, &b(-2011, "Order was not canceled due to cancel restrictions.")),
            Action::FixRequest
        );
        assert_eq!(
            act(ORDER, 401, &b(-2015, "Invalid API-key, IP, or permissions for action.")),
            Action::FixCredentials
        );
        assert_eq!(act(ORDER, 400, &b(-2014, "API-key format invalid.")), Action::FixCredentials);
        assert_eq!(act(ORDER, 400, &b(-1022, "Signature for this request is not valid.")), Action::FixCredentials);
        assert_eq!(act(ORDER, 429, &b(-1003, "Too much request weight used")), Action::Wait(secs(7)));
        let weight = from_response(ORDER, 429, b(-1003, "Too much request weight used").as_bytes(), None);
        assert_eq!((weight.limited(), weight.action()), (Some(Limited::RequestWeight), Action::Wait(secs(60))));
        let orders = from_response(ORDER, 429, b(-1015, "Too many new orders.").as_bytes(), Some(secs(3)));
        assert_eq!((orders.limited(), orders.action()), (Some(Limited::Orders), Action::Wait(secs(3))));
        assert!(orders.to_string().contains("new orders wait"), "{orders}");
        assert_eq!(from_response(ORDER, 429, b"", None).limited(), Some(Limited::RequestWeight));
        for status in [400, 408, 500, 503] {
            let e = from_response(ORDER, status, b(-1006, "An unexpected response was received").as_bytes(), None);
            assert_eq!(e.action(), Action::LookUpOrder, "HTTP {status}: {e}");
            assert!(e.fate_unknown());
        }
        assert_eq!(act(READ, 400, &b(-1006, "An unexpected response was received")), Action::Retry);
        assert_eq!(act(ORDER, 400, &b(-1003, "Too much request weight used")), Action::Wait(secs(7)));
        assert_eq!(act(ORDER, 418, ""), Action::StopTrading { retry_after: Some(secs(7)) });
        assert_eq!(act(ORDER, 403, "<html>"), Action::StopTrading { retry_after: None });
        assert_eq!(act(ORDER, 500, "<html>oops</html>"), Action::LookUpOrder);
        assert_eq!(act(ORDER, 503, &b(-1008, "busy")), Action::LookUpOrder);
        assert_eq!(
            act(ORDER, 408, &b(-1007, "Timeout waiting for response from backend server.")),
            Action::LookUpOrder
        );
        assert_eq!(act(READ, 408, &b(-1007, "Timeout waiting for response from backend server.")), Action::Retry);
        assert_eq!(act(READ, 502, ""), Action::Retry);
        assert_eq!(act(ORDER, 400, &b(-1121, "Invalid symbol.")), Action::FixRequest);
        assert_eq!(act(ORDER, 400, "not json"), Action::FixRequest);
        assert!(from_response(ORDER, 500, b"", None).fate_unknown());
    }

    #[test]
    fn cancel_replace_halves_are_both_reported() {
        let partial = r#"{"code":-2021,"msg":"Order cancel-replace partially failed.","data":{
            "cancelResult":"SUCCESS","newOrderResult":"FAILURE",
            "cancelResponse":{"symbol":"BTCUSDT","origClientOrderId":"a","orderId":3,"orderListId":-1,
              "clientOrderId":"b","transactTime":1,"price":"0.006123","origQty":"10000.000000","executedQty":"0.000000",
              "cummulativeQuoteQty":"0.000000","status":"CANCELED","timeInForce":"GTC","type":"LIMIT_MAKER","side":"SELL"},
            "newOrderResponse":{"code":-2010,"msg":"Order would immediately match and take."}}}"#;
        let e = from_response(ORDER, 409, partial.as_bytes(), None);
        assert_eq!(e.action(), Action::ApplyBothResults);
        let BinanceError::ReplacePartial { halves, .. } = &e else { panic!("{e:?}") };
        assert!(matches!(&halves.cancel, ReplaceHalf::Success(o) if o.order_id == 3));
        assert!(matches!(halves.new_order, ReplaceHalf::Failure { code: -2010, .. }));
        assert!(e.to_string().contains("would immediately match"), "{e}");
        let failed = r#"{"code":-2022,"msg":"Order cancel-replace failed.","data":{"cancelResult":"FAILURE",
            "newOrderResult":"NOT_ATTEMPTED","cancelResponse":{"code":-2011,"msg":"Unknown order sent."},
            "newOrderResponse":null}}"#;
        let e = from_response(ORDER, 400, failed.as_bytes(), None);
        assert!(matches!(e, BinanceError::ReplaceFailed { .. }), "{e:?}");
        assert_eq!(e.action(), Action::ForgetOrder);
        assert_eq!(from_response(ORDER, 409, b"{}", None).action(), Action::LookUpOrder);
        // orderRateLimitExceededMode=CANCEL_ONLY over the order count: 429
        // with the cancel done and the new order refused -1015 (rest-api.md
        // §Cancel an Existing Order and Send a New Order).
        let cancel_only = partial.replace("\"newOrderResponse\":{\"code\":-2010,\"msg\":\"Order would immediately match and take.\"}",
            "\"newOrderResponse\":{\"code\":-1015,\"msg\":\"Too many new orders; current limit is 1 orders per 10 SECOND.\"}");
        assert_ne!(cancel_only, partial);
        let e = from_response(ORDER, 429, cancel_only.as_bytes(), Some(secs(9)));
        assert_eq!(e.action(), Action::ApplyBothResults, "{e:?}");
        let BinanceError::ReplacePartial { halves, .. } = &e else { panic!("{e:?}") };
        assert!(matches!(halves.new_order, ReplaceHalf::Failure { code: -1015, .. }));
    }
}
