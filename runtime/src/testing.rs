//! Testing your own protected routes with Rocket's local client, without making keys by hand.
//!
//! A [`TestKey`] is a freshly generated key with the scopes, expiry, address allowlist and rate
//! you give it; [`ApiKeyStoreBuilder::test_key`](crate::ApiKeyStoreBuilder::test_key) configures
//! it, and [`LocalRequestExt::api_key`] presents it on a request of the
//! [blocking](rocket::local::blocking) or [asynchronous](rocket::local::asynchronous) client,
//! in the header the application reads.
//!
//! ```
//! use rocket::http::Status;
//! use rocket::local::blocking::Client;
//! use rocket::{get, routes};
//! use rocket_api_key::testing::{LocalRequestExt, TestKey};
//! use rocket_api_key::{ApiKey, ApiKeyStore};
//!
//! #[get("/whoami")]
//! fn whoami(key: ApiKey) -> String {
//!     key.name().to_owned()
//! }
//!
//! let ci = TestKey::new("ci").scopes(["read:orders"]);
//! let keys = ApiKeyStore::builder().from_env(false).test_key(&ci);
//! let rocket = rocket::build().attach(keys.fairing()).mount("/", routes![whoami]);
//! let client = Client::tracked(rocket).unwrap();
//!
//! let response = client.get("/whoami").api_key(&ci).dispatch();
//! assert_eq!(response.status(), Status::Ok);
//! assert_eq!(response.into_string().unwrap(), "ci");
//! assert_eq!(client.get("/whoami").dispatch().status(), Status::Unauthorized);
//! ```
//!
//! # Nothing here is a way in
//!
//! A test key is an ordinary generated key: 256 bits from the operating system's random
//! generator, made by [`GeneratedKey`], configured as its `sha256:` digest like any other. The
//! guards do not know test keys from others, there is no test mode to switch on or leave on,
//! and no fixed or predictable key: compiled into a production binary, this module adds no key
//! and accepts no request; a key exists only where code makes one, and lives as long as it.

use std::fmt;

use ipnet::IpNet;
use rocket::http::Header;
use rocket::request::Request;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::entry::KeyEntry;
use crate::header::DEFAULT_HEADER;
use crate::keygen::GeneratedKey;
use crate::rate::RateSpec;
use crate::scope::is_valid_scope;
use crate::store::ApiKeyStore;

/// A generated key and its configuration, for tests: give its [`entry`](Self::entry) to the store
/// (or the key itself to [`ApiKeyStoreBuilder::test_key`](crate::ApiKeyStoreBuilder::test_key))
/// and present its [secret](Self::expose_secret) in requests.
///
/// Without settings it is a key with no scopes, no expiry, usable from anywhere without a rate
/// limit; each builder method sets one field of its [entry](Self::entry), replacing what an
/// earlier call set. A mistake that would make the entry mean something other than what was
/// written (a scope outside the grammar, an expiry that RFC 3339 cannot express) panics at the
/// call; the name and the rest are checked when the store loads the key, like any other.
///
/// Its `Debug` shows the name, the key's [fingerprint](crate::keygen::Fingerprint) and the
/// settings, never the key.
///
/// ```
/// use rocket::time::{Duration, OffsetDateTime};
/// use rocket_api_key::testing::TestKey;
///
/// let key = TestKey::new("batch")
///     .scopes(["read:orders", "write:orders"])
///     .expires(OffsetDateTime::now_utc() + Duration::days(1))
///     .ips(["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()])
///     .rate("10/s".parse().unwrap());
/// assert!(key.entry().starts_with("sha256:"));
/// assert!(key.entry().contains(";scopes=read:orders,write:orders;expires="));
/// assert!(key.entry().ends_with(";ips=10.0.0.0/8;rate=10/s"));
/// assert!(!format!("{key:?}").contains(key.expose_secret()));
/// ```
pub struct TestKey {
    name: String,
    key: GeneratedKey,
    entry: KeyEntry,
}

impl TestKey {
    /// A new key named `name`, with the [default prefix](crate::keygen::DEFAULT_KEY_PREFIX).
    ///
    /// # Panics
    ///
    /// If the operating system's random generator fails.
    #[track_caller]
    pub fn new(name: impl Into<String>) -> Self {
        let key = GeneratedKey::new()
            .unwrap_or_else(|e| panic!("a test key could not be generated: {e}"));
        let entry = KeyEntry {
            digest: key.digest(),
            scopes: Vec::new(),
            expires: None,
            ips: Vec::new(),
            rate: None,
        };
        TestKey {
            name: name.into(),
            key,
            entry,
        }
    }

    /// The scopes the key grants.
    ///
    /// # Panics
    ///
    /// If a scope is outside the [scope grammar](crate::scope): written into the entry, it could
    /// end the list and start another field.
    #[track_caller]
    pub fn scopes<I>(mut self, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.entry.scopes = scopes.into_iter().map(Into::into).collect();
        for scope in &self.entry.scopes {
            assert!(
                is_valid_scope(scope),
                "test key `{}`: {scope:?} is not a scope; see the scope grammar in `rocket_api_key::scope`",
                self.name
            );
        }
        self
    }

    /// When the key stops being accepted. A time in the past makes a key that is refused as
    /// expired (401, reason `expired`); `rocket::time` re-exports the `time` crate:
    ///
    /// ```
    /// use rocket::time::{Duration, OffsetDateTime};
    /// use rocket_api_key::testing::TestKey;
    ///
    /// let expired = TestKey::new("old").expires(OffsetDateTime::now_utc() - Duration::hours(1));
    /// ```
    ///
    /// An instant rather than a duration from now, so that both sides of the boundary are as
    /// easy to write, and the entry says exactly what was asked.
    ///
    /// # Panics
    ///
    /// If the time, in UTC, is outside the years 0 to 9999, which an entry cannot express.
    #[track_caller]
    pub fn expires(mut self, at: OffsetDateTime) -> Self {
        let at = at.to_offset(UtcOffset::UTC);
        assert!(
            at.format(&Rfc3339).is_ok(),
            "test key `{}`: an expiry must fall within the years 0 to 9999",
            self.name
        );
        self.entry.expires = Some(at);
        self
    }

    /// The client networks the key may be used from (an [`IpAddr`](std::net::IpAddr) is a
    /// network of one address); a request from elsewhere is refused with 403. Rocket's local
    /// client sends from the address given to its request's `remote`.
    pub fn ips<I>(mut self, networks: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<IpNet>,
    {
        self.entry.ips = networks.into_iter().map(Into::into).collect();
        self
    }

    /// The key's request rate limit (`"10/s".parse()`, see [`RateSpec`]).
    pub fn rate(mut self, limit: RateSpec) -> Self {
        self.entry.rate = Some(limit);
        self
    }

    /// The key's name, as the store and its usage figures know it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration entry: `sha256:<digest>` and the settings, in the entry grammar. It
    /// holds the key's digest, not the key, so a store given this keeps no plaintext.
    pub fn entry(&self) -> String {
        self.entry
            .to_entry()
            .expect("the expiry was checked to be expressible when set")
    }

    /// The key, to present in requests ([`LocalRequestExt::api_key`] does it for the local
    /// client).
    pub fn expose_secret(&self) -> &str {
        self.key.expose_secret()
    }
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("scopes", &self.entry.scopes)
            .field("expires", &self.entry.expires)
            .field("ips", &self.entry.ips)
            .field("rate", &self.entry.rate)
            .finish()
    }
}

/// Presents a [`TestKey`] on a request of Rocket's local client, [blocking] or [asynchronous].
///
/// The key goes in the header the application's [`ApiKeyStore`] reads (its `header` setting,
/// from the builder or from Rocket's configuration), or `x-api-key` when no store is attached;
/// it replaces any value of that header the request had.
///
/// ```
/// use rocket::local::asynchronous::Client;
/// use rocket_api_key::testing::{LocalRequestExt, TestKey};
/// use rocket_api_key::ApiKeyStore;
///
/// # rocket::execute(async {
/// let ci = TestKey::new("ci");
/// let keys = ApiKeyStore::builder().from_env(false).header("x-orders-key").test_key(&ci);
/// let client = Client::tracked(rocket::build().attach(keys.fairing())).await.unwrap();
/// let request = client.get("/").api_key(&ci);
/// assert_eq!(request.headers().get_one("x-orders-key"), Some(ci.expose_secret()));
/// # });
/// ```
///
/// [blocking]: rocket::local::blocking::LocalRequest
/// [asynchronous]: rocket::local::asynchronous::LocalRequest
pub trait LocalRequestExt: sealed::Sealed + Sized {
    /// The request with `key` in the application's key header.
    #[must_use]
    fn api_key(self, key: &TestKey) -> Self;
}

impl LocalRequestExt for rocket::local::blocking::LocalRequest<'_> {
    fn api_key(mut self, key: &TestKey) -> Self {
        present(self.inner_mut(), key);
        self
    }
}

impl LocalRequestExt for rocket::local::asynchronous::LocalRequest<'_> {
    fn api_key(mut self, key: &TestKey) -> Self {
        present(self.inner_mut(), key);
        self
    }
}

fn present(req: &mut Request<'_>, key: &TestKey) {
    let name = req
        .rocket()
        .state::<ApiKeyStore>()
        .map_or(DEFAULT_HEADER, |keys| keys.config().header.as_str())
        .to_owned();
    req.replace_header(Header::new(name, key.expose_secret().to_owned()));
}

/// Only the local client's two request types take a key this way.
mod sealed {
    pub trait Sealed {}
    impl Sealed for rocket::local::blocking::LocalRequest<'_> {}
    impl Sealed for rocket::local::asynchronous::LocalRequest<'_> {}
}
