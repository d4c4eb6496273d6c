//! The request guards: [`Authorized`] (what `#[require_api_key]` injects) and [`ApiKey`]
//! (who is calling).
//!
//! Both share one authentication per request through Rocket's request-local cache, and one
//! verdict: a request is logged and counted once, however many guards look at it.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Mutex;
use std::time::Duration;

use rocket::http::Header;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};

use crate::address::ClientAddr;
use crate::config::{ClientAddress, Config};
use crate::header::bearer_token;
use crate::keygen::digest::{Fingerprint, KeyDigest};
use crate::limit::outcome::Limit;
use crate::lock::lock;
use crate::log;
use crate::reason::Reason;
use crate::reject::{self, Rejection};
use crate::scope::{AnyKey, RequiredScopes, ScopeRequirement};
use crate::store::{ApiKey, ApiKeyStore};

/// A request guard that lets a request through only with a valid key meeting the scope
/// requirement `S`. Dereferences to the [`ApiKey`].
///
/// `#[require_api_key]` adds one as the handler's first parameter; writing it by hand is the
/// same thing without the attribute:
///
/// ```
/// use rocket::get;
/// use rocket_api_key::{Authorized, scope::RequiredScopes, scope::ScopeRequirement};
///
/// struct ReadOrders;
/// impl RequiredScopes for ReadOrders {
///     const REQUIREMENT: ScopeRequirement = ScopeRequirement::AllOf(&["read:orders"]);
/// }
///
/// #[get("/orders")]
/// fn orders(key: Authorized<ReadOrders>) -> String {
///     format!("orders for {}", key.name())
/// }
/// ```
///
/// Fails with a [`Rejection`]: 401 for a missing, malformed, duplicated, unknown or expired key,
/// 403 for a missing scope or a disallowed address, 500 if no [`ApiKeyStore`] store is attached
/// (and, as a [`Sentinel`], it stops such an application from launching in the first place).
pub struct Authorized<S: RequiredScopes = AnyKey> {
    key: ApiKey,
    _requirement: PhantomData<fn() -> S>,
}

impl<S: RequiredScopes> Authorized<S> {
    /// The validated key.
    pub fn key(&self) -> &ApiKey {
        &self.key
    }

    /// Unwraps the validated key.
    pub fn into_key(self) -> ApiKey {
        self.key
    }
}

impl<S: RequiredScopes> Deref for Authorized<S> {
    type Target = ApiKey;

    fn deref(&self) -> &ApiKey {
        &self.key
    }
}

impl<S: RequiredScopes> std::fmt::Debug for Authorized<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorized")
            .field("key", &self.key)
            .field("requirement", &S::REQUIREMENT)
            .finish()
    }
}

#[rocket::async_trait]
impl<'r, S: RequiredScopes> FromRequest<'r> for Authorized<S> {
    type Error = Rejection;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Rejection> {
        guard(req, S::REQUIREMENT).await.map(|key| Authorized {
            key,
            _requirement: PhantomData,
        })
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ApiKey {
    type Error = Rejection;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Rejection> {
        guard(req, ScopeRequirement::AnyKey).await
    }
}

impl<S: RequiredScopes> Sentinel for Authorized<S> {
    /// Stops a launch without a store; otherwise notes `S`'s requirement for the launch audit
    /// (Rocket asks once per guard type of the mounted routes, after the ignite fairings).
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        if let Some(store) = rocket.state::<ApiKeyStore>() {
            store.note_requirement(S::REQUIREMENT);
        }
        store_missing(rocket)
    }
}

impl Sentinel for ApiKey {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        store_missing(rocket)
    }
}

fn store_missing(rocket: &Rocket<Ignite>) -> bool {
    let missing = rocket.state::<ApiKeyStore>().is_none();
    if missing {
        tracing::error!(
            target: crate::target::TARGET,
            "a route requires an API key but no key store is attached; \
             add `.attach(ApiKeyStore::fairing())` to the application"
        );
    }
    missing
}

/// What the guards learn about a request, in one entry of Rocket's request-local cache:
/// authentication and admission happen once per request however many guards ask. The first
/// rejection is kept apart, by [`reject::keep`], for the catchers to answer with (it alone is
/// logged and counted).
///
/// Each verdict sits in a `Mutex`, locked only to read or store it, never across an await: a
/// `OnceLock` costs more to fill (its `Once` state machine) than an uncontended lock and unlock,
/// and this runs on every protected request. A guard takes its own copy of the verdict (a key is
/// a reference count, a failure a few words).
#[derive(Default)]
struct Check {
    /// The key, or why there is none: decided once, under the failure limit.
    authentication: Mutex<Option<Result<ApiKey, Failure>>>,
    /// Counted against the key's rate, then counted and logged as accepted.
    admission: Mutex<Option<Result<(), Rejection>>>,
}

#[derive(Clone)]
struct Failure {
    rejection: Rejection,
    key: Option<ApiKey>,
    fingerprint: Option<Fingerprint>,
}

fn check<'r>(req: &'r Request<'_>) -> &'r Check {
    req.local_cache(Check::default)
}

async fn guard(req: &Request<'_>, required: ScopeRequirement) -> Outcome<ApiKey, Rejection> {
    let Some(keys) = req.rocket().state::<ApiKeyStore>() else {
        return reject(req, None, Rejection::new(Reason::NoStore), None, None);
    };
    let check = check(req);
    let cached = lock(&check.authentication).clone();
    let authentication = match cached {
        Some(authentication) => authentication,
        // As with `admission` below: no other guard of this request runs while this one awaits.
        None => {
            let authentication = authenticate_within_limit(req, keys).await;
            lock(&check.authentication)
                .get_or_insert(authentication)
                .clone()
        }
    };
    let key = match authentication {
        Err(f) => return reject(req, Some(keys), f.rejection, f.key.as_ref(), f.fingerprint),
        Ok(key) => key,
    };
    if !required.is_met_by(key.granted()) {
        let rejection = Rejection::scope(required);
        return reject(
            req,
            Some(keys),
            rejection,
            Some(&key),
            Some(key.fingerprint()),
        );
    }
    let cached = lock(&check.admission).clone();
    let admission = match cached {
        Some(admission) => admission,
        // Rocket runs a request's guards one after another, so no other guard of this request
        // can admit it while this one awaits the limiter. (An async `OnceCell` would also cover
        // guards run concurrently, at the cost of a semaphore per request.)
        None => {
            let admission = admit(req, keys, &key).await;
            lock(&check.admission).get_or_insert(admission).clone()
        }
    };
    match admission {
        Ok(()) => Outcome::Success(key),
        Err(rejection) => reject(
            req,
            Some(keys),
            rejection,
            Some(&key),
            Some(key.fingerprint()),
        ),
    }
}

/// Authenticates the request under the failure limit, when there is one. The limit of the
/// address is asked twice, each time in one atomic step of the limiter:
///
/// - before the key is looked at: an address over the limit is refused without its key being
///   looked up at all, so not even the time an answer takes tells it anything about a key;
/// - after: a guess ([`is_guess`]) is counted in the same step that checks the limit, and
///   refused if the allowance is spent in the meantime; anything else is checked again.
///
/// Counting in the step that checks is what holds concurrent guesses to the limit: with a
/// check before the lookup and a count after it, every guess in flight passed the check before
/// any was counted (300 wrong keys sent at once had 29 to 66 of them checked against `5/m`).
/// Checking a valid key again makes a refusal independent of the key: once the allowance is
/// spent, a valid key and a guess in flight both get 429, so the refusal of a guess tells the
/// sender nothing about it.
///
/// Nothing is taken from the allowance before the lookup to be given back after it: that
/// would make the allowance a cap on requests in flight, and an address sending more valid
/// requests at once than the limit would be refused without ever failing.
async fn authenticate_within_limit(
    req: &Request<'_>,
    keys: &ApiKeyStore,
) -> Result<ApiKey, Failure> {
    let Some(ip) = failure_address(req, keys) else {
        return authenticate(req, keys);
    };
    failure_limit(keys.limiter().failures(ip, false).await)?;
    let authenticated = authenticate(req, keys);
    let guess = matches!(&authenticated, Err(f) if is_guess(f.rejection.reason()));
    failure_limit(keys.limiter().failures(ip, guess).await)?;
    authenticated
}

/// A failure limit's refusal. It names no key: the refusal is the address's, and is logged and
/// counted alike whether it came before the key was looked up or after.
fn failure_limit(limit: Limit) -> Result<(), Failure> {
    let rejection = match limit {
        Limit::Pass => return Ok(()),
        Limit::Wait(wait) => Rejection::retry(Reason::TooManyFailures, wait),
        Limit::Unavailable => unavailable(),
    };
    Err(Failure {
        rejection,
        key: None,
        fingerprint: None,
    })
}

/// Applies the key's `rate=`; on success counts and logs the request as accepted.
async fn admit(req: &Request<'_>, keys: &ApiKeyStore, key: &ApiKey) -> Result<(), Rejection> {
    match keys
        .limiter()
        .admit(key.name(), key.rate(), &key.identity().rate)
        .await
    {
        Limit::Pass => {
            key.record_accepted(keys.key_label());
            log::accepted(req, keys.config().accepted_log_level, key);
            Ok(())
        }
        Limit::Wait(wait) => Err(Rejection::retry(Reason::RateLimited, wait)),
        Limit::Unavailable => Err(unavailable()),
    }
}

fn unavailable() -> Rejection {
    Rejection::retry(Reason::LimiterUnavailable, Duration::from_secs(1))
}

/// The address failed authentications are counted against, when failure limiting is on: the
/// socket peer, or with `failure_limit_address = "proxy"` what a trusted proxy reports (the proxy
/// itself when it reports nothing usable).
fn failure_address(req: &Request<'_>, keys: &ApiKeyStore) -> Option<IpAddr> {
    if !keys.limiter().limits_failures() {
        return None;
    }
    match keys.config().failure_limit_address? {
        ClientAddress::Peer => req.remote().map(|peer| peer.ip().to_canonical()),
        ClientAddress::Proxy => ClientAddr::of(req, &keys.config().trusted_proxies).accountable(),
    }
}

/// Rejections that may be someone guessing keys. A missing key guesses nothing; an expired,
/// out-of-scope or out-of-place key is a real one.
fn is_guess(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Malformed | Reason::Duplicate | Reason::Unknown
    )
}

fn authenticate(req: &Request<'_>, keys: &ApiKeyStore) -> Result<ApiKey, Failure> {
    let failure = |reason| Failure {
        rejection: Rejection::new(reason),
        key: None,
        fingerprint: None,
    };
    let presented = presented_key(req, keys.config()).map_err(failure)?;
    if !keys.well_formed(presented) {
        return Err(failure(Reason::Malformed));
    }
    let digest = KeyDigest::of(presented.as_bytes());
    let client = || ClientAddr::of(req, &keys.config().trusted_proxies).known();
    keys.check_digest(&digest, client)
        .map_err(|(reason, key)| Failure {
            rejection: Rejection::new(reason),
            key,
            fingerprint: Some(digest.fingerprint()),
        })
}

/// The key of the request: the configured header, or `Authorization: Bearer` when accepted.
/// Two values, in one header or across both, are refused rather than guessed between.
///
/// One pass over the headers, comparing names without hashing them: a lookup in Rocket's header
/// map hashes the name byte by byte, and this runs on every protected request.
fn presented_key<'r>(req: &'r Request<'_>, config: &Config) -> Result<&'r str, Reason> {
    let mut from_header = None;
    let mut from_bearer = None;
    for Header { name, value } in req.headers().iter() {
        let is_key = name.as_str().eq_ignore_ascii_case(&config.header);
        let is_authorization =
            config.accept_bearer && name.as_str().eq_ignore_ascii_case("authorization");
        if !(is_key || is_authorization) {
            continue;
        }
        // `iter` lends the values of the request; were it ever to copy one, refuse the request
        // rather than look elsewhere.
        let Cow::Borrowed(value) = value else {
            return Err(Reason::Malformed);
        };
        if is_key && from_header.replace(value).is_some() {
            return Err(Reason::Duplicate);
        }
        if is_authorization {
            if let Some(token) = bearer_token(value) {
                if from_bearer.replace(token).is_some() {
                    return Err(Reason::Duplicate);
                }
            }
        }
    }
    match (from_header, from_bearer) {
        (None, None) => Err(Reason::Missing),
        // Both values come from the client; comparing them reveals nothing secret.
        (Some(a), Some(b)) if a != b => Err(Reason::Duplicate),
        (Some(key), _) | (None, Some(key)) => Ok(key),
    }
}

/// Records the request's first rejection (the one the catchers answer with), logging and
/// counting it once however many guards fail.
fn reject(
    req: &Request<'_>,
    keys: Option<&ApiKeyStore>,
    rejection: Rejection,
    key: Option<&ApiKey>,
    fingerprint: Option<Fingerprint>,
) -> Outcome<ApiKey, Rejection> {
    if reject::keep(req, rejection.clone()) {
        match keys {
            Some(keys) => {
                keys.record_rejected(rejection.reason(), key);
                log::rejected(req, keys, &rejection, key, fingerprint);
            }
            None => log::no_store(req),
        }
    }
    Outcome::Error((rejection.status(), rejection))
}
