//! `GET /metrics` for a run of several symbols (`[[symbols]]`): the rows
//! the exec thread publishes for the symbols dashboard, one series per
//! symbol under the names the one-symbol exposition uses where they mean
//! the same (so the sample Grafana dashboard's panels read both).

use super::{bit, Num, Writer};
use crate::hot::fixed::SCALE;
use crate::runtime::multi_status::{MultiStatus, SymbolState};

/// The exposition of every symbol's row.
pub fn render_symbols(out: &mut String, s: &MultiStatus) {
    type Pick = fn(&crate::runtime::multi_status::SymbolRow) -> Num;
    let families: [(&str, &str, &str, Pick); 8] = [
        ("mmbot_position", "gauge", "Position in the base asset.", |r| Num::F(r.position.0 as f64 / SCALE as f64)),
        ("mmbot_pnl", "gauge", "Realized plus unrealized PnL at the mid, quote asset.", |r| {
            Num::F(r.pnl as f64 / SCALE as f64)
        }),
        ("mmbot_fees", "gauge", "Commissions paid, quote asset.", |r| Num::F(r.fees as f64 / SCALE as f64)),
        ("mmbot_quotes_total", "counter", "Quotes the symbol's hot path made.", |r| Num::U(r.quotes)),
        ("mmbot_orders_total", "counter", "Orders sent.", |r| Num::U(r.orders)),
        ("mmbot_fills_total", "counter", "Own fills.", |r| Num::U(r.fills)),
        ("mmbot_allocator_refused_total", "counter", "Levels the account's allocator refused.", |r| Num::U(r.refused)),
        ("mmbot_quoting", "gauge", "1 while the symbol's last quote had orders on a side.", |r| {
            Num::F(bit(r.state == SymbolState::Quoting))
        }),
    ];

    for (name, kind, help, pick) in families {
        Writer { out, symbol: String::new() }.head(name, kind, help);
        for r in &s.rows {
            Writer { out, symbol: super::escape_label(r.symbol.as_str()) }.sample(name, &[], pick(r));
        }
    }
    Writer { out, symbol: String::new() }.head(
        "mmbot_mid_price",
        "gauge",
        "Mid of the symbol's book, quote asset (absent without both sides).",
    );
    for r in &s.rows {
        if let Some(m) = r.mid() {
            Writer { out, symbol: super::escape_label(r.symbol.as_str()) }.sample(
                "mmbot_mid_price",
                &[],
                Num::F(m.0 as f64 / SCALE as f64),
            );
        }
    }
    for (name, help, v) in [
        ("mmbot_trading_stopped", "1 once the account's kill switch stopped every symbol.", bit(s.killed.is_some())),
        ("mmbot_uptime_seconds", "Seconds since the run started.", s.elapsed_s),
    ] {
        Writer { out, symbol: String::new() }.head(name, "gauge", help);
        for r in &s.rows {
            Writer { out, symbol: super::escape_label(r.symbol.as_str()) }.sample(name, &[], Num::F(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::fixed::{Price, Qty};
    use crate::hot::msg::Symbol;
    use crate::runtime::multi_status::SymbolRow;

    #[test]
    fn each_family_once_with_one_series_per_symbol() {
        let row = |sym: &[u8], pos: i64| SymbolRow {
            symbol: Symbol::new(sym),
            quote_asset: "USDT".into(),
            best_bid: Some(Price(100 * SCALE)),
            best_ask: Some(Price(101 * SCALE)),
            position: Qty(pos),
            fills: 3,
            state: SymbolState::Quoting,
            ..SymbolRow::default()
        };
        let s = MultiStatus { rows: vec![row(b"BTCUSDT", 100_000), row(b"ETHUSDT", -200_000)], ..Default::default() };
        let mut out = String::new();
        render_symbols(&mut out, &s);
        for fam in ["mmbot_position", "mmbot_fills_total", "mmbot_mid_price", "mmbot_uptime_seconds"] {
            assert_eq!(out.matches(&format!("# TYPE {fam} ")).count(), 1, "{fam}\n{out}");
        }
        assert!(out.contains("mmbot_position{symbol=\"BTCUSDT\"} 0.001\n"), "{out}");
        assert!(out.contains("mmbot_position{symbol=\"ETHUSDT\"} -0.002\n"), "{out}");
        assert!(out.contains("mmbot_mid_price{symbol=\"ETHUSDT\"} 100.5\n"), "{out}");
        assert!(out.contains("mmbot_fills_total{symbol=\"BTCUSDT\"} 3\n"), "{out}");
        // Every sample line is `name{symbol="..."} value`.
        for l in out.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = l.rsplit_once(' ').unwrap();
            assert!(series.contains("{symbol=\"") && value.parse::<f64>().is_ok(), "{l}");
        }
    }
}
