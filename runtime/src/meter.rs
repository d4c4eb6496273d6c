//! The `metrics` feature: decisions, loaded keys, reloads and the failure table's fill, emitted
//! through the [`metrics`] facade to whatever recorder (Prometheus, StatsD, …) the application
//! installs. Without the feature none of this is compiled.
//!
//! One rule keeps `api_key_requests_total` and the usage figures ([`crate::usage`]) from ever
//! disagreeing: a request is counted here where, and only where, a usage figure grows. That is
//! two places: [`Slot::record_accepted`](crate::slot_table::Slot::record_accepted) for an
//! accepted request, and [`Rejected::count`](crate::usage::Rejected::count) for a refused one,
//! a key's reasons and the unattributed ones alike. The `key` label is the key's configured name
//! when the usage figures count the request against that key, `(none)`
//! ([`NO_KEY`](crate::usage::NO_KEY)) when they count it as unattributed; a label value never comes
//! from the request, so the label set stays bounded and holds no key material.
//!
//! `metrics_key_label` ([`MetricsKeyLabel`]) bounds it further: `none` leaves the label out, and
//! under `name` a key retired by rotation counts under the name it was retired from
//! ([`key_label`]). Either is applied once per series, when its handle is made.

use std::fmt;
use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, gauge, Counter};

use crate::config::MetricsKeyLabel;
use crate::load::retired_from;

/// Requests decided, by `key` and `outcome` (`accepted`, or the [reason](crate::Reason::as_str)).
pub(crate) const REQUESTS: &str = "api_key_requests_total";
/// Keys in the store in use.
pub(crate) const KEYS: &str = "api_key_keys";
/// Reloads of the keys after start, by `outcome` (`ok` or `error`).
pub(crate) const RELOADS: &str = "api_key_reloads_total";
/// Addresses in the in-memory failure table that are still paying off failures.
pub(crate) const FAILURE_TABLE: &str = "api_key_failure_table_entries";
/// Seconds since the key table's keys were last known to be current (feature `postgres`).
#[cfg(feature = "postgres")]
pub(crate) const DATABASE_STALENESS: &str = "api_key_database_staleness_seconds";
/// Live rows of the key table left out of loads because they do not load (feature `postgres`).
#[cfg(feature = "postgres")]
pub(crate) const DATABASE_ROWS_SKIPPED: &str = "api_key_database_rows_skipped";

/// Describes every metric to the recorder; called at ignite, by `ApiKeyStore::start_metering`.
pub(crate) fn describe() {
    describe_counter!(
        REQUESTS,
        "Requests to protected routes, by key name ((none) when no key is blamed; no key label \
         with metrics_key_label = none) and outcome (accepted or the rejection reason)"
    );
    describe_gauge!(KEYS, "API keys loaded");
    describe_counter!(
        RELOADS,
        "Reloads of the API keys after start, by outcome (ok or error)"
    );
    describe_gauge!(
        FAILURE_TABLE,
        "Client addresses in the failure-limit table that are still within their limit's window"
    );
    #[cfg(feature = "postgres")]
    {
        describe_gauge!(
            DATABASE_STALENESS,
            "Seconds since the key table's keys were last known to be current (a read or a check)"
        );
        describe_gauge!(
            DATABASE_ROWS_SKIPPED,
            "Live rows of the key table left out because they do not load"
        );
    }
}

/// The number of keys loaded.
pub(crate) fn keys(count: usize) {
    gauge!(KEYS).set(count as f64);
}

/// A reload of the keys, successful or not.
pub(crate) fn reloaded(ok: bool) {
    counter!(RELOADS, "outcome" => if ok { "ok" } else { "error" }).increment(1);
}

/// How often the failure table's fill is counted again (a pass over the table, 64 Ki atomic
/// reads at the default size: tens of microseconds).
pub(crate) const FAILURE_TABLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The addresses the failure table holds.
pub(crate) fn failure_table(entries: usize) {
    gauge!(FAILURE_TABLE).set(entries as f64);
}

/// How long since the key table's keys were known current, and how many of its rows are left
/// out.
#[cfg(feature = "postgres")]
pub(crate) fn database(staleness: std::time::Duration, skipped: usize) {
    gauge!(DATABASE_STALENESS).set(staleness.as_secs_f64());
    gauge!(DATABASE_ROWS_SKIPPED).set(skipped as f64);
}

/// Keys loaded past which the fairing warns at start that `metrics_key_label` is `name` by
/// default: a thousand keys make from 1,000 to 6,000 series (accepted, and each reason a key can
/// be refused for that occurred), some 70 to 400 kB of text at every scrape.
pub(crate) const MANY_KEYS: usize = 1_000;

/// The `key` label value of a request counted against `key` (a configured name or `(none)`)
/// under `setting`; `None` for no `key` label.
///
/// Under `name`, a name ending in `_r` and digits counts under the name before it: that is how
/// `apikey rotate` names the key it retires, so the old key's last requests are counted with its
/// successor's, and rotations, however many, add no series.
fn key_label(setting: MetricsKeyLabel, key: &str) -> Option<&str> {
    match setting {
        MetricsKeyLabel::Name => Some(retired_from(key).unwrap_or(key)),
        MetricsKeyLabel::None => None,
    }
}

/// The `api_key_requests_total` series of one key and one outcome, looked up in the recorder at
/// its first request and kept: later requests cost one atomic add, with no allocation and no
/// lookup, and the label is worked out that once. A series is therefore bound to the recorder
/// installed when it was first used: install the recorder before the application launches.
#[derive(Default)]
pub(crate) struct Outcome(OnceLock<Counter>);

impl Outcome {
    /// Counts a request of `key` (a configured name or `(none)`) with `outcome`, labelled as
    /// `setting` says.
    pub fn increment(&self, setting: MetricsKeyLabel, key: &str, outcome: &'static str) {
        self.0
            .get_or_init(|| match key_label(setting, key) {
                Some(key) => counter!(REQUESTS, "key" => key.to_owned(), "outcome" => outcome),
                None => counter!(REQUESTS, "outcome" => outcome),
            })
            .increment(1);
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Outcome")
    }
}
