//! The password of `redis_url` never reaches a `Debug` or a log line. In its own binary: the
//! global subscriber that captures the logs must be set before anything logs (callsite
//! interest is cached), and no other test's events should interleave.
//!
//! No `redis-server` is needed: the connection is made to a loopback port nothing listens on.

#[path = "../runtime/tests/common/captured.rs"]
mod captured;

use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use rocket_api_key::{config::UnavailablePolicy, require_api_key, ApiKey, ApiKeyStore};

use captured::Captured;

const PASSWORD: &str = "hunter2-Secret";
const LIMITED: &str = "limited-key-0123456789abcdef";

#[require_api_key]
#[get("/any")]
fn any(key: ApiKey) -> String {
    key.name().to_owned()
}

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(Captured::install)
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn debug_never_shows_the_redis_password() {
    captured();
    for (url, shown) in [
        (
            format!("redis://:{PASSWORD}@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0",
        ),
        (
            format!("redis://alice:{PASSWORD}@127.0.0.1:6379/0"),
            "redis://alice:***@127.0.0.1:6379/0",
        ),
        (
            format!("rediss://alice:{PASSWORD}@cache.internal:6380"),
            "rediss://alice:***@cache.internal:6380",
        ),
        (
            format!("redis+unix:///run/redis.sock?db=2&user=alice&pass={PASSWORD}"),
            "redis+unix:///run/redis.sock?db=2&user=***&pass=***",
        ),
    ] {
        let builder = ApiKeyStore::builder()
            .from_env(false)
            .key("limited", format!("{LIMITED};rate=5/m"))
            .redis(url.clone(), UnavailablePolicy::Deny);
        let keys = builder.clone().build().unwrap();
        for debug in [
            format!("{builder:?}"),
            format!("{:?}", builder.clone().fairing()),
            format!("{keys:?}"),
            format!("{:?}", keys.config()),
            format!("{:#?}", keys.config()),
        ] {
            assert!(!debug.contains(PASSWORD), "{debug}");
            assert!(debug.contains(shown), "{debug}");
        }
        // The value itself is whole, for what reads, compares and serialises it (the fairing
        // hands the configuration to Figment serialised).
        assert_eq!(keys.config().redis_url.as_deref(), Some(url.as_str()));
        assert_eq!(keys.config(), &keys.config().clone());
        let serialised = serde_json::to_value(keys.config()).unwrap();
        assert_eq!(serialised["redis_url"], url.as_str());
    }
}

#[rocket::async_test]
async fn logs_of_a_failed_connection_never_show_the_redis_password() {
    let captured = captured();
    let port = closed_port();
    let url = format!("redis://alice:{PASSWORD}@127.0.0.1:{port}/0");
    let shown = format!("redis://alice:***@127.0.0.1:{port}/0");
    let keys = ApiKeyStore::builder()
        .from_env(false)
        .key("limited", format!("{LIMITED};rate=5/m"))
        .redis(url, UnavailablePolicy::Deny);
    let rocket = rocket::build()
        .attach(keys.fairing())
        .mount("/", routes![any]);
    let client = Client::tracked(rocket).await.unwrap();
    // A request that needs the store: refused under `deny`, and logged as unreachable.
    let response = client
        .get("/any")
        .header(Header::new("x-api-key", LIMITED))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    // The background connection fails and says so, naming the store it tried.
    let start = Instant::now();
    while !captured.text().contains(&format!("redis_url={shown}")) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no connection warning logged:\n{}",
            captured.text()
        );
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logs = captured.text();
    assert!(logs.contains("rate-limit store unreachable"), "{logs}");
    assert!(!logs.contains(PASSWORD), "{logs}");
}
