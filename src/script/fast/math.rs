//! Rhai's standard math functions the fast path reproduces: which one
//! Rhai would call for a name and argument types ([`resolve`]), and the same
//! code it runs ([`apply`]). Anything not listed here is refused by the
//! compiler and stays on the interpreter.

use super::*;
/// The functions of Rhai's standard packages the fast path knows, each
/// resolved for the argument types Rhai would match it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MathFn {
    AbsI,
    AbsF,
    SignI,
    SignF,
    MinI,
    MaxI,
    MinF,
    MaxF,
    Sqrt,
    Exp,
    Ln,
    Log10,
    LogBase,
    Floor,
    Ceiling,
    Round,
    Trunc,
    Fraction,
    IntToFloat,
    FloatToInt,
    Same,
    IsNan,
    IsFinite,
    IsInfinite,
    IsZero,
    Pi,
    E,
    /// The trigonometric package (`trig_functions`), FLOAT only.
    Sin,
    Cos,
    Tan,
    Sinh,
    Cosh,
    Tanh,
    Asin,
    Acos,
    Atan,
    Atan2,
    Asinh,
    Acosh,
    Atanh,
    Hypot,
    ToRadians,
    ToDegrees,
}

/// `name(args)` with these types: the function Rhai calls, and its result type.
pub(super) fn resolve(name: &str, tys: &[Ty]) -> Option<(MathFn, Ty)> {
    use MathFn::*;
    use Ty::{Bool, Float, Int};
    Some(match (name, tys) {
        ("abs", [Int]) => (AbsI, Int),
        ("abs", [Float]) => (AbsF, Float),
        ("sign", [Int]) => (SignI, Int),
        ("sign", [Float]) => (SignF, Int),
        ("min", [Int, Int]) => (MinI, Int),
        ("max", [Int, Int]) => (MaxI, Int),
        ("min", [a, b]) if a.numeric() && b.numeric() => (MinF, Float),
        ("max", [a, b]) if a.numeric() && b.numeric() => (MaxF, Float),
        ("sqrt", [Float]) => (Sqrt, Float),
        ("exp", [Float]) => (Exp, Float),
        ("ln", [Float]) => (Ln, Float),
        ("log", [Float]) => (Log10, Float),
        ("log", [Float, Float]) => (LogBase, Float),
        ("floor", [Float]) => (Floor, Float),
        ("ceiling", [Float]) => (Ceiling, Float),
        ("round", [Float]) => (Round, Float),
        ("int", [Float]) => (Trunc, Float),
        ("fraction", [Float]) => (Fraction, Float),
        ("to_float", [Int]) => (IntToFloat, Float),
        ("to_float", [Float]) => (Same, Float),
        ("to_int", [Float]) => (FloatToInt, Int),
        ("to_int", [Int]) => (Same, Int),
        ("is_nan", [Float]) => (IsNan, Bool),
        ("is_finite", [Float]) => (IsFinite, Bool),
        ("is_infinite", [Float]) => (IsInfinite, Bool),
        ("is_zero", [Float]) => (IsZero, Bool),
        ("PI", []) => (Pi, Float),
        ("E", []) => (E, Float),
        // FLOAT only: Rhai has no INT versions (an INT argument is a
        // "function not found" error, so it is refused here).
        ("sin", [Float]) => (Sin, Float),
        ("cos", [Float]) => (Cos, Float),
        ("tan", [Float]) => (Tan, Float),
        ("sinh", [Float]) => (Sinh, Float),
        ("cosh", [Float]) => (Cosh, Float),
        ("tanh", [Float]) => (Tanh, Float),
        ("asin", [Float]) => (Asin, Float),
        ("acos", [Float]) => (Acos, Float),
        ("atan", [Float]) => (Atan, Float),
        ("atan", [Float, Float]) => (Atan2, Float),
        ("asinh", [Float]) => (Asinh, Float),
        ("acosh", [Float]) => (Acosh, Float),
        ("atanh", [Float]) => (Atanh, Float),
        ("hypot", [Float, Float]) => (Hypot, Float),
        ("to_radians", [Float]) => (ToRadians, Float),
        ("to_degrees", [Float]) => (ToDegrees, Float),
        _ => return None,
    })
}

/// Float properties Rhai registers as getters too (`x.floor`).
pub(super) const FLOAT_PROPERTIES: [&str; 9] =
    ["floor", "ceiling", "round", "int", "fraction", "is_nan", "is_finite", "is_infinite", "is_zero"];

/// One call of a [`MathFn`], with the same code as Rhai's package function.
pub(super) fn apply(f: MathFn, a: Tmp, b: Tmp) -> Result<Tmp, Fault> {
    use MathFn::*;
    Ok(match f {
        AbsI => Tmp::I(a.i().checked_abs().ok_or(Fault::int(FaultKind::Abs, a.i(), 0))?),
        AbsF => Tmp::F(a.f().abs()),
        SignI => Tmp::I(a.i().signum()),
        SignF => {
            let x = a.f();
            match x.signum() {
                _ if x == 0.0 => Tmp::I(0),
                s if s.is_nan() => return Err(Fault::int(FaultKind::SignOfNan, 0, 0)),
                s => Tmp::I(s as i64),
            }
        }
        MinI => Tmp::I(if a.i() <= b.i() { a.i() } else { b.i() }),
        MaxI => Tmp::I(if a.i() >= b.i() { a.i() } else { b.i() }),
        MinF => Tmp::F(if a.f() <= b.f() { a.f() } else { b.f() }),
        MaxF => Tmp::F(if a.f() >= b.f() { a.f() } else { b.f() }),
        Sqrt => Tmp::F(a.f().sqrt()),
        Exp => Tmp::F(a.f().exp()),
        Ln => Tmp::F(a.f().ln()),
        Log10 => Tmp::F(a.f().log10()),
        LogBase => Tmp::F(a.f().log(b.f())),
        Floor => Tmp::F(a.f().floor()),
        Ceiling => Tmp::F(a.f().ceil()),
        Round => Tmp::F(a.f().round()),
        Trunc => Tmp::F(a.f().trunc()),
        Fraction => Tmp::F(a.f().fract()),
        IntToFloat => Tmp::F(a.i() as f64),
        FloatToInt => {
            let x = a.f();
            if x > (i64::MAX as f64) || x < (i64::MIN as f64) {
                return Err(Fault { kind: FaultKind::ToInt, pos: Position::NONE, a: 0, b: 0, x });
            }
            Tmp::I(x.trunc() as i64)
        }
        Same => a,
        IsNan => Tmp::B(a.f().is_nan()),
        IsFinite => Tmp::B(a.f().is_finite()),
        IsInfinite => Tmp::B(a.f().is_infinite()),
        #[allow(clippy::float_cmp)]
        IsZero => Tmp::B(a.f() == 0.0),
        Pi => Tmp::F(std::f64::consts::PI),
        E => Tmp::F(std::f64::consts::E),
        Sin => Tmp::F(a.f().sin()),
        Cos => Tmp::F(a.f().cos()),
        Tan => Tmp::F(a.f().tan()),
        Sinh => Tmp::F(a.f().sinh()),
        Cosh => Tmp::F(a.f().cosh()),
        Tanh => Tmp::F(a.f().tanh()),
        Asin => Tmp::F(a.f().asin()),
        Acos => Tmp::F(a.f().acos()),
        Atan => Tmp::F(a.f().atan()),
        Atan2 => Tmp::F(a.f().atan2(b.f())),
        Asinh => Tmp::F(a.f().asinh()),
        Acosh => Tmp::F(a.f().acosh()),
        Atanh => Tmp::F(a.f().atanh()),
        Hypot => Tmp::F(a.f().hypot(b.f())),
        ToRadians => Tmp::F(a.f().to_radians()),
        ToDegrees => Tmp::F(a.f().to_degrees()),
    })
}
