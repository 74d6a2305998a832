//! `mmbot ai check | compare | cost`: try the configured LLM once on a sample
//! book, put several models side by side, or price the advisor before
//! running it.
//!
//! Exit codes (`check` and `compare`): 0 ok, 2 configuration or missing key,
//! 3 key rejected, 4 unreachable, timed out or not serving (429, 5xx),
//! 5 reply unusable. Keys are never printed: at most the variable, the
//! length and the first 4 characters.

use std::path::PathBuf;

use crate::ai::advisor::{ask_once, llm_client, sample_snapshot, Answer};
use crate::ai::cost::{calls_per_day, cost_table};
use crate::ai::llm::{models, LlmClient};
use crate::ai::log::{direction_name, source_name, spread_name, volatility_name};
use crate::ai::offline::{OfflineAdvisor, OfflineConfig};
use crate::ai::{AiConfig, AiError, Provider};
use crate::config::Config;
use crate::hot::advice::Advice;

#[derive(clap::Subcommand, Debug)]
pub enum AiCommand {
    /// One call with a sample book: endpoint, model, latency, parsed advice, tokens and cost.
    Check {
        /// Config file (default: $MMBOT_CONFIG, else ./mmbot.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Ask this model instead of [ai] model.
        #[arg(long)]
        model: Option<String>,
    },
    /// The same prompt to several models with one key: latency, tokens, cost and advice side by side.
    Compare {
        /// Comma-separated models, e.g. gpt-4.1,claude-sonnet-4-5,gemini-2.5-flash,deepseek-v3.2.
        #[arg(long, value_delimiter = ',', required = true)]
        models: Vec<String>,
        /// Config file (default: $MMBOT_CONFIG, else ./mmbot.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Score the models on snapshots of this recording against what happened next (repeat for more files).
        #[arg(long, value_name = "RECORDING")]
        eval: Vec<PathBuf>,
        /// With --eval: ask each snapshot this many times per model.
        #[arg(long, default_value_t = 3, requires = "eval")]
        trials: usize,
        /// With --eval: this many snapshots, evenly spaced, each with a full TTL after it.
        #[arg(long, default_value_t = 10, requires = "eval")]
        snapshots: usize,
        /// With --eval: also write the ranking as JSON here.
        #[arg(long, requires = "eval")]
        json: Option<PathBuf>,
    },
    /// Score an advice log against what the market did next, and backtest it against the offline rules and no advice.
    Eval(crate::cli::ai_eval::EvalArgs),
    /// The cost/ROI table for every priced model ([ai.prices]).
    Cost {
        /// Calls a day (default: one every [ai] interval_s).
        #[arg(long)]
        calls_per_day: Option<f64>,
        /// Prompt tokens a call (default: measured, the prompt mmbot sends for a sample book).
        #[arg(long)]
        input_tokens: Option<u64>,
        /// Completion tokens a call.
        #[arg(long, default_value_t = 200)]
        output_tokens: u64,
        /// Expected extra profit a day from the advice, USD: adds an ROI column.
        #[arg(long)]
        gain_per_day: Option<f64>,
        /// Config file (default: $MMBOT_CONFIG, else ./mmbot.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run(cmd: AiCommand) -> anyhow::Result<i32> {
    let (name, config) = match &cmd {
        AiCommand::Check { config, .. } => ("check", config),
        AiCommand::Compare { config, .. } => ("compare", config),
        AiCommand::Cost { config, .. } => ("cost", config),
        AiCommand::Eval(a) => ("eval", &a.config),
    };
    let config = match Config::load_or_default(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            crate::say!("mmbot ai {name}: {}", crate::cli::exit::message_of(&anyhow::Error::new(e)));
            return Ok(crate::cli::exit::CONFIG);
        }
    };
    let ai = config.ai.clone();
    match cmd {
        AiCommand::Check { model, .. } => {
            let ai = match model {
                Some(m) => ai.with_model(&m),
                None => ai,
            };
            Ok(check(&ai))
        }
        AiCommand::Compare { models, eval, trials, snapshots, json, .. } if !eval.is_empty() => {
            Ok(crate::cli::ai_eval::compare(&config, &models, &eval, trials, snapshots, json.as_deref()))
        }
        AiCommand::Compare { models, .. } => Ok(compare(&ai, &models)),
        AiCommand::Eval(args) => Ok(crate::cli::ai_eval::run(args, &config)),
        AiCommand::Cost { calls_per_day: n, input_tokens, output_tokens, gain_per_day, .. } => {
            cost(&ai, n, input_tokens, output_tokens, gain_per_day)
        }
    }
}

fn advice_line(a: &Advice) -> String {
    format!(
        "spread {}, volatility {}, direction {}, confidence {}, multiplier {:.2}  [{}]",
        spread_name(a.spread),
        volatility_name(a.volatility),
        direction_name(a.direction),
        a.confidence,
        a.multiplier,
        source_name(a.source)
    )
}

fn usd(x: Option<f64>) -> String {
    x.map_or_else(|| "unpriced".to_string(), |c| format!("${c:.6}"))
}

fn check(ai: &AiConfig) -> i32 {
    let sample = sample_snapshot();
    match ai.provider {
        Provider::None => {
            println!("mmbot ai check: [ai] provider = \"none\": no advisor runs, advice stays neutral.");
            return 0;
        }
        Provider::Offline => {
            let a = OfflineAdvisor::new(OfflineConfig { ttl_ns: ai.ttl_ns(), ..Default::default() })
                .advise(&sample.features, sample.time_ns);
            println!("mmbot ai check: [ai] provider = \"offline\": no LLM is called.");
            println!("  advice     {}", advice_line(&a));
            return 0;
        }
        _ => {}
    }
    let (mut client, key) = match llm_client(ai) {
        Ok(c) => c,
        Err(e) => {
            crate::say!("mmbot ai check: {e}");
            return e.exit_code();
        }
    };
    println!("mmbot ai check: one call with a sample {} book", sample.symbol);
    println!("  provider   {}", ai.provider.llm().unwrap_or(ai.provider).name());
    println!("  endpoint   {}", client.endpoint());
    println!("  model      {}", ai.model);
    match &key {
        Some(k) => {
            if let Some(w) = &k.warning {
                crate::say!("mmbot ai check: warning: {w}");
            }
            println!("  key        {} from {} ({})", k.key.var(), k.source, k.key.hint());
        }
        None => println!("  key        none ({} unset; the provider needs none)", ai.key_var),
    }
    if let Some(code) = check_model_name(ai, &mut client) {
        return code;
    }
    let answer = match ask_once(ai, &mut client, &sample) {
        Ok(a) => a,
        Err(e) => {
            for n in client.take_notices() {
                crate::say!("mmbot ai check: note: {n}");
            }
            crate::say!("mmbot ai check: {e}");
            return e.exit_code();
        }
    };
    let Answer { completion: c, reply, cost_usd } = answer;
    if c.model != ai.model {
        println!("  served by  {}", c.model);
    }
    println!(
        "  latency    {:.0} ms ({} attempt{})",
        c.latency.as_secs_f64() * 1e3,
        c.attempts,
        if c.attempts == 1 { "" } else { "s" }
    );
    println!(
        "  tokens     {} in, {} out{}",
        c.tokens_in,
        c.tokens_out,
        if c.usage_reported { "" } else { " (estimated: the server reported no usage)" }
    );
    match cost_usd {
        Some(cost) => println!(
            "  cost       ${cost:.6} per call; at one call every {} s: ${:.2}/day, ${:.2}/month (30 days)",
            ai.interval.as_secs_f64(),
            cost * calls_per_day(ai.interval.as_secs_f64()),
            cost * calls_per_day(ai.interval.as_secs_f64()) * 30.0
        ),
        None => println!("  cost       unpriced: add \"{}\" to [ai.prices] (USD per million tokens)", ai.model),
    }
    println!("  format     response_format {}", client.response_format().name());
    for n in client.take_notices() {
        crate::say!("mmbot ai check: note: {n}");
    }
    match reply {
        Ok(p) => {
            println!("  advice     {}", advice_line(&p.advice(sample.time_ns, ai.ttl_ns())));
            println!("  liquidity  {}", p.liquidity.as_deref().unwrap_or("-"));
            println!("  risks      {}", if p.risk_signals.is_empty() { "-".into() } else { p.risk_signals.join("; ") });
            println!("  reason     {}", p.reason.as_deref().unwrap_or("-"));
            if !p.defaulted.is_empty() {
                println!("  defaulted  {} (missing or unreadable: neutral)", p.defaulted.join(", "));
            }
            if !p.clamped.is_empty() {
                println!("  clamped    {}", p.clamped.join(", "));
            }
            0
        }
        Err(e) => {
            let raw: String = c.content.chars().take(500).collect();
            println!("  reply      {raw}");
            let e = AiError::Unusable {
                endpoint: client.endpoint().to_string(),
                model: ai.model.clone(),
                detail: e.to_string(),
            };
            crate::say!("mmbot ai check: {e}");
            e.exit_code()
        }
    }
}

/// Whether `[ai] model` is one the provider lists (`GET {base}/models`):
/// `Some(exit code)` ends the check (an unknown model is exit 2, naming
/// close matches); a provider or server without the list, or one that
/// refuses it (some gateways guard /models differently), gets a note and the
/// check goes on to the call, which tests the name and the key anyway.
fn check_model_name(ai: &AiConfig, client: &mut LlmClient) -> Option<i32> {
    if !ai.provider.lists_models() {
        println!(
            "  models     not listed by {} (no /models endpoint); the call below checks the name",
            ai.provider.llm().unwrap_or(ai.provider).name()
        );
        return None;
    }
    match client.list_models() {
        Ok(ids) if models::is_listed(&ids, &ai.model) => {
            println!("  models     \"{}\" is among the {} the server lists", ai.model, ids.len());
            None
        }
        Ok(ids) if ids.is_empty() => {
            println!("  models     the server lists none; the call below checks the name");
            None
        }
        Ok(ids) => {
            let close = models::close_matches(&ids, &ai.model);
            let hint = if close.is_empty() { String::new() } else { format!(" (close: {})", close.join(", ")) };
            crate::say!(
                "mmbot ai check: [ai] model \"{}\" is not among the {} models {}/models lists{hint}: set [ai] \
                 model to one it serves (try one with `mmbot ai check --model NAME`)",
                ai.model,
                ids.len(),
                ai.base_url.as_deref().unwrap_or("")
            );
            Some(2)
        }
        Err(AiError::Refused { status: status @ (404 | 405 | 501), .. }) => {
            println!("  models     this server has no /models list (HTTP {status}); the call below checks the name");
            None
        }
        Err(e) => {
            println!("  models     not listed ({e}); the call below checks the name");
            None
        }
    }
}

fn compare(ai: &AiConfig, models: &[String]) -> i32 {
    let sample = sample_snapshot();
    let models: Vec<&str> = models.iter().map(|m| m.trim()).filter(|m| !m.is_empty()).collect();
    if models.is_empty() {
        crate::say!("mmbot ai compare: --models is empty; give e.g. --models gpt-4.1,deepseek-v3.2");
        return 2;
    }
    let (client, key) = match llm_client(ai) {
        Ok(c) => c,
        Err(e) => {
            crate::say!("mmbot ai compare: {e}");
            return e.exit_code();
        }
    };
    println!(
        "mmbot ai compare: the same prompt (sample {} book) to {} models at {}{}",
        sample.symbol,
        models.len(),
        client.endpoint(),
        key.as_ref().map_or(String::new(), |k| format!(", key {} ({})", k.key.var(), k.key.hint()))
    );
    println!("{:<24} {:>10} {:>7} {:>7} {:>11}  advice", "model", "latency", "in", "out", "cost/call");
    let mut first_failure = None;
    for model in models {
        let m = ai.with_model(model);
        // A client asks the model it was built for: one per model.
        let mut client = match llm_client(&m) {
            Ok((c, _)) => c,
            Err(e) => {
                first_failure.get_or_insert(e.exit_code());
                println!("{:<24} {:>10} {:>7} {:>7} {:>11}  error: {e}", model, "-", "-", "-", "-");
                continue;
            }
        };
        match ask_once(&m, &mut client, &sample) {
            Ok(Answer { completion: c, reply, cost_usd }) => {
                let advice = match &reply {
                    Ok(p) => advice_line(&p.advice(sample.time_ns, m.ttl_ns())),
                    Err(e) => {
                        first_failure.get_or_insert(5);
                        format!("unusable reply: {e}")
                    }
                };
                println!(
                    "{:<24} {:>8.0}ms {:>7} {:>7} {:>11}  {advice}",
                    model,
                    c.latency.as_secs_f64() * 1e3,
                    c.tokens_in,
                    c.tokens_out,
                    usd(cost_usd)
                );
            }
            Err(e) => {
                first_failure.get_or_insert(e.exit_code());
                println!("{:<24} {:>10} {:>7} {:>7} {:>11}  error: {e}", model, "-", "-", "-", "-");
            }
        }
    }
    first_failure.unwrap_or(0)
}

fn cost(ai: &AiConfig, n: Option<f64>, tin: Option<u64>, tout: u64, gain: Option<f64>) -> anyhow::Result<i32> {
    let interval_s = ai.interval.as_secs_f64();
    let per_day = n.unwrap_or_else(|| calls_per_day(interval_s));
    anyhow::ensure!(per_day.is_finite() && per_day >= 0.0, "--calls-per-day must be a number of calls, 0 or more");
    if let Some(g) = gain {
        anyhow::ensure!(g.is_finite(), "--gain-per-day must be a number of USD");
    }
    if ai.prices.is_empty() {
        crate::say!("mmbot ai cost: no model is priced; add models to [ai.prices]");
        return Ok(2);
    }
    let (tin, measured) = match tin {
        Some(t) => (t, ""),
        None => (crate::ai::prompt::sample_prompt_tokens(ai), " (measured: the prompt mmbot sends for a sample book)"),
    };
    match n {
        Some(_) => println!("mmbot ai cost: {per_day} calls a day, {tin} input{measured} + {tout} output tokens a call"),
        None => println!(
            "mmbot ai cost: {per_day:.0} calls a day (one every {interval_s} s, [ai] interval_s), {tin} input{measured} + {tout} output tokens a call"
        ),
    }
    let roi_head = gain.map_or(String::new(), |g| format!("  ROI at ${g:.2}/day"));
    println!(
        "{:<24} {:>9} {:>10} {:>9} {:>11} {:>11} {:>13}{roi_head}",
        "model", "in $/M", "cached $/M", "out $/M", "per call", "per day", "per month"
    );
    for r in cost_table(&ai.prices, per_day, tin, tout, gain) {
        let roi = r.roi.map_or(String::new(), |x| format!("  {:>+.0}%", x * 100.0));
        let marker = if r.model == ai.model { "  <- [ai] model" } else { "" };
        println!(
            "{:<24} {:>9.2} {:>10} {:>9.2} {:>11} {:>11} {:>13}{roi}{marker}",
            r.model,
            r.price.input_per_m,
            r.price.cached_input_per_m.map_or_else(|| "-".to_string(), |c| format!("{c:.3}")),
            r.price.output_per_m,
            format!("${:.6}", r.per_call),
            format!("${:.2}", r.per_day),
            format!("${:.2}", r.per_month)
        );
    }
    println!(
        "(per month = 30 days; prices are USD per million tokens from [ai.prices]; cached: a prompt-cache hit, \
         \"-\" charged as input; providers cache only long prompts (OpenAI: 1,024 tokens and up), so per call \
         prices every prompt token as input)"
    );
    Ok(0)
}
