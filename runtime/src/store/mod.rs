//! The [`ApiKeyStore`] handle kept in Rocket's managed state, and the [`ApiKey`] a check yields.
//! How the keys are laid out for an O(1) lookup is the concern of [`crate::slot_table`].

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use time::OffsetDateTime;

use crate::config::{Config, MetricsKeyLabel};
#[cfg(feature = "postgres")]
use crate::database::keys::DatabaseKeys;
use crate::keygen::digest::KeyDigest;
use crate::keygen::{checksum, Checksum};
use crate::limit::Limiter;
use crate::load::ReloadSummary;
use crate::load::{FileRules, FileStamp, FileState, FileWarning, LoadErrors, Loaded, Loader};
use crate::lock::lock;
use crate::reason::Reason;
use crate::registry::ProtectedRoute;
use crate::rejection_log::RejectionLog;
use crate::scope::ScopeRequirement;
use crate::slot_table::{KeyIdentity, SlotTable};
use crate::target::TARGET;
use crate::usage::{KeyUsage, Rejected, UsageReport, NO_KEY};

#[cfg(feature = "postgres")]
mod database;
mod key;

pub use key::ApiKey;

/// The loaded keys and the layer's configuration: what the fairing puts in Rocket's managed
/// state. Cheap to clone (a shared handle).
///
/// Reach it from a handler as `&State<ApiKeyStore>`, e.g. to report [usage](ApiKeyStore::usage).
#[derive(Clone)]
pub struct ApiKeyStore {
    shared: Arc<Shared>,
}

struct Shared {
    config: Config,
    /// Keys given in code, kept as digests for every reload.
    code_keys: Vec<Loaded>,
    /// Per-key rates and the failure limit.
    limiter: Limiter,
    /// One reload at a time (the poller and SIGHUP may coincide); never taken by requests.
    /// Holds the keys file's state as of the last load, which the poller compares against.
    reload_lock: Mutex<Option<FileState>>,
    // Swapped whole on reload: a request sees the old table or the new one, never a mix, and
    // reading it takes no lock.
    table: ArcSwap<SlotTable>,
    /// Rejections no key can be blamed for.
    unattributed: Rejected<{ Reason::ALL.len() }>,
    /// Stores replaced by a reload that requests may still be using, kept so that usage figures
    /// include their counts until they are folded into the keys' identities.
    retired: Mutex<Vec<Arc<SlotTable>>>,
    /// The `WWW-Authenticate` value of a 401, made once.
    challenge: String,
    /// `metrics_key_label` with its default applied, once.
    key_label: MetricsKeyLabel,
    /// Bounds the rate of `request rejected` events.
    rejection_log: RejectionLog,
    /// The mounted routes the attribute protects, found at liftoff, for the audit.
    routes: Mutex<Vec<ProtectedRoute>>,
    /// The requirements of every mounted `Authorized<S>` guard, noted by its sentinel at ignite.
    requirements: Mutex<Vec<ScopeRequirement>>,
    /// What the last load found wrong with the keys file's permissions, for the fairing to log.
    file_warnings: Mutex<Vec<FileWarning>>,
    /// Whether this is the application's store, whose keys and reloads the gauges and counters
    /// report: set by the fairing, so that a store loaded only to look
    /// (`ApiKeyStoreBuilder::load`) moves no gauge.
    #[cfg(feature = "metrics")]
    metered: std::sync::atomic::AtomicBool,
    /// The PostgreSQL table's keys as last read (feature `postgres`), a source of every load;
    /// `None` until the first read succeeds.
    #[cfg(feature = "postgres")]
    database: Mutex<Option<DatabaseKeys>>,
    /// When this instance last knew its copy of the table to be current (a read, or a check of
    /// the table's position); `None` before the first.
    #[cfg(feature = "postgres")]
    database_confirmed: Mutex<Option<std::time::Instant>>,
}

impl ApiKeyStore {
    /// An empty store; [`reload`](Self::reload) fills it.
    pub(crate) fn new(config: Config, code_keys: Vec<Loaded>) -> Self {
        let limiter = Limiter::new(&config);
        ApiKeyStore {
            shared: Arc::new(Shared {
                rejection_log: RejectionLog::new(config.rejected_log_limit),
                file_warnings: Mutex::new(Vec::new()),
                routes: Mutex::new(Vec::new()),
                requirements: Mutex::new(Vec::new()),
                challenge: crate::header::challenge(&config.header),
                key_label: config.metrics_key_label.unwrap_or_default(),
                config,
                code_keys,
                limiter,
                reload_lock: Mutex::new(None),
                table: ArcSwap::from_pointee(SlotTable::default()),
                unattributed: Rejected::default(),
                retired: Mutex::new(Vec::new()),
                #[cfg(feature = "metrics")]
                metered: std::sync::atomic::AtomicBool::new(false),
                #[cfg(feature = "postgres")]
                database: Mutex::new(None),
                #[cfg(feature = "postgres")]
                database_confirmed: Mutex::new(None),
            }),
        }
    }

    pub(crate) fn rejection_log(&self) -> &RejectionLog {
        &self.shared.rejection_log
    }

    /// The `WWW-Authenticate` value of a 401.
    pub(crate) fn challenge(&self) -> &str {
        &self.shared.challenge
    }

    /// How requests are labelled in `api_key_requests_total` (feature `metrics`): the
    /// `metrics_key_label` setting, `name` when it is unset.
    pub(crate) fn key_label(&self) -> MetricsKeyLabel {
        self.shared.key_label
    }

    /// Whether the keys file at `path` differs from the one the last load read; `None` while a
    /// reload is in progress (the caller should not wait for it).
    pub(crate) fn keys_file_changed(&self, path: &std::path::Path) -> Option<bool> {
        let loaded = match self.shared.reload_lock.try_lock() {
            Ok(state) => *state,
            Err(std::sync::TryLockError::Poisoned(state)) => *state.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(loaded != Some(FileStamp::at(path)))
    }

    /// Every configured key, as of now.
    pub(crate) fn keys(&self) -> Vec<ApiKey> {
        let table = self.shared.table.load_full();
        table
            .iter()
            .map(|(position, _)| ApiKey {
                table: Arc::clone(&table),
                position,
            })
            .collect()
    }

    /// Notes the requirement of a mounted guard (once per guard type, by its sentinel).
    pub(crate) fn note_requirement(&self, requirement: ScopeRequirement) {
        let mut noted = lock(&self.shared.requirements);
        if !noted.contains(&requirement) {
            noted.push(requirement);
        }
    }

    /// The requirements noted by [`note_requirement`](Self::note_requirement).
    pub(crate) fn requirements(&self) -> Vec<ScopeRequirement> {
        lock(&self.shared.requirements).clone()
    }

    /// Keeps the protected routes found at liftoff.
    pub(crate) fn set_routes(&self, routes: Vec<ProtectedRoute>) {
        *lock(&self.shared.routes) = routes;
    }

    /// The protected routes found at liftoff; none before it.
    pub(crate) fn routes(&self) -> Vec<ProtectedRoute> {
        lock(&self.shared.routes).clone()
    }

    pub(crate) fn limiter(&self) -> &Limiter {
        &self.shared.limiter
    }

    /// The layer's configuration, as resolved at ignite.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The number of configured keys.
    pub fn len(&self) -> usize {
        self.shared.table.load().len()
    }

    /// Whether no key is configured (every protected route then answers 401).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names of the configured keys, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .shared
            .table
            .load()
            .iter()
            .map(|(_, s)| s.identity.name.to_string())
            .collect();
        names.sort();
        names
    }

    /// Usage figures of every key, and the rejections no key can be blamed for.
    pub fn usage(&self) -> UsageReport {
        let mut retired = self.lock_retired();
        collect(&mut retired);
        // Counts still held by replaced tables that requests are using, by identity.
        let mut live: HashMap<*const KeyIdentity, (u64, u32)> = HashMap::new();
        for (_, slot) in retired.iter().flat_map(|table| table.iter()) {
            let (n, at) = slot.accepted();
            let sum = live.entry(Arc::as_ptr(&slot.identity)).or_default();
            *sum = (sum.0 + n, sum.1.max(at));
        }
        // Read under the lock: a reload swaps the table while holding it, so the counts of a
        // table are seen either here or among the retired ones, never in neither.
        let table = self.shared.table.load();
        let mut keys: Vec<KeyUsage> = table
            .iter()
            .map(|(_, s)| {
                let older = live.get(&Arc::as_ptr(&s.identity)).copied();
                KeyUsage {
                    name: s.identity.name.to_string(),
                    counts: s
                        .identity
                        .usage
                        .snapshot(std::iter::once(s.accepted()).chain(older)),
                }
            })
            .collect();
        drop(retired);
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        UsageReport {
            keys,
            unattributed: self.shared.unattributed.snapshot(&Reason::ALL),
        }
    }

    /// Puts `new` in place of the current table, keeping the old one until no request uses it.
    pub(crate) fn swap_table(&self, new: SlotTable) {
        let mut retired = self.lock_retired();
        #[cfg(feature = "metrics")]
        if self.metered() {
            crate::meter::keys(new.len());
        }
        let old = self.shared.table.swap(Arc::new(new));
        retired.push(old);
        collect(&mut retired);
    }

    /// Folds the counts of replaced tables that no request uses any more into their keys.
    pub(crate) fn collect_retired(&self) {
        collect(&mut self.lock_retired());
    }

    fn lock_retired(&self) -> std::sync::MutexGuard<'_, Vec<Arc<SlotTable>>> {
        // The list stays consistent whatever panicked while it was held.
        lock(&self.shared.retired)
    }

    /// Validates a presented key without Rocket: for other transports (a WebSocket handshake, a
    /// job queue) or custom guards. Checks shape, digest, expiry and the `ips` allowlist against
    /// `client` (an allowlisted key with an unknown client address is refused). Counts the
    /// outcome in the usage figures; logs nothing. Rate limits (`rate=`, `failure_limit`) are
    /// applied by the request guards only.
    ///
    /// ```
    /// use rocket_api_key::{ApiKeyStore, Reason};
    ///
    /// let keys = ApiKeyStore::builder()
    ///     .from_env(false)
    ///     .key("ci", "ci-key-0123456789abcdef;scopes=deploy")
    ///     .build()
    ///     .unwrap();
    /// let key = keys.verify("ci-key-0123456789abcdef", None).unwrap();
    /// assert_eq!(key.name(), "ci");
    /// assert_eq!(keys.verify("nope-nope-nope-nope", None).unwrap_err(), Reason::Unknown);
    /// ```
    pub fn verify(&self, presented: &str, client: Option<IpAddr>) -> Result<ApiKey, Reason> {
        if !self.well_formed(presented) {
            self.record_rejected(Reason::Malformed, None);
            return Err(Reason::Malformed);
        }
        match self.check_digest(&KeyDigest::of(presented.as_bytes()), || client) {
            Ok(key) => {
                key.record_accepted(self.key_label());
                Ok(key)
            }
            Err((reason, key)) => {
                self.record_rejected(reason, key.as_ref());
                Err(reason)
            }
        }
    }

    /// Whether a presented key can be one: not empty, not over `max_key_len`, visible ASCII
    /// only, and with a valid checksum if it has the generated shape. Checked before hashing, so
    /// oversized input and typos cost nothing.
    pub(crate) fn well_formed(&self, presented: &str) -> bool {
        !presented.is_empty()
            && presented.len() <= self.shared.config.max_key_len
            // Without an early exit, so the loop is vectorised: this runs on every request.
            && presented.bytes().fold(true, |ok, b| ok & b.is_ascii_graphic())
            && checksum(presented) != Checksum::Invalid
    }

    /// Finds the key with this digest and checks its expiry and address allowlist. On failure,
    /// the key is returned when it was recognised (expired, wrong address).
    ///
    /// `client` is asked only for a key with an allowlist: most keys have none, and working out
    /// the client's address (behind a proxy, from a header) is wasted on them.
    pub(crate) fn check_digest(
        &self,
        digest: &KeyDigest,
        client: impl FnOnce() -> Option<IpAddr>,
    ) -> Result<ApiKey, (Reason, Option<ApiKey>)> {
        let table = self.shared.table.load();
        let Some((position, slot)) = table.find(digest) else {
            return Err((Reason::Unknown, None));
        };
        let expired = slot.expires.has_passed();
        let ips = &table.profile(slot).ips;
        let allowed = ips.is_empty()
            || client().is_some_and(|ip| {
                let ip = ip.to_canonical();
                ips.iter().any(|net| net.contains(&ip))
            });
        let key = ApiKey {
            table: arc_swap::Guard::into_inner(table),
            position,
        };
        if expired {
            return Err((Reason::Expired, Some(key)));
        }
        if !allowed {
            return Err((Reason::Ip, Some(key)));
        }
        Ok(key)
    }

    pub(crate) fn record_rejected(&self, reason: Reason, key: Option<&ApiKey>) {
        // A reason that names no key is counted as unattributed even if a key was recognised,
        // so no rejection goes uncounted.
        if !key.is_some_and(|key| {
            let identity = key.identity();
            identity
                .usage
                .count_rejected(&identity.name, reason, self.key_label())
        }) {
            self.shared
                .unattributed
                .count(&Reason::ALL, reason, NO_KEY, self.key_label());
        }
    }

    /// Reads every source again and swaps the new key set in, atomically: requests in flight
    /// finish with the keys they started with, later ones see the new set, none sees a mix.
    /// Usage figures stay with the key's name.
    ///
    /// On any error the running keys are kept unchanged and the errors are returned. The fairing
    /// calls this when the keys file changes and on SIGHUP; call it yourself for other triggers.
    ///
    /// A keys file that may still be being written ([`LoadError::FileUnsettled`]) or that kept
    /// changing while it was read ([`LoadError::FileChanging`]) fails the reload this time; the
    /// poller reads it again at its next tick even if it does not change. A keys file that group
    /// or others may write, or read while it holds plaintext keys, is named in a `WARN` event by
    /// the fairing, at start and at each reload it makes.
    ///
    /// [`LoadError::FileUnsettled`]: crate::load::LoadError::FileUnsettled
    /// [`LoadError::FileChanging`]: crate::load::LoadError::FileChanging
    pub fn reload(&self) -> Result<ReloadSummary, LoadErrors> {
        let outcome = self.load_keys();
        #[cfg(feature = "metrics")]
        if self.metered() {
            crate::meter::reloaded(outcome.is_ok());
        }
        outcome
    }

    /// Makes this the store the gauges and the reload counter report (the application's, once
    /// its first load succeeded): describes the metrics and sets the keys gauge. Warns when
    /// more than [`MANY_KEYS`](crate::meter::MANY_KEYS) keys would each have their own `key`
    /// label only because `metrics_key_label` was left unset: at start, where an operator reads
    /// about settings, and once, so a deliberate choice of either value ends it.
    #[cfg(feature = "metrics")]
    pub(crate) fn start_metering(&self) {
        crate::meter::describe();
        if self.shared.config.metrics_key_label.is_none() && self.len() > crate::meter::MANY_KEYS {
            tracing::warn!(
                target: TARGET,
                keys = self.len(),
                setting = "api_keys.metrics_key_label",
                "every key name is a label value of api_key_requests_total, a series or more \
                 each; set `metrics_key_label = \"none\"` to count by outcome alone, or \
                 `\"name\"` to keep them and silence this warning"
            );
        }
        // Under the lock a reload holds, so the gauge cannot be set from an older table after a
        // concurrent reload set it from a newer one.
        let _reloading = lock(&self.shared.reload_lock);
        self.shared
            .metered
            .store(true, std::sync::atomic::Ordering::Relaxed);
        crate::meter::keys(self.len());
    }

    #[cfg(feature = "metrics")]
    fn metered(&self) -> bool {
        self.shared
            .metered
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn load_keys(&self) -> Result<ReloadSummary, LoadErrors> {
        let shared = &self.shared;
        let mut loaded_state = lock(&shared.reload_lock);
        let config = &shared.config;
        let mut loader = Loader::default();
        if config.from_env {
            loader.env(&config.env_prefix, std::env::vars_os());
        }
        if let Some(path) = &config.keys_file {
            // Noted before reading: a write that lands during the read is seen at the next poll.
            // Noted even if the load fails, so a broken file is reported once, not every poll.
            *loaded_state = Some(FileStamp::at(path));
            loader.file(path, FileRules::of(config));
        }
        for entry in &shared.code_keys {
            loader.push(entry.clone());
        }
        #[cfg(feature = "postgres")]
        if let Some(database) = lock(&shared.database).as_ref() {
            database.load_into(&mut loader);
        }
        // Kept for whoever logs this load (the fairing at start, the watcher at each reload), so
        // a file left open to others is named once per load while it stays so, not at every
        // poll, and not again by a load that only looks (`ApiKeyStoreBuilder::load`).
        *lock(&shared.file_warnings) = std::mem::take(&mut loader.warnings);
        // Only the entries go on: the duplicate-check indexes are freed before the table is
        // built, which lowers the peak memory of loading a large keys file.
        let (loaded, errors) = loader.into_parts();
        if !errors.is_empty() {
            if errors.iter().any(|e| e.is_transient()) {
                // No state noted: the file may not change again, and the poller must still read
                // it again, once it has settled.
                *loaded_state = None;
            }
            return Err(LoadErrors(errors));
        }
        let old = shared.table.load_full();
        let new = SlotTable::new(loaded, Some(&old));
        let summary = SlotTable::changes(&old, &new);
        drop(old);
        self.swap_table(new);
        Ok(summary)
    }

    /// Logs a warning naming the keys that have expired or expire within `expiry_warning`.
    pub(crate) fn warn_expiring(&self) {
        let now = OffsetDateTime::now_utc();
        let soon = now + self.config().expiry_warning;
        let table = self.shared.table.load();
        let mut expiring: Vec<(&str, OffsetDateTime)> = table
            .iter()
            .filter_map(|(_, s)| {
                let at = s.expires.to_time().filter(|at| *at <= soon)?;
                Some((&*s.identity.name, at))
            })
            .collect();
        expiring.sort();
        for (name, at) in expiring {
            let at_text = at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| at.unix_timestamp().to_string());
            if at <= now {
                tracing::warn!(target: TARGET, key = name, expired = %at_text, "API key has expired");
            } else {
                tracing::warn!(target: TARGET, key = name, expires = %at_text, "API key expires soon; rotate it");
            }
        }
    }

    /// Logs the warnings about the keys file that the last load found (see
    /// [`reload`](Self::reload)).
    pub(crate) fn warn_file_permissions(&self) {
        let warnings = lock(&self.shared.file_warnings).clone();
        for warning in &warnings {
            FileWarning::log(warning);
        }
    }
}

impl fmt::Debug for ApiKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyStore")
            .field("config", &self.shared.config)
            .field("keys", &self.names())
            .finish()
    }
}

/// Drops the retired tables that only this list still holds, folding their counts into the keys'
/// identities first. Nothing else can reach such a table, so its counts are final.
fn collect(retired: &mut Vec<Arc<SlotTable>>) {
    retired.retain(|table| {
        if Arc::strong_count(table) > 1 {
            return true;
        }
        table.retire();
        false
    });
}

#[cfg(test)]
mod tests;
