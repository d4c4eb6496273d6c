//! The fairing: the keys loaded at ignite, the store managed, the catchers registered, keys in
//! query strings redacted before Rocket logs them, refusals answered as the store says, and at
//! liftoff the watcher, the key table's listener and the audit started. The builder that makes
//! it is in `builder.rs`, the first load in `ignite.rs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::{Build, Orbit, Rocket};

use crate::audit::Audit;
use crate::load::NameList;
use crate::store::ApiKeyStore;
use crate::target::TARGET;

mod builder;
mod ignite;

pub use builder::ApiKeyStoreBuilder;

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
    /// use rocket_api_key::{log_filter, ApiKeyStore};
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
            let (protected, ambiguous) = crate::registry::protected(rocket.routes());
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
