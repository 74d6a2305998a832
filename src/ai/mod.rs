//! Market-regime advice off the hot path. The hot thread only ever reads the
//! newest [`crate::hot::advice::Advice`] it has been handed. Today: the
//! deterministic offline advisor, which backtests use. The LLM client (an
//! OpenAI-compatible gateway on a side thread) comes next.

pub mod offline;
