//! The keys of the PostgreSQL table as this instance last read them: a source of every load, like
//! the environment and the keys file, kept up to date row by row by the listener.

use std::collections::{BTreeMap, HashSet};

use crate::entry::{EntryError, KeyEntry};
use crate::load::Loader;

/// One row as the table holds it now, or its deletion.
#[derive(Debug)]
pub(crate) enum RowChange {
    /// A row inserted or updated at `revision`: its entry when the key is live (not revoked),
    /// `None` once it is revoked. A row that does not parse keeps its error, which fails the
    /// load that meets it.
    Row {
        name: String,
        revision: i64,
        entry: Option<Result<KeyEntry, EntryError>>,
    },
    /// A row deleted at `revision` (or renamed away from `name`).
    Deleted { name: String, revision: i64 },
}

impl RowChange {
    /// The order changes apply in: by revision, and a deletion before a row of the same
    /// revision (a rename deletes the old name and writes the new one in one revision).
    fn order(&self) -> (i64, u8) {
        match self {
            RowChange::Deleted { revision, .. } => (*revision, 0),
            RowChange::Row { revision, .. } => (*revision, 1),
        }
    }
}

/// The live keys of the table, by name, and the revision of the table they reflect.
#[derive(Debug, Default)]
pub(crate) struct DatabaseKeys {
    /// The table's revision as of the last read: every change up to it is included.
    pub revision: i64,
    entries: BTreeMap<String, Result<KeyEntry, EntryError>>,
}

impl DatabaseKeys {
    /// The table read whole at `revision`.
    pub fn full(revision: i64, rows: Vec<RowChange>) -> Self {
        let mut keys = DatabaseKeys::default();
        keys.apply(revision, rows);
        keys
    }

    /// Applies the changes read since the last revision, in the order they were made, and
    /// notes `revision`, the table's revision at the read.
    pub fn apply(&mut self, revision: i64, mut changes: Vec<RowChange>) {
        changes.sort_by_key(RowChange::order);
        for change in changes {
            match change {
                RowChange::Row {
                    name,
                    entry: Some(entry),
                    ..
                } => {
                    self.entries.insert(name, entry);
                }
                RowChange::Row { name, .. } | RowChange::Deleted { name, .. } => {
                    self.entries.remove(&name);
                }
            }
        }
        self.revision = self.revision.max(revision);
    }

    /// Adds every key to a load, with its name checked as the other sources' are.
    pub fn load_into(&self, loader: &mut Loader) {
        for (name, entry) in &self.entries {
            loader.database_entry(name, entry.clone());
        }
    }

    /// The digests of the table's keys that load.
    pub fn digests(&self) -> HashSet<[u8; 32]> {
        self.entries
            .values()
            .filter_map(|entry| Some(*entry.as_ref().ok()?.digest.as_bytes()))
            .collect()
    }

    /// The names of the keys from the table.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::parse_entry;

    fn row(name: &str, revision: i64, live: bool) -> RowChange {
        RowChange::Row {
            name: name.into(),
            revision,
            entry: live.then(|| parse_entry("0123456789abcdef0123")),
        }
    }

    fn names(keys: &DatabaseKeys) -> Vec<&str> {
        keys.names().collect()
    }

    #[test]
    fn changes_apply_in_revision_order_whatever_order_they_come_in() {
        let mut keys = DatabaseKeys::full(2, vec![row("a", 1, true), row("b", 2, true)]);
        // `a` renamed to `c` at 4 (deleted and written in one revision), `b` revoked at 3,
        // `a` written again at 5.
        keys.apply(
            5,
            vec![
                row("a", 5, true),
                row("c", 4, true),
                row("b", 3, false),
                RowChange::Deleted {
                    name: "a".into(),
                    revision: 4,
                },
            ],
        );
        assert_eq!(names(&keys), ["a", "c"]);
        assert_eq!(keys.revision, 5);
        keys.apply(
            6,
            vec![RowChange::Deleted {
                name: "c".into(),
                revision: 6,
            }],
        );
        assert_eq!(names(&keys), ["a"]);
        // A read that saw nothing new never moves the revision back.
        keys.apply(3, Vec::new());
        assert_eq!(keys.revision, 6);
    }
}
