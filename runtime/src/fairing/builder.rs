//! [`ApiKeyStoreBuilder`]: the layer configured in code, and the keys given there.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use zeroize::Zeroizing;

#[cfg(feature = "postgres")]
use super::ignite::read_table;
use super::ignite::{load, no_database_here, prepare};
use super::ApiKeyStoreFairing;
use crate::config::{
    ClientAddress, Config, LimitBackend, LogLevel, MetricsKeyLabel, UnavailablePolicy,
};
use crate::load::{LoadError, LoadErrors};
use crate::rate::RateSpec;
use crate::store::ApiKeyStore;
use crate::testing::TestKey;

/// Configures the API-key layer in code. Values set here are defaults that the `api_keys` table
/// of Rocket's configuration overrides, so operators can change them without a rebuild.
///
/// ```
/// use rocket_api_key::{ApiKeyStore, config::LogLevel};
///
/// let fairing = ApiKeyStore::builder()
///     .header("x-orders-key")
///     .accept_bearer(true)
///     .accepted_log_level(LogLevel::Info)
///     .key("batch", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08;scopes=read:orders")
///     .fairing();
/// let rocket = rocket::build().attach(fairing);
/// ```
#[derive(Default, Clone)]
pub struct ApiKeyStoreBuilder {
    config: Config,
    keys: Vec<(String, Zeroizing<String>)>,
}

impl fmt::Debug for ApiKeyStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.keys.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ApiKeyStoreBuilder")
            .field("config", &self.config)
            .field("keys", &names)
            .finish()
    }
}

impl ApiKeyStoreBuilder {
    /// The header the key is read from (default `x-api-key`).
    pub fn header(mut self, name: impl Into<String>) -> Self {
        self.config.header = name.into();
        self
    }

    /// The prefix of per-key environment variables (default `API_KEY_`); `<prefix>` without its
    /// final `_` is the single-key variable, named `default`.
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.env_prefix = prefix.into();
        self
    }

    /// Whether keys (and `API_KEYS_FILE`) are read from the environment (default `true`).
    pub fn from_env(mut self, yes: bool) -> Self {
        self.config.from_env = yes;
        self
    }

    /// The keys file, instead of `$API_KEYS_FILE`: a regular file of at most
    /// [`keys_file_max_size`](Self::keys_file_max_size) bytes.
    pub fn keys_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.keys_file = Some(path.into());
        self
    }

    /// The largest keys file read, in bytes (default 64 MiB); a larger one is a load error.
    pub fn keys_file_max_size(mut self, bytes: u64) -> Self {
        self.config.keys_file_max_size = bytes;
        self
    }

    /// Also accept `Authorization: Bearer <key>` (default `false`).
    pub fn accept_bearer(mut self, yes: bool) -> Self {
        self.config.accept_bearer = yes;
        self
    }

    /// Level of the event logged for each accepted request (default `debug`).
    pub fn accepted_log_level(mut self, level: LogLevel) -> Self {
        self.config.accepted_log_level = level;
        self
    }

    /// The most `request rejected` events logged per second (default 100); the rest are counted
    /// and summarised once a second. `0` logs every rejection.
    pub fn rejected_log_limit(mut self, per_second: u32) -> Self {
        self.config.rejected_log_limit = per_second;
        self
    }

    /// The longest key a request may present, in bytes (default 256).
    pub fn max_key_len(mut self, bytes: usize) -> Self {
        self.config.max_key_len = bytes;
        self
    }

    /// Whether this layer answers its own refusals (default `true`): the JSON 401/403 catchers at
    /// `/`, and the documented answer for every refusal whichever catcher produced it. Turn it
    /// off to answer with your own catchers; they can read [`Rejection::of`](crate::Rejection::of),
    /// and [`catchers`](crate::catchers) are ours to mount where you like.
    pub fn register_catchers(mut self, yes: bool) -> Self {
        self.config.register_catchers = yes;
        self
    }

    /// A reverse proxy (address or network) whose client-address header is trusted.
    pub fn trusted_proxy(mut self, net: impl Into<IpNet>) -> Self {
        self.config.trusted_proxies.push(net.into());
        self
    }

    /// How often the keys file is checked for changes (default 2 s; zero turns polling off).
    pub fn reload_interval(mut self, every: Duration) -> Self {
        self.config.reload_interval = every;
        self
    }

    /// Whether SIGHUP reloads the keys (default `true`, Unix only).
    pub fn reload_on_sighup(mut self, yes: bool) -> Self {
        self.config.reload_on_sighup = yes;
        self
    }

    /// Keys expiring within this window are named in a warning at start and at each reload
    /// (default 7 days).
    pub fn expiry_warning(mut self, window: Duration) -> Self {
        self.config.expiry_warning = window;
        self
    }

    /// Limits failed authentications (malformed, duplicated or unknown keys) per client address,
    /// counted by `address`; past the limit the address is answered 429, even with a valid key.
    /// Off by default.
    ///
    /// ```
    /// use rocket_api_key::{ApiKeyStore, config::ClientAddress};
    ///
    /// let fairing = ApiKeyStore::builder()
    ///     .failure_limit("30/m".parse().unwrap(), ClientAddress::Peer)
    ///     .fairing();
    /// ```
    pub fn failure_limit(mut self, limit: RateSpec, address: ClientAddress) -> Self {
        self.config.failure_limit = Some(limit);
        self.config.failure_limit_address = Some(address);
        self
    }

    /// Slots of the in-process failure table (default 65,536; 8 bytes each).
    pub fn failure_table_size(mut self, slots: usize) -> Self {
        self.config.failure_table_size = slots;
        self
    }

    /// Keeps rate-limit state in Redis at `url` (feature `redis`), so every instance sharing it
    /// shares the limits; `unavailable` says what requests meet while Redis cannot be reached.
    pub fn redis(mut self, url: impl Into<String>, unavailable: UnavailablePolicy) -> Self {
        self.config.rate_limit_backend = LimitBackend::Redis;
        self.config.redis_url = Some(url.into());
        self.config.redis_unavailable = Some(unavailable);
        self
    }

    /// The prefix of this service's keys in Redis (default `rak:`).
    pub fn redis_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.redis_prefix = prefix.into();
        self
    }

    /// The PostgreSQL key table (feature `postgres`), instead of `$API_KEYS_DATABASE_URL`: read
    /// at ignite, then followed through `LISTEN`/`NOTIFY` (see the `database` module).
    pub fn keys_database_url(mut self, url: impl Into<String>) -> Self {
        self.config.keys_database_url = Some(url.into());
        self
    }

    /// A PEM file of CA certificates to trust for the key table's TLS, besides Mozilla's roots.
    pub fn keys_database_ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.keys_database_ca = Some(path.into());
        self
    }

    /// Whether an unreachable key table stops ignition (default `true`); with `false` the
    /// application starts with the other sources and the table's keys follow once it answers.
    pub fn keys_database_required(mut self, yes: bool) -> Self {
        self.config.keys_database_required = yes;
        self
    }

    /// The `key` label of `api_key_requests_total` (feature `metrics`): per key name (the
    /// default) or none. Setting it also silences the warning the default gives past 1,000
    /// keys.
    pub fn metrics_key_label(mut self, label: MetricsKeyLabel) -> Self {
        self.config.metrics_key_label = Some(label);
        self
    }

    /// Adds a key given in code, in the entry grammar (`<key or sha256:…>[;scopes=…]…`).
    /// Checked with the others at load: a bad entry is reported by name, never echoed.
    pub fn key(mut self, name: impl Into<String>, entry: impl Into<String>) -> Self {
        self.keys.push((name.into(), Zeroizing::new(entry.into())));
        self
    }

    /// Adds a [`TestKey`], under its name and as its digest entry: the same as
    /// `.key(test_key.name(), test_key.entry())`. The store keeps no plaintext, and treats it as
    /// any other key; see [`testing`](crate::testing).
    ///
    /// ```
    /// use rocket_api_key::{testing::TestKey, ApiKeyStore};
    ///
    /// let ci = TestKey::new("ci").scopes(["read:orders"]);
    /// let keys = ApiKeyStore::builder().from_env(false).test_key(&ci).build().unwrap();
    /// assert_eq!(keys.verify(ci.expose_secret(), None).unwrap().name(), "ci");
    /// ```
    pub fn test_key(self, test_key: &TestKey) -> Self {
        self.key(test_key.name(), test_key.entry())
    }

    /// Loads the keys now with this configuration alone (no Rocket configuration is read).
    pub fn build(self) -> Result<ApiKeyStore, LoadErrors> {
        let config = prepare(self.config)?;
        no_database_here(&config)?;
        load(config, &self.keys, |_| {}).map(|(keys, _)| keys)
    }

    /// Loads the keys now as the fairing would at ignite: this configuration, overridden by the
    /// `api_keys` table of `figment` (Rocket's configuration). Lets an application see what
    /// would load before it attaches the fairing, e.g. to add a key of its own when none is
    /// configured.
    ///
    /// ```
    /// use rocket_api_key::ApiKeyStore;
    ///
    /// let keys = ApiKeyStore::builder().from_env(false).load(&rocket::Config::figment()).unwrap();
    /// assert!(keys.is_empty());
    /// ```
    ///
    /// The key table of `keys_database_url` is read only by the fairing, at ignite: with one
    /// configured, this fails with [`LoadError::Database`].
    pub fn load(&self, figment: &Figment) -> Result<ApiKeyStore, LoadErrors> {
        let config = self.config(figment)?;
        no_database_here(&config)?;
        load(config, &self.keys, |_| {}).map(|(keys, _)| keys)
    }

    /// This configuration overridden by the `api_keys` table of `figment`, checked, with the
    /// environment's defaults applied.
    fn config(&self, figment: &Figment) -> Result<Config, LoadErrors> {
        let config: Config = Figment::from(Serialized::defaults(&self.config))
            .merge(figment.focus("api_keys"))
            .extract()
            .map_err(|e| LoadErrors(vec![LoadError::Settings(Box::new(e))]))?;
        prepare(config)
    }

    /// Loads the keys at ignite: the key table first, when one is configured.
    pub(super) async fn load_at_ignite(
        &self,
        figment: &Figment,
    ) -> Result<ApiKeyStore, LoadErrors> {
        let config = self.config(figment)?;
        #[cfg(feature = "postgres")]
        let table = read_table(&config).await?;
        let seed = |_keys: &ApiKeyStore| {
            #[cfg(feature = "postgres")]
            _keys.seed_database(table);
        };
        load(config, &self.keys, seed).map(|(keys, _)| keys)
    }

    /// The fairing that loads the keys at ignite, manages the [`ApiKeyStore`] state and registers
    /// the JSON catchers. A configuration error stops ignition and is logged, naming where it is.
    pub fn fairing(self) -> ApiKeyStoreFairing {
        ApiKeyStoreFairing(self)
    }
}
