//! Configuration of the runtime itself (not of the keys): Rocket's `api_keys` table.

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::entry::{MAX_KEY_LEN, MIN_PLAINTEXT_KEY_LEN};
use crate::load::{shadowed_var, KEYS_FILE_VAR};
use crate::rate::RateSpec;

/// How the API-key layer behaves. Every field has a default.
///
/// Read at ignite from the `api_keys` table of Rocket's configuration, so it can be set in
/// `Rocket.toml` or through `ROCKET_API_KEYS`, over the values given to
/// [`ApiKeys::builder`](crate::ApiKeys::builder) in code. The values shown are the defaults;
/// commented lines are settings that are off unless given:
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
/// register_catchers = true    # register the JSON 401/403 catchers at `/`
/// trusted_proxies = []        # peers whose Rocket `ip_header` (X-Real-IP) is believed
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
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Whether the fairing registers its JSON catchers for 401 and 403 at `/`. Default `true`.
    pub register_catchers: bool,
    /// Addresses of reverse proxies whose client-address header (Rocket's `ip_header`, by default
    /// `X-Real-IP`) is trusted, for `ips` allowlists and logs. Any other peer is identified by its
    /// socket address, whatever headers it sends. Default: none.
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
    pub rate_limit_backend: Backend,
    /// The Redis server of the `redis` backend.
    pub redis_url: Option<String>,
    /// What to do when Redis cannot be reached; required with the `redis` backend.
    pub redis_unavailable: Option<UnavailablePolicy>,
    /// The longest a Redis call may take before it counts as unreachable. Default 50 ms.
    #[serde(with = "crate::duration::serde_duration")]
    pub redis_timeout: Duration,
    /// Prefix of this service's keys in Redis. Default `rak:`.
    pub redis_prefix: String,
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
pub enum Backend {
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

impl Default for Config {
    fn default() -> Self {
        Config {
            header: "x-api-key".into(),
            env_prefix: "API_KEY_".into(),
            from_env: true,
            keys_file: None,
            keys_file_max_size: 64 << 20,
            accept_bearer: false,
            accepted_log_level: LogLevel::Debug,
            rejected_log_limit: 100,
            max_key_len: MAX_KEY_LEN,
            register_catchers: true,
            trusted_proxies: Vec::new(),
            reload_interval: Duration::from_secs(2),
            reload_on_sighup: true,
            expiry_warning: Duration::from_secs(7 * 86_400),
            failure_limit: None,
            failure_limit_address: None,
            failure_table_size: 65_536,
            rate_limit_backend: Backend::Memory,
            redis_url: None,
            redis_unavailable: None,
            redis_timeout: Duration::from_millis(50),
            redis_prefix: "rak:".into(),
        }
    }
}

impl Config {
    /// Checks the values that could make the layer misbehave, naming the field at fault.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let is_token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if self.header.is_empty() || !self.header.bytes().all(is_token_char) {
            return Err(format!(
                "`api_keys.header` = {:?} is not an HTTP header name",
                self.header
            ));
        }
        if self.header.eq_ignore_ascii_case("authorization") {
            return Err("`api_keys.header` cannot be `Authorization`; set `api_keys.accept_bearer = true` to accept `Authorization: Bearer <key>`".into());
        }
        let prefix_ok = !self.env_prefix.is_empty()
            && self.env_prefix.ends_with('_')
            && self
                .env_prefix
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !prefix_ok {
            return Err(format!(
                "`api_keys.env_prefix` = {:?} must be upper-case letters, digits and `_`, ending in `_`",
                self.env_prefix
            ));
        }
        if let Some(var) = shadowed_var(&self.env_prefix) {
            let what = if var == KEYS_FILE_VAR {
                "the keys file's path"
            } else {
                "the key `default`"
            };
            return Err(format!(
                "`api_keys.env_prefix` = {:?} would read `{var}`, which holds {what}, as another key; \
                 choose a prefix that neither `API_KEYS_FILE` nor `API_KEY` starts with, such as \
                 \"API_KEY_\" (the default) or \"ORDERS_KEY_\"",
                self.env_prefix
            ));
        }
        if self.keys_file_max_size == 0 {
            return Err("`api_keys.keys_file_max_size` must be at least 1 byte".into());
        }
        if !self.reload_interval.is_zero() && self.reload_interval < Duration::from_secs(1) {
            return Err(
                "`api_keys.reload_interval` must be at least 1s, or 0 to turn polling off".into(),
            );
        }
        match (self.failure_limit, self.failure_limit_address) {
            (Some(_), None) => {
                return Err("`api_keys.failure_limit` needs `api_keys.failure_limit_address`: \
                            \"peer\" when clients connect directly, \"proxy\" behind the proxies in \
                            `trusted_proxies`"
                    .into())
            }
            (Some(_), Some(ClientAddress::Proxy)) if self.trusted_proxies.is_empty() => {
                return Err("`api_keys.failure_limit_address = \"proxy\"` needs the proxies' \
                            addresses in `api_keys.trusted_proxies`"
                    .into())
            }
            _ => {}
        }
        if !(1..=1 << 24).contains(&self.failure_table_size) {
            return Err("`api_keys.failure_table_size` must be between 1 and 16777216".into());
        }
        if self.rate_limit_backend == Backend::Redis {
            if !cfg!(feature = "redis") {
                return Err(
                    "`api_keys.rate_limit_backend = \"redis\"` needs the `redis` feature of \
                            rocket-api-key"
                        .into(),
                );
            }
            if self.redis_url.is_none() {
                return Err(
                    "`api_keys.rate_limit_backend = \"redis\"` needs `api_keys.redis_url`".into(),
                );
            }
            if self.redis_unavailable.is_none() {
                return Err(
                    "`api_keys.rate_limit_backend = \"redis\"` needs an explicit \
                            `api_keys.redis_unavailable`: \"allow\" or \"deny\""
                        .into(),
                );
            }
        }
        if !(MIN_PLAINTEXT_KEY_LEN..=8192).contains(&self.max_key_len) {
            return Err(format!(
                "`api_keys.max_key_len` = {} must be between {MIN_PLAINTEXT_KEY_LEN} and 8192",
                self.max_key_len
            ));
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use rocket::figment::providers::{Format, Toml};
    use rocket::figment::Figment;

    use super::*;

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

    #[test]
    fn a_prefix_that_covers_the_keys_file_variable_is_refused() {
        for prefix in ["API_", "API_KEYS_", "API_KEYS_FILE_"] {
            let config = Config {
                env_prefix: prefix.into(),
                ..Config::default()
            };
            let message = config.validate().unwrap_err();
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
