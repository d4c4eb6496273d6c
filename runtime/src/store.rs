//! The [`ApiKeys`] handle kept in Rocket's managed state, and the [`ApiKey`] a check yields.
//! How the keys are laid out for an O(1) lookup is the concern of [`crate::table`].

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use time::OffsetDateTime;

use crate::config::Config;
use crate::digest::{Fingerprint, KeyDigest};
use crate::keygen::{checksum, Checksum};
use crate::limit::Limiter;
use crate::load::Loaded;
use crate::rate::RateSpec;
use crate::reason::Reason;
use crate::rejection_log::RejectionLog;
use crate::table::{KeyIdentity, KeyStore, Profile, Slot};
use crate::usage::{KeyUsage, Rejected, UsageReport};

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
    store: Arc<KeyStore>,
    /// A position `KeyStore::find` returned: always holds a slot.
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

    pub(crate) fn record_accepted(&self) {
        self.slot().record_accepted();
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
/// Reach it from a handler as `&State<ApiKeys>`, e.g. to report [usage](ApiKeys::usage).
#[derive(Clone)]
pub struct ApiKeys {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub config: Config,
    /// Keys given in code, kept as digests for every reload.
    pub code_keys: Vec<Loaded>,
    /// Per-key rates and the failure limit.
    pub limiter: Limiter,
    /// One reload at a time (the poller and SIGHUP may coincide); never taken by requests.
    /// Holds the keys file's state as of the last load, which the poller compares against.
    pub reload_lock: Mutex<Option<crate::load::FileState>>,
    // Swapped whole on reload: a request sees the old store or the new one, never a mix, and
    // reading it takes no lock.
    pub store: ArcSwap<KeyStore>,
    /// Rejections no key can be blamed for.
    unattributed: Rejected<{ Reason::ALL.len() }>,
    /// Stores replaced by a reload that requests may still be using, kept so that usage figures
    /// include their counts until they are folded into the keys' identities.
    pub retired: Mutex<Vec<Arc<KeyStore>>>,
    /// The `WWW-Authenticate` value of a 401, made once.
    pub challenge: String,
    /// Bounds the rate of `request rejected` events.
    pub rejection_log: RejectionLog,
    /// What the last load found wrong with the keys file's permissions, for the fairing to log.
    pub file_warnings: Mutex<Vec<crate::load::FileWarning>>,
}

impl ApiKeys {
    /// An empty store; [`reload`](Self::reload) fills it.
    pub(crate) fn new(config: Config, code_keys: Vec<Loaded>) -> Self {
        let limiter = Limiter::new(&config);
        ApiKeys {
            shared: Arc::new(Shared {
                rejection_log: RejectionLog::new(config.rejected_log_limit),
                file_warnings: Mutex::new(Vec::new()),
                challenge: crate::challenge::challenge(&config.header),
                config,
                code_keys,
                limiter,
                reload_lock: Mutex::new(None),
                store: ArcSwap::from_pointee(KeyStore::default()),
                unattributed: Rejected::default(),
                retired: Mutex::new(Vec::new()),
            }),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
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
        // Counts still held by replaced stores that requests are using, by identity.
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
    pub(crate) fn swap_store(&self, new: KeyStore) {
        let mut retired = self.lock_retired();
        let old = self.shared.store.swap(Arc::new(new));
        retired.push(old);
        collect(&mut retired);
    }

    /// Folds the counts of replaced stores that no request uses any more into their keys.
    pub(crate) fn collect_retired(&self) {
        collect(&mut self.lock_retired());
    }

    fn lock_retired(&self) -> std::sync::MutexGuard<'_, Vec<Arc<KeyStore>>> {
        // The list stays consistent whatever panicked while it was held.
        self.shared
            .retired
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Validates a presented key without Rocket: for other transports (a WebSocket handshake, a
    /// job queue) or custom guards. Checks shape, digest, expiry and the `ips` allowlist against
    /// `client` (an allowlisted key with an unknown client address is refused). Counts the
    /// outcome in the usage figures; logs nothing. Rate limits (`rate=`, `failure_limit`) are
    /// applied by the request guards only.
    ///
    /// ```
    /// use rocket_api_key_runtime::{ApiKeys, Reason};
    ///
    /// let keys = ApiKeys::builder()
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
                key.record_accepted();
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
        if !key.is_some_and(|key| key.identity().usage.record_rejected(reason)) {
            self.shared.unattributed.record(&Reason::ALL, reason);
        }
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("config", &self.shared.config)
            .field("keys", &self.names())
            .finish()
    }
}

/// Drops the retired stores that only this list still holds, folding their counts into the keys'
/// identities first. Nothing else can reach such a store, so its counts are final.
fn collect(retired: &mut Vec<Arc<KeyStore>>) {
    retired.retain(|store| {
        if Arc::strong_count(store) > 1 {
            return true;
        }
        store.retire();
        false
    });
}
