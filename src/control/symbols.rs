//! The control plane of a run of several symbols (`[[symbols]]`: paper,
//! live or the demo with `--symbols N`): what the symbols dashboard shows,
//! as JSON (`GET /api/status`) and Prometheus text (`GET /metrics`), and
//! `POST /api/stop`. Such a run publishes one row per symbol from its exec
//! thread ([`crate::runtime::multi_status`]); it has no per-symbol pause,
//! parameter or script control yet, so those paths answer 404 saying so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::board::{money, px, qty};
use super::http::{Request, Response};
use crate::runtime::multi_status::SharedStatus;

/// What the server reads and where `stop` goes.
pub struct SymbolsPanel {
    pub title: String,
    pub mode: String,
    pub status: SharedStatus,
    pub stop: Arc<AtomicBool>,
    pub stopping: AtomicBool,
}

impl SymbolsPanel {
    pub fn new(title: &str, mode: &str, status: SharedStatus, stop: Arc<AtomicBool>) -> Arc<Self> {
        Arc::new(Self { title: title.into(), mode: mode.into(), status, stop, stopping: AtomicBool::new(false) })
    }

    /// `GET /api/status`: the run and one entry per symbol.
    pub fn status_json(&self) -> Value {
        let s = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        let rows: Vec<Value> = s
            .rows
            .iter()
            .map(|r| {
                let working: Vec<Value> = r
                    .working
                    .iter()
                    .map(|o| json!({"side": format!("{:?}", o.side).to_lowercase(), "price": px(o.price), "qty": qty(o.qty)}))
                    .collect();
                json!({
                    "symbol": r.symbol.to_string(),
                    "quote_asset": r.quote_asset,
                    "state": r.state.name(),
                    "best_bid": r.best_bid.map(px),
                    "best_ask": r.best_ask.map(px),
                    "mid": r.mid().map(px),
                    "spread_bps": r.spread_bps(),
                    "orders_working": working,
                    "position": qty(r.position),
                    "pnl": money(r.pnl),
                    "fees": money(r.fees),
                    "counters": {"quotes": r.quotes, "orders": r.orders, "fills": r.fills, "refused": r.refused},
                })
            })
            .collect();
        json!({
            "title": self.title,
            "mode": self.mode,
            "uptime_s": s.elapsed_s,
            "stopping": self.stopping.load(Ordering::Relaxed),
            "killed": s.killed,
            "allocator": s.allocator,
            "symbols": rows,
        })
    }

    /// Routes an authorized request.
    pub fn route(&self, req: &Request) -> Response {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/api/status") => Response::json(200, &self.status_json()),
            ("GET", "/metrics") => {
                let s = self.status.lock().map(|s| s.clone()).unwrap_or_default();
                let mut out = String::with_capacity(8 * 1024);
                super::metrics::render_symbols(&mut out, &s);
                Response::bytes(200, super::metrics::CONTENT_TYPE, out)
            }
            ("POST", "/api/stop") => {
                if !req.body.iter().all(u8::is_ascii_whitespace)
                    && serde_json::from_slice::<Value>(&req.body).map_or(true, |v| !v.is_object())
                {
                    return Response::error(400, "the body must be a JSON object (or empty)", None);
                }
                self.stopping.store(true, Ordering::Relaxed);
                self.stop.store(true, Ordering::Relaxed);
                tracing::info!(target: "mmbot::control", "control: stop asked through the API");
                Response::json(200, &json!({"stopping": true}))
            }
            (_, "/api/status") | (_, "/metrics") => {
                Response::error(405, format!("{} takes GET only", req.path), None).with_header("Allow", "GET")
            }
            (_, "/api/stop") => Response::error(405, "/api/stop takes POST only", None).with_header("Allow", "POST"),
            _ => Response::error(
                404,
                format!(
                    "{}: a run of several symbols serves GET /api/status, GET /metrics and POST /api/stop \
                     (the web dashboard, the stream and the other controls serve one-symbol sessions)",
                    req.path
                ),
                None,
            ),
        }
    }
}

/// The page a run of several symbols serves at `/`.
pub const PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>mmbot</title></head>\
<body style=\"font-family: monospace; background: #111; color: #ddd\"><h1>mmbot: several symbols</h1>\
<p>This run trades several symbols. Its control plane serves <code>GET /api/status</code> (every symbol's \
row), <code>GET /metrics</code> (Prometheus) and <code>POST /api/stop</code>, each with \
<code>Authorization: Bearer TOKEN</code>. The web dashboard serves one-symbol sessions.</p></body></html>";
