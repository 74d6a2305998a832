//! Loops: `for i in a..b` / `a..=b` / `range(a, b)` over `INT`s, `while`
//! and `loop`, with `break` and `continue`.
//!
//! Rhai's semantics kept: the range is evaluated once, before the first
//! iteration (start, then end); an empty or reversed range runs no
//! iteration; the loop variable and the body's `let`s are fresh each
//! iteration. A `break`/`continue` stops the statements around it like a
//! `return` (`Ok(true)`) with [`Cx::jump`] saying which; the loop consumes
//! it. `break value`, `do` loops (Rhai's `continue` there skips the
//! condition), counters (`for (x, i) in ..`) and any other iterable are
//! refused.
//!
//! Each iteration adds its body's operation bound ([`Cx::charge`]); when
//! the bound passes the engine's cap the call is handed to the interpreter,
//! which counts exactly and raises "too many operations" where Rhai does.

use std::ops::{Range, RangeInclusive};

use super::*;

/// A range to iterate: start, end and whether the end is included.
struct Span {
    start: Ev<i64>,
    end: Ev<i64>,
    inclusive: bool,
}

impl Compiler<'_> {
    /// `for var in range { body }`.
    pub(super) fn for_(&mut self, x: &(Ident, Option<Ident>, FlowControl), _pos: Position) -> R<St> {
        let (var, counter, fc) = x;
        if let Some(c) = counter {
            return refuse(c.pos, "a for loop with a counter variable");
        }
        let span = self.span(&fc.expr)?;
        self.dynamic = true;
        let (mark, used) = (self.scope.len(), self.used);
        let slot = self.alloc(Ty::Int, var.pos)?;
        self.scope.push(Local { name: var.name.clone(), ty: Ty::Int, slot, constant: false });
        self.loops += 1;
        let body = self.block(fc.body.statements(), false);
        self.loops -= 1;
        self.scope.truncate(mark);
        self.used = used;
        let body = body?;
        let k = iteration_bound(nodes_of(fc.body.statements()));
        let s = slot & (INTS - 1);
        let Span { start, end, inclusive } = span;
        Ok(ev(move |cx| {
            let a = start(cx)?;
            let b = end(cx)?;
            let mut i = a;
            loop {
                if i > b || (!inclusive && i == b) {
                    return Ok(false);
                }
                cx.charge(k)?;
                cx.fr.i[s] = i;
                if body(cx)? && !next_iteration(cx) {
                    return Ok(stopped(cx));
                }
                // `i < b` here (or `i <= b` inclusive), so no overflow
                // unless `i == b == i64::MAX` inclusive: then it was the last.
                match i.checked_add(1) {
                    Some(n) => i = n,
                    None => return Ok(false),
                }
            }
        }))
    }

    /// `while cond { body }` and `loop { body }`.
    pub(super) fn while_(&mut self, fc: &FlowControl, _pos: Position) -> R<St> {
        let forever = matches!(fc.expr, Expr::Unit(..) | Expr::BoolConstant(true, ..));
        let cond = if forever { None } else { Some(self.cond(&fc.expr)?) };
        self.dynamic = true;
        self.loops += 1;
        let body = self.block(fc.body.statements(), false);
        self.loops -= 1;
        let body = body?;
        let k = iteration_bound(nodes_of(fc.body.statements()) + if forever { 0 } else { expr_nodes(&fc.expr) });
        Ok(ev(move |cx| loop {
            cx.charge(k)?;
            if let Some(c) = &cond {
                if !c(cx)? {
                    return Ok(false);
                }
            }
            if body(cx)? && !next_iteration(cx) {
                return Ok(stopped(cx));
            }
        }))
    }

    /// `break` / `continue` (without a value).
    pub(super) fn break_(&mut self, value: bool, flags: ASTFlags, pos: Position) -> R<St> {
        if value {
            return refuse(pos, "break with a value");
        }
        if self.pure > 0 {
            return refuse(pos, "break/continue inside an expression");
        }
        if self.loops == 0 {
            return refuse(pos, "break/continue outside a loop");
        }
        Ok(if flags.contains(ASTFlags::BREAK) {
            ev(|cx| {
                cx.jump = Jump::Break;
                Ok(true)
            })
        } else {
            ev(|cx| {
                cx.jump = Jump::Continue;
                Ok(true)
            })
        })
    }

    /// The iterable of a `for`: an `INT` range, built by `..`, `..=` or
    /// `range(a, b)`, or one the optimizer folded into a constant.
    fn span(&mut self, e: &Expr) -> R<Span> {
        let pos = e.start_position();
        match e {
            Expr::DynamicConstant(d, _) => {
                if let Some(r) = d.read_lock::<Range<i64>>() {
                    let (a, b) = (r.start, r.end);
                    return Ok(Span { start: ev(move |_| Ok(a)), end: ev(move |_| Ok(b)), inclusive: false });
                }
                if let Some(r) = d.read_lock::<RangeInclusive<i64>>() {
                    let (a, b) = (*r.start(), *r.end());
                    return Ok(Span { start: ev(move |_| Ok(a)), end: ev(move |_| Ok(b)), inclusive: true });
                }
                refuse(pos, format!("a for loop over a {}", d.type_name()))
            }
            Expr::FnCall(x, fpos) => {
                let inclusive = match (&x.op_token, x.name.as_str()) {
                    (Some(Token::ExclusiveRange), _) => false,
                    (Some(Token::InclusiveRange), _) => true,
                    (None, "range") if !self.script_fns.iter().any(|f| f == "range") => false,
                    _ => return refuse(*fpos, "a for loop over anything but an INT range"),
                };
                if x.capture_parent_scope {
                    return refuse(*fpos, "a call with !");
                }
                let [a, b] = x.args.as_slice() else {
                    return refuse(*fpos, "a stepped range (range(a, b, step))");
                };
                match (self.expr(a)?, self.expr(b)?) {
                    (Val::Int(start), Val::Int(end)) => Ok(Span { start, end, inclusive }),
                    (a, b) => refuse(*fpos, format!("a range of {} and {}", a.ty().name(), b.ty().name())),
                }
            }
            _ => refuse(pos, "a for loop over anything but an INT range"),
        }
    }
}

/// Operations one iteration may count: its body's nodes and the loop's own.
fn iteration_bound(nodes: usize) -> u64 {
    OPS_PER_NODE_RUN.saturating_mul(nodes as u64).saturating_add(OPS_ITER)
}

/// After a body stopped early: `true` to go on with the next iteration
/// (a `continue`, consumed).
#[inline]
fn next_iteration(cx: &mut Cx<'_>) -> bool {
    if cx.jump == Jump::Continue {
        cx.jump = Jump::None;
        return true;
    }
    false
}

/// The loop stops: `false` for a `break` (consumed, the statements after
/// the loop run), `true` for a `return` (it goes on up).
#[inline]
fn stopped(cx: &mut Cx<'_>) -> bool {
    if cx.jump == Jump::Break {
        cx.jump = Jump::None;
        return false;
    }
    true
}
