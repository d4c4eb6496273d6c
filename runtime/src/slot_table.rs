//! How the keys of a store are laid out in memory, so that checking a key reads one cache line.
//!
//! Every configured key has a 64-byte [`Slot`]: its digest, its expiry, its counters of accepted
//! requests and the place of its [`Profile`] (scopes, addresses, rate: shared by every key with
//! the same ones). Slots sit in one array in digest order, each at its *home* (the digest's first
//! 8 bytes scaled to the array's length) or just after it when earlier digests took that place:
//! ordered linear probing. A lookup starts at the home and walks forward while the digests are
//! smaller; as digests are uniformly distributed and the array is at most four sevenths full,
//! that is one or two neighbouring slots, and the search for an unknown key stops at the first
//! larger digest or empty slot. An accepted request then writes its counters into the line it has
//! just read.
//!
//! Why not a `HashMap` of records: a lookup there reads the map's control bytes, its bucket, a
//! record behind an `Arc` and counters behind another, each in a different place. With a million
//! keys few of those are in cache, and each costs a TLB miss and a trip to memory.
//!
//! What belongs to a key's *name* rather than to one version of the store (usage figures, rate
//! state) is in its [`KeyIdentity`], which a reload hands from store to store.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use time::OffsetDateTime;

use crate::config::MetricsKeyLabel;
#[cfg(feature = "postgres")]
use crate::entry::KeyEntry;
use crate::keygen::digest::KeyDigest;
#[cfg(feature = "postgres")]
use crate::load::KeySource;
use crate::load::Loaded;
use crate::load::ReloadSummary;
use crate::rate::{GcraCell, RateSpec};
use crate::usage::Usage;

/// What belongs to a key name rather than to one version of the key: kept from store to store
/// across reloads, so usage figures and rate state follow the name.
#[derive(Debug)]
pub(crate) struct KeyIdentity {
    pub name: Box<str>,
    /// Rejections of the key, and the accepted requests of stores that have been replaced.
    pub usage: Usage,
    /// The in-process state of the key's `rate=`, if it has one.
    pub rate: GcraCell,
}

/// What a key may do and from where: shared by all keys of a store with the same profile.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Profile {
    pub scopes: Box<[Box<str>]>,
    /// Client networks the key may be used from; empty for anywhere.
    pub ips: Box<[IpNet]>,
    pub rate: Option<RateSpec>,
}

/// A profile as parsed, to find the profiles a store already has.
type ProfileKey = (Vec<String>, Vec<IpNet>, Option<RateSpec>);

/// An expiry as microseconds since the Unix epoch (`NEVER` when the key does not expire): one
/// integer comparison on the request path, and fails closed by rounding the instant down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expiry(i64);

impl Expiry {
    pub const NEVER: Expiry = Expiry(i64::MAX);

    pub fn from_time(at: Option<OffsetDateTime>) -> Self {
        match at {
            None => Expiry::NEVER,
            Some(at) => {
                let micros = at.unix_timestamp_nanos().div_euclid(1_000);
                // `time` stops at year 9999, well inside an i64 of microseconds.
                Expiry(i64::try_from(micros).unwrap_or(i64::MAX - 1))
            }
        }
    }

    pub fn to_time(self) -> Option<OffsetDateTime> {
        if self == Expiry::NEVER {
            return None;
        }
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000).ok()
    }

    /// Whether the key has expired by now. Reads the clock only for keys that expire.
    pub fn has_passed(self) -> bool {
        self != Expiry::NEVER && unix_micros() >= self.0
    }
}

/// Microseconds since the Unix epoch, negative before it.
fn unix_micros() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// Seconds since the Unix epoch, in 32 bits (saturating in 2106; 0 before 1970).
pub(crate) fn unix_seconds() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// One key of one store: everything a request reads and writes, in one cache line.
#[repr(C, align(64))]
pub(crate) struct Slot {
    pub digest: KeyDigest,
    pub identity: Arc<KeyIdentity>,
    pub expires: Expiry,
    /// Requests accepted with this store; folded into the identity when the store is replaced.
    accepted: AtomicU64,
    /// When the key was last accepted, in [`unix_seconds`]; 0 for never.
    last_used: AtomicU32,
    /// Index into the store's profiles.
    profile: u32,
}

impl Slot {
    /// Counts an accepted request; in `api_key_requests_total` labelled as `label` says.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub fn record_accepted(&self, label: MetricsKeyLabel) {
        self.accepted.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.identity
            .usage
            .meter_accepted(&self.identity.name, label);
        let now = unix_seconds();
        // Most requests land in a second that is already recorded: a read, no write.
        if now > self.last_used.load(Relaxed) {
            self.last_used.fetch_max(now, Relaxed);
        }
    }

    /// Requests accepted with this store, and when the last one was (0 for never).
    pub fn accepted(&self) -> (u64, u32) {
        (self.accepted.load(Relaxed), self.last_used.load(Relaxed))
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("name", &self.identity.name)
            .field("fingerprint", &self.digest.fingerprint())
            .field("expires", &self.expires.to_time())
            .finish_non_exhaustive()
    }
}

/// An immutable set of keys. Reloading builds a new one and swaps it in whole.
#[derive(Debug, Default)]
pub(crate) struct SlotTable {
    /// In digest order; `None` where no key lives. Past `homes` are only keys that spilled over
    /// the end.
    slots: Box<[Option<Slot>]>,
    /// Home positions are spread over `0..homes`.
    homes: usize,
    profiles: Box<[Profile]>,
    len: usize,
}

/// Where a digest prefix would sit in a table of `homes` places: order-preserving, uniform.
fn home(prefix: u64, homes: usize) -> usize {
    ((u128::from(prefix) * homes as u128) >> 64) as usize
}

impl SlotTable {
    /// A store of `loaded`. Keys whose name was in `previous` keep their identity: usage figures
    /// and, while their rate is unchanged, their rate state.
    pub fn new(mut loaded: Vec<Loaded>, previous: Option<&SlotTable>) -> Self {
        let mut previous: HashMap<&str, (&Arc<KeyIdentity>, Option<RateSpec>)> = previous
            .map(|p| {
                p.iter()
                    .map(|(_, s)| (&*s.identity.name, (&s.identity, p.profile(s).rate)))
                    .collect()
            })
            .unwrap_or_default();
        let mut profiles: Vec<Profile> = Vec::new();
        let mut profile_index: HashMap<ProfileKey, u32> = HashMap::new();

        loaded.sort_unstable_by_key(|l| l.entry.digest.prefix());
        let len = loaded.len();
        // At most four sevenths full: a key is on average half a slot past its home, against 1.5
        // slots at three quarters full; at four fifths full a check of a million-key store
        // measured 50 ns slower.
        let homes = len + len * 3 / 4;
        let mut slots: Vec<Option<Slot>> = Vec::with_capacity(homes);
        for Loaded { name, entry, .. } in loaded {
            let identity = match previous.remove(name.as_str()) {
                Some((identity, rate)) => {
                    if rate != entry.rate {
                        identity.rate.reset();
                    }
                    Arc::clone(identity)
                }
                None => Arc::new(KeyIdentity {
                    name: name.into(),
                    usage: Usage::default(),
                    rate: GcraCell::default(),
                }),
            };
            let profile = *profile_index
                .entry((entry.scopes, entry.ips, entry.rate))
                .or_insert_with_key(|(scopes, ips, rate)| {
                    profiles.push(Profile {
                        scopes: scopes.iter().map(|s| s.as_str().into()).collect(),
                        ips: ips.as_slice().into(),
                        rate: *rate,
                    });
                    u32::try_from(profiles.len() - 1).expect("fewer than 2^32 keys")
                });
            let at = home(entry.digest.prefix(), homes);
            if slots.len() < at {
                slots.resize_with(at, || None);
            }
            slots.push(Some(Slot {
                digest: entry.digest,
                identity,
                expires: Expiry::from_time(entry.expires),
                accepted: AtomicU64::new(0),
                last_used: AtomicU32::new(0),
                profile,
            }));
        }
        if slots.len() < homes {
            slots.resize_with(homes, || None);
        }
        SlotTable {
            slots: slots.into(),
            homes,
            profiles: profiles.into(),
            len,
        }
    }

    /// The slot whose digest equals `digest`, and its position. Digest prefixes are compared to
    /// find the place, with an early exit as in any hash table; the full digest in constant time.
    ///
    /// The prefix comparisons' timing can tell a caller where the digest of the key it sent lies
    /// among the stored digests. That is no help in finding a key whose digest is a stored one
    /// (a SHA-256 preimage), so only the comparison that decides equality is constant-time.
    pub fn find(&self, digest: &KeyDigest) -> Option<(usize, &Slot)> {
        let prefix = digest.prefix();
        let start = home(prefix, self.homes);
        for (i, slot) in self.slots.get(start..)?.iter().enumerate() {
            let slot = slot.as_ref()?;
            match slot.digest.prefix().cmp(&prefix) {
                Ordering::Less => {}
                Ordering::Greater => return None,
                Ordering::Equal if slot.digest.ct_eq(digest) => return Some((start + i, slot)),
                Ordering::Equal => {}
            }
        }
        None
    }

    /// The slot at `position`, as returned by [`find`](Self::find) or [`iter`](Self::iter).
    pub fn slot(&self, position: usize) -> Option<&Slot> {
        self.slots.get(position)?.as_ref()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Every key, with its position.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Slot)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.as_ref()?)))
    }

    pub fn profile(&self, slot: &Slot) -> &Profile {
        &self.profiles[slot.profile as usize]
    }

    /// This store without the keys `withdrawn` says to drop, every other key as it is
    /// (identities, usage and rate state kept): for revocations that must apply even when a
    /// full reload fails.
    #[cfg(feature = "postgres")]
    pub fn without(&self, withdrawn: impl Fn(&KeyDigest) -> bool) -> SlotTable {
        let loaded = self
            .iter()
            .filter(|(_, slot)| !withdrawn(&slot.digest))
            .map(|(_, slot)| {
                let profile = self.profile(slot);
                let name = slot.identity.name.to_string();
                Loaded {
                    // Not read by `SlotTable::new`, which keeps only names and entries.
                    source: KeySource::Code(name.clone()),
                    name,
                    entry: KeyEntry {
                        digest: slot.digest,
                        scopes: profile.scopes.iter().map(|s| s.to_string()).collect(),
                        expires: slot.expires.to_time(),
                        ips: profile.ips.to_vec(),
                        rate: profile.rate,
                    },
                }
            })
            .collect();
        SlotTable::new(loaded, Some(self))
    }

    /// Moves the counts of accepted requests into the keys' identities, for a store that no
    /// request can reach any more.
    pub fn retire(&self) {
        for (_, slot) in self.iter() {
            let (accepted, last_used) = slot.accepted();
            slot.identity.usage.add_accepted(accepted, last_used);
        }
    }
}

/// What a reload changed: compared by name, a key changed when its secret, scopes, expiry,
/// addresses or rate differ.
impl SlotTable {
    /// What changed, by key name, from `old` to `new`.
    pub(crate) fn changes(old: &SlotTable, new: &SlotTable) -> ReloadSummary {
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
fn same((old, a): (&SlotTable, &Slot), (new, b): (&SlotTable, &Slot)) -> bool {
    a.digest.ct_eq(&b.digest) && a.expires == b.expires && old.profile(a) == new.profile(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::parse_entry;
    use crate::load::KeySource;

    fn store_of(keys: &[(&str, &str)]) -> SlotTable {
        SlotTable::new(
            keys.iter()
                .map(|(name, value)| Loaded {
                    name: name.to_string(),
                    source: KeySource::Code(name.to_string()),
                    entry: parse_entry(value).unwrap(),
                })
                .collect(),
            None,
        )
    }

    fn hashed(hex_prefix: &str, fill: &str) -> String {
        format!(
            "sha256:{hex_prefix}{}",
            fill.repeat((64 - hex_prefix.len()) / 2)
        )
    }

    fn digest(entry: &str) -> KeyDigest {
        KeyDigest::from_hex(&entry[7..]).unwrap()
    }

    #[test]
    fn a_slot_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Slot>(), 64);
        assert_eq!(std::mem::size_of::<Option<Slot>>(), 64);
        assert_eq!(std::mem::align_of::<Slot>(), 64);
    }

    #[test]
    fn finds_every_key_and_nothing_else() {
        let keys: Vec<(String, String)> = (0..500)
            .map(|i| (format!("k{i}"), format!("key-number-{i:08}-padding")))
            .collect();
        let pairs: Vec<(&str, &str)> = keys.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let store = store_of(&pairs);
        assert_eq!(store.len(), 500);
        assert_eq!(store.iter().count(), 500);
        for (name, key) in &keys {
            let found = store.find(&KeyDigest::of(key.as_bytes())).unwrap();
            assert_eq!(&*found.1.identity.name, name);
        }
        for i in 500..5000 {
            let unknown = format!("key-number-{i:08}-padding");
            assert!(store.find(&KeyDigest::of(unknown.as_bytes())).is_none());
        }
    }

    #[test]
    fn keys_sharing_a_digest_prefix_are_told_apart() {
        let a = hashed(&"ab".repeat(8), "00");
        let b = hashed(&"ab".repeat(8), "11");
        let store = store_of(&[("a", &a), ("b", &b)]);
        assert_eq!(&*store.find(&digest(&b)).unwrap().1.identity.name, "b");
        assert_eq!(&*store.find(&digest(&a)).unwrap().1.identity.name, "a");
        assert!(store
            .find(&digest(&hashed(&"ab".repeat(8), "22")))
            .is_none());
    }

    #[test]
    fn crowded_homes_and_the_end_of_the_table() {
        // Twenty digests that all want the last place, and twenty that want the first: they
        // spill past the end and crowd the start, and every one is still found.
        let mut entries = Vec::new();
        for i in 0..20 {
            entries.push((
                format!("hi{i}"),
                hashed(&format!("ffffffffffff{i:02x}"), "77"),
            ));
            entries.push((
                format!("lo{i}"),
                hashed(&format!("000000000000{i:02x}"), "77"),
            ));
        }
        let pairs: Vec<(&str, &str)> = entries
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let store = store_of(&pairs);
        assert!(store.slots.len() > store.homes, "some keys spilled over");
        for (name, entry) in &entries {
            assert_eq!(&*store.find(&digest(entry)).unwrap().1.identity.name, name);
        }
        for probe in ["ffffffffffffff", "00000000000000ff", "7fffffffffffffff"] {
            assert!(store.find(&digest(&hashed(probe, "77"))).is_none());
        }
    }

    #[test]
    fn an_empty_store_finds_nothing() {
        let store = SlotTable::new(Vec::new(), None);
        assert!(store.find(&KeyDigest::of(b"anything-at-all")).is_none());
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn expiry_rounds_down_and_round_trips() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let expiry = Expiry::from_time(Some(at));
        assert_eq!(expiry, Expiry(1_700_000_000_123_456));
        assert!(expiry.has_passed());
        assert!(
            !Expiry::from_time(Some(OffsetDateTime::now_utc() + time::Duration::hours(1)))
                .has_passed()
        );
        assert_eq!(
            expiry.to_time().unwrap().unix_timestamp_nanos(),
            1_700_000_000_123_456_000
        );
        assert!(!Expiry::from_time(None).has_passed());
        assert!(Expiry::from_time(None).to_time().is_none());
    }
}
