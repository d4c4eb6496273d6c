//! API-key protection for [Rocket](https://rocket.rs) handlers, declared with one attribute.
//!
//! ```
//! use rocket::{get, launch, routes};
//! use rocket_api_key::{require_api_key, ApiKey, ApiKeyStore};
//!
//! #[require_api_key(scope = "read:orders")]
//! #[get("/orders")]
//! fn list_orders() -> &'static str {
//!     "[]"
//! }
//!
//! #[require_api_key]
//! #[get("/whoami")]
//! fn whoami(key: ApiKey) -> String {
//!     key.name().to_owned()
//! }
//!
//! #[launch]
//! fn rocket() -> _ {
//!     rocket_api_key::log_filter::init(); // Rocket's logger, less the lines that can print a key
//!     rocket::build()
//!         .attach(ApiKeyStore::fairing())
//!         .mount("/", routes![list_orders, whoami])
//! }
//! ```
//!
//! [`log_filter::init`] comes first: `rocket::build()` installs Rocket's own logger, which
//! prints a request it cannot parse with its key at every level but `off`, and a process has one
//! logger. With a `tracing` subscriber of your own, add [`log_filter::CredentialFilter`] to it
//! instead.
//!
//! # How it fits together
//!
//! 1. [`ApiKeyStore::fairing`] loads the keys at ignite from `API_KEY_<NAME>`, `API_KEY` and the
//!    file named by `API_KEYS_FILE` (see [Keys](#keys)), keeps them as SHA-256 digests in Rocket's
//!    managed state, and registers JSON catchers for 401 and 403. A malformed entry stops
//!    ignition with an error naming the variable or file line.
//! 2. [`#[require_api_key]`](require_api_key) adds an [`Authorized`] guard as the handler's
//!    first parameter. Rocket runs request guards first and in order, so an unauthorised
//!    request runs nothing else.
//! 3. On each request the guard reads the key from `x-api-key`, hashes it, finds it in a table
//!    of 64-byte slots (one probe, usually one cache line) with a constant-time comparison,
//!    checks expiry, the address allowlist and the route's scopes, and either passes the
//!    [`ApiKey`] on or fails with a [`Rejection`] that the catchers turn into JSON and that is
//!    logged as a `tracing` event, with a [`Fingerprint`](keygen::Fingerprint), never the key.
//!
//! # Where things are
//!
//! The root holds what a handler or a `rocket()` function names: the attribute, the
//! [`ApiKeyStore`] (with its [`ApiKeyStoreBuilder`] and [`ApiKeyStoreFairing`]), the [`ApiKey`]
//! and [`Authorized`] guards, the [`Rejection`] and its [`Reason`], the [`catchers`] and the
//! [`LOG_TARGET`]. The rest is in modules:
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | the `api_keys` settings, their errors, rates |
//! | [`load`] | where keys come from, what can go wrong loading them, what a reload changed |
//! | [`keygen`] | making keys, their checksum, digests and fingerprints |
//! | [`scope`] | scope rules and the requirement a route declares |
//! | [`usage`] | per-key counts of accepted and refused requests |
//! | [`audit`] | which configured keys reach which mounted routes |
//! | [`log_filter`] | Rocket's lines that can print a key kept out: its logger, or a `tracing` layer |
//! | [`testing`] | generated keys and the local client's `.api_key(…)`, for testing your routes |
#![cfg_attr(
    feature = "postgres",
    doc = "| [`database`] | keys in PostgreSQL: the table, `KeyTable` for its administration (feature `postgres`) |"
)]
#![cfg_attr(
    not(feature = "postgres"),
    doc = "| `database` | keys in PostgreSQL: the table, `KeyTable` for its administration (feature `postgres`) |"
)]
#![cfg_attr(
    feature = "utoipa",
    doc = "| [`openapi`] | OpenAPI security for utoipa documents (feature `utoipa`) |"
)]
#![cfg_attr(
    not(feature = "utoipa"),
    doc = "| `openapi` | OpenAPI security for utoipa documents (feature `utoipa`) |"
)]
//!
//! # The attribute
//!
//! `#[require_api_key]` lets any valid key through; `scope = "read:orders"`, `scope = all(…)`
//! and `scope = any(…)` require scopes. It must be placed above the route attribute; see
//! [`require_api_key`] for every form, why the order matters, the code it generates and the
//! compile errors it reports.
//!
//! # Keys
//!
//! An entry is `<key>[;scopes=<scope>,…][;expires=<RFC 3339>][;ips=<IP or CIDR>,…]`, where
//! `<key>` is the key itself (16 to 256 visible ASCII characters) or, better, `sha256:` and the
//! 64 hex digits of its SHA-256 digest, so the server's environment holds nothing replayable.
//! [`KeySource`](load::KeySource) lists where entries come from:
//!
//! ```sh
//! API_KEY_REPORTING='sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08;scopes=read:orders'
//! API_KEY_BILLING='sha256:…;scopes=read:orders,write:orders;ips=10.0.0.0/8;expires=2027-03-01T00:00:00Z'
//! API_KEYS_FILE=/etc/orders/api-keys     # lines of <name>=<entry>
//! ```
//!
//! Keys can also come from code, e.g. a secrets manager, with [`ApiKeyStoreBuilder::key`]. The
//! layer itself ([`Config`](config::Config): the header, the prefix, `Authorization: Bearer`, log
//! level, trusted proxies, …) is configured with the builder and overridden by the `api_keys` table
//! of Rocket's configuration.
//!
//! # Making, rotating and revoking keys
//!
//! [`GeneratedKey`](keygen::GeneratedKey) makes keys of the form `rak_<43 base62><6-character
//! CRC32>` from the operating system's CSPRNG, and the `apikey` command prints one with its hashed
//! configuration line (`cargo run -p rocket-api-key-cli -- new --name orders --scope read:orders
//! --expires 90d`, from this repository).
//! A presented key of that shape with a wrong [`checksum`](keygen::checksum) is refused before any
//! lookup.
//!
//! The keys file is watched while the server runs (and SIGHUP honoured): a change is loaded and
//! swapped in whole, a broken file changes nothing, and each reload logs a
//! [`ReloadSummary`](load::ReloadSummary). [`ApiKeyStore::reload`] does the same on demand. Rotate
//! by adding the new key next to the old one, moving the client, then removing the old line.
//!
//! # Rate limits
//!
//! `rate=600/m` in an entry limits that key (429 with `Retry-After`, reason `rate_limited`);
//! `failure_limit` limits failed authentications per client address, refusing even valid keys
//! from an address that keeps guessing ([`ApiKeyStoreBuilder::failure_limit`]). Both are GCRA with
//! lock-free state; the failure table has a fixed size. With the `redis` feature
//! ([`ApiKeyStoreBuilder::redis`]) every instance sharing a Redis shares the limits, with an
//! explicit [`UnavailablePolicy`](config::UnavailablePolicy) for outages; authentication itself
//! never depends on Redis.
//!
//! # Reading the caller
//!
//! Declare [`ApiKey`] in a handler to get the key's name and scopes. After
//! `#[require_api_key]` it reuses that check; on its own it accepts any valid key.
//!
//! # Rejections
//!
//! | outcome | status | body |
//! |---|---|---|
//! | missing, malformed, duplicated, unknown, expired key | 401 | `{"error":"Unauthorized access"}` |
//! | missing scope | 403 | `{"error":"Insufficient scope","required_scopes":[…],"match":"all"}` |
//! | address outside the key's `ips` | 403 | `{"error":"This key may not be used from this address"}` |
//! | key over its `rate`, address over `failure_limit` | 429 | `{"error":"Too many requests"}`, `{"error":"Too many failed attempts"}` |
//!
//! A 401 carries `WWW-Authenticate: ApiKey header="x-api-key"`, a 429 `Retry-After`. The fairing
//! registers catchers for 401 and 403 at `/` and nothing else; it answers its own 429s and 503s,
//! and any refusal another catcher answered (one registered under `/api`, say), with the table
//! above. Applications that answer refusals themselves turn this off
//! ([`ApiKeyStoreBuilder::register_catchers`]) and read [`Rejection::of`].
//!
//! # Logs and usage
//!
//! Each rejection is a `WARN` event under the target [`LOG_TARGET`] with the fields `reason`,
//! `method`, `path`, `client_ip`, `key` (its name, when known) and `fingerprint`, up to
//! [`Config::rejected_log_limit`](config::Config::rejected_log_limit) a second (a flood beyond it
//! is summarised once a second); each accepted request an event at
//! [`Config::accepted_log_level`](config::Config::accepted_log_level). [`ApiKeyStore::usage`]
//! reports per-key counts kept in atomic counters, every rejection included.
//!
//! With the `metrics` feature the same counts go through the [`metrics`](https://docs.rs/metrics)
//! facade to the recorder the application installs (before launch): `api_key_requests_total` by
//! `key` (the configured name, or `(none)` where the usage figures say unattributed; left out
//! with [`Config::metrics_key_label`](config::Config::metrics_key_label) `= "none"`, for a
//! service with many keys) and `outcome` (`accepted` or the reason), the gauges `api_key_keys` and
//! `api_key_failure_table_entries`, and `api_key_reloads_total` by `outcome`. No label is ever a
//! presented key or a digest of one. The README's "Metrics" serves them to Prometheus.
//!
//! No key reaches a log line, Rocket's included: the fairing replaces key-like query values by
//! `REDACTED` before Rocket logs the request
//! ([`Config::redacted_query_params`](config::Config::redacted_query_params)), and
//! [`log_filter`] drops the few lines Rocket prints before any fairing runs (a request it
//! cannot parse, at every level but `off`; every request's headers at `debug`): with Rocket's
//! own logger, [`log_filter::init`] before `rocket::build()`; with a `tracing` subscriber,
//! [`log_filter::CredentialFilter`] in it. Without either, the fairing warns at liftoff.
//!
//! # Which keys reach which routes
//!
//! At liftoff, and after every reload that changes the keys, the fairing compares the mounted
//! routes' requirements with the configured keys: one `INFO` event lists each protected route
//! and how many keys pass it, a `WARN` names each route no key can pass and each configured
//! scope no route requires, with the likely intended scope. [`audit::Audit::of`] gives the same
//! findings as data:
//!
//! ```
//! use rocket::local::blocking::Client;
//! use rocket::{get, routes};
//! use rocket_api_key::{audit::Audit, require_api_key, ApiKeyStore};
//!
//! #[require_api_key(scope = "read:orders")]
//! #[get("/orders")]
//! fn orders() -> &'static str {
//!     "[]"
//! }
//!
//! let fairing = ApiKeyStore::builder()
//!     .from_env(false)
//!     .key("reporting", "0123456789abcdef0123456789abcdef;scopes=read:order")
//!     .fairing();
//! let client = Client::tracked(rocket::build().attach(fairing).mount("/", routes![orders]))
//!     .expect("a valid rocket");
//! let audit = Audit::of(client.rocket().state::<ApiKeyStore>().expect("attached"));
//!
//! assert_eq!(audit.unreachable().count(), 1); // no key has `read:orders`…
//! assert_eq!(audit.unused_scopes[0].scope, "read:order"); // …one has a typo of it
//! assert_eq!(audit.unused_scopes[0].suggestion.as_deref(), Some("read:orders"));
//! ```
//!
//! # Testing your routes
//!
//! [`testing::TestKey`] makes a generated key with the scopes, expiry, address allowlist and rate
//! a test needs; [`ApiKeyStoreBuilder::test_key`] configures it as its digest, and
//! [`.api_key(&key)`](testing::LocalRequestExt::api_key) presents it on a request of Rocket's
//! local client (blocking or asynchronous) in the header the application reads. A test key is
//! an ordinary key: the store and the guards know nothing of tests.
//!
//! ```
//! use rocket::http::Status;
//! use rocket::local::blocking::Client;
//! use rocket::{get, routes};
//! use rocket_api_key::testing::{LocalRequestExt, TestKey};
//! use rocket_api_key::{require_api_key, ApiKeyStore};
//!
//! #[require_api_key(scope = "read:orders")]
//! #[get("/orders")]
//! fn list_orders() -> &'static str {
//!     "[]"
//! }
//!
//! let reader = TestKey::new("reader").scopes(["read:orders"]);
//! let writer = TestKey::new("writer").scopes(["write:orders"]);
//! let keys = ApiKeyStore::builder().from_env(false).test_key(&reader).test_key(&writer);
//! let rocket = rocket::build().attach(keys.fairing()).mount("/", routes![list_orders]);
//! let client = Client::tracked(rocket).unwrap();
//!
//! assert_eq!(client.get("/orders").api_key(&reader).dispatch().status(), Status::Ok);
//! assert_eq!(client.get("/orders").api_key(&writer).dispatch().status(), Status::Forbidden);
//! ```
//!
//! # Behind a reverse proxy
//!
//! List the proxies in [`Config::trusted_proxies`](config::Config::trusted_proxies) and set
//! Rocket's `ip_header` to what they write (`X-Real-IP`, or `X-Forwarded-For`, read from the
//! right). A missing, repeated or unparsable address from a trusted proxy is unknown: keys with
//! `ips` are refused, and the failure limit counts the proxy.
//!
//! # Outside Rocket's routing
//!
//! [`ApiKeyStore::verify`] checks a key without a request, for other transports or custom guards.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use rocket_api_key_macros::require_api_key;
pub use rocket_api_key_runtime::{
    catchers, ApiKey, ApiKeyStore, ApiKeyStoreBuilder, ApiKeyStoreFairing, Authorized, Reason,
    Rejection, LOG_TARGET,
};

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use rocket_api_key_runtime::database;
#[cfg(feature = "utoipa")]
#[cfg_attr(docsrs, doc(cfg(feature = "utoipa")))]
pub use rocket_api_key_runtime::openapi;
pub use rocket_api_key_runtime::{audit, config, keygen, load, log_filter, scope, testing, usage};

/// What `#[require_api_key]` expands to refers to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use rocket_api_key_runtime::__private::*;
    pub use rocket_api_key_runtime::scope::{AnyKey, RequiredScopes, ScopeRequirement};
    pub use rocket_api_key_runtime::Authorized;
}
