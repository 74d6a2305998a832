//! The advisor next to the money: how its calls went and what they cost,
//! set against the run's PnL, in the words every view uses (the dashboard's
//! PnL panel, `--no-dashboard` status lines, the final summary, report.json
//! and `mmbot report`).
//!
//! PnL is in the traded pair's quote asset and the AI cost in USD; the net of
//! the two is only computed where the quote asset is a US-dollar stablecoin
//! (USDT, USDC, FDUSD, ...), counted at par. For other pairs the report says
//! why there is no net instead of mixing currencies.

use crate::ai::advisor::AdvisorStats;
use crate::backtest::Report;
use crate::hot::advice::AdviceSource;

/// The USD-like quote asset of `symbol` (`BTCUSDT` -> `USDT`), if any.
pub fn usd_quote(symbol: &str) -> Option<&'static str> {
    crate::ai::cost::quote_asset(symbol).filter(|q| crate::ai::cost::usd_at_par(q))
}

/// The USD-like quote asset of the first word of `title` that is a symbol
/// (`mmbot demo BTCUSDT` -> `USDT`).
pub fn usd_quote_in(title: &str) -> Option<&'static str> {
    title
        .split_whitespace()
        .filter(|w| w.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
        .find_map(usd_quote)
}

/// `$0.0123`, with the estimated part when there is one:
/// `$0.0123 (est. $0.0010)`.
pub fn cost_text(total_usd: f64, estimated_usd: f64) -> String {
    if estimated_usd > 0.0 {
        format!("${total_usd:.4} (est. ${estimated_usd:.4})")
    } else {
        format!("${total_usd:.4}")
    }
}

/// One line on the advisor for status lines and the dashboard:
/// `holysheep gpt-4.1: 12 calls, 1 error, $0.0456 (est. $0.0012)`; the
/// offline rules and neutral advice cost nothing and say so.
pub fn advisor_text(s: &AdvisorStats) -> String {
    match s.source {
        AdviceSource::None => "advisor none (neutral advice)".into(),
        AdviceSource::Offline => format!("advisor {}: {} advice, no cost", s.label, s.ok),
        AdviceSource::Llm => {
            let mut t = format!(
                "advisor {}: {} call{}, {} error{}, {}",
                s.label,
                s.calls,
                if s.calls == 1 { "" } else { "s" },
                s.failed,
                if s.failed == 1 { "" } else { "s" },
                cost_text(s.cost_total_usd, s.cost_estimated_usd)
            );
            if s.unpriced_calls > 0 {
                t.push_str(&format!(", {} unpriced", s.unpriced_calls));
            }
            if s.skipped_budget > 0 {
                t.push_str(&format!(", {} skipped (daily budget)", s.skipped_budget));
            }
            if s.quota_exhausted {
                t.push_str(", quota exhausted");
            }
            t
        }
    }
}

/// The net of PnL (quote asset, 1e-8 fixed point) and the AI cost, when the
/// quote asset is USD-like: `net -0.0412 USDT after $0.0456 AI`.
pub fn net_text(pnl: i64, cost_usd: f64, quote: Option<&str>) -> Option<String> {
    let q = quote?;
    let net = pnl as f64 / 1e8 - cost_usd;
    Some(format!("net {net:+.4} {q} after ${cost_usd:.4} AI"))
}

/// Adds the advisor's cost and the PnL net of it to the report's `ai`
/// section (created when missing): `pnl`, `ai_cost_usd`,
/// `ai_cost_estimated_usd`, `estimated_calls`, `pnl_net_of_ai` (null with a
/// `net_note` when the quote asset is not USD-like), `quote_asset`.
pub fn add_net_of_ai(report: &mut Report, s: &AdvisorStats) {
    let pnl: Option<f64> = report.trading.pnl.trim().parse().ok();
    let quote = usd_quote(&report.trading.symbol);
    let net = match (pnl, quote) {
        (Some(p), Some(_)) => Some(p - s.cost_total_usd),
        _ => None,
    };
    let section = report.ai.get_or_insert_with(|| serde_json::json!({}));
    let Some(obj) = section.as_object_mut() else { return };
    obj.insert("pnl".into(), serde_json::json!(pnl));
    obj.insert("quote_asset".into(), serde_json::json!(quote));
    obj.insert("ai_cost_usd".into(), serde_json::json!(s.cost_total_usd));
    obj.insert("ai_cost_estimated_usd".into(), serde_json::json!(s.cost_estimated_usd));
    obj.insert("estimated_calls".into(), serde_json::json!(s.estimated_calls));
    obj.insert("pnl_net_of_ai".into(), serde_json::json!(net));
    if net.is_none() {
        obj.insert(
            "net_note".into(),
            serde_json::json!(format!(
                "no net: {} is not quoted in a US-dollar stablecoin (PnL is in its quote asset, AI cost in USD)",
                report.trading.symbol
            )),
        );
    }
}

/// The summary line of a report's `ai` section (a run's end, `mmbot
/// report`): `advisor holysheep gpt-4.1: 12 calls, 11 ok, 1 failed; cost
/// $0.0456 (est. $0.0012); pnl +0.1234 USDT, net of AI cost +0.0778 USDT`.
/// `None` when the report has no `ai` section.
pub fn summary_line(report: &Report) -> Option<String> {
    let ai = report.ai.as_ref()?.as_object()?;
    let n = |k: &str| ai.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    let x = |k: &str| ai.get(k).and_then(|v| v.as_f64());
    let label = ai.get("label").and_then(|v| v.as_str()).unwrap_or("?");
    let source = ai.get("source").and_then(|v| v.as_str()).unwrap_or("");
    let cost = x("ai_cost_usd").or(x("cost_total_usd")).unwrap_or(0.0);
    let estimated = x("ai_cost_estimated_usd").or(x("cost_estimated_usd")).unwrap_or(0.0);
    let mut line = match source {
        "none" => "advisor none (neutral advice)".to_string(),
        "offline" => format!("advisor {label}: {} advice, no cost", n("ok")),
        _ => format!(
            "advisor {label}: {} calls, {} ok, {} failed; cost {}",
            n("calls"),
            n("ok"),
            n("failed"),
            cost_text(cost, estimated)
        ),
    };
    let pnl = x("pnl").or_else(|| report.trading.pnl.trim().parse().ok());
    match (pnl, x("pnl_net_of_ai"), usd_quote(&report.trading.symbol)) {
        (Some(p), Some(net), Some(q)) => line.push_str(&format!("; pnl {p:+.4} {q}, net of AI cost {net:+.4} {q}")),
        (Some(p), _, Some(q)) => line.push_str(&format!("; pnl {p:+.4} {q}, net of AI cost {:+.4} {q}", p - cost)),
        (Some(p), _, None) => line.push_str(&format!("; pnl {p:+.8} (quote asset; no net: the AI cost is USD)")),
        _ => {}
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn llm_stats() -> AdvisorStats {
        AdvisorStats {
            source: AdviceSource::Llm,
            label: "holysheep gpt-4.1".into(),
            calls: 12,
            ok: 11,
            failed: 1,
            cost_total_usd: 0.0456,
            cost_estimated_usd: 0.0012,
            estimated_calls: 1,
            ..AdvisorStats::default()
        }
    }

    #[test]
    fn usd_quotes_are_found_in_symbols_and_titles() {
        assert_eq!(usd_quote("BTCUSDT"), Some("USDT"));
        assert_eq!(usd_quote("ethfdusd"), Some("FDUSD"));
        assert_eq!(usd_quote("ETHBTC"), None);
        assert_eq!(usd_quote("USDT"), None);
        assert_eq!(usd_quote_in("mmbot demo BTCUSDT"), Some("USDT"));
        assert_eq!(usd_quote_in("mmbot paper ETHBTC (spot)"), None);
    }

    #[test]
    fn the_advisor_line_has_calls_errors_and_cost_with_the_estimated_part() {
        assert_eq!(advisor_text(&llm_stats()), "advisor holysheep gpt-4.1: 12 calls, 1 error, $0.0456 (est. $0.0012)");
        let offline =
            AdvisorStats { source: AdviceSource::Offline, label: "offline".into(), ok: 7, ..Default::default() };
        assert_eq!(advisor_text(&offline), "advisor offline: 7 advice, no cost");
        assert_eq!(net_text(5_000_000, 0.0456, Some("USDT")).unwrap(), "net +0.0044 USDT after $0.0456 AI");
        assert_eq!(net_text(5_000_000, 0.0456, None), None);
    }
}

#[cfg(test)]
mod screen_tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;
    use crate::cli::dashboard::draw::{draw, Screen};

    fn render(v: &Screen, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, v)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h).map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>() + "\n").collect()
    }

    #[test]
    fn the_pnl_panel_shows_the_llms_calls_errors_cost_and_the_net() {
        let mut v = Screen { title: "mmbot demo BTCUSDT".into(), ..Screen::default() };
        v.exec.pnl = 5_000_000;
        v.ai = Some(super::tests::llm_stats());
        let compact = render(&v, 80, 24);
        assert!(compact.contains("pnl +0.0500  net +0.0044 USDT"), "{compact}");
        assert!(compact.contains("ai 12 calls, 1 err, $0.0456"), "{compact}");
        let wide = render(&v, 160, 48);
        assert!(
            wide.contains("holysheep gpt-4.1: 12 calls, 1 error, $0.0456 (est. $0.0012) | net +0.0044 USDT after"),
            "{wide}"
        );
        // The offline rules cost nothing: no line.
        v.ai = Some(AdvisorStats { source: AdviceSource::Offline, label: "offline".into(), ..Default::default() });
        let compact = render(&v, 80, 24);
        assert!(compact.contains("orders 0, cancels 0") && !compact.contains("net "), "{compact}");
    }
}
