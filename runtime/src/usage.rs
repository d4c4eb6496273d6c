//! Per-key usage figures: plain atomic counters, so counting costs no lock on the request path.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use serde::Serialize;
use time::OffsetDateTime;

use crate::reject::Reason;

/// Counters of one key (or, for rejections that name no key, of the whole store).
#[derive(Debug, Default)]
pub(crate) struct Usage {
    accepted: AtomicU64,
    rejected: [AtomicU64; Reason::ALL.len()],
    /// Unix time in milliseconds of the last accepted request; 0 when never used.
    last_used_ms: AtomicI64,
}

impl Usage {
    pub(crate) fn record_accepted(&self) {
        self.accepted.fetch_add(1, Relaxed);
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        self.last_used_ms.fetch_max(now as i64, Relaxed);
    }

    pub(crate) fn record_rejected(&self, reason: Reason) {
        self.rejected[reason as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Counts {
        let rejected = Reason::ALL
            .iter()
            .filter_map(|&r| {
                let n = self.rejected[r as usize].load(Relaxed);
                (n > 0).then_some((r.as_str(), n))
            })
            .collect();
        let last_ms = self.last_used_ms.load(Relaxed);
        Counts {
            accepted: self.accepted.load(Relaxed),
            rejected,
            last_used: (last_ms > 0)
                .then(|| {
                    OffsetDateTime::from_unix_timestamp_nanos(i128::from(last_ms) * 1_000_000).ok()
                })
                .flatten(),
        }
    }
}

/// A snapshot of request counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Requests this key was accepted for.
    pub accepted: u64,
    /// Rejections by [reason](crate::Reason::as_str), only reasons that occurred.
    pub rejected: BTreeMap<&'static str, u64>,
    /// When the key was last accepted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used: Option<OffsetDateTime>,
}

impl Counts {
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
    pub counts: Counts,
}

/// Usage figures of every key, from [`ApiKeys::usage`](crate::ApiKeys::usage).
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
    pub fn key(&self, name: &str) -> Option<&Counts> {
        self.keys.iter().find(|k| k.name == name).map(|k| &k.counts)
    }
}
