//! Configuration of the runtime itself (not of the keys): Rocket's `api_keys` table.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::entry::{MAX_KEY_LEN, MIN_PLAINTEXT_KEY_LEN};
use crate::env::DEFAULT_ENV_PREFIX;
use crate::header::DEFAULT_HEADER;
use crate::redact::query::DEFAULT_REDACTED_PARAMS;
use crate::redact::CredentialUrl;

mod error;
mod values;

pub use crate::rate::{RateError, RateSpec};
pub use error::{env_prefix_problem, ConfigError};
pub use values::{ClientAddress, LimitBackend, LogLevel, MetricsKeyLabel, UnavailablePolicy};

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

#[cfg(test)]
mod tests;
