//! Per-key usage figures: plain atomic counters, so counting costs no lock on the request path.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use serde::Serialize;
use time::OffsetDateTime;

use crate::config::MetricsKeyLabel;
use crate::reason::Reason;

/// The name the unattributed rejections go by where a key's name would be (the `key` label of
/// the `metrics` feature). Key names are `[a-z0-9_]`, so no configured key can be mistaken for it.
pub(crate) const NO_KEY: &str = "(none)";

/// Counters of one key.
///
/// Requests accepted with the current store are counted in its slots, beside the digests (see
/// [`crate::slot_table`]); they come here when that store is replaced.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// Requests accepted with stores that have since been replaced.
    accepted: AtomicU64,
    /// When the key was last accepted, in seconds since the Unix epoch; 0 for never.
    last_used: AtomicU32,
    rejected: Rejected<{ Reason::OF_A_KEY.len() }>,
    /// `api_key_requests_total{outcome="accepted"}` of the key.
    #[cfg(feature = "metrics")]
    accepted_meter: crate::meter::Outcome,
}

impl Usage {
    pub(crate) fn add_accepted(&self, accepted: u64, last_used: u32) {
        self.accepted.fetch_add(accepted, Relaxed);
        self.last_used.fetch_max(last_used, Relaxed);
    }

    /// Counts a rejection of the key `name` (labelled as `label` says); `false` (and nothing
    /// counted) for a reason that names no key.
    pub(crate) fn count_rejected(
        &self,
        name: &str,
        reason: Reason,
        label: MetricsKeyLabel,
    ) -> bool {
        self.rejected.count(&Reason::OF_A_KEY, reason, name, label)
    }

    /// Counts an accepted request of the key `name` in `api_key_requests_total`, labelled as
    /// `label` says; the usage figure itself is counted in the slot (see [`crate::meter`]).
    #[cfg(feature = "metrics")]
    pub(crate) fn meter_accepted(&self, name: &str, label: MetricsKeyLabel) {
        self.accepted_meter.increment(label, name, "accepted");
    }

    /// The counts, with `live`: the accepted requests (and when the last was) that stores still
    /// in use hold for this key.
    pub(crate) fn snapshot(&self, live: impl IntoIterator<Item = (u64, u32)>) -> RequestCounts {
        let (accepted, last_used) = live.into_iter().fold(
            (self.accepted.load(Relaxed), self.last_used.load(Relaxed)),
            |(n, last), (more, at)| (n + more, last.max(at)),
        );
        RequestCounts {
            accepted,
            rejected: self.rejected.snapshot(&Reason::OF_A_KEY),
            last_used: (last_used > 0)
                .then(|| OffsetDateTime::from_unix_timestamp(i64::from(last_used)).ok())
                .flatten(),
        }
    }
}

/// Rejections by reason, one counter for each of a fixed list of reasons.
#[derive(Debug)]
pub(crate) struct Rejected<const N: usize> {
    counts: [AtomicU64; N],
    /// The same counts in `api_key_requests_total`, reason by reason.
    #[cfg(feature = "metrics")]
    meters: [crate::meter::Outcome; N],
}

impl<const N: usize> Default for Rejected<N> {
    fn default() -> Self {
        Rejected {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            #[cfg(feature = "metrics")]
            meters: std::array::from_fn(|_| crate::meter::Outcome::default()),
        }
    }
}

impl<const N: usize> Rejected<N> {
    /// Counts `reason`, if it is one of `reasons` (the list this set counts), against `key`
    /// (a key's name, or [`NO_KEY`]): in the usage figures and, with the `metrics` feature, in
    /// `api_key_requests_total`, labelled as `label` says (see [`crate::meter`]).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn count(
        &self,
        reasons: &[Reason; N],
        reason: Reason,
        key: &str,
        label: MetricsKeyLabel,
    ) -> bool {
        match reasons.iter().position(|&r| r == reason) {
            Some(i) => {
                self.counts[i].fetch_add(1, Relaxed);
                #[cfg(feature = "metrics")]
                self.meters[i].increment(label, key, reason.as_str());
                true
            }
            None => false,
        }
    }

    /// The reasons that occurred, with their counts.
    pub(crate) fn snapshot(&self, reasons: &[Reason; N]) -> BTreeMap<&'static str, u64> {
        reasons
            .iter()
            .zip(&self.counts)
            .filter_map(|(r, n)| {
                let n = n.load(Relaxed);
                (n > 0).then_some((r.as_str(), n))
            })
            .collect()
    }
}

/// A snapshot of request counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    /// Requests this key was accepted for.
    pub accepted: u64,
    /// Rejections by [reason](crate::Reason::as_str), only reasons that occurred.
    pub rejected: BTreeMap<&'static str, u64>,
    /// When the key was last accepted, to the second.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used: Option<OffsetDateTime>,
}

impl RequestCounts {
    /// All rejections, whatever the reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Usage of one configured key. Holds the key's name, never key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyUsage {
    /// The key's name.
    pub name: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: RequestCounts,
}

/// Usage figures of every key, from [`ApiKeyStore::usage`](crate::ApiKeyStore::usage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    /// One entry per configured key, sorted by name.
    pub keys: Vec<KeyUsage>,
    /// Rejections that no key can be blamed for (missing, malformed, duplicated or unknown
    /// keys), by reason.
    pub unattributed: BTreeMap<&'static str, u64>,
}

impl UsageReport {
    /// The usage of the key called `name`.
    pub fn key(&self, name: &str) -> Option<&RequestCounts> {
        self.keys.iter().find(|k| k.name == name).map(|k| &k.counts)
    }
}
