//! The routes the advisor asks, in order: the primary (`[ai] provider`,
//! `model`) then each `[[ai.fallback]]`, each with a client of its own.
//!
//! [`Dispatcher::dispatch`] runs on the caller thread (the one that may
//! block on the network). It asks one route after another until one gives
//! usable advice; a failed call or an unusable reply moves to the next
//! route in the same tick. A route is passed over when:
//! * its projected spend would pass `[ai] daily_budget_usd` (a cheaper
//!   fallback may still fit);
//! * the server asked to wait (`429` with `Retry-After`) or rejected the
//!   key: until then;
//! * its account is out of quota (`insufficient_quota`, a 429 that is not a
//!   rate limit, per OpenAI's error-codes guide): for the rest of the
//!   session, said once.
//!
//! Each call is charged ([`crate::ai::cost::charge`]) as soon as it ends,
//! so the next route's projection ([`super::budget`]) already counts it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::ai::advisor::budget::{worst_case, DailyBudget};
use crate::ai::advisor::MarketSnapshot;
use crate::ai::ask::Asked;
use crate::ai::cost::{charge, charge_failed, Charge};
use crate::ai::llm::{CallInfo, LlmClient};
use crate::ai::prompt::estimate_chat_tokens;
use crate::ai::{AiConfig, AiError};

/// Who answers a route's questions: an [`LlmClient`] (tests put in others).
pub trait Asker: Send {
    /// One question about `snapshot` ([`crate::ai::ask::ask_with`]; a
    /// repair retry only when `may_repair`).
    fn ask(
        &mut self,
        route: &AiConfig,
        snapshot: &MarketSnapshot,
        stop: &AtomicBool,
        may_repair: bool,
    ) -> Result<Asked, AiError>;
    /// How the last call went, answered or not.
    fn last_call(&self) -> CallInfo;
    /// What the client noticed on its own (it never prints).
    fn take_notices(&mut self) -> Vec<String>;
}

impl Asker for LlmClient {
    fn ask(
        &mut self,
        route: &AiConfig,
        snapshot: &MarketSnapshot,
        stop: &AtomicBool,
        may_repair: bool,
    ) -> Result<Asked, AiError> {
        crate::ai::ask::ask_with(self, route, snapshot, stop, may_repair)
    }
    fn last_call(&self) -> CallInfo {
        LlmClient::last_call(self)
    }
    fn take_notices(&mut self) -> Vec<String> {
        LlmClient::take_notices(self)
    }
}

/// One route and what the session has learnt about it.
pub struct Route<A> {
    /// 0 the primary, i the i-th fallback (as configured, skipped routes
    /// included, so the log's `fallback` names the config entry).
    pub index: usize,
    /// "openai gpt-5-mini".
    pub label: String,
    /// The provider's name in the log ("openai").
    pub provider: &'static str,
    /// `[ai]` with this route's provider, endpoint, model and key.
    pub cfg: AiConfig,
    asker: A,
    /// Out of quota: never asked again.
    dead: bool,
    /// Not asked before this (wall clock: the server's wait).
    aside_until: Option<Instant>,
    /// Cost of its answered calls, for its average.
    answered_usd: f64,
    answered_priced: u64,
}

impl<A: Asker> Route<A> {
    pub fn new(index: usize, cfg: AiConfig, asker: A) -> Self {
        let r = cfg.primary_route();
        Self {
            index,
            label: r.label(),
            provider: r.provider.llm().unwrap_or(r.provider).name(),
            cfg,
            asker,
            dead: false,
            aside_until: None,
            answered_usd: 0.0,
            answered_priced: 0,
        }
    }

    /// The most one request may cost: its prompt plus the whole
    /// `max_tokens` (`None`: unpriced).
    fn worst(&self, snapshot: &MarketSnapshot) -> Option<f64> {
        worst_case(&self.cfg, estimate_chat_tokens(&crate::ai::ask::messages(&self.cfg, snapshot)))
    }

    /// What the next call is projected to cost: its worst case, or its
    /// average so far when that is higher (answers with usage above the
    /// estimate), so the budget holds whatever the reply turns out to be.
    fn expected(&self, snapshot: &MarketSnapshot) -> Option<f64> {
        let average = (self.answered_priced > 0).then(|| self.answered_usd / self.answered_priced as f64);
        match (self.worst(snapshot), average) {
            (Some(w), Some(a)) => Some(w.max(a)),
            (w, a) => w.or(a),
        }
    }
}

/// One route asked once.
#[derive(Debug)]
pub struct Attempt {
    pub route: usize,
    pub label: String,
    pub provider: &'static str,
    pub model: String,
    pub result: Result<Asked, AiError>,
    /// The client's account of the call (latency and attempts of a failure).
    pub info: CallInfo,
    pub charge: Charge,
    /// Wall-clock ns when it ended.
    pub wall_ns: i64,
}

impl Attempt {
    /// Whether it gave usable advice.
    pub fn usable(&self) -> bool {
        self.result.as_ref().is_ok_and(|a| a.reply.is_ok())
    }
}

/// What one tick's dispatch came to.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The routes asked, in order; the last is the one that advised, if any did.
    pub attempts: Vec<Attempt>,
    /// Nothing was asked because no live route fit the budget.
    pub over_budget: bool,
    /// The first such tick of the UTC day (the stop is logged then).
    pub budget_stop_first: bool,
    /// Nothing was asked because every live route is waiting (Retry-After,
    /// rejected key).
    pub all_aside: bool,
    /// Every route is out of quota: no more calls this session.
    pub all_dead: bool,
    /// To be said, in order (notices, the budget stop, dead routes).
    pub messages: Vec<String>,
}

/// The routes and the budget, on the caller thread.
pub struct Dispatcher<A> {
    routes: Vec<Route<A>>,
    budget: DailyBudget,
    /// How long a rejected key keeps its route aside.
    key_wait: Duration,
    wall_ns: fn() -> i64,
}

impl<A: Asker> Dispatcher<A> {
    pub fn new(routes: Vec<Route<A>>, budget: DailyBudget, key_wait: Duration, wall_ns: fn() -> i64) -> Self {
        Self { routes, budget, key_wait, wall_ns }
    }

    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.label.as_str())
    }

    /// Routes whose calls a daily budget cannot count (their model has no
    /// price), to be said at start.
    pub fn unpriced_under_budget(&self) -> Option<String> {
        self.budget.limit()?;
        let unpriced: Vec<&str> =
            self.routes.iter().filter(|r| r.cfg.prices.get(&r.cfg.model).is_none()).map(|r| r.label.as_str()).collect();
        (!unpriced.is_empty()).then(|| {
            format!(
                "[ai] daily_budget_usd cannot bound {}: no price in [ai.prices] for its model, so its calls count as \
                 $0; add e.g. [ai.prices.\"{}\"] = {{ input = 1.0, output = 4.0 }} (USD per million tokens)",
                unpriced.join(", "),
                self.routes
                    .iter()
                    .find(|r| r.cfg.prices.get(&r.cfg.model).is_none())
                    .map_or("", |r| r.cfg.model.as_str())
            )
        })
    }

    /// Asks the routes about `snapshot` in order until one gives usable advice.
    pub fn dispatch(&mut self, snapshot: &MarketSnapshot, stop: &AtomicBool) -> Outcome {
        let mut out = Outcome::default();
        let (mut over_budget, mut aside) = (false, false);
        for r in self.routes.iter_mut() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if r.dead {
                continue;
            }
            if r.aside_until.is_some_and(|t| Instant::now() < t) {
                aside = true;
                continue;
            }
            let expected = r.expected(snapshot);
            if !self.budget.fits(expected, (self.wall_ns)()) {
                over_budget = true;
                continue;
            }
            // A repair retry is a second request: only when it fits too.
            let with_repair = expected.zip(r.worst(snapshot)).map(|(e, w)| e + w);
            let may_repair = self.budget.fits(with_repair, (self.wall_ns)());
            let result = r.asker.ask(&r.cfg, snapshot, stop, may_repair);
            let wall_ns = (self.wall_ns)();
            let info = r.asker.last_call();
            out.messages.extend(r.asker.take_notices().into_iter().map(|n| format!("{}: {n}", r.label)));
            let charge = match &result {
                Ok(asked) => {
                    let answered = asked.completions.iter().map(|c| charge(&r.cfg.prices, &r.cfg.model, c));
                    // A repair retry that got no answer is billed like any failed call.
                    let unanswered =
                        asked.repair_error.as_ref().map(|_| charge_failed(&r.cfg.prices, &r.cfg.model, &info));
                    let c = Charge::sum(answered.chain(unanswered));
                    if let Some(usd) = c.usd {
                        r.answered_usd += usd;
                        r.answered_priced += 1;
                    }
                    c
                }
                Err(_) => charge_failed(&r.cfg.prices, &r.cfg.model, &info),
            };
            self.budget.add(charge.usd.unwrap_or(0.0), wall_ns);
            if let Err(e) = &result {
                match e {
                    AiError::QuotaExhausted { .. } => {
                        r.dead = true;
                        out.messages.push(format!("{}: {e}; {} is not called again this session", r.label, r.label));
                    }
                    // The server said when to come back (429, or 503 with Retry-After).
                    AiError::RateLimited { retry_after: Some(d), .. }
                    | AiError::Server { retry_after: Some(d), .. } => r.aside_until = Some(Instant::now() + *d),
                    // A rejected key will not fix itself; ask again now and then.
                    AiError::KeyRejected { .. } => r.aside_until = Some(Instant::now() + self.key_wait),
                    _ => {}
                }
            }
            let attempt = Attempt {
                route: r.index,
                label: r.label.clone(),
                provider: r.provider,
                model: r.cfg.model.clone(),
                result,
                info,
                charge,
                wall_ns,
            };
            let usable = attempt.usable();
            out.attempts.push(attempt);
            if usable {
                break;
            }
        }
        if self.routes.iter().all(|r| r.dead) {
            out.all_dead = true;
            // With one route its own message said it all.
            let just_now = out.attempts.iter().any(|a| matches!(a.result, Err(AiError::QuotaExhausted { .. })));
            if just_now && self.routes.len() > 1 {
                out.messages.push(
                    "no route is left to ask (each said its account has no credit): the advisor makes no more \
                     calls this session; advice expires and the bot quotes without it"
                        .to_string(),
                );
            }
        } else if out.attempts.is_empty() {
            if over_budget {
                out.over_budget = true;
                if let Some(m) = self.budget.stop_message((self.wall_ns)()) {
                    out.budget_stop_first = true;
                    out.messages.push(m);
                }
            } else if aside {
                out.all_aside = true;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use super::*;
    use crate::ai::advisor::sample_snapshot;
    use crate::ai::llm::Completion;
    use crate::ai::reply::{parse_reply, Bounds};

    const CLEAN: &str = r#"{"spread_state":"wide","volatility":"high","direction":"up","confidence":80}"#;

    /// A scripted answer: the reply's text, or the error to fail with.
    type Line = Result<&'static str, fn() -> AiError>;

    /// Answers from a script of results; counts its calls.
    struct Scripted {
        replies: VecDeque<Line>,
        calls: usize,
    }

    impl Asker for Scripted {
        fn ask(&mut self, _: &AiConfig, _: &MarketSnapshot, _: &AtomicBool, _: bool) -> Result<Asked, AiError> {
            self.calls += 1;
            let text = self.replies.pop_front().unwrap_or(Ok(CLEAN)).map_err(|e| e())?;
            let c = Completion {
                content: text.into(),
                model: "m".into(),
                tokens_in: 1_000,
                tokens_out: 100,
                cached_tokens: 0,
                usage_reported: true,
                finish_reason: None,
                latency: Duration::ZERO,
                attempts: 1,
            };
            let reply = parse_reply(text, Bounds { min_multiplier: 0.5, max_multiplier: 2.0 });
            Ok(Asked { completions: vec![c], reply, repaired: false, read_from: 0, repair_error: None })
        }
        fn last_call(&self) -> CallInfo {
            CallInfo { attempts: 1, ..CallInfo::default() }
        }
        fn take_notices(&mut self) -> Vec<String> {
            Vec::new()
        }
    }

    fn quota() -> AiError {
        AiError::QuotaExhausted {
            endpoint: "http://a/v1/chat/completions".into(),
            status: 429,
            code: "insufficient_quota".into(),
            detail: String::new(),
        }
    }

    fn route(index: usize, model: &str, replies: Vec<Line>) -> Route<Scripted> {
        let mut cfg = AiConfig { model: model.into(), ..AiConfig::default() };
        // $1 in / $10 out per million: 1,000 + 100 tokens cost $0.002.
        let p = crate::ai::cost::ModelPrice { input_per_m: 1.0, output_per_m: 10.0, cached_input_per_m: None };
        cfg.prices.set(model, p);
        Route::new(index, cfg, Scripted { replies: replies.into(), calls: 0 })
    }

    fn wall() -> i64 {
        1_000
    }

    #[test]
    fn a_route_out_of_quota_is_never_asked_again() {
        let routes = vec![route(0, "big", vec![Err(quota)]), route(1, "small", vec![])];
        let mut d = Dispatcher::new(routes, DailyBudget::new(None), Duration::from_secs(60), wall);
        let snap = sample_snapshot();
        let never = AtomicBool::new(false);
        let first = d.dispatch(&snap, &never);
        assert_eq!(first.attempts.len(), 2);
        assert!(first.attempts[1].usable() && first.attempts[1].route == 1);
        assert_eq!(first.messages.len(), 1, "{:?}", first.messages);
        assert!(first.messages[0].contains("waiting will not fix it"), "{:?}", first.messages);
        for _ in 0..3 {
            let o = d.dispatch(&snap, &never);
            assert_eq!((o.attempts.len(), o.attempts[0].route), (1, 1));
            assert!(o.messages.is_empty(), "said once");
        }
        assert_eq!((d.routes[0].asker.calls, d.routes[1].asker.calls), (1, 4));
    }

    #[test]
    fn every_route_out_of_quota_stops_the_calls() {
        let routes = vec![route(0, "big", vec![Err(quota)]), route(1, "small", vec![Err(quota)])];
        let mut d = Dispatcher::new(routes, DailyBudget::new(None), Duration::from_secs(60), wall);
        let o = d.dispatch(&sample_snapshot(), &AtomicBool::new(false));
        assert!(o.all_dead && o.attempts.len() == 2);
        assert!(o.messages.last().unwrap().contains("no more calls this session"), "{:?}", o.messages);
        let o = d.dispatch(&sample_snapshot(), &AtomicBool::new(false));
        assert!(o.all_dead && o.attempts.is_empty() && o.messages.is_empty());
    }

    #[test]
    fn an_expensive_route_over_budget_gives_way_to_a_cheap_one() {
        // The primary's first call may cost 1,000 + 800 tokens at $30/$60
        // per million ($0.078): over a $0.05 budget. The fallback's fits.
        let mut big = route(0, "big", vec![]);
        let p = crate::ai::cost::ModelPrice { input_per_m: 30.0, output_per_m: 60.0, cached_input_per_m: None };
        big.cfg.prices.set("big", p);
        let routes = vec![big, route(1, "small", vec![])];
        let mut d = Dispatcher::new(routes, DailyBudget::new(Some(0.05)), Duration::from_secs(60), wall);
        let o = d.dispatch(&sample_snapshot(), &AtomicBool::new(false));
        assert_eq!((o.attempts.len(), o.attempts[0].route), (1, 1));
        assert!(!o.over_budget);
        assert_eq!(d.routes[0].asker.calls, 0);
    }
}
