//! The advice log: one JSON line per advisor call, so advice can be judged
//! against what the market did next, and replayed.
//!
//! Each line holds the wall time, the hot-path time of the market state the
//! model was given, provider, model, latency, attempts, tokens, cost, the raw
//! reply, the parsed advice (or the error), and that market state (top of
//! book, features, ten levels a side, position). Prices are exact decimal
//! strings, as everywhere in mmbot. [`CallMeta`] adds what the advisor knows
//! beyond one reply: `snapshot_ns`, `route`, `fallback`, `estimated`,
//! `cached_tokens`, `repaired`, `dropped` and `age_ms` (every route asked in
//! a tick gets a line of its own, failed ones with their latency and
//! attempts). Lines written before these keys existed read the same way.
//!
//! [`AdviceReplay`] reads a log back and hands its advice out in simulated
//! time, each when it reached the hot thread live (its snapshot's time plus
//! its age on arrival; `received_ns` in logs without `age_ms`), with its
//! lifetime counted from its snapshot, so a backtest over the recording of
//! the same session sees the advice the live bot saw, deterministically.
//! Advice the live advisor dropped (too old on arrival) is not replayed.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::ai::advisor::MarketSnapshot;
use crate::ai::reply::ParsedReply;
use crate::ai::AiError;
use crate::hot::advice::{Advice, AdviceSource, Direction, SpreadState, Volatility};
use crate::hot::msg::Level;

pub fn spread_name(s: SpreadState) -> &'static str {
    match s {
        SpreadState::Narrow => "narrow",
        SpreadState::Normal => "normal",
        SpreadState::Wide => "wide",
    }
}

pub fn volatility_name(v: Volatility) -> &'static str {
    match v {
        Volatility::Low => "low",
        Volatility::Medium => "medium",
        Volatility::High => "high",
    }
}

pub fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Up => "up",
        Direction::Down => "down",
        Direction::Sideways => "sideways",
        Direction::Neutral => "neutral",
    }
}

pub fn source_name(s: AdviceSource) -> &'static str {
    match s {
        AdviceSource::None => "none",
        AdviceSource::Offline => "offline",
        AdviceSource::Llm => "llm",
    }
}

/// Advice as a JSON object.
pub fn advice_json(a: &Advice) -> Value {
    json!({
        "spread": spread_name(a.spread),
        "volatility": volatility_name(a.volatility),
        "direction": direction_name(a.direction),
        "confidence": a.confidence,
        "multiplier": a.multiplier,
        "source": source_name(a.source),
        "received_ns": a.received_ns,
        "ttl_ns": a.ttl_ns,
        "apply_multiplier": a.apply_multiplier,
    })
}

/// Advice back from [`advice_json`]'s shape.
pub fn advice_from_json(v: &Value) -> Option<Advice> {
    let s = |k: &str| v[k].as_str();
    Some(Advice {
        spread: match s("spread")? {
            "narrow" => SpreadState::Narrow,
            "normal" => SpreadState::Normal,
            "wide" => SpreadState::Wide,
            _ => return None,
        },
        volatility: match s("volatility")? {
            "low" => Volatility::Low,
            "medium" => Volatility::Medium,
            "high" => Volatility::High,
            _ => return None,
        },
        direction: match s("direction")? {
            "up" => Direction::Up,
            "down" => Direction::Down,
            "sideways" => Direction::Sideways,
            "neutral" => Direction::Neutral,
            _ => return None,
        },
        confidence: v["confidence"].as_u64()?.min(100) as u8,
        multiplier: v["multiplier"].as_f64()?,
        source: match s("source")? {
            "llm" => AdviceSource::Llm,
            "offline" => AdviceSource::Offline,
            _ => AdviceSource::None,
        },
        received_ns: v["received_ns"].as_i64()?,
        ttl_ns: v["ttl_ns"].as_i64()?,
        // Absent before `[ai] apply_multiplier` existed: labels only.
        apply_multiplier: v["apply_multiplier"].as_bool().unwrap_or(false),
    })
}

fn levels_json(levels: &[Level]) -> Value {
    Value::Array(levels.iter().map(|l| json!([l.price.to_string(), l.qty.to_string()])).collect())
}

/// The market state a model was given.
pub fn market_json(s: &MarketSnapshot) -> Value {
    let f = &s.features;
    json!({
        "symbol": s.symbol.as_str(),
        "time_ns": s.time_ns,
        "update_id": f.update_id,
        "best_bid": [f.best_bid.price.to_string(), f.best_bid.qty.to_string()],
        "best_ask": [f.best_ask.price.to_string(), f.best_ask.qty.to_string()],
        "mid": f.mid,
        "microprice": f.microprice,
        "spread_bps": f.spread_bps,
        "imbalance": f.imbalance,
        "volatility_bps": f.volatility_bps,
        "trade_flow": f.trade_flow,
        "position": s.position.to_string(),
        "max_position": s.max_position.to_string(),
        "bids": levels_json(s.bids()),
        "asks": levels_json(s.asks()),
    })
}

/// One call, as logged.
#[derive(Debug, Clone, Copy)]
pub struct LogEntry<'a> {
    /// Wall-clock ns (Unix epoch) when the call ended.
    pub wall_ns: i64,
    pub provider: &'a str,
    pub model: &'a str,
    pub latency: Option<Duration>,
    pub attempts: u32,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub usage_reported: bool,
    pub cost_usd: Option<f64>,
    pub raw: Option<&'a str>,
    pub reply: Option<&'a ParsedReply>,
    pub advice: Option<Advice>,
    pub error: Option<&'a str>,
    pub market: &'a MarketSnapshot,
}

/// Why advice that came back did not reach the hot thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Its snapshot was older than `[ai] max_age_s` when the reply arrived.
    Late,
    /// No call was made: every route's projected spend passed `[ai]
    /// daily_budget_usd` (logged once per UTC day, when calls stop).
    OverBudget,
}

impl Dropped {
    pub fn name(self) -> &'static str {
        match self {
            Self::Late => "late",
            Self::OverBudget => "over_budget",
        }
    }
}

/// What the advisor adds to a [`LogEntry`]: the route, how the cost was
/// known, and what became of the advice.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallMeta<'a> {
    /// "openai gpt-5-mini"; empty: `provider model`.
    pub route: &'a str,
    /// 0 the primary, i the i-th `[[ai.fallback]]`.
    pub fallback: usize,
    /// The cost is an estimate (no `usage`, timed out, cut off).
    pub estimated: bool,
    pub cached_tokens: u64,
    /// The reply was repaired by a retry with the validation error.
    pub repaired: bool,
    pub dropped: Option<Dropped>,
    /// Hot-path ns from the snapshot to the reply's arrival.
    pub age_ns: Option<i64>,
}

impl LogEntry<'_> {
    /// The line, with the advisor's keys at their defaults (primary route,
    /// nothing dropped).
    pub fn to_json(&self) -> Value {
        self.to_json_with(&CallMeta::default())
    }

    /// The line with `meta`'s keys.
    pub fn to_json_with(&self, meta: &CallMeta<'_>) -> Value {
        let route = if meta.route.is_empty() { format!("{} {}", self.provider, self.model) } else { meta.route.into() };
        json!({
            "time_ns": self.wall_ns,
            "hot_time_ns": self.market.time_ns,
            "provider": self.provider,
            "model": self.model,
            "latency_ms": self.latency.map(|d| d.as_secs_f64() * 1e3),
            "attempts": self.attempts,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "usage_reported": self.usage_reported,
            "cost_usd": self.cost_usd,
            "raw": self.raw,
            "advice": self.advice.as_ref().map(advice_json),
            "reply": self.reply.map(|r| json!({
                "liquidity_concentration": r.liquidity,
                "risk_signals": r.risk_signals,
                "reason": r.reason,
                "defaulted": r.defaulted,
                "clamped": r.clamped,
            })),
            "error": self.error,
            "market": market_json(self.market),
            "snapshot_ns": self.market.time_ns,
            "route": route,
            "fallback": meta.fallback,
            "estimated": meta.estimated,
            "cached_tokens": meta.cached_tokens,
            "repaired": meta.repaired,
            "dropped": meta.dropped.map(Dropped::name),
            "age_ms": meta.age_ns.map(|n| n as f64 / 1e6),
        })
    }
}

/// An open advice log (appended to; one flushed line per call, so a killed
/// bot loses at most the line being written).
pub struct AdviceLog {
    path: PathBuf,
    out: BufWriter<File>,
}

impl AdviceLog {
    pub fn open(path: &Path) -> Result<Self, AiError> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|source| AiError::Log {
            path: path.display().to_string(),
            action: "opened for appending",
            source,
        })?;
        Ok(Self { path: path.to_path_buf(), out: BufWriter::new(file) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, entry: &LogEntry<'_>) -> Result<(), AiError> {
        self.write_with(entry, &CallMeta::default())
    }

    /// Appends `entry` with the advisor's keys from `meta`.
    pub fn write_with(&mut self, entry: &LogEntry<'_>, meta: &CallMeta<'_>) -> Result<(), AiError> {
        let mut line = entry.to_json_with(meta).to_string();
        line.push('\n');
        self.out.write_all(line.as_bytes()).and_then(|()| self.out.flush()).map_err(|source| AiError::Log {
            path: self.path.display().to_string(),
            action: "written",
            source,
        })
    }
}

/// Advice as the log says it reached the hot thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedAdvice {
    /// Hot-path time it reached the hot thread: its snapshot's time plus
    /// `age_ms` (`received_ns` in logs without `age_ms`).
    pub arrived_ns: i64,
    pub advice: Advice,
}

/// The advice in a log, in file order (calls that gave none, and advice the
/// advisor dropped, are skipped). A last line cut short (a killed writer) is
/// ignored; any other bad line is an error naming it.
pub fn read_advice(path: &Path) -> Result<Vec<Advice>, AiError> {
    Ok(read_logged_advice(path)?.into_iter().map(|l| l.advice).collect())
}

/// [`read_advice`], with when each piece reached the hot thread.
pub fn read_logged_advice(path: &Path) -> Result<Vec<LoggedAdvice>, AiError> {
    let file = File::open(path).map_err(|source| AiError::Log {
        path: path.display().to_string(),
        action: "opened",
        source,
    })?;
    let lines: Vec<String> = BufReader::new(file).lines().collect::<Result<_, _>>().map_err(|source| AiError::Log {
        path: path.display().to_string(),
        action: "read",
        source,
    })?;
    let mut out = Vec::new();
    let last = lines.iter().rposition(|l| !l.trim().is_empty()).unwrap_or(0);
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) if i == last => break,
            Err(e) => {
                return Err(AiError::LogFormat { path: path.display().to_string(), line: i + 1, detail: e.to_string() })
            }
        };
        if !v["dropped"].is_null() {
            continue;
        }
        match &v["advice"] {
            Value::Null => {}
            a => {
                let advice = advice_from_json(a).ok_or_else(|| AiError::LogFormat {
                    path: path.display().to_string(),
                    line: i + 1,
                    detail: "its \"advice\" object lacks a field or has an unknown value".to_string(),
                })?;
                let age_ns =
                    v["age_ms"].as_f64().filter(|m| m.is_finite() && *m >= 0.0).map_or(0, |m| (m * 1e6) as i64);
                out.push(LoggedAdvice { arrived_ns: advice.received_ns.saturating_add(age_ns), advice });
            }
        }
    }
    Ok(out)
}

/// A log's advice handed out in simulated time.
#[derive(Debug, Clone)]
pub struct AdviceReplay {
    entries: Vec<LoggedAdvice>,
    next: usize,
}

impl AdviceReplay {
    /// `entries` in any order; each is handed out at its `received_ns`.
    pub fn new(entries: Vec<Advice>) -> Self {
        Self::dated(entries.into_iter().map(|advice| LoggedAdvice { arrived_ns: advice.received_ns, advice }).collect())
    }

    /// `entries` in any order; each is handed out at its `arrived_ns`.
    pub fn dated(mut entries: Vec<LoggedAdvice>) -> Self {
        entries.sort_by_key(|l| l.arrived_ns);
        Self { entries, next: 0 }
    }

    pub fn load(path: &Path) -> Result<Self, AiError> {
        Ok(Self::dated(read_logged_advice(path)?))
    }

    /// The newest advice that arrived by `now_ns` and was not handed out yet
    /// (older ones it overtook are skipped: latest wins, as live).
    pub fn due(&mut self, now_ns: i64) -> Option<Advice> {
        let mut out = None;
        while let Some(l) = self.entries.get(self.next).filter(|l| l.arrived_ns <= now_ns) {
            out = Some(l.advice);
            self.next += 1;
        }
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::advisor::sample_snapshot;

    #[test]
    fn advice_round_trips_and_replays_in_simulated_time() {
        let dir = std::env::temp_dir().join(format!("mmbot-advice-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("advice.jsonl");
        let _ = std::fs::remove_file(&path);
        let m = sample_snapshot();
        let a = |t: i64, s: SpreadState| Advice {
            spread: s,
            volatility: Volatility::High,
            direction: Direction::Up,
            confidence: 70,
            multiplier: 1.25,
            source: AdviceSource::Llm,
            received_ns: t,
            ttl_ns: 15,
            apply_multiplier: false,
        };
        let mut log = AdviceLog::open(&path).unwrap();
        for (t, s, err) in [
            (100, SpreadState::Wide, None),
            (200, SpreadState::Narrow, Some("timeout")),
            (300, SpreadState::Narrow, None),
        ] {
            let advice = err.is_none().then(|| a(t, s));
            let e = LogEntry {
                wall_ns: t,
                provider: "holysheep",
                model: "gpt-4.1",
                latency: Some(Duration::from_millis(800)),
                attempts: 1,
                tokens_in: 500,
                tokens_out: 90,
                usage_reported: true,
                cost_usd: Some(0.00258),
                raw: Some("{\"spread_state\":\"wide\"}"),
                reply: None,
                advice,
                error: err,
                market: &m,
            };
            log.write(&e).unwrap();
        }
        drop(log);
        // A cut-off last line (killed writer) is ignored.
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap() + "{\"time_ns\":4").unwrap();
        let got = read_advice(&path).unwrap();
        assert_eq!(got, vec![a(100, SpreadState::Wide), a(300, SpreadState::Narrow)]);
        let line: Value =
            serde_json::from_str(std::fs::read_to_string(&path).unwrap().lines().next().unwrap()).unwrap();
        assert_eq!(line["market"]["symbol"], "BTCUSDT");
        assert_eq!(line["market"]["bids"].as_array().unwrap().len(), 10);
        assert_eq!((line["tokens_in"].as_u64(), line["cost_usd"].as_f64()), (Some(500), Some(0.00258)));

        let mut r = AdviceReplay::load(&path).unwrap();
        assert_eq!((r.due(50), r.due(100).map(|a| a.spread), r.due(150)), (None, Some(SpreadState::Wide), None));
        assert_eq!(r.due(1_000).map(|a| a.received_ns), Some(300));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_advisors_keys_date_the_replay_and_dropped_advice_is_not_replayed() {
        let dir = std::env::temp_dir().join(format!("mmbot-advice-log-meta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("advice.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut m = sample_snapshot();
        let advice = |t: i64| Advice {
            spread: SpreadState::Wide,
            received_ns: t,
            ttl_ns: 5_000_000_000,
            source: AdviceSource::Llm,
            apply_multiplier: true,
            ..Advice::neutral()
        };
        let mut log = AdviceLog::open(&path).unwrap();
        for (t, dropped) in [(1_000_000_000, None), (2_000_000_000, Some(Dropped::Late))] {
            m.time_ns = t;
            let e = LogEntry {
                wall_ns: 7,
                provider: "openai",
                model: "gpt-5-mini",
                latency: Some(Duration::from_millis(1_500)),
                attempts: 1,
                tokens_in: 700,
                tokens_out: 60,
                usage_reported: false,
                cost_usd: Some(0.0003),
                raw: None,
                reply: None,
                advice: Some(advice(t)),
                error: None,
                market: &m,
            };
            let meta = CallMeta {
                route: "openai gpt-5-mini",
                fallback: 1,
                estimated: true,
                cached_tokens: 512,
                repaired: true,
                dropped,
                age_ns: Some(1_500_000_000),
            };
            log.write_with(&e, &meta).unwrap();
        }
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let first = &lines[0];
        assert_eq!(first["snapshot_ns"].as_i64(), Some(1_000_000_000));
        assert_eq!((first["route"].as_str(), first["fallback"].as_u64()), (Some("openai gpt-5-mini"), Some(1)));
        assert_eq!((first["estimated"].as_bool(), first["cached_tokens"].as_u64()), (Some(true), Some(512)));
        assert_eq!((first["repaired"].as_bool(), first["age_ms"].as_f64()), (Some(true), Some(1_500.0)));
        assert!(first["dropped"].is_null());
        assert_eq!(first["advice"]["apply_multiplier"].as_bool(), Some(true));
        assert_eq!(lines[1]["dropped"].as_str(), Some("late"));
        // The dropped one is not replayed; the other arrives 1.5 s after its
        // snapshot and lives from the snapshot.
        let got = read_logged_advice(&path).unwrap();
        assert_eq!(got, vec![LoggedAdvice { arrived_ns: 2_500_000_000, advice: advice(1_000_000_000) }]);
        let mut r = AdviceReplay::load(&path).unwrap();
        assert_eq!(r.due(2_400_000_000), None);
        assert_eq!(r.due(2_500_000_000).map(|a| a.received_ns), Some(1_000_000_000));

        // A line from before these keys (and before apply_multiplier) reads
        // as it did: handed out at its received_ns, labels only.
        let old = r#"{"time_ns":5,"hot_time_ns":900,"provider":"holysheep","model":"gpt-4.1","advice":{"spread":"wide","volatility":"high","direction":"up","confidence":80,"multiplier":1.4,"source":"llm","received_ns":900,"ttl_ns":15}}"#;
        std::fs::write(&path, format!("{old}\n")).unwrap();
        let got = read_logged_advice(&path).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].arrived_ns, got[0].advice.apply_multiplier, got[0].advice.multiplier), (900, false, 1.4));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
