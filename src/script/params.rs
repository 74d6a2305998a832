//! Live parameters: `[strategy.params]` (and the native strategy's
//! `[strategy] target_spread_pct` / `min_order_size`) edited in the config
//! file apply while the bot runs (paper, demo, run --live).
//!
//! A watcher thread ([`watch_config`]) reads the config file every
//! [`reload::POLL`] and compares a content hash. On a change it validates
//! the whole file as a start-up would (`Config::from_toml`: every parameter
//! a finite number); an invalid file is reported once and nothing changes.
//! Otherwise it diffs the parameters ([`diff`]) and, when they changed:
//! * logs one line per key (`params: gamma 1.5 -> 2.0`), saying what
//!   happens to a key the script never reads (kept, unused) and to a
//!   removed key (`param("k", default)` returns its default again);
//! * journals the change in a live run (`params` table, who = "config file");
//! * publishes the new `[strategy.params]` on [`SharedParams`]: the script
//!   watcher ([`reload::watch`]) sees the new generation, builds an engine
//!   with the new values, recompiles and test-runs the script and hands it
//!   to the hot thread like any reload. A version carries its parameters
//!   (the fast form bakes them in at bind time; the interpreter reads them
//!   from the run's tag, [`ParamsTag`]), so the hot thread takes values and
//!   code together in one swap, without a lock. If the script file does not
//!   compile at that moment, the running version keeps its old values
//!   until the next good save (which compiles with the new ones);
//! * pushes the native settings through the hot thread's params ring
//!   (`SideInputs::params`, latest wins), which scripts also see as
//!   `m.target_spread_pct` / `m.min_order_size`.
//!
//! `max_position` is a risk limit (the guard's too): a change is reported
//! and applies at the next start. Other settings likewise.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rhai::NativeCallContext;

use crate::config::Config;
use crate::exec::journal::{record_params, ParamRow, RunId};
use crate::hot::strategy::StrategyParams;
use crate::ring::Producer;
use crate::script::{fnv1a, reload, Params};

pub mod edit;

/// The parameters a version of a script runs with, in the Rhai run's tag
/// (`GlobalRuntimeState::tag`): `param()` reads them from there.
#[derive(Debug, Clone)]
pub struct ParamsTag(pub Arc<Params>);

/// `param(name)` as the current run sees it (`None`: not set, or no
/// parameters in the tag).
#[inline]
pub fn lookup(ctx: &NativeCallContext, name: &str) -> Option<f64> {
    let tag = ctx.tag()?;
    let p = tag.read_lock::<ParamsTag>()?;
    p.0.get(name).copied()
}

/// The parameters an engine's runs start with (its default tag).
pub fn of_engine(engine: &rhai::Engine) -> Option<Arc<Params>> {
    engine.default_tag().read_lock::<ParamsTag>().map(|p| p.0.clone())
}

/// `[strategy.params]` as the watchers share them (never read on the hot
/// thread): the values and a generation that grows with each change.
#[derive(Debug, Clone)]
pub struct SharedParams(Arc<Board>);

#[derive(Debug)]
struct Board {
    generation: AtomicU64,
    values: Mutex<Arc<Params>>,
}

impl SharedParams {
    pub fn new(params: Params) -> Self {
        Self(Arc::new(Board { generation: AtomicU64::new(0), values: Mutex::new(Arc::new(params)) }))
    }

    /// Grows by one with each change.
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// The values now, and their generation.
    pub fn current(&self) -> (u64, Arc<Params>) {
        let v = self.0.values.lock().unwrap_or_else(|p| p.into_inner());
        (self.generation(), v.clone())
    }

    /// Publishes new values.
    pub fn set(&self, params: Params) {
        let mut v = self.0.values.lock().unwrap_or_else(|p| p.into_inner());
        *v = Arc::new(params);
        self.0.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl From<Params> for SharedParams {
    fn from(p: Params) -> Self {
        Self::new(p)
    }
}

/// One key that changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamChange {
    /// `gamma` for `[strategy.params]`, `strategy.target_spread_pct` for a
    /// native setting.
    pub name: String,
    /// `None`: added.
    pub old: Option<f64>,
    /// `None`: removed.
    pub new: Option<f64>,
    /// A `[strategy.params]` key the running script never names.
    pub unread: bool,
}

/// `2.0`, `0.15`, `1e-9`: a value as the log shows it.
fn show(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

impl std::fmt::Display for ParamChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.old, self.new) {
            (Some(a), Some(b)) => write!(f, "{} {} -> {}", self.name, show(a), show(b))?,
            (None, Some(b)) => write!(f, "{} (new) -> {}", self.name, show(b))?,
            (Some(a), None) => write!(
                f,
                "{} {} -> removed (param(\"{}\", default) returns its default now)",
                self.name,
                show(a),
                self.name
            )?,
            (None, None) => write!(f, "{} unchanged", self.name)?,
        }
        if self.unread {
            write!(f, " (the script does not read it: kept, unused)")?;
        }
        Ok(())
    }
}

impl ParamChange {
    fn row(&self) -> ParamRow {
        ParamRow { name: self.name.clone(), old: self.old, new: self.new }
    }
}

/// What changed from `old` to `new`, by key (added, removed, new value).
pub fn diff(old: &Params, new: &Params) -> Vec<ParamChange> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (old.get(k).copied(), new.get(k).copied());
            let same = match (a, b) {
                (Some(x), Some(y)) => x.to_bits() == y.to_bits(),
                (None, None) => true,
                _ => false,
            };
            (!same).then(|| ParamChange { name: k.clone(), old: a, new: b, unread: false })
        })
        .collect()
}

/// What the watcher reports (to the log).
#[derive(Debug, Clone, PartialEq)]
pub enum ParamsEvent {
    /// These changes apply now (each logs as `params: ...`).
    Applied(Vec<ParamChange>),
    /// The file changed but was not used; the running values stay.
    Refused(String),
    /// A change that does not apply while running (and why).
    Note(String),
}

/// What [`watch_config`] watches and where it sends changes.
pub struct ConfigWatch {
    /// The config file the run was started with (`None`: none; only the
    /// control API changes parameters).
    pub path: Option<PathBuf>,
    /// The configuration the run is using (its params are "before").
    pub running: Config,
    /// The script file, to tell keys it never names.
    pub script: Option<PathBuf>,
    /// Where `[strategy.params]` go (the script watcher reads them).
    pub shared: SharedParams,
    /// The hot thread's params ring (`SideInputs::params`).
    pub native: Option<Producer<StrategyParams>>,
    /// A live run's journal and run id: changes are journaled there.
    pub journal: Option<(PathBuf, RunId)>,
}

/// The watcher thread; stops when dropped.
pub struct ParamsWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    watching: Arc<Mutex<Watching>>,
}

impl ParamsWatcher {
    /// Where the control API's changes go ([`edit::ParamsEditor`]).
    pub fn editor(&self) -> edit::ParamsEditor {
        edit::ParamsEditor::new(self.watching.clone())
    }
}

impl Drop for ParamsWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Who a journaled change came from.
pub const FROM_CONFIG_FILE: &str = "config file";

/// Starts watching `w.path`; `report` receives every event.
pub fn watch_config(w: ConfigWatch, mut report: impl FnMut(ParamsEvent) + Send + 'static) -> ParamsWatcher {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let watching = Arc::new(Mutex::new(Watching::new(w)));
    let watcher = watching.clone();
    let thread = std::thread::Builder::new()
        .name("mmbot-params".into())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(reload::POLL);
                let events = watcher.lock().unwrap_or_else(|p| p.into_inner()).poll();
                for ev in events {
                    report(ev);
                }
            }
        })
        .expect("spawning the params thread");
    ParamsWatcher { stop, thread: Some(thread), watching }
}

/// Starts the watcher for a trading session, logging each event (stderr
/// without the dashboard, and mmbot.log) and handing each line to
/// `on_line` (the dashboard's last event). When the run's settings came
/// from no file (the built-in defaults) there is no file to watch, but the
/// watcher still takes the control API's changes.
pub fn watch_session(
    config: &Config,
    script: Option<PathBuf>,
    shared: SharedParams,
    native: Producer<StrategyParams>,
    journal: Option<(PathBuf, RunId)>,
    mut on_line: impl FnMut(String) + Send + 'static,
) -> ParamsWatcher {
    let path = config.source.clone();
    let w = ConfigWatch { path, running: config.clone(), script, shared, native: Some(native), journal };
    watch_config(w, move |ev| match ev {
        ParamsEvent::Applied(changes) => {
            for c in changes {
                let line = format!("params: {c}");
                tracing::info!(target: "mmbot::params", "{line}");
                on_line(line);
            }
        }
        ParamsEvent::Refused(why) => {
            tracing::warn!(target: "mmbot::params", "params: {why}");
            on_line(format!("params: {why}"));
        }
        ParamsEvent::Note(note) => tracing::info!(target: "mmbot::params", "params: {note}"),
    })
}

/// The watcher's state between polls (also driven directly by tests).
pub struct Watching {
    w: ConfigWatch,
    seen: Option<u64>,
    params: Params,
    native: StrategyParams,
    /// The file's other settings as the run started (to say they changed).
    others: Option<toml::Table>,
}

impl Watching {
    pub fn new(w: ConfigWatch) -> Self {
        let text = w.path.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
        let seen = text.as_deref().map(|t| fnv1a(t.as_bytes()));
        let others = text.as_deref().and_then(other_settings);
        let (params, native) = (w.running.params.clone(), w.running.hot.params);
        Self { w, seen, params, native, others }
    }

    /// Reads the file once; what changed since the last poll.
    pub fn poll(&mut self) -> Vec<ParamsEvent> {
        let Some(path) = &self.w.path else { return Vec::new() };
        let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
        let hash = fnv1a(text.as_bytes());
        if self.seen == Some(hash) {
            return Vec::new();
        }
        self.seen = Some(hash);
        let file = path.display().to_string();
        let new = match Config::from_toml(&text, &file) {
            Ok(c) => c,
            Err(e) => {
                return vec![ParamsEvent::Refused(format!(
                    "{file} changed but was not applied ({e}); the running parameters stay: fix the file and save again"
                ))]
            }
        };
        let mut events = Vec::new();
        let changes = self.apply(&new.params, new.hot.params, FROM_CONFIG_FILE, &mut events);
        if new.hot.params.max_position != self.w.running.hot.params.max_position {
            events.push(ParamsEvent::Note(format!(
                "{file}: strategy.max_position is a risk limit: the change applies at the next start (still {})",
                self.w.running.hot.params.max_position
            )));
        }
        let others = other_settings(&text);
        if others.is_some() && others != self.others {
            events.push(ParamsEvent::Note(format!(
                "{file}: settings outside [strategy.params], strategy.target_spread_pct and \
                 strategy.min_order_size changed: they apply at the next start"
            )));
            self.others = others;
        }
        if !changes.is_empty() {
            events.insert(0, ParamsEvent::Applied(changes));
        }
        events
    }

    /// The running `[strategy.params]` and native settings.
    pub fn running(&self) -> (&Params, StrategyParams) {
        (&self.params, self.native)
    }

    /// Makes `params` and `n`'s live settings (`target_spread_pct`,
    /// `min_order_size`) the running ones, already validated: publishes
    /// them, journals the change as `who`'s in a live run, and returns
    /// what changed (notes go to `events`).
    pub fn apply(
        &mut self,
        params: &Params,
        n: StrategyParams,
        who: &str,
        events: &mut Vec<ParamsEvent>,
    ) -> Vec<ParamChange> {
        let mut changes = diff(&self.params, params);
        if !changes.is_empty() {
            let source = self.w.script.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
            for c in changes.iter_mut() {
                c.unread = c.new.is_some() && source.as_deref().is_some_and(|s| !names(s, &c.name));
            }
            self.params = params.clone();
            self.w.shared.set(params.clone());
        }
        let mut native = self.native;
        for (name, old, new) in [
            ("strategy.target_spread_pct", self.native.target_spread_pct, n.target_spread_pct),
            ("strategy.min_order_size", self.native.min_order_size.to_f64(), n.min_order_size.to_f64()),
        ] {
            if old.to_bits() != new.to_bits() {
                changes.push(ParamChange { name: name.into(), old: Some(old), new: Some(new), unread: false });
            }
        }
        native.target_spread_pct = n.target_spread_pct;
        native.min_order_size = n.min_order_size;
        if native != self.native {
            self.native = native;
            if let Some(tx) = &self.w.native {
                tx.push_latest(native);
            }
        }
        if !changes.is_empty() {
            if let Some((path, run)) = &self.w.journal {
                let rows: Vec<ParamRow> = changes.iter().map(ParamChange::row).collect();
                if let Err(e) = record_params(path, *run, crate::feed::snapshot::wall_ns(), &rows, who) {
                    events.push(ParamsEvent::Note(format!(
                        "params: the change applies but could not be journaled in {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        changes
    }
}

/// Whether the script source names parameter `name` (as a string literal).
fn names(source: &str, name: &str) -> bool {
    source.contains(&format!("\"{name}\""))
}

/// The file's settings other than those that apply live.
fn other_settings(text: &str) -> Option<toml::Table> {
    let mut doc: toml::Table = toml::from_str(text).ok()?;
    if let Some(toml::Value::Table(st)) = doc.get_mut("strategy") {
        for k in ["params", "target_spread_pct", "min_order_size", "max_position"] {
            st.remove(k);
        }
    }
    Some(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::ring;

    #[test]
    fn a_change_says_old_and_new_and_what_happens_to_added_and_removed_keys() {
        let old = Params::from_iter([("a".into(), 1.5), ("gone".into(), 3.0), ("same".into(), 1.0)]);
        let new = Params::from_iter([("a".into(), 2.0), ("added".into(), 0.25), ("same".into(), 1.0)]);
        let lines: Vec<String> = diff(&old, &new).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lines,
            [
                "a 1.5 -> 2.0",
                "added (new) -> 0.25",
                "gone 3.0 -> removed (param(\"gone\", default) returns its default now)"
            ]
        );
        let c = ParamChange { name: "zz".into(), old: None, new: Some(1.0), unread: true };
        assert!(c.to_string().ends_with("(the script does not read it: kept, unused)"));
    }

    #[test]
    fn the_watcher_applies_valid_edits_and_refuses_invalid_ones() {
        let dir = std::env::temp_dir().join(format!("mmbot-params-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (path, script) = (dir.join("mmbot.toml"), dir.join("s.rhai"));
        std::fs::write(&script, "fn quote(m) { param(\"gamma\", 1.0); () }").unwrap();
        let first = "[strategy]\ntarget_spread_pct = 0.1\n[strategy.params]\ngamma = 1.5\n";
        std::fs::write(&path, first).unwrap();
        let running = Config::from_toml(first, "x").unwrap();
        let shared = SharedParams::new(running.params.clone());
        let (tx, mut rx) = ring::<StrategyParams>(4);
        let mut w = Watching::new(ConfigWatch {
            path: Some(path.clone()),
            running,
            script: Some(script),
            shared: shared.clone(),
            native: Some(tx),
            journal: None,
        });
        assert!(w.poll().is_empty());
        std::fs::write(&path, "[strategy]\ntarget_spread_pct = 0.2\n[strategy.params]\ngamma = 2\nzeta = 1\n").unwrap();
        let ev = w.poll();
        let ParamsEvent::Applied(changes) = &ev[0] else { panic!("{ev:?}") };
        let lines: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(lines[0], "gamma 1.5 -> 2.0");
        assert!(lines[1].starts_with("zeta (new) -> 1.0 (the script does not read it"), "{lines:?}");
        assert_eq!(lines[2], "strategy.target_spread_pct 0.1 -> 0.2");
        assert_eq!(shared.current().0, 1);
        assert_eq!(shared.current().1.get("gamma"), Some(&2.0));
        assert_eq!(rx.latest().map(|p| p.target_spread_pct), Some(0.2));
        std::fs::write(&path, "[strategy.params]\ngamma = nan\n").unwrap();
        let ev = w.poll();
        assert!(matches!(&ev[..], [ParamsEvent::Refused(m)] if m.contains("finite")), "{ev:?}");
        assert_eq!(shared.generation(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
