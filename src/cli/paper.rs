//! `mmbot run` / `mmbot paper --symbol BTCUSDT [--market spot|usdm]
//! [--stream-url ..] [--rest-url ..] [--duration 10m]`: trading on the live
//! feed (or on `mmbot sim`): the hot thread owns the WebSocket, syncs books
//! with REST snapshots and quotes; the exec thread fills them on the paper
//! exchange, or, with `mmbot run --live`, sends them to Binance through the
//! live order manager. Dashboard or status lines while it runs; the report
//! (counts, trading, latency per stage including `wire` and `feed_delay`)
//! at the end.
//!
//! `--live` is guarded: it needs a `[live]` section (limits have no
//! default), keys from the environment or `.env`, market data from the same
//! venue as the orders, and `--yes` or the symbol typed back. Start-up
//! prints what will be traded, the limits and the endpoints. The exit
//! status says how a live run ended ([`live_exit_code`]).

use crate::hot::msg::Symbol;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::cli::feed_args::FeedArgs;
use crate::cli::outputs::{timestamped_dir, write_all_with_feed};
use crate::cli::record::{ctrl_c_flag, signal_flag};
use crate::cli::replay::finish;
use crate::cli::session::{run_session, View};
use crate::config::Config;
use crate::exec::binance::rest::{MAINNET_URL, TESTNET_URL};
use crate::exec::binance::Credentials;
use crate::exec::journal::RunMode;
use crate::exec::live::{LiveExchange, StopReason};
use crate::exec::live_config::{LiveConfig, TESTNET_WS_API_URL};
use crate::exec::risk::{KillReason, RefusalReason};
use crate::feed::endpoint::FeedMarket;
use crate::feed::live::reason_names;
use crate::hot::fixed::Price;
use crate::runtime::{LiveOutcome, Source, Venue};

#[derive(clap::Args, Debug)]
pub struct PaperArgs {
    #[command(flatten)]
    pub feed: FeedArgs,
    /// A Rhai strategy script (overrides `[strategy] script`), reloaded when the file changes.
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Write the report JSON here too.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Status lines instead of the dashboard even on a terminal.
    #[arg(long)]
    pub no_dashboard: bool,
    /// Where the run's folder (report, .hgrm files, plots) goes.
    #[arg(long, default_value = "mmbot-out")]
    pub out: PathBuf,
    /// Binance's spot testnet for market data and orders alike.
    #[arg(long)]
    pub testnet: bool,
    #[command(flatten)]
    pub control: crate::cli::control_plane::ControlArgs,
}

/// The flags only `mmbot run` has: real orders and their safeguards.
#[derive(clap::Args, Debug, Default)]
pub struct LiveFlags {
    /// Real orders (`mmbot run` only): needs `[live]` in the config and
    /// BINANCE_API_KEY plus BINANCE_SECRET_KEY or BINANCE_ED25519_KEY_FILE.
    #[arg(long)]
    pub live: bool,
    /// With --live: do not ask for the typed confirmation.
    #[arg(long, requires = "live")]
    pub yes: bool,
    /// With --live: every order goes to `POST /api/v3/order/test` (the
    /// exchange checks it; nothing is placed, cancelled or filled).
    #[arg(long, requires = "live")]
    pub dry_run: bool,
}

/// `mmbot run`: the paper trader's arguments plus the live flags.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub paper: PaperArgs,
    #[command(flatten)]
    pub live: LiveFlags,
}

/// Exit statuses (one table for every command: [`crate::cli::exit`]).
mod exit {
    pub use crate::cli::exit::{FEED as SOURCE, JOURNAL, KEY as CREDENTIALS, KILL as KILLED, OK};
    pub use crate::cli::exit::{ORDERS_LEFT as LEFT_OPEN, REFUSED as BANNED};
}

/// The exit status for how a live run ended.
pub fn live_exit_code(o: &LiveOutcome) -> i32 {
    if o.stats.left_open > 0 {
        return exit::LEFT_OPEN;
    }
    match o.stop {
        StopReason::Requested | StopReason::Kill(KillReason::Signal) => exit::OK,
        StopReason::Kill(KillReason::IpBanned) | StopReason::Banned => exit::BANNED,
        StopReason::Kill(_) => exit::KILLED,
        StopReason::Credentials => exit::CREDENTIALS,
        StopReason::Journal => exit::JOURNAL,
    }
}

pub fn run(args: PaperArgs, flags: LiveFlags, command: &'static str) -> anyhow::Result<i32> {
    let mut feed_args = args.feed.clone();
    if args.testnet {
        match feed_args.market.as_deref() {
            None | Some("spot-testnet") => feed_args.market = Some("spot-testnet".into()),
            Some(m) => bail!("--testnet trades the spot testnet, but --market {m} asks for another market"),
        }
    }
    let mut config = feed_args.config()?;
    args.control.apply(&mut config)?;
    if config.symbols.is_some() {
        if flags.live {
            return crate::cli::multi_live::live(&args, config, &flags);
        }
        return crate::cli::multi::paper(&args, config, command);
    }
    if flags.dry_run {
        if let Some(l) = config.live.as_mut() {
            l.dry_run = true;
        }
    }
    if flags.live {
        config.live_ladder_fits()?;
    }
    let live = if flags.live { Some(live_setup(&mut config, args.testnet, flags.yes)?) } else { None };
    if live.is_some() {
        // Built again now that `[live]` set the final endpoints: the guard
        // skips the host-wide file when every endpoint is a local simulator.
        config.feed.ip_guard = Some(config.ip_guard().context("opening the IP guard's shared file")?);
    }
    let feed = config.feed.clone();
    let symbol = config.hot.symbol.map_or("-".into(), |s| s.to_string());
    let label: &'static str = if live.is_some() { "live" } else { command };
    crate::say!(
        "mmbot {label}: {} ({}), trading {symbol}; REST {}",
        feed.stream_url(),
        feed.market.name(),
        feed.rest_url()
    );
    // Build the order manager before any thread starts: start-up talks to
    // the exchange (clock, rules, account, open orders) and may fail.
    let venue = match live {
        None => Venue::Paper,
        Some((cfg, rest_creds, stream_creds)) => {
            let sym = config.hot.symbol.context("no symbol to trade")?;
            // One guard for the whole process: the feed's snapshots and
            // connects, the order gateway and the user-data stream.
            let guard = config.feed.ip_guard.clone().unwrap_or_default();
            let ex = LiveExchange::open(&cfg, sym, rest_creds, stream_creds, guard)
                .with_context(|| format!("starting live trading on {} (nothing was sent)", cfg.rest_url))?;
            let r = ex.rules();
            crate::say!(
                "mmbot live: {} is {}: tick {}, step {}, min notional {}, cancelReplace {}; journal run {} in {}; \
                 client ids {}-N",
                r.symbol,
                r.status,
                r.price.tick,
                r.lot.step,
                Price(r.notional.min),
                if r.cancel_replace_allowed { "allowed" } else { "not allowed" },
                ex.run_id().0,
                cfg.journal.display(),
                ex.client_prefix()
            );
            Venue::Live { exchange: Box::new(ex), signal: Some(signal_flag()) }
        }
    };
    let stop = ctrl_c_flag();
    if let Some(d) = args.feed.duration {
        crate::cli::record::stop_after(&stop, d);
    }
    let title = format!("mmbot {label} {symbol} ({})", config.feed.market.name());
    let view = View::auto(args.no_dashboard);
    let dir = timestamped_dir(&args.out)?;
    let _logs = crate::logging::init(view != View::Dashboard, Some(&dir.join("mmbot.log")));
    let run =
        run_session(Source::Live(feed), Vec::new(), &config, args.script.as_ref(), view, stop, label, title, venue)?;
    for e in &run.source_errors {
        crate::say!("mmbot {label}: {e}");
    }
    if let Some(l) = run.link {
        let reasons: Vec<String> = reason_names()
            .filter(|&(_, i)| l.disconnects[i] > 0)
            .map(|(name, i)| format!("{} {name}", l.disconnects[i]))
            .collect();
        crate::say!(
            "mmbot {label}: link: {} connections, disconnects: {}; {} renewals made before break ({} forced); {} server pings answered, {} snapshots received ({} failed, {} discarded)",
            l.connects,
            if reasons.is_empty() { "none".into() } else { reasons.join(", ") },
            l.switches,
            l.switches_forced,
            l.pings_received,
            l.snapshots_received,
            l.snapshots_failed,
            l.snapshots_discarded
        );
    }
    let mut run = run;
    if let Some(o) = &run.live {
        run.report.live = Some(live_json(o));
    }
    finish(&run, label, args.report.as_ref())?;
    let written = write_all_with_feed(&dir, &run.report, run.feed.as_ref(), &run.histograms)?;
    crate::say!("mmbot {label}: wrote {} files to {}", written.len(), dir.display());
    // A run that never connected, or never had a synced book, did not do
    // its job: it says so and exits with the feed's status.
    let never = match (&run.link, &run.feed) {
        (Some(l), _) if l.connects == 0 => Some(format!(
            "never connected to {} (the attempts and their errors are in mmbot.log)",
            config.feed.stream_url()
        )),
        (_, Some(f)) if !f.synced_once => Some(format!(
            "connected but the book never synced ({} snapshots asked, {} answered, {} failed; see mmbot.log)",
            f.snapshots.asked, f.snapshots.answered, f.snapshots.failed
        )),
        _ => None,
    };
    if let Some(why) = &never {
        crate::say!("mmbot {label}: {why}");
    }
    let script = crate::cli::exit::script_failed(&run.report.trading, config.max_script_error_share);
    if let Some(why) = &script {
        crate::say!("mmbot {label}: {why}");
    }
    let source_code = match (run.source_errors.is_empty() && never.is_none(), &script) {
        (false, _) => exit::SOURCE,
        (true, Some(_)) => crate::cli::exit::SCRIPT,
        (true, None) => exit::OK,
    };
    Ok(match &run.live {
        Some(o) => {
            print_live_summary(o);
            match live_exit_code(o) {
                exit::OK => source_code,
                code => code,
            }
        }
        None => source_code,
    })
}

/// Checks and prints what `--live` will do, loads the keys, and asks for
/// the confirmation; the validated `[live]` and two copies of the keys (the
/// user-data stream signs on its own thread).
fn live_setup(config: &mut Config, testnet: bool, yes: bool) -> anyhow::Result<(LiveConfig, Credentials, Credentials)> {
    let sym = config.hot.symbol.context("no symbol to trade: give --symbol")?;
    if config.feed.symbols.first() != Some(&sym) {
        bail!("--live trades the first --symbol; [market] symbol {sym} is not the first streamed symbol");
    }
    live_setup_for(config, testnet, yes, &[sym])
}

/// [`live_setup`] for `symbols` (one, or a `[[symbols]]` run's): the
/// banner names them all and the confirmation asks for the first.
pub(crate) fn live_setup_for(
    config: &mut Config,
    testnet: bool,
    yes: bool,
    symbols: &[Symbol],
) -> anyhow::Result<(LiveConfig, Credentials, Credentials)> {
    let Some(mut cfg) = config.live.clone() else {
        bail!(
            "--live needs a [live] section in the config (--config FILE): at least max_position, \
             max_order_notional and daily_loss_limit; see mmbot.example.toml"
        );
    };
    if testnet {
        cfg.rest_url = TESTNET_URL.into();
        cfg.ws_api_url = TESTNET_WS_API_URL.into();
        cfg.mode = RunMode::Testnet;
    }
    cfg.levels = config.strategy_levels;
    let feed = &config.feed;
    if feed.market == FeedMarket::Usdm {
        bail!("--live trades Binance spot; --market usdm is for market data only");
    }
    // Quotes priced from one venue's book must not be sent to another's:
    // testnet books have nothing to do with mainnet prices. Custom URLs
    // (a local simulator) are the operator's call.
    let custom_feed = feed.stream_url.is_some() || feed.rest_url.is_some();
    if !custom_feed {
        if cfg.rest_url == MAINNET_URL && feed.market == FeedMarket::SpotTestnet {
            bail!(
                "orders on mainnet ([live] base_url) priced from testnet data (--market spot-testnet): use one venue"
            );
        }
        if cfg.rest_url == TESTNET_URL && feed.market == FeedMarket::Spot {
            bail!(
                "orders on the testnet ([live] base_url = \"testnet\") priced from mainnet data: add --testnet \
                 (or --market spot-testnet), or set [live] base_url = \"mainnet\" for real money"
            );
        }
    }
    let sym = *symbols.first().context("no symbol to trade: give --symbol")?;
    let names = symbols.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ");
    let rest_creds = Credentials::load(&cfg.env_file).context("--live: loading the API keys")?;
    let stream_creds = Credentials::load(&cfg.env_file).context("--live: loading the API keys")?;
    let l = &cfg.limits;
    let k = &cfg.kill;
    let venue = match cfg.mode {
        RunMode::Live => "MAINNET: REAL MONEY",
        _ => "testnet or simulator: no real money",
    };
    crate::say!("mmbot live: trading {names} on {venue}");
    if cfg.dry_run {
        crate::say!("  DRY RUN:  every order goes to /api/v3/order/test; nothing is placed, cancelled or filled");
    }
    crate::say!("  orders:   {}  (user data: {})", cfg.rest_url, cfg.ws_api_url);
    crate::say!("  market:   {}  (snapshots: {})", feed.stream_url(), feed.rest_url());
    crate::say!("  key:      {rest_creds}");
    crate::say!(
        "  limits:   position {} base, order notional {} quote, {} open orders, daily loss {} quote",
        l.max_position,
        Price(l.max_order_notional),
        l.max_open_orders,
        Price(l.daily_loss_limit)
    );
    if cfg.levels > 1 {
        crate::say!("  ladder:   {} orders a side ([strategy] levels)", cfg.levels);
    }
    crate::say!(
        "  kill:     {} rejects in {} s, feed stale {} s, book unsynced {} s; after a 418 wait up to {} s to cancel",
        k.max_rejects,
        k.reject_window_ns / 1_000_000_000,
        k.stale_feed_ns / 1_000_000_000,
        k.unsynced_ns / 1_000_000_000,
        cfg.ban_wait_max.as_secs()
    );
    crate::say!(
        "  orders found open at start: {}; journal: {}",
        match cfg.orphans {
            crate::exec::live_config::OrphanPolicy::Cancel => "cancelled",
            crate::exec::live_config::OrphanPolicy::Adopt => "adopted",
        },
        cfg.journal.display()
    );
    if !yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            bail!("--live asks for a typed confirmation on a terminal; add --yes to confirm non-interactively");
        }
        eprint!("Type the symbol ({sym}) to start trading, anything else to quit: ");
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        stdin.lock().read_line(&mut answer).context("reading the confirmation")?;
        if !answer.trim().eq_ignore_ascii_case(sym.as_str()) {
            bail!("not confirmed ({:?} is not {sym}); nothing was sent", answer.trim());
        }
    }
    config.live = Some(cfg.clone());
    Ok((cfg, rest_creds, stream_creds))
}

/// The live outcome for the report JSON.
pub(crate) fn live_json(o: &LiveOutcome) -> serde_json::Value {
    let s = &o.stats;
    let p = &o.position;
    let refused: serde_json::Map<String, serde_json::Value> =
        RefusalReason::ALL.into_iter().map(|r| (r.as_str().to_string(), o.risk.refused(r).into())).collect();
    let mut v = serde_json::json!({
        "stop": o.stop.to_string(),
        "exit_status": live_exit_code(o),
        "journal": o.journal.display().to_string(),
        "run_id": o.run_id.0,
        "client_prefix": o.client_prefix,
        "position": p.qty().to_string(),
        "max_abs_position": p.max_abs().to_string(),
        "realized": Price(p.realized()).to_string(),
        "fees": Price(p.fees()).to_string(),
        "orders": s.orders,
        "replaces": s.replaces,
        "cancels": s.cancels,
        "fills": s.fills,
        "fills_recovered": s.fills_recovered,
        "stream_fill_gaps": s.stream_fill_gaps,
        "duplicate_fills": s.duplicate_fills,
        "rejected": s.rejected,
        "would_take": s.would_take,
        "refused_by_filter": s.refused_by_filter,
        "refused_by_risk": s.refused_by_risk,
        "refused": refused,
        "last_refusal": s.last_refusal,
        "lookups": s.lookups,
        "lookups_found": s.lookups_found,
        "lookups_absent": s.lookups_absent,
        "clock_resyncs": s.clock_resyncs,
        "waits": s.waits,
        "dry_run": s.dry_run_tested > 0 || o.dry_run,
        "dry_run_tested": s.dry_run_tested,
        "ban_waits": s.ban_waits,
        "left_open": s.left_open,
        "balance_refreshes": s.balance_refreshes,
        "reconciles": s.reconciles,
        "resubscribes": s.resubscribes,
        "orphans_canceled": s.orphans_canceled,
        "orphans_adopted": s.orphans_adopted,
        "last_error": s.last_error,
    });
    // A second object: one json! call this long hits the macro's recursion limit.
    let more = serde_json::json!({
        "lookups_too_early": s.lookups_too_early,
        "unknown_fates": s.unknown_fates,
        "refused_locally": s.refused_locally,
        "stp_expired": s.stp_expired,
        "max_in_flight": s.max_in_flight,
        "overtaken_by_stream": s.overtaken_by_stream,
        "fees_by_asset": {
            "quote": Price(p.fees_by_asset().quote).to_string(),
            "base": Price(p.fees_by_asset().base).to_string(),
            "base_value_in_quote": Price(p.fees_by_asset().base_value).to_string(),
            "bnb": Price(p.fees_by_asset().bnb).to_string(),
            "other": Price(p.fees_by_asset().other).to_string(),
        },
        "bnb_price": p.bnb_price().map(|b| serde_json::json!({ "price": b.price.to_string(), "source": b.source.as_str() })),
        "unpriced_fees": p.has_unpriced_fees(),
        "balance_checks": s.balance_checks,
        "balance_drifts": s.balance_drifts,
        "order_rtt": order_rtt_json(&o.order_rtt),
        "gateway": serde_json::to_value(o.gateway).unwrap_or_default(),
    });
    if let (Some(a), serde_json::Value::Object(b)) = (v.as_object_mut(), more) {
        a.extend(b);
    }
    v
}

/// Order round trips per method, ns (methods with no sample left out).
fn order_rtt_json(r: &crate::exec::live::OrderRtt) -> serde_json::Value {
    let m: serde_json::Map<String, serde_json::Value> = crate::exec::live::rtt_methods()
        .iter()
        .filter(|m| r.percentiles(m).count > 0)
        .map(|m| (m.to_string(), serde_json::to_value(r.percentiles(m)).unwrap_or_default()))
        .collect();
    serde_json::Value::Object(m)
}

/// How the live run ended, in words, with where to look.
pub(crate) fn print_live_summary(o: &LiveOutcome) {
    let s = &o.stats;
    let p = &o.position;
    if o.dry_run {
        crate::say!(
            "mmbot live: dry run: {} orders checked by the exchange (order/test), none placed",
            s.dry_run_tested
        );
    }
    crate::say!(
        "mmbot live: {}; {} orders ({} replaces), {} cancels, {} fills ({} recovered over REST, {} duplicates dropped, \
         {} stream gaps)",
        o.stop, s.orders, s.replaces, s.cancels, s.fills, s.fills_recovered, s.duplicate_fills, s.stream_fill_gaps
    );
    crate::say!(
        "mmbot live: position {} (max {}), realized {}, fees {}; {} rejected by the exchange ({} would have taken), \
         {} unknown fates ({} lookups: {} found, {} absent after their deadline, {} too early to tell)",
        p.qty(),
        p.max_abs(),
        Price(p.realized()),
        Price(p.fees()),
        s.rejected,
        s.would_take,
        s.unknown_fates,
        s.lookups,
        s.lookups_found,
        s.lookups_absent,
        s.lookups_too_early
    );
    let f = p.fees_by_asset();
    let bnb = match p.bnb_price() {
        Some(b) => format!(" at {} ({})", b.price, b.source.as_str()),
        None if f.bnb != 0 => " (unpriced: set [live] bnb_price)".into(),
        None => String::new(),
    };
    crate::say!(
        "mmbot live: fees by asset: {} quote, {} base (worth {} quote at the fills' prices), {} BNB{bnb}{}",
        Price(f.quote),
        Price(f.base),
        Price(f.base_value),
        Price(f.bnb),
        if f.other != 0 { format!(", {} in other assets (unpriced)", Price(f.other)) } else { String::new() }
    );
    let place = o.order_rtt.percentiles("place");
    if place.count > 0 {
        crate::say!(
            "mmbot live: order round trip (place): p50 {:.1} ms, p99 {:.1} ms over {} orders; {} refused locally              (rate-limit back-off or ban: never sent)",
            place.p50 as f64 / 1e6,
            place.p99 as f64 / 1e6,
            place.count,
            s.refused_locally
        );
    }
    let refused: Vec<String> = RefusalReason::ALL
        .into_iter()
        .filter(|&r| o.risk.refused(r) > 0)
        .map(|r| format!("{} {}", o.risk.refused(r), r.as_str()))
        .collect();
    crate::say!(
        "mmbot live: refused before sending: {} by filters, {}; {} waits for rate limits, {} clock resyncs, \
         {} user-data resubscriptions, {} reconciliations",
        s.refused_by_filter,
        if refused.is_empty() { "none by the checks".into() } else { refused.join(", ") },
        s.waits,
        s.clock_resyncs,
        s.resubscribes,
        s.reconciles
    );
    if let Some(e) = &s.last_error {
        crate::say!("mmbot live: last exchange error: {e}");
    }
    if s.left_open > 0 {
        crate::say!(
            "mmbot live: ALERT: {} order(s) of this run may still rest on the exchange (it refused the cancel: {}). \
             Cancel them by hand, or start mmbot again once the exchange answers (after a ban: once it has \
             lifted): it cancels them before quoting.",
            s.left_open,
            s.last_error.as_deref().unwrap_or("no answer")
        );
    }
    crate::say!(
        "mmbot live: journal run {} in {}: sqlite3 {} \"select * from orders where run = {}\"",
        o.run_id.0,
        o.journal.display(),
        o.journal.display(),
        o.run_id.0
    );
}
