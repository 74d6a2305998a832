//! A symbol's trading rules, written once: [`SymbolSpec`] is what the
//! engine checks orders against and what `exchangeInfo` prints, so the two
//! cannot disagree.
//!
//! Filters (filters.md): PRICE_FILTER, LOT_SIZE, NOTIONAL,
//! PERCENT_PRICE_BY_SIDE (against the last trade price: `avgPriceMins` is
//! 0, which filters.md says means "the last price is used") and
//! MAX_NUM_ORDERS (open orders per account on the symbol). A violation is
//! `-1013 "Filter failure: <NAME>"` (errors.md §Filter failures).
//! Self-trade prevention (stp_faq.md §How do I know which symbol uses STP?):
//! `defaultSelfTradePreventionMode` and `allowedSelfTradePreventionModes`.

use std::fmt::Write as _;

use crate::exec::binance::filters::{
    LotSize, NotionalFilter, NotionalKind, PercentPriceBySide, PriceFilter, SymbolRules, SymbolStatus,
};
use crate::exec::Side;
use crate::hot::fixed::{mul_rate, Price, Qty, SCALE};
use crate::sim::exchange::limits::SimLimits;
use crate::sim::exchange::wire::{bad, fmt8, ApiError};

/// The order types offered (exchangeInfo `orderTypes`).
pub const ORDER_TYPES: &str = r#"["LIMIT_MAKER"]"#;

/// Every `selfTradePreventionMode` enums.md lists.
pub const STP_MODES: [&str; 6] = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT", "TRANSFER"];

/// One symbol as the exchange trades it.
#[derive(Debug, Clone)]
pub struct SymbolSpec {
    pub name: String,
    pub base: String,
    pub quote: String,
    /// PRICE_FILTER, LOT_SIZE, NOTIONAL, PERCENT_PRICE_BY_SIDE,
    /// MAX_NUM_ORDERS and the flags, in mmbot's own type (so mmbot's
    /// parser reads back exactly this).
    pub rules: SymbolRules,
    /// PERCENT_PRICE_BY_SIDE (also in `rules`).
    pub percent_by_side: PercentPriceBySide,
    pub stp_default: &'static str,
    pub stp_allowed: &'static [&'static str],
}

impl SymbolSpec {
    /// A BTCUSDT-like symbol (the order-flow model quotes on that grid).
    pub fn for_symbol(symbol: &str, max_num_orders: u32) -> Self {
        let s = symbol.to_ascii_uppercase();
        let quote = ["FDUSD", "USDT", "USDC", "BTC", "ETH", "EUR", "BNB"]
            .iter()
            .find(|q| s.len() > q.len() && s.ends_with(*q))
            .copied()
            .unwrap_or("USDT");
        let base = s.strip_suffix(quote).unwrap_or(&s).to_string();
        let percent_by_side = PercentPriceBySide {
            bid_up: 5 * SCALE,
            bid_down: SCALE / 5,
            ask_up: 5 * SCALE,
            ask_down: SCALE / 5,
            avg_price_mins: 0,
        };
        let rules = SymbolRules {
            symbol: s.clone(),
            status: SymbolStatus::Trading,
            base_asset: base.clone(),
            quote_asset: quote.into(),
            price: PriceFilter { min: Price(1_000_000), max: Price(1_000_000 * SCALE), tick: Price(1_000_000) },
            lot: LotSize { min: Qty(1_000), max: Qty(9_000 * SCALE), step: Qty(1_000) },
            notional: NotionalFilter { kind: NotionalKind::Notional, min: 5 * SCALE, max: 9_000_000 * SCALE },
            cancel_replace_allowed: true,
            limit_maker_allowed: true,
            max_num_orders,
            percent_price_by_side: Some(percent_by_side),
        };
        Self {
            name: s,
            base,
            quote: quote.into(),
            rules,
            percent_by_side,
            // BTCUSDT's setting on the live exchange; every mode allowed.
            stp_default: "EXPIRE_MAKER",
            stp_allowed: &STP_MODES,
        }
    }

    /// Every filter an order must pass: `open` is how many orders the
    /// account has open on the symbol, `last_price` the reference price.
    pub fn check(
        &self,
        side: Side,
        price: i64,
        qty: i64,
        open: usize,
        last_price: Option<i64>,
    ) -> Result<(), ApiError> {
        let fail = |name: &str| bad(-1013, format!("Filter failure: {name}"));
        if let Err(v) = self.rules.check(side, Price(price), Qty(qty)) {
            return Err(fail(v.filter()));
        }
        if let Some(avg) = last_price.filter(|p| *p > 0) {
            let p = &self.percent_by_side;
            let (up, down) = match side {
                Side::Buy => (p.bid_up, p.bid_down),
                Side::Sell => (p.ask_up, p.ask_down),
            };
            if price > mul_rate(avg, up) || price < mul_rate(avg, down) {
                return Err(fail("PERCENT_PRICE_BY_SIDE"));
            }
        }
        if self.rules.max_num_orders > 0 && open >= self.rules.max_num_orders as usize {
            return Err(fail("MAX_NUM_ORDERS"));
        }
        Ok(())
    }

    /// `selfTradePreventionMode` as sent (or the default), validated.
    pub fn stp_mode(&self, sent: Option<&str>) -> Result<&'static str, ApiError> {
        let Some(sent) = sent else { return Ok(self.stp_default) };
        let mode = STP_MODES
            .iter()
            .find(|m| **m == sent)
            .ok_or_else(|| bad(-1100, "Illegal characters found in parameter 'selfTradePreventionMode'."))?;
        if !self.stp_allowed.contains(mode) {
            // stp_faq.md §How do I know which symbol uses STP?
            return Err(bad(-1013, "This symbol does not allow the specified self-trade prevention mode."));
        }
        Ok(mode)
    }

    /// This symbol's entry in exchangeInfo `symbols`.
    pub fn json(&self) -> String {
        let r = &self.rules;
        let p = &self.percent_by_side;
        let modes: Vec<String> = self.stp_allowed.iter().map(|m| format!("\"{m}\"")).collect();
        let mut s = String::new();
        let _ = write!(
            s,
            concat!(
                r#"{{"symbol":"{sym}","status":"TRADING","baseAsset":"{base}","baseAssetPrecision":8,"#,
                r#""quoteAsset":"{quote}","quotePrecision":8,"quoteAssetPrecision":8,"#,
                r#""baseCommissionPrecision":8,"quoteCommissionPrecision":8,"orderTypes":{types},"#,
                r#""icebergAllowed":false,"ocoAllowed":false,"otoAllowed":false,"quoteOrderQtyMarketAllowed":false,"#,
                r#""allowTrailingStop":false,"cancelReplaceAllowed":{cr},"amendAllowed":false,"#,
                r#""isSpotTradingAllowed":true,"isMarginTradingAllowed":false,"filters":["#,
                r#"{{"filterType":"PRICE_FILTER","minPrice":"{pmin}","maxPrice":"{pmax}","tickSize":"{tick}"}},"#,
                r#"{{"filterType":"LOT_SIZE","minQty":"{qmin}","maxQty":"{qmax}","stepSize":"{step}"}},"#,
                r#"{{"filterType":"NOTIONAL","minNotional":"{nmin}","applyMinToMarket":true,"#,
                r#""maxNotional":"{nmax}","applyMaxToMarket":false,"avgPriceMins":5}},"#,
                r#"{{"filterType":"PERCENT_PRICE_BY_SIDE","bidMultiplierUp":"{bu}","bidMultiplierDown":"{bd}","#,
                r#""askMultiplierUp":"{au}","askMultiplierDown":"{ad}","avgPriceMins":{apm}}},"#,
                r#"{{"filterType":"MAX_NUM_ORDERS","maxNumOrders":{mno}}}],"#,
                r#""permissions":[],"permissionSets":[["SPOT"]],"#,
                r#""defaultSelfTradePreventionMode":"{stpd}","allowedSelfTradePreventionModes":[{stpa}]}}"#
            ),
            sym = self.name,
            base = self.base,
            quote = self.quote,
            types = ORDER_TYPES,
            cr = r.cancel_replace_allowed,
            pmin = fmt8(r.price.min.0),
            pmax = fmt8(r.price.max.0),
            tick = fmt8(r.price.tick.0),
            qmin = fmt8(r.lot.min.0),
            qmax = fmt8(r.lot.max.0),
            step = fmt8(r.lot.step.0),
            nmin = fmt8(r.notional.min),
            nmax = fmt8(r.notional.max),
            bu = fmt8(p.bid_up),
            bd = fmt8(p.bid_down),
            au = fmt8(p.ask_up),
            ad = fmt8(p.ask_down),
            apm = p.avg_price_mins,
            mno = r.max_num_orders,
            stpd = self.stp_default,
            stpa = modes.join(","),
        );
        s
    }
}

/// The whole exchangeInfo answer (rest-api.md §Exchange information).
pub fn exchange_info(specs: &[SymbolSpec], limits: &SimLimits, now_ms: i64) -> String {
    let syms: Vec<String> = specs.iter().map(SymbolSpec::json).collect();
    format!(
        r#"{{"timezone":"UTC","serverTime":{now_ms},"rateLimits":{},"exchangeFilters":[],"symbols":[{}]}}"#,
        limits.exchange_info_json(),
        syms.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmbot_reads_back_the_rules_the_engine_checks() {
        let spec = SymbolSpec::for_symbol("BTCUSDT", 7);
        let info = exchange_info(std::slice::from_ref(&spec), &SimLimits::default(), 1);
        let parsed = crate::exec::binance::filters::ExchangeInfo::parse(info.as_bytes()).unwrap();
        assert_eq!(parsed.symbol("BTCUSDT").unwrap(), &spec.rules);
        let v: serde_json::Value = serde_json::from_str(&info).unwrap();
        let f = &v["symbols"][0]["filters"];
        assert!(f.as_array().unwrap().iter().any(|x| x["filterType"] == "PERCENT_PRICE_BY_SIDE"));
        assert_eq!(v["symbols"][0]["defaultSelfTradePreventionMode"], "EXPIRE_MAKER");
    }

    #[test]
    fn percent_price_by_side_and_max_num_orders_refuse() {
        let spec = SymbolSpec::for_symbol("BTCUSDT", 2);
        let qty = 100_000; // 0.001
        let last = Some(50_000 * SCALE);
        assert!(spec.check(Side::Buy, 40_000 * SCALE, qty, 0, last).is_ok());
        let e = spec.check(Side::Buy, 260_000 * SCALE, qty, 0, last).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (-1013, "Filter failure: PERCENT_PRICE_BY_SIDE"));
        let e = spec.check(Side::Sell, 9_000 * SCALE, qty, 0, last).unwrap_err();
        assert_eq!(e.msg, "Filter failure: PERCENT_PRICE_BY_SIDE");
        let e = spec.check(Side::Buy, 40_000 * SCALE, qty, 2, last).unwrap_err();
        assert_eq!(e.msg, "Filter failure: MAX_NUM_ORDERS");
        assert_eq!(spec.stp_mode(Some("BOGUS")).unwrap_err().code, -1100);
        assert_eq!(spec.stp_mode(None).unwrap(), "EXPIRE_MAKER");
    }
}
