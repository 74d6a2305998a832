//! `mmbot config check`: the effective configuration printed as TOML-like
//! text, every key with the value in force.

use super::Config;
use crate::feed::endpoint::DepthStream;
use crate::hot::fixed::Price;
use crate::hot::guard::LevelSpacing;

impl Config {
    /// The effective configuration as TOML-like text (`mmbot config check`).
    /// Nothing secret lives in the config; keys come from the environment.
    pub fn describe(&self) -> String {
        let h = &self.hot;
        let p = &h.params;
        let g = &h.guard;
        let f = &h.filters;
        let fe = &h.features;
        let b = &h.sizes;
        let pa = &self.paper;
        let sl = &self.script_limits;
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line("[market]".into());
        line(format!("symbol = {}", h.symbol.map_or("(first with depth)".into(), |s| format!("\"{s}\""))));
        line("\n[strategy]".into());
        line(format!("target_spread_pct = {}", p.target_spread_pct));
        line(format!("min_order_size = \"{}\"", p.min_order_size));
        line(format!("max_position = \"{}\"", p.max_position));
        line(format!("levels = {}", self.strategy_levels));
        let ladder = &h.guard.ladder;
        line(match ladder.spacing {
            LevelSpacing::Ticks(n) => format!("level_spacing_ticks = {n}"),
            LevelSpacing::Bps(b) => format!("level_spacing_bps = {b}"),
        });
        line(format!("level_size_growth = {}", ladder.size_growth));
        line(format!(
            "script = {}",
            self.script.as_ref().map_or("(native strategy)".into(), |s| format!("\"{}\"", s.display()))
        ));
        line("\n[strategy.params]".into());
        for (k, v) in &self.params {
            line(format!("{k} = {v}"));
        }
        line("\n[script]".into());
        line(format!("max_operations = {}", sl.max_operations));
        line(format!("max_call_levels = {}", sl.max_call_levels));
        line(format!("max_string_size = {}", sl.max_string_size));
        line(format!("max_array_size = {}", sl.max_array_size));
        line(format!("max_map_size = {}", sl.max_map_size));
        line(format!("max_error_share = {}", self.max_script_error_share));
        let sb = &self.script_budget;
        line(format!("max_call_us = {}", sb.max_call_ns as f64 / 1e3));
        line(format!("over_budget_calls = {}", sb.strikes));
        line(format!("over_budget_window_s = {}", sb.window.as_secs_f64()));
        line("\n[risk]".into());
        line(format!("min_spread_bps = {}", g.min_spread_bps));
        line(format!("max_spread_bps = {}", g.max_spread_bps));
        line(format!("stale_after_ms = {}", g.stale_after_ns / 1_000_000));
        line("\n[filters]".into());
        line(format!(
            "tick_size = {}",
            if f.tick_size.0 == 0 { "\"auto\"".into() } else { format!("\"{}\"", f.tick_size) }
        ));
        line(format!("step_size = \"{}\"", f.step_size));
        line(format!("min_qty = \"{}\"", f.min_qty));
        line(format!("min_notional = \"{}\"", Price(f.min_notional)));
        line("\n[paper]".into());
        line(format!("entry_latency_ms = {}", pa.entry_latency_ns as f64 / 1e6));
        line(format!("cancel_latency_ms = {}", pa.cancel_latency_ns as f64 / 1e6));
        line(format!("response_latency_ms = {}", pa.response_latency_ns as f64 / 1e6));
        match &self.paper_latency_journal {
            Some(j) => line(format!(
                "latency_from_journal = {:?}  # latency_seed = {}",
                j.display().to_string(),
                pa.latency_seed
            )),
            None => line("# latency_from_journal: not set (constant latencies)".into()),
        }
        line(format!("refresh_ticks = {}", pa.refresh_ticks));
        line(format!("max_order_age_ms = {}", pa.max_order_age_ns / 1_000_000));
        line(format!("maker_fee = \"{}\"", Price(pa.maker_fee_rate)));
        line(format!("taker_fee = \"{}\"", Price(pa.taker_fee_rate)));
        line(format!("queue_model = \"{}\"", pa.queue_model.name()));
        if let crate::exec::paper::QueueModel::Power(n) = pa.queue_model {
            line(format!("queue_power = {n}"));
        }
        line(format!("order_type = \"{}\"", pa.order_type.name()));
        line(format!("clock = \"{}\"", pa.clock.name()));
        line("\n[features]".into());
        line(format!("depth_levels = {}", fe.depth_levels));
        line(format!("vol_half_life_s = {}", fe.vol_half_life_ns as f64 / 1e9));
        line(format!("flow_half_life_s = {}", fe.flow_half_life_ns as f64 / 1e9));
        line("\n[cores]".into());
        line(format!("hot = {}", self.hot_core.map_or("(not pinned)".into(), |c| c.to_string())));
        let ai = &self.ai;
        line("\n[ai]".into());
        line(format!("provider = \"{}\"", ai.provider.name()));
        line(format!("base_url = \"{}\"", ai.base_url.as_deref().unwrap_or("")));
        line(format!("model = \"{}\"", ai.model));
        line(format!("api_key_env = \"{}\"", ai.key_var));
        line(format!("env_file = \"{}\"", ai.env_file.display()));
        if let Some(r) = &ai.region {
            line(format!("region = \"{r}\""));
        }
        line(format!("temperature = {}", ai.temperature));
        line(format!("max_tokens = {}", ai.max_tokens));
        line(format!("interval_s = {}", ai.interval.as_secs_f64()));
        line(format!("ttl_intervals = {}", ai.ttl_intervals));
        line(format!("max_age_s = {}", ai.max_age.as_secs_f64()));
        line(format!("call_on = \"{}\"", ai.call_on.name()));
        line(format!("min_interval_s = {}", ai.min_interval.as_secs_f64()));
        line(format!("max_interval_s = {}", ai.max_interval.as_secs_f64()));
        if let Some(b) = ai.daily_budget_usd {
            line(format!("daily_budget_usd = {b}"));
        }
        line(format!("connect_timeout_s = {}", ai.connect_timeout.as_secs_f64()));
        line(format!("timeout_s = {}", ai.timeout.as_secs_f64()));
        line(format!("retries = {}", ai.retries));
        line(format!("backoff_ms = {}", ai.backoff.as_millis()));
        line(format!("response_format = \"{}\"", ai.response_format.name()));
        if let Some(e) = ai.reasoning_effort {
            line(format!("reasoning_effort = \"{}\"", e.name()));
        }
        line(format!("min_multiplier = {}", ai.min_multiplier));
        line(format!("max_multiplier = {}", ai.max_multiplier));
        line(format!("apply_multiplier = {}", ai.apply_multiplier));
        line(format!("log = \"{}\"", ai.log.as_ref().map_or(String::new(), |p| p.display().to_string())));
        for r in &ai.fallback {
            line("\n[[ai.fallback]]".into());
            line(format!("provider = \"{}\"", r.provider.name()));
            line(format!("model = \"{}\"", r.model));
            line(format!("base_url = \"{}\"", r.base_url.as_deref().unwrap_or("")));
            line(format!("api_key_env = \"{}\"", r.key_var));
        }
        for (m, p) in &ai.models {
            line(format!("\n[ai.models.\"{m}\"]"));
            if let Some(r) = p.reasoning {
                line(format!("reasoning = {r}"));
            }
            if let Some(t) = p.temperature {
                line(format!("temperature = {t}"));
            }
            if let Some(t) = p.max_tokens {
                line(format!("max_tokens = {t}"));
            }
            if let Some(e) = p.reasoning_effort {
                line(format!("reasoning_effort = \"{}\"", e.name()));
            }
            if let Some(f) = p.response_format {
                line(format!("response_format = \"{}\"", f.name()));
            }
            if !p.extra.is_empty() {
                // JSON scalars and arrays read the same in TOML.
                let kv: Vec<String> = p.extra.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                line(format!("params = {{ {} }}", kv.join(", ")));
            }
        }
        line("\n[ai.prices]".into());
        for (m, p) in ai.prices.iter() {
            match p.cached_input_per_m {
                Some(c) => line(format!(
                    "\"{m}\" = {{ input = {}, output = {}, cached_input = {c} }}",
                    p.input_per_m, p.output_per_m
                )),
                None => line(format!("\"{m}\" = {{ input = {}, output = {} }}", p.input_per_m, p.output_per_m)),
            }
        }
        let fd = &self.feed;
        line("\n[feed]".into());
        line(format!("market = \"{}\"", fd.market.name()));
        line(format!("symbols = [{}]", fd.symbols.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")));
        line(format!("stream_url = \"{}\"", fd.stream_url.as_deref().unwrap_or("")));
        line(format!("rest_url = \"{}\"", fd.rest_url.as_deref().unwrap_or("")));
        line(format!("depth = \"{}\"", if fd.depth == DepthStream::Diff { "diff" } else { "top20" }));
        line(format!("trades = {}", fd.trades));
        line(format!("book_ticker = {}", fd.book_ticker));
        line(format!("poll = \"{}\"", if fd.busy_poll { "busy" } else { "poll" }));
        line(format!("poll_timeout_us = {}", fd.poll_timeout.as_micros()));
        line(format!("warm_every_us = {}", self.warm.every.as_micros()));
        line(format!("stale_after_ms = {}", fd.stale_after.as_millis()));
        line(format!("ping_interval_ms = {}", fd.ping_interval.as_millis()));
        line(format!("pong_timeout_ms = {}", fd.pong_timeout.as_millis()));
        line(format!("max_connection_age_s = {}", fd.max_connection_age.as_secs()));
        line(format!("connect_timeout_ms = {}", fd.connect_timeout.as_millis()));
        line(format!("backoff_min_ms = {}", fd.backoff_min.as_millis()));
        line(format!("backoff_max_ms = {}", fd.backoff_max.as_millis()));
        line(format!("max_connect_attempts = {}", fd.max_connect_attempts));
        line(format!("snapshot_limit = {}", fd.snapshot_limit));
        line(format!("snapshot_retry_ms = {}", fd.snapshot_retry.as_millis()));
        line(format!("snapshot_hedge_ms = {}", fd.snapshot_hedge_after.as_millis()));
        line(format!("depth20_fallback = {}", fd.depth20_fallback));
        line(format!("ws_api_depth = {}", fd.ws_api_depth));
        line(match fd.ws_api_depth_url() {
            Some(u) => format!("ws_api_url = {u:?}"),
            None => "# ws_api_url: none (no WebSocket API depth while REST is refused)".into(),
        });
        line(format!("weight_per_minute = {}", fd.weight_per_minute));
        line("\n[net]".into());
        line(self.net.describe());
        match &self.live {
            None => line("\n# [live]: not set (paper trading only; `mmbot run --live` needs it)".into()),
            Some(l) => {
                let k = &l.kill;
                let secs = |ns: i64| ns as f64 / 1e9;
                line("\n[live]".into());
                line(format!("base_url = \"{}\"", l.rest_url));
                line(format!("ws_api_url = \"{}\"", l.ws_api_url));
                line(format!("recv_window_ms = {}", l.recv_window.as_millis()));
                line(format!("timeout_ms = {}", l.timeout.as_millis()));
                line(format!("order_entry = \"{}\"", l.order_entry.name()));
                line(format!("stp_mode = \"{}\"", l.stp_mode.as_str()));
                if let Some(p) = l.bnb_price {
                    line(format!("bnb_price = \"{p}\""));
                }
                line(format!("balance_tolerance = \"{}\"", l.balance_tolerance.warn));
                line(format!("balance_kill_tolerance = \"{}\"", l.balance_tolerance.kill));
                line(format!("max_position = \"{}\"", l.limits.max_position));
                line(format!("max_order_notional = \"{}\"", Price(l.limits.max_order_notional)));
                line(format!("max_open_orders = {}", l.limits.max_open_orders));
                line(format!("daily_loss_limit = \"{}\"", Price(l.limits.daily_loss_limit)));
                line(format!("orphans = \"{}\"", l.orphans.name()));
                line(format!("reconcile_every_s = {}", l.reconcile_every.as_secs_f64()));
                line(format!("journal = \"{}\"", l.journal.display()));
                line(format!("env_file = \"{}\"", l.env_file.display()));
                line(format!("refresh_ticks = {}", l.refresh_ticks));
                line(format!("max_order_age_ms = {}", l.max_order_age.as_millis()));
                line(format!("run_prefix = \"{}\"", l.run_prefix.as_deref().unwrap_or("mm")));
                line(format!("kill_max_rejects = {}", k.max_rejects));
                line(format!("kill_reject_window_s = {}", secs(k.reject_window_ns)));
                line(format!("kill_stale_feed_s = {}", secs(k.stale_feed_ns)));
                line(format!("kill_unsynced_s = {}", secs(k.unsynced_ns)));
                line(format!("ban_wait_max_s = {}", l.ban_wait_max.as_secs_f64()));
                line(format!("pnl_every_s = {}", l.pnl_every.as_secs_f64()));
                line(format!("dry_run = {}", l.dry_run));
            }
        }
        line("\n[book]".into());
        line(format!("capacity = {}", b.capacity));
        line(format!("max_message_levels = {}", b.max_message_levels));
        line(format!("buffer_events = {}", b.buffer_events));
        line(format!("buffer_levels = {}", b.buffer_levels));
        line(format!("max_symbols = {}", b.max_symbols));
        line(format!("max_id_jump = {}", h.sync.max_id_jump));
        line(format!("stale_resync_ms = {}", h.sync.stale_resync_ns / 1_000_000));
        line(format!("touch_first = {}", h.touch_first));
        let c = &self.control;
        line("\n[control]".into());
        line(match c.listen {
            Some(a) => format!("listen = \"{a}\""),
            None => "listen = (off)".into(),
        });
        line(format!("token_env = \"{}\"", c.token_env));
        line(format!("insecure = {}", c.insecure));
        line(format!("max_clients = {}", c.max_clients));
        line(format!("stream_interval_ms = {}", c.stream_interval_ms));
        line(format!("stream_buffer = {}", c.stream_buffer));
        for (k, (lo, hi)) in &c.param_bounds {
            line(format!("param_bounds.{k} = [{lo}, {hi}]"));
        }
        if let Some((lo, hi)) = c.ai_interval_s {
            line(format!("ai_interval_s = [{lo}, {hi}]"));
        }
        if self.alerts.enabled() {
            line(String::new());
            out.push_str(&self.alerts.describe());
        }
        out
    }
}
