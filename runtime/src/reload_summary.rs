//! What a reload changed: the names added, removed and changed between two stores.

use std::fmt;

use crate::table::{KeyStore, Slot};

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

    pub(crate) fn between(old: &KeyStore, new: &KeyStore) -> Self {
        let old_by_name: std::collections::HashMap<&str, &Slot> =
            old.iter().map(|(_, s)| (&*s.identity.name, s)).collect();
        let mut summary = ReloadSummary::default();
        for (_, s) in new.iter() {
            let name = &*s.identity.name;
            match old_by_name.get(name) {
                None => summary.added.push(name.to_string()),
                Some(o) if !same((old, o), (new, s)) => summary.changed.push(name.to_string()),
                Some(_) => {}
            }
        }
        let new_names: std::collections::HashSet<&str> =
            new.iter().map(|(_, s)| &*s.identity.name).collect();
        summary.removed = old_by_name
            .keys()
            .filter(|n| !new_names.contains(*n))
            .map(|n| n.to_string())
            .collect();
        summary.added.sort();
        summary.removed.sort();
        summary.changed.sort();
        summary
    }
}

/// Whether a key is the same in two stores: same secret, scopes, expiry, addresses and rate.
fn same((old, a): (&KeyStore, &Slot), (new, b): (&KeyStore, &Slot)) -> bool {
    a.digest.ct_eq(&b.digest) && a.expires == b.expires && old.profile(a) == new.profile(b)
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
