//! The runtime of [`rocket-api-key`](https://docs.rs/rocket-api-key): the key store, the request
//! guards and the JSON rejections that `#[require_api_key]` relies on.
//!
//! Depend on the `rocket-api-key` crate, which re-exports everything here together with the
//! attribute, and whose documentation is the guide.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The modules in layer order, lowest first: every `crate::…` path in a module's files points to
// a module declared above it, never below (`tests/layers.rs` reads them and fails otherwise); a
// helper that two layers need lives in the lower one. A folder is one module of several files:
// its `mod.rs` says what each holds.

// Primitives, which know no state.
mod address; //          client addresses, `X-Forwarded-For` behind trusted proxies
mod duration; //         `90d`, `500ms`: durations in settings and on the command line
mod env; //              the environment variables keys come from, and their names
mod header; //           the default header, `Authorization: Bearer`, the 401's challenge
mod lock; //             a mutex lock that outlives a panicking holder
pub mod keygen; //       generated keys, their checksum; digests and fingerprints (digest.rs)
pub mod log_filter; //   Rocket's lines that can print a key, kept out (logger.rs, layer.rs)
mod rate; //             rate specs, the GCRA cells and the failure table
mod reason; //           why a request was refused
mod redact; //           keys in query strings, credentials in URLs
pub mod scope; //        scopes and requirements; as types for the attribute (types.rs)
mod registry; //         the routes `#[require_api_key]` declares, for the audit
mod target; //           the log target

// Configuration and loading.
mod entry; //            the entry grammar: a key or its digest, and its fields
pub mod config; //       the `api_keys` settings, their values and errors
pub mod load; //         the sources, the keys-file reader (file.rs), what a reload changed
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod database; //     the key table: schema, administration, the copy an instance keeps

// State.
mod limit; //            the rate limits, in memory or in Redis (redis.rs)
mod rejection_log; //    the bound on `request rejected` events
#[cfg(feature = "metrics")]
mod meter; //            every decision counted through the `metrics` facade
pub mod usage; //        per-key counts of accepted and refused requests
mod slot_table; //       the keys laid out for a lookup in constant time

// The handle: `ApiKeyStore` and the `ApiKey` a check yields (key.rs), reloads, and what only the
// key table needs (database.rs).
mod store;

// What the handle answers: which keys reach which routes; OpenAPI security from the attribute.
pub mod audit;
#[cfg(feature = "utoipa")]
#[cfg_attr(docsrs, doc(cfg(feature = "utoipa")))]
pub mod openapi;

// The request edge. It sits above the store because a rejection's answer and its log event read
// the store's settings.
mod reject; //           rejections and their JSON answers, the catchers
mod log; //              the log events of a request
mod guard; //            the request guards

// Rocket glue. The key table's listener is apart from `database`, which the store's layer
// below uses: the listener drives the store.
mod watch; //            the keys file polled, SIGHUP
#[cfg(feature = "postgres")]
mod listen; //           the key table followed through LISTEN/NOTIFY
pub mod testing; //      test keys and the local client's `.api_key(…)`
mod fairing; //          the fairing, its builder (builder.rs), the first load (ignite.rs)

pub use fairing::{ApiKeyStoreBuilder, ApiKeyStoreFairing};
pub use guard::Authorized;
pub use reason::Reason;
pub use reject::{catchers, Rejection};
pub use store::{ApiKey, ApiKeyStore};
pub use target::TARGET as LOG_TARGET;

/// What `#[require_api_key]` expands to refers to, through the `rocket-api-key` crate; not a
/// public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::DeclaredRoute;
    pub use crate::scope::types::{AllOf, AnyOf, Scope, ScopeList, ScopeName};
    pub use inventory;

    /// For the attribute's tests, which check that its copy of a rule agrees with ours.
    pub mod rules {
        pub use crate::entry::edit_distance;
    }

    /// For the `apikey` command: the runtime's own parsers and rules for entries, durations, key
    /// names and variable names, so that the lines it prints are the ones the runtime loads.
    pub mod cli {
        pub use crate::config::env_prefix_problem;
        pub use crate::duration::{parse_duration, DurationError};
        pub use crate::entry::{is_digest_entry, parse_entry, KeyEntry};
        pub use crate::env::{env_var, DATABASE_URL_VAR, DEFAULT_ENV_PREFIX};
        pub use crate::load::key_name;
    }

    /// For the fuzz targets: the entry parser, the query redaction and the `X-Forwarded-For`
    /// reading, on text.
    pub mod fuzz {
        pub use crate::address::forwarded_for;
        pub use crate::entry::parse_entry;
        pub use crate::redact::query::{redact, REDACTED};
    }
}
