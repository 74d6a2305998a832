//! Operators: Rhai's built-in arithmetic (checked `INT`, `INT as f64` when
//! mixed with `FLOAT`, `**`) and its epsilon-relative float comparisons,
//! resolved at compile time for the operand types.

use super::*;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    /// `**`
    Pow,
}

impl Arith {
    pub(super) fn of(t: &Token) -> Option<Self> {
        Some(match t {
            Token::Plus => Arith::Add,
            Token::Minus => Arith::Sub,
            Token::Multiply => Arith::Mul,
            Token::Divide => Arith::Div,
            Token::Modulo => Arith::Rem,
            Token::PowerOf => Arith::Pow,
            _ => return None,
        })
    }

    /// Rhai's checked `INT` arithmetic (`packages::arithmetic`).
    #[inline]
    pub(super) fn int(self, x: i64, y: i64) -> Result<i64, Fault> {
        match self {
            Arith::Add => x.checked_add(y).ok_or(Fault::int(FaultKind::AddOverflow, x, y)),
            Arith::Sub => x.checked_sub(y).ok_or(Fault::int(FaultKind::SubOverflow, x, y)),
            Arith::Mul => x.checked_mul(y).ok_or(Fault::int(FaultKind::MulOverflow, x, y)),
            Arith::Div if y == 0 => Err(Fault::int(FaultKind::DivByZero, x, y)),
            Arith::Div => x.checked_div(y).ok_or(Fault::int(FaultKind::DivOverflow, x, y)),
            Arith::Rem => x.checked_rem(y).ok_or(Fault::int(FaultKind::Modulo, x, y)),
            // `packages::arithmetic::power`: the exponent must fit a u32.
            Arith::Pow if y > u32::MAX as i64 => Err(Fault::int(FaultKind::PowOverflow, x, y)),
            Arith::Pow if y < 0 => Err(Fault::int(FaultKind::PowNegative, x, y)),
            Arith::Pow => x.checked_pow(y as u32).ok_or(Fault::int(FaultKind::PowOverflow, x, y)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub(super) fn of(t: &Token) -> Option<Self> {
        Some(match t {
            Token::EqualsTo => Cmp::Eq,
            Token::NotEqualsTo => Cmp::Ne,
            Token::LessThan => Cmp::Lt,
            Token::LessThanEqualsTo => Cmp::Le,
            Token::GreaterThan => Cmp::Gt,
            Token::GreaterThanEqualsTo => Cmp::Ge,
            _ => return None,
        })
    }

    pub(super) fn ord<T: PartialOrd + ?Sized>(self, x: &T, y: &T) -> bool {
        match self {
            Cmp::Eq => x == y,
            Cmp::Ne => x != y,
            Cmp::Lt => x < y,
            Cmp::Le => x <= y,
            Cmp::Gt => x > y,
            Cmp::Ge => x >= y,
        }
    }

    /// Rhai's float comparison (checked builds, `func::builtin`): relative
    /// to the larger magnitude, within `f64::EPSILON` counts as equal.
    #[inline]
    #[allow(clippy::float_cmp)]
    pub(super) fn float(self, x: f64, y: f64) -> bool {
        let max = if x * y == 0.0 { 1.0 } else { x.abs().max(y.abs()) };
        if max == 0.0 {
            return matches!(self, Cmp::Eq | Cmp::Ge | Cmp::Le);
        }
        match self {
            Cmp::Eq => (x - y).abs() / max <= f64::EPSILON,
            Cmp::Ne => (x - y).abs() / max > f64::EPSILON,
            Cmp::Gt => (x - y) / max > f64::EPSILON,
            Cmp::Ge => (x - y) / max > -f64::EPSILON,
            Cmp::Lt => (y - x) / max > f64::EPSILON,
            Cmp::Le => (y - x) / max > -f64::EPSILON,
        }
    }
}

#[inline]
pub(super) fn float_op(op: Arith, x: f64, y: f64) -> f64 {
    match op {
        Arith::Add => x + y,
        Arith::Sub => x - y,
        Arith::Mul => x * y,
        Arith::Div => x / y,
        Arith::Rem => x % y,
        // Rhai's built-in `**` for FLOAT with FLOAT or INT (`func::builtin`).
        Arith::Pow => x.powf(y),
    }
}

/// `l op r` with Rhai's built-in operator for these types.
pub(super) fn arith(op: Arith, l: Val, r: Val, pos: Position) -> R<Val> {
    match (l, r) {
        (Val::Int(a), Val::Int(b)) => Ok(Val::Int(ev(move |cx| {
            let x = a(cx)?;
            let y = b(cx)?;
            op.int(x, y).map_err(|f| cx.fail(f.at(pos)))
        }))),
        (l, r) if l.ty().numeric() && r.ty().numeric() => {
            let (Some(a), Some(b)) = (l.into_float(), r.into_float()) else {
                return refuse(pos, "these operands");
            };
            // One closure per operator: no dispatch on `op` per call.
            Ok(Val::Float(match op {
                Arith::Add => ev(move |cx| Ok(a(cx)? + b(cx)?)),
                Arith::Sub => ev(move |cx| Ok(a(cx)? - b(cx)?)),
                Arith::Mul => ev(move |cx| Ok(a(cx)? * b(cx)?)),
                Arith::Div => ev(move |cx| Ok(a(cx)? / b(cx)?)),
                Arith::Rem => ev(move |cx| Ok(a(cx)? % b(cx)?)),
                Arith::Pow => ev(move |cx| Ok(a(cx)?.powf(b(cx)?))),
            }))
        }
        (l, r) => refuse(pos, format!("{} {op:?} {}", l.ty().name(), r.ty().name())),
    }
}

/// `l op r` for comparisons, with Rhai's built-in rules for these types.
pub(super) fn compare(op: Cmp, l: Val, r: Val, pos: Position) -> R<Val> {
    Ok(Val::Bool(match (l, r) {
        (Val::Int(a), Val::Int(b)) => ev(move |cx| {
            let x = a(cx)?;
            let y = b(cx)?;
            Ok(op.ord(&x, &y))
        }),
        (Val::Bool(a), Val::Bool(b)) => ev(move |cx| {
            let x = a(cx)?;
            let y = b(cx)?;
            Ok(op.ord(&x, &y))
        }),
        (Val::Str(a), Val::Str(b)) => ev(move |cx| {
            let x = a(cx)?;
            let y = b(cx)?;
            Ok(op.ord(cx.text(x), cx.text(y)))
        }),
        (l, r) if l.ty().numeric() && r.ty().numeric() => {
            let (Some(a), Some(b)) = (l.into_float(), r.into_float()) else {
                return refuse(pos, "these operands");
            };
            match op {
                Cmp::Lt => ev(move |cx| Ok(Cmp::Lt.float(a(cx)?, b(cx)?))),
                Cmp::Gt => ev(move |cx| Ok(Cmp::Gt.float(a(cx)?, b(cx)?))),
                op => ev(move |cx| Ok(op.float(a(cx)?, b(cx)?))),
            }
        }
        (l, r) => return refuse(pos, format!("comparing {} with {}", l.ty().name(), r.ty().name())),
    }))
}
