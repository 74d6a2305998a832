//! An independent test double of the LLM gateways mmbot talks to, written
//! from the providers' documentation (not from mmbot's code): OpenAI Chat
//! Completions and Models at any base path (OpenAI, Gemini's and Bedrock's
//! OpenAI-compatible endpoints, gateways), and Anthropic's Messages API.
//! Citations are in `openai.rs` and `anthropic.rs`.
//!
//! Plain blocking std networking on 127.0.0.1:0, one thread per connection,
//! HTTP/1.1 with Content-Length and keep-alive. Tests script a queue of
//! per-request behaviours (reply text, fault, delay, cached tokens) and read
//! back every request (method, path, headers, body, arrival time) and the
//! usage the double reported for it.
//!
//! Scripting rule: only a request that passes the provider's own validation
//! (key, required fields, parameters the model accepts) takes a behaviour off
//! the queue; a request the real API would refuse is refused the same way and
//! leaves the script untouched. So a client that downgrades `response_format`
//! after a 400 gets the next scripted behaviour on its retry.
//!
//! Use from a test file as `mod llm_double;`.

#![allow(dead_code, unused_imports)]

pub mod anthropic;
pub mod http;
pub mod openai;
pub mod script;
pub mod usage;

pub use script::{http_date, Behaviour, Fault, Flavour, RetryAfter, ADVICE_JSON};
pub use usage::{Usage, REASONING_TOKENS};

use http::{read_request, write_response, ReadError, Request, Response};
use std::collections::{BTreeMap, VecDeque};
use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// The key the double accepts unless told otherwise (long enough that a
/// printed prefix or suffix can be told from the whole).
pub const DEFAULT_KEY: &str = "sk-double-0123456789abcdefGHIJKLMNOPqrstuvwxyz-secret";
/// Models served (listed by /models; others get 404 model_not_found).
pub const DEFAULT_MODELS: &[&str] = &[
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4o-mini",
    "gpt-5",
    "gpt-5-mini",
    "o4-mini",
    "deepseek-chat",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "gemini-2.5-flash",
    "openai.gpt-oss-20b-1:0",
];
/// Connections served at once; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 64;
/// A kept-alive connection idle this long is closed (servers do that too).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests recorded at most (older ones are dropped from the front).
pub const MAX_RECORDED: usize = 10_000;

/// The gateway's fixed configuration, as the handlers see it.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub key: String,
    pub models: Vec<String>,
    pub flavours: BTreeMap<String, Flavour>,
    started: SystemTime,
}

impl Gateway {
    pub fn created_unix(&self) -> u64 {
        self.started.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
}

/// What a handler decided for one request.
#[derive(Debug)]
pub struct Answer {
    pub response: Response,
    /// The usage the body reports (None: no usage in the body, or an error).
    pub usage: Option<Usage>,
    pub delay: Duration,
    /// Close the connection instead of answering.
    pub hang_up: bool,
}

impl Answer {
    pub fn now(response: Response) -> Answer {
        Answer { response, usage: None, delay: Duration::ZERO, hang_up: false }
    }
}

/// One request as the double saw it, and what it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub seq: u64,
    pub conn: u64,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// The status answered (0: hung up).
    pub status: u16,
    /// The usage reported in the answer's body.
    pub usage: Option<Usage>,
    /// The response body's size in bytes.
    pub response_bytes: usize,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
    /// The body as JSON (Null when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    /// A chat/messages request (not /models).
    pub fn is_completion(&self) -> bool {
        self.method == "POST" && (self.path.ends_with("/chat/completions") || self.path.ends_with("/messages"))
    }
}

struct State {
    gateway: Gateway,
    queue: VecDeque<Behaviour>,
    default: Behaviour,
    records: Vec<Recorded>,
    served: u64,
}

/// A running double. Dropping it stops accepting and ends idle connections.
pub struct LlmDouble {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    epoch: Instant,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl LlmDouble {
    /// Start on 127.0.0.1:0 with `DEFAULT_KEY` and `DEFAULT_MODELS`.
    pub fn start() -> LlmDouble {
        LlmDouble::with_key(DEFAULT_KEY)
    }

    pub fn with_key(key: &str) -> LlmDouble {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for the LLM double");
        let addr = listener.local_addr().expect("the double's local address");
        let state = Arc::new(Mutex::new(State {
            gateway: Gateway {
                key: key.to_string(),
                models: DEFAULT_MODELS.iter().map(|m| m.to_string()).collect(),
                flavours: BTreeMap::new(),
                started: SystemTime::now(),
            },
            queue: VecDeque::new(),
            default: Behaviour::ok(),
            records: Vec::new(),
            served: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let accept = std::thread::Builder::new()
            .name("llm-double-accept".into())
            .spawn(move || accept_loop(listener, st, sp))
            .expect("spawn the double's accept thread");
        LlmDouble { addr, state, stop, accept: Some(accept), epoch: Instant::now() }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://127.0.0.1:PORT` (no path).
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// `http://127.0.0.1:PORT/v1`: an OpenAI-style base URL.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.origin())
    }
    pub fn key(&self) -> String {
        lock(&self.state).gateway.key.clone()
    }
    /// When the double started (request arrival times are measured from it).
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Queue behaviours for the next valid requests, in order.
    pub fn push(&self, b: Behaviour) {
        lock(&self.state).queue.push_back(b);
    }
    pub fn push_all(&self, bs: impl IntoIterator<Item = Behaviour>) {
        lock(&self.state).queue.extend(bs);
    }
    /// What valid requests get once the queue is empty.
    pub fn set_default(&self, b: Behaviour) {
        lock(&self.state).default = b;
    }
    /// Override a model's flavour (otherwise by name: gpt-5*/o-series reasoning).
    pub fn set_flavour(&self, model: &str, f: Flavour) {
        let mut s = lock(&self.state);
        s.gateway.flavours.insert(model.to_string(), f);
        if !s.gateway.models.iter().any(|m| m == model) {
            s.gateway.models.push(model.to_string());
        }
    }
    /// Replace the served model list.
    pub fn set_models(&self, models: &[&str]) {
        lock(&self.state).gateway.models = models.iter().map(|m| m.to_string()).collect();
    }
    /// Behaviours still queued.
    pub fn queued(&self) -> usize {
        lock(&self.state).queue.len()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).records.clone()
    }
    /// The chat/messages requests only.
    pub fn completions(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(Recorded::is_completion).collect()
    }
    /// Sum of the usage the double reported, over all answers.
    pub fn usage_total(&self) -> Usage {
        let mut t = Usage { prompt: 0, cached: 0, completion: 0, reasoning: 0 };
        for u in self.requests().iter().filter_map(|r| r.usage) {
            t.prompt += u.prompt;
            t.cached += u.cached;
            t.completion += u.completion;
            t.reasoning += u.reasoning;
        }
        t
    }
    /// Wait (bounded) until at least `n` requests were recorded.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if lock(&self.state).records.len() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        lock(&self.state).records.len() >= n
    }
}

impl Drop for LlmDouble {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    let live = Arc::new(AtomicUsize::new(0));
    let mut conn_id = 0u64;
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if live.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            drop(stream);
            continue;
        }
        conn_id += 1;
        live.fetch_add(1, Ordering::SeqCst);
        let (st, sp, lv, id) = (state.clone(), stop.clone(), live.clone(), conn_id);
        let spawned = std::thread::Builder::new().name(format!("llm-double-conn{id}")).spawn(move || {
            serve_connection(stream, id, &st, &sp);
            lv.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn serve_connection(stream: TcpStream, conn: u64, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    while !stop.load(Ordering::SeqCst) {
        let req = match read_request(&mut reader) {
            Ok(r) => r,
            Err(ReadError::Closed) => return,
            Err(ReadError::Bad(status, why)) => {
                let resp = openai::error(status, why, "invalid_request_error", None, None);
                let _ = write_response(&mut writer, &resp, true);
                return;
            }
        };
        let at = Instant::now();
        let answer = route(state, &req);
        // A slow gateway: sleep in small steps so Drop is not held up.
        let end = Instant::now() + answer.delay;
        while Instant::now() < end && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5).min(end.saturating_duration_since(Instant::now())));
        }
        let status = if answer.hang_up { 0 } else { answer.response.status };
        {
            let mut s = lock(state);
            s.served += 1;
            let seq = s.served;
            if s.records.len() >= MAX_RECORDED {
                s.records.remove(0);
            }
            s.records.push(Recorded {
                seq,
                conn,
                method: req.method.clone(),
                path: req.path().to_string(),
                headers: req.headers.clone(),
                body: req.body.clone(),
                at,
                status,
                usage: answer.usage,
                response_bytes: answer.response.body.len(),
            });
        }
        if answer.hang_up {
            return;
        }
        let close = req.wants_close();
        if write_response(&mut writer, &answer.response, close).is_err() || close {
            return;
        }
    }
}

/// Pick the API by path (any base prefix) and method.
fn route(state: &Mutex<State>, req: &Request) -> Answer {
    let gateway = lock(state).gateway.clone();
    let mut take = || {
        let mut s = lock(state);
        let b = s.queue.pop_front().unwrap_or_else(|| s.default.clone());
        (s.served + 1, b)
    };
    let path = req.path();
    let anthropic_headers = req.header("anthropic-version").is_some() || req.header("x-api-key").is_some();
    match (req.method.as_str(), path) {
        ("POST", p) if p.ends_with("/chat/completions") => openai::handle(&gateway, req, &mut take),
        ("POST", p) if p.ends_with("/messages") => anthropic::handle(&gateway, req, &mut take),
        ("GET", p) if p.ends_with("/models") && anthropic_headers && !p.contains("/openai") => {
            Answer::now(anthropic::list_models(&gateway, req))
        }
        ("GET", p) if p.ends_with("/models") => Answer::now(openai::list_models(&gateway, req)),
        (_, p) if p.ends_with("/chat/completions") || p.ends_with("/messages") || p.ends_with("/models") => {
            Answer::now(openai::error(
                405,
                &format!("Method {} not allowed on {p}", req.method),
                "invalid_request_error",
                None,
                None,
            ))
        }
        (_, p) => Answer::now(openai::error(
            404,
            &format!("Invalid URL ({} {p})", req.method),
            "invalid_request_error",
            None,
            None,
        )),
    }
}
