//! Loading the keys at ignite: the [`ApiKeyStoreBuilder`] and the fairing it makes.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};
use std::time::Duration;

use ipnet::IpNet;
use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use rocket::{Build, Orbit, Rocket};
use zeroize::Zeroizing;

use crate::audit::Audit;
use crate::config::{
    ClientAddress, Config, LimitBackend, LogLevel, MetricsKeyLabel, UnavailablePolicy,
};
#[cfg(feature = "postgres")]
use crate::database::keys::DatabaseKeys as DatabaseKeysRead;
use crate::env::{DATABASE_URL_VAR, KEYS_FILE_VAR};
use crate::load::{KeySource, LoadError, LoadErrors, Loader};
use crate::load::{NameList, ReloadSummary};
use crate::rate::RateSpec;
use crate::store::ApiKeyStore;
use crate::target::TARGET;
use crate::testing::TestKey;

/// What the key table read at ignite holds; nothing can be read without the `postgres` feature.
#[cfg(not(feature = "postgres"))]
type DatabaseKeysRead = std::convert::Infallible;

impl ApiKeyStore {
    /// The fairing with the default configuration (overridable in `Rocket.toml` /
    /// `ROCKET_API_KEYS`): keys from `API_KEY_<NAME>`, `API_KEY` and `API_KEYS_FILE`, read from
    /// `x-api-key`. With [`log_filter::init`](crate::log_filter::init) first, it also applies
    /// Rocket's `log_level` to that logger at ignite; without it or a `tracing` subscriber with
    /// [`CredentialFilter`](crate::log_filter::CredentialFilter), it warns at liftoff that
    /// Rocket's lines can print keys.
    ///
    /// ```no_run
    /// # use rocket::launch;
    /// use rocket_api_key_runtime::{log_filter, ApiKeyStore};
    ///
    /// #[launch]
    /// fn rocket() -> _ {
    ///     log_filter::init();
    ///     rocket::build().attach(ApiKeyStore::fairing())
    /// }
    /// ```
    pub fn fairing() -> ApiKeyStoreFairing {
        Self::builder().fairing()
    }

    /// A builder, to configure the layer in code and add keys from elsewhere (a secrets manager).
    pub fn builder() -> ApiKeyStoreBuilder {
        ApiKeyStoreBuilder::default()
    }
}

/// Configures the API-key layer in code. Values set here are defaults that the `api_keys` table
/// of Rocket's configuration overrides, so operators can change them without a rebuild.
///
/// ```
/// use rocket_api_key_runtime::{ApiKeyStore, config::LogLevel};
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
    /// use rocket_api_key_runtime::{ApiKeyStore, config::ClientAddress};
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
    /// use rocket_api_key_runtime::{testing::TestKey, ApiKeyStore};
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
        load(config, &self.keys, None).map(|(keys, _)| keys)
    }

    /// Loads the keys now as the fairing would at ignite: this configuration, overridden by the
    /// `api_keys` table of `figment` (Rocket's configuration). Lets an application see what
    /// would load before it attaches the fairing, e.g. to add a key of its own when none is
    /// configured.
    ///
    /// ```
    /// use rocket_api_key_runtime::ApiKeyStore;
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
        load(config, &self.keys, None).map(|(keys, _)| keys)
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
    async fn load_at_ignite(&self, figment: &Figment) -> Result<ApiKeyStore, LoadErrors> {
        let config = self.config(figment)?;
        let database = read_table(&config).await?;
        load(config, &self.keys, database).map(|(keys, _)| keys)
    }

    /// The fairing that loads the keys at ignite, manages the [`ApiKeyStore`] state and registers
    /// the JSON catchers. A configuration error stops ignition and is logged, naming where it is.
    pub fn fairing(self) -> ApiKeyStoreFairing {
        ApiKeyStoreFairing(self)
    }
}

/// Applies the environment's defaults (`API_KEYS_FILE`, `API_KEYS_DATABASE_URL`) and validates
/// the configuration. All problems are reported together.
fn prepare(mut config: Config) -> Result<Config, LoadErrors> {
    if config.from_env && config.keys_file.is_none() {
        config.keys_file = std::env::var_os(KEYS_FILE_VAR).map(PathBuf::from);
    }
    if config.from_env && config.keys_database_url.is_none() {
        config.keys_database_url = std::env::var(DATABASE_URL_VAR).ok();
    }
    config
        .validate()
        .map_err(|errors| LoadErrors(errors.into_iter().map(LoadError::Config).collect()))?;
    Ok(config)
}

/// The key table of `keys_database_url`, if one is configured and answers; an error if it does
/// not and `keys_database_required` is on.
#[cfg(feature = "postgres")]
async fn read_table(config: &Config) -> Result<Option<DatabaseKeysRead>, LoadErrors> {
    let Some(url) = config.keys_database_url.as_deref() else {
        return Ok(None);
    };
    match crate::listen::read_table(config, url).await {
        Ok(database) => Ok(Some(database)),
        Err(e) if config.keys_database_required => Err(LoadErrors(vec![LoadError::Database(
            format!("{e} (set `api_keys.keys_database_required = false` to start without it)"),
        )])),
        Err(e) => {
            tracing::warn!(
                target: TARGET,
                error = %e,
                "the key database cannot be reached; starting with the other sources' keys, and \
                 its keys once it answers"
            );
            Ok(None)
        }
    }
}

#[cfg(not(feature = "postgres"))]
async fn read_table(_: &Config) -> Result<Option<DatabaseKeysRead>, LoadErrors> {
    Ok(None)
}

/// Refuses a configuration with a key table where it cannot be read: outside the fairing,
/// which reads it at ignite and listens for its changes.
fn no_database_here(config: &Config) -> Result<(), LoadErrors> {
    match config.keys_database_url {
        Some(_) => Err(LoadErrors(vec![LoadError::Database(
            "the key table (`keys_database_url`, `API_KEYS_DATABASE_URL`) is read by the fairing \
             only: attach `ApiKeyStore::fairing()`, or load without it"
                .into(),
        )])),
        None => Ok(()),
    }
}

/// Loads every source, with the key table as read at ignite. All problems are reported
/// together.
fn load(
    config: Config,
    code_keys: &[(String, Zeroizing<String>)],
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))] database: Option<
        DatabaseKeysRead,
    >,
) -> Result<(ApiKeyStore, ReloadSummary), LoadErrors> {
    // Code keys are parsed once; only their digests are kept, for reloads.
    let mut code = Loader::default();
    for (name, entry) in code_keys {
        code.named_entry(name, KeySource::Code(name.clone()), entry);
    }
    let keys = ApiKeyStore::new(config, code.loaded);
    #[cfg(feature = "postgres")]
    let mut outcome = {
        let read = database.is_some();
        let outcome = keys.change_database(|table| {
            *table = database;
            Vec::new()
        });
        if read {
            keys.confirm_database(std::time::Instant::now());
        }
        outcome
    };
    #[cfg(not(feature = "postgres"))]
    let mut outcome = keys.reload();
    // A reload defers a keys file that may still be being written to the next poll; at start
    // there is no later poll and no running key to keep, so the file is given the time it
    // needs, once, and read again.
    if let Err(LoadErrors(errors)) = &outcome {
        if let [LoadError::FileUnsettled(path, wait)] = errors.as_slice() {
            tracing::warn!(
                target: TARGET,
                path = ?path,
                wait_ms = wait.as_millis(),
                "keys file may be half-written; reading it again once it has settled"
            );
            std::thread::sleep(*wait);
            outcome = keys.reload();
        }
    }
    match outcome {
        Ok(summary) if code.errors.is_empty() => Ok((keys, summary)),
        Ok(_) => Err(LoadErrors(code.errors)),
        Err(LoadErrors(mut errors)) => {
            errors.extend(code.errors);
            Err(LoadErrors(errors))
        }
    }
}

/// The fairing of [`ApiKeyStoreBuilder::fairing`] / [`ApiKeyStore::fairing`].
#[derive(Debug)]
pub struct ApiKeyStoreFairing(ApiKeyStoreBuilder);

#[rocket::async_trait]
impl Fairing for ApiKeyStoreFairing {
    fn info(&self) -> Info {
        Info {
            name: "API keys",
            kind: Kind::Ignite
                | Kind::Liftoff
                | Kind::Request
                | Kind::Response
                | Kind::Shutdown
                | Kind::Singleton,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        let keys = match self.0.load_at_ignite(rocket.figment()).await {
            Ok(keys) => keys,
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!(target: TARGET, error = %e, "API key configuration error");
                }
                tracing::error!(
                    target: TARGET,
                    errors = errors.0.len(),
                    "API key configuration rejected; the application will not start"
                );
                return Err(rocket);
            }
        };
        keys.warn_file_permissions();
        #[cfg(feature = "metrics")]
        keys.start_metering();
        if keys.is_empty() {
            tracing::warn!(
                target: TARGET,
                "no API keys configured: every protected route will answer 401; \
                 set API_KEY_<NAME>=<key> or API_KEYS_FILE"
            );
        } else {
            tracing::info!(
                target: TARGET,
                count = keys.len(),
                names = ?NameList(&keys.names()),
                "API keys loaded"
            );
            keys.warn_expiring();
        }
        let register = keys.config().register_catchers;
        let rocket = rocket.manage(keys);
        // Rocket sets its logger's level once every ignite fairing has run; this is as late as a
        // fairing can, so that what is logged until then shows as with Rocket's logger.
        crate::log_filter::follow_log_level(rocket.figment());
        // 401 and 403 can follow any request to a protected route. The 429s and 503s of this
        // layer are answered by `on_response` instead, so an application may keep catchers of
        // its own for those codes (another rate limiter's) without a collision at launch.
        Ok(if register {
            rocket.register("/", crate::reject::catchers_registered())
        } else {
            rocket
        })
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        warn_if_rockets_lines_unfiltered(rocket.config().log_level);
        if let Some(keys) = rocket.state::<ApiKeyStore>() {
            if !keys.config().trusted_proxies.is_empty() && rocket.config().ip_header.is_none() {
                tracing::warn!(
                    target: TARGET,
                    "`api_keys.trusted_proxies` is set but Rocket's `ip_header` is off: requests \
                     through those proxies have no known client address, so keys with `ips` are \
                     refused; set `ip_header` to the header your proxy writes"
                );
            }
            let (protected, ambiguous) = crate::routes::protected(rocket.routes());
            for route in ambiguous {
                tracing::warn!(
                    target: TARGET,
                    route = %route,
                    "this route matches several `#[require_api_key]` handlers of the same name \
                     and path with different requirements; the audit leaves it out"
                );
            }
            keys.set_routes(protected);
            Audit::of(keys).log();
            // The signal handler is installed here, before liftoff completes, so a SIGHUP sent
            // once the server is up can never meet the default action (termination).
            let hangup = crate::watch::hangup_signal(keys.config().reload_on_sighup);
            keys.limiter().start();
            rocket::tokio::spawn(crate::watch::watch(keys.clone(), rocket.shutdown(), hangup));
            #[cfg(feature = "postgres")]
            rocket::tokio::spawn(crate::listen::listen(keys.clone(), rocket.shutdown()));
            #[cfg(feature = "metrics")]
            if keys.limiter().failure_table_in_use().is_some()
                || keys.config().keys_database_url.is_some()
            {
                rocket::tokio::spawn(count_gauges(keys.clone(), rocket.shutdown()));
            }
            if keys.config().rejected_log_limit > 0 {
                rocket::tokio::spawn(crate::log::summarise_periodically(
                    keys.clone(),
                    rocket.shutdown(),
                ));
            }
        }
    }

    /// Redacts keys sent in the query string before Rocket logs the request.
    ///
    /// Written out rather than as an `async fn`: the work is synchronous, so it is done when
    /// Rocket calls the stage (which Rocket awaits at once) and the future returned is `Done`,
    /// of no size, whose box allocates nothing. An `async fn` would allocate and free a boxed
    /// future for every request, and shift the allocator's pattern for everything after it.
    fn on_request<'life0, 'life1, 'life2, 'life3, 'life4, 'async_trait>(
        &'life0 self,
        req: &'life1 mut rocket::Request<'life2>,
        _data: &'life3 mut rocket::Data<'life4>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        'life4: 'async_trait,
        Self: 'async_trait,
    {
        redact_query(req);
        Box::pin(Done)
    }

    /// Makes every answer to a request this layer refused the documented one (status, JSON
    /// body, `WWW-Authenticate`, `Retry-After`), whichever catcher produced it: one the
    /// application registered under a longer base path wins over ours at `/`, and 429 and 503 are
    /// not registered at all. Left alone with `register_catchers = false`, and when the handler
    /// answered with another status (it took `Option<ApiKey>`, say).
    ///
    /// Synchronous, and written out for the same reason as `on_request`.
    fn on_response<'r, 'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        req: &'r rocket::Request<'life1>,
        res: &'life2 mut rocket::Response<'r>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'async_trait>>
    where
        'r: 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        repair_response(req, res);
        Box::pin(Done)
    }

    async fn on_shutdown(&self, rocket: &Rocket<Orbit>) {
        if let Some(keys) = rocket.state::<ApiKeyStore>() {
            keys.rejection_log().flush();
        }
    }
}

/// Warns, once per process, when Rocket's lines that can print a key are printed unfiltered:
/// neither [`log_filter::init`](crate::log_filter::init) nor a `tracing` subscriber with
/// [`CredentialFilter`](crate::log_filter::CredentialFilter). Rocket's `off` prints nothing.
fn warn_if_rockets_lines_unfiltered(level: rocket::config::LogLevel) {
    static WARNED: Once = Once::new();
    if level == rocket::config::LogLevel::Off || crate::log_filter::rockets_lines_filtered() {
        return;
    }
    WARNED.call_once(|| {
        tracing::warn!(
            target: TARGET,
            log_level = %level,
            "Rocket's log lines can print API keys sent where they do not belong (a request \
             with a method Rocket does not know, at every level but `off`) and nothing filters \
             them; call `rocket_api_key::log_filter::init()` before `rocket::build()`, or add \
             `CredentialFilter` to your `tracing` subscriber"
        );
    });
}

/// The request stage's work: see [`ApiKeyStoreFairing`]'s `on_request`.
fn redact_query(req: &mut rocket::Request<'_>) {
    // Most requests have no query: nothing to look up for them.
    if req.uri().query().is_none() {
        return;
    }
    // The state lives as long as the server, not as this borrow of the request.
    if let Some(keys) = req.rocket().state::<ApiKeyStore>() {
        let config = keys.config();
        crate::redact::query::redact_request(req, &config.header, &config.redacted_query_params);
    }
}

/// The response stage's work: see [`ApiKeyStoreFairing`]'s `on_response`.
fn repair_response<'r>(req: &'r rocket::Request<'_>, res: &mut rocket::Response<'r>) {
    use rocket::response::Responder;

    if !matches!(res.status().code, 401 | 403 | 429 | 503) {
        return;
    }
    let Some(keys) = req.rocket().state::<ApiKeyStore>() else {
        return;
    };
    if !keys.config().register_catchers {
        return;
    }
    // Answered by a `Rejection` (our catchers'): nothing to repair, and nothing to redo.
    let Some(rejection) = crate::reject::unanswered_rejection(req) else {
        return;
    };
    if rejection.status() != res.status() {
        return;
    }
    if let Ok(ours) = rejection.clone().respond_to(req) {
        res.merge(ours);
    }
}

/// A future that is already finished and has no size: `Box::pin(Done)` allocates nothing.
struct Done;

impl Future for Done {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

/// Sets the failure table's gauge, and the key table's (feature `postgres`), now and every
/// [`FAILURE_TABLE_INTERVAL`] until shutdown: they change with time as well as with requests, so
/// they are counted, not tracked.
///
/// [`FAILURE_TABLE_INTERVAL`]: crate::meter::FAILURE_TABLE_INTERVAL
#[cfg(feature = "metrics")]
async fn count_gauges(keys: ApiKeyStore, shutdown: rocket::Shutdown) {
    use rocket::tokio::time::{interval, MissedTickBehavior};

    let mut ticker = interval(crate::meter::FAILURE_TABLE_INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    rocket::tokio::pin!(shutdown);
    loop {
        rocket::tokio::select! {
            _ = &mut shutdown => break,
            _ = ticker.tick() => {
                if let Some(entries) = keys.limiter().failure_table_in_use() {
                    crate::meter::failure_table(entries);
                }
                #[cfg(feature = "postgres")]
                if let Some(staleness) = keys.database_staleness() {
                    crate::meter::database(staleness, keys.database_skipped());
                }
            }
        }
    }
}
