//! The values some settings take: where a client's address comes from, the rate-limit backend,
//! what to do when Redis is down, the metrics' key label, the accepted-request log level.

use serde::{Deserialize, Serialize};

/// Which address of a client the failure limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAddress {
    /// The socket peer: right when clients connect directly.
    Peer,
    /// The address a trusted proxy (`trusted_proxies`) reports in Rocket's `ip_header`.
    Proxy,
}

/// Where rate-limit state is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitBackend {
    /// In this process: limits apply per instance.
    Memory,
    /// In Redis (feature `redis`): instances sharing it share the limits.
    Redis,
}

/// What a request meets when the shared limit store cannot be reached. Authentication never
/// depends on it; only the limits do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnavailablePolicy {
    /// Let the request through without limits (logged).
    Allow,
    /// Answer 503 with `Retry-After`.
    Deny,
}

/// The `key` label of `api_key_requests_total` (feature `metrics`), for every request of one
/// application: how many series the counter can have.
///
/// `name` (the default) gives each key name its own series, which is what a service with a
/// handful of clients wants, and bounded by the number of keys configured, never by what clients
/// send. Past a thousand keys that is more series than everything else a
/// service usually exports (a scrape of 100,000 keys is some 7 MB of text), so the fairing warns
/// at start while the default is in force; `none` then counts requests by outcome alone.
///
/// ```
/// use rocket_api_key::{config::MetricsKeyLabel, ApiKeyStore};
///
/// // `metrics_key_label = "none"` in the `api_keys` table of Rocket.toml, or in code:
/// let figment = rocket::Config::figment().merge(("api_keys.metrics_key_label", "none"));
/// let keys = ApiKeyStore::builder().from_env(false).load(&figment).unwrap();
/// assert_eq!(keys.config().metrics_key_label, Some(MetricsKeyLabel::None));
///
/// let keys = ApiKeyStore::builder()
///     .from_env(false)
///     .metrics_key_label(MetricsKeyLabel::None)
///     .build()
///     .unwrap();
/// assert_eq!(keys.config().metrics_key_label, Some(MetricsKeyLabel::None));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MetricsKeyLabel {
    /// `key` is the key's configured name, or `(none)` for a rejection no key is blamed for. A
    /// key that `apikey rotate` retired (`<name>_r<revision>`, through its grace period) is
    /// counted under the name it was retired from, so rotations add no series: any name ending
    /// in `_r` and digits is read that way.
    #[default]
    Name,
    /// No `key` label: one series per `outcome`, whatever the number of keys. (A constant label
    /// would only repeat itself on every series; the usage figures still count per key.)
    None,
}

/// The level of the event logged for each accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// No event.
    Off,
    /// `TRACE`.
    Trace,
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARN`.
    Warn,
}
