//! `mmbot sim [--listen 127.0.0.1:PORT] [--symbol ..] [--market spot|usdm]
//! [--synthetic | --replay FILE] [--speed X] [--account KEY:SECRET ..]
//! [exchange flags] [fault flags]`: a local Binance-compatible market-data
//! server and spot exchange (see `crate::sim`), for tests, the offline
//! demo, and anyone who wants to watch the bot cope with faults. The
//! exchange flags set its rate limits, BNB fees and MAX_NUM_ORDERS; every
//! fault is off unless its flag is given. The WebSocket API on
//! `/ws-api/v3` also answers `depth` (market data), so a client can get a
//! snapshot there while `--rest-ban-for` refuses REST.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::feed_args::parse_duration;
use crate::cli::record::ctrl_c_flag;
use crate::sim::exchange::{BnbFees, ExchangeConfig, SimAccount, SimLimits};
use crate::sim::faults::Faults;
use crate::sim::flow::SimMarket;
use crate::sim::{Sim, SimConfig, SimSource};

#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free one, printed at start).
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub listen: SocketAddr,
    /// Symbols to serve (repeat for several).
    #[arg(long = "symbol", default_value = "BTCUSDT")]
    pub symbols: Vec<String>,
    /// spot or usdm (payload formats and REST paths).
    #[arg(long, default_value = "spot")]
    pub market: String,
    /// Serve the order-flow model (the default).
    #[arg(long, conflicts_with = "replay")]
    pub synthetic: bool,
    /// Serve this recording instead.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Replay speed (multiple of recorded time).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Seed of the order-flow model.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Order-flow events per second in the calm regime.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Ping each client this often.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub ping_every: Duration,
    /// Stop after this long (default: until Ctrl-C).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Fault: drop every Nth depth diff.
    #[arg(long, default_value_t = 0)]
    pub drop_diff_every: u64,
    /// Fault: close each connection this long after it opened.
    #[arg(long, value_parser = parse_duration)]
    pub disconnect_every: Option<Duration>,
    /// Fault: hold every frame this long.
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// Fault: send a malformed frame after every N frames.
    #[arg(long, default_value_t = 0)]
    pub malformed_every: u64,
    /// Fault: send serverShutdown this long after each connection opened.
    #[arg(long, value_parser = parse_duration)]
    pub shutdown_after: Option<Duration>,
    /// Fault: never answer the client's pings.
    #[arg(long)]
    pub ignore_pings: bool,
    /// Fault: refuse WebSocket connections for this long after start.
    #[arg(long, value_parser = parse_duration)]
    pub refuse_for: Option<Duration>,
    /// Fault: serve the first N REST snapshots stale.
    #[arg(long, default_value_t = 0)]
    pub stale_snapshots: u32,
    /// A trading account, `API_KEY:HMAC_SECRET` (repeat for several); each
    /// starts with the `--balance` amounts.
    #[arg(long = "account")]
    pub accounts: Vec<String>,
    /// Starting balance of every account, `ASSET=AMOUNT` (repeat).
    #[arg(long = "balance", default_values_t = ["BTC=1".to_string(), "USDT=100000".to_string()])]
    pub balances: Vec<String>,
    /// Maker commission rate of every account (0.001 = 0.1%).
    #[arg(long, default_value = "0.001")]
    pub commission: String,
    /// Fault: answer every Nth order request with HTTP 429 -1015 (order count).
    #[arg(long, default_value_t = 0)]
    pub throttle_order_every: u64,
    /// Fault: answer every Nth order request with HTTP 418 (IP ban).
    #[arg(long, default_value_t = 0)]
    pub ban_order_every: u64,
    /// Fault: ban the IP (for --ban-for) once this many requests arrive inside a 429's Retry-After.
    #[arg(long, default_value_t = 0)]
    pub ban_after_ignored_429s: u64,
    /// How long the --ban-order-every ban lasts (every trading request gets 418 meanwhile).
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub ban_for: Duration,
    /// Fault: place every Nth order, then answer HTTP 503 (fate unknown).
    #[arg(long, default_value_t = 0)]
    pub error_after_order_every: u64,
    /// Fault: hold the answer to every Nth order request by --order-delay.
    #[arg(long, default_value_t = 0)]
    pub delay_order_every: u64,
    /// How long --delay-order-every holds an answer.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub order_delay: Duration,
    /// Fault: drop each user-data (/ws-api/v3) connection this long after it opened.
    #[arg(long, value_parser = parse_duration)]
    pub drop_user_data_every: Option<Duration>,
    /// Fault: the exchange clock is this many ms ahead (negative: behind).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub clock_offset_ms: i64,
    /// The exchange's limits and fee payment, and the faults added for
    /// Binance's documented trading behaviour (boxed: clap's args stay small).
    #[command(flatten)]
    pub venue: Box<VenueArgs>,
}

/// `mmbot sim` flags for the exchange's rules and its newer faults.
#[derive(clap::Args, Debug)]
pub struct VenueArgs {
    /// Fault: answer every Nth request (REST or WS-API) with HTTP 429 -1003 (request weight).
    #[arg(long, default_value_t = 0)]
    pub throttle_weight_every: u64,
    /// Fault: answer every Nth new order -1007 TIMEOUT; the order reaches the engine --late-order-by later.
    #[arg(long, default_value_t = 0)]
    pub late_order_every: u64,
    /// How late --late-order-every orders reach the engine (capped by timestamp+recvWindow and 10 s).
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub late_order_by: Duration,
    /// Fault: place every Nth order request, then answer -1006 UNEXPECTED_RESP (fate unknown).
    #[arg(long, default_value_t = 0)]
    pub unexpected_resp_every: u64,
    /// Fault: a slow exchange: hold every REST and WS-API answer this long (concurrently).
    #[arg(long, value_parser = parse_duration)]
    pub slow_answers: Option<Duration>,
    /// Fault: every this long, another order of the same account takes against its oldest resting order.
    #[arg(long, value_parser = parse_duration)]
    pub self_trade_every: Option<Duration>,
    /// The --self-trade-every taker's selfTradePreventionMode (NONE, EXPIRE_TAKER, EXPIRE_MAKER,
    /// EXPIRE_BOTH, DECREMENT, TRANSFER).
    #[arg(long, default_value = "EXPIRE_MAKER")]
    pub self_trade_mode: String,
    /// Fault: push serverShutdown to each WebSocket API session this long after it opened.
    #[arg(long, value_parser = parse_duration)]
    pub ws_api_shutdown_after: Option<Duration>,
    /// How long a WebSocket API session is served after its serverShutdown, before it is closed.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub ws_api_shutdown_grace: Duration,
    /// Pay commission in BNB (BNB burn on) when the account holds enough BNB (give it with --balance BNB=..).
    #[arg(long, requires = "bnb_price")]
    pub bnb_fees: bool,
    /// One BNB in the symbol's quote asset, for --bnb-fees (e.g. 600).
    #[arg(long)]
    pub bnb_price: Option<String>,
    /// The factor commission_faq.md multiplies the BNB commission by (its example: 0.25).
    #[arg(long, default_value = "0.25")]
    pub bnb_discount: String,
    /// REQUEST_WEIGHT limit per minute for the IP.
    #[arg(long, default_value_t = 6000)]
    pub weight_limit: u64,
    /// RAW_REQUESTS limit per 5 minutes for the IP.
    #[arg(long, default_value_t = 61_000)]
    pub raw_requests_limit: u64,
    /// ORDERS limit per 10 seconds per account.
    #[arg(long, default_value_t = 50)]
    pub orders_per_10s: u64,
    /// ORDERS limit per day per account.
    #[arg(long, default_value_t = 160_000)]
    pub orders_per_day: u64,
    /// The symbol's MAX_NUM_ORDERS filter (open orders per account).
    #[arg(long, default_value_t = 200)]
    pub max_num_orders: u32,
    /// Synthetic symbols move together: correlation of any two symbols'
    /// fair-value moves, 0 (each on its own) to 1.
    #[arg(long, default_value_t = 0.0)]
    pub correlation: f64,
    /// Where a synthetic symbol starts, `SYMBOL=PRICE` (repeat); the rest at 60000.
    #[arg(long = "price")]
    pub prices: Vec<String>,
    /// Market-data truth faults.
    #[command(flatten)]
    pub truth: TruthArgs,
}

/// `mmbot sim` faults in what the market data says (each off by default).
#[derive(clap::Args, Debug)]
pub struct TruthArgs {
    /// Fault: before every Nth depth diff, send a copy with U and u raised by 10^9 (pu kept).
    #[arg(long, default_value_t = 0)]
    pub id_jump_every: u64,
    /// Fault: before every Nth depth diff, send a copy with U = u + 10^9 (U > u).
    #[arg(long, default_value_t = 0)]
    pub inverted_ids_every: u64,
    /// Fault: served snapshots (REST and WS-API depth) lack the Nth best bid (2: the second best).
    #[arg(long, default_value_t = 0)]
    pub omit_snapshot_bid: usize,
    /// Fault: every REST request answers HTTP 429 -1003 (RAW_REQUESTS, REST only) for this long after
    /// start; the WebSocket API (its depth request included) keeps answering.
    #[arg(long, value_parser = parse_duration)]
    pub rest_ban_for: Option<Duration>,
    /// Fault: after each --disconnect-every drop, refuse the next N market-stream connects (HTTP 503).
    #[arg(long, default_value_t = 0, requires = "disconnect_every")]
    pub refuse_after_disconnect: u32,
}

/// Lines of a `--replay` file read before serving, to check it has depth.
const REPLAY_CHECK_LINES: usize = 50_000;

pub fn run(args: SimArgs) -> anyhow::Result<i32> {
    let market = match args.market.as_str() {
        "spot" => SimMarket::Spot,
        "usdm" => SimMarket::Usdm,
        m => anyhow::bail!("--market {m:?}: use spot or usdm"),
    };
    anyhow::ensure!(args.speed.is_finite() && args.speed > 0.0, "--speed {} must be a positive number", args.speed);
    anyhow::ensure!(args.rate.is_finite() && args.rate > 0.0, "--rate {} must be a positive number", args.rate);
    let source = match &args.replay {
        Some(f) => {
            anyhow::ensure!(f.exists(), "--replay {}: no such file", f.display());
            // Fail now, not after serving nothing: the file must carry depth
            // for the symbols asked (read from its first lines).
            let have = crate::sim::market::replay_depth_symbols(f, REPLAY_CHECK_LINES)
                .with_context(|| format!("--replay {}: cannot read it", f.display()))?;
            let asked: Vec<String> = args.symbols.iter().map(|s| s.to_ascii_uppercase()).collect();
            if !asked.iter().any(|s| have.contains(s)) {
                anyhow::bail!(
                    "--replay {}: no depth frames for {} in its first {REPLAY_CHECK_LINES} lines ({}); \
                     pass --symbol with one the file has",
                    f.display(),
                    asked.join(", "),
                    if have.is_empty() {
                        "none at all: a recording's lines are `<recv_ts_ns> {\"stream\":\"<sym>@depth..\",\"data\":..}`"
                            .into()
                    } else {
                        format!("it has {}", have.join(", "))
                    }
                );
            }
            SimSource::Replay { files: vec![f.clone()], speed: args.speed }
        }
        None => SimSource::Synthetic { seed: args.seed, events_per_sec: args.rate },
    };
    let faults = Faults {
        drop_diff_every: args.drop_diff_every,
        disconnect_every: args.disconnect_every,
        delay: args.delay.unwrap_or_default(),
        malformed_every: args.malformed_every,
        shutdown_after: args.shutdown_after,
        ignore_pings: args.ignore_pings,
        refuse_for: args.refuse_for.unwrap_or_default(),
        stale_snapshots: args.stale_snapshots,
        throttle_order_every: args.throttle_order_every,
        throttle_weight_every: args.venue.throttle_weight_every,
        late_order_every: args.venue.late_order_every,
        late_order_by: args.venue.late_order_by,
        unexpected_resp_every: args.venue.unexpected_resp_every,
        slow_answers: args.venue.slow_answers.unwrap_or_default(),
        self_trade_every: args.venue.self_trade_every,
        self_trade_mode: args.venue.self_trade_mode.to_ascii_uppercase(),
        ws_api_shutdown_after: args.venue.ws_api_shutdown_after,
        ws_api_shutdown_grace: Some(args.venue.ws_api_shutdown_grace),
        ban_order_every: args.ban_order_every,
        ban_for: Some(args.ban_for),
        ban_after_ignored_429s: args.ban_after_ignored_429s,
        error_after_order_every: args.error_after_order_every,
        delay_order_every: args.delay_order_every,
        order_delay: args.order_delay,
        drop_user_data_every: args.drop_user_data_every,
        clock_offset_ms: args.clock_offset_ms,
        id_jump_every: args.venue.truth.id_jump_every,
        inverted_ids_every: args.venue.truth.inverted_ids_every,
        omit_snapshot_bid: args.venue.truth.omit_snapshot_bid,
        rest_ban_for: args.venue.truth.rest_ban_for.unwrap_or_default(),
        refuse_after_disconnect: args.venue.truth.refuse_after_disconnect,
    };
    anyhow::ensure!(
        crate::sim::exchange::rules::STP_MODES.contains(&faults.self_trade_mode.as_str()),
        "--self-trade-mode {:?}: use one of {}",
        args.venue.self_trade_mode,
        crate::sim::exchange::rules::STP_MODES.join(", ")
    );
    let decimal = |flag: &str, v: &str| -> anyhow::Result<i64> {
        v.parse::<crate::hot::fixed::Qty>()
            .map(|q| q.0)
            .map_err(|e| anyhow::anyhow!("{flag} {v:?} is not a decimal ({e})"))
    };
    let bnb_fees = match (&args.venue.bnb_price, args.venue.bnb_fees) {
        (Some(p), true) => {
            let price = decimal("--bnb-price", p)?;
            anyhow::ensure!(price > 0, "--bnb-price {p} must be above zero");
            Some(BnbFees { price, discount: decimal("--bnb-discount", &args.venue.bnb_discount)? })
        }
        _ => None,
    };
    let exchange = ExchangeConfig {
        limits: SimLimits {
            weight_per_minute: args.venue.weight_limit,
            raw_requests_per_5m: args.venue.raw_requests_limit,
            orders_per_10s: args.venue.orders_per_10s,
            orders_per_day: args.venue.orders_per_day,
        },
        bnb_fees,
        max_num_orders: args.venue.max_num_orders,
    };
    let mut balances = Vec::new();
    for b in &args.balances {
        let (asset, amount) =
            b.split_once('=').ok_or_else(|| anyhow::anyhow!("--balance {b:?}: use ASSET=AMOUNT, e.g. USDT=10000"))?;
        let _: crate::hot::fixed::Qty =
            amount.parse().map_err(|e| anyhow::anyhow!("--balance {b:?}: {amount:?} is not a decimal ({e})"))?;
        balances.push((asset.to_ascii_uppercase(), amount.to_string()));
    }
    let _: crate::hot::fixed::Qty = args
        .commission
        .parse()
        .map_err(|e| anyhow::anyhow!("--commission {:?} is not a decimal ({e})", args.commission))?;
    let mut accounts = Vec::new();
    for a in &args.accounts {
        let (key, secret) = a
            .split_once(':')
            .filter(|(k, s)| !k.is_empty() && !s.is_empty())
            .ok_or_else(|| anyhow::anyhow!("--account: use API_KEY:HMAC_SECRET (both non-empty)"))?;
        let bal: Vec<(&str, &str)> = balances.iter().map(|(a, v)| (a.as_str(), v.as_str())).collect();
        accounts.push(SimAccount::hmac(key, secret, &bal, &args.commission));
    }
    let symbols: Vec<String> = args.symbols.iter().map(|s| s.to_ascii_uppercase()).collect();
    let dynamics = dynamics(&args.venue, &symbols)?;
    let fault_text = faults.describe();
    let exchange_text = format!(
        "weight {}/1m, raw requests {}/5m, orders {}/10s and {}/1d, MAX_NUM_ORDERS {}, fees {}",
        exchange.limits.weight_per_minute,
        exchange.limits.raw_requests_per_5m,
        exchange.limits.orders_per_10s,
        exchange.limits.orders_per_day,
        exchange.max_num_orders,
        match exchange.bnb_fees {
            Some(b) => format!(
                "in BNB at {} x {}",
                crate::sim::exchange::fmt8(b.price),
                crate::sim::exchange::fmt8(b.discount)
            ),
            None => "in the received asset".into(),
        }
    );
    let sim = Sim::start_with(
        SimConfig {
            listen: args.listen,
            market,
            symbols: symbols.clone(),
            source,
            faults,
            ping_every: args.ping_every,
            record_tops: false,
            accounts,
            dynamics,
        },
        exchange,
    )?;
    let streams: Vec<String> = symbols.iter().map(|s| format!("{}@depth@100ms", s.to_ascii_lowercase())).collect();
    crate::say!("mmbot sim: listening on {} ({}); faults: {fault_text}", sim.addr(), args.market);
    crate::say!("  exchange: {exchange_text}");
    crate::say!("  streams: {}/stream?streams={}", sim.ws_base(), streams.join("/"));
    crate::say!(
        "  REST:    {}{}?symbol={}&limit=1000",
        sim.http_base(),
        crate::sim::server::depth_path(market),
        symbols[0]
    );
    crate::say!(
        "  try:     mmbot paper --symbol {} --stream-url {} --rest-url {}",
        symbols[0],
        sim.ws_base(),
        sim.http_base()
    );
    let stop = ctrl_c_flag();
    let started = Instant::now();
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) && args.duration.is_none_or(|d| started.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            let c = sim.counters();
            crate::say!(
                "  sim: {}; {} clients, {} frames sent, {} snapshots served",
                sim.describe(),
                sim.clients(),
                c.frames_sent.load(Ordering::Relaxed),
                c.snapshots_served.load(Ordering::Relaxed)
            );
        }
        if sim.finished() {
            crate::say!("mmbot sim: the recording is over");
            break;
        }
    }
    Ok(0)
}

/// `--correlation` and `--price`, checked.
fn dynamics(venue: &VenueArgs, symbols: &[String]) -> anyhow::Result<crate::sim::Dynamics> {
    let rho = venue.correlation;
    if !(0.0..=1.0).contains(&rho) {
        anyhow::bail!("--correlation {rho}: give a correlation from 0 (independent) to 1 (one path)");
    }
    let mut start_prices = Vec::new();
    for p in &venue.prices {
        let (sym, price) =
            p.split_once('=').ok_or_else(|| anyhow::anyhow!("--price {p:?}: use SYMBOL=PRICE, e.g. ETHUSDT=3000"))?;
        let sym = sym.to_ascii_uppercase();
        if !symbols.contains(&sym) {
            anyhow::bail!("--price {p:?}: {sym} is not simulated; add --symbol {sym}");
        }
        let price: crate::hot::fixed::Price =
            price.parse().map_err(|e| anyhow::anyhow!("--price {p:?}: {price:?} is not a decimal ({e})"))?;
        if price.0 < 1_000_000 {
            anyhow::bail!("--price {p:?}: the simulator's tick is 0.01; start at 0.01 or more");
        }
        start_prices.push((sym, price.0));
    }
    Ok(crate::sim::Dynamics { correlation: rho, start_prices })
}
