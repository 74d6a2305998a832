//! Runtime errors of the compiled form, as Rhai raises them: the same
//! kinds, positions and messages word for word, so a script's errors read
//! the same on both paths (the tests compare them). Kept small and `Copy`:
//! a fault comes back from the hot path by value, and its message is
//! formatted only when the strategy first sees its place.

use rhai::{EvalAltResult, Position};

/// A runtime error of the compiled script, as Rhai would have raised it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    pub(super) kind: FaultKind,
    pub(super) pos: Position,
    pub(super) a: i64,
    pub(super) b: i64,
    pub(super) x: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FaultKind {
    AddOverflow,
    SubOverflow,
    MulOverflow,
    DivByZero,
    DivOverflow,
    Modulo,
    /// Unary minus of `i64::MIN` (Rhai's fast operator path).
    Negate,
    /// `abs(i64::MIN)`.
    Abs,
    /// `INT ** INT` out of range.
    PowOverflow,
    /// `INT ** negative INT`.
    PowNegative,
    SignOfNan,
    ToInt,
    /// A type the compiler promised did not show up: a bug, never expected.
    Internal,
}

impl Fault {
    pub(super) fn int(kind: FaultKind, a: i64, b: i64) -> Self {
        Self { kind, pos: Position::NONE, a, b, x: 0.0 }
    }

    pub(super) fn at(mut self, pos: Position) -> Self {
        self.pos = pos;
        self
    }

    pub fn position(&self) -> Position {
        self.pos
    }

    /// Rhai's message for the same error, word for word.
    pub fn message(&self) -> String {
        let (a, b, x) = (self.a, self.b, self.x);
        match self.kind {
            FaultKind::AddOverflow => format!("Addition overflow: {a} + {b}"),
            FaultKind::SubOverflow => format!("Subtraction overflow: {a} - {b}"),
            FaultKind::MulOverflow => format!("Multiplication overflow: {a} * {b}"),
            FaultKind::DivByZero => format!("Division by zero: {a} / {b}"),
            FaultKind::DivOverflow => format!("Division overflow: {a} / {b}"),
            FaultKind::Modulo => format!("Modulo division by zero or overflow: {a} % {b}"),
            FaultKind::Negate => "integer overflow".to_string(),
            FaultKind::Abs => format!("Negation overflow: -{a}"),
            FaultKind::PowOverflow => format!("Exponential overflow: {a} ** {b}"),
            FaultKind::PowNegative => format!("Integer raised to a negative power: {a} ** {b}"),
            FaultKind::SignOfNan => "Sign of NaN is undefined".to_string(),
            FaultKind::ToInt => format!("Integer overflow: to_int({x})"),
            FaultKind::Internal => "internal error in the compiled fast path".to_string(),
        }
    }

    /// Whether this is Rhai's arithmetic error (every fault but an internal
    /// one, which Rhai reports as a runtime error).
    pub fn is_arithmetic(&self) -> bool {
        self.kind != FaultKind::Internal
    }

    /// The error Rhai would have returned (for [`crate::script::ScriptError::runtime`]).
    pub fn to_rhai(&self) -> EvalAltResult {
        match self.kind {
            FaultKind::Internal => EvalAltResult::ErrorRuntime(self.message().into(), self.pos),
            _ => EvalAltResult::ErrorArithmetic(self.message(), self.pos),
        }
    }
}
