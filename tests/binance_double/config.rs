//! What the double is started with: the symbols' rules (as `exchangeInfo` shows them; the first,
//! `rules`, is the default symbol, `more_symbols` the others), the account (keys, balances,
//! commission), and the rate limits. Everything is plain data
//! so a test can change one field with struct update syntax: `DoubleConfig { .. Default::default() }`.
//! All prices and quantities are fixed point with 8 decimals (see `fixed.rs`).

use std::time::Duration;

use super::fixed::ONE;

/// How a key signs: rest-api.md §SIGNED Endpoint Examples (HMAC Keys, Ed25519 Keys).
#[derive(Clone)]
pub enum KeySecret {
    /// HMAC-SHA256 secret key (the bytes of the secret string).
    Hmac(Vec<u8>),
    /// Ed25519 public key, 32 raw bytes (the double only verifies).
    Ed25519Public(Vec<u8>),
}

/// One API key of the account.
#[derive(Clone)]
pub struct ApiKey {
    /// The `X-MBX-APIKEY` / `apiKey` value.
    pub key: String,
    pub secret: KeySecret,
}

impl ApiKey {
    /// An HMAC key (`secret` as the client holds it).
    pub fn hmac(key: &str, secret: &str) -> ApiKey {
        ApiKey { key: key.to_string(), secret: KeySecret::Hmac(secret.as_bytes().to_vec()) }
    }

    /// An Ed25519 key whose public half is taken from the client's private key in PKCS#8 PEM
    /// (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey -algorithm ed25519` writes it).
    /// None when the PEM is not an Ed25519 PKCS#8 key.
    pub fn ed25519_from_private_pem(key: &str, pem: &str) -> Option<ApiKey> {
        use base64::Engine as _;
        use ring::signature::KeyPair as _;
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()).ok()?;
        let kp = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).ok()?;
        Some(ApiKey { key: key.to_string(), secret: KeySecret::Ed25519Public(kp.public_key().as_ref().to_vec()) })
    }
}

/// Symbol rules served in `exchangeInfo` and enforced on orders (filters.md).
#[derive(Clone, Debug)]
pub struct SymbolRules {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    /// filters.md §PRICE_FILTER; 0 disables a part.
    pub min_price: i64,
    pub max_price: i64,
    pub tick_size: i64,
    /// filters.md §LOT_SIZE.
    pub min_qty: i64,
    pub max_qty: i64,
    pub step_size: i64,
    /// filters.md §NOTIONAL (min and max; `applyMinToMarket`/`applyMaxToMarket` served as true/false below).
    pub min_notional: i64,
    pub max_notional: i64,
    /// filters.md §PERCENT_PRICE_BY_SIDE multipliers (fixed point); checked against the
    /// reference price (last market trade, else the market mid), skipped when none is known.
    pub bid_multiplier_up: i64,
    pub bid_multiplier_down: i64,
    pub ask_multiplier_up: i64,
    pub ask_multiplier_down: i64,
    pub avg_price_mins: u32,
    /// filters.md §MAX_NUM_ORDERS.
    pub max_num_orders: usize,
    /// rest-api.md §Exchange information `cancelReplaceAllowed`.
    pub cancel_replace_allowed: bool,
    /// stp_faq.md §How do I know which symbol uses STP?
    pub default_stp_mode: String,
    pub allowed_stp_modes: Vec<String>,
}

impl SymbolRules {
    /// The default rules (filters, STP modes) under another name and assets, e.g.
    /// `SymbolRules::named("ETHUSDT", "ETH", "USDT")`.
    pub fn named(symbol: &str, base: &str, quote: &str) -> SymbolRules {
        SymbolRules { symbol: symbol.into(), base: base.into(), quote: quote.into(), ..SymbolRules::default() }
    }
}

impl Default for SymbolRules {
    fn default() -> Self {
        SymbolRules {
            symbol: "BTCUSDT".into(),
            base: "BTC".into(),
            quote: "USDT".into(),
            min_price: ONE / 100,
            max_price: 1_000_000 * ONE,
            tick_size: ONE / 100,
            min_qty: ONE / 100_000,
            max_qty: 9_000 * ONE,
            step_size: ONE / 100_000,
            min_notional: 5 * ONE,
            max_notional: 9_000_000 * ONE,
            bid_multiplier_up: 5 * ONE,
            bid_multiplier_down: ONE / 5,
            ask_multiplier_up: 5 * ONE,
            ask_multiplier_down: ONE / 5,
            avg_price_mins: 5,
            max_num_orders: 200,
            cancel_replace_allowed: true,
            default_stp_mode: "EXPIRE_MAKER".into(),
            allowed_stp_modes: ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT", "TRANSFER"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// Standard commission rates (commission_faq.md §How is the commission calculated?).
/// The commission on a fill is `received amount * (maker|taker + buyer|seller)`.
#[derive(Clone, Debug)]
pub struct Commission {
    pub maker: i64,
    pub taker: i64,
    pub buyer: i64,
    pub seller: i64,
    /// Pay in BNB when the account holds enough (commission_faq.md, last paragraphs).
    pub pay_in_bnb: bool,
    /// BNB price in the quote asset, for converting the commission.
    pub bnb_price_in_quote: i64,
    /// The multiplier applied to the standard commission paid in BNB. commission_faq.md's
    /// worked example multiplies by `discount` (0.25); rest-api.md §Test new order says the
    /// commission "is reduced by this rate". The two disagree, so it is a setting.
    pub bnb_discount_multiplier: i64,
}

impl Default for Commission {
    fn default() -> Self {
        Commission {
            maker: ONE / 1000, // 0.001
            taker: ONE / 1000, // 0.001
            buyer: 0,
            seller: 0,
            pay_in_bnb: false,
            bnb_price_in_quote: 600 * ONE,
            bnb_discount_multiplier: ONE / 4 * 3,
        }
    }
}

/// Rate limits served in `exchangeInfo.rateLimits` and enforced (rest-api.md §LIMITS).
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// REQUEST_WEIGHT per 1 MINUTE (per IP).
    pub weight_per_minute: u32,
    /// ORDERS per 10 SECOND (per account).
    pub orders_per_10s: u32,
    /// ORDERS per 1 DAY.
    pub orders_per_day: u32,
    /// RAW_REQUESTS per 5 MINUTE (served, enforced like weight 1 per request).
    pub raw_requests_per_5m: u32,
    /// After this many 429s in a row without a pause, the IP is banned (rest-api.md §IP Limits:
    /// "failing to back off after receiving 429s will result in an automated IP ban"). None: never.
    pub ban_after_429s: Option<u32>,
    /// How long an automatic ban lasts ("from 2 minutes to 3 days"; tests use less).
    pub auto_ban: Duration,
    /// Counters do not restart when a new interval begins (only `reset_rate_counters` zeroes
    /// them), so a test's counts cannot be cut by a minute or 10-second boundary. Retry-After is
    /// still computed from the real interval. Off: Binance's behaviour.
    pub hold_windows: bool,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            weight_per_minute: 6000,
            orders_per_10s: 100,
            orders_per_day: 200_000,
            raw_requests_per_5m: 61_000,
            ban_after_429s: None,
            auto_ban: Duration::from_secs(2),
            hold_windows: false,
        }
    }
}

/// Everything the double starts with.
#[derive(Clone)]
pub struct DoubleConfig {
    /// The default symbol: the one the symbol-less helpers (`set_market`, `market_trade`, ...)
    /// act on, and the first in `exchangeInfo`.
    pub rules: SymbolRules,
    /// More symbols traded by the same account (default none). Each has its own rules, orders,
    /// market and id sequences; the balances are the account's and shared (rest-api.md §Account
    /// information lists one set of balances). A name already listed is ignored.
    pub more_symbols: Vec<SymbolRules>,
    pub keys: Vec<ApiKey>,
    /// Initial free balances `(asset, amount)`.
    pub balances: Vec<(String, i64)>,
    pub commission: Commission,
    pub limits: RateLimits,
    /// `canTrade` in `GET /api/v3/account`; false rejects orders with -2010.
    pub can_trade: bool,
    /// Most connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// The server pings every WebSocket connection this often (web-socket-api.md §General API
    /// Information: "a `ping frame` every 20 seconds"). None: never.
    pub ws_ping_interval: Option<std::time::Duration>,
    /// A connection that sent no pong for this long after a ping is closed ("within a minute").
    pub ws_pong_timeout: std::time::Duration,
}

impl DoubleConfig {
    /// Every symbol served, the default first, duplicates of a name dropped.
    pub fn all_symbols(&self) -> Vec<SymbolRules> {
        let mut out: Vec<SymbolRules> = Vec::new();
        for r in std::iter::once(&self.rules).chain(self.more_symbols.iter()) {
            if !out.iter().any(|x| x.symbol == r.symbol) {
                out.push(r.clone());
            }
        }
        out
    }
}

/// The HMAC example key from rest-api.md §SIGNED Endpoint Examples → HMAC Keys.
pub const DOC_HMAC_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
/// Its secret (published in the docs for illustration).
pub const DOC_HMAC_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

impl Default for DoubleConfig {
    fn default() -> Self {
        DoubleConfig {
            rules: SymbolRules::default(),
            more_symbols: Vec::new(),
            keys: vec![ApiKey {
                key: DOC_HMAC_KEY.into(),
                secret: KeySecret::Hmac(DOC_HMAC_SECRET.as_bytes().to_vec()),
            }],
            balances: vec![("BTC".into(), ONE), ("USDT".into(), 100_000 * ONE), ("BNB".into(), 0)],
            commission: Commission::default(),
            limits: RateLimits::default(),
            can_trade: true,
            max_connections: 64,
            ws_ping_interval: Some(Duration::from_secs(20)),
            ws_pong_timeout: Duration::from_secs(60),
        }
    }
}
