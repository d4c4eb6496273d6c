//! What the store does for the key table alone (feature `postgres`, gated where this module is
//! declared): the table's keys changed and reloaded, withdrawn when a reload fails or when they
//! go unconfirmed too long, and the figures the listener writes back.

use time::OffsetDateTime;

use super::ApiKeyStore;
use crate::database::keys::{DatabaseKeys, Position};
use crate::keygen::digest::KeyDigest;
use crate::load::{LoadErrors, NameList, ReloadSummary};
use crate::lock::lock;
use crate::slot_table::SlotTable;
use crate::target::TARGET;

impl ApiKeyStore {
    /// Puts the table as read at ignite in place, for the first load.
    pub(crate) fn seed_database(&self, read: Option<DatabaseKeys>) {
        if read.is_some() {
            self.confirm_database(std::time::Instant::now());
        }
        *lock(&self.shared.database) = read;
    }

    /// Changes the database's keys with `change`, then reloads every source with them, as a
    /// keys-file change does. On a load error the running keys stay; the changed copy of the
    /// table is kept, so the next load (of any trigger) tries it again.
    ///
    /// Fail closed: when the reload fails (a name the table shares with another source, a row
    /// that does not parse, a keys file being written), the keys the change revoked, deleted or
    /// altered are withdrawn from the running set anyway, so no error elsewhere keeps a revoked
    /// key alive, or a narrowed one as it was.
    pub(crate) fn change_database(
        &self,
        change: impl FnOnce(&mut Option<DatabaseKeys>) -> Vec<[u8; 32]>,
    ) -> Result<ReloadSummary, LoadErrors> {
        let withdrawn: std::collections::HashSet<[u8; 32]> =
            change(&mut lock(&self.shared.database))
                .into_iter()
                .collect();
        let outcome = self.reload();
        if outcome.is_err() && !withdrawn.is_empty() {
            self.withdraw(|digest| withdrawn.contains(digest.as_bytes()));
        }
        outcome
    }

    /// Drops the keys `withdrawn` says to from the running set, keeping every other as it is.
    fn withdraw(&self, withdrawn: impl Fn(&KeyDigest) -> bool) {
        let _reloading = lock(&self.shared.reload_lock);
        let old = self.shared.table.load_full();
        let new = old.without(withdrawn);
        let summary = SlotTable::changes(&old, &new);
        drop(old);
        if summary.removed.is_empty() {
            return;
        }
        self.swap_table(new);
        tracing::warn!(
            target: TARGET,
            withdrawn = ?NameList(&summary.removed),
            count = self.len(),
            "the reload failed, but the keys the table revoked, deleted or changed are withdrawn anyway"
        );
    }

    /// Where the table stood at the read the database's keys reflect; `None` before the first
    /// read, and while they are withdrawn.
    pub(crate) fn database_position(&self) -> Option<Position> {
        lock(&self.shared.database)
            .as_ref()
            .map(|keys| keys.position.clone())
    }

    /// How many live rows of the table are left out of loads.
    #[cfg(all(feature = "postgres", feature = "metrics"))]
    pub(crate) fn database_skipped(&self) -> usize {
        lock(&self.shared.database)
            .as_ref()
            .map_or(0, DatabaseKeys::skipped)
    }

    /// Notes that the copy of the table is current as of `at`: when the read or check that
    /// showed it began, so that a read that took long confirms no more than it saw.
    pub(crate) fn confirm_database(&self, at: std::time::Instant) {
        let mut confirmed = lock(&self.shared.database_confirmed);
        *confirmed = Some(confirmed.map_or(at, |before| before.max(at)));
    }

    /// How long since the copy of the table was last known to be current; `None` before the
    /// first read.
    pub(crate) fn database_staleness(&self) -> Option<std::time::Duration> {
        lock(&self.shared.database_confirmed).map(|at| at.elapsed())
    }

    /// Withdraws every key of the table until it is read again (`keys_database_max_stale`):
    /// reloads without them, and drops them from the running set should that reload fail.
    /// Returns how many were withdrawn.
    pub(crate) fn withdraw_database(&self) -> usize {
        let mut count = 0;
        let _ = self.change_database(|database| {
            let digests = database
                .take()
                .map(|keys| keys.digests())
                .unwrap_or_default();
            count = digests.len();
            digests
        });
        count
    }

    /// The last-used times of the keys from the table.
    pub(crate) fn database_last_used(&self) -> Vec<(String, OffsetDateTime)> {
        let names: std::collections::BTreeSet<String> = match lock(&self.shared.database).as_ref() {
            Some(keys) => keys.names().map(str::to_owned).collect(),
            None => return Vec::new(),
        };
        self.usage()
            .keys
            .into_iter()
            .filter(|key| names.contains(&key.name))
            .filter_map(|key| Some((key.name, key.counts.last_used?)))
            .collect()
    }
}
