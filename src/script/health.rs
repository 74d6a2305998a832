//! Failures a quant can see: how a strategy script's calls went, kept
//! without cost on the hot path and shown off it.
//!
//! * [`ErrorTable`]: up to [`ERROR_SLOTS`] distinct runtime errors keyed by
//!   place and kind (`line`, `col`, [`ErrorKind`]), each with its count. A
//!   new key is formatted once ([`Health::messages`]); a known one only
//!   counts; the 17th distinct error counts in `errors_other`. Nothing is
//!   allocated per call: the table is a fixed array and the messages' `Vec`
//!   is allocated when the strategy is built.
//! * [`ScriptEvent`]: a fixed-size, `Copy` record the hot thread pushes to a
//!   ring for each error, wrong-shaped output, revert and reload; a side
//!   thread ([`Logger`]) turns them into rate-limited log lines.
//! * [`ScriptView`]: a borrowed look at a script strategy (read off the hot
//!   path: at the end of a run, or every status period) that builds the
//!   `report.json` `script` section ([`ScriptReport`]) and the dashboard's
//!   fixed-size [`ScriptStatus`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rhai::{EvalAltResult, Position};
use serde::{Deserialize, Serialize};

use crate::ring::{ring, Consumer, Producer};
use crate::script::{BadOutput, NotCompiled, ScriptError, ScriptLine, ScriptStats};

/// Distinct errors kept with their message; more count in `errors_other`.
pub const ERROR_SLOTS: usize = 16;

/// Calls a run must make before "never quoted" fails it (exit 9).
pub const NEVER_QUOTED_MIN_CALLS: u64 = 100;

/// What kind of runtime error a script raised (part of an error's key, so
/// an operation-limit error and a type error on the same line count apart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// `throw`, or anything not listed below.
    #[default]
    Runtime,
    /// Integer overflow, division by zero.
    Arithmetic,
    /// `[script] max_operations` reached.
    TooManyOperations,
    /// `[script] max_call_levels` reached.
    StackOverflow,
    /// A string, array or map over its `[script]` cap.
    DataTooLarge,
    /// Too many variables in scope.
    TooManyVariables,
    FunctionNotFound,
    VariableNotFound,
    /// A getter or property that does not exist (`m.nope`).
    Property,
    /// A value of the wrong type.
    TypeMismatch,
    /// An index out of range, or indexing what cannot be indexed.
    Index,
}

impl ErrorKind {
    /// The kind of `e` (inside the `quote(m)` call Rhai wraps it in).
    pub fn of(e: &EvalAltResult) -> Self {
        use EvalAltResult as E;
        match innermost(e) {
            E::ErrorArithmetic(..) => Self::Arithmetic,
            E::ErrorTooManyOperations(..) | E::ErrorTerminated(..) => Self::TooManyOperations,
            E::ErrorStackOverflow(..) => Self::StackOverflow,
            E::ErrorDataTooLarge(..) => Self::DataTooLarge,
            E::ErrorTooManyVariables(..) => Self::TooManyVariables,
            E::ErrorFunctionNotFound(..) => Self::FunctionNotFound,
            E::ErrorVariableNotFound(..) => Self::VariableNotFound,
            E::ErrorDotExpr(..) | E::ErrorPropertyNotFound(..) => Self::Property,
            E::ErrorMismatchDataType(..) | E::ErrorMismatchOutputType(..) => Self::TypeMismatch,
            E::ErrorIndexingType(..) | E::ErrorArrayBounds(..) | E::ErrorStringBounds(..) => Self::Index,
            _ => Self::Runtime,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Runtime => "runtime",
            Self::Arithmetic => "arithmetic",
            Self::TooManyOperations => "too_many_operations",
            Self::StackOverflow => "call_stack",
            Self::DataTooLarge => "data_too_large",
            Self::TooManyVariables => "too_many_variables",
            Self::FunctionNotFound => "function_not_found",
            Self::VariableNotFound => "variable_not_found",
            Self::Property => "property",
            Self::TypeMismatch => "type_mismatch",
            Self::Index => "index",
        }
    }

    /// A sandbox cap (operations, call depth, data size, variables): Rhai
    /// reports these at the outermost call, so their place is looked up
    /// ([`crate::script::locate`]).
    pub fn is_resource_limit(self) -> bool {
        matches!(self, Self::TooManyOperations | Self::StackOverflow | Self::DataTooLarge | Self::TooManyVariables)
    }
}

/// The error inside the `ErrorInFunctionCall` wrappers Rhai adds per call.
pub fn innermost(e: &EvalAltResult) -> &EvalAltResult {
    let mut inner = e;
    while let EvalAltResult::ErrorInFunctionCall(_, _, next, _) = inner {
        inner = next;
    }
    inner
}

/// One distinct error and how often it happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCount {
    pub line: u32,
    pub col: u32,
    pub kind: ErrorKind,
    pub count: u64,
}

/// Up to [`ERROR_SLOTS`] distinct errors in the order first seen. `Copy`
/// and fixed-size, so [`ScriptStats`] stays a plain value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorTable {
    slots: [ErrorCount; ERROR_SLOTS],
    len: u8,
}

/// Where [`ErrorTable::record`] put an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A key seen before, in this slot.
    Known(usize),
    /// A new key, now in this slot: format its message.
    New(usize),
    /// A new key with the table full: counted in `errors_other`.
    Other,
}

impl ErrorTable {
    /// Counts one error at (`line`, `col`) of `kind`. A scan of at most 16
    /// slots; no allocation.
    #[inline]
    pub fn record(&mut self, line: u32, col: u32, kind: ErrorKind) -> Recorded {
        let n = self.len as usize;
        for (i, s) in self.slots[..n].iter_mut().enumerate() {
            if s.line == line && s.col == col && s.kind == kind {
                s.count += 1;
                return Recorded::Known(i);
            }
        }
        if n == ERROR_SLOTS {
            return Recorded::Other;
        }
        self.slots[n] = ErrorCount { line, col, kind, count: 1 };
        self.len += 1;
        Recorded::New(n)
    }

    /// The distinct errors, in the order first seen.
    pub fn entries(&self) -> &[ErrorCount] {
        &self.slots[..self.len as usize]
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What a [`ScriptEvent`] tells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A runtime error (the quote was pulled).
    #[default]
    Error,
    /// An output of the wrong shape (the quote was pulled).
    BadOutput,
    /// A failing version was replaced by the one before it.
    Revert,
    /// A call over `[script] max_call_us`.
    OverBudget,
    /// A new version was swapped in.
    Reload,
    /// Too many calls over budget in the window: reverted (`code` is the
    /// hash of the version now running) or, with none, pulled (`code` 0).
    BudgetTrip,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Error,
        EventKind::BadOutput,
        EventKind::Revert,
        EventKind::OverBudget,
        EventKind::Reload,
        EventKind::BudgetTrip,
    ];

    /// Plural noun for summary lines.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Error => "errors",
            Self::BadOutput => "outputs of the wrong shape",
            Self::Revert => "reverts",
            Self::OverBudget => "calls over the time budget",
            Self::Reload => "reloads",
            Self::BudgetTrip => "time-budget reverts or pulls",
        }
    }
}

/// One thing that happened to the script, as the hot thread hands it to
/// the log: fixed size and `Copy` (the ring is allocated up front).
#[derive(Debug, Clone, Copy)]
pub struct ScriptEvent {
    pub kind: EventKind,
    /// Error place (0 when none).
    pub line: u32,
    pub col: u32,
    /// The script's content hash (fnv1a) when it happened.
    pub hash: u64,
    /// Bad-output kind code (see [`bad_output_name`]); over-budget call ns.
    pub code: u64,
    /// The error's message (errors, reverts), else empty. Copied from the
    /// message formatted when the error was first seen: never formatted here.
    pub text: ScriptLine,
}

/// A ring for [`ScriptEvent`]s (drain it with a [`Logger`] on a side thread).
pub fn event_ring() -> (Producer<ScriptEvent>, Consumer<ScriptEvent>) {
    ring(512)
}

/// Name of a bad-output kind code carried by [`ScriptEvent::code`]
/// ([`BadOutput::index`]).
pub fn bad_output_name(code: u64) -> &'static str {
    BadOutput::ALL.get(code as usize).map_or("not_a_quote", |k| k.as_str())
}

/// `bad_outputs_by_kind` for the report: [`BadOutput::as_str`] names, kinds
/// never seen left out.
pub fn bad_outputs_by_kind(stats: &ScriptStats) -> BTreeMap<String, u64> {
    BadOutput::ALL
        .iter()
        .zip(stats.bad_by_kind)
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.as_str().to_string(), n))
        .collect()
}

/// Over-budget counters for the report: (`over_budget`, `budget_reverts`,
/// `budget_pulls`).
///
/// Calls over budget, and the budget's reverts and pulls.
pub fn budget_counts(stats: &ScriptStats) -> (u64, u64, u64) {
    (stats.over_budget, stats.budget_reverts, stats.budget_pulls)
}

/// The script strategy's failure bookkeeping beside its [`ScriptStats`]:
/// the messages of the error table's keys, the event ring, and the place
/// of resource-limit errors found per version.
pub struct Health {
    /// Message of each error-table slot (index = slot), formatted once.
    messages: Vec<String>,
    events: Option<Producer<ScriptEvent>>,
    /// The slot of the last error (for the dashboard).
    last: Option<usize>,
    /// Where each resource-limit kind of error was found to happen in the
    /// running version ([`crate::script::locate`]); cleared on a swap.
    located: [Option<Position>; 4],
    locator: crate::script::locate::Locator,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

fn limit_index(kind: ErrorKind) -> Option<usize> {
    match kind {
        ErrorKind::TooManyOperations => Some(0),
        ErrorKind::StackOverflow => Some(1),
        ErrorKind::DataTooLarge => Some(2),
        ErrorKind::TooManyVariables => Some(3),
        _ => None,
    }
}

impl Health {
    pub fn new() -> Self {
        Self {
            messages: Vec::with_capacity(ERROR_SLOTS),
            events: None,
            last: None,
            located: [None; 4],
            locator: Default::default(),
        }
    }

    /// The strategy's `[strategy.params]`, for reruns that look up where a
    /// resource-limit error happened (without them, defaults apply).
    pub fn set_params(&mut self, params: &crate::script::Params) {
        self.locator = crate::script::locate::Locator::new(params.clone());
    }

    /// Where the resource-limit error `e` that `quote(m)` raised happened:
    /// looked up once per version and kind (a rerun, see
    /// [`crate::script::locate`]), then reused. `None` for other errors.
    pub fn locate(
        &mut self,
        e: &EvalAltResult,
        engine: &rhai::Engine,
        script: &crate::script::CompiledScript,
        scope: &rhai::Scope<'static>,
        m: crate::script::MarketState,
    ) -> Option<Position> {
        let kind = ErrorKind::of(e);
        let i = limit_index(kind)?;
        if self.located[i].is_none() {
            self.located[i] = Some(self.locator.place(engine, script, scope, m, kind).unwrap_or(Position::NONE));
        }
        self.located[i].filter(|p| !p.is_none())
    }

    /// Where the hot thread sends its [`ScriptEvent`]s.
    pub fn attach_events(&mut self, events: Producer<ScriptEvent>) {
        self.events = Some(events);
    }

    /// The messages of the error table's slots.
    pub fn messages(&self) -> &[String] {
        &self.messages
    }

    /// The last error: its slot in the table.
    pub fn last_slot(&self) -> Option<usize> {
        self.last
    }

    /// A new version runs: resource-limit places are looked up anew.
    pub fn on_version(&mut self) {
        self.located = [None; 4];
    }

    /// Counts a runtime error `e` of the script `file` (hash `hash`), at
    /// `pos` when its place was looked up. Formats only a key never seen.
    pub fn on_error(
        &mut self,
        stats: &mut ScriptStats,
        file: &str,
        hash: u64,
        e: &EvalAltResult,
        pos: Option<Position>,
    ) -> Option<ScriptError> {
        let kind = ErrorKind::of(e);
        let inner = innermost(e);
        let at = pos.unwrap_or_else(|| inner.position());
        let (line, col) = (at.line().unwrap_or(0) as u32, at.position().unwrap_or(0) as u32);
        let mut first = None;
        let slot = match stats.error_table.record(line, col, kind) {
            Recorded::Known(i) => Some(i),
            Recorded::New(i) => {
                let err = ScriptError::runtime_at(file, e, pos);
                self.messages.push(err.to_string());
                first = Some(err);
                Some(i)
            }
            Recorded::Other => {
                stats.errors_other += 1;
                None
            }
        };
        self.last = slot.or(self.last);
        if let Some(tx) = &self.events {
            let text = slot.and_then(|i| self.messages.get(i)).map_or("", |s| s.as_str());
            tx.push(ScriptEvent {
                kind: EventKind::Error,
                line,
                col,
                hash,
                code: kind as u64,
                text: ScriptLine::new(text),
            });
        }
        first
    }

    /// [`Self::on_error`] for a fault of the compiled form: Rhai's error
    /// (and its message) is built only for a key never seen.
    pub fn on_fault(
        &mut self,
        stats: &mut ScriptStats,
        file: &str,
        hash: u64,
        fault: &crate::script::Fault,
    ) -> Option<ScriptError> {
        // Every fault but an internal one is Rhai's arithmetic error; the
        // key is looked up with an empty message (no allocation).
        let p = fault.position();
        let (cheap, kind) = if fault.is_arithmetic() {
            (EvalAltResult::ErrorArithmetic(String::new(), p), ErrorKind::Arithmetic)
        } else {
            (EvalAltResult::ErrorRuntime(rhai::Dynamic::UNIT, p), ErrorKind::Runtime)
        };
        let key = (p.line().unwrap_or(0) as u32, p.position().unwrap_or(0) as u32, kind);
        let known = stats.error_table.entries().iter().any(|s| (s.line, s.col, s.kind) == key);
        if known || stats.error_table.len() == ERROR_SLOTS {
            self.on_error(stats, file, hash, &cheap, None)
        } else {
            self.on_error(stats, file, hash, &fault.to_rhai(), None)
        }
    }

    /// Counts nothing (the caller does); tells the log.
    pub fn on_event(&self, kind: EventKind, hash: u64, code: u64, text: &str) {
        if let Some(tx) = &self.events {
            tx.push(ScriptEvent { kind, line: 0, col: 0, hash, code, text: ScriptLine::new(text) });
        }
    }
}

/// The script's view of `strategy` when it runs a script
/// ([`Strategy::as_any`](crate::hot::strategy::Strategy::as_any)): `None`
/// for the native strategy and any other kind.
pub fn view_of<S: crate::hot::strategy::Strategy + ?Sized>(strategy: &S) -> Option<ScriptView<'_>> {
    strategy.as_any()?.downcast_ref::<crate::script::ScriptStrategy>().map(|s| s.view())
}

/// A borrowed look at a running script strategy, taken off the hot path.
#[derive(Debug, Clone, Copy)]
pub struct ScriptView<'a> {
    pub path: &'a Path,
    pub hash: u64,
    /// Calls run the compiled fast form.
    pub compiled: bool,
    /// Why not, when they do not.
    pub not_compiled: Option<&'a NotCompiled>,
    pub stats: ScriptStats,
    /// Messages of `stats.error_table`'s slots.
    pub messages: &'a [String],
    pub last_slot: Option<usize>,
}

/// `report.json` `script`: how the strategy script's calls went.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScriptReport {
    pub file: String,
    /// fnv1a of the running version, 16 hex digits.
    pub hash: String,
    pub compiled: bool,
    /// Why the script runs interpreted (`null` when compiled).
    pub not_compiled_reason: Option<String>,
    pub calls: u64,
    pub errors: u64,
    /// Distinct errors, most frequent first (at most 16; the rest in
    /// `errors_other`).
    pub errors_by_message: Vec<ErrorReport>,
    pub errors_other: u64,
    pub bad_outputs: u64,
    pub bad_outputs_by_kind: BTreeMap<String, u64>,
    pub reverts: u64,
    pub reloads: u64,
    pub over_budget: u64,
    pub budget_reverts: u64,
    pub budget_pulls: u64,
    /// Calls that quoted at least one side.
    pub quoted: u64,
    /// At least [`NEVER_QUOTED_MIN_CALLS`] calls and none quoted a side.
    pub never_quoted: bool,
}

/// One distinct error in [`ScriptReport::errors_by_message`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorReport {
    /// `file:line:col: message`.
    pub message: String,
    pub line: u32,
    pub col: u32,
    pub kind: String,
    pub count: u64,
}

/// Fixed-size, `Copy` script state for the dashboard (in the hot thread's
/// status snapshot): nothing here is formatted on the hot thread.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScriptStatus {
    /// A script runs (false: the native strategy).
    pub active: bool,
    pub hash: u64,
    pub compiled: bool,
    pub calls: u64,
    pub errors: u64,
    pub bad_outputs: u64,
    pub reverts: u64,
    /// The last error, `file:line:col: message` (cut to 120 bytes).
    pub last_error: Option<ScriptLineCopy>,
}

/// [`ScriptLine`] with `PartialEq` (for [`ScriptStatus`]).
#[derive(Debug, Clone, Copy)]
pub struct ScriptLineCopy(pub ScriptLine);

impl PartialEq for ScriptLineCopy {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl ScriptLineCopy {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl ScriptView<'_> {
    /// `report.json` `script`.
    pub fn report(&self) -> ScriptReport {
        let s = &self.stats;
        let mut errors: Vec<ErrorReport> = s
            .error_table
            .entries()
            .iter()
            .enumerate()
            .map(|(i, e)| ErrorReport {
                message: self.messages.get(i).cloned().unwrap_or_default(),
                line: e.line,
                col: e.col,
                kind: e.kind.as_str().to_string(),
                count: e.count,
            })
            .collect();
        errors.sort_by_key(|e| std::cmp::Reverse(e.count));
        let (over_budget, budget_reverts, budget_pulls) = budget_counts(s);
        ScriptReport {
            file: self.path.display().to_string(),
            hash: format!("{:016x}", self.hash),
            compiled: self.compiled,
            not_compiled_reason: if self.compiled { None } else { self.not_compiled.map(|n| n.to_string()) },
            calls: s.calls,
            errors: s.errors,
            errors_by_message: errors,
            errors_other: s.errors_other,
            bad_outputs: s.bad_outputs,
            bad_outputs_by_kind: bad_outputs_by_kind(s),
            reverts: s.reverts,
            reloads: s.reloads,
            over_budget,
            budget_reverts,
            budget_pulls,
            quoted: s.quoted,
            never_quoted: s.never_quoted(),
        }
    }

    /// The dashboard's fixed-size copy.
    pub fn status(&self) -> ScriptStatus {
        let s = &self.stats;
        ScriptStatus {
            active: true,
            hash: self.hash,
            compiled: self.compiled,
            calls: s.calls,
            errors: s.errors,
            bad_outputs: s.bad_outputs,
            reverts: s.reverts,
            last_error: self.last_slot.and_then(|i| self.messages.get(i)).map(|m| ScriptLineCopy(ScriptLine::new(m))),
        }
    }
}

impl ScriptReport {
    /// One line for a run's summary: `script: FILE (fnv1a 1a2b3c4d,
    /// compiled): 1200 calls, 1200 errors, ...; first: file:3:9: message`.
    pub fn summary(&self) -> String {
        let file = self.file.rsplit('/').next().unwrap_or_default();
        let mut out = format!(
            "script: {file} (fnv1a {}, {}): {} calls, {} quoted a side, {} errors, {} outputs of the wrong shape, {} reverts, \
             {} reloads",
            &self.hash[..self.hash.len().min(8)],
            if self.compiled { "compiled" } else { "interpreted" },
            self.calls,
            self.quoted,
            self.errors,
            self.bad_outputs,
            self.reverts,
            self.reloads
        );
        if self.over_budget > 0 {
            out.push_str(&format!(", {} calls over the time budget", self.over_budget));
        }
        if !self.bad_outputs_by_kind.is_empty() {
            let kinds: Vec<String> = self.bad_outputs_by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
            out.push_str(&format!(" ({})", kinds.join(", ")));
        }
        if let Some(e) = self.errors_by_message.first() {
            out.push_str(&format!("; most frequent error ({}x): {}", e.count, e.message));
        }
        if self.never_quoted {
            out.push_str("; never quoted");
        }
        out
    }
}

/// Time between summary lines of one kind.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Turns [`ScriptEvent`]s into log lines, rate-limited per kind: the first
/// of each kind at once (with file:line:col and message), then at most one
/// summary line per [`LOG_EVERY`] per kind. Runs on a side thread.
pub struct Logger {
    file: String,
    kinds: [KindLog; EventKind::ALL.len()],
}

#[derive(Default, Clone)]
struct KindLog {
    seen: bool,
    /// Events since the last line, and the last of them.
    pending: u64,
    last: Option<ScriptEvent>,
    last_line_at: Option<Instant>,
}

impl Logger {
    /// `file`: the script's path as messages name it.
    pub fn new(file: &str) -> Self {
        Self { file: file.to_string(), kinds: Default::default() }
    }

    fn describe(&self, e: &ScriptEvent) -> String {
        let text = e.text.as_str();
        match e.kind {
            EventKind::Error => format!("error, the quote was pulled: {text}"),
            EventKind::BadOutput => format!(
                "{}: an output of the wrong shape ({}), the quote was pulled",
                self.file,
                bad_output_name(e.code)
            ),
            EventKind::Revert => format!(
                "{} reverted to the previous version (fnv1a {:08x}) after it kept failing{}",
                self.file,
                (e.hash >> 32) as u32,
                if text.is_empty() { String::new() } else { format!("; last error: {text}") }
            ),
            EventKind::OverBudget => {
                format!("{}: a call took {} us, over [script] max_call_us", self.file, e.code / 1000)
            }
            EventKind::Reload => format!("{} reloaded, now running fnv1a {:08x}", self.file, (e.hash >> 32) as u32),
            EventKind::BudgetTrip if e.code != 0 => format!(
                "{} (fnv1a {:08x}) kept going over its time budget ([script] max_call_us, over_budget_calls, \
                 over_budget_window_s): reverted to the previous version (fnv1a {:08x})",
                self.file,
                (e.hash >> 32) as u32,
                (e.code >> 32) as u32
            ),
            EventKind::BudgetTrip => format!(
                "{} (fnv1a {:08x}) kept going over its time budget ([script] max_call_us, over_budget_calls, \
                 over_budget_window_s) and there is no earlier version: quotes are pulled until you save a \
                 faster one (or press r on the dashboard)",
                self.file,
                (e.hash >> 32) as u32
            ),
        }
    }

    /// The line to log for `e` now, if any (the first of its kind).
    pub fn on_event(&mut self, e: ScriptEvent, now: Instant) -> Option<String> {
        let line = if self.kinds[e.kind as usize].seen { None } else { Some(format!("script: {}", self.describe(&e))) };
        let k = &mut self.kinds[e.kind as usize];
        if line.is_some() {
            k.seen = true;
            k.last_line_at = Some(now);
        } else {
            k.pending += 1;
            k.last = Some(e);
        }
        line
    }

    /// Summary lines due at `now` (one per kind with events since its last
    /// line, at most one per [`LOG_EVERY`]); `all`: every pending one (end
    /// of run).
    pub fn due(&mut self, now: Instant, all: bool) -> Vec<String> {
        let mut out = Vec::new();
        for kind in EventKind::ALL {
            let k = &self.kinds[kind as usize];
            let ready = k.last_line_at.is_none_or(|t| now.duration_since(t) >= LOG_EVERY);
            if k.pending == 0 || !(ready || all) {
                continue;
            }
            let since = k.last_line_at.map_or(0, |t| now.duration_since(t).as_secs().max(1));
            let last = k.last.map(|e| self.describe(&e)).unwrap_or_default();
            let k = &mut self.kinds[kind as usize];
            out.push(format!("script: {} {} in the last {since} s, last: {last}", k.pending, kind.plural()));
            k.pending = 0;
            k.last_line_at = Some(now);
        }
        out
    }
}

/// Drains `events` on a thread of its own until `done` is set (then once
/// more), logging through `tracing` (target `mmbot::script`: stderr without
/// the dashboard, and mmbot.log).
pub fn spawn_logger(
    file: String,
    mut events: Consumer<ScriptEvent>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("mmbot-script-log".into()).spawn(move || {
        let mut log = Logger::new(&file);
        loop {
            let finished = done.load(std::sync::atomic::Ordering::Relaxed);
            let now = Instant::now();
            while let Some(e) = events.pop() {
                if let Some(line) = log.on_event(e, now) {
                    tracing::warn!(target: "mmbot::script", "{line}");
                }
            }
            for line in log.due(now, finished) {
                tracing::warn!(target: "mmbot::script", "{line}");
            }
            if finished {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_keeps_sixteen_keys_and_counts_the_rest_apart() {
        let mut t = ErrorTable::default();
        assert_eq!(t.record(3, 9, ErrorKind::Property), Recorded::New(0));
        assert_eq!(t.record(3, 9, ErrorKind::Property), Recorded::Known(0));
        // Same place, another kind: another key.
        assert_eq!(t.record(3, 9, ErrorKind::Arithmetic), Recorded::New(1));
        for l in 10..24 {
            assert!(matches!(t.record(l, 1, ErrorKind::Runtime), Recorded::New(_)));
        }
        assert_eq!(t.len(), ERROR_SLOTS);
        assert_eq!(t.record(99, 1, ErrorKind::Runtime), Recorded::Other);
        assert_eq!(t.record(3, 9, ErrorKind::Property), Recorded::Known(0));
        assert_eq!(t.entries()[0].count, 3);
    }

    fn event(kind: EventKind, text: &str) -> ScriptEvent {
        ScriptEvent { kind, line: 3, col: 9, hash: 0x1234_5678_0000_0000, code: 0, text: ScriptLine::new(text) }
    }

    #[test]
    fn the_log_says_the_first_at_once_then_one_summary_per_ten_seconds() {
        let mut log = Logger::new("s.rhai");
        let t0 = Instant::now();
        let first = log.on_event(event(EventKind::Error, "s.rhai:3:9: boom"), t0).unwrap();
        assert_eq!(first, "script: error, the quote was pulled: s.rhai:3:9: boom");
        for _ in 0..411 {
            assert!(log.on_event(event(EventKind::Error, "s.rhai:3:9: boom"), t0).is_none());
        }
        assert!(log.due(t0 + Duration::from_secs(5), false).is_empty());
        let lines = log.due(t0 + Duration::from_secs(10), false);
        assert_eq!(lines, ["script: 411 errors in the last 10 s, last: error, the quote was pulled: s.rhai:3:9: boom"]);
        assert!(log.due(t0 + Duration::from_secs(30), false).is_empty());
        // Another kind has its own first line.
        let bad = log.on_event(event(EventKind::BadOutput, ""), t0).unwrap();
        assert!(bad.contains("wrong shape (not_a_quote)"), "{bad}");
    }
}
