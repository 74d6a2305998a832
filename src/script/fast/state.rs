//! The persistent `state` map on the fast path (see `script::state`):
//! `state.x` reads, `state.x = v` / `state.x op= v` writes of FLOAT values
//! and `state.len()`, in `quote` called as `quote!(m)` (only there does the
//! function see the strategy's scope; a plainly called helper does not).
//!
//! Exactness: the value of `state.x` has no static type, so a read that
//! finds anything but a FLOAT (a key not there yet, an INT, a string...)
//! hands the call to the interpreter ([`Quoted::Interpret`]). For that the
//! writes of a call are buffered in the [`Frame`] and applied only when the call
//! ends without handing over: on a quote, on an output that is not a quote,
//! and on a fault (Rhai keeps the writes made before an error). A handed
//! over call starts again from the untouched state in the interpreter.

use rhai::Map;

use super::*;

/// Most distinct `state.<key>` names one script may use on the fast path.
pub const STATE_KEYS: usize = 32;

/// The writes of one call, by key index. Kept in the [`Frame`] and reset
/// per call by its mask (only the keys written), not rebuilt: a call that
/// writes nothing costs one test of the mask.
#[derive(Debug, Clone, Copy)]
pub(super) struct Writes {
    val: [f64; STATE_KEYS],
    /// Bit `k`: key `k` was written.
    set: u32,
}

// One mask bit per key.
const _: () = assert!(STATE_KEYS <= u32::BITS as usize);

impl Writes {
    pub(super) const NONE: Self = Self { val: [0.0; STATE_KEYS], set: 0 };

    #[inline]
    pub(super) fn get(&self, k: usize) -> Option<f64> {
        (k < STATE_KEYS && self.set & (1 << k) != 0).then(|| self.val[k])
    }

    #[inline]
    pub(super) fn set(&mut self, k: usize, v: f64) {
        if k < STATE_KEYS {
            self.val[k] = v;
            self.set |= 1 << k;
        }
    }

    /// Forgets every write (the values stay, unread).
    #[inline]
    pub(super) fn clear(&mut self) {
        self.set = 0;
    }

    /// The written keys and their values, by key index.
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        (0..STATE_KEYS).filter(|&k| self.set & (1 << k) != 0).map(|k| (k, self.val[k]))
    }
}

/// The `state` keys' FLOAT values kept between calls of one fast form, so
/// that a read or write costs an array access rather than a B-tree lookup
/// in the map (which dominated stateful scripts: GLFT's ~25 a call).
///
/// It is valid while only this fast form touched the map since it was
/// filled: the strategy bumps an epoch whenever anything else may have (an
/// interpreted call, `on_fill`, a state load, a version change), and
/// flushes the writes kept here ([`FastQuote::flush_state`]) into the map
/// before that, so the map is exact whenever anything else reads it.
#[derive(Debug, Clone, Copy)]
pub struct Mirror {
    epoch: u64,
    /// The fast form whose key indices these are (its address).
    owner: usize,
    val: [f64; STATE_KEYS],
    /// `val` holds the key's value (a FLOAT in the map, or written here).
    known: [bool; STATE_KEYS],
    /// Written here and not yet in the map.
    dirty: [bool; STATE_KEYS],
    /// Whether the map has the key (`None`: not looked up yet).
    in_map: [Option<bool>; STATE_KEYS],
}

impl Mirror {
    pub(super) const EMPTY: Self = Self {
        epoch: u64::MAX,
        owner: 0,
        val: [0.0; STATE_KEYS],
        known: [false; STATE_KEYS],
        dirty: [false; STATE_KEYS],
        in_map: [None; STATE_KEYS],
    };

    /// Starts over for `owner` at `epoch` unless it already holds them.
    #[inline]
    pub(super) fn validate(&mut self, epoch: u64, owner: usize) {
        if self.epoch != epoch || self.owner != owner {
            debug_assert!(!self.dirty.contains(&true), "state writes lost: flush before bumping the epoch");
            *self = Self { epoch, owner, ..Self::EMPTY };
        }
    }

    /// Keeps a call's writes (the map gets them at the next flush).
    #[inline]
    pub(super) fn commit(&mut self, writes: &Writes) {
        for (k, v) in writes.iter() {
            self.val[k] = v;
            self.known[k] = true;
            self.dirty[k] = true;
        }
    }

    /// Writes the kept values into `map` (no allocation for keys already
    /// there); the mirror stays valid for its epoch.
    pub(super) fn flush(&mut self, map: &mut Map, keys: &[ImmutableString], owner: usize) {
        if self.owner != owner {
            return;
        }
        let writes = self.kept();
        for (dirty, in_map) in self.dirty.iter_mut().zip(&mut self.in_map) {
            if std::mem::take(dirty) {
                *in_map = Some(true);
            }
        }
        commit(map, keys, &writes);
    }

    /// The values written here and not yet in the map, as a call's writes.
    fn kept(&self) -> Writes {
        let mut w = Writes::NONE;
        for k in (0..STATE_KEYS).filter(|&k| self.dirty[k]) {
            w.set(k, self.val[k]);
        }
        w
    }

    /// `map` with the writes kept here applied (a copy, for inspection).
    pub(super) fn merged(&self, map: &Map, keys: &[ImmutableString], owner: usize) -> Map {
        let mut copy = map.clone();
        if self.owner == owner {
            commit(&mut copy, keys, &self.kept());
        }
        copy
    }
}

impl Cx<'_> {
    /// `state.<key>`: this call's write, else the map's FLOAT.
    #[inline]
    pub(super) fn state_get(&mut self, k: usize) -> Result<f64, Halt> {
        if let Some(v) = self.fr.writes.get(k) {
            return Ok(v);
        }
        if self.mirrored && self.fr.mirror.known.get(k) == Some(&true) {
            return Ok(self.fr.mirror.val[k]);
        }
        let (found, present) = match (self.state, self.keys.get(k)) {
            (Some(map), Some(key)) => match map.get(key.as_str()) {
                Some(d) => (d.as_float().ok(), true),
                None => (None, false),
            },
            _ => (None, false),
        };
        if self.mirrored && k < STATE_KEYS {
            let mirror = &mut self.fr.mirror;
            mirror.in_map[k] = Some(present);
            if let Some(v) = found {
                (mirror.val[k], mirror.known[k]) = (v, true);
            }
        }
        found.ok_or_else(|| self.give_up())
    }

    /// `state.<key> = v` (applied when the call ends).
    #[inline]
    pub(super) fn state_set(&mut self, k: usize, v: f64) {
        self.fr.writes.set(k, v);
    }

    /// `state.len()`: keys in the map and keys this call added.
    pub(super) fn state_len(&mut self) -> Result<i64, Halt> {
        let Some(map) = self.state else { return Err(self.give_up()) };
        let mut added = 0;
        for (k, key) in self.keys.iter().enumerate() {
            let kept = self.mirrored && self.fr.mirror.dirty[k];
            if self.fr.writes.get(k).is_none() && !kept {
                continue;
            }
            let present = match (self.mirrored, self.fr.mirror.in_map[k]) {
                (true, Some(p)) => p,
                _ => {
                    let p = map.contains_key(key.as_str());
                    if self.mirrored {
                        self.fr.mirror.in_map[k] = Some(p);
                    }
                    p
                }
            };
            added += !present as usize;
        }
        Ok((map.len() + added) as i64)
    }
}

/// Applies a call's writes to the map (no allocation for keys already
/// there; a new short key is stored inline).
pub(super) fn commit(map: &mut Map, keys: &[ImmutableString], writes: &Writes) {
    for (k, v) in writes.iter() {
        let Some(key) = keys.get(k) else { continue };
        match map.get_mut(key.as_str()) {
            Some(d) => *d = Dynamic::from_float(v),
            None => {
                map.insert(key.as_str().into(), Dynamic::from_float(v));
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
