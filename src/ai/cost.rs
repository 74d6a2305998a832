//! What the advisor costs: token usage times a per-model price table.
//!
//! [`PriceTable`] holds USD per million input and output tokens; its defaults
//! are the original tutorial's gateway prices, and `[ai.prices]` adds or
//! overrides models. [`CostMeter`] sums the cost per call, today (UTC) and in
//! total, and projects a month at the configured call rate. [`cost_table`] is
//! the tutorial's cost/ROI table for `mmbot ai cost`.

use std::collections::BTreeMap;

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

/// Prices by model name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PriceTable {
    models: BTreeMap<String, ModelPrice>,
}

impl PriceTable {
    /// The tutorial's prices, per million tokens input/output: gpt-4.1
    /// $3.00/$12.00, claude-sonnet-4-5 $3.50/$15.00, gemini-2.5-flash
    /// $1.20/$4.80, deepseek-v3.2 $0.28/$1.10.
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
}
