//! The keys of the PostgreSQL table as this instance last read them: a source of every load, like
//! the environment and the keys file, kept up to date row by row by the listener.

use std::collections::BTreeMap;

use crate::entry::{EntryError, KeyEntry};
use crate::load::{key_name, KeySource, LoadError, Loader};
use crate::target::TARGET;

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

/// Where the table stands: its identity and the number of its last change. Revisions compare
/// only within one epoch: a table created again, or restored, counts anew.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Position {
    /// The counter's random epoch and the tables' OIDs, as one text.
    pub epoch: String,
    /// The last change's revision: every change up to it is included in a read at it.
    pub revision: i64,
}

/// One read of the table, in one snapshot: where it stood, its schema-qualified name, and the
/// rows read (all live ones, or those changed since a revision).
#[derive(Debug)]
pub(crate) struct TableRead {
    pub position: Position,
    pub table: String,
    pub changes: Vec<RowChange>,
}

/// The live keys of the table, by name, and where the table stood when they were read.
#[derive(Debug, Default)]
pub(crate) struct DatabaseKeys {
    /// Where the table stood at the last read.
    pub position: Position,
    /// The table's schema-qualified name.
    pub table: String,
    /// Every live row, a row that does not load with its error: skipped by loads (see
    /// [`load_into`](Self::load_into)), and told once, when it is read.
    entries: BTreeMap<String, Result<KeyEntry, EntryError>>,
}

impl DatabaseKeys {
    /// The table read whole.
    pub fn full(read: TableRead) -> Self {
        let mut keys = DatabaseKeys {
            table: read.table,
            ..DatabaseKeys::default()
        };
        keys.position.epoch = read.position.epoch;
        keys.apply(read.position.revision, read.changes);
        keys
    }

    /// Applies the changes read since the last revision, in the order they were made, and
    /// notes `revision`, the table's revision at the read. Returns the digests of the keys the
    /// changes took away or altered (revoked, deleted, narrowed or widened), to withdraw should
    /// the reload fail. A row that does not load is told now, once.
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
                    let new = &self.entries[&name];
                    let changed = old.as_ref().is_none_or(|old| !same(old, new));
                    if changed {
                        self.tell_if_skipped(&name);
                    }
                    old.filter(|_| changed)
                }
                RowChange::Row { name, .. } | RowChange::Deleted { name, .. } => {
                    self.entries.remove(&name)
                }
            };
            withdrawn.extend(old.as_ref().and_then(digest));
        }
        self.position.revision = self.position.revision.max(revision);
        withdrawn
    }

    /// Takes `read`, the table read whole, in place of this copy. Returns the digests of the
    /// keys it took away or altered, as [`apply`](Self::apply) does. The rows that do not load
    /// were told when `read` was made.
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

    /// The digests of every key, for withdrawing them all.
    pub fn digests(&self) -> Vec<[u8; 32]> {
        self.entries.values().filter_map(digest).collect()
    }

    /// Adds every key that loads to a load. A row that does not (a field that does not parse, a
    /// name written around the table's check) is left out: one bad write must not stop every
    /// reload, nor the next start, of every instance. It was told when it was read.
    pub fn load_into(&self, loader: &mut Loader) {
        for (name, entry) in &self.entries {
            match entry {
                Ok(entry) if valid_name(name) => loader.database_entry(name, entry.clone()),
                _ => {}
            }
        }
    }

    /// How many live rows are left out of loads.
    pub fn skipped(&self) -> usize {
        self.entries
            .iter()
            .filter(|(name, entry)| entry.is_err() || !valid_name(name))
            .count()
    }

    /// Tells, once, that the row `name` as just read does not load and is left out.
    fn tell_if_skipped(&self, name: &str) {
        let Some(entry) = self.entries.get(name) else {
            return;
        };
        // The table's check keeps names to the rule; a row written around it is not echoed.
        let error = match entry {
            _ if !valid_name(name) => LoadError::Name(KeySource::Database("<invalid name>".into())),
            Err(e) => LoadError::Entry(KeySource::Database(name.to_owned()), e.clone()),
            Ok(_) => return,
        };
        tracing::warn!(
            target: TARGET,
            table = %self.table,
            error = %error,
            "a row of the key table does not load and is left out; the other keys are served"
        );
    }

    /// The names of the keys from the table.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

/// Whether `name` is a key name as written (the table's check keeps it so).
fn valid_name(name: &str) -> bool {
    key_name(name).is_some_and(|valid| valid == name)
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

    /// The table read whole at `revision`.
    fn full(revision: i64, changes: Vec<RowChange>) -> DatabaseKeys {
        DatabaseKeys::full(TableRead {
            position: Position {
                epoch: "e".into(),
                revision,
            },
            table: "public.api_keys".into(),
            changes,
        })
    }

    #[test]
    fn changes_apply_in_revision_order_whatever_order_they_come_in() {
        let mut keys = full(2, vec![row("a", 1, true), row("b", 2, true)]);
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
        assert_eq!(keys.position.revision, 5);
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
        assert_eq!(keys.position.revision, 6);
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
        let mut keys = full(
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
        let read = full(7, vec![with("a", 7, &format!("{a};scopes=y"))]);
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

    /// A row that does not load is kept in the copy (so that a later version of it is compared
    /// with it) but left out of loads; its previous version is withdrawn like any change's.
    #[test]
    fn a_row_that_does_not_load_is_left_out_and_its_old_version_withdrawn() {
        let key = |k: &str| *parse_entry(k).unwrap().digest.as_bytes();
        let (a, b) = ("aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb");
        let mut keys = full(2, vec![with("a", 1, a), with("b", 2, b)]);
        assert_eq!(keys.skipped(), 0);
        let withdrawn = keys.apply(3, vec![with("b", 3, &format!("{b};scopes=read orders"))]);
        assert_eq!(withdrawn, [key(b)]);
        assert_eq!(keys.skipped(), 1);
        let mut invalid = full(1, vec![with("Not A Name", 1, a)]);
        assert_eq!(invalid.skipped(), 1);
        assert!(invalid.apply(2, Vec::new()).is_empty());
        let mut loader = Loader::default();
        keys.load_into(&mut loader);
        invalid.load_into(&mut loader);
        let (loaded, errors) = loader.into_parts();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            loaded.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
    }
}
