//! The layer's `tracing` events, all under the target `rocket_api_key`.
//!
//! Fields carry values, never sentences. User-controlled text never reaches a field unescaped:
//! the path is Rocket's validated, percent-encoded URI path, the method is an enum, names are
//! `[a-z0-9_]`, and the key is represented only by its [fingerprint](crate::keygen::Fingerprint).

use std::time::Duration;

use rocket::{Request, Shutdown};
use tracing::field::display;

use crate::address::ClientAddr;
use crate::config::LogLevel;
use crate::keygen::digest::Fingerprint;
use crate::reject::Rejection;
use crate::store::{ApiKey, ApiKeyStore};
use crate::target::TARGET;

/// `WARN` for each rejected request, up to `rejected_log_limit` a second.
pub(crate) fn rejected(
    req: &Request<'_>,
    keys: &ApiKeyStore,
    rejection: &Rejection,
    key: Option<&ApiKey>,
    fingerprint: Option<Fingerprint>,
) {
    if !keys.rejection_log().admit() {
        return;
    }
    let client = ClientAddr::of(req, &keys.config().trusted_proxies);
    let (client_ip, proxy) = match client {
        ClientAddr::Known(ip) => (Some(display(ip)), None),
        // A trusted proxy that reported no usable address: say so, and which proxy.
        ClientAddr::Unknown { peer } => (None, Some(display(peer))),
        ClientAddr::NoPeer => (None, None),
    };
    let required = rejection.required_scopes().map(display);
    tracing::warn!(
        target: TARGET,
        reason = rejection.reason().as_str(),
        method = req.method().as_str(),
        path = req.uri().path().as_str(),
        client_ip,
        client_ip_unknown_via = proxy,
        key = key.map(ApiKey::name),
        fingerprint = fingerprint.map(display),
        required = required,
        query_key_redacted = crate::redact::query::was_redacted(req).then_some(true),
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
        "API key guard used without a key store; attach `ApiKeyStore::fairing()`"
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

/// Reports held-back rejections once a second even when the flood has stopped, until shutdown.
pub(crate) async fn summarise_periodically(keys: ApiKeyStore, shutdown: Shutdown) {
    use rocket::tokio::time::{interval, MissedTickBehavior};

    let mut ticker = interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    rocket::tokio::pin!(shutdown);
    loop {
        rocket::tokio::select! {
            _ = &mut shutdown => break,
            _ = ticker.tick() => keys.rejection_log().roll(),
        }
    }
}
