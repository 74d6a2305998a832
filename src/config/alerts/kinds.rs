//! What an alert can be about, and the sets of kinds a target takes
//! (`on = [...]`): the vocabulary of `[alerts]`, which both its settings
//! and the control plane's watch speak.

/// What an alert is about. [`AlertKind::name`] is the `kind` sent in the
/// generic JSON body; [`AlertKind::trigger`] the `on = [...]` name that
/// turns it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    /// The exchange side stopped trading (kill switch, ban, credentials).
    Kill,
    /// The session ended.
    Stop,
    /// The feed has been down longer than `disconnect_after_s`.
    Disconnect,
    /// The feed is back after a [`AlertKind::Disconnect`] alert (turned on
    /// by `"disconnect"`).
    Reconnect,
    /// `resync_storm_count` resyncs within `resync_storm_window_s`.
    ResyncStorm,
    /// The strategy script was reverted to its previous version.
    ScriptReverted,
    /// The AI advisor reached its daily budget or its provider's quota.
    AiBudget,
    /// |position| reached `position_near_pct` of `max_position`.
    PositionNearLimit,
}

impl AlertKind {
    /// Every kind, in [`AlertKind::index`] order.
    pub const ALL: [AlertKind; 8] = [
        AlertKind::Kill,
        AlertKind::Stop,
        AlertKind::Disconnect,
        AlertKind::Reconnect,
        AlertKind::ResyncStorm,
        AlertKind::ScriptReverted,
        AlertKind::AiBudget,
        AlertKind::PositionNearLimit,
    ];

    /// The names `on = [...]` accepts.
    pub const TRIGGERS: [&'static str; 7] =
        ["kill", "stop", "disconnect", "resync_storm", "script_reverted", "ai_budget", "position_near_limit"];

    /// `kill`, `stop`, `disconnect`, `reconnect`, `resync_storm`,
    /// `script_reverted`, `ai_budget`, `position_near_limit`.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Kill => "kill",
            AlertKind::Stop => "stop",
            AlertKind::Disconnect => "disconnect",
            AlertKind::Reconnect => "reconnect",
            AlertKind::ResyncStorm => "resync_storm",
            AlertKind::ScriptReverted => "script_reverted",
            AlertKind::AiBudget => "ai_budget",
            AlertKind::PositionNearLimit => "position_near_limit",
        }
    }

    /// The `on` name that turns this kind on (a reconnect follows its
    /// disconnect).
    pub fn trigger(self) -> &'static str {
        match self {
            AlertKind::Reconnect => "disconnect",
            k => k.name(),
        }
    }

    /// Position in [`AlertKind::ALL`] (for per-kind tables).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The set of kinds a target takes (`on = [...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triggers(u16);

impl Triggers {
    /// Every trigger (the default).
    pub const ALL: Triggers = Triggers((1 << AlertKind::ALL.len()) - 1);
    pub const NONE: Triggers = Triggers(0);

    /// The kinds one `on` name turns on (`None`: not a trigger name).
    pub fn parse(name: &str) -> Option<Triggers> {
        let hits = AlertKind::ALL.iter().filter(|k| k.trigger() == name).fold(0, |m, k| m | 1 << k.index());
        (hits != 0).then_some(Triggers(hits))
    }

    pub fn with(self, other: Triggers) -> Triggers {
        Triggers(self.0 | other.0)
    }

    pub fn contains(self, kind: AlertKind) -> bool {
        self.0 & 1 << kind.index() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The `on` names, in [`AlertKind::TRIGGERS`] order.
    pub fn names(self) -> Vec<&'static str> {
        AlertKind::TRIGGERS.iter().copied().filter(|t| Triggers::parse(t).is_some_and(|k| self.0 & k.0 != 0)).collect()
    }
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers::ALL
    }
}
