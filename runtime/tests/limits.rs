//! Per-key rate limits and the per-address failure limit, in process.

mod common;

#[path = "common/concurrent.rs"]
mod concurrent;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client as AsyncClient;
use rocket::local::blocking::{Client, LocalResponse};
use rocket_api_key_runtime::{config::ClientAddress, config::RateSpec, ApiKeyStore};
use serde_json::{json, Value};

use common::*;
use concurrent::{exactly_the_limit_of_guesses, parallel, valid_keys_are_no_failures};

const LIMITED: &str = "limited-key-0123456789abcdef";
const FAST: &str = "fast-key-0123456789abcdef";

fn rate(text: &str) -> RateSpec {
    text.parse().unwrap()
}

fn request<'c>(c: &'c Client, addr: &str, headers: &[(&str, &str)]) -> LocalResponse<'c> {
    let mut req = c.get("/any").remote(addr.parse().unwrap());
    for (name, value) in headers {
        req.add_header(rocket::http::Header::new(
            name.to_string(),
            value.to_string(),
        ));
    }
    req.dispatch()
}

#[track_caller]
fn assert_429(response: LocalResponse<'_>, error: &str, retry_after: &str) {
    assert_eq!(response.status(), Status::TooManyRequests);
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    assert_eq!(response.headers().get_one("Retry-After"), Some(retry_after));
    let body: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    assert_eq!(body, json!({ "error": error }));
}

#[test]
fn a_key_over_its_rate_gets_429_with_retry_after() {
    let c = client(keys().key("limited", format!("{LIMITED};rate=3/m")));
    for _ in 0..3 {
        assert_eq!(get_with(&c, "/any", &key(LIMITED)).status(), Status::Ok);
    }
    // 3 per minute: the next one conforms in 20 seconds.
    assert_429(
        get_with(&c, "/any", &key(LIMITED)),
        "Too many requests",
        "20",
    );
    assert_429(
        get_with(&c, "/whoami", &key(LIMITED)),
        "Too many requests",
        "20",
    );
    // Other keys have their own (or no) limits.
    assert_eq!(get_with(&c, "/any", &key(READER)).status(), Status::Ok);
    let usage = c.rocket().state::<ApiKeyStore>().unwrap().usage();
    let limited = usage.key("limited").unwrap();
    assert_eq!(limited.accepted, 3);
    assert_eq!(limited.rejected.get("rate_limited"), Some(&2));
}

#[test]
fn the_rate_recovers() {
    let c = client(keys().key("fast", format!("{FAST};rate=2/s")));
    assert_eq!(get_with(&c, "/any", &key(FAST)).status(), Status::Ok);
    assert_eq!(get_with(&c, "/any", &key(FAST)).status(), Status::Ok);
    assert_429(get_with(&c, "/any", &key(FAST)), "Too many requests", "1");
    // One request every half second.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(get_with(&c, "/any", &key(FAST)).status(), Status::Ok);
    assert_eq!(
        get_with(&c, "/any", &key(FAST)).status(),
        Status::TooManyRequests
    );
}

#[test]
fn two_guards_on_one_request_count_once() {
    let c = client(keys().key("limited", format!("{LIMITED};rate=2/m;scopes=read:orders")));
    assert_eq!(
        get_with(&c, "/scoped-whoami", &key(LIMITED)).status(),
        Status::Ok
    );
    assert_eq!(
        get_with(&c, "/scoped-whoami", &key(LIMITED)).status(),
        Status::Ok
    );
    assert_eq!(
        get_with(&c, "/scoped-whoami", &key(LIMITED)).status(),
        Status::TooManyRequests
    );
}

#[test]
fn failure_limiting_is_off_by_default() {
    let c = client(keys());
    for _ in 0..100 {
        assert_eq!(
            request(&c, "192.0.2.1:1", &key("guess-0123456789abcdef")).status(),
            Status::Unauthorized
        );
    }
    assert_eq!(
        request(&c, "192.0.2.1:1", &key(READER)).status(),
        Status::Ok
    );
}

#[test]
fn an_address_guessing_keys_is_blocked_even_with_a_valid_key() {
    let c = client(keys().failure_limit(rate("3/m"), ClientAddress::Peer));
    let attacker = "192.0.2.66:4000";
    // Missing keys, wrong scopes and valid keys are not guesses.
    for _ in 0..5 {
        assert_eq!(request(&c, attacker, &[]).status(), Status::Unauthorized);
    }
    assert_eq!(request(&c, attacker, &key(READER)).status(), Status::Ok);
    for guess in [
        "guess-0123456789abcdef-1",
        "guess-0123456789abcdef-2",
        "not a key",
    ] {
        assert_eq!(
            request(&c, attacker, &key(guess)).status(),
            Status::Unauthorized
        );
    }
    assert_429(
        request(&c, attacker, &key(READER)),
        "Too many failed attempts",
        "20",
    );
    assert_429(
        request(&c, attacker, &key("guess-0123456789abcdef-4")),
        "Too many failed attempts",
        "20",
    );
    // IPv6 hosts are counted by their /64, so rotating the interface id does not help.
    for i in 0..3 {
        let addr = format!("[2001:db8:0:1::{i}]:1");
        assert_eq!(
            request(&c, &addr, &key("guess-0123456789abcdef")).status(),
            Status::Unauthorized
        );
    }
    assert_eq!(
        request(&c, "[2001:db8:0:1::99]:1", &key(READER)).status(),
        Status::TooManyRequests
    );
    // Everyone else is unaffected.
    assert_eq!(
        request(&c, "198.51.100.1:4000", &key(READER)).status(),
        Status::Ok
    );
    let usage = c.rocket().state::<ApiKeyStore>().unwrap().usage();
    assert_eq!(usage.unattributed.get("too_many_failures"), Some(&3));
}

#[test]
fn behind_a_proxy_failures_count_against_the_reported_client() {
    let c = client(
        keys()
            .trusted_proxy("127.0.0.1".parse::<IpAddr>().unwrap())
            .failure_limit(rate("2/m"), ClientAddress::Proxy),
    );
    let via = |client: &str, k: &str| {
        request(
            &c,
            "127.0.0.1:9000",
            &[("x-api-key", k), ("X-Real-IP", client)],
        )
        .status()
    };
    assert_eq!(
        via("203.0.113.5", "guess-0123456789abcdef"),
        Status::Unauthorized
    );
    assert_eq!(
        via("203.0.113.5", "guess-0123456789abcdef"),
        Status::Unauthorized
    );
    assert_eq!(via("203.0.113.5", READER), Status::TooManyRequests);
    // The proxy itself, and its other clients, are not blocked.
    assert_eq!(via("203.0.113.6", READER), Status::Ok);
    // A peer that is not the proxy cannot pick the address it is counted against.
    let direct = |fake: &str, k: &str| {
        request(&c, "192.0.2.9:1", &[("x-api-key", k), ("X-Real-IP", fake)]).status()
    };
    assert_eq!(
        direct("10.0.0.1", "guess-0123456789abcdef"),
        Status::Unauthorized
    );
    assert_eq!(
        direct("10.0.0.2", "guess-0123456789abcdef"),
        Status::Unauthorized
    );
    assert_eq!(direct("10.0.0.3", READER), Status::TooManyRequests);
}

#[test]
fn failure_limiting_needs_an_explicit_address() {
    let figment = rocket::figment::Figment::from(rocket::Config::debug_default())
        .merge(("api_keys.failure_limit", "30/m"));
    let error = Client::tracked(rocket::custom(figment).attach(keys().fairing()))
        .err()
        .map(|e| format!("{:?}", e.kind()));
    assert!(error.is_some());
    let proxy_without_proxies = keys()
        .failure_limit(rate("30/m"), ClientAddress::Proxy)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        proxy_without_proxies.contains("needs the proxies' addresses"),
        "{proxy_without_proxies}"
    );
    let no_policy = rocket::figment::Figment::from(rocket::Config::debug_default())
        .merge(("api_keys.rate_limit_backend", "redis"))
        .merge(("api_keys.redis_url", "redis://127.0.0.1:1"));
    let error = Client::tracked(rocket::custom(no_policy).attach(keys().fairing()))
        .err()
        .map(|e| format!("{:?}", e.kind()));
    assert!(
        error.is_some(),
        "the redis backend needs an explicit unavailability policy"
    );
}

#[test]
fn rate_state_survives_a_reload_that_keeps_the_rate() {
    let dir = std::env::temp_dir().join(format!("rak-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys");
    std::fs::write(&file, format!("limited={LIMITED};rate=2/m\n")).unwrap();
    let c = client(keys().keys_file(&file).reload_interval(Duration::ZERO));
    let store = c.rocket().state::<ApiKeyStore>().unwrap();
    assert_eq!(get_with(&c, "/any", &key(LIMITED)).status(), Status::Ok);
    assert_eq!(get_with(&c, "/any", &key(LIMITED)).status(), Status::Ok);
    // Same rate, other change: the spent budget stays spent.
    std::fs::write(&file, format!("limited={LIMITED};rate=2/m;scopes=x\n")).unwrap();
    assert_eq!(store.reload().unwrap().changed, ["limited"]);
    assert_eq!(
        get_with(&c, "/any", &key(LIMITED)).status(),
        Status::TooManyRequests
    );
    // A new rate starts afresh.
    std::fs::write(&file, format!("limited={LIMITED};rate=3/m\n")).unwrap();
    store.reload().unwrap();
    assert_eq!(get_with(&c, "/any", &key(LIMITED)).status(), Status::Ok);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A client for floods: untracked (no cookie jar shared by every request), and without
/// Rocket's line per request.
async fn async_client(builder: rocket_api_key_runtime::ApiKeyStoreBuilder) -> Arc<AsyncClient> {
    let quiet = rocket::Config::figment().merge(("log_level", "off"));
    let rocket = app(builder).configure(quiet);
    Arc::new(AsyncClient::untracked(rocket).await.unwrap())
}

/// Concurrency must not let more keys be tried than the limit allows. Per hour, so that the
/// allowance cannot come back while a slow machine is still sending.
#[test]
fn concurrent_guesses_get_exactly_the_failure_limit() {
    parallel(async {
        let c = async_client(keys().failure_limit(rate("5/h"), ClientAddress::Peer)).await;
        exactly_the_limit_of_guesses(&c, READER, "memory").await;
    });
}

/// Valid keys are never counted as failures, however they interleave with guesses.
#[test]
fn valid_keys_amid_guesses_do_not_spend_the_failure_limit() {
    parallel(async {
        let c = async_client(keys().failure_limit(rate("5/h"), ClientAddress::Peer)).await;
        valid_keys_are_no_failures(&c, READER, "memory").await;
    });
}
