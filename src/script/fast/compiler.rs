//! The compiler half of the fast path: walks `fn quote(m)`'s statements
//! and expressions, types each node, and builds the closures the parent
//! module's runtime ([`super::FastQuote`], [`super::Cx`]) runs; anything it
//! cannot reproduce exactly is refused with its reason and position.

use super::*;

pub(super) struct Local {
    pub(super) name: ImmutableString,
    pub(super) ty: Ty,
    pub(super) slot: usize,
    pub(super) constant: bool,
}

pub(super) struct Compiler<'e> {
    pub(super) engine: &'e Engine,
    /// Visible bindings, innermost last; the parameter `m` first.
    pub(super) scope: Vec<Local>,
    /// Slots handed out per type: floats, ints, bools, strings.
    pub(super) used: [usize; 4],
    pub(super) lits: Vec<ImmutableString>,
    /// Functions the script defines: a call to any of them is refused
    /// (script functions take precedence over the built-in ones).
    pub(super) script_fns: Vec<String>,
    /// > 0 inside an expression block, where only pure statements are accepted.
    pub(super) pure: usize,
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
    pub(super) fn block(&mut self, stmts: &[Stmt], tail: bool) -> R<St> {
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
