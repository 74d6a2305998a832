//! Parameter changes that come from the control API rather than the config
//! file. They go through the file's own checks (each value is written into
//! a `[strategy]` fragment and validated by [`Config::from_toml`], so a bad
//! value is refused with the same message an edit of the file would get),
//! then through the API's own bounds (`[control] param_bounds`), all or
//! nothing, and are applied by the same [`Watching::apply`] a file edit
//! uses: published to the script watcher and the hot thread, journaled in
//! a live run with who made them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{ParamChange, ParamsEvent, Watching};
use crate::config::Config;
use crate::hot::strategy::StrategyParams;
use crate::script::Params;

/// One API request: the keys given change, the others keep their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamsEdit {
    /// `[strategy.params]` keys; `None` removes the key.
    pub params: BTreeMap<String, Option<f64>>,
    pub target_spread_pct: Option<f64>,
    /// A decimal as the config file takes it (`"0.002"`).
    pub min_order_size: Option<String>,
}

/// Why an edit was refused (nothing changed).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EditRefused {
    /// The key at fault: `params.gamma`, `target_spread_pct`, ...
    pub key: String,
    pub message: String,
}

/// The running values, as `GET /api/params` shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub params: Params,
    pub native: StrategyParams,
}

/// A handle on the session's parameter watcher.
#[derive(Clone)]
pub struct ParamsEditor(Arc<Mutex<Watching>>);

impl ParamsEditor {
    pub(super) fn new(w: Arc<Mutex<Watching>>) -> Self {
        Self(w)
    }

    pub fn running(&self) -> Running {
        let w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (params, native) = w.running();
        Running { params: params.clone(), native }
    }

    /// Checks `edit` against the config file's rules and `bounds`, then
    /// applies it as `who`'s change. Returns what changed and the notes
    /// (a journal that could not be written, ...).
    pub fn edit(
        &self,
        edit: &ParamsEdit,
        bounds: &BTreeMap<String, (f64, f64)>,
        who: &str,
    ) -> Result<(Vec<ParamChange>, Vec<String>), EditRefused> {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (params, native) = {
            let (p, n) = w.running();
            checked(p, n, edit, bounds)?
        };
        let mut events = Vec::new();
        let changes = w.apply(&params, native, who, &mut events);
        let notes = events
            .into_iter()
            .filter_map(|e| match e {
                ParamsEvent::Note(n) | ParamsEvent::Refused(n) => Some(n),
                ParamsEvent::Applied(_) => None,
            })
            .collect();
        Ok((changes, notes))
    }
}

/// The values after `edit`, validated; `Err` names the first bad key.
pub fn checked(
    running: &Params,
    native: StrategyParams,
    edit: &ParamsEdit,
    bounds: &BTreeMap<String, (f64, f64)>,
) -> Result<(Params, StrategyParams), EditRefused> {
    let refuse = |key: String, message: String| EditRefused { key, message };
    for name in edit.params.keys() {
        // A key the file could not hold either (TOML bare keys).
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(refuse(
                format!("params.{name}"),
                format!("params: {name:?} is not a parameter name (letters, digits, _ and - only)"),
            ));
        }
    }
    let mut params = running.clone();
    for (name, v) in &edit.params {
        match v {
            Some(v) => {
                params.insert(name.clone(), *v);
            }
            None => {
                params.remove(name);
            }
        }
    }
    // The file's own checks, on the keys this edit sets.
    let mut fragment = String::from("[strategy]\n");
    if let Some(t) = edit.target_spread_pct {
        fragment.push_str(&format!("target_spread_pct = {}\n", toml_float(t)));
    }
    if let Some(m) = &edit.min_order_size {
        fragment.push_str(&format!("min_order_size = {}\n", toml::Value::String(m.clone())));
    }
    fragment.push_str("[strategy.params]\n");
    for (name, v) in edit.params.iter().filter_map(|(n, v)| v.map(|v| (n, v))) {
        fragment.push_str(&format!("{name} = {}\n", toml_float(v)));
    }
    let checked = Config::from_toml(&fragment, "the control API's request").map_err(|e| {
        let text = e.to_string();
        let key = match &e {
            crate::config::ConfigError::Invalid { key, .. } => key.trim_start_matches("strategy.").to_string(),
            _ => "params".into(),
        };
        refuse(key, text)
    })?;
    let mut out = native;
    if edit.target_spread_pct.is_some() {
        out.target_spread_pct = checked.hot.params.target_spread_pct;
    }
    if edit.min_order_size.is_some() {
        out.min_order_size = checked.hot.params.min_order_size;
    }
    // The API's own bounds.
    let mut given: Vec<(String, f64)> = edit.params.iter().filter_map(|(n, v)| v.map(|v| (n.clone(), v))).collect();
    if let Some(t) = edit.target_spread_pct {
        given.push(("target_spread_pct".into(), t));
    }
    for (name, v) in given {
        if let Some(&(lo, hi)) = bounds.get(&name) {
            if !(lo..=hi).contains(&v) {
                let key = if name == "target_spread_pct" { name.clone() } else { format!("params.{name}") };
                return Err(refuse(
                    key.clone(),
                    format!("{key}: {v} is outside its bounds [{lo}, {hi}] ([control] param_bounds); nothing changed"),
                ));
            }
        }
    }
    Ok((params, out))
}

/// A float as TOML writes it (`2` would be an integer there, which the
/// file's checks take too, but `inf`/`nan` must stay visible as such).
fn toml_float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::fixed::Qty;

    fn native() -> StrategyParams {
        Config::default().hot.params
    }

    #[test]
    fn valid_edits_apply_all_and_bad_ones_name_the_key_and_change_nothing() {
        let running = Params::from_iter([("gamma".into(), 1.5), ("k".into(), 2.0)]);
        let bounds = BTreeMap::from([("gamma".to_string(), (0.1, 5.0))]);
        let edit = ParamsEdit {
            params: BTreeMap::from([("gamma".into(), Some(2.0)), ("k".into(), None), ("new".into(), Some(0.25))]),
            target_spread_pct: Some(0.2),
            min_order_size: Some("0.002".into()),
        };
        let (p, n) = checked(&running, native(), &edit, &bounds).unwrap();
        assert_eq!(p, Params::from_iter([("gamma".into(), 2.0), ("new".into(), 0.25)]));
        assert_eq!(n.target_spread_pct, 0.2);
        assert_eq!(n.min_order_size, Qty(200_000));

        for (edit, key, says) in [
            (
                ParamsEdit { params: BTreeMap::from([("gamma".into(), Some(9.0))]), ..Default::default() },
                "params.gamma",
                "bounds",
            ),
            (ParamsEdit { target_spread_pct: Some(60.0), ..Default::default() }, "target_spread_pct", "from 0 to 50"),
            (ParamsEdit { min_order_size: Some("-1".into()), ..Default::default() }, "min_order_size", "sign"),
            (ParamsEdit { min_order_size: Some("0".into()), ..Default::default() }, "min_order_size", "above 0"),
            (
                ParamsEdit { params: BTreeMap::from([("a b".into(), Some(1.0))]), ..Default::default() },
                "params.a b",
                "not a parameter name",
            ),
        ] {
            let e = checked(&running, native(), &edit, &bounds).unwrap_err();
            assert_eq!(e.key, key, "{e:?}");
            assert!(e.message.contains(says), "{e:?}");
        }
    }
}
