//! Calls: method chains on `m` and on values, Rhai's standard functions,
//! `param(...)`, and functions the script defines (inlined at each call
//! site with their own slots, typed by the arguments of that call).

use super::compiler::type_list;
use super::*;
use crate::script::api::market_indexed;

impl Compiler<'_> {
    /// `lhs.step.step...`: `m.<getter>`, then properties and method calls.
    pub(super) fn chain(&mut self, x: &BinaryExpr, flags: ASTFlags, pos: Position) -> R<Val> {
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
        if self.is_state(&x.lhs) {
            return match steps.as_slice() {
                [one] => self.state_read(one, pos),
                _ => refuse(pos, "a chain on state other than state.<key> or state.len()"),
            };
        }
        let market = matches!(&x.lhs, Expr::Variable(v, ..) if self.lookup(&v.1).is_some_and(|l| l.ty == Ty::Market));
        let (base, rest) = if market {
            let base = match steps.split_first() {
                Some((Expr::Property(p, ppos), _)) => {
                    let name = p.2.as_str();
                    if let Some(f) = float_field(name) {
                        Val::Float(f)
                    } else if let Some(s) = str_field(name) {
                        Val::Str(s)
                    } else {
                        return refuse(*ppos, format!("m.{name} (no such getter)"));
                    }
                }
                Some((Expr::MethodCall(fx, mpos), _)) => self.indexed(fx, *mpos)?,
                _ => return refuse(pos, "m used other than as m.<getter> or m.<getter>(i)"),
            };
            (base, &steps[1..])
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
    pub(super) fn call(&mut self, x: &FnCallExpr, pos: Position) -> R<Val> {
        if x.capture_parent_scope {
            return refuse(pos, "a call with !");
        }
        if let Some(tok) = &x.op_token {
            return self.operator(tok, x, pos);
        }
        let name = x.name.as_str();
        if let Some(f) = self.fns.iter().position(|f| f.name.as_str() == name && f.params.len() == x.args.len()) {
            return self.inline(f, x, pos);
        }
        if self.script_fns.iter().any(|f| f == name) {
            return refuse(pos, format!("{name}(), a function the script defines (with another number of parameters)"));
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
    pub(super) fn param(&mut self, x: &FnCallExpr, pos: Position) -> R<Val> {
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

    /// A call of the script's function `f`, inlined: the arguments are
    /// evaluated left to right, then bound to the parameters (fresh slots,
    /// in a scope of their own, as Rhai functions see no caller variables),
    /// then the body runs; its `return` (or last value) comes back through
    /// [`Cx::rv`]. Typed by this call's arguments; the function must return
    /// one type on every path.
    pub(super) fn inline(&mut self, f: usize, x: &FnCallExpr, pos: Position) -> R<Val> {
        let def = self.fns[f].clone();
        let name = def.name.as_str();
        if let Some(why) = def.refused {
            return refuse(def.pos, format!("{name}(): {why}"));
        }
        if self.inlining.contains(&f) {
            return refuse(pos, format!("{name}() calls itself (recursion runs interpreted)"));
        }
        // Rhai: a call at level n > max_call_levels is a stack overflow.
        if self.depth + 1 > self.engine.max_call_levels() {
            return refuse(pos, format!("{name}() is called deeper than max_call_levels"));
        }
        if x.args.len() > CHAIN_ARGS {
            return refuse(pos, format!("{name}() has more than {CHAIN_ARGS} parameters"));
        }
        self.inlined_nodes += def.nodes;
        if self.inlined_nodes > MAX_INLINED_NODES {
            return refuse(pos, format!("over {MAX_INLINED_NODES} AST nodes of script functions inlined"));
        }
        self.dynamic = true;
        // Arguments, in the caller's scope.
        let mut tys = Vec::with_capacity(x.args.len());
        let mut args: Vec<Ev<Tmp>> = Vec::with_capacity(x.args.len());
        for a in x.args.iter() {
            let market = matches!(a, Expr::Variable(v, ..) if self.lookup(&v.1).is_some_and(|l| l.ty == Ty::Market));
            if market {
                tys.push(Ty::Market);
                continue;
            }
            let v = self.expr(a)?;
            tys.push(v.ty());
            args.push(v.into_tmp());
        }
        // The body, in a scope of its own.
        let saved_scope = std::mem::take(&mut self.scope);
        let saved = (self.used, self.pure, self.loops);
        self.pure = 0;
        self.loops = 0;
        self.depth += 1;
        self.inlining.push(f);
        self.ret.push(None);
        let r = self.inline_body(&def, &tys);
        let ret = self.ret.pop().flatten().unwrap_or(Ty::Unit);
        self.inlining.pop();
        self.depth -= 1;
        self.scope = saved_scope;
        (self.used, self.pure, self.loops) = saved;
        let (stores, body) = r?;
        let k = OPS_PER_NODE_RUN.saturating_mul(def.nodes as u64).saturating_add(OPS_CALL);
        let call = ev(move |cx| {
            let mut held = [Tmp::U; CHAIN_ARGS];
            for (h, a) in held.iter_mut().zip(&args) {
                *h = a(cx)?;
            }
            cx.charge(k)?;
            for (&(ty, slot), &v) in stores.iter().zip(&held) {
                match (ty, v) {
                    (Ty::Float, Tmp::F(v)) => cx.fr.f[slot & (FLOATS - 1)] = v,
                    (Ty::Int, Tmp::I(v)) => cx.fr.i[slot & (INTS - 1)] = v,
                    (Ty::Bool, Tmp::B(v)) => cx.fr.b[slot & (BOOLS - 1)] = v,
                    (Ty::Str, Tmp::S(v)) => cx.fr.s[slot & (STRS - 1)] = v,
                    _ => {}
                }
            }
            cx.rv = Tmp::U;
            body(cx)?;
            Ok(cx.rv)
        });
        Ok(Val::from_tmp(call, ret))
    }

    /// Binds the parameters and compiles the body (in the callee's scope):
    /// the slots the arguments go to, and the body.
    pub(super) fn inline_body(&mut self, def: &FnBody, tys: &[Ty]) -> R<(Vec<(Ty, usize)>, St)> {
        let mut stores = Vec::with_capacity(tys.len());
        for (p, &ty) in def.params.iter().zip(tys) {
            let slot = if ty == Ty::Market { 0 } else { self.alloc(ty, def.pos)? };
            self.scope.push(Local { name: p.clone(), ty, slot, constant: false });
            if ty != Ty::Market {
                stores.push((ty, slot));
            }
        }
        let body = self.block(&def.body, true)?;
        Ok((stores, body))
    }
}

/// An indexed getter of `m` (`m.bid_price(i)`), as a method call on the
/// state: 0.0 out of range, never an error; no allocation.
fn indexed_field(name: &str, i: Ev<i64>) -> Result<Ev<f64>, Ev<i64>> {
    macro_rules! by_name {
        ($name:ident, $i:ident ; $($f:ident),*) => {
            match $name {
                $( stringify!($f) => Ok(ev(move |cx| { let i = $i(cx)?; Ok(cx.m.$f(i)) })), )*
                _ => Err($i),
            }
        };
    }
    market_indexed!(by_name!(name, i))
}

impl Compiler<'_> {
    /// `m.<getter>(i)` with one `INT` argument (Rhai registers them for
    /// `INT` only: a `FLOAT` index is a "function not found", refused).
    fn indexed(&mut self, fx: &FnCallExpr, pos: Position) -> R<Val> {
        let name = fx.name.as_str();
        if self.script_fns.iter().any(|f| f == name) {
            return refuse(pos, format!("{name}(), a function the script defines"));
        }
        let [arg] = fx.args.as_slice() else {
            return refuse(pos, format!("m.{name}() with other than one argument"));
        };
        let i = match self.expr(arg)? {
            Val::Int(i) => i,
            other => return refuse(pos, format!("m.{name}({})", other.ty().name())),
        };
        match indexed_field(name, i) {
            Ok(f) => Ok(Val::Float(f)),
            Err(_) => refuse(pos, format!("m.{name}(i) (no such indexed getter)")),
        }
    }
}

/// Inlining copies a function's body at each call site: a bound on the
/// code that can grow to (deep call trees stay interpreted).
const MAX_INLINED_NODES: usize = 20_000;
