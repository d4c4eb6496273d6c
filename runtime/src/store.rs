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
use crate::database::keys::{DatabaseKeys, Position};
use crate::digest::{Fingerprint, KeyDigest};
use crate::keygen::{checksum, Checksum};
use crate::limit::Limiter;
#[cfg(feature = "postgres")]
use crate::load::NameList;
use crate::load::ReloadSummary;
use crate::load::{FileRules, FileStamp, FileState, FileWarning, LoadErrors, Loaded, Loader};
use crate::rate::RateSpec;
use crate::reason::Reason;
use crate::rejection_log::RejectionLog;
use crate::routes::ProtectedRoute;
use crate::scope::ScopeRequirement;
use crate::slot_table::{KeyIdentity, Profile, Slot, SlotTable};
use crate::target::TARGET;
use crate::usage::{KeyUsage, Rejected, UsageReport, NO_KEY};

/// The validated key behind a request: its name and permissions, never the key itself.
///
/// Also a request guard: declare it in a handler to learn who is calling. On its own it accepts
/// any valid key; after `#[require_api_key(…)]` it reuses the result of that check.
///
/// ```
/// use rocket::get;
/// use rocket_api_key_runtime::ApiKey;
///
/// #[get("/whoami")]
/// fn whoami(key: ApiKey) -> String {
///     format!("{} ({})", key.name(), key.scopes().join(" "))
/// }
/// ```
///
/// An `ApiKey` refers to the set of keys it was checked against, so it shows the key as it was
/// then, whatever a reload changed since; and it keeps that set in memory until it is dropped.
/// It is meant to live as long as a request: to remember a caller for longer, keep its
/// [name](Self::name).
#[derive(Clone)]
pub struct ApiKey {
    store: Arc<SlotTable>,
    /// A position `SlotTable::find` returned: always holds a slot.
    position: usize,
}

impl ApiKey {
    fn slot(&self) -> &Slot {
        match self.store.slot(self.position) {
            Some(slot) => slot,
            None => unreachable!("an ApiKey is made only from a slot of its store"),
        }
    }

    /// The key's name: `<NAME>` of `API_KEY_<NAME>`, lowercased, or the name in the keys file.
    pub fn name(&self) -> &str {
        &self.slot().identity.name
    }

    /// The scopes granted to the key.
    pub fn scopes(&self) -> Vec<&str> {
        self.granted().iter().map(|s| &**s).collect()
    }

    /// Whether the key has `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.granted().iter().any(|s| &**s == scope)
    }

    /// When the key expires, if it does: in UTC, to the microsecond.
    pub fn expires(&self) -> Option<OffsetDateTime> {
        self.slot().expires.to_time()
    }

    /// The fingerprint of the key in logs: the first 8 hex digits of its SHA-256 digest.
    pub fn fingerprint(&self) -> Fingerprint {
        self.slot().digest.fingerprint()
    }

    /// The scopes, without a `Vec`.
    pub(crate) fn granted(&self) -> &[Box<str>] {
        &self.profile().scopes
    }

    pub(crate) fn rate(&self) -> Option<RateSpec> {
        self.profile().rate
    }

    pub(crate) fn identity(&self) -> &KeyIdentity {
        &self.slot().identity
    }

    /// Counts the request as accepted; in `api_key_requests_total` labelled as `label` (the
    /// store's [`key_label`](ApiKeyStore::key_label)) says.
    pub(crate) fn record_accepted(&self, label: MetricsKeyLabel) {
        self.slot().record_accepted(label);
    }

    fn profile(&self) -> &Profile {
        self.store.profile(self.slot())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name())
            .field("fingerprint", &self.fingerprint())
            .field("scopes", &self.granted())
            .finish()
    }
}

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
    // Swapped whole on reload: a request sees the old store or the new one, never a mix, and
    // reading it takes no lock.
    store: ArcSwap<SlotTable>,
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
                challenge: crate::challenge::challenge(&config.header),
                key_label: config.metrics_key_label.unwrap_or_default(),
                config,
                code_keys,
                limiter,
                reload_lock: Mutex::new(None),
                store: ArcSwap::from_pointee(SlotTable::default()),
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
        Some(loaded != Some(file_state(path)))
    }

    /// Every configured key, as of now.
    pub(crate) fn keys(&self) -> Vec<ApiKey> {
        let store = self.shared.store.load_full();
        store
            .iter()
            .map(|(position, _)| ApiKey {
                store: Arc::clone(&store),
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
        self.shared.store.load().len()
    }

    /// Whether no key is configured (every protected route then answers 401).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names of the configured keys, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .shared
            .store
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
        // RequestCounts still held by replaced stores that requests are using, by identity.
        let mut live: HashMap<*const KeyIdentity, (u64, u32)> = HashMap::new();
        for (_, slot) in retired.iter().flat_map(|store| store.iter()) {
            let (n, at) = slot.accepted();
            let sum = live.entry(Arc::as_ptr(&slot.identity)).or_default();
            *sum = (sum.0 + n, sum.1.max(at));
        }
        // Read under the lock: a reload swaps the store while holding it, so the counts of a
        // store are seen either here or among the retired ones, never in neither.
        let store = self.shared.store.load();
        let mut keys: Vec<KeyUsage> = store
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

    /// Puts `new` in place of the current store, keeping the old one until no request uses it.
    pub(crate) fn swap_store(&self, new: SlotTable) {
        let mut retired = self.lock_retired();
        #[cfg(feature = "metrics")]
        if self.metered() {
            crate::meter::keys(new.len());
        }
        let old = self.shared.store.swap(Arc::new(new));
        retired.push(old);
        collect(&mut retired);
    }

    /// Folds the counts of replaced stores that no request uses any more into their keys.
    pub(crate) fn collect_retired(&self) {
        collect(&mut self.lock_retired());
    }

    fn lock_retired(&self) -> std::sync::MutexGuard<'_, Vec<Arc<SlotTable>>> {
        // The list stays consistent whatever panicked while it was held.
        self.shared
            .retired
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Validates a presented key without Rocket: for other transports (a WebSocket handshake, a
    /// job queue) or custom guards. Checks shape, digest, expiry and the `ips` allowlist against
    /// `client` (an allowlisted key with an unknown client address is refused). RequestCounts the
    /// outcome in the usage figures; logs nothing. Rate limits (`rate=`, `failure_limit`) are
    /// applied by the request guards only.
    ///
    /// ```
    /// use rocket_api_key_runtime::{ApiKeyStore, Reason};
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
        let store = self.shared.store.load();
        let Some((position, slot)) = store.find(digest) else {
            return Err((Reason::Unknown, None));
        };
        let expired = slot.expires.has_passed();
        let ips = &store.profile(slot).ips;
        let allowed = ips.is_empty()
            || client().is_some_and(|ip| {
                let ip = ip.to_canonical();
                ips.iter().any(|net| net.contains(&ip))
            });
        let key = ApiKey {
            store: arc_swap::Guard::into_inner(store),
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
                .record_rejected(&identity.name, reason, self.key_label())
        }) {
            self.shared
                .unattributed
                .record(&Reason::ALL, reason, NO_KEY, self.key_label());
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
        // Under the lock a reload holds, so the gauge cannot be set from an older store after a
        // concurrent reload set it from a newer one.
        let _reloading = self
            .shared
            .reload_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
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
        let mut loaded_state = shared.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        let config = &shared.config;
        let mut loader = Loader::default();
        if config.from_env {
            loader.env(&config.env_prefix, std::env::vars_os());
        }
        if let Some(path) = &config.keys_file {
            // Noted before reading: a write that lands during the read is seen at the next poll.
            // Noted even if the load fails, so a broken file is reported once, not every poll.
            *loaded_state = Some(file_state(path));
            loader.file(path, file_rules(config));
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
        *shared
            .file_warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = std::mem::take(&mut loader.warnings);
        // Only the entries go on: the duplicate-check indexes are freed before the store is
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
        let old = shared.store.load_full();
        let new = SlotTable::new(loaded, Some(&old));
        let summary = SlotTable::changes(&old, &new);
        drop(old);
        self.swap_store(new);
        Ok(summary)
    }

    /// Changes the database's keys with `change`, then reloads every source with them, as a
    /// keys-file change does. On a load error the running keys stay; the changed copy of the
    /// table is kept, so the next load (of any trigger) tries it again.
    ///
    /// Fail closed: when the reload fails (a name the table shares with another source, a row
    /// that does not parse, a keys file being written), the keys the change revoked, deleted or
    /// altered are withdrawn from the running set anyway, so no error elsewhere keeps a revoked
    /// key alive, or a narrowed one as it was.
    #[cfg(feature = "postgres")]
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
    #[cfg(feature = "postgres")]
    fn withdraw(&self, withdrawn: impl Fn(&KeyDigest) -> bool) {
        let _reloading = lock(&self.shared.reload_lock);
        let old = self.shared.store.load_full();
        let new = old.without(withdrawn);
        let summary = SlotTable::changes(&old, &new);
        drop(old);
        if summary.removed.is_empty() {
            return;
        }
        self.swap_store(new);
        tracing::warn!(
            target: TARGET,
            withdrawn = ?NameList(&summary.removed),
            count = self.len(),
            "the reload failed, but the keys the table revoked, deleted or changed are withdrawn anyway"
        );
    }

    /// Where the table stood at the read the database's keys reflect; `None` before the first
    /// read, and while they are withdrawn.
    #[cfg(feature = "postgres")]
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
    #[cfg(feature = "postgres")]
    pub(crate) fn confirm_database(&self, at: std::time::Instant) {
        let mut confirmed = lock(&self.shared.database_confirmed);
        *confirmed = Some(confirmed.map_or(at, |before| before.max(at)));
    }

    /// How long since the copy of the table was last known to be current; `None` before the
    /// first read.
    #[cfg(feature = "postgres")]
    pub(crate) fn database_staleness(&self) -> Option<std::time::Duration> {
        lock(&self.shared.database_confirmed).map(|at| at.elapsed())
    }

    /// Withdraws every key of the table until it is read again (`keys_database_max_stale`):
    /// reloads without them, and drops them from the running set should that reload fail.
    /// Returns how many were withdrawn.
    #[cfg(feature = "postgres")]
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
    #[cfg(feature = "postgres")]
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

    /// Logs a warning naming the keys that have expired or expire within `expiry_warning`.
    pub(crate) fn warn_expiring(&self) {
        let now = OffsetDateTime::now_utc();
        let soon = now + self.config().expiry_warning;
        let store = self.shared.store.load();
        let mut expiring: Vec<(&str, OffsetDateTime)> = store
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
        let warnings = self
            .shared
            .file_warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for warning in &warnings {
            log_file_warning(warning);
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

/// Drops the retired stores that only this list still holds, folding their counts into the keys'
/// identities first. Nothing else can reach such a store, so its counts are final.
fn collect(retired: &mut Vec<Arc<SlotTable>>) {
    retired.retain(|store| {
        if Arc::strong_count(store) > 1 {
            return true;
        }
        store.retire();
        false
    });
}

fn file_state(path: &std::path::Path) -> FileState {
    std::fs::metadata(path)
        .ok()
        .map(|meta| FileStamp::of(&meta))
}

/// The keys file's rules. A file whose last line has no final newline is trusted once unchanged
/// for a poll interval: the poll after the one that deferred it finds it settled. With polling
/// off, for the default interval.
fn file_rules(config: &Config) -> FileRules {
    let settle = if config.reload_interval.is_zero() {
        Config::default().reload_interval
    } else {
        config.reload_interval
    };
    FileRules {
        max_size: config.keys_file_max_size,
        settle,
    }
}

fn log_file_warning(warning: &FileWarning) {
    match warning {
        FileWarning::Writable(path, mode) => tracing::warn!(
            target: TARGET,
            path = ?path,
            mode = %format!("{mode:o}"),
            "keys file can be written by group or others, who could add a key; `chmod go-w` it"
        ),
        FileWarning::Readable(path, mode) => tracing::warn!(
            target: TARGET,
            path = ?path,
            mode = %format!("{mode:o}"),
            "keys file holds plaintext keys and can be read by group or others; `chmod go-r` it, \
             or store `sha256:` entries (`apikey hash`)"
        ),
    }
}

/// A lock whose data stays usable if a holder panicked: every value kept under these locks is
/// whole at all times.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A keys file in a directory of its own, removed with it.
    struct KeysFile {
        dir: PathBuf,
        path: PathBuf,
    }

    impl KeysFile {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("rak-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            KeysFile {
                path: dir.join("keys"),
                dir,
            }
        }

        fn write(&self, text: &str) {
            std::fs::write(&self.path, text).unwrap();
        }
    }

    impl Drop for KeysFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn reload_reports_changes_and_keeps_keys_on_error() {
        let file = KeysFile::new("reload-unit");
        let write = |s: &str| file.write(s);
        write("a=aaaaaaaaaaaaaaaaaaaa\nb=bbbbbbbbbbbbbbbbbbbb;scopes=x\nc=cccccccccccccccccccc\n");
        let keys = ApiKeyStore::builder()
            .from_env(false)
            .keys_file(&file.path)
            .key("code", "codecodecodecodecode")
            .build()
            .unwrap();
        assert_eq!(keys.names(), ["a", "b", "c", "code"]);
        keys.verify("aaaaaaaaaaaaaaaaaaaa", None).unwrap();

        write("a=aaaaaaaaaaaaaaaaaaaa\nb=bbbbbbbbbbbbbbbbbbbb;scopes=y\nd=dddddddddddddddddddd\n");
        let summary = keys.reload().unwrap();
        assert_eq!(
            summary,
            ReloadSummary {
                added: vec!["d".into()],
                removed: vec!["c".into()],
                changed: vec!["b".into()]
            }
        );
        assert_eq!(summary.to_string(), "added [d], removed [c], changed [b]");
        assert_eq!(
            keys.usage().key("a").unwrap().accepted,
            1,
            "figures follow the name"
        );
        assert!(keys.reload().unwrap().is_empty());

        // Same name, new key: changed; the old key stops working.
        write("a=AAAAAAAAAAAAAAAAAAAA\nb=bbbbbbbbbbbbbbbbbbbb;scopes=y\nd=dddddddddddddddddddd\n");
        assert_eq!(keys.reload().unwrap().changed, ["a"]);
        assert!(keys.verify("aaaaaaaaaaaaaaaaaaaa", None).is_err());

        // Errors change nothing: a bad line, a duplicate of a code key, a missing file.
        for bad in ["a=short\n", "x=codecodecodecodecode\n"] {
            write(bad);
            assert!(keys.reload().is_err());
            assert_eq!(keys.names(), ["a", "b", "code", "d"]);
        }
        std::fs::remove_file(&file.path).unwrap();
        assert!(keys.reload().is_err());
        assert_eq!(keys.names(), ["a", "b", "code", "d"]);
    }

    #[test]
    fn counts_survive_reloads_even_from_a_key_still_in_use() {
        let file = KeysFile::new("reload-counts");
        let write = |s: &str| file.write(s);
        write("a=aaaaaaaaaaaaaaaaaaaa;scopes=x\n");
        let keys = ApiKeyStore::builder()
            .from_env(false)
            .keys_file(&file.path)
            .build()
            .unwrap();
        for _ in 0..3 {
            keys.verify("aaaaaaaaaaaaaaaaaaaa", None).unwrap();
        }
        // A request holding the key checked against the first store…
        let held = keys.verify("aaaaaaaaaaaaaaaaaaaa", None).unwrap();
        assert_eq!(keys.usage().key("a").unwrap().accepted, 4);

        // …while the key's scopes change, twice.
        write("a=aaaaaaaaaaaaaaaaaaaa;scopes=y\n");
        assert_eq!(keys.reload().unwrap().changed, ["a"]);
        keys.verify("aaaaaaaaaaaaaaaaaaaa", None).unwrap();
        write("a=aaaaaaaaaaaaaaaaaaaa;scopes=z\n");
        assert_eq!(keys.reload().unwrap().changed, ["a"]);
        assert_eq!(held.scopes(), ["x"], "a key shows what was checked");
        // A request admitted after the reload counts in the store it was checked against.
        held.record_accepted(keys.key_label());
        assert_eq!(keys.usage().key("a").unwrap().accepted, 6);
        assert_eq!(keys.shared.retired.lock().unwrap().len(), 1);

        // The held key's store is folded into the identity once the key is dropped.
        drop(held);
        let usage = keys.usage();
        assert_eq!(usage.key("a").unwrap().accepted, 6);
        assert!(usage.key("a").unwrap().last_used.is_some());
        assert!(keys.shared.retired.lock().unwrap().is_empty());

        // Rejections of the key follow it too.
        write("a=aaaaaaaaaaaaaaaaaaaa;scopes=z;ips=192.0.2.0/24\n");
        keys.reload().unwrap();
        let refused = keys.verify("aaaaaaaaaaaaaaaaaaaa", Some([10, 0, 0, 1].into()));
        assert_eq!(refused.unwrap_err(), crate::Reason::Ip);
        write("a=aaaaaaaaaaaaaaaaaaaa;scopes=y\n");
        keys.reload().unwrap();
        let counts = keys.usage().key("a").unwrap().clone();
        assert_eq!((counts.accepted, counts.rejected["ip"]), (6, 1));
    }

    #[cfg(unix)]
    #[test]
    fn a_keys_file_that_is_no_regular_file_fails_the_reload_and_keeps_the_keys() {
        let file = KeysFile::new("reload-kinds");
        file.write("a=aaaaaaaaaaaaaaaaaaaa\n");
        let keys = ApiKeyStore::builder()
            .from_env(false)
            .keys_file(&file.path)
            .keys_file_max_size(1024)
            .build()
            .unwrap();
        let replace = |make: &dyn Fn(&std::path::Path)| {
            let _ = std::fs::remove_file(&file.path);
            let _ = std::fs::remove_dir(&file.path);
            make(&file.path);
        };
        let fifo = |p: &std::path::Path| {
            let made = std::process::Command::new("mkfifo")
                .arg(p)
                .status()
                .unwrap();
            assert!(made.success());
        };
        let directory = |p: &std::path::Path| std::fs::create_dir(p).unwrap();
        let oversized = |p: &std::path::Path| {
            std::fs::write(
                p,
                format!("b=bbbbbbbbbbbbbbbbbbbb\n#{}\n", "x".repeat(1024)),
            )
            .unwrap()
        };
        for (make, expected) in [
            (&fifo as &dyn Fn(&std::path::Path), "it is a FIFO"),
            (&directory, "it is a directory"),
            (
                &oversized,
                "is larger than `api_keys.keys_file_max_size` (1024 bytes)",
            ),
        ] {
            replace(make);
            // On another thread, so a reload that blocks fails the test instead of hanging it.
            let (tx, rx) = std::sync::mpsc::channel();
            let reloading = keys.clone();
            std::thread::spawn(move || tx.send(reloading.reload().map_err(|e| e.to_string())));
            let outcome = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("the reload blocked");
            let message = outcome.unwrap_err();
            assert!(message.contains(expected), "{message}");
            assert_eq!(keys.names(), ["a"]);
        }
        // No reload was left holding the lock: the next one works.
        replace(&|p: &std::path::Path| std::fs::write(p, "c=cccccccccccccccccccc\n").unwrap());
        assert_eq!(keys.reload().unwrap().added, ["c"]);
    }

    #[test]
    fn a_half_written_keys_file_is_deferred_and_read_again_at_the_next_poll() {
        let file = KeysFile::new("reload-unsettled");
        file.write("a=aaaaaaaaaaaaaaaaaaaa\n");
        let keys = ApiKeyStore::builder()
            .from_env(false)
            .keys_file(&file.path)
            .reload_interval(std::time::Duration::from_secs(1))
            .build()
            .unwrap();
        let poller_would_reload = || {
            let loaded = *keys.shared.reload_lock.lock().unwrap();
            loaded != Some(file_state(&file.path))
        };
        assert!(!poller_would_reload());

        // Written in place, the writer not yet past `/1` of `/16`.
        file.write("a=aaaaaaaaaaaaaaaaaaaa\nb=bbbbbbbbbbbbbbbbbbbb;ips=10.0.0.0/1");
        let errors = keys.reload().unwrap_err();
        assert!(
            matches!(&errors.0[..], [crate::load::LoadError::FileUnsettled(..)]),
            "{errors}"
        );
        assert_eq!(keys.names(), ["a"]);
        assert!(poller_would_reload(), "a deferred reload must be retried");
        assert!(poller_would_reload(), "even if the file does not change");

        // The writer finishes; the next poll loads the whole line.
        file.write("a=aaaaaaaaaaaaaaaaaaaa\nb=bbbbbbbbbbbbbbbbbbbb;ips=10.0.0.0/16\n");
        assert_eq!(keys.reload().unwrap().added, ["b"]);
        let outside = keys.verify("bbbbbbbbbbbbbbbbbbbb", Some([10, 128, 0, 1].into()));
        assert_eq!(outside.unwrap_err(), crate::Reason::Ip);
        assert!(!poller_would_reload());

        // Left unterminated, but unchanged for the poll interval: trusted.
        file.write("a=aaaaaaaaaaaaaaaaaaaa");
        assert!(keys.reload().is_err());
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(keys.reload().unwrap().removed, ["b"]);
    }
}
