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
//! writing the [`Intent`] directly. No Rhai runtime, no `Dynamic`, no
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
//! * Script functions (`calls.rs`) are inlined at each call site, typed by
//!   that call's arguments, in a scope of their own (Rhai functions see only
//!   their parameters); recursion, `!` calls, method-style calls and calls
//!   deeper than `max_call_levels` are refused (the interpreter raises
//!   Rhai's errors there). Loops (`loops.rs`): `for` over `INT` ranges,
//!   `while`, `loop`, `break`, `continue`.
//! * The operation cap: straight-line code costs Rhai a few operations per
//!   AST node at most (one per statement or expression evaluated, one more
//!   per variable receiver, property step or native call). [`compile`]
//!   refuses a script whose body's bound ([`OPS_PER_NODE`] x nodes +
//!   [`OPS_BASE`]) exceeds the engine's `max_operations`. What repeats is
//!   charged as it runs (`Cx::charge`: [`OPS_PER_NODE_RUN`] x nodes per
//!   loop iteration and per function call); a call whose bound passes the
//!   cap is handed to the interpreter ([`Quoted::Interpret`]), which counts
//!   exactly and raises "too many operations" where Rhai does. The tests
//!   check the bound against Rhai's own count on every call they make.
//! * State (`state.rs`): `state.x` FLOAT reads and writes in `quote!(m)`;
//!   a value of another type hands the call over, with its writes undone.
//!   Top-level `const`s of literals are read; top-level `let`s (state kept
//!   between calls) and top-level code that is not a literal are refused.
//!   Call-depth, variable-count, string and map caps are checked too.

use rhai::{
    ASTFlags, ASTNode, BinaryExpr, Dynamic, Engine, Expr, FlowControl, FnAccess, FnCallExpr, Ident, ImmutableString,
    OpAssignment, Position, Scope, Stmt, Token, AST,
};

use crate::script::api::{market_fields, MarketState};
use crate::script::output::Intent;

pub use fault::Fault;
use fault::FaultKind;

/// Bound on the Rhai operations one AST node of the accepted subset can
/// count (a statement or expression counts one, a call or a property read
/// a few more: see the module docs). A test checks it against Rhai's own
/// count.
pub const OPS_PER_NODE: u64 = 8;
/// Operations outside the body: the `quote(m)` call itself.
pub const OPS_BASE: u64 = 64;
/// Bound per AST node for what runs repeatedly (a loop body per
/// iteration, a script function's body per call), charged as it runs.
/// Rhai counts one operation per statement or expression evaluated, one
/// more per native call or property step: at most about 2 a node. Tighter
/// than [`OPS_PER_NODE`] so that loops get close to the cap before the
/// interpreter takes over; the tests check it against Rhai's own count on
/// every call they make.
pub const OPS_PER_NODE_RUN: u64 = 4;
/// Operations one loop iteration counts besides its body's nodes.
pub const OPS_ITER: u64 = 4;
/// Operations one call of a script function counts besides its body's nodes.
pub const OPS_CALL: u64 = 8;

// Frame capacities, powers of two: a slot index is masked with `CAP - 1`,
// which is the identity for every slot [`compile`] hands out (it refuses
// more) and lets the compiler drop the bounds check without any `unsafe`.
const FLOATS: usize = 256;
const INTS: usize = 64;
const BOOLS: usize = 64;
const STRS: usize = 32;
/// Method-call arguments held while a chain evaluates them first; also the
/// most parameters of a script function the fast path inlines.
const CHAIN_ARGS: usize = 8;

/// The locals of one call, by type. Reused across calls (the caller owns
/// one, allocated once); every slot is written by its `let` before any read,
/// so no call sees a previous call's values.
pub struct Frame {
    f: [f64; FLOATS],
    i: [i64; INTS],
    b: [bool; BOOLS],
    s: [StrVal; STRS],
    /// `state` values kept between calls ([`state::Mirror`]).
    mirror: state::Mirror,
    /// The last call's `state` writes ([`state::Writes`]), reset per call.
    writes: state::Writes,
    /// What the last call asked for, when it was [`Outcome::Quote`]: kept
    /// here and read in place, not returned by value (an intent is ~450
    /// bytes; its copies on the way out were a fifth of a call).
    out: Intent,
}

impl Frame {
    /// Drops the `state` values kept between calls unflushed (the state
    /// they mirror was reset or reloaded).
    pub fn forget_state(&mut self) {
        self.mirror = state::Mirror::EMPTY;
    }

    /// A frame on the heap (it is ~3.7 KB; the strategy keeps one).
    pub fn boxed() -> Box<Self> {
        Box::new(Self {
            f: [0.0; FLOATS],
            i: [0; INTS],
            b: [false; BOOLS],
            s: [StrVal::Static(""); STRS],
            mirror: state::Mirror::EMPTY,
            writes: state::Writes::NONE,
            out: Intent::default(),
        })
    }

    /// What the last call that returned [`Outcome::Quote`] asked for.
    pub fn intent(&self) -> &Intent {
        &self.out
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

/// The map keys `intent_from` reads, in the order of [`Ret::Map`].
const KEYS: [&str; 6] = ["bid", "ask", "bid_size", "ask_size", "bid_spread", "ask_spread"];

/// A `break` or `continue` on its way to its loop (statements stop with
/// `Ok(true)`, as for a return; the loop reads which it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Jump {
    None,
    Break,
    Continue,
}

/// Evaluation state of one call.
struct Cx<'a> {
    m: &'a MarketState,
    fr: &'a mut Frame,
    lits: &'a [ImmutableString],
    /// `bid`/`ask`/`pull` set the frame's intent this call (it wins over
    /// the return value, as in the interpreter).
    out: bool,
    ret: Ret,
    fault: Option<Fault>,
    /// Upper bound on the operations Rhai would have counted so far.
    ops: u64,
    /// The engine's cap (0: none).
    max_ops: u64,
    /// Set when the bound passed the cap: the interpreter takes the call.
    bail: bool,
    jump: Jump,
    /// A script function's return value, read by its call site at once.
    rv: Tmp,
    /// The strategy's `state` map (read only during the call) and the
    /// keys the script uses (the call's writes are in the frame, applied
    /// at its end).
    state: Option<&'a rhai::Map>,
    keys: &'a [ImmutableString],
    /// Reads go through the frame's [`state::Mirror`] (the strategy's
    /// calls), or straight to the map ([`FastQuote::run_with_state`]).
    mirrored: bool,
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

    fn output(&mut self) -> &mut Intent {
        if !self.out {
            self.out = true;
            self.fr.out = Intent::default();
        }
        &mut self.fr.out
    }

    /// Adds `k` to the operation bound; past the cap the call is handed to
    /// the interpreter, which counts exactly and raises the error itself.
    #[inline]
    fn charge(&mut self, k: u64) -> Result<(), Halt> {
        self.ops = self.ops.saturating_add(k);
        if self.max_ops != 0 && self.ops > self.max_ops {
            return Err(self.give_up());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn give_up(&mut self) -> Halt {
        self.bail = true;
        Halt
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

/// How one call ended, its quote (if any) left in the frame: a tag two
/// registers wide with the fault, for the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// [`Frame::intent`] holds what the call asked for.
    Quote,
    /// As [`Quoted::NotAQuote`].
    NotAQuote,
    /// As [`Quoted::Interpret`].
    Interpret,
}

impl Outcome {
    /// With the quote copied out of `frame`.
    pub fn quoted(self, frame: &Frame) -> Quoted {
        match self {
            Outcome::Quote => Quoted::Quote(frame.out),
            Outcome::NotAQuote => Quoted::NotAQuote,
            Outcome::Interpret => Quoted::Interpret,
        }
    }
}

/// What one call asked for, before [`crate::script::check`] and the
/// strategy's bookkeeping (copied out of the frame: tests and checks).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quoted {
    Quote(Intent),
    /// A return value that is not a quote (not a map, `"pull"` or `()`):
    /// the strategy counts it and pulls, as for the interpreter.
    NotAQuote,
    /// The call came near the operation cap (loops, calls): the interpreter
    /// runs it instead, so the cap triggers exactly where Rhai counts it.
    /// Nothing of the compiled call is kept (it has no effect outside).
    Interpret,
}

/// `fn quote(m)` compiled to closures.
pub struct FastQuote {
    body: St,
    lits: Vec<ImmutableString>,
    nodes: usize,
    /// The operation bound of the body without loops and calls repeated.
    base_ops: u64,
    max_ops: u64,
    /// `state.<key>` names the script uses (empty: it does not use `state`).
    state_keys: Vec<ImmutableString>,
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

    /// One call, its quote copied out of the frame (tests and the
    /// check against the interpreter; the strategy reads it in place with
    /// [`FastQuote::run_mirrored`] / [`FastQuote::run_in_place`]).
    /// Allocates nothing, takes no lock, never panics: every error Rhai
    /// would raise comes back as a [`Fault`].
    #[inline]
    pub fn run(&self, m: &MarketState, frame: &mut Frame) -> Result<Quoted, Fault> {
        self.run_counted(m, frame).0
    }

    /// [`FastQuote::run`], with the bound on the operations Rhai would have
    /// counted for the call (tests compare it with Rhai's own count).
    pub fn run_counted(&self, m: &MarketState, frame: &mut Frame) -> (Result<Quoted, Fault>, u64) {
        let (r, ops) = self.run_in(m, frame, None);
        (r.map(|o| o.quoted(frame)), ops)
    }

    /// One call without the `state` map, its quote left in
    /// [`Frame::intent`] (the strategy's call).
    #[inline]
    pub fn run_in_place(&self, m: &MarketState, frame: &mut Frame) -> Result<Outcome, Fault> {
        self.run_in(m, frame, None).0
    }

    /// Whether the script reads or writes the persistent `state` map (then
    /// run it with [`FastQuote::run_with_state`]; without the map, a call
    /// touching it is handed to the interpreter).
    pub fn uses_state(&self) -> bool {
        !self.state_keys.is_empty()
    }

    /// One call with the strategy's `state` map: its writes are applied
    /// unless the call is handed to the interpreter.
    #[inline]
    pub fn run_with_state(
        &self,
        m: &MarketState,
        frame: &mut Frame,
        state: Option<&mut rhai::Map>,
    ) -> Result<Quoted, Fault> {
        self.run_in(m, frame, state).0.map(|o| o.quoted(frame))
    }

    /// [`FastQuote::run_with_state`] keeping `state` values in the frame
    /// between calls ([`state::Mirror`]): valid while `epoch` stays the same;
    /// whoever changes the epoch calls [`FastQuote::flush_state`] first.
    /// The quote is left in [`Frame::intent`].
    #[inline]
    pub fn run_mirrored(
        &self,
        m: &MarketState,
        frame: &mut Frame,
        map: Option<&mut rhai::Map>,
        epoch: u64,
    ) -> Result<Outcome, Fault> {
        frame.mirror.validate(epoch, self.owner());
        let (r, _, keep) = self.eval(m, frame, map.as_deref(), true);
        if keep {
            frame.mirror.commit(&frame.writes);
        }
        r
    }

    /// Writes the `state` values kept in `frame` by [`FastQuote::run_mirrored`]
    /// into `map` (before anything else reads or changes it).
    pub fn flush_state(&self, frame: &mut Frame, map: &mut rhai::Map) {
        frame.mirror.flush(map, &self.state_keys, self.owner());
    }

    /// `map` as it would be after [`FastQuote::flush_state`] (a copy).
    pub fn merged_state(&self, frame: &Frame, map: &rhai::Map) -> rhai::Map {
        frame.mirror.merged(map, &self.state_keys, self.owner())
    }

    /// This fast form's identity, for the mirror's key indices.
    fn owner(&self) -> usize {
        self as *const Self as usize
    }

    #[inline]
    fn run_in(&self, m: &MarketState, frame: &mut Frame, map: Option<&mut rhai::Map>) -> (Result<Outcome, Fault>, u64) {
        let (r, ops, keep) = self.eval(m, frame, map.as_deref(), false);
        if let (Some(map), true) = (map, keep) {
            state::commit(map, &self.state_keys, &frame.writes);
        }
        (r, ops)
    }

    /// Runs the body; whether its writes (in the frame) are to be applied
    /// (not when handed over).
    #[inline]
    fn eval(
        &self,
        m: &MarketState,
        frame: &mut Frame,
        map: Option<&rhai::Map>,
        mirrored: bool,
    ) -> (Result<Outcome, Fault>, u64, bool) {
        frame.writes.clear();
        let mut cx = Cx {
            m,
            fr: frame,
            lits: &self.lits,
            out: false,
            ret: Ret::Unit,
            fault: None,
            ops: self.base_ops,
            max_ops: self.max_ops,
            bail: false,
            jump: Jump::None,
            rv: Tmp::U,
            state: map,
            keys: &self.state_keys,
            mirrored,
        };
        if (self.body)(&mut cx).is_err() {
            if cx.bail {
                return (Ok(Outcome::Interpret), cx.ops, false);
            }
            let fault = cx.fault.unwrap_or(Fault::int(FaultKind::Internal, 0, 0));
            return (Err(fault), cx.ops, true);
        }
        let ops = cx.ops;
        (Ok(Self::quoted(&mut cx, m)), ops, true)
    }

    /// Mirrors ScriptStrategy: quotes set with bid()/ask()/pull() win,
    /// then the return value as `intent_from` reads it (into the frame).
    fn quoted(cx: &mut Cx<'_>, m: &MarketState) -> Outcome {
        if cx.out {
            return Outcome::Quote;
        }
        match cx.ret {
            Ret::Unit => cx.fr.out = Intent::pull(),
            Ret::Str(s) if cx.text(s) == "pull" => cx.fr.out = Intent::pull(),
            Ret::Str(_) | Ret::Other => return Outcome::NotAQuote,
            Ret::Map([bid, ask, bid_size, ask_size, bid_spread, ask_spread]) => {
                let default_size = m.min_order_size;
                let i = cx.output();
                if let Some(p) = bid.or_else(|| bid_spread.map(|d| m.mid - d)) {
                    i.bid(p, bid_size.unwrap_or(default_size));
                }
                if let Some(p) = ask.or_else(|| ask_spread.map(|d| m.mid + d)) {
                    i.ask(p, ask_size.unwrap_or(default_size));
                }
            }
        }
        Outcome::Quote
    }
}

/// A script function's body: its statements and size (what its operation
/// bound per call is computed from).
pub(super) struct FnBody {
    pub(super) name: ImmutableString,
    pub(super) params: Vec<ImmutableString>,
    pub(super) body: Vec<Stmt>,
    pub(super) nodes: usize,
    pub(super) pos: Position,
    /// Why it cannot be inlined whatever the call (checked at a call).
    pub(super) refused: Option<&'static str>,
}

/// The statements of a script function and its node count. A walk is the
/// one public way to reach them (the body's container type is not
/// exported), over an AST holding just this function.
/// (`clone_functions_only_filtered` would not do: Rhai 1.27 copies every
/// function into an empty module unfiltered.)
fn body_of(def: &rhai::Shared<rhai::ScriptFuncDef>) -> FnBody {
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
    let refused = if def.this_type.is_some() { Some("a method-style function (fn T.name)") } else { None };
    FnBody {
        name: def.name.clone(),
        params: def.params.iter().cloned().collect(),
        body,
        nodes,
        pos: def.body.start_position(),
        refused,
    }
}

/// Nodes of a list of statements (an operation bound per run of them).
fn nodes_of(stmts: &[Stmt]) -> usize {
    let mut n = 0usize;
    for s in stmts {
        s.walk(&mut Vec::new(), &mut |_: &[ASTNode]| {
            n += 1;
            true
        });
    }
    n
}

/// Nodes of an expression.
fn expr_nodes(e: &Expr) -> usize {
    let mut n = 0usize;
    e.walk(&mut Vec::new(), &mut |_: &[ASTNode]| {
        n += 1;
        true
    });
    n
}

/// What the fast path reads of the script's top-level statements.
struct TopLevel {
    /// `const NAME = literal;`, visible in `quote` when it is called in
    /// the caller's scope (`quote!(m)`).
    consts: Vec<(ImmutableString, Expr)>,
    /// `let` names: state kept between calls, refused where read.
    lets: Vec<ImmutableString>,
    /// `quote` is called in the caller's scope (`quote!(m)`).
    sees_caller: bool,
}

/// A value that cannot fail or do anything when evaluated.
fn is_literal(e: &Expr) -> bool {
    match e {
        Expr::IntegerConstant(..)
        | Expr::FloatConstant(..)
        | Expr::BoolConstant(..)
        | Expr::StringConstant(..)
        | Expr::CharConstant(..)
        | Expr::Unit(..)
        | Expr::DynamicConstant(..) => true,
        Expr::Array(a, _) => a.iter().all(is_literal),
        Expr::Map(m, _) => m.0.iter().all(|(_, v)| is_literal(v)),
        // `-1.5` when the optimizer left it as an operator.
        Expr::FnCall(x, _) => {
            matches!(x.op_token, Some(Token::UnaryMinus | Token::Minus))
                && matches!(x.args.as_slice(), [Expr::FloatConstant(..)])
        }
        _ => false,
    }
}

/// The strategy runs the top-level statements once when a version loads
/// (see `script::state`), which the fast path skips: so only statements
/// that can neither fail nor do anything are accepted (`let`/`const` of a
/// literal, `keep_state()`); the last statement is the `quote` call.
fn top_level(ast: &AST) -> R<TopLevel> {
    let mut top = TopLevel { consts: Vec::new(), lets: Vec::new(), sees_caller: false };
    let Some((call, init)) = ast.statements().split_last() else {
        return Ok(top);
    };
    let sees_caller = match call {
        Stmt::FnCall(x, _) => x.capture_parent_scope,
        Stmt::Expr(e) => matches!(&**e, Expr::FnCall(x, _) if x.capture_parent_scope),
        _ => false,
    };
    top.sees_caller = sees_caller;
    for s in init {
        match s {
            // `state.x = literal;`
            Stmt::Assignment(x)
                if x.0.get_op_assignment_info().is_none()
                    && is_literal(&x.1.rhs)
                    && matches!(&x.1.lhs, Expr::Dot(d, f, _) if f.is_empty()
                        && matches!(&d.lhs, Expr::Variable(v, ..) if v.1.as_str() == "state")
                        && matches!(&d.rhs, Expr::Property(..))) => {}
            Stmt::Var(x, flags, pos) => {
                let (ident, value, _) = &**x;
                if !is_literal(value) {
                    return refuse(
                        *pos,
                        format!("the top-level {} is computed when the script loads (runs interpreted)", ident.name),
                    );
                }
                if flags.contains(ASTFlags::CONSTANT) {
                    if sees_caller {
                        top.consts.push((ident.name.clone(), value.clone()));
                    }
                } else {
                    top.lets.push(ident.name.clone());
                }
            }
            Stmt::FnCall(x, _) if x.name.as_str() == "keep_state" && x.args.is_empty() => {}
            Stmt::Expr(e) if matches!(&**e, Expr::FnCall(x, _) if x.name.as_str() == "keep_state" && x.args.is_empty()) =>
                {}
            Stmt::Noop(_) => {}
            other => {
                return refuse(
                    other.position(),
                    "a top-level statement other than let/const of a literal (it runs when the script loads)",
                )
            }
        }
    }
    Ok(top)
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
    let FnBody { body, nodes, .. } = body_of(def);

    // Caps the interpreter enforces per call. The operations of the body
    // run once are bounded here; loops and calls add theirs as they run
    // ([`Cx::charge`]).
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
        peak: 0,
        lits: Vec::new(),
        script_fns: ast.iter_functions().map(|f| f.name.to_string()).collect(),
        fns: ast.iter_fn_def().map(|d| std::sync::Arc::new(body_of(d))).collect(),
        pure: 0,
        ret: Vec::new(),
        loops: 0,
        depth: 1,
        inlining: Vec::new(),
        inlined_nodes: 0,
        dynamic: false,
        top_lets: Vec::new(),
        sees_state: false,
        state_keys: Vec::new(),
    };
    // Top-level constants `quote!(m)` sees: stored first in each call.
    let top = top_level(ast)?;
    c.sees_state = top.sees_caller && top.lets.iter().any(|l| l.as_str() == "state");
    c.top_lets = top.lets;
    let mut prologue = Vec::new();
    for (name, init) in &top.consts {
        let v = c.expr(init)?;
        if matches!(v, Val::Unit(_)) {
            continue;
        }
        let slot = c.alloc(v.ty(), init.start_position())?;
        c.scope.push(Local { name: name.clone(), ty: v.ty(), slot, constant: true });
        prologue.push(compiler::store(slot, v));
    }
    let body = c.block(&body, true)?;
    let body = if prologue.is_empty() {
        body
    } else {
        ev(move |cx| {
            for s in &prologue {
                s(cx)?;
            }
            body(cx)
        })
    };
    if engine.max_variables() < c.peak.saturating_add(2) {
        return refuse(start, "more variables than max_variables allows");
    }
    if c.dynamic && engine.max_variables() != usize::MAX {
        return refuse(start, "loops or script functions with max_variables set (Rhai counts those per scope)");
    }
    let longest = c.lits.iter().map(|s| s.len()).chain([8]).max().unwrap_or(8);
    if engine.max_string_size() != 0 && engine.max_string_size() < longest {
        return refuse(start, "max_string_size is below the length of a string the script uses");
    }
    Ok(FastQuote { body, lits: c.lits, nodes, base_ops: bound, max_ops, state_keys: c.state_keys })
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

mod calls;
mod compiler;
mod fault;
mod loops;
mod math;
mod ops;
mod state;
use compiler::{Compiler, Local};
use math::*;
use ops::*;
