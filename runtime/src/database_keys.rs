//! The keys of the PostgreSQL table as this instance last read them: a source of every load, like
//! the environment and the keys file, kept up to date row by row by the listener.

use std::collections::BTreeMap;

use crate::entry::{EntryError, KeyEntry};
use crate::load::Loader;

/// The name a deletion records for `TRUNCATE` (the table's trigger writes it): every key is gone.
pub(crate) const EVERY_NAME: &str = "*";

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
    /// notes `revision`, the table's revision at the read. Returns the digests of the keys the
    /// changes took away or altered (revoked, deleted, narrowed or widened), to withdraw should
    /// the reload fail.
    pub fn apply(&mut self, revision: i64, mut changes: Vec<RowChange>) -> Vec<[u8; 32]> {
        changes.sort_by_key(RowChange::order);
        let mut withdrawn = Vec::new();
        for change in changes {
            let old = match change {
                RowChange::Deleted { name, .. } if name == EVERY_NAME => {
                    let all = std::mem::take(&mut self.entries);
                    withdrawn.extend(all.values().filter_map(digest));
                    continue;
                }
                RowChange::Row {
                    name,
                    entry: Some(entry),
                    ..
                } => {
                    let old = self.entries.insert(name.clone(), entry);
                    old.filter(|old| !same(old, &self.entries[&name]))
                }
                RowChange::Row { name, .. } | RowChange::Deleted { name, .. } => {
                    self.entries.remove(&name)
                }
            };
            withdrawn.extend(old.as_ref().and_then(digest));
        }
        self.revision = self.revision.max(revision);
        withdrawn
    }

    /// Takes `read`, the table read whole, in place of this copy. Returns the digests of the
    /// keys it took away or altered, as [`apply`](Self::apply) does.
    pub fn replace(&mut self, read: DatabaseKeys) -> Vec<[u8; 32]> {
        let withdrawn = self
            .entries
            .iter()
            .filter(|(name, old)| read.entries.get(*name).is_none_or(|new| !same(old, new)))
            .filter_map(|(_, old)| digest(old))
            .collect();
        *self = read;
        withdrawn
    }

    /// Adds every key to a load, with its name checked as the other sources' are.
    pub fn load_into(&self, loader: &mut Loader) {
        for (name, entry) in &self.entries {
            loader.database_entry(name, entry.clone());
        }
    }

    /// The names of the keys from the table.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

/// The digest of an entry that loads.
fn digest(entry: &Result<KeyEntry, EntryError>) -> Option<[u8; 32]> {
    Some(*entry.as_ref().ok()?.digest.as_bytes())
}

/// Whether two versions of a row grant the same: key, scopes, expiry, addresses and rate.
fn same(a: &Result<KeyEntry, EntryError>, b: &Result<KeyEntry, EntryError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            a.digest.as_bytes() == b.digest.as_bytes()
                && a.scopes == b.scopes
                && a.expires == b.expires
                && a.ips == b.ips
                && a.rate == b.rate
        }
        (Err(a), Err(b)) => a == b,
        _ => false,
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

    fn with(name: &str, revision: i64, entry: &str) -> RowChange {
        RowChange::Row {
            name: name.into(),
            revision,
            entry: Some(parse_entry(entry)),
        }
    }

    #[test]
    fn what_a_change_takes_away_or_alters_is_withdrawn_and_nothing_else() {
        let key = |k: &str| *parse_entry(k).unwrap().digest.as_bytes();
        let (a, b, c) = (
            "aaaaaaaaaaaaaaaaaaaa",
            "bbbbbbbbbbbbbbbbbbbb",
            "cccccccccccccccccccc",
        );
        let mut keys = DatabaseKeys::full(
            3,
            vec![
                with("a", 1, a),
                with("b", 2, b),
                with("c", 3, &format!("{c};scopes=x")),
            ],
        );
        // `a` written again unchanged, `b` revoked, `c` narrowed to an allowlist.
        let withdrawn = keys.apply(
            6,
            vec![
                with("a", 4, a),
                row("b", 5, false),
                with("c", 6, &format!("{c};scopes=x;ips=10.0.0.0/8")),
            ],
        );
        assert_eq!(withdrawn, [key(b), key(c)]);
        // Read whole: what the read lacks or holds otherwise.
        let read = DatabaseKeys::full(7, vec![with("a", 7, &format!("{a};scopes=y"))]);
        assert_eq!(keys.replace(read), [key(a), key(c)]);
        // TRUNCATE: every name.
        let withdrawn = keys.apply(
            8,
            vec![RowChange::Deleted {
                name: EVERY_NAME.into(),
                revision: 8,
            }],
        );
        assert_eq!(withdrawn, [key(a)]);
        assert_eq!(names(&keys), Vec::<&str>::new());
    }
}
