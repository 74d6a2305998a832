//! `mmbot sim [--listen 127.0.0.1:PORT] [--symbol ..] [--market spot|usdm]
//! [--synthetic | --replay FILE] [--speed X] [fault flags]`: a local
//! Binance-compatible market-data server (see `crate::sim`), for tests, the
//! offline demo, and anyone who wants to watch the bot cope with faults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::cli::feed_args::parse_duration;
use crate::cli::record::ctrl_c_flag;
use crate::sim::exchange::SimAccount;
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
    /// Fault: answer every Nth order request with HTTP 429.
    #[arg(long, default_value_t = 0)]
    pub throttle_order_every: u64,
    /// Fault: answer every Nth order request with HTTP 418 (IP ban).
    #[arg(long, default_value_t = 0)]
    pub ban_order_every: u64,
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
}

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
        ban_order_every: args.ban_order_every,
        ban_for: Some(args.ban_for),
        error_after_order_every: args.error_after_order_every,
        delay_order_every: args.delay_order_every,
        order_delay: args.order_delay,
        drop_user_data_every: args.drop_user_data_every,
        clock_offset_ms: args.clock_offset_ms,
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
    let fault_text = faults.describe();
    let sim = Sim::start(SimConfig {
        listen: args.listen,
        market,
        symbols: symbols.clone(),
        source,
        faults,
        ping_every: args.ping_every,
        record_tops: false,
        accounts,
    })?;
    let streams: Vec<String> = symbols.iter().map(|s| format!("{}@depth@100ms", s.to_ascii_lowercase())).collect();
    eprintln!("mmbot sim: listening on {} ({}); faults: {fault_text}", sim.addr(), args.market);
    eprintln!("  streams: {}/stream?streams={}", sim.ws_base(), streams.join("/"));
    eprintln!(
        "  REST:    {}{}?symbol={}&limit=1000",
        sim.http_base(),
        crate::sim::server::depth_path(market),
        symbols[0]
    );
    eprintln!(
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
            eprintln!(
                "  sim: {}; {} clients, {} frames sent, {} snapshots served",
                sim.describe(),
                sim.clients(),
                c.frames_sent.load(Ordering::Relaxed),
                c.snapshots_served.load(Ordering::Relaxed)
            );
        }
        if sim.finished() {
            eprintln!("mmbot sim: the recording is over");
            break;
        }
    }
    Ok(0)
}
