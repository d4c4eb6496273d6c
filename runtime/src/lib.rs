//! The runtime of [`rocket-api-key`](https://docs.rs/rocket-api-key): the key store, the request
//! guards and the JSON rejections that `#[require_api_key]` relies on.
//!
//! Depend on the `rocket-api-key` crate, which re-exports everything here together with the
//! attribute, and whose documentation is the guide.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The modules in layer order, lowest first: every `use crate::…` points to a lower layer or within
// its own, never up and never in a cycle (`layers.py`); a helper that two layers need lives in
// the lower one.

// Primitives: addresses, digests, durations, key generation, the query redaction, rates, scopes,
// reasons, the environment-variable rules, the 401 challenge and the log target; they know no
// state.
mod address;
mod header;
mod duration;
mod env;
mod lock;
pub mod keygen;
pub mod log_filter;
mod redact;
mod rate;
mod reason;
pub mod scope;
mod registry;
mod target;

// Configuration and loading: key entries, the `api_keys` configuration, reading the sources,
// and (feature `postgres`) the key table and the copy of it a load reads.
mod entry;
pub mod config;
pub mod load;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod database;

// State: the rate limits (in memory or in Redis), the bound on rejection events, the metrics
// (with the `metrics` feature), usage figures, the slot table that holds the keys, and what a
// reload changed between two tables.
mod limit;
mod rejection_log;
#[cfg(feature = "metrics")]
mod meter;
pub mod usage;
mod slot_table;

// The store handle: `ApiKeyStore`, the `ApiKey` a check yields, and everything the store does,
// reloading included.
mod store;

// The launch audit: which keys reach which mounted routes.
pub mod audit;

// OpenAPI security from the attribute (feature `utoipa`; empty without it).
pub mod openapi;

// The request edge: rejections and their JSON answer, the log events, the request guards. They
// sit above the store because a rejection's answer and its log event read the store's settings.
mod reject;
mod log;
mod guard;

// Rocket glue: the keys-file watcher, the key table's listener (feature `postgres`), the helpers for testing routes through the local client,
// the fairing and its builder. `ApiKeyStore::fairing` and `ApiKeyStore::builder` are defined
// with the types they return.
mod watch;
#[cfg(feature = "postgres")]
mod listen;
pub mod testing;
mod fairing;

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
