//! What the advisor costs: token usage times a per-model price table.
//!
//! [`PriceTable`] holds USD per million input, cached-input and output
//! tokens. Two kinds of price live in it, and the doc of each says which:
//! the original tutorial's *gateway* prices ([`PriceTable::tutorial`]: what
//! HolySheep charged for four models) and the providers' own *list* prices
//! ([`PriceTable::list`], read from each provider's pricing page, cited per
//! model). [`PriceTable::defaults`] is the list prices with the gateway's four
//! on top (the default provider is the gateway); `[ai.prices]` adds or
//! overrides models.
//!
//! Every call is charged ([`charge`], [`charge_failed`]): by the usage the
//! server reported, else by an estimate of its tokens, marked as estimated;
//! a call that timed out or was cut off is charged the estimate of its prompt
//! (providers bill prompts they processed). [`CostMeter`] sums the cost per
//! call, today (UTC) and in total, with the estimated part apart, and projects
//! a month at the configured call rate. [`cost_table`] is the tutorial's
//! cost/ROI table for `mmbot ai cost`.

use std::collections::BTreeMap;

use crate::ai::llm::{CallInfo, Completion};

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelPrice {
    pub input_per_m: f64,
    pub output_per_m: f64,
    /// Cached prompt tokens; `None`: charged as input.
    pub cached_input_per_m: Option<f64>,
}

impl ModelPrice {
    /// USD for one call.
    pub fn cost(&self, tokens_in: u64, tokens_out: u64) -> f64 {
        (tokens_in as f64 * self.input_per_m + tokens_out as f64 * self.output_per_m) / 1e6
    }
}

/// List prices, USD per million tokens: (model, input, cached input, output).
///
/// Sources (read December 2026):
/// - OpenAI: the model pages under <https://developers.openai.com/api/docs/models>
///   ("Text tokens, per 1M tokens": Input, Cached input, Output) and
///   <https://developers.openai.com/api/docs/pricing>. GPT-5 family cached
///   input is 10% of input; GPT-4.1's is 25%.
/// - Anthropic: <https://platform.claude.com/docs/en/about-claude/pricing>
///   (Model pricing: Base input, Cache hits and refreshes, Output). Cached
///   here is the cache-hit price (0.1x input); mmbot writes no cache, so
///   cache writes (1.25x) never apply.
/// - Google: <https://ai.google.dev/gemini-api/docs/pricing> (Standard,
///   paid tier, prompts <= 200k tokens: Input price, Context caching price,
///   Output price, thinking tokens included in output).
/// - DeepSeek: <https://api-docs.deepseek.com/quick_start/pricing>
///   (1M input tokens cache hit / cache miss, output) for `deepseek-chat`
///   and `deepseek-reasoner` (DeepSeek-V3.2). DeepSeek's newer V4 models
///   price peak and off-peak hours differently: set them in `[ai.prices]`.
/// - AWS Bedrock: <https://aws.amazon.com/bedrock/pricing/> (OpenAI
///   open-weight models, on-demand, us-east-1); no cached price.
const LIST_PRICES: &[(&str, f64, Option<f64>, f64)] = &[
    // https://developers.openai.com/api/docs/models/gpt-5
    ("gpt-5", 1.25, Some(0.125), 10.00),
    // https://developers.openai.com/api/docs/models/gpt-5-mini (the openai preset's default)
    ("gpt-5-mini", 0.25, Some(0.025), 2.00),
    // https://developers.openai.com/api/docs/models/gpt-5-nano
    ("gpt-5-nano", 0.05, Some(0.005), 0.40),
    // https://developers.openai.com/api/docs/models/gpt-5.4-mini
    ("gpt-5.4-mini", 0.75, Some(0.075), 4.50),
    // https://developers.openai.com/api/docs/models/gpt-4.1 (the gateway charges $3/$12)
    ("gpt-4.1", 2.00, Some(0.50), 8.00),
    // https://platform.claude.com/docs/en/about-claude/pricing (the gateway charges $3.50/$15)
    ("claude-sonnet-4-5", 3.00, Some(0.30), 15.00),
    // https://platform.claude.com/docs/en/models/haiku-4-5/overview (the anthropic preset's default)
    ("claude-haiku-4-5", 1.00, Some(0.10), 5.00),
    // https://platform.claude.com/docs/en/about-claude/pricing
    ("claude-opus-4-5", 5.00, Some(0.50), 25.00),
    // https://ai.google.dev/gemini-api/docs/pricing (the gemini preset's default; the gateway charges $1.20/$4.80)
    ("gemini-2.5-flash", 0.30, Some(0.03), 2.50),
    // https://ai.google.dev/gemini-api/docs/pricing (prompts <= 200k tokens)
    ("gemini-2.5-pro", 1.25, Some(0.125), 10.00),
    // https://api-docs.deepseek.com/quick_start/pricing (the deepseek preset's default)
    ("deepseek-chat", 0.28, Some(0.028), 0.42),
    // https://api-docs.deepseek.com/quick_start/pricing
    ("deepseek-reasoner", 0.28, Some(0.028), 0.42),
    // https://aws.amazon.com/bedrock/pricing/ (the bedrock preset's default)
    ("openai.gpt-oss-120b-1:0", 0.15, None, 0.60),
    // https://aws.amazon.com/bedrock/pricing/
    ("openai.gpt-oss-20b-1:0", 0.07, None, 0.30),
];

/// Prices by model name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PriceTable {
    models: BTreeMap<String, ModelPrice>,
}

impl PriceTable {
    /// The tutorial's *gateway* prices (HolySheep, what the original tutorial
    /// was written against), per million tokens input/output: gpt-4.1
    /// $3.00/$12.00, claude-sonnet-4-5 $3.50/$15.00, gemini-2.5-flash
    /// $1.20/$4.80, deepseek-v3.2 $0.28/$1.10. The gateway publishes no
    /// cached-input price: cached tokens are charged as input.
    pub fn tutorial() -> Self {
        let mut t = Self::default();
        for (m, i, o) in [
            ("gpt-4.1", 3.00, 12.00),
            ("claude-sonnet-4-5", 3.50, 15.00),
            ("gemini-2.5-flash", 1.20, 4.80),
            ("deepseek-v3.2", 0.28, 1.10),
        ] {
            t.set(m, ModelPrice { input_per_m: i, output_per_m: o, cached_input_per_m: None });
        }
        t
    }

    /// The providers' own *list* prices (2026), USD per million tokens:
    /// input, cached input, output. Standard tier, short prompts (Gemini:
    /// prompts up to 200k tokens), no batch discount. Read from each
    /// provider's pricing page, cited per row; providers change them, so
    /// `[ai.prices]` overrides any of them.
    pub fn list() -> Self {
        let mut t = Self::default();
        for (m, i, c, o) in LIST_PRICES {
            t.set(m, ModelPrice { input_per_m: *i, output_per_m: *o, cached_input_per_m: *c });
        }
        t
    }

    /// What `[ai.prices]` starts from: the list prices, with the tutorial's
    /// four gateway prices on top (the default provider, `auto`, is that
    /// gateway, and the tutorial's figures are what its users compare with).
    pub fn defaults() -> Self {
        let mut t = Self::list();
        for (m, p) in Self::tutorial().iter() {
            t.set(m, p);
        }
        t
    }

    /// The default table for `provider`: a provider's own endpoint charges
    /// its list price (OpenRouter passes the providers' prices through), the
    /// gateway (and `auto`, and a `custom` server whose prices mmbot cannot
    /// know) the tutorial's gateway prices where it has them.
    pub fn for_provider(provider: crate::ai::Provider) -> Self {
        use crate::ai::Provider as P;
        match provider {
            P::Auto | P::Holysheep | P::Custom | P::Offline | P::None => Self::defaults(),
            _ => Self::list(),
        }
    }

    pub fn set(&mut self, model: &str, price: ModelPrice) {
        self.models.insert(model.to_string(), price);
    }

    /// The price of `model`: exact name, then case-insensitive, then without
    /// a vendor prefix (OpenRouter's `openai/gpt-4.1` is priced as `gpt-4.1`).
    pub fn get(&self, model: &str) -> Option<ModelPrice> {
        let find = |m: &str| {
            self.models
                .get(m)
                .copied()
                .or_else(|| self.models.iter().find(|(k, _)| k.eq_ignore_ascii_case(m)).map(|(_, p)| *p))
        };
        find(model).or_else(|| model.rsplit_once('/').and_then(|(_, m)| find(m)))
    }

    /// USD for one call whose `tokens_in` include `cached` prompt tokens
    /// (priced at the cached price where configured), or `None` unpriced.
    pub fn cost_cached(&self, model: &str, tokens_in: u64, cached: u64, tokens_out: u64) -> Option<f64> {
        self.get(model).map(|p| {
            let cached = cached.min(tokens_in);
            let cached_price = p.cached_input_per_m.unwrap_or(p.input_per_m);
            ((tokens_in - cached) as f64 * p.input_per_m
                + cached as f64 * cached_price
                + tokens_out as f64 * p.output_per_m)
                / 1e6
        })
    }

    /// USD for one call, or `None` for an unpriced model.
    pub fn cost(&self, model: &str, tokens_in: u64, tokens_out: u64) -> Option<f64> {
        self.get(model).map(|p| p.cost(tokens_in, tokens_out))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, ModelPrice)> {
        self.models.iter().map(|(k, v)| (k.as_str(), *v))
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// What one call cost: `usd` is `None` for a model with no price (its
/// tokens still count); `estimated` when the tokens behind it are an
/// estimate (no `usage` in the reply, or a failed call whose prompt the
/// provider bills).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Charge {
    pub usd: Option<f64>,
    pub estimated: bool,
}

impl Charge {
    /// Nothing to pay: a call that failed before the provider processed it.
    pub const NOTHING: Charge = Charge { usd: Some(0.0), estimated: false };

    /// The charges of several calls (one question's completions, say) as
    /// one: unpriced if any is, estimated if any is.
    pub fn sum(charges: impl IntoIterator<Item = Charge>) -> Charge {
        charges.into_iter().fold(Charge::NOTHING, |a, c| Charge {
            usd: a.usd.zip(c.usd).map(|(x, y)| x + y),
            estimated: a.estimated || c.estimated,
        })
    }
}

/// The charge for one answered call: by the model asked (the configured
/// name, which `[ai.prices]` uses), else by the model the server named
/// (`gpt-4.1-2025-04-14`, `openai/gpt-4.1`). Cached prompt tokens are priced
/// at the model's cached price where it has one ([`PriceTable::cost_cached`]).
/// A reply without `usage` was counted by the client with
/// [`crate::ai::prompt::estimate_tokens`]; its charge is marked estimated.
pub fn charge(prices: &PriceTable, asked_model: &str, c: &Completion) -> Charge {
    let mut tokens_out = c.tokens_out;
    if !c.usage_reported && tokens_out == 0 {
        // No usage and no count from the client: the reply's own text.
        tokens_out = crate::ai::prompt::estimate_tokens(&c.content);
    }
    let price = |m: &str| prices.cost_cached(m, c.tokens_in, c.cached_tokens, tokens_out);
    Charge { usd: price(asked_model).or_else(|| price(&c.model)), estimated: !c.usage_reported }
}

/// The charge for a call that got no answer: a provider bills the prompt it
/// processed when the call timed out or was cut off mid-body
/// (`info.prompt_billed`), so that is charged at the estimate of the prompt,
/// marked estimated; an answer that came but was unusable (empty at the
/// token cap, a refusal) is charged the `usage` it reported; any other
/// failure (refused, unreachable, rate limited) costs nothing.
pub fn charge_failed(prices: &PriceTable, model: &str, info: &CallInfo) -> Charge {
    if let Some(u) = info.usage {
        // An answer came and was unusable (empty, cut off, refused): the
        // provider billed what it reported.
        return Charge { usd: prices.cost_cached(model, u.tokens_in, u.cached, u.tokens_out), estimated: false };
    }
    if !info.prompt_billed || info.prompt_tokens_estimate == 0 {
        return Charge::NOTHING;
    }
    Charge { usd: prices.cost(model, info.prompt_tokens_estimate, 0), estimated: true }
}

/// Quote assets a Binance symbol may end with, longest first among those
/// sharing a suffix (`FDUSD` before `USD`).
const QUOTE_ASSETS: [&str; 15] =
    ["FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "EUR", "TRY", "BRL", "BTC", "ETH", "BNB", "JPY", "USD"];

/// Quote assets counted as US dollars at par, so an AI cost in USD can be
/// set against a PnL in them.
const USD_AT_PAR: [&str; 8] = ["FDUSD", "USDT", "USDC", "TUSD", "USDP", "BUSD", "DAI", "USD"];

/// The quote asset of `symbol` by its name (`ETHBTC` -> `BTC`), if it ends
/// with a known one.
pub fn quote_asset(symbol: &str) -> Option<&'static str> {
    let s = symbol.trim().to_ascii_uppercase();
    QUOTE_ASSETS.iter().copied().find(|q| s.len() > q.len() && s.ends_with(q))
}

/// Whether `asset` is counted as US dollars at par.
pub fn usd_at_par(asset: &str) -> bool {
    USD_AT_PAR.contains(&asset)
}

/// Days since the Unix epoch of a wall-clock time in ns (UTC days).
pub fn utc_day(wall_ns: i64) -> i64 {
    wall_ns.div_euclid(86_400_000_000_000)
}

/// Running cost of one advisor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostMeter {
    day: i64,
    pub calls_priced: u64,
    pub total_usd: f64,
    pub today_usd: f64,
    /// Calls whose model has no price (their tokens still count).
    pub calls_unpriced: u64,
    /// Priced calls charged by an estimate, and their part of `total_usd`.
    pub calls_estimated: u64,
    pub estimated_usd: f64,
}

impl CostMeter {
    /// Adds one call's cost (`None`: unpriced) made at `wall_ns`.
    pub fn add(&mut self, cost: Option<f64>, wall_ns: i64) {
        let day = utc_day(wall_ns);
        if day != self.day {
            self.day = day;
            self.today_usd = 0.0;
        }
        match cost {
            Some(c) => {
                self.calls_priced += 1;
                self.total_usd += c;
                self.today_usd += c;
            }
            None => self.calls_unpriced += 1,
        }
    }

    /// Adds one call's [`Charge`] made at `wall_ns`; the estimated part is
    /// summed apart too.
    pub fn add_charge(&mut self, charge: &Charge, wall_ns: i64) {
        self.add(charge.usd, wall_ns);
        if let (Some(c), true) = (charge.usd, charge.estimated) {
            self.calls_estimated += 1;
            self.estimated_usd += c;
        }
    }

    /// Average cost of a priced call.
    pub fn per_call(&self) -> Option<f64> {
        (self.calls_priced > 0).then(|| self.total_usd / self.calls_priced as f64)
    }

    /// A 30-day month at one call every `interval_s`, at the average cost so far.
    pub fn projected_month(&self, interval_s: f64) -> Option<f64> {
        Some(self.per_call()? * calls_per_day(interval_s) * 30.0)
    }

    /// Today's cost as of `wall_ns` (zero once the UTC day has turned).
    pub fn today(&self, wall_ns: i64) -> f64 {
        if utc_day(wall_ns) == self.day {
            self.today_usd
        } else {
            0.0
        }
    }
}

/// Calls per day at one call every `interval_s`.
pub fn calls_per_day(interval_s: f64) -> f64 {
    if interval_s > 0.0 {
        86_400.0 / interval_s
    } else {
        0.0
    }
}

/// One row of the cost/ROI table.
#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    pub model: String,
    pub price: ModelPrice,
    pub per_call: f64,
    pub per_day: f64,
    /// 30 days.
    pub per_month: f64,
    /// (gain - cost) / cost over a month, when a daily gain is given.
    pub roi: Option<f64>,
}

/// The tutorial's table: every priced model, cheapest first.
pub fn cost_table(
    prices: &PriceTable,
    calls_per_day: f64,
    tokens_in: u64,
    tokens_out: u64,
    gain_per_day: Option<f64>,
) -> Vec<CostRow> {
    let mut rows: Vec<CostRow> = prices
        .iter()
        .map(|(model, price)| {
            let per_call = price.cost(tokens_in, tokens_out);
            let per_day = per_call * calls_per_day;
            let roi = gain_per_day.filter(|_| per_day > 0.0).map(|g| (g - per_day) / per_day);
            CostRow { model: model.to_string(), price, per_call, per_day, per_month: per_day * 30.0, roi }
        })
        .collect();
    rows.sort_by(|a, b| a.per_call.total_cmp(&b.per_call).then_with(|| a.model.cmp(&b.model)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_assets_by_name_and_which_count_as_usd() {
        assert_eq!(quote_asset("BTCUSDT"), Some("USDT"));
        assert_eq!(quote_asset("ethfdusd"), Some("FDUSD"));
        assert_eq!(quote_asset("ETHBTC"), Some("BTC"));
        assert_eq!((quote_asset("USDT"), quote_asset("XYZ")), (None, None));
        assert!(usd_at_par("USDT") && usd_at_par("FDUSD") && !usd_at_par("BTC") && !usd_at_par("EUR"));
    }

    #[test]
    fn tutorial_prices_and_lookups() {
        let t = PriceTable::tutorial();
        assert!((t.cost("gpt-4.1", 500, 200).unwrap() - 0.0039).abs() < 1e-12);
        assert!((t.cost("deepseek-v3.2", 1_000_000, 1_000_000).unwrap() - 1.38).abs() < 1e-12);
        assert_eq!(t.get("openai/gpt-4.1"), t.get("gpt-4.1"));
        assert_eq!(t.get("GPT-4.1"), t.get("gpt-4.1"));
        assert_eq!(t.cost("llama3.1", 10, 10), None);
    }

    #[test]
    fn meter_resets_at_utc_midnight_and_projects_a_month() {
        let day = 86_400_000_000_000i64;
        let mut m = CostMeter::default();
        m.add(Some(0.01), 10 * day + 5);
        m.add(Some(0.03), 10 * day + 6);
        m.add(None, 10 * day + 7);
        assert!((m.today(10 * day + 8) - 0.04).abs() < 1e-12);
        assert_eq!(m.today(11 * day), 0.0);
        m.add(Some(0.02), 11 * day + 1);
        assert!((m.today_usd - 0.02).abs() < 1e-12 && (m.total_usd - 0.06).abs() < 1e-12);
        assert_eq!((m.calls_priced, m.calls_unpriced), (3, 1));
        // 0.02 per call, every 5 s: 17,280 calls a day, 30 days.
        assert!((m.projected_month(5.0).unwrap() - 0.02 * 17_280.0 * 30.0).abs() < 1e-6);
    }

    #[test]
    fn table_is_cheapest_first_with_roi() {
        let rows = cost_table(&PriceTable::tutorial(), 17_280.0, 500, 200, Some(100.0));
        assert_eq!(rows[0].model, "deepseek-v3.2");
        let g = rows.iter().find(|r| r.model == "gpt-4.1").unwrap();
        assert!((g.per_day - 0.0039 * 17_280.0).abs() < 1e-9);
        assert!((g.roi.unwrap() - (100.0 - g.per_day) / g.per_day).abs() < 1e-12);
    }

    fn reply(model: &str, tokens_in: u64, cached: u64, tokens_out: u64, usage: bool) -> Completion {
        Completion {
            content: "{\"volatility\":\"low\"}".into(),
            model: model.into(),
            tokens_in,
            tokens_out,
            cached_tokens: cached,
            usage_reported: usage,
            finish_reason: Some("stop".into()),
            latency: std::time::Duration::from_millis(300),
            attempts: 1,
        }
    }

    #[test]
    fn list_prices_carry_cached_prices_and_the_gateway_wins_by_default() {
        let list = PriceTable::list();
        let mini = list.get("gpt-5-mini").unwrap();
        assert_eq!((mini.input_per_m, mini.cached_input_per_m, mini.output_per_m), (0.25, Some(0.025), 2.00));
        assert_eq!(list.get("gpt-4.1").unwrap().input_per_m, 2.00);
        // Every preset's default model is priced.
        for p in [
            crate::ai::Provider::OpenAi,
            crate::ai::Provider::Anthropic,
            crate::ai::Provider::Gemini,
            crate::ai::Provider::DeepSeek,
            crate::ai::Provider::Bedrock,
            crate::ai::Provider::Holysheep,
            crate::ai::Provider::OpenRouter,
        ] {
            let m = p.default_model();
            assert!(PriceTable::for_provider(p).get(m).is_some(), "{} default {m} is unpriced", p.name());
        }
        let d = PriceTable::defaults();
        assert_eq!(d.get("gpt-4.1").unwrap().input_per_m, 3.00, "the tutorial's gateway price");
        assert_eq!(d.get("gpt-5-nano").unwrap().cached_input_per_m, Some(0.005));
        assert_eq!(
            PriceTable::for_provider(crate::ai::Provider::Gemini).get("gemini-2.5-flash").unwrap().input_per_m,
            0.30
        );
        assert_eq!(
            PriceTable::for_provider(crate::ai::Provider::Auto).get("gemini-2.5-flash").unwrap().input_per_m,
            1.20
        );
    }

    #[test]
    fn a_reply_is_charged_by_its_usage_with_cached_tokens_at_the_cached_price() {
        let t = PriceTable::list();
        // gpt-5-mini: 1000 in of which 600 cached, 200 out:
        // 400 x 0.25 + 600 x 0.025 + 200 x 2.00 = 100 + 15 + 400 = 515 micro-dollars.
        let c = charge(&t, "gpt-5-mini", &reply("gpt-5-mini-2025-08-07", 1000, 600, 200, true));
        assert!(!c.estimated);
        assert!((c.usd.unwrap() - 515e-6).abs() < 1e-12, "{c:?}");
        // Without a cached price (the gateway's): cached tokens are input.
        let c = charge(&PriceTable::tutorial(), "gpt-4.1", &reply("gpt-4.1", 1000, 600, 0, true));
        assert!((c.usd.unwrap() - 3000e-6).abs() < 1e-12, "{c:?}");
        // Priced by the model the server named when the asked one has no price.
        let c = charge(&t, "my-alias", &reply("openai/gpt-5-nano", 1000, 0, 0, true));
        assert!((c.usd.unwrap() - 50e-6).abs() < 1e-12, "{c:?}");
        assert_eq!(charge(&t, "llama3.1", &reply("llama3.1", 10, 0, 10, true)).usd, None);
    }

    #[test]
    fn a_reply_without_usage_is_charged_by_estimate_and_marked() {
        let t = PriceTable::tutorial();
        // The client's estimate (4 characters a token) is what is priced.
        let c = charge(&t, "gpt-4.1", &reply("gpt-4.1", 700, 0, 50, false));
        assert!(c.estimated);
        assert!((c.usd.unwrap() - (700.0 * 3.0 + 50.0 * 12.0) / 1e6).abs() < 1e-12, "{c:?}");
        // No count at all for the completion: its text is estimated here.
        let r = reply("gpt-4.1", 0, 0, 0, false);
        let out = crate::ai::prompt::estimate_tokens(&r.content) as f64;
        let c = charge(&t, "gpt-4.1", &r);
        assert!(out > 0.0 && (c.usd.unwrap() - out * 12.0 / 1e6).abs() < 1e-12, "{c:?}");
    }

    #[test]
    fn a_failed_call_is_charged_its_prompt_only_when_billed() {
        let t = PriceTable::tutorial();
        let mut info = CallInfo { prompt_tokens_estimate: 720, ..CallInfo::default() };
        assert_eq!(charge_failed(&t, "gpt-4.1", &info), Charge::NOTHING);
        info.prompt_billed = true;
        let c = charge_failed(&t, "gpt-4.1", &info);
        assert!(c.estimated && (c.usd.unwrap() - 720.0 * 3.0 / 1e6).abs() < 1e-12, "{c:?}");
        assert_eq!(charge_failed(&t, "llama3.1", &info), Charge { usd: None, estimated: true });
    }

    #[test]
    fn the_meter_sums_the_estimated_part_apart() {
        let day = 86_400_000_000_000i64;
        let mut m = CostMeter::default();
        m.add_charge(&Charge { usd: Some(0.002), estimated: false }, day);
        m.add_charge(&Charge { usd: Some(0.001), estimated: true }, day + 1);
        m.add_charge(&Charge::NOTHING, day + 2);
        m.add_charge(&Charge { usd: None, estimated: true }, day + 3);
        assert!((m.total_usd - 0.003).abs() < 1e-15 && (m.estimated_usd - 0.001).abs() < 1e-15, "{m:?}");
        assert_eq!((m.calls_priced, m.calls_estimated, m.calls_unpriced), (3, 1, 1));
        let s = Charge::sum([Charge { usd: Some(0.5), estimated: false }, Charge { usd: Some(0.25), estimated: true }]);
        assert_eq!(s, Charge { usd: Some(0.75), estimated: true });
        assert_eq!(Charge::sum([Charge::NOTHING, Charge { usd: None, estimated: false }]).usd, None);
    }
}
