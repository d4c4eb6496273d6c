//! Configuration of the runtime itself (not of the keys): Rocket's `api_keys` table.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::entry::{MAX_KEY_LEN, MIN_PLAINTEXT_KEY_LEN};
use crate::env::{
    is_valid_env_prefix, shadowed_var, DATABASE_URL_VAR, DEFAULT_ENV_PREFIX, KEYS_FILE_VAR,
};
use crate::query::DEFAULT_REDACTED_PARAMS;
pub use crate::rate::{RateError, RateSpec};

/// How the API-key layer behaves. Every field has a default.
///
/// Read at ignite from the `api_keys` table of Rocket's configuration, so it can be set in
/// `Rocket.toml` or through `ROCKET_API_KEYS`, over the values given to
/// [`ApiKeyStore::builder`](crate::ApiKeyStore::builder) in code. The values shown are the
/// defaults; commented lines are settings that are off unless given:
///
/// ```toml
/// [default.api_keys]
/// header = "x-api-key"        # the header the key is read from
/// env_prefix = "API_KEY_"     # API_KEY_<NAME>=<entry>; `API_KEY` alone is the key `default`
/// from_env = true             # read keys from the environment at all
/// # keys_file = "/etc/orders/api-keys" # default: $API_KEYS_FILE, if set
/// keys_file_max_size = 67108864  # bytes (64 MiB); a larger keys file is refused
/// accept_bearer = false       # also accept `Authorization: Bearer <key>`
/// accepted_log_level = "debug"  # level of the event for each accepted request, or "off"
/// rejected_log_limit = 100    # `request rejected` events per second, the rest summarised; 0: all
/// max_key_len = 256           # longer presented keys are rejected unhashed
/// redacted_query_params = ["api_key", "apikey", "api-key", "key", "token", "access_token"]
/// register_catchers = true    # answer refusals with this layer's JSON (401/403 catchers at `/`)
/// trusted_proxies = []        # e.g. ["127.0.0.1", "10.0.0.0/8"]: peers whose `ip_header` is believed
/// reload_interval = "2s"      # how often the keys file is checked for changes; "0s": never
/// reload_on_sighup = true     # reload the keys when the process receives SIGHUP (Unix)
/// expiry_warning = "7d"       # warn at start and reload about keys expiring this soon
/// # failure_limit = "30/m"    # failed authentications per client address (off by default)
/// # failure_limit_address = "peer"  # required with it: "peer" (socket) or "proxy"
/// failure_table_size = 65536  # slots of the fixed-size failure table
/// rate_limit_backend = "memory"   # or "redis" (feature `redis`): limits shared by instances
/// # redis_url = "redis://127.0.0.1:6379"   # required with the redis backend
/// # redis_unavailable = "deny" # required with it: "allow" or "deny" when Redis is down
/// redis_timeout = "50ms"      # per Redis call
/// redis_prefix = "rak:"       # namespace of this service's limit keys
/// # keys_database_url = "postgres://orders@db.internal/orders"  # default: $API_KEYS_DATABASE_URL
/// # keys_database_ca = "/etc/orders/db-ca.pem"  # CA certificates for its TLS, beside Mozilla's
/// keys_database_required = true  # an unreachable database stops the start; false: start without
/// keys_database_poll = "30s"  # backstop check of the table's revision, besides LISTEN/NOTIFY
/// keys_database_timeout = "5s"  # per connection attempt and statement
/// keys_database_max_stale = "0s"  # withdraw the table's keys when out of touch this long; "0s": never
/// last_used_flush = "60s"     # how often last-used times are written to the table; "0s": never
/// # metrics_key_label = "name"  # or "none" (feature `metrics`); unset: "name", warned past 1,000 keys
/// ```
///
/// Its `Debug` hides the credentials of `redis_url` and `keys_database_url` (see
/// [`Config::redis_url`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The request header carrying the key (matched case-insensitively). Default `x-api-key`.
    pub header: String,
    /// Prefix of the per-key environment variables. Default `API_KEY_`.
    pub env_prefix: String,
    /// Whether keys are read from the environment. Default `true`.
    pub from_env: bool,
    /// The keys file. Default: the path in `API_KEYS_FILE`, when that variable is set and
    /// `from_env` is on.
    pub keys_file: Option<PathBuf>,
    /// The largest keys file read, in bytes; a larger one is a load error, even if it grows
    /// while it is read. Bounds the memory a wrong path (a log, a disk image) can take.
    /// Default 64 MiB.
    pub keys_file_max_size: u64,
    /// Whether `Authorization: Bearer <key>` is accepted as well. Default `false`.
    pub accept_bearer: bool,
    /// Level of the event logged for each accepted request. Default `debug`.
    pub accepted_log_level: LogLevel,
    /// The most `request rejected` events logged per second. Rejections over it are counted and
    /// reported in one `request rejections not logged` event per second, so a flood of bad keys
    /// cannot make logging the bottleneck; the usage figures count every rejection. `0` logs
    /// every rejection. Default 100.
    pub rejected_log_limit: u32,
    /// The longest key a request may present, in bytes. Default 256.
    pub max_key_len: usize,
    /// Query parameters whose values are replaced by `REDACTED` before Rocket logs the request
    /// (compared case-insensitively; the `header` name always is). Values shaped like a
    /// generated key are redacted under any name. A key in the query never authenticates; this
    /// keeps one sent by mistake out of the logs. The handler sees the redacted value. Default
    /// `api_key`, `apikey`, `api-key`, `key`, `token`, `access_token`; `[]` leaves only the
    /// header's name and generated keys.
    pub redacted_query_params: Vec<String>,
    /// Whether this layer answers its own refusals. Default `true`: the fairing registers its JSON
    /// catchers for 401 and 403 at `/`, and makes every refusal's answer the documented one
    /// (status, body, `WWW-Authenticate`, `Retry-After`) whichever catcher produced it, 429 and
    /// 503 included. `false` registers nothing and leaves those answers to the application's
    /// catchers, which can read [`Rejection::of`](crate::Rejection::of).
    pub register_catchers: bool,
    /// Addresses of reverse proxies whose client-address header (Rocket's `ip_header`, by default
    /// `X-Real-IP`) is trusted, for `ips` allowlists and logs. Any other peer is identified by its
    /// socket address, whatever headers it sends. Addresses (`"10.0.0.5"`) and networks
    /// (`"10.0.0.0/8"`) may be mixed. Default: none.
    ///
    /// Behind a listed proxy, the client's address is what Rocket's `ip_header` says: with
    /// `X-Real-IP` (Rocket's default) exactly one header holding one address; with
    /// `ip_header = "X-Forwarded-For"` the rightmost address that is not itself a listed proxy.
    /// Anything else (no header, two headers, a list in `X-Real-IP`, a value that is not an
    /// address) makes the address unknown: keys with `ips` are refused, and the failure limit
    /// counts the request against the proxy.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<IpNet>,
    /// How often the keys file is checked for changes (a duration such as `"2s"`, or seconds);
    /// a change is loaded and swapped in while the server runs. `0` turns polling off. Default
    /// 2 seconds.
    #[serde(with = "crate::duration::serde_duration")]
    pub reload_interval: Duration,
    /// Whether SIGHUP reloads the keys (Unix only). Default `true`.
    pub reload_on_sighup: bool,
    /// Keys expiring within this window are named in a warning at start and at each reload.
    /// Default 7 days.
    #[serde(with = "crate::duration::serde_duration")]
    pub expiry_warning: Duration,
    /// Failed authentications allowed per client address (e.g. `30/m`); past it the address is
    /// answered 429, even with a valid key, until the limit lets it through again. Off by default.
    pub failure_limit: Option<RateSpec>,
    /// Which client address the failure limit counts. Required with `failure_limit`: behind a
    /// reverse proxy every peer is the proxy, so the operator must say which address to trust.
    pub failure_limit_address: Option<ClientAddress>,
    /// Slots of the in-process failure table (rounded up to a power of two): its memory is
    /// fixed, 8 bytes a slot, whatever the number of addresses. Default 65,536.
    pub failure_table_size: usize,
    /// Where rate-limit state lives. Default `memory`.
    pub rate_limit_backend: LimitBackend,
    /// The Redis server of the `redis` backend. It may hold a password
    /// (`redis://user:password@host`, or `pass=` in a `redis+unix://` query): `Debug` and the
    /// layer's log events show it as `redis://user:***@host`.
    pub redis_url: Option<String>,
    /// What to do when Redis cannot be reached; required with the `redis` backend.
    pub redis_unavailable: Option<UnavailablePolicy>,
    /// The longest a Redis call may take before it counts as unreachable. Default 50 ms.
    #[serde(with = "crate::duration::serde_duration")]
    pub redis_timeout: Duration,
    /// Prefix of this service's keys in Redis. Default `rak:`.
    pub redis_prefix: String,
    /// The PostgreSQL key table (feature `postgres`): a `postgres://` URL or a `key=value`
    /// connection string. Default: `API_KEYS_DATABASE_URL`, when that variable is set and
    /// `from_env` is on. Its password is hidden as `redis_url`'s is.
    pub keys_database_url: Option<String>,
    /// A PEM file of CA certificates to trust for the key table's TLS, besides Mozilla's roots
    /// (a private CA, a cloud provider's bundle).
    pub keys_database_ca: Option<PathBuf>,
    /// Whether a database that cannot be reached at start stops ignition (default `true`). With
    /// `false` the application starts with the other sources' keys and keeps trying; the
    /// table's keys arrive once it answers.
    pub keys_database_required: bool,
    /// How often the listener also checks the table's revision, to catch a change whose
    /// notification was lost. `0` turns the check off. Default 30 seconds.
    #[serde(with = "crate::duration::serde_duration")]
    pub keys_database_poll: Duration,
    /// The longest a connection attempt or a statement may take. Default 5 seconds.
    #[serde(with = "crate::duration::serde_duration")]
    pub keys_database_timeout: Duration,
    /// How long an instance may serve the table's keys without knowing them to be current (a
    /// database it cannot reach, or that does not answer) before it withdraws them, failing
    /// closed until the table answers again. `0` (the default) never withdraws them: an outage
    /// then keeps serving the keys last read, revoked ones included, for as long as it lasts.
    /// At least twice `keys_database_timeout`; the table is checked at least twice within it.
    #[serde(with = "crate::duration::serde_duration")]
    pub keys_database_max_stale: Duration,
    /// How often each instance writes the last-used times of the table's keys, in one
    /// statement. `0` turns it off. Default 60 seconds.
    #[serde(with = "crate::duration::serde_duration")]
    pub last_used_flush: Duration,
    /// The `key` label of `api_key_requests_total` (feature `metrics`): see
    /// [`MetricsKeyLabel`]. Unset, it is [`MetricsKeyLabel::Name`], and the fairing warns at
    /// start when more than 1,000 keys are loaded; setting it, to either value, is the decision
    /// that silences the warning.
    pub metrics_key_label: Option<MetricsKeyLabel>,
}

/// Reads addresses and networks alike (`"127.0.0.1"`, `"10.0.0.0/8"`), as a list or one string:
/// `ipnet`'s own deserializer refuses a plain address, the form most people write.
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(item) => vec![item],
        OneOrMany::Many(items) => items,
    };
    items
        .iter()
        .map(|item| {
            let item = item.trim();
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format_args!(
                        "{:?} is not an IP address or a CIDR network such as \"10.0.0.0/8\"",
                        item
                    ))
                })
        })
        .collect()
}

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
/// use rocket_api_key_runtime::{config::MetricsKeyLabel, ApiKeyStore};
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

/// The header a key is read from unless `header` names another.
pub(crate) const DEFAULT_HEADER: &str = "x-api-key";

impl Default for Config {
    fn default() -> Self {
        Config {
            header: DEFAULT_HEADER.into(),
            env_prefix: DEFAULT_ENV_PREFIX.into(),
            from_env: true,
            keys_file: None,
            keys_file_max_size: 64 << 20,
            accept_bearer: false,
            accepted_log_level: LogLevel::Debug,
            rejected_log_limit: 100,
            max_key_len: MAX_KEY_LEN,
            redacted_query_params: DEFAULT_REDACTED_PARAMS.map(String::from).to_vec(),
            register_catchers: true,
            trusted_proxies: Vec::new(),
            reload_interval: Duration::from_secs(2),
            reload_on_sighup: true,
            expiry_warning: Duration::from_secs(7 * 86_400),
            failure_limit: None,
            failure_limit_address: None,
            failure_table_size: 65_536,
            rate_limit_backend: LimitBackend::Memory,
            redis_url: None,
            redis_unavailable: None,
            redis_timeout: Duration::from_millis(50),
            redis_prefix: "rak:".into(),
            keys_database_url: None,
            keys_database_ca: None,
            keys_database_required: true,
            keys_database_poll: Duration::from_secs(30),
            keys_database_timeout: Duration::from_secs(5),
            keys_database_max_stale: Duration::ZERO,
            last_used_flush: Duration::from_secs(60),
            metrics_key_label: None,
        }
    }
}

/// Every field, with `redis_url` and `keys_database_url` redacted. Destructured, so that a new field cannot be left out
/// unnoticed.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config {
            header,
            env_prefix,
            from_env,
            keys_file,
            keys_file_max_size,
            accept_bearer,
            accepted_log_level,
            rejected_log_limit,
            max_key_len,
            redacted_query_params,
            register_catchers,
            trusted_proxies,
            reload_interval,
            reload_on_sighup,
            expiry_warning,
            failure_limit,
            failure_limit_address,
            failure_table_size,
            rate_limit_backend,
            redis_url,
            redis_unavailable,
            redis_timeout,
            redis_prefix,
            keys_database_url,
            keys_database_ca,
            keys_database_required,
            keys_database_poll,
            keys_database_timeout,
            keys_database_max_stale,
            last_used_flush,
            metrics_key_label,
        } = self;
        f.debug_struct("Config")
            .field("header", header)
            .field("env_prefix", env_prefix)
            .field("from_env", from_env)
            .field("keys_file", keys_file)
            .field("keys_file_max_size", keys_file_max_size)
            .field("accept_bearer", accept_bearer)
            .field("accepted_log_level", accepted_log_level)
            .field("rejected_log_limit", rejected_log_limit)
            .field("max_key_len", max_key_len)
            .field("redacted_query_params", redacted_query_params)
            .field("register_catchers", register_catchers)
            .field("trusted_proxies", trusted_proxies)
            .field("reload_interval", reload_interval)
            .field("reload_on_sighup", reload_on_sighup)
            .field("expiry_warning", expiry_warning)
            .field("failure_limit", failure_limit)
            .field("failure_limit_address", failure_limit_address)
            .field("failure_table_size", failure_table_size)
            .field("rate_limit_backend", rate_limit_backend)
            .field(
                "redis_url",
                &redis_url
                    .as_deref()
                    .map(|url| CredentialUrl::new(url).shown),
            )
            .field("redis_unavailable", redis_unavailable)
            .field("redis_timeout", redis_timeout)
            .field("redis_prefix", redis_prefix)
            .field(
                "keys_database_url",
                &keys_database_url
                    .as_deref()
                    .map(|url| CredentialUrl::new(url).shown),
            )
            .field("keys_database_ca", keys_database_ca)
            .field("keys_database_required", keys_database_required)
            .field("keys_database_poll", keys_database_poll)
            .field("keys_database_timeout", keys_database_timeout)
            .field("keys_database_max_stale", keys_database_max_stale)
            .field("last_used_flush", last_used_flush)
            .field("metrics_key_label", metrics_key_label)
            .finish()
    }
}

/// What is wrong with an environment prefix, if anything: its spelling, or a reach over the
/// variables `API_KEYS_FILE` and `API_KEY` that would read them as keys. The `apikey` command
/// checks its `--env-prefix` with the same rule.
#[doc(hidden)]
pub fn env_prefix_problem(prefix: &str) -> Option<ConfigError> {
    if !is_valid_env_prefix(prefix) {
        return Some(ConfigError::BadEnvPrefix(prefix.to_owned()));
    }
    let var = shadowed_var(prefix)?;
    Some(ConfigError::EnvPrefixShadows {
        prefix: prefix.to_owned(),
        var,
    })
}

impl Config {
    /// Checks the values that could make the layer misbehave, naming the field at fault. Every
    /// bad setting is reported, so an operator fixes them all in one go.
    pub(crate) fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let is_token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if self.header.is_empty() || !self.header.bytes().all(is_token_char) {
            errors.push(ConfigError::BadHeader(self.header.clone()));
        } else if self.header.eq_ignore_ascii_case("authorization") {
            errors.push(ConfigError::AuthorizationHeader);
        }
        errors.extend(env_prefix_problem(&self.env_prefix));
        if self.keys_file_max_size == 0 {
            errors.push(ConfigError::KeysFileMaxSize);
        }
        if !self.reload_interval.is_zero() && self.reload_interval < Duration::from_secs(1) {
            errors.push(ConfigError::ReloadInterval);
        }
        match (self.failure_limit, self.failure_limit_address) {
            (Some(_), None) => errors.push(ConfigError::FailureLimitAddress),
            (Some(_), Some(ClientAddress::Proxy)) if self.trusted_proxies.is_empty() => {
                errors.push(ConfigError::FailureLimitProxies);
            }
            _ => {}
        }
        if !(1..=1 << 24).contains(&self.failure_table_size) {
            errors.push(ConfigError::FailureTableSize);
        }
        if self.keys_database_url.is_some() {
            if !cfg!(feature = "postgres") {
                errors.push(ConfigError::PostgresFeature);
            }
            if self.keys_database_timeout.is_zero() {
                errors.push(ConfigError::DatabaseTimeout);
            }
            let max_stale = self.keys_database_max_stale;
            if !max_stale.is_zero() && max_stale < self.keys_database_timeout.saturating_mul(2) {
                errors.push(ConfigError::DatabaseMaxStale);
            }
        }
        if self.rate_limit_backend == LimitBackend::Redis {
            if !cfg!(feature = "redis") {
                errors.push(ConfigError::RedisFeature);
            }
            if self.redis_url.is_none() {
                errors.push(ConfigError::RedisUrl);
            }
            if self.redis_unavailable.is_none() {
                errors.push(ConfigError::RedisUnavailable);
            }
        }
        if !(MIN_PLAINTEXT_KEY_LEN..=8192).contains(&self.max_key_len) {
            errors.push(ConfigError::MaxKeyLen(self.max_key_len));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A setting of the `api_keys` table that [`Config`] refuses, found at ignite. Each message names
/// the field at fault and how to fix it.
///
/// ```
/// use rocket_api_key_runtime::{ApiKeyStore, config::ConfigError, load::LoadError};
///
/// let figment = rocket::Config::figment().merge(("api_keys.reload_interval", "500ms"));
/// let errors = ApiKeyStore::builder().from_env(false).load(&figment).unwrap_err();
/// assert!(matches!(
///     errors.0[..],
///     [LoadError::Config(ConfigError::ReloadInterval)]
/// ));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `header` is not an HTTP header name (the value given).
    BadHeader(String),
    /// `header` is `Authorization`, which carries keys only as `Bearer` (`accept_bearer`).
    AuthorizationHeader,
    /// `env_prefix` is not upper-case letters, digits and `_`, ending in `_` (the value given).
    BadEnvPrefix(String),
    /// `env_prefix` would read a variable with a meaning of its own (`API_KEYS_FILE`, `API_KEY`)
    /// as a key.
    EnvPrefixShadows {
        /// The prefix given.
        prefix: String,
        /// The variable it would read.
        var: &'static str,
    },
    /// `keys_file_max_size` is 0.
    KeysFileMaxSize,
    /// `reload_interval` is under a second, but not 0.
    ReloadInterval,
    /// `failure_limit` without `failure_limit_address`.
    FailureLimitAddress,
    /// `failure_limit_address = "proxy"` without `trusted_proxies`.
    FailureLimitProxies,
    /// `failure_table_size` is not between 1 and 2^24.
    FailureTableSize,
    /// `rate_limit_backend = "redis"` in a build without the `redis` feature.
    RedisFeature,
    /// `keys_database_url` in a build without the `postgres` feature.
    PostgresFeature,
    /// `keys_database_max_stale` is set, but under twice `keys_database_timeout`.
    DatabaseMaxStale,
    /// `keys_database_timeout` is zero.
    DatabaseTimeout,
    /// `rate_limit_backend = "redis"` without `redis_url`.
    RedisUrl,
    /// `rate_limit_backend = "redis"` without `redis_unavailable`.
    RedisUnavailable,
    /// `max_key_len` is outside 16..=8192
    /// (the value given).
    MaxKeyLen(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadHeader(header) => {
                write!(f, "`api_keys.header` = {header:?} is not an HTTP header name")
            }
            ConfigError::AuthorizationHeader => f.write_str(
                "`api_keys.header` cannot be `Authorization`; set `api_keys.accept_bearer = true` to accept `Authorization: Bearer <key>`",
            ),
            ConfigError::BadEnvPrefix(prefix) => write!(
                f,
                "`api_keys.env_prefix` = {prefix:?} must be upper-case letters, digits and `_`, ending in `_`"
            ),
            ConfigError::EnvPrefixShadows { prefix, var } => {
                let what = match *var {
                    KEYS_FILE_VAR => "the keys file's path",
                    DATABASE_URL_VAR => "the key database's URL",
                    _ => "the key `default`",
                };
                write!(
                    f,
                    "`api_keys.env_prefix` = {prefix:?} would read `{var}`, which holds {what}, as another key; \
                     choose a prefix that none of `API_KEYS_FILE`, `API_KEYS_DATABASE_URL` and `API_KEY` starts with, such as \
                     \"API_KEY_\" (the default) or \"ORDERS_KEY_\""
                )
            }
            ConfigError::KeysFileMaxSize => {
                f.write_str("`api_keys.keys_file_max_size` must be at least 1 byte")
            }
            ConfigError::ReloadInterval => f.write_str(
                "`api_keys.reload_interval` must be at least 1s, or 0 to turn polling off",
            ),
            ConfigError::FailureLimitAddress => f.write_str(
                "`api_keys.failure_limit` needs `api_keys.failure_limit_address`: \
                 \"peer\" when clients connect directly, \"proxy\" behind the proxies in \
                 `trusted_proxies`",
            ),
            ConfigError::FailureLimitProxies => f.write_str(
                "`api_keys.failure_limit_address = \"proxy\"` needs the proxies' \
                 addresses in `api_keys.trusted_proxies`",
            ),
            ConfigError::FailureTableSize => {
                f.write_str("`api_keys.failure_table_size` must be between 1 and 16777216")
            }
            ConfigError::RedisFeature => f.write_str(
                "`api_keys.rate_limit_backend = \"redis\"` needs the `redis` feature of \
                 rocket-api-key",
            ),
            ConfigError::PostgresFeature => f.write_str(
                "`api_keys.keys_database_url` (or `API_KEYS_DATABASE_URL`) is set, but this build has no \
                 PostgreSQL support: enable the `postgres` feature of rocket-api-key",
            ),
            ConfigError::DatabaseTimeout => {
                f.write_str("`api_keys.keys_database_timeout` must be more than 0")
            }
            ConfigError::DatabaseMaxStale => f.write_str(
                "`api_keys.keys_database_max_stale` must be \"0s\" (off) or at least twice \
                 `api_keys.keys_database_timeout`, so that the table can be checked within it",
            ),
            ConfigError::RedisUrl => f.write_str(
                "`api_keys.rate_limit_backend = \"redis\"` needs `api_keys.redis_url`",
            ),
            ConfigError::RedisUnavailable => f.write_str(
                "`api_keys.rate_limit_backend = \"redis\"` needs an explicit \
                 `api_keys.redis_unavailable`: \"allow\" or \"deny\"",
            ),
            ConfigError::MaxKeyLen(len) => write!(
                f,
                "`api_keys.max_key_len` = {len} must be between {MIN_PLAINTEXT_KEY_LEN} and 8192"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

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

/// A Redis or PostgreSQL URL as it may be shown, and the credentials it holds, to hide wherever
/// it could be quoted (an error message of the client, say).
///
/// Hidden: the password of the user-info, or the whole user-info when it has no `:` (some
/// clients read a lone user-info as the password), and the value of every query parameter but
/// `db` and `protocol` (`redis+unix://` URLs carry `user=` and `pass=` there, PostgreSQL URLs
/// `password=`). The user-info ends
/// at the *last* `@`: a password holding `/`, `?` or `@` that a URL parser would misread is
/// still hidden whole, at worst with some of the address.
pub(crate) struct CredentialUrl {
    /// `redis://user:***@host:port/db`.
    pub shown: String,
    /// What `shown` hides, raw and percent-decoded; never empty strings. (Only the Redis
    /// backend and the PostgreSQL source have errors to scrub.)
    #[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
    secrets: Vec<String>,
}

const HIDDEN: &str = "***";

impl CredentialUrl {
    pub(crate) fn new(url: &str) -> Self {
        // The format is decided by how the text begins: a scheme makes a URL, a parameter name
        // and `=` a conninfo string, so that text inside a value (a conninfo password
        // `ab://S3cret`) decides nothing. Anything else is read as a URL without its scheme,
        // which hides whatever stands before an `@`.
        let url = url.trim_start();
        let (scheme, rest) = match scheme_end(url) {
            Some(end) => url.split_at(end),
            None if starts_with_parameter(url) => return Self::conninfo(url),
            None => ("", url),
        };
        let mut shown = String::from(scheme);
        let mut secrets = Vec::new();
        let address = match rest.rfind('@') {
            Some(at) => {
                let user_info = &rest[..at];
                match user_info.split_once(':') {
                    Some((user, password)) => {
                        shown.push_str(user);
                        shown.push(':');
                        secrets.push(password);
                    }
                    None => secrets.push(user_info),
                }
                shown.push_str(HIDDEN);
                shown.push('@');
                &rest[at + 1..]
            }
            None => rest,
        };
        match address.split_once('?') {
            None => shown.push_str(address),
            Some((path, query)) => {
                shown.push_str(path);
                for (i, parameter) in query.split('&').enumerate() {
                    shown.push(if i == 0 { '?' } else { '&' });
                    match parameter.split_once('=') {
                        Some((name, value)) if matches!(name, "db" | "protocol") => {
                            shown.push_str(name);
                            shown.push('=');
                            shown.push_str(value);
                        }
                        Some((name, value)) => {
                            shown.push_str(name);
                            shown.push('=');
                            shown.push_str(HIDDEN);
                            secrets.push(value);
                        }
                        None => shown.push_str(parameter),
                    }
                }
            }
        }
        let mut all: Vec<String> = Vec::new();
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            all.extend(percent_decoded(secret));
            all.push(secret.to_owned());
        }
        // Longest first, so that no secret is left half shown by hiding a shorter one inside it.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.dedup();
        CredentialUrl {
            shown,
            secrets: all,
        }
    }

    /// A PostgreSQL `key=value` connection string (`host=db user=k password='s3 cret'`): the
    /// value of `password` hidden, quoted or not, escapes included.
    fn conninfo(text: &str) -> Self {
        let mut shown = String::new();
        let mut secrets = Vec::new();
        let mut rest = text;
        while let Some(eq) = rest.find('=') {
            let key = &rest[..eq];
            let after = &rest[eq + 1..].trim_start();
            let skipped = rest[eq + 1..].len() - after.len();
            // A value runs to the next unescaped quote when quoted, else to whitespace.
            let (value, len) = match after.strip_prefix('\'') {
                Some(quoted) => {
                    let mut end = quoted.len();
                    let mut escaped = false;
                    for (i, c) in quoted.char_indices() {
                        match c {
                            _ if escaped => escaped = false,
                            '\\' => escaped = true,
                            '\'' => {
                                end = i;
                                break;
                            }
                            _ => {}
                        }
                    }
                    (&quoted[..end], (end + 2).min(after.len()))
                }
                None => {
                    // Unquoted, a value runs to whitespace that no backslash escapes (`ab\ cd`
                    // is one value to the client).
                    let mut end = after.len();
                    let mut escaped = false;
                    for (i, c) in after.char_indices() {
                        match c {
                            _ if escaped => escaped = false,
                            '\\' => escaped = true,
                            c if c.is_whitespace() => {
                                end = i;
                                break;
                            }
                            _ => {}
                        }
                    }
                    (&after[..end], end)
                }
            };
            shown.push_str(key);
            shown.push('=');
            if key.trim().eq_ignore_ascii_case("password") {
                shown.push_str(HIDDEN);
                secrets.push(value.to_owned());
                // As the client reads it: each backslash takes the next character as it is.
                let mut unescaped = String::with_capacity(value.len());
                let mut chars = value.chars();
                while let Some(c) = chars.next() {
                    unescaped.extend(if c == '\\' { chars.next() } else { Some(c) });
                }
                secrets.push(unescaped);
            } else {
                shown.push_str(&after[..len]);
            }
            rest = &rest[eq + 1 + skipped + len..];
        }
        shown.push_str(rest);
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        CredentialUrl { shown, secrets }
    }

    /// `text` with every credential of the URL replaced by `***`.
    #[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), HIDDEN);
            }
        }
        text
    }
}

/// Where the `scheme://` that begins `url` ends, if it begins with one: a letter, then letters,
/// digits, `+`, `-` or `.` (RFC 3986), then `://`.
fn scheme_end(url: &str) -> Option<usize> {
    let (scheme, _) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme.len() + 3)
}

/// Whether `text` begins as a conninfo string does: a parameter name (letters, digits, `_`),
/// then `=`, spaces allowed around it.
fn starts_with_parameter(text: &str) -> bool {
    text.split_once('=').is_some_and(|(name, _)| {
        let name = name.trim();
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// `text` percent-decoded, when that changes it (a client sends the password decoded).
fn percent_decoded(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .ok()
        .filter(|decoded| decoded != text)
}

#[cfg(test)]
mod tests {
    use rocket::figment::providers::{Format, Toml};
    use rocket::figment::Figment;

    use super::*;

    #[test]
    fn redis_urls_are_shown_without_credentials() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            (
                "redis://:s3cret@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            (
                "redis://alice:s3cret@10.0.0.7:6379/2",
                "redis://alice:***@10.0.0.7:6379/2",
            ),
            (
                "rediss://s3cret@cache.internal",
                "rediss://***@cache.internal",
            ),
            // Characters a URL parser would stop at, and an `@` in the password.
            (
                "redis://alice:s3/c?r#e@t@host/1",
                "redis://alice:***@host/1",
            ),
            (
                "redis+unix:///run/redis.sock?db=2&user=alice&pass=s3cret&protocol=resp3",
                "redis+unix:///run/redis.sock?db=2&user=***&pass=***&protocol=resp3",
            ),
            ("not a url :s3cret@", "not a url :***@"),
            ("", ""),
        ] {
            assert_eq!(CredentialUrl::new(url).shown, shown, "{url}");
        }
    }

    #[test]
    fn credentials_are_scrubbed_from_text_that_quotes_them() {
        let url = CredentialUrl::new("redis://alice:p%40ss%2Fword@host:6379");
        assert_eq!(url.shown, "redis://alice:***@host:6379");
        let error = "auth failed for p%40ss%2Fword, sent p@ss/word";
        assert_eq!(url.scrub(error), "auth failed for ***, sent ***");
        let url = CredentialUrl::new("unix:///tmp/r.sock?pass=hunter2");
        assert_eq!(url.scrub("hunter2 hunter22"), "*** ***2");
        // Nothing to hide, nothing changed (an empty password hides nothing).
        assert_eq!(CredentialUrl::new("redis://:@host").scrub("a:b"), "a:b");
    }

    #[test]
    fn connection_strings_hide_their_password_quoted_or_not() {
        let url = CredentialUrl::new("host=db user=keys password=s3cret dbname=orders");
        assert_eq!(url.shown, "host=db user=keys password=*** dbname=orders");
        assert_eq!(url.scrub("auth failed: s3cret"), "auth failed: ***");
        let url = CredentialUrl::new(r"host=db password='it\'s a secret' sslmode=disable");
        assert_eq!(url.shown, "host=db password=*** sslmode=disable");
        assert_eq!(url.scrub("it's a secret"), "***");
        let url = CredentialUrl::new(r"host=db password=ab\ S3cret user=k");
        assert_eq!(url.shown, "host=db password=*** user=k");
        assert_eq!(url.scrub("auth failed: ab S3cret"), "auth failed: ***");
        let url = CredentialUrl::new("password = 'spaced out'");
        assert!(!url.shown.contains("spaced"), "{}", url.shown);
        // Unterminated quoting hides everything after it.
        let url = CredentialUrl::new("host=db password='never closed");
        assert!(!url.shown.contains("never"), "{}", url.shown);
    }

    /// Text that merely holds `://` is not a URL: a conninfo password `ab://S3cret` was shown
    /// whole when any `://` made the string a URL.
    #[test]
    fn the_format_is_decided_by_the_scheme_only() {
        for (text, secret) in [
            ("host=db password=ab://S3cret", "S3cret"),
            ("password='x://y z' host=db", "y z"),
            ("host=db user=k password=postgres://u:S3cret@h", "S3cret"),
        ] {
            let url = CredentialUrl::new(text);
            assert!(!url.shown.contains(secret), "{text}: {}", url.shown);
            let config = Config {
                keys_database_url: Some(text.into()),
                ..Config::default()
            };
            assert!(!format!("{config:?}").contains(secret), "{config:?}");
        }
        for url in [
            "postgresql://u:S3cret@h/db",
            "rediss://u:S3cret@h",
            "redis+unix://:S3cret@/s",
            // Neither a scheme nor a parameter first: read as a URL, hiding what precedes `@`.
            " postgres://u:S3cret@h/db?sslmode=require",
            "u:S3cret@h/db?sslmode=require",
            "post gres://u:S3cret@h/db?x=y",
        ] {
            assert!(!CredentialUrl::new(url).shown.contains("S3cret"), "{url}");
        }
    }

    #[test]
    fn config_debug_hides_the_key_database_password() {
        let config = Config {
            keys_database_url: Some(
                "postgres://keys:pg%2Fs3cret@db.internal/orders?password=x1y2z3".into(),
            ),
            ..Config::default()
        };
        let debug = format!("{config:?}");
        for secret in ["pg%2Fs3cret", "pg/s3cret", "x1y2z3"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(
            debug.contains(
                r#"keys_database_url: Some("postgres://keys:***@db.internal/orders?password=***")"#
            ),
            "{debug}"
        );
    }

    #[test]
    fn config_debug_hides_the_redis_password() {
        let config = Config {
            redis_url: Some("redis://alice:s3cret@10.0.0.7:6379".into()),
            ..Config::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(
            debug.contains(r#"redis_url: Some("redis://alice:***@10.0.0.7:6379")"#),
            "{debug}"
        );
        assert!(debug.contains(r#"header: "x-api-key""#), "{debug}");
        // The value itself is untouched, for what reads it.
        assert_eq!(
            config.clone().redis_url.as_deref(),
            Some("redis://alice:s3cret@10.0.0.7:6379")
        );
    }

    /// The TOML block of `Config`'s documentation, as written there.
    fn documented_block() -> String {
        let source = include_str!("config.rs");
        let start = source.find("/// ```toml\n").expect("the block") + "/// ```toml\n".len();
        let end = start + source[start..].find("/// ```\n").expect("its end");
        source[start..end]
            .lines()
            .map(|line| line.trim_start().trim_start_matches("///").trim_start())
            .map(|line| format!("{line}\n"))
            .collect()
    }

    fn extract(toml: &str) -> Config {
        Figment::from(Toml::string(toml).nested())
            .select("default")
            .focus("api_keys")
            .extract()
            .unwrap_or_else(|e| panic!("the documented block does not parse: {e}\n{toml}"))
    }

    #[test]
    fn the_documented_block_shows_the_defaults() {
        let block = documented_block();
        assert!(block.contains("keys_file_max_size = 67108864"), "{block}");
        assert_eq!(extract(&block), Config::default());
        // The commented settings are real fields too.
        let uncommented: String = block
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .map(|line| format!("{line}\n"))
            .collect();
        assert!(extract(&uncommented).keys_file.is_some());
    }

    /// Each rule's message, word for word as operators have seen it, and every broken rule
    /// reported at once.
    /// What `validate` says about `config`, one message per bad setting.
    fn messages_of(config: &Config) -> Vec<String> {
        config
            .validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_bad_setting_is_reported_with_its_message() {
        let config = Config {
            header: "bad header".into(),
            env_prefix: "api".into(),
            keys_file_max_size: 0,
            reload_interval: Duration::from_millis(500),
            failure_limit: Some("30/m".parse().unwrap()),
            failure_table_size: 0,
            rate_limit_backend: LimitBackend::Redis,
            max_key_len: 8193,
            ..Config::default()
        };
        let mut expected = vec![
            "`api_keys.header` = \"bad header\" is not an HTTP header name",
            "`api_keys.env_prefix` = \"api\" must be upper-case letters, digits and `_`, ending in `_`",
            "`api_keys.keys_file_max_size` must be at least 1 byte",
            "`api_keys.reload_interval` must be at least 1s, or 0 to turn polling off",
            "`api_keys.failure_limit` needs `api_keys.failure_limit_address`: \"peer\" when clients connect directly, \"proxy\" behind the proxies in `trusted_proxies`",
            "`api_keys.failure_table_size` must be between 1 and 16777216",
            "`api_keys.rate_limit_backend = \"redis\"` needs the `redis` feature of rocket-api-key",
            "`api_keys.rate_limit_backend = \"redis\"` needs `api_keys.redis_url`",
            "`api_keys.rate_limit_backend = \"redis\"` needs an explicit `api_keys.redis_unavailable`: \"allow\" or \"deny\"",
            "`api_keys.max_key_len` = 8193 must be between 16 and 8192",
        ];
        if cfg!(feature = "redis") {
            expected.retain(|m| !m.ends_with("feature of rocket-api-key"));
        }
        let messages = messages_of(&config);
        assert_eq!(messages, expected);

        let config = Config {
            header: "Authorization".into(),
            failure_limit: Some("30/m".parse().unwrap()),
            failure_limit_address: Some(ClientAddress::Proxy),
            ..Config::default()
        };
        let messages = messages_of(&config);
        assert_eq!(
            messages,
            [
                "`api_keys.header` cannot be `Authorization`; set `api_keys.accept_bearer = true` to accept `Authorization: Bearer <key>`",
                "`api_keys.failure_limit_address = \"proxy\"` needs the proxies' addresses in `api_keys.trusted_proxies`",
            ]
        );
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn a_prefix_that_covers_the_keys_file_variable_is_refused() {
        for prefix in ["API_", "API_KEYS_", "API_KEYS_FILE_"] {
            let config = Config {
                env_prefix: prefix.into(),
                ..Config::default()
            };
            let errors = config.validate().unwrap_err();
            assert_eq!(errors.len(), 1, "{errors:?}");
            let message = errors[0].to_string();
            assert!(
                message.starts_with(&format!(
                    "`api_keys.env_prefix` = \"{prefix}\" would read `API_KEYS_FILE`, which holds the keys file's path, as another key;"
                )),
                "{message}"
            );
            assert!(message.contains("such as \"API_KEY_\""), "{message}");
        }
        for prefix in ["API_KEY_", "BILLING_KEY_", "APIKEY_", "API_KEYSET_"] {
            let config = Config {
                env_prefix: prefix.into(),
                ..Config::default()
            };
            assert_eq!(config.validate(), Ok(()), "{prefix}");
        }
    }
}
