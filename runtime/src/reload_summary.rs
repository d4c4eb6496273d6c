//! What a reload changed: the names added, removed and changed between two stores.

use std::fmt;

/// What a reload changed, by key name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Names that are new.
    pub added: Vec<String>,
    /// Names that are gone (revoked).
    pub removed: Vec<String>,
    /// Names whose key, scopes, expiry or addresses changed.
    pub changed: Vec<String>,
}

impl ReloadSummary {
    /// Whether the reload changed nothing.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "added [{}], removed [{}], changed [{}]",
            self.added.join(", "),
            self.removed.join(", "),
            self.changed.join(", ")
        )
    }
}
