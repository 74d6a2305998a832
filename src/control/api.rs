//! The control API's routes: what each path reads or changes, and the
//! checks every change goes through before anything moves. Commands use
//! the same paths as the terminal dashboard's keys (the control ring to the
//! hot thread, the stop flag, the script watcher's reload flag) and the
//! config file's live edits (the parameter watcher), so the API can do
//! nothing the operator at the terminal could not.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::board::Board;
use super::http::{Request, Response};
use crate::ai::advisor::AdvisorHandle;
use crate::ring::Producer;
use crate::runtime::Control;
use crate::script::params::edit::{ParamsEdit, ParamsEditor};
use crate::script::params::SharedParams;
use crate::script::ScriptLimits;

/// The session's control ring, shared by the terminal dashboard and the
/// API (producers are single-writer: the mutex makes them take turns; the
/// hot thread, the consumer, never sees it).
#[derive(Clone)]
pub struct ControlSender(Arc<Mutex<Producer<Control>>>);

impl ControlSender {
    pub fn new(p: Producer<Control>) -> Self {
        Self(Arc::new(Mutex::new(p)))
    }

    pub fn send(&self, c: Control) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push_latest(c);
    }
}

/// What the script endpoints act on.
#[derive(Clone)]
pub struct ScriptTarget {
    pub path: PathBuf,
    pub limits: ScriptLimits,
    pub params: SharedParams,
    /// `[script] max_call_us` in ns, as the reload check holds versions to.
    pub max_call_ns: u64,
    /// The script watcher's "reload now" flag.
    pub reload: Arc<AtomicBool>,
}

/// Everything a change can reach.
#[derive(Clone)]
pub struct Commands {
    pub control: ControlSender,
    pub stop: Arc<AtomicBool>,
    pub params: Option<ParamsEditor>,
    pub param_bounds: BTreeMap<String, (f64, f64)>,
    pub script: Option<ScriptTarget>,
    /// The AI advisor, for `/api/ai` (`None`: no advisor).
    pub advisor: Option<Arc<AdvisorHandle>>,
    /// `[control] ai_interval_s` (`None`: the configured interval to ten
    /// times it).
    pub ai_interval_s: Option<(f64, f64)>,
}

/// A change's `who`, checked.
fn who(body: &Value) -> Result<String, Response> {
    match body.get("who") {
        None | Some(Value::Null) => Ok("api".into()),
        Some(Value::String(s)) if (1..=64).contains(&s.chars().count()) && !s.chars().any(char::is_control) => {
            Ok(format!("api ({s})"))
        }
        Some(v) => {
            Err(Response::error(400, format!("who: {v} must be a string of 1 to 64 printable characters"), Some("who")))
        }
    }
}

/// The body as a JSON object (an empty body is `{}`).
fn body_object(req: &Request) -> Result<Value, Response> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Response::error(400, "the body must be a JSON object", None)),
        Err(e) => Err(Response::error(400, format!("the body is not valid JSON: {e}"), None)),
    }
}

/// Routes an authorized request.
pub fn route(req: &Request, board: &Board, cmd: &Commands) -> Response {
    let method = req.method.as_str();
    let allow = |m: &str| Response::error(405, format!("{} takes {m} only", req.path), None).with_header("Allow", m);
    match req.path.as_str() {
        "/api/status" => match method {
            "GET" => Response::json(200, &board.status()),
            _ => allow("GET"),
        },
        "/api/events" => match method {
            "GET" => events(req, board),
            _ => allow("GET"),
        },
        "/api/params" => match method {
            "GET" => get_params(cmd),
            "POST" => post_params(req, board, cmd),
            _ => allow("GET, POST"),
        },
        "/api/pause" | "/api/resume" | "/api/cancel-all" | "/api/stop" | "/api/script/reload" => match method {
            "POST" => command(req, board, cmd),
            _ => allow("POST"),
        },
        "/api/ai" => match method {
            "GET" => get_ai(cmd),
            "POST" => post_ai(req, board, cmd),
            _ => allow("GET, POST"),
        },
        "/api/script" => match method {
            "PUT" => put_script(req, board, cmd),
            _ => allow("PUT"),
        },
        _ => Response::error(404, format!("no such path: {}; see GET /api/openapi.yaml", req.path), None),
    }
}

fn events(req: &Request, board: &Board) -> Response {
    let since = match req.query_param("since") {
        None => 0,
        Some(s) => match s.parse::<u64>() {
            Ok(v) => v,
            Err(_) => return Response::error(400, format!("since: {s:?} must be a whole number"), Some("since")),
        },
    };
    let (entries, oldest) = board.entries_after(since, 1000);
    let list: Vec<Value> =
        entries.into_iter().map(|e| json!({"seq": e.seq, "t_s": e.t_s, "kind": e.kind, "data": e.data})).collect();
    Response::json(200, &json!({"oldest": oldest, "next": board.next_seq(), "entries": list}))
}

/// A change's body read as `T`, with its `who`; refused (400, or 409 once
/// the run is stopping) before anything changes.
fn change_body<T: serde::de::DeserializeOwned>(
    req: &Request,
    board: &Board,
    call: &str,
) -> Result<(T, String), Response> {
    let raw = body_object(req)?;
    let who = who(&raw)?;
    let body = serde_json::from_value(raw)
        .map_err(|e| Response::error(400, format!("the body does not fit {call}: {e}"), None))?;
    if board.stopping.load(Ordering::Relaxed) {
        return Err(refused(board, 409, "the run is stopping; nothing changes now".into(), None));
    }
    Ok((body, who))
}

fn refused(board: &Board, status: u16, message: String, key: Option<&str>) -> Response {
    board.counters.refused.fetch_add(1, Ordering::Relaxed);
    Response::error(status, message, key)
}

fn command(req: &Request, board: &Board, cmd: &Commands) -> Response {
    let body = match body_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(k) = body.as_object().and_then(|m| m.keys().find(|k| *k != "who")) {
        return Response::error(400, format!("unknown field {k:?}: this call takes only \"who\""), Some(k));
    }
    let who = match who(&body) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let stopped = board.stopping.load(Ordering::Relaxed);
    if stopped && req.path != "/api/stop" {
        return refused(board, 409, "the run is stopping; nothing changes now".into(), None);
    }
    match req.path.as_str() {
        "/api/pause" => {
            pause(board, cmd, true, &who);
            Response::json(200, &json!({"paused": true}))
        }
        "/api/resume" => {
            pause(board, cmd, false, &who);
            Response::json(200, &json!({"paused": false}))
        }
        "/api/cancel-all" => {
            pause(board, cmd, true, &who);
            // The hot thread pulls the quotes; the exchange side cancels and
            // reports. Wait (bounded) for its report of no working order.
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut working = u64::MAX;
            while Instant::now() < deadline {
                let (hot, _) = board.snapshots();
                working = hot.map_or(0, |h| h.working.bid.is_some() as u64 + h.working.ask.is_some() as u64);
                if working == 0 && hot.is_some_and(|h| h.paused) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Response::json(200, &json!({"paused": true, "working": working}))
        }
        "/api/stop" => {
            board.note_operator(format!("stop asked by {who}"));
            board.stopping.store(true, Ordering::Relaxed);
            cmd.stop.store(true, Ordering::Relaxed);
            Response::json(200, &json!({"stopping": true}))
        }
        _ => match &cmd.script {
            // "/api/script/reload"
            Some(s) => {
                s.reload.store(true, Ordering::Relaxed);
                board.note_operator(format!("reload of {} asked by {who}", s.path.display()));
                Response::json(202, &json!({"reload": "asked", "file": s.path.display().to_string()}))
            }
            None => refused(board, 409, "no script to reload: this run uses the native strategy".into(), None),
        },
    }
}

fn pause(board: &Board, cmd: &Commands, on: bool, who: &str) {
    cmd.control.send(Control::Pause(on));
    board.note_operator(format!("{} by {who}", if on { "paused" } else { "resumed" }));
}

fn get_params(cmd: &Commands) -> Response {
    let Some(editor) = &cmd.params else {
        return Response::error(409, "this run has no live parameters", None);
    };
    let r = editor.running();
    let bounds: serde_json::Map<String, Value> =
        cmd.param_bounds.iter().map(|(k, (lo, hi))| (k.clone(), json!([lo, hi]))).collect();
    Response::json(
        200,
        &json!({
            "params": r.params,
            "target_spread_pct": r.native.target_spread_pct,
            "min_order_size": r.native.min_order_size.to_string(),
            "bounds": bounds,
        }),
    )
}

/// `POST /api/params` as it arrives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsBody {
    #[serde(default)]
    params: BTreeMap<String, Option<f64>>,
    target_spread_pct: Option<f64>,
    min_order_size: Option<DecimalText>,
    #[serde(default)]
    #[allow(dead_code)] // checked by `who` from the raw value
    who: Option<Value>,
}

/// A decimal written as a string or a number, as in the config file.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DecimalText {
    Text(String),
    Number(serde_json::Number),
}

fn post_params(req: &Request, board: &Board, cmd: &Commands) -> Response {
    let Some(editor) = &cmd.params else {
        return Response::error(409, "this run has no live parameters", None);
    };
    let (body, who): (ParamsBody, String) = match change_body(req, board, "POST /api/params") {
        Ok(b) => b,
        Err(r) => return r,
    };
    let edit = ParamsEdit {
        params: body.params,
        target_spread_pct: body.target_spread_pct,
        min_order_size: body.min_order_size.map(|d| match d {
            DecimalText::Text(s) => s,
            DecimalText::Number(n) => n.to_string(),
        }),
    };
    match editor.edit(&edit, &cmd.param_bounds, &who) {
        Ok((changes, notes)) => {
            let applied: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
            for line in &applied {
                tracing::info!(target: "mmbot::params", "params: {line} ({who})");
                board.note_operator(format!("params: {line} ({who})"));
            }
            for n in &notes {
                tracing::warn!(target: "mmbot::params", "params: {n}");
            }
            Response::json(200, &json!({"applied": applied, "notes": notes}))
        }
        Err(e) => refused(board, 422, e.message, Some(&e.key)),
    }
}

/// `PUT /api/script` as it arrives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptBody {
    source: String,
    #[serde(default)]
    #[allow(dead_code)] // checked by `who` from the raw value
    who: Option<Value>,
}

fn put_script(req: &Request, board: &Board, cmd: &Commands) -> Response {
    let Some(target) = &cmd.script else {
        return refused(board, 409, "this run uses the native strategy: there is no script to replace".into(), None);
    };
    let (body, who): (ScriptBody, String) = match change_body(req, board, "PUT /api/script") {
        Ok(b) => b,
        Err(r) => return r,
    };
    let source = body.source.as_str();
    // The reload check a file edit goes through: compile with the run's
    // limits and parameters, then the trial run (sample and edge states).
    // The watcher runs it again with the real states it has seen.
    let (_, values) = target.params.current();
    let file = target.path.display().to_string();
    let engine = crate::script::engine(&target.limits, &values, None);
    let checked = crate::script::compile(&engine, &file, source)
        .and_then(|s| crate::script::trial::check(&s, &target.limits, &values, target.max_call_ns, &[]).map(|_| ()));
    if let Err(e) = checked {
        return refused(board, 422, format!("the new script was refused, the file is unchanged: {e}"), Some("source"));
    }
    let tmp = target.path.with_extension("rhai.mmbot-new");
    let written = std::fs::write(&tmp, source).and_then(|_| std::fs::rename(&tmp, &target.path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Response::error(500, format!("writing {file} failed: {e}; the running script is unchanged"), None);
    }
    target.reload.store(true, Ordering::Relaxed);
    board.note_operator(format!("script {file} replaced by {who}"));
    Response::json(200, &json!({"replaced": file, "hash": format!("{:016x}", crate::script::fnv1a(source.as_bytes()))}))
}

/// The advisor's interval bounds: `[control] ai_interval_s`, else from the
/// configured interval (no more often than the config says) to ten times it.
fn ai_bounds(cmd: &Commands, configured: Duration) -> (f64, f64) {
    cmd.ai_interval_s.unwrap_or_else(|| {
        let c = configured.as_secs_f64();
        (c, c * 10.0)
    })
}

fn get_ai(cmd: &Commands) -> Response {
    let Some(t) = cmd.advisor.as_ref().and_then(|a| a.tuning()) else {
        return Response::error(409, "this run has no AI advisor ([ai] provider = \"none\")", None);
    };
    let (lo, hi) = ai_bounds(cmd, t.configured());
    Response::json(
        200,
        &json!({
            "paused": t.paused(),
            "interval_s": t.step().as_secs_f64(),
            "configured_interval_s": t.configured().as_secs_f64(),
            "bounds": {"interval_s": [lo, hi]},
        }),
    )
}

/// `POST /api/ai` as it arrives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AiBody {
    paused: Option<bool>,
    interval_s: Option<f64>,
    #[serde(default)]
    #[allow(dead_code)] // checked by `who` from the raw value
    who: Option<Value>,
}

fn post_ai(req: &Request, board: &Board, cmd: &Commands) -> Response {
    let Some(t) = cmd.advisor.as_ref().and_then(|a| a.tuning()) else {
        return refused(board, 409, "this run has no AI advisor ([ai] provider = \"none\")".into(), None);
    };
    let (body, who): (AiBody, String) = match change_body(req, board, "POST /api/ai") {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (lo, hi) = ai_bounds(cmd, t.configured());
    if let Some(i) = body.interval_s {
        if !(lo..=hi).contains(&i) {
            return refused(
                board,
                422,
                format!(
                    "interval_s: {i} is outside its bounds [{lo}, {hi}] s ([control] ai_interval_s, or [ai] \
                     interval to ten times it); nothing changed"
                ),
                Some("interval_s"),
            );
        }
    }
    // Checked whole: now apply.
    if let Some(i) = body.interval_s {
        t.set_step(Duration::from_secs_f64(i));
        board.note_operator(format!("ai: interval {i} s, set by {who}"));
    }
    if let Some(p) = body.paused {
        t.set_paused(p);
        board.note_operator(format!("ai: advice {} by {who}", if p { "paused" } else { "resumed" }));
    }
    Response::json(200, &json!({"paused": t.paused(), "interval_s": t.step().as_secs_f64()}))
}
