//! The persistent `state` map on the fast path (see `script::state`):
//! `state.x` reads, `state.x = v` / `state.x op= v` writes of FLOAT values
//! and `state.len()`, in `quote` called as `quote!(m)` (only there does the
//! function see the strategy's scope; a plainly called helper does not).
//!
//! Exactness: the value of `state.x` has no static type, so a read that
//! finds anything but a FLOAT (a key not there yet, an INT, a string...)
//! hands the call to the interpreter ([`Quoted::Interpret`]). For that the
//! writes of a call are buffered in [`Cx`] and applied only when the call
//! ends without handing over: on a quote, on an output that is not a quote,
//! and on a fault (Rhai keeps the writes made before an error). A handed
//! over call starts again from the untouched state in the interpreter.

use rhai::Map;

use super::*;

/// Most distinct `state.<key>` names one script may use on the fast path.
pub const STATE_KEYS: usize = 32;

/// The writes of one call, by key index (`None`: not written).
pub(super) type Writes = [Option<f64>; STATE_KEYS];

impl Cx<'_> {
    /// `state.<key>`: this call's write, else the map's FLOAT.
    #[inline]
    pub(super) fn state_get(&mut self, k: usize) -> Result<f64, Halt> {
        if let Some(v) = self.writes.get(k).copied().flatten() {
            return Ok(v);
        }
        let found = match (self.state, self.keys.get(k)) {
            (Some(map), Some(key)) => map.get(key.as_str()).and_then(|d| d.as_float().ok()),
            _ => None,
        };
        found.ok_or_else(|| self.give_up())
    }

    /// `state.<key> = v` (applied when the call ends).
    #[inline]
    pub(super) fn state_set(&mut self, k: usize, v: f64) {
        if let Some(w) = self.writes.get_mut(k) {
            *w = Some(v);
        }
    }

    /// `state.len()`: keys in the map and keys this call added.
    pub(super) fn state_len(&mut self) -> Result<i64, Halt> {
        let Some(map) = self.state else { return Err(self.give_up()) };
        let added =
            self.writes.iter().zip(self.keys).filter(|(w, key)| w.is_some() && !map.contains_key(key.as_str())).count();
        Ok((map.len() + added) as i64)
    }
}

/// Applies a call's writes to the map (no allocation for keys already
/// there; a new short key is stored inline).
pub(super) fn commit(map: &mut Map, keys: &[ImmutableString], writes: &Writes) {
    for (key, w) in keys.iter().zip(writes) {
        if let Some(v) = *w {
            match map.get_mut(key.as_str()) {
                Some(d) => *d = Dynamic::from_float(v),
                None => {
                    map.insert(key.as_str().into(), Dynamic::from_float(v));
                }
            }
        }
    }
}

impl Compiler<'_> {
    /// Whether `name` is the strategy's `state` map as `quote` sees it.
    pub(super) fn is_state(&self, e: &Expr) -> bool {
        matches!(e, Expr::Variable(v, ..) if v.1.as_str() == "state" && self.lookup("state").is_none())
            && self.sees_state
            && self.ret.is_empty()
    }

    /// The index of `state.<key>`.
    fn state_key(&mut self, key: &str, pos: Position) -> R<usize> {
        if let Some(k) = self.state_keys.iter().position(|s| s.as_str() == key) {
            return Ok(k);
        }
        if self.state_keys.len() >= STATE_KEYS {
            return refuse(pos, format!("more than {STATE_KEYS} state keys"));
        }
        self.state_keys.push(key.into());
        Ok(self.state_keys.len() - 1)
    }

    /// `state.<key>` (FLOAT) or `state.len()` (INT).
    pub(super) fn state_read(&mut self, step: &Expr, pos: Position) -> R<Val> {
        match step {
            Expr::Property(p, ppos) => {
                let k = self.state_key(p.2.as_str(), *ppos)?;
                Ok(Val::Float(ev(move |cx| cx.state_get(k))))
            }
            Expr::MethodCall(fx, _) if fx.name.as_str() == "len" && fx.args.is_empty() => {
                Ok(Val::Int(ev(|cx| cx.state_len())))
            }
            _ => refuse(pos, "state used other than as state.<key>, state.len() or state.<key> = FLOAT"),
        }
    }

    /// `state.<key> = v` and `state.<key> op= v`.
    pub(super) fn state_write(&mut self, op: &OpAssignment, key: &Expr, rhs: &Expr) -> R<St> {
        let pos = op.position();
        let Expr::Property(p, ppos) = key else {
            return refuse(pos, "assigning to state other than state.<key>");
        };
        let k = self.state_key(p.2.as_str(), *ppos)?;
        let rhs = self.expr(rhs)?;
        let Some((_, _, _, _, base, _)) = op.get_op_assignment_info() else {
            let Val::Float(v) = rhs else {
                return refuse(pos, format!("state.{} = {} (only FLOAT values are compiled)", p.2, rhs.ty().name()));
            };
            return Ok(ev(move |cx| {
                let v = v(cx)?;
                cx.state_set(k, v);
                Ok(false)
            }));
        };
        let Some(op) = Arith::of(base) else {
            return refuse(pos, format!("the operator {}=", base.literal_syntax()));
        };
        let Some(y) = rhs.into_float() else {
            return refuse(pos, format!("state.{} {}= a value that is not a number", p.2, base.literal_syntax()));
        };
        // Rhai reads the property, applies the operator, writes it back: the
        // value is evaluated first, then the property read (FLOAT op FLOAT|INT).
        Ok(ev(move |cx| {
            let y = y(cx)?;
            let x = cx.state_get(k)?;
            cx.state_set(k, float_op(op, x, y));
            Ok(false)
        }))
    }
}
