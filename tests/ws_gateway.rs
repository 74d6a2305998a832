//! The order gateway (exec::binance::gateway) against a minimal WebSocket
//! API double written from Binance's web-socket-api.md: pipelined requests
//! answered out of order and matched by id (§Request format, §Response
//! format), error answers (§Status codes), unanswered and dropped requests
//! ("execution status unknown"), `serverShutdown` (§Server Shutdown), HMAC
//! signatures (§SIGNED request example (HMAC)), Ed25519 `session.logon`
//! (§Session Authentication, §Log in with API key), user data on the
//! session (§User Data Stream requests), and the REST fallback.
//! Loopback only, ephemeral ports, every wait bounded.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::Message;

use mmbot::exec::binance::gateway::{
    Answer, Call, GatewayConfig, GatewayEvent, NewOrder, OrderGateway, Reply, StpMode, Target, Transport,
};
use mmbot::exec::binance::sign::Ed25519Key;
use mmbot::exec::binance::{BinanceError, ClientOrderId, Credentials, RestClient, RestConfig};
use mmbot::exec::userdata::UserEvent;
use mmbot::exec::Side;
use mmbot::ipguard::IpGuard;

const KEY: &str = "wsKey0123456789abcdef";
const SECRET: &str = "wsSecret0123456789";
const SYMBOL: &str = "BTCUSDT";

// ---------------------------------------------------------------- the double

/// How the double checks signatures.
#[derive(Clone)]
enum DoubleAuth {
    Hmac(&'static str),
    Ed25519(Vec<u8>),
}

/// What the double does with one request.
#[derive(Clone)]
enum Act {
    Answer(Value),
    After(Duration, Value),
    Never,
    /// Closes the TCP connection at once (no close frame).
    Drop,
    /// Sends `serverShutdown`, then the answer after the delay.
    ShutdownThen(Duration, Value),
}

/// Per connection (0 = first accepted) and request: `None` for the default.
type Policy = Arc<dyn Fn(usize, &Value) -> Option<Act> + Send + Sync>;

#[derive(Default)]
struct ConnLog {
    opened: Option<Instant>,
    closed: Option<Instant>,
    /// Each request and when it arrived.
    requests: Vec<(Instant, Value)>,
    /// When each answer was written.
    answered: Vec<Instant>,
}

#[derive(Default)]
struct Log {
    conns: Vec<ConnLog>,
    sig_failures: u64,
    /// Frames the test asks to push to a connection: (conn, text).
    push: Vec<(usize, String)>,
}

struct Double {
    port: u16,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Double {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Double {
    fn start(auth: DoubleAuth, policy: Policy) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l2, s2) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(60);
            while !s2.load(Ordering::Relaxed) && Instant::now() < end {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let n = {
                            let mut g = l2.lock().unwrap();
                            g.conns.push(ConnLog { opened: Some(Instant::now()), ..ConnLog::default() });
                            g.conns.len() - 1
                        };
                        let (l3, s3, p3, a3) = (l2.clone(), s2.clone(), policy.clone(), auth.clone());
                        std::thread::spawn(move || serve(n, tcp, l3, s3, p3, a3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Self { port, log, stop }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws-api/v3", self.port)
    }

    /// Pushes a user-data event to connection `conn` (§Event format).
    fn push_event(&self, conn: usize, event: Value) {
        let text = json!({"subscriptionId": 0, "event": event}).to_string();
        self.log.lock().unwrap().push.push((conn, text));
    }

    fn methods(&self, conn: usize) -> Vec<String> {
        let g = self.log.lock().unwrap();
        g.conns.get(conn).map_or(vec![], |c| {
            c.requests.iter().map(|(_, r)| r["method"].as_str().unwrap_or("").to_string()).collect()
        })
    }

    fn requests(&self, conn: usize, method: &str) -> Vec<Value> {
        let g = self.log.lock().unwrap();
        g.conns.get(conn).map_or(vec![], |c| {
            c.requests.iter().filter(|(_, r)| r["method"] == method).map(|(_, r)| r.clone()).collect()
        })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// web-socket-api.md §SIGNED request security: every parameter but
/// `signature`, sorted by name, `name=value` joined with `&`.
fn payload(params: &serde_json::Map<String, Value>) -> String {
    let mut keys: Vec<&String> = params.keys().filter(|k| *k != "signature").collect();
    keys.sort();
    keys.iter()
        .map(|k| {
            let v = &params[k.as_str()];
            format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn signature_ok(auth: &DoubleAuth, params: &serde_json::Map<String, Value>) -> bool {
    let Some(sig) = params.get("signature").and_then(Value::as_str) else { return false };
    if params.get("apiKey").and_then(Value::as_str) != Some(KEY) {
        return false;
    }
    let p = payload(params);
    match auth {
        DoubleAuth::Hmac(secret) => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
            hex(ring::hmac::sign(&key, p.as_bytes()).as_ref()) == sig
        }
        DoubleAuth::Ed25519(public) => {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(sig) else { return false };
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
                .verify(p.as_bytes(), &raw)
                .is_ok()
        }
    }
}

fn ok(id: &Value, result: Value) -> Value {
    json!({"id": id, "status": 200, "result": result, "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": 12}]})
}

fn error(id: &Value, status: u16, code: i64, msg: &str) -> Value {
    json!({"id": id, "status": status, "error": {"code": code, "msg": msg}})
}

/// An order as `newOrderRespType=RESULT` shows it (§Place new order).
fn order_json(p: &Value, status: &str, order_id: u64) -> Value {
    let s = |k: &str, d: &str| p.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
    json!({"symbol": s("symbol", SYMBOL), "orderId": order_id, "orderListId": -1,
        "clientOrderId": s("newClientOrderId", "cancel-id"), "transactTime": 1_700_000_000_000i64,
        "price": s("price", "0"), "origQty": s("quantity", "0"), "executedQty": "0", "origQuoteOrderQty": "0",
        "cummulativeQuoteQty": "0", "status": status, "timeInForce": "GTC", "type": "LIMIT_MAKER",
        "side": s("side", "BUY"), "workingTime": 1_700_000_000_000i64, "selfTradePreventionMode": "EXPIRE_MAKER"})
}

/// The double's default answers; `logged_on` is the session's state.
fn default_answer(req: &Value, logged_on: &mut bool) -> Value {
    let id = &req["id"];
    let p = &req["params"];
    match req["method"].as_str().unwrap_or("") {
        "session.logon" => {
            *logged_on = true;
            ok(
                id,
                json!({"apiKey": KEY, "authorizedSince": 1, "connectedSince": 1, "returnRateLimits": false,
                "serverTime": 1, "userDataStream": false}),
            )
        }
        "userDataStream.subscribe" if !*logged_on => {
            error(id, 401, -2015, "Invalid API-key, IP, or permissions for action.")
        }
        "userDataStream.subscribe" | "userDataStream.subscribe.signature" => ok(id, json!({"subscriptionId": 0})),
        "order.place" => ok(id, order_json(p, "NEW", 100 + id.as_str().unwrap_or("0").parse::<u64>().unwrap_or(0))),
        "order.test" => ok(id, json!({})),
        "order.cancel" => ok(id, order_json(p, "CANCELED", p["orderId"].as_u64().unwrap_or(1))),
        "openOrders.status" | "openOrders.cancelAll" => ok(id, json!([])),
        _ => error(id, 400, -1100, "Illegal characters found in a parameter."),
    }
}

/// One connection: answers requests as the policy says, pushes queued
/// events, records everything. Bounded by the stop flag and 60 s.
fn serve(n: usize, tcp: TcpStream, log: Arc<Mutex<Log>>, stop: Arc<AtomicBool>, policy: Policy, auth: DoubleAuth) {
    let Ok(mut ws) = tungstenite::accept(tcp) else { return };
    let _ = ws.get_ref().set_read_timeout(Some(Duration::from_millis(2)));
    let mut scheduled: Vec<(Instant, String)> = Vec::new();
    let mut logged_on = false;
    let end = Instant::now() + Duration::from_secs(60);
    let close = |log: &Arc<Mutex<Log>>| log.lock().unwrap().conns[n].closed = Some(Instant::now());
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        let pushes: Vec<String> = {
            let mut g = log.lock().unwrap();
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut g.push).into_iter().partition(|(c, _)| *c == n);
            g.push = rest;
            mine.into_iter().map(|(_, t)| t).collect()
        };
        for t in pushes {
            let _ = ws.send(Message::text(t));
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = scheduled.into_iter().partition(|(t, _)| *t <= now);
        scheduled = later;
        for (_, text) in due {
            if ws.send(Message::text(text)).is_err() {
                return close(&log);
            }
            log.lock().unwrap().conns[n].answered.push(Instant::now());
        }
        let req: Value = match ws.read() {
            Ok(Message::Text(t)) => serde_json::from_str(t.as_str()).unwrap_or(Value::Null),
            Ok(Message::Close(_)) => {
                let _ = ws.flush();
                return close(&log);
            }
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                continue
            }
            Err(_) => return close(&log),
        };
        log.lock().unwrap().conns[n].requests.push((Instant::now(), req.clone()));
        let empty = serde_json::Map::new();
        let params = req["params"].as_object().unwrap_or(&empty);
        let method = req["method"].as_str().unwrap_or("");
        // Signed requests must verify; unsigned ones need a logged-on
        // session, except `userDataStream.subscribe` which checks that itself.
        let authorised = if params.contains_key("signature") {
            signature_ok(&auth, params)
        } else {
            logged_on || method == "userDataStream.subscribe"
        };
        let act = if !authorised {
            log.lock().unwrap().sig_failures += 1;
            Act::Answer(error(&req["id"], 400, -1022, "Signature for this request is not valid."))
        } else {
            policy(n, &req).unwrap_or_else(|| Act::Answer(default_answer(&req, &mut logged_on)))
        };
        match act {
            Act::Answer(v) => scheduled.push((Instant::now(), v.to_string())),
            Act::After(d, v) => scheduled.push((Instant::now() + d, v.to_string())),
            Act::Never => {}
            Act::Drop => {
                let _ = ws.get_mut().shutdown(std::net::Shutdown::Both);
                return close(&log);
            }
            Act::ShutdownThen(d, v) => {
                let ev = json!({"event": {"e": "serverShutdown", "E": 1_770_123_456_789i64}});
                let _ = ws.send(Message::text(ev.to_string()));
                scheduled.push((Instant::now() + d, v.to_string()));
            }
        }
    }
    let _ = ws.close(None);
    close(&log);
}

// ------------------------------------------------------------- the gateway

fn hmac_creds(secret: &str) -> Credentials {
    Credentials::hmac(KEY, secret).unwrap()
}

/// A REST client for a port nothing listens on: these tests must not use
/// it (the fallback test has its own).
fn idle_rest(creds: Credentials) -> RestClient {
    let mut cfg = RestConfig::with_base("http://127.0.0.1:9");
    cfg.connect_timeout = Duration::from_millis(200);
    cfg.timeout = Duration::from_millis(500);
    RestClient::new(&cfg, creds).unwrap()
}

fn config(url: &str) -> GatewayConfig {
    let mut cfg = GatewayConfig::new(SYMBOL, Some(url));
    cfg.timeout = Duration::from_secs(3);
    cfg.connect_timeout = Duration::from_secs(2);
    cfg.backoff_min = Duration::from_millis(50);
    cfg.backoff_max = Duration::from_millis(200);
    cfg
}

fn start_hmac(url: &str, secret: &str, tweak: impl FnOnce(&mut GatewayConfig)) -> OrderGateway {
    let mut cfg = config(url);
    tweak(&mut cfg);
    OrderGateway::start(cfg, idle_rest(hmac_creds(secret)), hmac_creds(secret), IpGuard::new()).unwrap()
}

/// Polls until `pred` holds for an event (returned with all events seen).
fn wait_for(gw: &mut OrderGateway, what: &str, pred: impl Fn(&GatewayEvent) -> bool) -> Vec<GatewayEvent> {
    let end = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while Instant::now() < end {
        match gw.poll() {
            Some(e) => {
                let hit = pred(&e);
                seen.push(e);
                if hit {
                    return seen;
                }
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    panic!("no {what} within 10 s; saw {seen:#?}");
}

fn wait_up(gw: &mut OrderGateway) -> Vec<GatewayEvent> {
    wait_for(gw, "session up", |e| matches!(e, GatewayEvent::Session { up: true, .. }))
}

/// Collects `n` answers, in the order they come, and the other events seen meanwhile.
fn answers_and_events(gw: &mut OrderGateway, n: usize) -> (Vec<Answer>, Vec<GatewayEvent>) {
    let end = Instant::now() + Duration::from_secs(10);
    let (mut out, mut other) = (Vec::new(), Vec::new());
    while out.len() < n && Instant::now() < end {
        match gw.poll() {
            Some(GatewayEvent::Answer(a)) => out.push(a),
            Some(e) => other.push(e),
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    assert_eq!(out.len(), n, "answers within 10 s: {out:#?}");
    (out, other)
}

fn answers(gw: &mut OrderGateway, n: usize) -> Vec<Answer> {
    answers_and_events(gw, n).0
}

fn place(id: &str) -> Call {
    Call::Place(NewOrder {
        side: Side::Buy,
        price: "60000.5".parse().unwrap(),
        qty: "0.001".parse().unwrap(),
        client_id: ClientOrderId::new(id).unwrap(),
        stp: StpMode::ExpireMaker,
    })
}

fn placed_id(a: &Answer) -> String {
    match &a.result {
        Ok(Reply::Order(o)) => o.client_order_id.clone(),
        other => panic!("expected an order, got {other:?}"),
    }
}

/// Waits (bounded) until the double has logged `n` requests of `method` on `conn`.
fn wait_requests(d: &Double, conn: usize, method: &str, n: usize) {
    let end = Instant::now() + Duration::from_secs(5);
    while d.requests(conn, method).len() < n {
        assert!(Instant::now() < end, "the double did not get {n} {method} on connection {conn}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ----------------------------------------------------------------- tests

/// §Request format: ids match answers to requests; several requests are in
/// flight at once and their answers come in any order.
#[test]
fn pipelined_answers_out_of_order_are_matched_by_id() {
    let delays: Policy = Arc::new(|_, req: &Value| {
        let cid = req["params"]["newClientOrderId"].as_str()?;
        let ms = match cid {
            "mm-1" => 300,
            "mm-2" => 150,
            _ => 0,
        };
        let mut logged_on = true;
        Some(Act::After(Duration::from_millis(ms), default_answer(req, &mut logged_on)))
    });
    let d = Double::start(DoubleAuth::Hmac(SECRET), delays);
    let mut gw = start_hmac(&d.url(), SECRET, |_| {});
    wait_up(&mut gw);
    let ids: Vec<u64> = ["mm-1", "mm-2", "mm-3"].iter().map(|c| gw.submit(place(c))).collect();
    assert_eq!(gw.in_flight(), 3);
    let got = answers(&mut gw, 3);
    let order: Vec<u64> = got.iter().map(|a| a.id).collect();
    assert_eq!(order, vec![ids[2], ids[1], ids[0]], "answers in the order the double sent them");
    for a in &got {
        let want = format!("mm-{}", ids.iter().position(|i| *i == a.id).unwrap() + 1);
        assert_eq!(placed_id(a), want, "answer {} matched to its own request", a.id);
        assert_eq!((a.via, a.method), (Transport::WsApi, "place"));
        assert!(a.timestamp_ms > 0);
    }
    // All three were on the wire before the first answer came back.
    let g = d.log.lock().unwrap();
    let c = &g.conns[0];
    let places: Vec<Instant> =
        c.requests.iter().filter(|(_, r)| r["method"] == "order.place").map(|(t, _)| *t).collect();
    let first_answer = c.answered.iter().filter(|t| **t >= places[0]).min().copied().unwrap();
    assert!(places.iter().all(|t| *t < first_answer), "requests pipelined");
    drop(g);
    assert_eq!(gw.in_flight(), 0);
    let st = gw.stats();
    assert_eq!((st.sent_ws, st.answers, st.sent_rest), (3, 3, 0), "{st:?}");
    assert!(gw.rtt_percentiles().iter().any(|(k, p)| k.method == "place" && k.via == "ws_api" && p.count == 3));
}

/// A slow answer on one request does not hold up another's.
#[test]
fn a_slow_answer_does_not_hold_up_another() {
    let slow: Policy = Arc::new(|_, req: &Value| {
        (req["method"] == "order.place").then(|| {
            let mut logged_on = true;
            Act::After(Duration::from_millis(500), default_answer(req, &mut logged_on))
        })
    });
    let d = Double::start(DoubleAuth::Hmac(SECRET), slow);
    let mut gw = start_hmac(&d.url(), SECRET, |_| {});
    wait_up(&mut gw);
    let p = gw.submit(place("slow-1"));
    let c = gw.submit(Call::Cancel(Target::OrderId(77)));
    let got = answers(&mut gw, 2);
    assert_eq!((got[0].id, got[1].id), (c, p), "the cancel's answer first");
    assert!(matches!(&got[0].result, Ok(Reply::Order(o)) if o.order_id == 77));
    assert!(got[0].rtt < got[1].rtt);
    assert_eq!(placed_id(&got[1]), "slow-1");
}

/// §Status codes and §IP limits: error answers become the same
/// BinanceError variants as REST's, and a 418 stops what follows locally.
#[test]
fn error_answers_map_to_binance_errors() {
    let errs: Policy = Arc::new(|_, req: &Value| {
        let id = &req["id"];
        match req["method"].as_str()? {
            "order.place" => Some(Act::Answer(error(id, 400, -2010, "Order would immediately match and take."))),
            "order.cancel" => Some(Act::Answer(error(id, 400, -2011, "Unknown order sent."))),
            "openOrders.cancelAll" => Some(Act::Answer(error(id, 400, -2011, "Unknown order sent."))),
            "order.test" => {
                let until = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                    as i64
                    + 120_000;
                Some(Act::Answer(json!({"id": id, "status": 418, "error": {"code": -1003,
                    "msg": "Way too much request weight used; IP banned.", "data": {"retryAfter": until}}})))
            }
            _ => None,
        }
    });
    let d = Double::start(DoubleAuth::Hmac(SECRET), errs);
    let mut gw = start_hmac(&d.url(), SECRET, |_| {});
    wait_up(&mut gw);
    gw.submit(place("take-1"));
    let a = answers(&mut gw, 1).remove(0);
    assert!(matches!(a.result, Err(BinanceError::WouldTake { .. })), "{:?}", a.result);
    gw.submit(Call::Cancel(Target::ClientId("gone".into())));
    let a = answers(&mut gw, 1).remove(0);
    assert!(matches!(a.result, Err(BinanceError::UnknownOrder { .. })), "{:?}", a.result);
    // None open to cancel is an empty list, as over REST.
    gw.submit(Call::CancelAll);
    let a = answers(&mut gw, 1).remove(0);
    assert!(matches!(a.result, Ok(Reply::Orders(ref v)) if v.is_empty()), "{:?}", a.result);
    let Call::Place(o) = place("t-1") else { unreachable!() };
    gw.submit(Call::Test(o));
    let a = answers(&mut gw, 1).remove(0);
    match &a.result {
        Err(BinanceError::Banned { retry_after, .. }) => assert!(*retry_after > Duration::from_secs(100)),
        other => panic!("{other:?}"),
    }
    // The guard now refuses everything: nothing more reaches the double.
    let before = d.methods(0).len();
    gw.submit(place("after-ban"));
    let a = answers(&mut gw, 1).remove(0);
    assert_eq!(a.via, Transport::NotSent);
    assert!(matches!(a.result, Err(BinanceError::LocalBan { .. })), "{:?}", a.result);
    assert_eq!(d.methods(0).len(), before);
}

/// A request never answered is answered locally, fate unknown, after the timeout.
#[test]
fn an_unanswered_request_is_unknown_after_the_timeout() {
    let never: Policy = Arc::new(|_, req: &Value| (req["method"] == "order.place").then_some(Act::Never));
    let d = Double::start(DoubleAuth::Hmac(SECRET), never);
    let mut gw = start_hmac(&d.url(), SECRET, |c| c.timeout = Duration::from_millis(300));
    wait_up(&mut gw);
    gw.submit(place("lost-1"));
    let a = answers(&mut gw, 1).remove(0);
    assert!(matches!(a.result, Err(BinanceError::Unknown { .. })), "{:?}", a.result);
    assert!(a.result.as_ref().unwrap_err().fate_unknown());
    assert!(a.rtt >= Duration::from_millis(300));
    assert_eq!(d.requests(0, "order.place").len(), 1, "never resent");
    assert_eq!(gw.stats().timeouts, 1);
    assert!(gw.session_up(), "a timeout alone does not drop the session");
    assert!(gw.rtt_percentiles().iter().all(|(k, _)| k.method != "place"), "a timeout is no round trip");
}

/// A connection that drops with requests in flight: each is answered
/// "fate unknown", calls go over REST meanwhile, and the gateway reconnects
/// (and subscribes again, generation 2).
#[test]
fn a_dropped_connection_answers_every_request_in_flight_unknown() {
    let drop_on_cancel: Policy = Arc::new(|conn, req: &Value| match (conn, req["method"].as_str()?) {
        (0, "order.place") => Some(Act::Never),
        (0, "order.cancel") => Some(Act::Drop),
        _ => None,
    });
    let d = Double::start(DoubleAuth::Hmac(SECRET), drop_on_cancel);
    let mut gw = start_hmac(&d.url(), SECRET, |_| {});
    wait_up(&mut gw);
    let a = gw.submit(place("d-1"));
    let b = gw.submit(place("d-2"));
    wait_requests(&d, 0, "order.place", 2);
    let c = gw.submit(Call::Cancel(Target::OrderId(5)));
    let (mut got, mut evs) = answers_and_events(&mut gw, 3);
    got.sort_by_key(|x| x.id);
    assert_eq!(got.iter().map(|x| x.id).collect::<Vec<_>>(), vec![a, b, c]);
    for x in &got {
        assert_eq!(x.via, Transport::WsApi);
        assert!(matches!(x.result, Err(BinanceError::Unknown { .. })), "{:?}", x.result);
    }
    if !evs.iter().any(|e| matches!(e, GatewayEvent::User(UserEvent::Subscribed { generation: 2 }))) {
        evs.extend(wait_for(&mut gw, "resubscription", |e| {
            matches!(e, GatewayEvent::User(UserEvent::Subscribed { generation: 2 }))
        }));
    }
    assert!(evs.iter().any(|e| matches!(e, GatewayEvent::User(UserEvent::Disconnected))), "{evs:#?}");
    assert!(evs.iter().any(|e| matches!(e, GatewayEvent::Session { up: false, .. })), "{evs:#?}");
    let st = gw.stats();
    assert_eq!((st.dropped_in_flight, st.reconnects), (3, 1), "{st:?}");
    assert_eq!(d.requests(0, "order.place").len(), 2, "never resent");
    assert!(d.requests(1, "order.place").is_empty(), "never resent on the new session");
    // The new session works.
    gw.submit(place("d-3"));
    assert_eq!(placed_id(&answers(&mut gw, 1)[0]), "d-3");
}

/// §Server Shutdown: a new session is opened (and subscribed) before the
/// old one closes; the old one's in-flight request is still answered; new
/// requests go to the new one.
#[test]
fn server_shutdown_switches_sessions_without_losing_a_request() {
    let shutdown: Policy = Arc::new(|conn, req: &Value| {
        if conn == 0 && req["params"]["newClientOrderId"] == "s-1" {
            let mut logged_on = true;
            return Some(Act::ShutdownThen(Duration::from_millis(400), default_answer(req, &mut logged_on)));
        }
        None
    });
    let d = Double::start(DoubleAuth::Hmac(SECRET), shutdown);
    let mut gw = start_hmac(&d.url(), SECRET, |_| {});
    wait_up(&mut gw);
    let s1 = gw.submit(place("s-1"));
    let evs = wait_for(&mut gw, "switch", |e| matches!(e, GatewayEvent::Session { up: true, .. }));
    assert!(evs.iter().all(|e| !matches!(e, GatewayEvent::Session { up: false, .. })), "no gap: {evs:#?}");
    let s2 = gw.submit(place("s-2"));
    let mut got = answers(&mut gw, 2);
    got.sort_by_key(|a| a.id);
    assert_eq!((got[0].id, placed_id(&got[0])), (s1, "s-1".to_string()));
    assert_eq!((got[1].id, placed_id(&got[1])), (s2, "s-2".to_string()));
    assert_eq!(d.requests(0, "order.place").len(), 1);
    assert_eq!(d.requests(1, "order.place").len(), 1, "new requests on the new session");
    assert!(d.methods(1).contains(&"userDataStream.subscribe.signature".to_string()));
    // The old connection closes only after the new one opened.
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let g = d.log.lock().unwrap();
        if let Some(closed) = g.conns[0].closed {
            assert!(g.conns[1].opened.unwrap() < closed, "second session opened before the first closed");
            assert!(g.conns[1].closed.is_none());
            break;
        }
        drop(g);
        assert!(Instant::now() < end, "the old session was never closed");
        std::thread::sleep(Duration::from_millis(5));
    }
    let st = gw.stats();
    assert_eq!((st.shutdowns_handled, st.sessions_opened, st.dropped_in_flight, st.timeouts), (1, 2, 0, 0), "{st:?}");
    assert!(gw.session_up());
}

/// §SIGNED request example (HMAC): the double checks every signature.
#[test]
fn hmac_requests_carry_a_signature_the_double_verifies() {
    let d = Double::start(DoubleAuth::Hmac(SECRET), Arc::new(|_, _: &Value| None));
    let mut gw = start_hmac(&d.url(), SECRET, |_| {});
    wait_up(&mut gw);
    gw.submit(place("h-1"));
    gw.submit(Call::OpenOrders);
    let got = answers(&mut gw, 2);
    assert!(got.iter().all(|a| a.result.is_ok()), "{got:#?}");
    assert_eq!(d.log.lock().unwrap().sig_failures, 0);
    let p = &d.requests(0, "order.place")[0]["params"];
    assert_eq!(p["apiKey"], KEY);
    assert_eq!((p["type"].as_str(), p["newOrderRespType"].as_str()), (Some("LIMIT_MAKER"), Some("RESULT")));
    assert_eq!(p["selfTradePreventionMode"], "EXPIRE_MAKER");
    assert_eq!(p["price"], "60000.5");
    assert!(p["signature"].as_str().is_some_and(|s| s.len() == 64));
    assert!(d.methods(0).iter().all(|m| m != "session.logon"), "HMAC keys cannot log on");

    // A wrong secret: the double refuses with -1022, which is a credentials error.
    let d2 = Double::start(DoubleAuth::Hmac(SECRET), Arc::new(|_, _: &Value| None));
    let mut bad = start_hmac(&d2.url(), "notTheSecret", |c| c.user_data = false);
    wait_up(&mut bad);
    bad.submit(place("h-2"));
    let a = answers(&mut bad, 1).remove(0);
    assert!(matches!(a.result, Err(BinanceError::Credentials { .. })), "{:?}", a.result);
    assert_eq!(d2.log.lock().unwrap().sig_failures, 1);
}

/// §Session Authentication: with an Ed25519 key the session logs on once,
/// subscribes with `userDataStream.subscribe`, and order requests carry no
/// key or signature; user-data events come out as UserEvents.
#[test]
fn ed25519_sessions_log_on_and_carry_user_data() {
    let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let key = || Ed25519Key::from_pkcs8_der(der.as_ref(), "generated").unwrap();
    let public = key().public_key().to_vec();
    let d = Double::start(DoubleAuth::Ed25519(public), Arc::new(|_, _: &Value| None));
    let creds = || Credentials::ed25519(KEY, key()).unwrap();
    let mut gw = OrderGateway::start(config(&d.url()), idle_rest(creds()), creds(), IpGuard::new()).unwrap();
    let evs =
        wait_for(&mut gw, "subscription", |e| matches!(e, GatewayEvent::User(UserEvent::Subscribed { generation: 1 })));
    assert!(evs.iter().any(|e| matches!(e, GatewayEvent::Session { up: true, why } if why.contains("logged on"))));
    assert_eq!(d.methods(0)[..2], ["session.logon".to_string(), "userDataStream.subscribe".to_string()]);
    gw.submit(place("e-1"));
    assert_eq!(placed_id(&answers(&mut gw, 1)[0]), "e-1");
    let p = &d.requests(0, "order.place")[0]["params"];
    assert!(p.get("signature").is_none() && p.get("apiKey").is_none() && p["timestamp"].as_i64().is_some());
    assert_eq!(d.log.lock().unwrap().sig_failures, 0);
    // user-data-stream.md §Order Update, as the session delivers it.
    d.push_event(
        0,
        json!({"e":"executionReport","E":1,"s":SYMBOL,"c":"e-1","S":"BUY","o":"LIMIT_MAKER","f":"GTC",
            "q":"0.001","p":"60000.5","x":"TRADE","X":"PARTIALLY_FILLED","r":"NONE","i":101,"l":"0.0004",
            "z":"0.0004","L":"60000.5","n":"0","N":"BTC","T":5,"t":9,"m":true,"C":""}),
    );
    let evs = wait_for(&mut gw, "execution", |e| matches!(e, GatewayEvent::User(UserEvent::Execution(_))));
    let Some(GatewayEvent::User(UserEvent::Execution(r))) = evs.last() else { unreachable!() };
    assert_eq!((r.client_id.as_str(), r.order_id, r.trade_id), ("e-1", 101, 9));
}

/// While the WebSocket API refuses connections, calls go to the REST
/// workers (here the simulator's REST side).
#[test]
fn calls_fall_back_to_rest_while_the_ws_api_is_unreachable() {
    use mmbot::sim::exchange::SimAccount;
    use mmbot::sim::{Sim, SimConfig};
    let sim = Sim::start(SimConfig {
        symbols: vec![SYMBOL.into()],
        accounts: vec![SimAccount::hmac(KEY, SECRET, &[("USDT", "1000")], "0.001")],
        ..SimConfig::default()
    })
    .unwrap();
    // A port that refuses: bound, then closed.
    let refused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut rc = RestConfig::with_base(&sim.http_base());
    rc.timeout = Duration::from_secs(5);
    let rest = RestClient::new(&rc, hmac_creds(SECRET)).unwrap();
    let url = format!("ws://127.0.0.1:{refused}/ws-api/v3");
    let mut gw = OrderGateway::start(config(&url), rest, hmac_creds(SECRET), IpGuard::new()).unwrap();
    let started = Instant::now();
    let id = gw.submit(Call::Account);
    // submit returned at once; the answer comes from a REST worker.
    assert!(started.elapsed() < Duration::from_millis(100));
    let (mut got, mut evs) = answers_and_events(&mut gw, 1);
    let a = got.remove(0);
    assert_eq!((a.id, a.via), (id, Transport::Rest));
    match &a.result {
        Ok(Reply::Account(acct)) => assert_eq!(acct.balance("USDT").unwrap().free, "1000".parse().unwrap()),
        other => panic!("{other:?}"),
    }
    if !evs.iter().any(|e| matches!(e, GatewayEvent::Session { up: false, .. })) {
        evs.extend(wait_for(&mut gw, "session down", |e| matches!(e, GatewayEvent::Session { up: false, .. })));
    }
    assert!(!gw.session_up(), "{evs:#?}");
    gw.submit(Call::OpenOrders);
    let a = answers(&mut gw, 1).remove(0);
    assert_eq!(a.via, Transport::Rest);
    assert!(matches!(a.result, Ok(Reply::Orders(_))), "{:?}", a.result);
    // The clock is measured by a REST worker and installed for everyone.
    gw.submit(Call::SyncClock);
    let a = answers(&mut gw, 1).remove(0);
    assert!(matches!(a.result, Ok(Reply::Clock { .. })), "{:?}", a.result);
    let st = gw.stats();
    assert!(st.fallbacks >= 2 && st.sent_rest == 3 && st.sent_ws == 0, "{st:?}");
    assert!(st.connect_failures >= 1, "{st:?}");
    assert!(gw.rtt_percentiles().iter().any(|(k, p)| (k.method, k.via, p.count) == ("account", "rest", 1)));
    gw.stop();
}

/// During a switch both sessions carry the subscription; an event that
/// arrives on both is handed out once.
#[test]
fn user_events_seen_on_both_sessions_during_a_switch_come_out_once() {
    let shutdown: Policy = Arc::new(|conn, req: &Value| {
        if conn == 0 && req["params"]["newClientOrderId"] == "w-1" {
            let mut logged_on = true;
            return Some(Act::ShutdownThen(Duration::from_millis(1500), default_answer(req, &mut logged_on)));
        }
        None
    });
    let d = Double::start(DoubleAuth::Hmac(SECRET), shutdown);
    let mut gw = start_hmac(&d.url(), SECRET, |_| {});
    wait_up(&mut gw);
    gw.submit(place("w-1"));
    wait_for(&mut gw, "resubscription", |e| matches!(e, GatewayEvent::User(UserEvent::Subscribed { generation: 2 })));
    let fill = json!({"e":"executionReport","E":7,"s":SYMBOL,"c":"w-1","S":"BUY","o":"LIMIT_MAKER","f":"GTC",
        "q":"0.001","p":"60000.5","x":"TRADE","X":"FILLED","r":"NONE","i":101,"l":"0.001","z":"0.001",
        "L":"60000.5","n":"0","N":"BTC","T":7,"t":10,"m":true,"C":""});
    d.push_event(0, fill.clone());
    d.push_event(1, fill);
    // Both copies are read before the old session's answer (1.5 s) comes.
    let (got, evs) = answers_and_events(&mut gw, 1);
    assert_eq!(placed_id(&got[0]), "w-1");
    let fills = evs.iter().filter(|e| matches!(e, GatewayEvent::User(UserEvent::Execution(_)))).count();
    assert_eq!(fills, 1, "{evs:#?}");
    assert_eq!(gw.stats().duplicate_events, 1);
}

/// web-socket-api.md §General API Information: connections last 24 h, so
/// the session is replaced before that (here after 400 ms), with no gap.
#[test]
fn sessions_are_renewed_before_the_connection_limit() {
    let d = Double::start(DoubleAuth::Hmac(SECRET), Arc::new(|_, _: &Value| None));
    let mut gw = start_hmac(&d.url(), SECRET, |c| c.renew_after = Duration::from_millis(400));
    wait_up(&mut gw);
    let evs = wait_for(
        &mut gw,
        "renewal",
        |e| matches!(e, GatewayEvent::Session { up: true, why } if why.contains("replaces")),
    );
    assert!(evs.iter().all(|e| !matches!(e, GatewayEvent::Session { up: false, .. })), "{evs:#?}");
    gw.submit(place("r-1"));
    assert_eq!(placed_id(&answers(&mut gw, 1)[0]), "r-1");
    assert!(gw.stats().renewals >= 1, "{:?}", gw.stats());
}

/// FACTS.md §4.8: while the IP is banned, nobody connects.
#[test]
fn nobody_connects_while_the_ip_is_banned() {
    let d = Double::start(DoubleAuth::Hmac(SECRET), Arc::new(|_, _: &Value| None));
    let guard = IpGuard::new();
    guard.on_banned(Duration::from_secs(30));
    let mut gw =
        OrderGateway::start(config(&d.url()), idle_rest(hmac_creds(SECRET)), hmac_creds(SECRET), guard).unwrap();
    let evs = wait_for(&mut gw, "session down", |e| matches!(e, GatewayEvent::Session { up: false, .. }));
    assert!(matches!(evs.last(), Some(GatewayEvent::Session { why, .. }) if why.contains("banned")), "{evs:#?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(d.log.lock().unwrap().conns.is_empty(), "connected during a ban");
    assert!(!gw.session_up());
    assert_eq!(gw.stats().sessions_opened, 0);
}

/// §Account trade history: at most 1000 trades a page; the gateway asks
/// for the next page from the last id + 1 and answers once, oldest first.
#[test]
fn my_trades_are_read_page_by_page() {
    let pages: Policy = Arc::new(|_, req: &Value| {
        if req["method"] != "myTrades" {
            return None;
        }
        let from = req["params"]["fromId"].as_i64().unwrap_or(1);
        let n = if from == 1 { 1000 } else { 3 };
        let trades: Vec<Value> = (from..from + n)
            .map(|id| {
                json!({"symbol": SYMBOL, "id": id, "orderId": req["params"]["orderId"], "orderListId": -1,
                    "price": "60000.5", "qty": "0.00001", "quoteQty": "0.6", "commission": "0",
                    "commissionAsset": "BTC", "time": 1, "isBuyer": true, "isMaker": true, "isBestMatch": true})
            })
            .collect();
        Some(Act::Answer(ok(&req["id"], Value::Array(trades))))
    });
    let d = Double::start(DoubleAuth::Hmac(SECRET), pages);
    let mut gw = start_hmac(&d.url(), SECRET, |_| {});
    wait_up(&mut gw);
    gw.submit(Call::MyTrades { order_id: 42 });
    let a = answers(&mut gw, 1).remove(0);
    match &a.result {
        Ok(Reply::Trades(t)) => {
            assert_eq!(t.len(), 1003);
            assert!(t.windows(2).all(|w| w[0].id + 1 == w[1].id) && t[0].id == 1);
            assert!(t.iter().all(|x| x.order_id == 42));
        }
        other => panic!("{other:?}"),
    }
    let reqs = d.requests(0, "myTrades");
    assert_eq!(reqs.len(), 2);
    assert_eq!((reqs[0]["params"].get("fromId"), reqs[1]["params"]["fromId"].as_i64()), (None, Some(1001)));
    assert_eq!(reqs[1]["params"]["limit"], 1000);
}
