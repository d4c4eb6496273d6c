//! A setting [`Config`](super::Config) refuses, and the environment-prefix rule the `apikey`
//! command shares.

use std::fmt;

use crate::entry::MIN_PLAINTEXT_KEY_LEN;
use crate::env::{is_valid_env_prefix, shadowed_var, DATABASE_URL_VAR, KEYS_FILE_VAR};

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

/// A setting of the `api_keys` table that [`Config`](super::Config) refuses, found at ignite. Each message names
/// the field at fault and how to fix it.
///
/// ```
/// use rocket_api_key::{ApiKeyStore, config::ConfigError, load::LoadError};
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
