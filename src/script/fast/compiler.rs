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
    /// Slots handed out per type: floats, ints, bools, strings. A block
    /// gives its slots back when it ends (every slot is written by its `let`
    /// before it is read, so reuse is safe).
    pub(super) used: [usize; 4],
    /// Most slots in use at once (all types).
    pub(super) peak: usize,
    pub(super) lits: Vec<ImmutableString>,
    /// Functions the script defines: a call to any of them is refused
    /// (script functions take precedence over the built-in ones).
    pub(super) script_fns: Vec<String>,
    /// The script's functions, by definition.
    pub(super) fns: Vec<std::sync::Arc<FnBody>>,
    /// > 0 inside an expression block, where only pure statements are accepted.
    pub(super) pure: usize,
    /// Inside a script function being inlined: the type it returns so far
    /// (innermost last). Empty in `quote` itself.
    pub(super) ret: Vec<Option<Ty>>,
    /// Loops around the statement being compiled (in this function).
    pub(super) loops: usize,
    /// Rhai's call level of the code being compiled (`quote` is 1).
    pub(super) depth: usize,
    /// Functions being inlined (indices into `fns`): a recursion is refused.
    pub(super) inlining: Vec<usize>,
    /// AST nodes of every inlined body (bounded, as code grows per call site).
    pub(super) inlined_nodes: usize,
    /// Whether the script has loops or calls (operations counted as they run).
    pub(super) dynamic: bool,
    /// The script's top-level `let` names (persistent state: refused).
    pub(super) top_lets: Vec<ImmutableString>,
    /// `quote` sees the strategy's `state` map (it is called as `quote!(m)`).
    pub(super) sees_state: bool,
    /// `state.<key>` names used, by index.
    pub(super) state_keys: Vec<ImmutableString>,
}

impl Compiler<'_> {
    /// Why a name the compiler does not know is refused.
    fn unknown(&self, name: &str) -> String {
        if name == "state" {
            "state (the persistent script state runs interpreted)".to_string()
        } else if self.top_lets.iter().any(|l| l.as_str() == name) {
            format!("{name}, a top-level let (state kept between calls runs interpreted)")
        } else {
            format!("the undefined variable {name}")
        }
    }

    pub(super) fn lookup(&self, name: &str) -> Option<&Local> {
        self.scope.iter().rev().find(|l| l.name.as_str() == name)
    }

    pub(super) fn alloc(&mut self, ty: Ty, pos: Position) -> R<usize> {
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
        self.peak = self.peak.max(self.used.iter().sum());
        Ok(slot)
    }

    /// A block in its own scope; with `tail`, its value is the function's return value.
    pub(super) fn block(&mut self, stmts: &[Stmt], tail: bool) -> R<St> {
        let (mark, used) = (self.scope.len(), self.used);
        let r = self.block_inner(stmts, tail);
        self.scope.truncate(mark);
        self.used = used;
        r
    }

    /// The function returns `()` here.
    pub(super) fn ret_unit(&mut self, pos: Position) -> R<St> {
        if self.ret.is_empty() {
            return Ok(ev(|cx| {
                cx.ret = Ret::Unit;
                Ok(true)
            }));
        }
        self.ret_type(Ty::Unit, pos)?;
        Ok(ev(|cx| {
            cx.rv = Tmp::U;
            Ok(true)
        }))
    }

    /// The function returns this value.
    pub(super) fn ret_val(&mut self, v: Val, pos: Position) -> R<St> {
        if self.ret.is_empty() {
            return Ok(v.returned());
        }
        self.ret_type(v.ty(), pos)?;
        let e = v.into_tmp();
        Ok(ev(move |cx| {
            cx.rv = e(cx)?;
            Ok(true)
        }))
    }

    /// A script function returns one type on every path (its call sites
    /// are typed at compile time).
    pub(super) fn ret_type(&mut self, ty: Ty, pos: Position) -> R<()> {
        match self.ret.last_mut() {
            Some(slot @ None) => *slot = Some(ty),
            Some(Some(t)) if *t == ty => {}
            Some(Some(t)) => {
                let t = *t;
                return refuse(pos, format!("a function returning different types ({} and {})", t.name(), ty.name()));
            }
            None => {}
        }
        Ok(())
    }

    /// `st`, then (as the function's last statement) a return of `()`,
    /// unless `st` itself returned or jumped.
    pub(super) fn then_unit(&mut self, st: St, pos: Position) -> R<St> {
        let unit = self.ret_unit(pos)?;
        Ok(ev(move |cx| {
            if st(cx)? {
                return Ok(true);
            }
            unit(cx)
        }))
    }

    pub(super) fn block_inner(&mut self, stmts: &[Stmt], tail: bool) -> R<St> {
        if stmts.is_empty() {
            return if tail { self.ret_unit(Position::NONE) } else { Ok(ev(|_| Ok(false))) };
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

    pub(super) fn stmt(&mut self, s: &Stmt, tail: bool) -> R<St> {
        let plain = match s {
            Stmt::Noop(_) => ev(|_| Ok(false)),
            Stmt::Var(x, flags, pos) => self.let_(x, *flags, *pos)?,
            Stmt::Assignment(x) => self.assign(&x.0, &x.1)?,
            Stmt::If(fc, _) => return self.if_stmt(fc, tail),
            Stmt::Block(b) => return self.block(b.statements(), tail),
            Stmt::Expr(e) => return self.expr_stmt(e, tail),
            Stmt::FnCall(x, pos) => return self.call_stmt(x, *pos, tail),
            Stmt::Return(v, flags, pos) => return self.return_(v.as_deref(), *flags, *pos),
            Stmt::For(x, pos) => self.for_(x, *pos)?,
            Stmt::While(fc, pos) => self.while_(fc, *pos)?,
            Stmt::Do(_, _, pos) => return refuse(*pos, "do loops"),
            Stmt::BreakLoop(v, flags, pos) => return self.break_(v.is_some(), *flags, *pos),
            Stmt::Switch(_, pos) => return refuse(*pos, "switch"),
            Stmt::TryCatch(_, pos) => return refuse(*pos, "try/catch"),
            other => return refuse(other.position(), "this statement"),
        };
        if tail {
            self.then_unit(plain, s.position())
        } else {
            Ok(plain)
        }
    }

    pub(super) fn let_(
        &mut self,
        x: &(Ident, Expr, Option<std::num::NonZeroUsize>),
        flags: ASTFlags,
        pos: Position,
    ) -> R<St> {
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

    pub(super) fn assign(&mut self, op: &OpAssignment, x: &BinaryExpr) -> R<St> {
        let pos = op.position();
        if self.pure > 0 {
            return refuse(pos, "an assignment inside an expression");
        }
        if let Expr::Dot(d, f, _) = &x.lhs {
            if f.is_empty() && self.is_state(&d.lhs) {
                return self.state_write(op, &d.rhs, &x.rhs);
            }
        }
        let Expr::Variable(var, _, vpos) = &x.lhs else {
            if let Expr::Dot(d, ..) | Expr::Index(d, ..) = &x.lhs {
                if let Expr::Variable(v, _, vpos) = &d.lhs {
                    if self.lookup(&v.1).is_none() {
                        return refuse(*vpos, format!("assigning to {}", self.unknown(&v.1)));
                    }
                }
            }
            return refuse(x.lhs.start_position(), "assigning to anything but a local variable");
        };
        let Some(local) = self.lookup(&var.1) else {
            return refuse(*vpos, format!("assigning to {}", self.unknown(&var.1)));
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

    pub(super) fn if_stmt(&mut self, fc: &FlowControl, tail: bool) -> R<St> {
        let c = self.cond(&fc.expr)?;
        let t = self.block(fc.body.statements(), tail)?;
        let e = self.block(fc.branch.statements(), tail)?;
        Ok(select(c, t, e))
    }

    pub(super) fn cond(&mut self, e: &Expr) -> R<Ev<bool>> {
        match self.expr(e)? {
            Val::Bool(c) => Ok(c),
            other => refuse(e.start_position(), format!("a condition of type {}", other.ty().name())),
        }
    }

    pub(super) fn expr_stmt(&mut self, e: &Expr, tail: bool) -> R<St> {
        if tail {
            return self.ret_expr(e);
        }
        if let Expr::Stmt(b) = e {
            // A block statement `{ ... }` parsed as an expression: it may
            // hold any statement (the optimizer turns some into this).
            if self.pure == 0 {
                return self.block(b.statements(), false);
            }
        }
        if let Expr::Map(_, pos) = e {
            return refuse(*pos, "a map that is not the return value");
        }
        Ok(self.expr(e)?.discard())
    }

    pub(super) fn call_stmt(&mut self, x: &FnCallExpr, pos: Position, tail: bool) -> R<St> {
        let is_output = x.op_token.is_none()
            && matches!(x.name.as_str(), "bid" | "ask" | "pull")
            && !self.script_fns.iter().any(|f| f == x.name.as_str());
        let st = if is_output {
            self.output(x, pos)?
        } else {
            let v = self.call(x, pos)?;
            if tail {
                return self.ret_val(v, pos);
            }
            v.discard()
        };
        if tail {
            self.then_unit(st, pos)
        } else {
            Ok(st)
        }
    }

    /// `bid(price, size)`, `ask(price, size)`, `pull()`.
    pub(super) fn output(&mut self, x: &FnCallExpr, pos: Position) -> R<St> {
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
                cx.output().set_pull();
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
                cx.output().bid(p, s);
                Ok(false)
            })
        } else {
            ev(move |cx| {
                let (p, s) = (price(cx)?, size(cx)?);
                cx.output().ask(p, s);
                Ok(false)
            })
        })
    }

    pub(super) fn return_(&mut self, v: Option<&Expr>, flags: ASTFlags, pos: Position) -> R<St> {
        if flags.contains(ASTFlags::BREAK) {
            return refuse(pos, "throw");
        }
        if self.pure > 0 {
            return refuse(pos, "return inside an expression");
        }
        match v {
            None => self.ret_unit(pos),
            Some(e) => self.ret_expr(e),
        }
    }

    /// An expression that becomes the return value.
    pub(super) fn ret_expr(&mut self, e: &Expr) -> R<St> {
        if !self.ret.is_empty() {
            // Inside a script function: a value of one of the static types.
            if matches!(e, Expr::Map(..)) || matches!(e, Expr::DynamicConstant(d, _) if d.is_map()) {
                return refuse(e.start_position(), "a function returning a map");
            }
            let v = self.expr(e)?;
            return self.ret_val(v, e.start_position());
        }
        match e {
            Expr::Map(m, pos) => self.ret_map(&m.0, *pos),
            Expr::DynamicConstant(d, pos) if d.is_map() => {
                let Some(map) = d.read_lock::<rhai::Map>() else { return refuse(*pos, "this constant") };
                if self.engine.max_map_size() != 0 && map.len() > self.engine.max_map_size() {
                    return refuse(*pos, "a map over max_map_size");
                }
                let mut out = [None; 6];
                for (k, v) in map.iter() {
                    if matches!(k.as_str(), "bids" | "asks") {
                        return refuse(*pos, "a map with bids/asks (levels from arrays run interpreted)");
                    }
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
            e => {
                let v = self.expr(e)?;
                self.ret_val(v, e.start_position())
            }
        }
    }

    pub(super) fn ret_map(&mut self, entries: &[(Ident, Expr)], pos: Position) -> R<St> {
        if self.engine.max_map_size() != 0 && entries.len() > self.engine.max_map_size() {
            return refuse(pos, "a map over max_map_size");
        }
        // Every value is evaluated in order (for its faults); the documented
        // keys are kept as `intent_from` reads them (a number, or NaN).
        let mut vals: Vec<(Option<usize>, Ev<f64>)> = Vec::with_capacity(entries.len());
        for (key, e) in entries {
            if matches!(key.name.as_str(), "bids" | "asks") {
                return refuse(key.pos, "a map with bids/asks (levels from arrays run interpreted)");
            }
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

    pub(super) fn expr(&mut self, e: &Expr) -> R<Val> {
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

    pub(super) fn literal(&mut self, s: ImmutableString) -> Val {
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
    pub(super) fn constant(&mut self, d: &Dynamic, pos: Position) -> R<Val> {
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

    pub(super) fn var(&mut self, name: &str, pos: Position) -> R<Val> {
        let Some(l) = self.lookup(name) else {
            return refuse(pos, self.unknown(name));
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

    pub(super) fn operator(&mut self, tok: &Token, x: &FnCallExpr, pos: Position) -> R<Val> {
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
    pub(super) fn value_block(&mut self, stmts: &[Stmt]) -> R<Val> {
        let mark = self.scope.len();
        self.pure += 1;
        let r = self.value_block_inner(stmts);
        self.pure -= 1;
        self.scope.truncate(mark);
        r
    }

    pub(super) fn value_block_inner(&mut self, stmts: &[Stmt]) -> R<Val> {
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

pub(super) fn type_list(tys: &[Ty]) -> String {
    tys.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
}

/// Writes a value to its slot.
pub(super) fn store(slot: usize, v: Val) -> St {
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
