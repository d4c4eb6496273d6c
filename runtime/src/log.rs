//! The layer's `tracing` events, all under the target `rocket_api_key`.
//!
//! Fields carry values, never sentences. User-controlled text never reaches a field unescaped:
//! the path is Rocket's validated, percent-encoded URI path, the method is an enum, names are
//! `[a-z0-9_]`, and the key is represented only by its [fingerprint](crate::Fingerprint).

use rocket::Request;
use tracing::field::display;

use crate::config::{Config, LogLevel};
use crate::digest::Fingerprint;
use crate::guard::client_ip;
use crate::reject::Rejection;
use crate::store::ApiKey;

/// The target of every event of this crate: filter with `RUST_LOG=rocket_api_key=debug`.
pub const TARGET: &str = "rocket_api_key";

/// `WARN` for each rejected request.
pub(crate) fn rejected(
    req: &Request<'_>,
    config: &Config,
    rejection: &Rejection,
    key: Option<&ApiKey>,
    fingerprint: Option<Fingerprint>,
) {
    let required = rejection.required_scopes().map(display);
    tracing::warn!(
        target: TARGET,
        reason = rejection.reason().as_str(),
        method = req.method().as_str(),
        path = req.uri().path().as_str(),
        client_ip = client_ip(req, config).map(display),
        key = key.map(ApiKey::name),
        fingerprint = fingerprint.map(display),
        required = required,
        "request rejected"
    );
}

/// `ERROR` for a guard that ran without a key store.
pub(crate) fn no_store(req: &Request<'_>) {
    tracing::error!(
        target: TARGET,
        reason = "no_store",
        method = req.method().as_str(),
        path = req.uri().path().as_str(),
        "API key guard used without a key store; attach `ApiKeys::fairing()`"
    );
}

/// The configured event for each accepted request.
pub(crate) fn accepted(req: &Request<'_>, level: LogLevel, key: &ApiKey) {
    macro_rules! event {
        ($level:expr) => {
            tracing::event!(
                target: TARGET,
                $level,
                key = key.name(),
                method = req.method().as_str(),
                route = req.route().map(|r| display(&r.uri)),
                "authorized request"
            )
        };
    }
    match level {
        LogLevel::Off => {}
        LogLevel::Trace => event!(tracing::Level::TRACE),
        LogLevel::Debug => event!(tracing::Level::DEBUG),
        LogLevel::Info => event!(tracing::Level::INFO),
        LogLevel::Warn => event!(tracing::Level::WARN),
    }
}
