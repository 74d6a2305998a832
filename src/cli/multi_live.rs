//! `mmbot run --live` with `[[symbols]]`: several symbols traded for real
//! from one account.
//!
//! Start-up, before any thread starts and before any order: the keys and
//! the confirmation (every symbol named), the account (may it trade?), the
//! allocator's view of it from the exchange's free balances (the budgets
//! must fit in what the account really holds), then each symbol's order
//! manager on one [`AccountHub`] (its rules from exchangeInfo, its levels
//! against `MAX_NUM_ORDERS`, what earlier runs left reconciled). A symbol
//! that fails stops the start, naming its entry; nothing was sent.
//!
//! Then the multi-symbol runtime (`runtime::multi::run_live_multi`) trades
//! until the duration, Ctrl-C, or every symbol stopping on its limits; each
//! symbol cancels and settles at the end. The report gets each symbol's
//! `live` section, and the exit status is the worst symbol's.

use anyhow::{bail, Context};

use crate::cli::multi::{finish, setup, watched, RunSetup};
use crate::cli::paper::{live_exit_code, live_json, live_setup_for, print_live_summary, LiveFlags, PaperArgs};
use crate::cli::session::live_venue_label;
use crate::config::Config;
use crate::exec::binance::keys::Credentials;
use crate::exec::binance::rest::{RestClient, RestConfig};
use crate::exec::journal::Journal;
use crate::exec::live::hub::AccountHub;
use crate::exec::live::{LiveExchange, LiveParts};
use crate::exec::risk::{KillSwitch, RiskCheck};
use crate::hot::fixed::Price;
use crate::hot::msg::Symbol;
use crate::runtime::multi::{run_live_multi, MultiSource};

pub(crate) fn live(args: &PaperArgs, mut config: Config, flags: &LiveFlags) -> anyhow::Result<i32> {
    let label = "live";
    let mut symbols = config.symbols.take().context("a [[symbols]] config")?;
    let names: Vec<Symbol> = symbols.entries.iter().map(|e| e.budget.symbol).collect();
    for (i, e) in symbols.entries.iter().enumerate() {
        e.config.live_ladder_fits().with_context(|| format!("[[symbols]] entry {i} ({})", e.budget.symbol))?;
    }
    if flags.dry_run {
        if let Some(l) = config.live.as_mut() {
            l.dry_run = true;
        }
    }
    let (cfg, rest_creds, stream_creds) = live_setup_for(&mut config, args.testnet, flags.yes, &names)?;
    // Built again now that `[live]` set the final endpoints (see `run`).
    config.feed.ip_guard = Some(config.ip_guard().context("opening the IP guard's shared file")?);
    let guard = config.feed.ip_guard.clone().unwrap_or_default();
    let rc = RestConfig {
        base_url: cfg.rest_url.clone(),
        recv_window: cfg.recv_window,
        timeout: cfg.timeout,
        ..RestConfig::with_base(&cfg.rest_url)
    };
    let mut rest = RestClient::with_guard(&rc, rest_creds, guard.clone()).context("the REST client")?;
    rest.sync_clock().context("measuring the clock against the exchange (nothing was sent)")?;
    let account = rest.account().context("reading the account (nothing was sent)")?;
    if !account.can_trade {
        bail!("the account may not trade (canTrade is false): enable spot trading for this API key");
    }
    // The allocator starts from what the account really holds, not from
    // the config's [account] balances (those are for backtests and paper).
    if let Some(acct) = symbols.account.as_mut() {
        acct.balances = account.balances.iter().map(|b| (b.asset.clone(), b.free.0)).collect();
    }
    if let Some(acct) = &symbols.account {
        symbols
            .check_budgets(&acct.balances, "add to the account (these are its free balances now)")
            .context("the symbols' budgets against the exchange's balances (nothing was sent)")?;
    }
    let hub = AccountHub::start(&cfg, names[0], rest.clone(), stream_creds, guard)
        .context("starting the order gateway (nothing was sent)")?;
    let mut live = Vec::with_capacity(names.len());
    for (i, e) in symbols.entries.iter().enumerate() {
        let sym = e.budget.symbol;
        let entry = format!("[[symbols]] entry {i} ({sym})");
        let ex = start_symbol(&cfg, &e.config, sym, &rest, &hub, i, account.commission.maker)
            .with_context(|| format!("{entry}: starting live trading on {} (nothing was sent)", cfg.rest_url))?;
        let r = ex.rules();
        if (r.base_asset.as_str(), r.quote_asset.as_str()) != (e.budget.base.as_str(), e.budget.quote.as_str()) {
            bail!(
                "{entry}: the exchange trades {sym} as {}/{} but the config says {}/{}: fix symbols[{i}].base and \
                 .quote (nothing was sent)",
                r.base_asset,
                r.quote_asset,
                e.budget.base,
                e.budget.quote
            );
        }
        crate::say!(
            "mmbot live: {sym} is {}: tick {}, step {}, min notional {}; {} levels; journal run {}; client ids {}-N",
            r.status,
            r.price.tick,
            r.lot.step,
            Price(r.notional.min),
            ex.levels(),
            ex.run_id().0,
            ex.client_prefix()
        );
        live.push(ex);
    }
    let RunSetup { stop, dir, view, _logs, strategies } = setup(args, &symbols)?;
    let feed = config.feed.clone();
    let title = format!("mmbot live {}", names.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" "));
    let mode = live_venue_label(&config);
    let run = watched(label, &title, &mode, view, &stop, &config.control, |status| {
        let source = MultiSource::Live(Box::new(feed.clone()));
        run_live_multi(source, &symbols, strategies, config.hot_core, stop.clone(), status, live)
    })?;
    for e in &run.source_errors {
        crate::say!("mmbot {label}: {e}");
    }
    if hub.unrouted() > 0 {
        crate::say!(
            "mmbot {label}: {} executionReports named symbols this run does not trade (another program on the \
             account?); ignored",
            hub.unrouted()
        );
    }
    let mut report = run.report.clone();
    for (s, o) in report.symbols.iter_mut().zip(&run.live) {
        s.live = Some(live_json(o));
    }
    let path = dir.join("report.json");
    finish(label, &report, Some(&path))?;
    if let Some(extra) = &args.report {
        std::fs::copy(&path, extra).with_context(|| format!("writing {}", extra.display()))?;
    }
    let mut code = crate::cli::exit::OK;
    for (s, o) in report.symbols.iter().zip(&run.live) {
        crate::say!("mmbot live: {}:", s.symbol);
        print_live_summary(o);
        let c = live_exit_code(o);
        if code == crate::cli::exit::OK {
            code = c;
        }
    }
    if code == crate::cli::exit::OK && (!run.source_errors.is_empty() || run.links.iter().any(|l| l.connects == 0)) {
        return Ok(crate::cli::exit::FEED);
    }
    Ok(code)
}

/// One symbol's order manager on the hub: its own limits (`[live]` with
/// the entry's `[symbols.live]`), levels, journal handle and kill switch;
/// the account's endpoints, mode and dry-run flag from `account`.
fn start_symbol(
    account: &crate::exec::live_config::LiveConfig,
    config: &Config,
    sym: Symbol,
    rest: &RestClient,
    hub: &AccountHub,
    index: usize,
    maker_fee: i64,
) -> anyhow::Result<LiveExchange> {
    let mut cfg = config.live.clone().unwrap_or_else(|| account.clone());
    cfg.rest_url = account.rest_url.clone();
    cfg.ws_api_url = account.ws_api_url.clone();
    cfg.mode = account.mode;
    cfg.dry_run = account.dry_run;
    cfg.levels = config.strategy_levels;
    let mut rest = rest.clone();
    let name = sym.as_str().to_string();
    let info = rest.exchange_info(&name)?;
    let Some(rules) = info.symbol(&name) else {
        bail!("the exchange does not list {name}: check symbols[{index}].symbol");
    };
    if !rules.limit_maker_allowed {
        bail!("{name} does not take LIMIT_MAKER orders, and mmbot only sends post-only orders");
    }
    let risk =
        RiskCheck::new(cfg.limits, &rules.base_asset, &rules.quote_asset, maker_fee, crate::exec::live::wall_ns())?;
    let journal = Journal::open(&cfg.journal)?;
    let kill = KillSwitch::new(cfg.kill);
    let stream_creds = Credentials::load(&cfg.env_file).context("loading the API keys")?;
    let parts = LiveParts { rest, stream_creds, journal, risk, kill };
    Ok(LiveExchange::start_shared(&cfg, sym, parts, hub, index)?)
}
