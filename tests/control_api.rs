//! The control API and stream, in process: a server on 127.0.0.1 (an
//! ephemeral port) over a board the test publishes to, with the control
//! ring, stop flag, parameter watcher and script file of a session. Each
//! refusal is checked to be a clear 4xx that changed nothing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mmbot::config::control::ControlConfig;
use mmbot::config::Config;
use mmbot::control::token::Token;
use mmbot::control::{
    Board, Commands, ControlSender, ControlServer, ScriptNote, ScriptTarget, ServerSettings, Sources,
};
use mmbot::hot::fixed::Qty;
use mmbot::hot::strategy::StrategyParams;
use mmbot::ring::{ring, Consumer};
use mmbot::runtime::{Control, ExecStatus, HotStatus};
use mmbot::script::params::{watch_session, ParamsWatcher, SharedParams};
use mmbot::stats::latency::StageHistograms;
use serde_json::{json, Value};

const TOKEN: &str = "test-token-0123456789abcdef";

struct Rig {
    addr: SocketAddr,
    board: Arc<Board>,
    control: Consumer<Control>,
    native: Consumer<StrategyParams>,
    stop: Arc<AtomicBool>,
    script: PathBuf,
    reload: Arc<AtomicBool>,
    _watcher: ParamsWatcher,
    _server: ControlServer,
}

fn rig(tweak: impl FnOnce(&mut ServerSettings, &mut ControlConfig)) -> Rig {
    let dir = std::env::temp_dir().join(format!("mmbot-control-api-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("s.rhai");
    std::fs::write(&script, "fn quote(m) { let g = param(\"gamma\", 1.0); () }").unwrap();
    let config = Config::from_toml("[strategy.params]\ngamma = 1.5\n", "test").unwrap();
    let shared = SharedParams::new(config.params.clone());
    let (native_tx, native) = ring::<StrategyParams>(4);
    let watcher = watch_session(&config, Some(script.clone()), shared.clone(), native_tx, None, |_| {});
    let (control_tx, control) = ring::<Control>(4);
    let board = Board::new(Sources {
        title: "mmbot test BTCUSDT".into(),
        mode: "SIMULATOR · paper orders".into(),
        symbol: "BTCUSDT".into(),
        max_position: Qty(5_000_000),
        script_file: Some(script.clone()),
        histograms: Arc::new(Mutex::new(StageHistograms::new())),
        advisor: None,
        script_note: Arc::new(Mutex::new(ScriptNote::default())),
    });
    let mut cc = ControlConfig { param_bounds: BTreeMap::from([("gamma".into(), (0.1, 5.0))]), ..Default::default() };
    let mut settings = ServerSettings::from_config(&cc, "127.0.0.1:0".parse().unwrap());
    tweak(&mut settings, &mut cc);
    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    let commands = Commands {
        control: ControlSender::new(control_tx),
        stop: stop.clone(),
        params: Some(watcher.editor()),
        param_bounds: cc.param_bounds.clone(),
        script: Some(ScriptTarget {
            path: script.clone(),
            limits: config.script_limits,
            params: shared,
            max_call_ns: u64::MAX,
            reload: reload.clone(),
        }),
        advisor: None,
        ai_interval_s: None,
    };
    let token = Token::from_value("MMBOT_CONTROL_TOKEN", TOKEN).unwrap();
    let server = ControlServer::start(settings, token, board.clone(), commands).unwrap();
    board.publish(Some(&HotStatus { frames: 7, quotes: 3, ..HotStatus::default() }), &ExecStatus::default());
    Rig { addr: server.addr(), board, control, native, stop, script, reload, _watcher: watcher, _server: server }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// One raw HTTP/1.1 exchange: (status, headers, body).
fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&[u8]>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or(b"");
    req.push_str(&format!("Content-Length: {}\r\nContent-Type: application/json\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn api(r: &Rig, method: &str, path: &str, body: Value) -> (u16, Value) {
    let b = body.to_string();
    let (st, _, text) = http(r.addr, method, path, Some(TOKEN), Some(b.as_bytes()));
    (st, json_of(&text))
}

#[test]
fn no_token_or_a_wrong_one_is_401_and_changes_nothing() {
    let mut r = rig(|_, _| {});
    for token in [None, Some("wrong-token-0123456789abcdef"), Some("")] {
        for (method, path) in
            [("GET", "/api/status"), ("POST", "/api/pause"), ("POST", "/api/stop"), ("GET", "/metrics")]
        {
            let (st, head, body) = http(r.addr, method, path, token, None);
            assert_eq!(st, 401, "{method} {path} with {token:?}: {head}");
            assert!(head.contains("WWW-Authenticate: Bearer"), "{head}");
            assert!(json_of(&body)["error"].as_str().unwrap().contains("token"), "{body}");
        }
    }
    assert!(r.control.pop().is_none(), "a refused pause reached the hot thread");
    assert!(!r.stop.load(Ordering::Relaxed), "a refused stop stopped the run");
    // The page itself needs no token; it holds no state of the run.
    let (st, head, body) = http(r.addr, "GET", "/", None, None);
    assert_eq!(st, 200, "{head}");
    assert!(head.contains("text/html") && body.contains("app.js"), "{head}");
    assert_eq!(http(r.addr, "GET", "/api/openapi.yaml", None, None).0, 200);
}

#[test]
fn status_reads_the_board() {
    let r = rig(|_, _| {});
    let (st, v) = api(&r, "GET", "/api/status", json!({}));
    assert_eq!(st, 200);
    assert_eq!(v["title"], "mmbot test BTCUSDT");
    assert_eq!(v["counters"]["frames"], 7);
    assert_eq!(v["counters"]["quotes"], 3);
    assert_eq!(v["limits"]["max_position"], 0.05);
    assert_eq!(v["script"]["file"], r.script.display().to_string());
    for stage in ["tick_to_quote", "parse", "book", "strategy", "quote"] {
        assert!(v["latency"][stage]["p50_ns"].is_u64(), "{stage}: {v}");
    }
}

#[test]
fn pause_resume_and_stop_reach_the_session() {
    let mut r = rig(|_, _| {});
    assert_eq!(api(&r, "POST", "/api/pause", json!({"who": "alice"})), (200, json!({"paused": true})));
    assert_eq!(r.control.latest(), Some(Control::Pause(true)));
    assert_eq!(api(&r, "POST", "/api/resume", json!({})), (200, json!({"paused": false})));
    assert_eq!(r.control.latest(), Some(Control::Pause(false)));
    let notes = r.board.take_operator_notes();
    assert!(notes.iter().any(|n| n == "paused by api (alice)"), "{notes:?}");
    assert!(!r.stop.load(Ordering::Relaxed));
    assert_eq!(api(&r, "POST", "/api/stop", json!({})), (200, json!({"stopping": true})));
    assert!(r.stop.load(Ordering::Relaxed));
    // Once stopping, changes are refused.
    let (st, v) = api(&r, "POST", "/api/resume", json!({}));
    assert_eq!(st, 409, "{v}");
    assert!(r.control.pop().is_none());
}

#[test]
fn malformed_bodies_are_400_and_change_nothing() {
    let mut r = rig(|_, _| {});
    for (path, body) in [
        ("/api/pause", &b"{not json"[..]),
        ("/api/pause", b"[1, 2]"),
        ("/api/pause", b"{\"paused\": true}"),
        ("/api/pause", b"{\"who\": 7}"),
        ("/api/params", b"{\"params\": {\"gamma\": \"high\"}}"),
        ("/api/params", b"{\"gama\": 2.0}"),
        ("/api/params", b"\xff\xfe"),
    ] {
        let (st, head, text) = http(r.addr, "POST", path, Some(TOKEN), Some(body));
        assert_eq!(st, 400, "{path} {:?}: {head}\n{text}", String::from_utf8_lossy(body));
        assert!(json_of(&text)["error"].as_str().is_some_and(|e| !e.is_empty()), "{text}");
    }
    assert!(r.control.pop().is_none());
    let (_, v) = api(&r, "GET", "/api/params", json!({}));
    assert_eq!(v["params"], json!({"gamma": 1.5}));
    assert!(r.native.pop().is_none());
}

#[test]
fn a_param_outside_its_bounds_is_422_and_changes_nothing_then_a_good_one_applies() {
    let mut r = rig(|_, _| {});
    let (st, v) = api(&r, "GET", "/api/params", json!({}));
    assert_eq!(st, 200);
    assert_eq!(v["params"], json!({"gamma": 1.5}));
    assert_eq!(v["bounds"], json!({"gamma": [0.1, 5.0]}));
    for (body, key) in [
        (json!({"params": {"gamma": 9.0}}), "params.gamma"),
        (json!({"params": {"gamma": 2.0}, "target_spread_pct": 80.0}), "target_spread_pct"),
        (json!({"min_order_size": "0.000000001"}), "min_order_size"),
    ] {
        let (st, v) = api(&r, "POST", "/api/params", body.clone());
        assert_eq!(st, 422, "{body}: {v}");
        assert_eq!(v["key"], key, "{v}");
        assert!(v["error"].as_str().unwrap().contains(key.trim_start_matches("params.")), "{v}");
    }
    let (_, v) = api(&r, "GET", "/api/params", json!({}));
    assert_eq!(v["params"], json!({"gamma": 1.5}), "a refused edit changed a value");
    assert!(r.native.pop().is_none(), "a refused edit reached the hot thread");

    let (st, v) =
        api(&r, "POST", "/api/params", json!({"params": {"gamma": 2.0}, "target_spread_pct": 0.3, "who": "bob"}));
    assert_eq!(st, 200, "{v}");
    let applied: Vec<String> = serde_json::from_value(v["applied"].clone()).unwrap();
    assert!(applied.contains(&"gamma 1.5 -> 2.0".to_string()), "{applied:?}");
    assert!(applied.iter().any(|l| l.starts_with("strategy.target_spread_pct")), "{applied:?}");
    let (_, v) = api(&r, "GET", "/api/params", json!({}));
    assert_eq!(v["params"], json!({"gamma": 2.0}));
    assert_eq!(v["target_spread_pct"], 0.3);
    assert_eq!(r.native.latest().map(|p| p.target_spread_pct), Some(0.3));
}

#[test]
fn the_script_is_replaced_only_when_the_reload_check_passes() {
    let r = rig(|_, _| {});
    let before = std::fs::read_to_string(&r.script).unwrap();
    let (st, v) = api(&r, "PUT", "/api/script", json!({"source": "fn quote(m) { let x = ; }"}));
    assert_eq!(st, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("unchanged"), "{v}");
    let (st, v) = api(&r, "PUT", "/api/script", json!({"source": "fn quote(m) { 1.5 }"}));
    assert_eq!(st, 422, "a script whose output has the wrong shape passed: {v}");
    assert_eq!(std::fs::read_to_string(&r.script).unwrap(), before, "a refused script touched the file");
    assert!(!r.reload.load(Ordering::Relaxed));
    let good = "fn quote(m) { let g = param(\"gamma\", 1.0); () }\n// v2\n";
    let (st, v) = api(&r, "PUT", "/api/script", json!({"source": good, "who": "carol"}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(std::fs::read_to_string(&r.script).unwrap(), good);
    assert!(r.reload.load(Ordering::Relaxed));
    r.reload.store(false, Ordering::Relaxed);
    assert_eq!(api(&r, "POST", "/api/script/reload", json!({})).0, 202);
    assert!(r.reload.load(Ordering::Relaxed));
}

#[test]
fn unknown_paths_wrong_methods_and_oversized_requests_are_clear_4xx() {
    let r = rig(|_, _| {});
    let (st, head, _) = http(r.addr, "GET", "/api/nothing", Some(TOKEN), None);
    assert_eq!(st, 404, "{head}");
    let (st, head, _) = http(r.addr, "GET", "/api/pause", Some(TOKEN), None);
    assert_eq!(st, 405, "{head}");
    assert!(head.contains("Allow: POST"), "{head}");
    let big = vec![b' '; 300 * 1024];
    let (st, head, _) = http(r.addr, "POST", "/api/params", Some(TOKEN), Some(&big));
    assert_eq!(st, 413, "{head}");
    let (st, _, body) = http(r.addr, "GET", "/api/events?since=x", Some(TOKEN), None);
    assert_eq!(st, 400, "{body}");
}

#[test]
fn connections_beyond_max_clients_get_503() {
    let r = rig(|s, _| s.max_clients = 2);
    // Two connections that send nothing hold their slots (until the read deadline).
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(r.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let (st, head, _) = http(r.addr, "GET", "/api/status", Some(TOKEN), None);
    assert_eq!(st, 503, "{head}");
    drop(held);
}

#[test]
fn metrics_are_prometheus_text_behind_the_token() {
    let r = rig(|_, _| {});
    let (st, head, body) = http(r.addr, "GET", "/metrics", Some(TOKEN), None);
    assert_eq!(st, 200, "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(body.contains("# TYPE mmbot_feed_frames_total counter"), "{body}");
    assert!(body.contains("mmbot_feed_frames_total{symbol=\"BTCUSDT\"} 7"), "{body}");
    assert!(body.contains("mmbot_stage_latency_seconds_bucket{"), "{body}");
}

/// A WebSocket client of the stream (tungstenite, over our own socket).
fn stream_client(addr: SocketAddr, token: &str) -> tungstenite::WebSocket<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let url = format!("ws://{addr}/api/stream?token={token}");
    let (ws, _) = tungstenite::client(url.as_str(), s).unwrap();
    ws
}

#[test]
fn the_stream_needs_the_token_and_sends_state_and_events_in_order() {
    let r = rig(|s, _| s.stream.interval = Duration::from_millis(50));
    let s = TcpStream::connect(r.addr).unwrap();
    let url = format!("ws://{}/api/stream?token=wrong-token-0123456789", r.addr);
    match tungstenite::client(url.as_str(), s) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => assert_eq!(resp.status(), 401),
        other => panic!("a wrong token was let in: {:?}", other.map(|_| ())),
    }
    let mut ws = stream_client(r.addr, TOKEN);
    for i in 0..5 {
        r.board.push(0.1 * i as f64, "event", json!({"kind": "fill", "text": format!("fill {i}")}));
    }
    let mut kinds = std::collections::BTreeSet::new();
    let mut texts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && (texts.len() < 5 || kinds.len() < 5) {
        let m = ws.read().unwrap();
        let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        let kind = v["kind"].as_str().unwrap().to_string();
        if kind == "event" {
            texts.push(v["data"]["text"].as_str().unwrap().to_string());
        }
        kinds.insert(kind);
    }
    assert_eq!(texts, (0..5).map(|i| format!("fill {i}")).collect::<Vec<_>>());
    for k in ["status", "book", "quote", "latency", "advice"] {
        assert!(kinds.contains(k), "no {k} message: {kinds:?}");
    }
}

#[test]
fn a_slow_stream_client_is_dropped_and_never_waited_on() {
    let r = rig(|s, _| {
        s.stream.interval = Duration::from_millis(50);
        // Room enough that the fast client's thread, starved for a while on
        // a loaded machine, is not dropped too; the slow one is found out
        // by its full socket (the 2 s write deadline).
        s.stream.buffer = 1024;
    });
    // The slow client: upgrades, then never reads.
    let _slow = stream_client(r.addr, TOKEN);
    let mut fast = stream_client(r.addr, TOKEN);
    let started = Instant::now();
    let mut got = 0usize;
    let mut push_worst = Duration::ZERO;
    let payload = "x".repeat(4000);
    let mut pushed = 0;
    // Events of 4 kB until the slow one is dropped (bounded: 30 s, 100,000 events).
    while r.board.counters.stream_dropped.load(Ordering::Relaxed) == 0
        && started.elapsed() < Duration::from_secs(30)
        && pushed < 100_000
    {
        for _ in 0..5 {
            let t = Instant::now();
            r.board.push(0.0, "event", json!({"kind": "feed", "text": payload}));
            push_worst = push_worst.max(t.elapsed());
            pushed += 1;
        }
        // The fast client keeps up.
        while let Ok(m) = {
            fast.get_mut().set_read_timeout(Some(Duration::from_millis(5))).unwrap();
            fast.read()
        } {
            if m.to_text().is_ok_and(|t| t.contains("\"kind\":\"event\"")) {
                got += 1;
            }
        }
    }
    assert_eq!(r.board.counters.stream_dropped.load(Ordering::Relaxed), 1, "the slow client was not dropped");
    assert!(push_worst < Duration::from_millis(100), "publishing waited {push_worst:?} on a client");
    // The fast one gets everything (what is still on its way within 5 s),
    // and is still served.
    let drain = Instant::now() + Duration::from_secs(5);
    while got < pushed && Instant::now() < drain {
        fast.get_mut().set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        if let Ok(m) = fast.read() {
            if m.to_text().is_ok_and(|t| t.contains("\"kind\":\"event\"")) {
                got += 1;
            }
        }
    }
    assert_eq!(got, pushed, "the fast client got {got} of {pushed}");
    let (_, v) = api(&r, "GET", "/api/status", json!({}));
    assert_eq!(v["control"]["stream_clients"], 1, "{v}");
}
