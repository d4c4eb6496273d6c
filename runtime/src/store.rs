//! The key store: digests indexed for O(1) lookup, and the [`ApiKeys`] handle kept in Rocket's
//! managed state.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use ipnet::IpNet;
use time::OffsetDateTime;

use crate::config::Config;
use crate::digest::{Fingerprint, KeyDigest};
use crate::keygen::{checksum, Checksum};
use crate::limit::Limiter;
use crate::load::Loaded;
use crate::log::RejectionLog;
use crate::rate::{GcraCell, KeyRate};
use crate::reject::Reason;
use crate::usage::{KeyUsage, Usage, UsageReport};

/// One configured key, as held in memory: its digest, never the key.
pub(crate) struct KeyRecord {
    pub name: Box<str>,
    pub digest: KeyDigest,
    /// Shared by every record of the store with the same scopes (most keys have one of a few
    /// scope sets), which saves two allocations per key in large stores.
    pub scopes: Arc<[Box<str>]>,
    pub expires: Option<OffsetDateTime>,
    pub ips: Box<[IpNet]>,
    /// Shared with the record of the same name in the next store, so figures survive reloads.
    pub usage: Arc<Usage>,
    /// The `rate=` limit and its in-process state, kept across reloads while the rate stays.
    pub rate: Option<Arc<KeyRate>>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("name", &self.name)
            .field("fingerprint", &self.digest.fingerprint())
            .field("scopes", &self.scopes)
            .field("expires", &self.expires)
            .field("ips", &self.ips)
            .finish_non_exhaustive()
    }
}

/// Keys of the index are the first 8 bytes of a SHA-256 digest: already uniformly distributed,
/// so hashing them again would only cost time. Lookups never insert, so a client cannot flood
/// the map; the entries come from the operator.
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64: Hash`; fold anything else rather than panic.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// An immutable set of keys. Reloading builds a new one and swaps it in whole.
#[derive(Debug, Default)]
pub(crate) struct KeyStore {
    /// Sorted by digest prefix, so keys sharing a prefix are adjacent.
    records: Box<[Arc<KeyRecord>]>,
    /// Digest prefix → position of the first record with that prefix.
    index: HashMap<u64, u32, BuildHasherDefault<PrefixHasher>>,
}

impl KeyStore {
    /// A store of `loaded`. Keys whose name was in `previous` keep their usage figures.
    pub fn new(loaded: Vec<Loaded>, previous: Option<&KeyStore>) -> Self {
        let mut previous_by_name: HashMap<&str, &KeyRecord> = previous
            .map(|p| p.records().map(|r| (&*r.name, &**r)).collect())
            .unwrap_or_default();
        let mut scope_sets: HashMap<Vec<String>, Arc<[Box<str>]>> = HashMap::new();
        let mut records: Vec<Arc<KeyRecord>> = loaded
            .into_iter()
            .map(|Loaded { name, entry, .. }| {
                let before = previous_by_name.remove(name.as_str());
                let usage = before.map(|r| r.usage.clone()).unwrap_or_default();
                let rate = entry.rate.map(|spec| {
                    before
                        .and_then(|r| r.rate.clone())
                        .filter(|kept| kept.spec == spec)
                        .unwrap_or_else(|| {
                            Arc::new(KeyRate {
                                spec,
                                cell: GcraCell::default(),
                            })
                        })
                });
                Arc::new(KeyRecord {
                    name: name.into(),
                    digest: entry.digest,
                    scopes: scope_sets
                        .entry(entry.scopes)
                        .or_insert_with_key(|s| s.iter().map(|s| s.as_str().into()).collect())
                        .clone(),
                    expires: entry.expires,
                    ips: entry.ips.into(),
                    usage,
                    rate,
                })
            })
            .collect();
        records.sort_by_key(|r| r.digest.prefix());
        let mut index = HashMap::with_capacity_and_hasher(records.len(), Default::default());
        for (i, r) in records.iter().enumerate().rev() {
            // Iterating backwards leaves each prefix pointing at its first record.
            index.insert(r.digest.prefix(), i as u32);
        }
        KeyStore {
            records: records.into(),
            index,
        }
    }

    /// The record whose digest equals `digest`: one map probe, then a constant-time comparison of
    /// the full digest (two distinct keys sharing 64 bits of digest are compared in turn).
    pub fn find(&self, digest: &KeyDigest) -> Option<&Arc<KeyRecord>> {
        let prefix = digest.prefix();
        let first = *self.index.get(&prefix)? as usize;
        self.records[first..]
            .iter()
            .take_while(|r| r.digest.prefix() == prefix)
            .find(|r| r.digest.ct_eq(digest))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn records(&self) -> impl Iterator<Item = &Arc<KeyRecord>> {
        self.records.iter()
    }
}

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
#[derive(Clone)]
pub struct ApiKey(pub(crate) Arc<KeyRecord>);

impl ApiKey {
    /// The key's name: `<NAME>` of `API_KEY_<NAME>`, lowercased, or the name in the keys file.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The scopes granted to the key.
    pub fn scopes(&self) -> Vec<&str> {
        self.0.scopes.iter().map(|s| &**s).collect()
    }

    /// Whether the key has `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.iter().any(|s| &**s == scope)
    }

    /// When the key expires, if it does.
    pub fn expires(&self) -> Option<OffsetDateTime> {
        self.0.expires
    }

    /// The fingerprint of the key in logs: the first 8 hex digits of its SHA-256 digest.
    pub fn fingerprint(&self) -> Fingerprint {
        self.0.digest.fingerprint()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name())
            .field("fingerprint", &self.fingerprint())
            .field("scopes", &self.0.scopes)
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
    pub reload_lock: Mutex<Option<crate::reload::FileState>>,
    // Swapped whole on reload: a request sees the old store or the new one, never a mix, and
    // reading it takes no lock.
    pub store: ArcSwap<KeyStore>,
    unattributed: Usage,
    /// Bounds the rate of `request rejected` events.
    pub rejection_log: RejectionLog,
}

impl ApiKeys {
    /// An empty store; [`reload`](Self::reload) fills it.
    pub(crate) fn new(config: Config, code_keys: Vec<Loaded>) -> Self {
        let limiter = Limiter::new(&config);
        ApiKeys {
            shared: Arc::new(Shared {
                rejection_log: RejectionLog::new(config.rejected_log_limit),
                config,
                code_keys,
                limiter,
                reload_lock: Mutex::new(None),
                store: ArcSwap::from_pointee(KeyStore::default()),
                unattributed: Usage::default(),
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
            .records()
            .map(|r| r.name.to_string())
            .collect();
        names.sort();
        names
    }

    /// Usage figures of every key, and the rejections no key can be blamed for.
    pub fn usage(&self) -> UsageReport {
        let store = self.shared.store.load();
        let mut keys: Vec<KeyUsage> = store
            .records()
            .map(|r| KeyUsage {
                name: r.name.to_string(),
                counts: r.usage.snapshot(),
            })
            .collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        UsageReport {
            keys,
            unattributed: self.shared.unattributed.snapshot().rejected,
        }
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
        match self.check_digest(&KeyDigest::of(presented.as_bytes()), client) {
            Ok(key) => {
                key.0.usage.record_accepted();
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
            && presented.bytes().all(|b| b.is_ascii_graphic())
            && checksum(presented) != Checksum::Invalid
    }

    /// Finds the key with this digest and checks its expiry and address allowlist. On failure,
    /// the key is returned when it was recognised (expired, wrong address).
    pub(crate) fn check_digest(
        &self,
        digest: &KeyDigest,
        client: Option<IpAddr>,
    ) -> Result<ApiKey, (Reason, Option<ApiKey>)> {
        let store = self.shared.store.load();
        let Some(record) = store.find(digest) else {
            return Err((Reason::Unknown, None));
        };
        let key = ApiKey(Arc::clone(record));
        if record
            .expires
            .is_some_and(|at| OffsetDateTime::now_utc() >= at)
        {
            return Err((Reason::Expired, Some(key)));
        }
        if !record.ips.is_empty() {
            let allowed = client.is_some_and(|ip| {
                let ip = ip.to_canonical();
                record.ips.iter().any(|net| net.contains(&ip))
            });
            if !allowed {
                return Err((Reason::Ip, Some(key)));
            }
        }
        Ok(key)
    }

    pub(crate) fn record_rejected(&self, reason: Reason, key: Option<&ApiKey>) {
        match key {
            Some(key) => key.0.usage.record_rejected(reason),
            None => self.shared.unattributed.record_rejected(reason),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::parse_entry;
    use crate::load::Source;

    fn store_of(keys: &[(&str, &str)]) -> KeyStore {
        KeyStore::new(
            keys.iter()
                .map(|(name, value)| Loaded {
                    name: name.to_string(),
                    source: Source::Code(name.to_string()),
                    entry: parse_entry(value).unwrap(),
                })
                .collect(),
            None,
        )
    }

    #[test]
    fn finds_every_key_and_nothing_else() {
        let keys: Vec<(String, String)> = (0..500)
            .map(|i| (format!("k{i}"), format!("key-number-{i:08}-padding")))
            .collect();
        let pairs: Vec<(&str, &str)> = keys.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let store = store_of(&pairs);
        for (name, key) in &keys {
            let found = store.find(&KeyDigest::of(key.as_bytes())).unwrap();
            assert_eq!(&*found.name, name);
        }
        assert!(store
            .find(&KeyDigest::of(b"key-number-00000500-padding"))
            .is_none());
    }

    #[test]
    fn keys_sharing_a_digest_prefix_are_told_apart() {
        // Forge two digests with equal prefixes through the hashed form.
        let a = format!("sha256:{}{}", "ab".repeat(8), "00".repeat(24));
        let b = format!("sha256:{}{}", "ab".repeat(8), "11".repeat(24));
        let store = store_of(&[("a", &a), ("b", &b)]);
        let digest_b = KeyDigest::from_hex(&b[7..]).unwrap();
        assert_eq!(&*store.find(&digest_b).unwrap().name, "b");
        let digest_c =
            KeyDigest::from_hex(&format!("{}{}", "ab".repeat(8), "22".repeat(24))).unwrap();
        assert!(store.find(&digest_c).is_none());
    }
}
