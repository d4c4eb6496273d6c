//! API-key protection for [Rocket](https://rocket.rs) handlers, declared with one attribute.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use rocket_api_key_macros::require_api_key;
pub use rocket_api_key_runtime::*;

/// What `#[require_api_key]` expands to refers to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use rocket_api_key_runtime::{AnyKey, Authorized, RequiredScopes, ScopeRequirement};
}
