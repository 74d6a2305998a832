//! The compiled fast path: `fn quote(m)` turned into a tree of Rust closures.
//!
//! Why: the Rhai interpreter costs ~2 us per call on `tutorial.rhai` (a
//! script function call, twelve property getters through the function
//! registry, dynamic values for every intermediate), while the goal
//! is 600 ns. Most strategy scripts are straight-line arithmetic on the
//! market state with a few `if`s, so [`compile`] walks Rhai's own optimized
//! AST of `fn quote(m)` and builds a [`FastQuote`]: one boxed closure per
//! node, typed at compile time, reading `m.<getter>` as a field of
//! [`MarketState`], with `param(...)` already resolved and `bid`/`ask`/`pull`
//! writing the [`Decision`] directly. No Rhai runtime, no `Dynamic`, no
//! allocation per call.
//!
//! Faithfulness is the point, so anything the fast path would have to guess
//! about is refused ([`NotCompiled`], with the reason and position) and the
//! script keeps running in the interpreter exactly as before:
//! * Types are static. Every expression has one type at compile time
//!   (`INT`, `FLOAT`, `bool`, string, `()`), and a variable keeps the type
//!   of its first value: `let x = 0; x = 1.5;` is refused. So every
//!   operator, comparison and function is resolved to the one Rhai would
//!   pick, and a combination Rhai would reject at run time (`1 + "a"`,
//!   `sqrt(4)`, an `if` on a number) is refused instead of reproduced.
//! * What remains dynamic is what Rhai checks at run time on values:
//!   integer overflow, integer division by zero, `abs`/negation of
//!   `i64::MIN`, `to_int` out of range, `sign` of NaN. Those are reported
//!   as a [`Fault`] carrying Rhai's own message and position, and the
//!   strategy pulls and counts it exactly as for an interpreter error.
//! * Numbers follow Rhai's rules to the bit: checked `INT` arithmetic, `INT`
//!   converted with `as f64` when mixed with `FLOAT`, and Rhai's
//!   epsilon-relative float comparisons (`a < b` is not Rust's `<` there).
//! * Expressions are pure: assignments, `bid`/`ask`/`pull` and `return` are
//!   only accepted as statements, never inside an expression block, so
//!   evaluation order cannot change a value; where two faults could race,
//!   Rhai's order is kept (method-call arguments before the receiver).
//! * The operation cap: the accepted subset has no loops and no calls into
//!   script functions, so one call costs Rhai a few operations per AST node
//!   at most (one per statement or expression evaluated, one more per
//!   variable receiver, property step or native call). [`compile`] refuses
//!   a script whose bound ([`OPS_PER_NODE`] x nodes + [`OPS_BASE`], about
//!   twice the worst case; a test checks Rhai's own count stays under half
//!   of it) exceeds the engine's `max_operations`: below it the interpreter
//!   could not have hit the cap either, above it the interpreter keeps
//!   enforcing it. Call-depth, variable-count, string and map caps are
//!   checked the same way.

use rhai::{
    ASTFlags, ASTNode, BinaryExpr, Dynamic, Engine, EvalAltResult, Expr, FlowControl, FnAccess, FnCallExpr, Ident,
    ImmutableString, OpAssignment, Position, Scope, Stmt, Token, AST,
};

use crate::hot::strategy::{Decision, SideIntent};
use crate::script::api::{market_fields, MarketState};

/// Bound on the Rhai operations one AST node of the accepted subset can
/// count (a statement or expression counts one, a call or a property read
/// a few more: see the module docs). A test checks it against Rhai's own
/// count.
pub const OPS_PER_NODE: u64 = 8;
/// Operations outside the body: the `quote(m)` call itself.
pub const OPS_BASE: u64 = 64;

// Frame capacities, powers of two: a slot index is masked with `CAP - 1`,
// which is the identity for every slot [`compile`] hands out (it refuses
// more) and lets the compiler drop the bounds check without any `unsafe`.
const FLOATS: usize = 64;
const INTS: usize = 32;
const BOOLS: usize = 32;
const STRS: usize = 16;
/// Method-call arguments held while a chain evaluates them first.
const CHAIN_ARGS: usize = 8;

/// The locals of one call, by type. Reused across calls (the caller owns
/// one, allocated once); every slot is written by its `let` before any read,
/// so no call sees a previous call's values.
pub struct Frame {
    f: [f64; FLOATS],
    i: [i64; INTS],
    b: [bool; BOOLS],
    s: [StrVal; STRS],
}

impl Frame {
    /// A frame on the heap (it is ~1.4 KB; the strategy keeps one).
    pub fn boxed() -> Box<Self> {
        Box::new(Self { f: [0.0; FLOATS], i: [0; INTS], b: [false; BOOLS], s: [StrVal::Static(""); STRS] })
    }
}

/// A string value: one of the getters' `&'static str`, or a literal of the
/// script by index (the literals are owned by the [`FastQuote`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StrVal {
    Static(&'static str),
    Lit(u32),
}

/// Stops evaluation; the details are in [`Cx::fault`] (keeps results two
/// registers wide on the hot path).
#[derive(Debug)]
struct Halt;

/// What the function returned, if it did not quote with `bid`/`ask`/`pull`.
#[derive(Debug, Clone, Copy)]
enum Ret {
    Unit,
    Str(StrVal),
    /// The documented keys, [`KEYS`] order: present (and as f64, NaN when
    /// not a number) or absent.
    Map([Option<f64>; 6]),
    /// A number or a bool: the wrong shape.
    Other,
}

/// The map keys `decision_from` reads, in the order of [`Ret::Map`].
const KEYS: [&str; 6] = ["bid", "ask", "bid_size", "ask_size", "bid_spread", "ask_spread"];

/// Evaluation state of one call.
struct Cx<'a> {
    m: &'a MarketState,
    fr: &'a mut Frame,
    lits: &'a [ImmutableString],
    /// What `bid`/`ask`/`pull` set (wins over the return value, as in the interpreter).
    out: Option<Decision>,
    ret: Ret,
    fault: Option<Fault>,
}

impl Cx<'_> {
    #[cold]
    #[inline(never)]
    fn fail(&mut self, f: Fault) -> Halt {
        self.fault = Some(f);
        Halt
    }

    fn text(&self, s: StrVal) -> &str {
        match s {
            StrVal::Static(s) => s,
            StrVal::Lit(i) => self.lits.get(i as usize).map_or("", |s| s.as_str()),
        }
    }

    fn output(&mut self) -> &mut Decision {
        self.out.get_or_insert_with(Decision::default)
    }
}

type Ev<T> = Box<dyn Fn(&mut Cx<'_>) -> Result<T, Halt> + Send + Sync>;
/// A statement: `Ok(true)` when it returned from the function.
type St = Ev<bool>;

fn ev<T, F>(f: F) -> Ev<T>
where
    F: Fn(&mut Cx<'_>) -> Result<T, Halt> + Send + Sync + 'static,
{
    Box::new(f)
}

/// A runtime error of the compiled script, as Rhai would have raised it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    kind: FaultKind,
    pos: Position,
    a: i64,
    b: i64,
    x: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultKind {
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
    SignOfNan,
    ToInt,
    /// A type the compiler promised did not show up: a bug, never expected.
    Internal,
}

impl Fault {
    fn int(kind: FaultKind, a: i64, b: i64) -> Self {
        Self { kind, pos: Position::NONE, a, b, x: 0.0 }
    }

    fn at(mut self, pos: Position) -> Self {
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
            FaultKind::SignOfNan => "Sign of NaN is undefined".to_string(),
            FaultKind::ToInt => format!("Integer overflow: to_int({x})"),
            FaultKind::Internal => "internal error in the compiled fast path".to_string(),
        }
    }

    /// The error Rhai would have returned (for [`crate::script::ScriptError::runtime`]).
    pub fn to_rhai(&self) -> EvalAltResult {
        match self.kind {
            FaultKind::Internal => EvalAltResult::ErrorRuntime(self.message().into(), self.pos),
            _ => EvalAltResult::ErrorArithmetic(self.message(), self.pos),
        }
    }
}

/// Why a script stays on the interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCompiled {
    pub reason: String,
    pub pos: Position,
}

impl std::fmt::Display for NotCompiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.pos.line(), self.pos.position()) {
            (Some(l), Some(c)) => write!(f, "{} (line {l}, column {c})", self.reason),
            _ => f.write_str(&self.reason),
        }
    }
}

type R<T> = Result<T, NotCompiled>;

fn refuse<T>(pos: Position, reason: impl Into<String>) -> R<T> {
    Err(NotCompiled { reason: reason.into(), pos })
}

/// What one call decided, before the strategy's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quoted {
    Decision(Decision),
    /// A return value of the wrong shape (not a map, `"pull"` or `()`): the
    /// strategy counts it and pulls, as for the interpreter.
    BadOutput,
}

/// `fn quote(m)` compiled to closures.
pub struct FastQuote {
    body: St,
    lits: Vec<ImmutableString>,
    nodes: usize,
}

impl std::fmt::Debug for FastQuote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastQuote").field("nodes", &self.nodes).field("literals", &self.lits).finish()
    }
}

impl FastQuote {
    /// AST nodes of the body (what the operation bound is computed from).
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// One call. Allocates nothing, takes no lock, never panics: every
    /// error Rhai would raise comes back as a [`Fault`].
    #[inline]
    pub fn run(&self, m: &MarketState, frame: &mut Frame) -> Result<Quoted, Fault> {
        let mut cx = Cx { m, fr: frame, lits: &self.lits, out: None, ret: Ret::Unit, fault: None };
        if (self.body)(&mut cx).is_err() {
            return Err(cx.fault.unwrap_or(Fault::int(FaultKind::Internal, 0, 0)));
        }
        // Mirrors ScriptStrategy: quotes set with bid()/ask()/pull() win,
        // then the return value as `decision_from` reads it.
        if let Some(d) = cx.out {
            return Ok(Quoted::Decision(d));
        }
        let pull = Decision { pull: true, ..Decision::default() };
        Ok(match cx.ret {
            Ret::Unit => Quoted::Decision(pull),
            Ret::Str(s) if cx.text(s) == "pull" => Quoted::Decision(pull),
            Ret::Str(_) | Ret::Other => Quoted::BadOutput,
            Ret::Map([bid, ask, bid_size, ask_size, bid_spread, ask_spread]) => {
                let default_size = m.min_order_size;
                let bid = bid.or_else(|| bid_spread.map(|d| m.mid - d));
                let ask = ask.or_else(|| ask_spread.map(|d| m.mid + d));
                Quoted::Decision(Decision {
                    bid: bid.map(|price| SideIntent { price, size: bid_size.unwrap_or(default_size) }),
                    ask: ask.map(|price| SideIntent { price, size: ask_size.unwrap_or(default_size) }),
                    pull: false,
                    explain: Default::default(),
                })
            }
        })
    }
}

/// Compiles `fn quote(m)` of `ast` for `engine` (its caps, and the values
/// its `param()` returns), or says why not.
pub fn compile(engine: &Engine, ast: &AST) -> Result<FastQuote, NotCompiled> {
    let Some(def) = ast.iter_fn_def().find(|d| d.name.as_str() == "quote" && d.params.len() == 1) else {
        return refuse(Position::NONE, "no fn quote(m)");
    };
    let start = def.body.start_position();
    if def.access != FnAccess::Public {
        return refuse(start, "a private fn quote");
    }
    if def.this_type.is_some() {
        return refuse(start, "a method-style fn quote");
    }
    let Some(param) = def.params.first().cloned() else {
        return refuse(start, "fn quote without its parameter");
    };
    // The body's statements, and its size. A walk is the one public way to
    // reach them (the body's container type is not exported), over an AST
    // holding just this function. (`clone_functions_only_filtered` would
    // not do: Rhai 1.27 copies every function into an empty module
    // unfiltered.)
    let mut lib = rhai::Module::new();
    lib.set_script_fn(def.clone());
    let mut body = Vec::new();
    let mut nodes = 0usize;
    AST::new([], lib).walk(&mut |path: &[ASTNode]| {
        nodes += 1;
        if let [ASTNode::Stmt(s)] = path {
            body.push((*s).clone());
        }
        true
    });

    // Caps the interpreter enforces per call.
    let max_ops = engine.max_operations();
    let bound = OPS_PER_NODE.saturating_mul(nodes as u64).saturating_add(OPS_BASE);
    if max_ops != 0 && bound > max_ops {
        return refuse(
            start,
            format!("{nodes} AST nodes: up to {bound} operations per call, over the cap of {max_ops}"),
        );
    }
    if engine.max_call_levels() < 1 {
        return refuse(start, "max_call_levels is 0 (the interpreter cannot call quote)");
    }

    let mut c = Compiler {
        engine,
        scope: vec![Local { name: param, ty: Ty::Market, slot: 0, constant: true }],
        used: [0; 4],
        lits: Vec::new(),
        script_fns: ast.iter_functions().map(|f| f.name.to_string()).collect(),
        pure: 0,
    };
    let body = c.block(&body, true)?;
    let lets = c.used.iter().sum::<usize>();
    if engine.max_variables() < lets.saturating_add(2) {
        return refuse(start, "more variables than max_variables allows");
    }
    let longest = c.lits.iter().map(|s| s.len()).chain([8]).max().unwrap_or(8);
    if engine.max_string_size() != 0 && engine.max_string_size() < longest {
        return refuse(start, "max_string_size is below the length of a string the script uses");
    }
    Ok(FastQuote { body, lits: c.lits, nodes })
}

/// Static types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Int,
    Float,
    Bool,
    Str,
    Unit,
    /// The parameter `m`: only `m.<getter>` is allowed on it.
    Market,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Int => "INT",
            Ty::Float => "FLOAT",
            Ty::Bool => "bool",
            Ty::Str => "string",
            Ty::Unit => "()",
            Ty::Market => "MarketState",
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }
}

/// A typed expression.
enum Val {
    Int(Ev<i64>),
    Float(Ev<f64>),
    Bool(Ev<bool>),
    Str(Ev<StrVal>),
    Unit(Ev<()>),
}

impl Val {
    fn ty(&self) -> Ty {
        match self {
            Val::Int(_) => Ty::Int,
            Val::Float(_) => Ty::Float,
            Val::Bool(_) => Ty::Bool,
            Val::Str(_) => Ty::Str,
            Val::Unit(_) => Ty::Unit,
        }
    }

    /// As a float, the way Rhai mixes `INT` into `FLOAT` (`as f64`).
    fn into_float(self) -> Option<Ev<f64>> {
        match self {
            Val::Float(e) => Some(e),
            Val::Int(e) => Some(ev(move |cx| Ok(e(cx)? as f64))),
            _ => None,
        }
    }

    /// Evaluated for its faults only.
    fn discard(self) -> St {
        match self {
            Val::Int(e) => ev(move |cx| e(cx).map(|_| false)),
            Val::Float(e) => ev(move |cx| e(cx).map(|_| false)),
            Val::Bool(e) => ev(move |cx| e(cx).map(|_| false)),
            Val::Str(e) => ev(move |cx| e(cx).map(|_| false)),
            Val::Unit(e) => ev(move |cx| e(cx).map(|_| false)),
        }
    }

    /// Returned from the function.
    fn returned(self) -> St {
        match self {
            Val::Unit(e) => ev(move |cx| {
                e(cx)?;
                cx.ret = Ret::Unit;
                Ok(true)
            }),
            Val::Str(e) => ev(move |cx| {
                let s = e(cx)?;
                cx.ret = Ret::Str(s);
                Ok(true)
            }),
            Val::Int(e) => ev(move |cx| {
                e(cx)?;
                cx.ret = Ret::Other;
                Ok(true)
            }),
            Val::Float(e) => ev(move |cx| {
                e(cx)?;
                cx.ret = Ret::Other;
                Ok(true)
            }),
            Val::Bool(e) => ev(move |cx| {
                e(cx)?;
                cx.ret = Ret::Other;
                Ok(true)
            }),
        }
    }

    /// As a dynamically tagged value (function calls and chains).
    fn into_tmp(self) -> Ev<Tmp> {
        match self {
            Val::Int(e) => ev(move |cx| e(cx).map(Tmp::I)),
            Val::Float(e) => ev(move |cx| e(cx).map(Tmp::F)),
            Val::Bool(e) => ev(move |cx| e(cx).map(Tmp::B)),
            Val::Str(e) => ev(move |cx| e(cx).map(Tmp::S)),
            Val::Unit(e) => ev(move |cx| e(cx).map(|_| Tmp::U)),
        }
    }

    /// Back from a tagged value whose type the compiler knows.
    fn from_tmp(e: Ev<Tmp>, ty: Ty) -> Val {
        fn internal(cx: &mut Cx<'_>) -> Halt {
            cx.fail(Fault::int(FaultKind::Internal, 0, 0))
        }
        match ty {
            Ty::Int => Val::Int(ev(move |cx| match e(cx)? {
                Tmp::I(v) => Ok(v),
                _ => Err(internal(cx)),
            })),
            Ty::Float => Val::Float(ev(move |cx| match e(cx)? {
                Tmp::F(v) => Ok(v),
                _ => Err(internal(cx)),
            })),
            Ty::Bool => Val::Bool(ev(move |cx| match e(cx)? {
                Tmp::B(v) => Ok(v),
                _ => Err(internal(cx)),
            })),
            Ty::Str => Val::Str(ev(move |cx| match e(cx)? {
                Tmp::S(v) => Ok(v),
                _ => Err(internal(cx)),
            })),
            Ty::Unit | Ty::Market => Val::Unit(ev(move |cx| e(cx).map(|_| ()))),
        }
    }

    /// `pre` statements, then this value.
    fn after(self, pre: Vec<St>) -> Val {
        if pre.is_empty() {
            return self;
        }
        fn seq<T: 'static>(pre: Vec<St>, e: Ev<T>) -> Ev<T> {
            ev(move |cx| {
                for s in &pre {
                    s(cx)?;
                }
                e(cx)
            })
        }
        match self {
            Val::Int(e) => Val::Int(seq(pre, e)),
            Val::Float(e) => Val::Float(seq(pre, e)),
            Val::Bool(e) => Val::Bool(seq(pre, e)),
            Val::Str(e) => Val::Str(seq(pre, e)),
            Val::Unit(e) => Val::Unit(seq(pre, e)),
        }
    }
}

fn select<T: 'static>(c: Ev<bool>, t: Ev<T>, e: Ev<T>) -> Ev<T> {
    ev(move |cx| if c(cx)? { t(cx) } else { e(cx) })
}

/// A dynamically tagged value, for function arguments and results.
#[derive(Debug, Clone, Copy)]
enum Tmp {
    I(i64),
    F(f64),
    B(bool),
    S(StrVal),
    U,
}

impl Tmp {
    /// A numeric argument as Rhai's mixed-type functions take it (`INT as f64`).
    fn f(self) -> f64 {
        match self {
            Tmp::F(v) => v,
            Tmp::I(v) => v as f64,
            _ => f64::NAN,
        }
    }
    fn i(self) -> i64 {
        match self {
            Tmp::I(v) => v,
            _ => 0,
        }
    }
}

/// The functions of Rhai's standard packages the fast path knows, each
/// resolved for the argument types Rhai would match it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MathFn {
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
}

/// `name(args)` with these types: the function Rhai calls, and its result type.
fn resolve(name: &str, tys: &[Ty]) -> Option<(MathFn, Ty)> {
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
        _ => return None,
    })
}

/// Float properties Rhai registers as getters too (`x.floor`).
const FLOAT_PROPERTIES: [&str; 9] =
    ["floor", "ceiling", "round", "int", "fraction", "is_nan", "is_finite", "is_infinite", "is_zero"];

/// One call of a [`MathFn`], with the same code as Rhai's package function.
fn apply(f: MathFn, a: Tmp, b: Tmp) -> Result<Tmp, Fault> {
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
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Arith {
    fn of(t: &Token) -> Option<Self> {
        Some(match t {
            Token::Plus => Arith::Add,
            Token::Minus => Arith::Sub,
            Token::Multiply => Arith::Mul,
            Token::Divide => Arith::Div,
            Token::Modulo => Arith::Rem,
            _ => return None,
        })
    }

    /// Rhai's checked `INT` arithmetic (`packages::arithmetic`).
    #[inline]
    fn int(self, x: i64, y: i64) -> Result<i64, Fault> {
        match self {
            Arith::Add => x.checked_add(y).ok_or(Fault::int(FaultKind::AddOverflow, x, y)),
            Arith::Sub => x.checked_sub(y).ok_or(Fault::int(FaultKind::SubOverflow, x, y)),
            Arith::Mul => x.checked_mul(y).ok_or(Fault::int(FaultKind::MulOverflow, x, y)),
            Arith::Div if y == 0 => Err(Fault::int(FaultKind::DivByZero, x, y)),
            Arith::Div => x.checked_div(y).ok_or(Fault::int(FaultKind::DivOverflow, x, y)),
            Arith::Rem => x.checked_rem(y).ok_or(Fault::int(FaultKind::Modulo, x, y)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn of(t: &Token) -> Option<Self> {
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

    fn ord<T: PartialOrd + ?Sized>(self, x: &T, y: &T) -> bool {
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
    fn float(self, x: f64, y: f64) -> bool {
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

/// A float getter of `m`, read as a field.
fn float_field(name: &str) -> Option<Ev<f64>> {
    macro_rules! by_name {
        ($name:ident ; $($f:ident),* ; $($s:ident),*) => {
            match $name {
                $( stringify!($f) => Some(ev(|cx| Ok(cx.m.$f))), )*
                _ => None,
            }
        };
    }
    market_fields!(by_name!(name))
}

/// A string getter of `m`, read as a field.
fn str_field(name: &str) -> Option<Ev<StrVal>> {
    macro_rules! by_name {
        ($name:ident ; $($f:ident),* ; $($s:ident),*) => {
            match $name {
                $( stringify!($s) => Some(ev(|cx| Ok(StrVal::Static(cx.m.$s)))), )*
                _ => None,
            }
        };
    }
    market_fields!(by_name!(name))
}

struct Local {
    name: ImmutableString,
    ty: Ty,
    slot: usize,
    constant: bool,
}

struct Compiler<'e> {
    engine: &'e Engine,
    /// Visible bindings, innermost last; the parameter `m` first.
    scope: Vec<Local>,
    /// Slots handed out per type: floats, ints, bools, strings.
    used: [usize; 4],
    lits: Vec<ImmutableString>,
    /// Functions the script defines: a call to any of them is refused
    /// (script functions take precedence over the built-in ones).
    script_fns: Vec<String>,
    /// > 0 inside an expression block, where only pure statements are accepted.
    pure: usize,
}

impl Compiler<'_> {
    fn lookup(&self, name: &str) -> Option<&Local> {
        self.scope.iter().rev().find(|l| l.name.as_str() == name)
    }

    fn alloc(&mut self, ty: Ty, pos: Position) -> R<usize> {
        let (k, cap) = match ty {
            Ty::Float => (0, FLOATS),
            Ty::Int => (1, INTS),
            Ty::Bool => (2, BOOLS),
            Ty::Str => (3, STRS),
            // `()` needs no storage: every read gives `()`.
            Ty::Unit => return Ok(0),
            Ty::Market => return refuse(pos, format!("a variable of type {}", ty.name())),
        };
        let slot = self.used[k];
        if slot >= cap {
            return refuse(pos, format!("more than {cap} {} variables", ty.name()));
        }
        self.used[k] += 1;
        Ok(slot)
    }

    /// A block in its own scope; with `tail`, its value is the function's return value.
    fn block(&mut self, stmts: &[Stmt], tail: bool) -> R<St> {
        let mark = self.scope.len();
        let r = self.block_inner(stmts, tail);
        self.scope.truncate(mark);
        r
    }

    fn block_inner(&mut self, stmts: &[Stmt], tail: bool) -> R<St> {
        if stmts.is_empty() {
            return Ok(if tail {
                ev(|cx| {
                    cx.ret = Ret::Unit;
                    Ok(true)
                })
            } else {
                ev(|_| Ok(false))
            });
        }
        let mut out = Vec::with_capacity(stmts.len());
        for (i, s) in stmts.iter().enumerate() {
            out.push(self.stmt(s, tail && i + 1 == stmts.len())?);
        }
        if out.len() == 1 {
            if let Some(one) = out.pop() {
                return Ok(one);
            }
        }
        Ok(ev(move |cx| {
            for s in &out {
                if s(cx)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }))
    }

    fn stmt(&mut self, s: &Stmt, tail: bool) -> R<St> {
        let plain = match s {
            Stmt::Noop(_) => ev(|_| Ok(false)),
            Stmt::Var(x, flags, pos) => self.let_(x, *flags, *pos)?,
            Stmt::Assignment(x) => self.assign(&x.0, &x.1)?,
            Stmt::If(fc, _) => return self.if_stmt(fc, tail),
            Stmt::Block(b) => return self.block(b.statements(), tail),
            Stmt::Expr(e) => return self.expr_stmt(e, tail),
            Stmt::FnCall(x, pos) => return self.call_stmt(x, *pos, tail),
            Stmt::Return(v, flags, pos) => return self.return_(v.as_deref(), *flags, *pos),
            Stmt::While(_, pos) | Stmt::Do(_, _, pos) | Stmt::For(_, pos) => return refuse(*pos, "loops"),
            Stmt::Switch(_, pos) => return refuse(*pos, "switch"),
            Stmt::TryCatch(_, pos) => return refuse(*pos, "try/catch"),
            Stmt::BreakLoop(_, _, pos) => return refuse(*pos, "break/continue"),
            other => return refuse(other.position(), "this statement"),
        };
        Ok(if tail {
            ev(move |cx| {
                plain(cx)?;
                cx.ret = Ret::Unit;
                Ok(true)
            })
        } else {
            plain
        })
    }

    fn let_(&mut self, x: &(Ident, Expr, Option<std::num::NonZeroUsize>), flags: ASTFlags, pos: Position) -> R<St> {
        let (ident, init, _) = x;
        if flags.contains(ASTFlags::EXPORTED) {
            return refuse(pos, "export");
        }
        // The initial value sees the bindings before this one (`let x = x + 1`).
        let v = self.expr(init)?;
        let ty = v.ty();
        let slot = self.alloc(ty, pos)?;
        self.scope.push(Local { name: ident.name.clone(), ty, slot, constant: flags.contains(ASTFlags::CONSTANT) });
        Ok(store(slot, v))
    }

    fn assign(&mut self, op: &OpAssignment, x: &BinaryExpr) -> R<St> {
        let pos = op.position();
        if self.pure > 0 {
            return refuse(pos, "an assignment inside an expression");
        }
        let Expr::Variable(var, _, vpos) = &x.lhs else {
            return refuse(x.lhs.start_position(), "assigning to anything but a local variable");
        };
        let Some(local) = self.lookup(&var.1) else {
            return refuse(*vpos, format!("assigning to the undefined variable {}", var.1));
        };
        let (ty, slot, constant) = (local.ty, local.slot, local.constant);
        if constant {
            return refuse(*vpos, format!("assigning to the constant {}", var.1));
        }
        let rhs = self.expr(&x.rhs)?;
        let Some((_, _, _, _, base, _)) = op.get_op_assignment_info() else {
            if rhs.ty() != ty {
                return refuse(
                    pos,
                    format!("{} changes type ({} to {}): variables keep one type", var.1, ty.name(), rhs.ty().name()),
                );
            }
            return Ok(store(slot, rhs));
        };
        let Some(op) = Arith::of(base) else {
            return refuse(pos, format!("the operator {}=", base.literal_syntax()));
        };
        // Rhai's built-in op-assignments: FLOAT op= FLOAT|INT, INT op= INT
        // (checked); anything else would change the variable's type.
        match (ty, rhs) {
            (Ty::Float, rhs @ (Val::Float(_) | Val::Int(_))) => {
                let Some(y) = rhs.into_float() else { return refuse(pos, "this operand") };
                let s = slot & (FLOATS - 1);
                Ok(ev(move |cx| {
                    let y = y(cx)?;
                    let x = cx.fr.f[s];
                    cx.fr.f[s] = float_op(op, x, y);
                    Ok(false)
                }))
            }
            (Ty::Int, Val::Int(y)) => {
                let s = slot & (INTS - 1);
                Ok(ev(move |cx| {
                    let y = y(cx)?;
                    let x = cx.fr.i[s];
                    match op.int(x, y) {
                        Ok(v) => {
                            cx.fr.i[s] = v;
                            Ok(false)
                        }
                        Err(f) => Err(cx.fail(f.at(pos))),
                    }
                }))
            }
            (ty, rhs) => refuse(pos, format!("{} {}= {}", ty.name(), base.literal_syntax(), rhs.ty().name())),
        }
    }

    fn if_stmt(&mut self, fc: &FlowControl, tail: bool) -> R<St> {
        let c = self.cond(&fc.expr)?;
        let t = self.block(fc.body.statements(), tail)?;
        let e = self.block(fc.branch.statements(), tail)?;
        Ok(select(c, t, e))
    }

    fn cond(&mut self, e: &Expr) -> R<Ev<bool>> {
        match self.expr(e)? {
            Val::Bool(c) => Ok(c),
            other => refuse(e.start_position(), format!("a condition of type {}", other.ty().name())),
        }
    }

    fn expr_stmt(&mut self, e: &Expr, tail: bool) -> R<St> {
        if tail {
            return self.ret_expr(e);
        }
        if let Expr::Map(_, pos) = e {
            return refuse(*pos, "a map that is not the return value");
        }
        Ok(self.expr(e)?.discard())
    }

    fn call_stmt(&mut self, x: &FnCallExpr, pos: Position, tail: bool) -> R<St> {
        let is_output = x.op_token.is_none()
            && matches!(x.name.as_str(), "bid" | "ask" | "pull")
            && !self.script_fns.iter().any(|f| f == x.name.as_str());
        let st = if is_output {
            self.output(x, pos)?
        } else {
            let v = self.call(x, pos)?;
            if tail {
                return Ok(v.returned());
            }
            v.discard()
        };
        Ok(if tail {
            ev(move |cx| {
                st(cx)?;
                cx.ret = Ret::Unit;
                Ok(true)
            })
        } else {
            st
        })
    }

    /// `bid(price, size)`, `ask(price, size)`, `pull()`.
    fn output(&mut self, x: &FnCallExpr, pos: Position) -> R<St> {
        if self.pure > 0 {
            return refuse(pos, format!("{}() inside an expression", x.name));
        }
        if x.capture_parent_scope {
            return refuse(pos, "a call with !");
        }
        if x.name.as_str() == "pull" {
            if !x.args.is_empty() {
                return refuse(pos, "pull() takes no arguments");
            }
            return Ok(ev(|cx| {
                cx.output().pull = true;
                Ok(false)
            }));
        }
        let [price, size] = x.args.as_slice() else {
            return refuse(pos, format!("{}() takes a price and a size", x.name));
        };
        // Registered as (f64, f64): Rhai finds no function for an INT argument.
        let (Val::Float(price), Val::Float(size)) = (self.expr(price)?, self.expr(size)?) else {
            return refuse(pos, format!("{}() with an argument that is not a FLOAT", x.name));
        };
        Ok(if x.name.as_str() == "bid" {
            ev(move |cx| {
                let (p, s) = (price(cx)?, size(cx)?);
                cx.output().bid = Some(SideIntent { price: p, size: s });
                Ok(false)
            })
        } else {
            ev(move |cx| {
                let (p, s) = (price(cx)?, size(cx)?);
                cx.output().ask = Some(SideIntent { price: p, size: s });
                Ok(false)
            })
        })
    }

    fn return_(&mut self, v: Option<&Expr>, flags: ASTFlags, pos: Position) -> R<St> {
        if flags.contains(ASTFlags::BREAK) {
            return refuse(pos, "throw");
        }
        if self.pure > 0 {
            return refuse(pos, "return inside an expression");
        }
        match v {
            None => Ok(ev(|cx| {
                cx.ret = Ret::Unit;
                Ok(true)
            })),
            Some(e) => self.ret_expr(e),
        }
    }

    /// An expression that becomes the return value.
    fn ret_expr(&mut self, e: &Expr) -> R<St> {
        match e {
            Expr::Map(m, pos) => self.ret_map(&m.0, *pos),
            Expr::DynamicConstant(d, pos) if d.is_map() => {
                let Some(map) = d.read_lock::<rhai::Map>() else { return refuse(*pos, "this constant") };
                if self.engine.max_map_size() != 0 && map.len() > self.engine.max_map_size() {
                    return refuse(*pos, "a map over max_map_size");
                }
                let mut out = [None; 6];
                for (k, v) in map.iter() {
                    if v.is_string() || v.is_map() || v.is_array() || v.is_blob() {
                        return refuse(*pos, "a map value that is a string, array or map");
                    }
                    if let Some(i) = KEYS.iter().position(|key| *key == k.as_str()) {
                        out[i] =
                            Some(v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as f64)).unwrap_or(f64::NAN));
                    }
                }
                Ok(ev(move |cx| {
                    cx.ret = Ret::Map(out);
                    Ok(true)
                }))
            }
            e => Ok(self.expr(e)?.returned()),
        }
    }

    fn ret_map(&mut self, entries: &[(Ident, Expr)], pos: Position) -> R<St> {
        if self.engine.max_map_size() != 0 && entries.len() > self.engine.max_map_size() {
            return refuse(pos, "a map over max_map_size");
        }
        // Every value is evaluated in order (for its faults); the documented
        // keys are kept as `decision_from` reads them (a number, or NaN).
        let mut vals: Vec<(Option<usize>, Ev<f64>)> = Vec::with_capacity(entries.len());
        for (key, e) in entries {
            let v = match self.expr(e)? {
                Val::Float(v) => v,
                Val::Int(v) => ev(move |cx| Ok(v(cx)? as f64)),
                Val::Bool(v) => ev(move |cx| v(cx).map(|_| f64::NAN)),
                Val::Unit(v) => ev(move |cx| v(cx).map(|_| f64::NAN)),
                Val::Str(_) => return refuse(e.start_position(), "a map value that is a string"),
            };
            vals.push((KEYS.iter().position(|k| *k == key.name.as_str()), v));
        }
        Ok(ev(move |cx| {
            let mut out = [None; 6];
            for (key, v) in &vals {
                let x = v(cx)?;
                if let Some(slot) = key.and_then(|k| out.get_mut(k)) {
                    *slot = Some(x);
                }
            }
            cx.ret = Ret::Map(out);
            Ok(true)
        }))
    }

    fn expr(&mut self, e: &Expr) -> R<Val> {
        Ok(match e {
            Expr::IntegerConstant(v, _) => {
                let v = *v;
                Val::Int(ev(move |_| Ok(v)))
            }
            Expr::FloatConstant(v, _) => {
                let v: f64 = **v;
                Val::Float(ev(move |_| Ok(v)))
            }
            Expr::BoolConstant(v, _) => {
                let v = *v;
                Val::Bool(ev(move |_| Ok(v)))
            }
            Expr::StringConstant(s, _) => self.literal(s.clone()),
            Expr::Unit(_) => Val::Unit(ev(|_| Ok(()))),
            Expr::DynamicConstant(d, pos) => self.constant(d, *pos)?,
            Expr::Variable(x, _, pos) => self.var(&x.1, *pos)?,
            Expr::Dot(x, flags, pos) => self.chain(x, *flags, *pos)?,
            Expr::FnCall(x, pos) => self.call(x, *pos)?,
            Expr::And(list, _) | Expr::Or(list, _) => {
                let mut ops = Vec::with_capacity(list.len());
                for e in list.iter() {
                    ops.push(self.cond(e)?);
                }
                if matches!(e, Expr::And(..)) {
                    Val::Bool(ev(move |cx| {
                        for o in &ops {
                            if !o(cx)? {
                                return Ok(false);
                            }
                        }
                        Ok(true)
                    }))
                } else {
                    Val::Bool(ev(move |cx| {
                        for o in &ops {
                            if o(cx)? {
                                return Ok(true);
                            }
                        }
                        Ok(false)
                    }))
                }
            }
            Expr::Stmt(b) => self.value_block(b.statements())?,
            Expr::Map(_, pos) => return refuse(*pos, "a map that is not the return value"),
            Expr::Array(_, pos) => return refuse(*pos, "arrays"),
            Expr::Index(_, _, pos) => return refuse(*pos, "indexing"),
            Expr::InterpolatedString(_, pos) => return refuse(*pos, "string interpolation"),
            Expr::CharConstant(_, pos) => return refuse(*pos, "characters"),
            Expr::Coalesce(_, pos) => return refuse(*pos, "??"),
            Expr::MethodCall(_, pos) | Expr::Property(_, pos) => return refuse(*pos, "this method call"),
            other => return refuse(other.start_position(), "this expression"),
        })
    }

    fn literal(&mut self, s: ImmutableString) -> Val {
        let i = match self.lits.iter().position(|l| *l == s) {
            Some(i) => i,
            None => {
                self.lits.push(s);
                self.lits.len() - 1
            }
        } as u32;
        Val::Str(ev(move |_| Ok(StrVal::Lit(i))))
    }

    /// A constant the optimizer folded into a `Dynamic`.
    fn constant(&mut self, d: &Dynamic, pos: Position) -> R<Val> {
        if let Ok(v) = d.as_int() {
            return Ok(Val::Int(ev(move |_| Ok(v))));
        }
        if let Ok(v) = d.as_float() {
            return Ok(Val::Float(ev(move |_| Ok(v))));
        }
        if let Ok(v) = d.as_bool() {
            return Ok(Val::Bool(ev(move |_| Ok(v))));
        }
        if d.is_unit() {
            return Ok(Val::Unit(ev(|_| Ok(()))));
        }
        if let Some(s) = d.read_lock::<ImmutableString>() {
            return Ok(self.literal(s.clone()));
        }
        refuse(pos, format!("a constant of type {}", d.type_name()))
    }

    fn var(&mut self, name: &str, pos: Position) -> R<Val> {
        let Some(l) = self.lookup(name) else {
            return refuse(pos, format!("the undefined variable {name}"));
        };
        let slot = l.slot;
        Ok(match l.ty {
            Ty::Float => {
                let s = slot & (FLOATS - 1);
                Val::Float(ev(move |cx| Ok(cx.fr.f[s])))
            }
            Ty::Int => {
                let s = slot & (INTS - 1);
                Val::Int(ev(move |cx| Ok(cx.fr.i[s])))
            }
            Ty::Bool => {
                let s = slot & (BOOLS - 1);
                Val::Bool(ev(move |cx| Ok(cx.fr.b[s])))
            }
            Ty::Str => {
                let s = slot & (STRS - 1);
                Val::Str(ev(move |cx| Ok(cx.fr.s[s])))
            }
            Ty::Unit => Val::Unit(ev(|_| Ok(()))),
            Ty::Market => return refuse(pos, format!("{name} used as a value")),
        })
    }

    /// `lhs.step.step...`: `m.<getter>`, then properties and method calls.
    fn chain(&mut self, x: &BinaryExpr, flags: ASTFlags, pos: Position) -> R<Val> {
        if !flags.is_empty() {
            return refuse(pos, "?. chains");
        }
        let mut steps: Vec<&Expr> = Vec::new();
        let mut cur = &x.rhs;
        loop {
            match cur {
                Expr::Dot(inner, f, p) => {
                    if !f.is_empty() {
                        return refuse(*p, "?. chains");
                    }
                    steps.push(&inner.lhs);
                    cur = &inner.rhs;
                }
                other => {
                    steps.push(other);
                    break;
                }
            }
        }
        let market = matches!(&x.lhs, Expr::Variable(v, ..) if self.lookup(&v.1).is_some_and(|l| l.ty == Ty::Market));
        let (base, rest) = if market {
            let Some((Expr::Property(p, ppos), rest)) = steps.split_first() else {
                return refuse(pos, "m used other than as m.<getter>");
            };
            let name = p.2.as_str();
            let base = if let Some(f) = float_field(name) {
                Val::Float(f)
            } else if let Some(s) = str_field(name) {
                Val::Str(s)
            } else {
                return refuse(*ppos, format!("m.{name} (no such getter)"));
            };
            (base, rest)
        } else {
            (self.expr(&x.lhs)?, &steps[..])
        };
        if rest.is_empty() {
            return Ok(base);
        }
        // Method-call arguments are evaluated before the receiver (Rhai's
        // order), then the steps apply left to right.
        let mut ty = base.ty();
        let mut args: Vec<Ev<Tmp>> = Vec::new();
        let mut plan: Vec<(MathFn, bool, Position)> = Vec::new();
        for step in rest {
            match step {
                Expr::Property(p, ppos) => {
                    let name = p.2.as_str();
                    let found = if FLOAT_PROPERTIES.contains(&name) { resolve(name, &[ty]) } else { None };
                    let Some((f, out)) = found else {
                        return refuse(*ppos, format!("the property {name} of a {}", ty.name()));
                    };
                    plan.push((f, false, *ppos));
                    ty = out;
                }
                Expr::MethodCall(fx, mpos) => {
                    if self.script_fns.iter().any(|f| f == fx.name.as_str()) {
                        return refuse(*mpos, format!("{}(), a function the script defines", fx.name));
                    }
                    let mut tys = vec![ty];
                    for a in fx.args.iter() {
                        let v = self.expr(a)?;
                        tys.push(v.ty());
                        args.push(v.into_tmp());
                    }
                    let Some((f, out)) = resolve(fx.name.as_str(), &tys) else {
                        return refuse(*mpos, format!("the method {}({})", fx.name, type_list(&tys)));
                    };
                    if fx.args.len() > 1 {
                        return refuse(*mpos, "a method with more than one argument");
                    }
                    plan.push((f, fx.args.len() == 1, *mpos));
                    ty = out;
                }
                other => return refuse(other.start_position(), "this chain"),
            }
        }
        if args.len() > CHAIN_ARGS {
            return refuse(pos, "a chain with too many arguments");
        }
        let base = base.into_tmp();
        let chain = ev(move |cx| {
            let mut held = [Tmp::U; CHAIN_ARGS];
            for (h, a) in held.iter_mut().zip(&args) {
                *h = a(cx)?;
            }
            let mut v = base(cx)?;
            let mut next = held.iter();
            for &(f, has_arg, p) in &plan {
                let arg = if has_arg { next.next().copied().unwrap_or(Tmp::U) } else { Tmp::U };
                v = apply(f, v, arg).map_err(|fault| cx.fail(fault.at(p)))?;
            }
            Ok(v)
        });
        Ok(Val::from_tmp(chain, ty))
    }

    /// An operator or a named function call.
    fn call(&mut self, x: &FnCallExpr, pos: Position) -> R<Val> {
        if x.capture_parent_scope {
            return refuse(pos, "a call with !");
        }
        if let Some(tok) = &x.op_token {
            return self.operator(tok, x, pos);
        }
        let name = x.name.as_str();
        if self.script_fns.iter().any(|f| f == name) {
            return refuse(pos, format!("{name}(), a function the script defines"));
        }
        match name {
            "param" => self.param(x, pos),
            "bid" | "ask" | "pull" => refuse(pos, format!("{name}() inside an expression")),
            _ => {
                let mut tys = Vec::with_capacity(x.args.len());
                let mut args = Vec::with_capacity(x.args.len());
                for a in x.args.iter() {
                    let v = self.expr(a)?;
                    tys.push(v.ty());
                    args.push(v.into_tmp());
                }
                let Some((f, out)) = resolve(name, &tys) else {
                    return refuse(pos, format!("the function {name}({})", type_list(&tys)));
                };
                let call = match (args.pop(), args.pop()) {
                    (None, _) => ev(move |cx| apply(f, Tmp::U, Tmp::U).map_err(|fault| cx.fail(fault.at(pos)))),
                    (Some(a), None) => ev(move |cx| {
                        let a = a(cx)?;
                        apply(f, a, Tmp::U).map_err(|fault| cx.fail(fault.at(pos)))
                    }),
                    (Some(b), Some(a)) => ev(move |cx| {
                        let a = a(cx)?;
                        let b = b(cx)?;
                        apply(f, a, b).map_err(|fault| cx.fail(fault.at(pos)))
                    }),
                };
                Ok(Val::from_tmp(call, out))
            }
        }
    }

    /// `param("name", default)`: the configured value, resolved now through
    /// the engine's own `param` function (the parameters are fixed for the
    /// engine's life).
    fn param(&mut self, x: &FnCallExpr, pos: Position) -> R<Val> {
        let [Expr::StringConstant(name, _), default] = x.args.as_slice() else {
            return refuse(pos, "param() without a literal name and a number default");
        };
        let default = match default {
            Expr::FloatConstant(v, _) => **v,
            Expr::DynamicConstant(d, _) if d.is_float() => d.as_float().unwrap_or(f64::NAN),
            // `param("x", 1)`: the interpreter's INT overload returns it as FLOAT too.
            Expr::IntegerConstant(v, _) => *v as f64,
            _ => return refuse(pos, "param() with a default that is not a number literal"),
        };
        let mut scope = Scope::new();
        scope.push("name", name.clone());
        scope.push("value_if_unset", default);
        match self.engine.eval_expression_with_scope::<f64>(&mut scope, "param(name, value_if_unset)") {
            Ok(v) => Ok(Val::Float(ev(move |_| Ok(v)))),
            Err(e) => refuse(pos, format!("param() could not be resolved: {e}")),
        }
    }

    fn operator(&mut self, tok: &Token, x: &FnCallExpr, pos: Position) -> R<Val> {
        match x.args.as_slice() {
            [a] => {
                let v = self.expr(a)?;
                Ok(match (tok, v) {
                    (Token::Minus | Token::UnaryMinus, Val::Int(e)) => Val::Int(ev(move |cx| {
                        let v = e(cx)?;
                        v.checked_neg().ok_or_else(|| cx.fail(Fault::int(FaultKind::Negate, v, 0).at(pos)))
                    })),
                    (Token::Minus | Token::UnaryMinus, Val::Float(e)) => Val::Float(ev(move |cx| Ok(-e(cx)?))),
                    (Token::Plus | Token::UnaryPlus, v @ (Val::Int(_) | Val::Float(_))) => v,
                    (Token::Bang, Val::Bool(e)) => Val::Bool(ev(move |cx| Ok(!e(cx)?))),
                    (tok, v) => return refuse(pos, format!("{}{}", tok.literal_syntax(), v.ty().name())),
                })
            }
            [a, b] => {
                let (l, r) = (self.expr(a)?, self.expr(b)?);
                if let Some(op) = Arith::of(tok) {
                    return arith(op, l, r, pos);
                }
                if let Some(op) = Cmp::of(tok) {
                    return compare(op, l, r, pos);
                }
                refuse(pos, format!("the operator {}", tok.literal_syntax()))
            }
            _ => refuse(pos, "this operator"),
        }
    }

    /// A block used as a value (`if` expressions): pure statements, then the
    /// value of the last one.
    fn value_block(&mut self, stmts: &[Stmt]) -> R<Val> {
        let mark = self.scope.len();
        self.pure += 1;
        let r = self.value_block_inner(stmts);
        self.pure -= 1;
        self.scope.truncate(mark);
        r
    }

    fn value_block_inner(&mut self, stmts: &[Stmt]) -> R<Val> {
        let Some((last, init)) = stmts.split_last() else {
            return Ok(Val::Unit(ev(|_| Ok(()))));
        };
        let mut pre = Vec::with_capacity(init.len());
        for s in init {
            pre.push(self.stmt(s, false)?);
        }
        let v = match last {
            Stmt::Expr(e) => self.expr(e)?,
            Stmt::FnCall(x, pos) => self.call(x, *pos)?,
            Stmt::Block(b) => self.value_block(b.statements())?,
            Stmt::If(fc, pos) => {
                let c = self.cond(&fc.expr)?;
                let t = self.value_block(fc.body.statements())?;
                let e = self.value_block(fc.branch.statements())?;
                match (t, e) {
                    (Val::Int(t), Val::Int(e)) => Val::Int(select(c, t, e)),
                    (Val::Float(t), Val::Float(e)) => Val::Float(select(c, t, e)),
                    (Val::Bool(t), Val::Bool(e)) => Val::Bool(select(c, t, e)),
                    (Val::Str(t), Val::Str(e)) => Val::Str(select(c, t, e)),
                    (Val::Unit(t), Val::Unit(e)) => Val::Unit(select(c, t, e)),
                    (t, e) => {
                        return refuse(
                            *pos,
                            format!(
                                "an if whose branches have different types ({} and {})",
                                t.ty().name(),
                                e.ty().name()
                            ),
                        )
                    }
                }
            }
            other => {
                let st = self.stmt(other, false)?;
                Val::Unit(ev(move |cx| st(cx).map(|_| ())))
            }
        };
        Ok(v.after(pre))
    }
}

fn type_list(tys: &[Ty]) -> String {
    tys.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
}

/// Writes a value to its slot.
fn store(slot: usize, v: Val) -> St {
    match v {
        Val::Float(e) => {
            let s = slot & (FLOATS - 1);
            ev(move |cx| {
                let v = e(cx)?;
                cx.fr.f[s] = v;
                Ok(false)
            })
        }
        Val::Int(e) => {
            let s = slot & (INTS - 1);
            ev(move |cx| {
                let v = e(cx)?;
                cx.fr.i[s] = v;
                Ok(false)
            })
        }
        Val::Bool(e) => {
            let s = slot & (BOOLS - 1);
            ev(move |cx| {
                let v = e(cx)?;
                cx.fr.b[s] = v;
                Ok(false)
            })
        }
        Val::Str(e) => {
            let s = slot & (STRS - 1);
            ev(move |cx| {
                let v = e(cx)?;
                cx.fr.s[s] = v;
                Ok(false)
            })
        }
        // `()` is not stored (see `alloc`).
        Val::Unit(e) => ev(move |cx| e(cx).map(|_| false)),
    }
}

#[inline]
fn float_op(op: Arith, x: f64, y: f64) -> f64 {
    match op {
        Arith::Add => x + y,
        Arith::Sub => x - y,
        Arith::Mul => x * y,
        Arith::Div => x / y,
        Arith::Rem => x % y,
    }
}

/// `l op r` with Rhai's built-in operator for these types.
fn arith(op: Arith, l: Val, r: Val, pos: Position) -> R<Val> {
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
            }))
        }
        (l, r) => refuse(pos, format!("{} {op:?} {}", l.ty().name(), r.ty().name())),
    }
}

/// `l op r` for comparisons, with Rhai's built-in rules for these types.
fn compare(op: Cmp, l: Val, r: Val, pos: Position) -> R<Val> {
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
