//! `[paper]` validated: the paper exchange's latencies (entry, cancel,
//! response; a journal whose round trips are replayed), fees (a maker
//! rebate allowed), queue model, order type and clock (see
//! `crate::exec::paper`).

use super::{decimal, float_in, in_range, invalid, ConfigError, RawDecimal, RawPaper};
use crate::exec::paper::PaperConfig;
use crate::hot::fixed::Qty;

/// `[paper]`: the paper exchange's latencies, fees, queue model and order
/// type (see `crate::exec::paper`), and the journal whose round trips it
/// replays.
pub(super) fn validate_paper(
    p: &RawPaper,
    max_position: Qty,
    lot_size: Qty,
) -> Result<(PaperConfig, Option<std::path::PathBuf>), ConfigError> {
    use crate::exec::paper::{OrderType, PaperClock, QueueModel};
    let dp = PaperConfig::default();
    let ms = |key, v: Option<f64>, default_ns: i64| -> Result<i64, ConfigError> {
        Ok((float_in(key, v, default_ns as f64 / 1e6, 0.0, 60_000.0)? * 1e6).round() as i64)
    };
    // `latency_ms` is every kind's default; each kind may be set apart.
    let all = ms("paper.latency_ms", p.latency_ms, dp.entry_latency_ns)?;
    let queue_model = match p.queue_model.as_deref().map(str::trim) {
        None | Some("risk_averse") => QueueModel::RiskAverse,
        Some("power") => QueueModel::Power(float_in("paper.queue_power", p.queue_power, 2.0, 0.01, 100.0)?),
        Some("log") => QueueModel::Log,
        Some(other) => {
            return Err(invalid(
                "paper.queue_model",
                format!("{other:?}"),
                "must be \"risk_averse\", \"power\" or \"log\"",
            ))
        }
    };
    if p.queue_power.is_some() && !matches!(queue_model, QueueModel::Power(_)) {
        return Err(invalid(
            "paper.queue_power",
            p.queue_power.unwrap_or_default(),
            "applies only with queue_model = \"power\"; set that or drop queue_power",
        ));
    }
    let order_type = match p.order_type.as_deref().map(str::trim) {
        None | Some("limit_maker") => OrderType::LimitMaker,
        Some("limit") => OrderType::Limit,
        Some(other) => {
            return Err(invalid("paper.order_type", format!("{other:?}"), "must be \"limit_maker\" or \"limit\""))
        }
    };
    let clock = match p.clock.as_deref().map(str::trim) {
        None | Some("receive") => PaperClock::Receive,
        Some("exchange") => PaperClock::Exchange,
        Some(other) => return Err(invalid("paper.clock", format!("{other:?}"), "must be \"receive\" or \"exchange\"")),
    };
    let maker_fee_rate = signed_decimal("paper.maker_fee", &p.maker_fee, dp.maker_fee_rate)?;
    // Rebates exist (negative maker fees) but no venue pays more than a few
    // basis points; anything beyond is a typo.
    if !(-10_000..=1_000_000).contains(&maker_fee_rate) {
        return Err(invalid(
            "paper.maker_fee",
            maker_fee_rate as f64 / 1e8,
            "must be from -0.0001 (a 0.01% rebate) to 0.01 (1%)",
        ));
    }
    let taker_fee_rate = decimal("paper.taker_fee", &p.taker_fee, dp.taker_fee_rate)?;
    if taker_fee_rate > 1_000_000 {
        return Err(invalid("paper.taker_fee", taker_fee_rate as f64 / 1e8, "must be from 0 to 0.01 (1%)"));
    }
    let journal = match p.latency_from_journal.as_deref().map(str::trim) {
        None => None,
        Some("") => {
            return Err(invalid(
                "paper.latency_from_journal",
                "\"\"",
                "must be the path of a journal (SQLite) written by a live run",
            ))
        }
        Some(path) => Some(std::path::PathBuf::from(path)),
    };
    let paper = PaperConfig {
        entry_latency_ns: ms("paper.entry_latency_ms", p.entry_latency_ms, all)?,
        cancel_latency_ns: ms("paper.cancel_latency_ms", p.cancel_latency_ms, all)?,
        response_latency_ns: ms("paper.response_latency_ms", p.response_latency_ms, all)?,
        latency_seed: in_range("paper.latency_seed", p.latency_seed, dp.latency_seed as i64, 0, i64::MAX)? as u64,
        refresh_ticks: in_range("paper.refresh_ticks", p.refresh_ticks, dp.refresh_ticks, 0, 1_000_000)?,
        max_order_age_ns: in_range(
            "paper.max_order_age_ms",
            p.max_order_age_ms,
            dp.max_order_age_ns / 1_000_000,
            1,
            86_400_000,
        )? * 1_000_000,
        maker_fee_rate,
        taker_fee_rate,
        // The same limit as the hot path's, enforced where fills happen.
        max_position: Some(max_position),
        queue_model,
        order_type,
        // Fills come in whole lots of the symbol's step.
        lot_size,
        clock,
    };
    Ok((paper, journal))
}

/// [`decimal`] that may be negative (a leading `-`).
fn signed_decimal(key: &'static str, v: &Option<RawDecimal>, default: i64) -> Result<i64, ConfigError> {
    let Some(raw) = v else { return Ok(default) };
    let text = raw.text();
    match text.trim().strip_prefix('-') {
        Some(abs) => Ok(-decimal(key, &Some(RawDecimal::Text(abs.to_string())), 0)?),
        None => decimal(key, v, default),
    }
}
