//! The `testing` helpers as a user meets them: `TestKey`s configured through the builder and
//! presented with `.api_key(…)` on both local clients, against routes of the attribute.

use std::net::{IpAddr, SocketAddr};

use rocket::http::Status;
use rocket::time::{Duration, OffsetDateTime};
use rocket::{get, routes, Build, Rocket, State};
use rocket_api_key::testing::{LocalRequestExt, TestKey};
use rocket_api_key::{require_api_key, ApiKey, ApiKeyStore, ApiKeyStoreBuilder};

#[require_api_key(scope = "read:orders")]
#[get("/orders")]
fn list_orders() -> &'static str {
    "[]"
}

#[require_api_key(scope = "admin")]
#[get("/admin")]
fn admin() -> &'static str {
    "admin"
}

#[require_api_key]
#[get("/whoami")]
fn whoami(key: ApiKey) -> String {
    key.name().to_owned()
}

fn app(keys: ApiKeyStoreBuilder) -> Rocket<Build> {
    rocket::build()
        .attach(keys.fairing())
        .mount("/", routes![list_orders, admin, whoami])
}

fn keys() -> ApiKeyStoreBuilder {
    ApiKeyStore::builder().from_env(false)
}

/// How often `name` was refused for `reason`, from the store's usage figures.
fn rejected(keys: &State<ApiKeyStore>, name: &str, reason: &str) -> u64 {
    let usage = keys.usage();
    let counts = usage.key(name).expect("the key is configured");
    counts.rejected.get(reason).copied().unwrap_or(0)
}

#[test]
fn a_scoped_key_passes_its_scope_and_is_forbidden_another() {
    use rocket::local::blocking::Client;

    let reader = TestKey::new("reader").scopes(["read:orders"]);
    let client = Client::tracked(app(keys().test_key(&reader))).unwrap();

    let response = client.get("/orders").api_key(&reader).dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.into_string().unwrap(), "[]");
    assert_eq!(
        client.get("/admin").api_key(&reader).dispatch().status(),
        Status::Forbidden
    );
    assert_eq!(
        client.get("/orders").dispatch().status(),
        Status::Unauthorized
    );
    let keys = State::get(client.rocket()).unwrap();
    assert_eq!(rejected(keys, "reader", "scope"), 1);
}

#[rocket::async_test]
async fn the_asynchronous_client_takes_keys_too() {
    use rocket::local::asynchronous::Client;

    let reader = TestKey::new("reader").scopes(["read:orders"]);
    let client = Client::tracked(app(keys().test_key(&reader)))
        .await
        .unwrap();

    let response = client.get("/whoami").api_key(&reader).dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.into_string().await.unwrap(), "reader");
    let response = client.get("/admin").api_key(&reader).dispatch().await;
    assert_eq!(response.status(), Status::Forbidden);
}

#[test]
fn an_expired_key_is_refused_as_expired() {
    use rocket::local::blocking::Client;

    let old = TestKey::new("old")
        .scopes(["read:orders"])
        .expires(OffsetDateTime::now_utc() - Duration::hours(1));
    let later = TestKey::new("later")
        .scopes(["read:orders"])
        .expires(OffsetDateTime::now_utc() + Duration::hours(1));
    let client = Client::tracked(app(keys().test_key(&old).test_key(&later))).unwrap();

    let response = client.get("/orders").api_key(&old).dispatch();
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(
        response.into_string().unwrap(),
        r#"{"error":"Unauthorized access"}"#
    );
    let keys = State::get(client.rocket()).unwrap();
    assert_eq!(rejected(keys, "old", "expired"), 1);
    assert_eq!(
        client.get("/orders").api_key(&later).dispatch().status(),
        Status::Ok
    );
}

#[test]
fn an_address_allowlist_refuses_other_addresses() {
    use rocket::local::blocking::Client;

    let office = TestKey::new("office").ips([
        "10.0.0.0/8".parse::<ipnet::IpNet>().unwrap(),
        "2001:db8::1".parse::<IpAddr>().unwrap().into(),
    ]);
    let client = Client::tracked(app(keys().test_key(&office))).unwrap();
    let from = |address: &str| {
        client
            .get("/whoami")
            .remote(address.parse::<SocketAddr>().unwrap())
            .api_key(&office)
            .dispatch()
            .status()
    };

    assert_eq!(from("10.1.2.3:5000"), Status::Ok);
    assert_eq!(from("[2001:db8::1]:5000"), Status::Ok);
    assert_eq!(from("192.0.2.7:5000"), Status::Forbidden);
    assert_eq!(from("[2001:db8::2]:5000"), Status::Forbidden);
    let keys = State::get(client.rocket()).unwrap();
    assert_eq!(rejected(keys, "office", "ip"), 2);
}

#[test]
fn a_rate_limited_key_is_limited() {
    use rocket::local::blocking::Client;

    let slow = TestKey::new("slow").rate("2/h".parse().unwrap());
    let client = Client::tracked(app(keys().test_key(&slow))).unwrap();
    let status = || client.get("/whoami").api_key(&slow).dispatch().status();

    assert_eq!(status(), Status::Ok);
    assert_eq!(status(), Status::Ok);
    assert_eq!(status(), Status::TooManyRequests);
}

#[test]
fn the_configured_header_is_the_one_used() {
    use rocket::local::blocking::Client;

    let ci = TestKey::new("ci");
    let client = Client::tracked(app(keys().header("x-orders-key").test_key(&ci))).unwrap();

    let request = client.get("/whoami").api_key(&ci);
    assert_eq!(
        request.headers().get_one("x-orders-key"),
        Some(ci.expose_secret())
    );
    assert!(request.headers().get_one("x-api-key").is_none());
    assert_eq!(request.dispatch().into_string().unwrap(), "ci");

    // A second key replaces the first rather than making the header ambiguous.
    let other = TestKey::new("other");
    let request = client.get("/whoami").api_key(&other).api_key(&ci);
    assert_eq!(
        request.headers().get("x-orders-key").collect::<Vec<_>>(),
        [ci.expose_secret()]
    );
}

#[test]
fn the_header_set_in_rockets_configuration_wins_over_the_builders() {
    use rocket::local::blocking::Client;

    let ci = TestKey::new("ci");
    let rocket = app(keys().header("x-orders-key").test_key(&ci))
        .configure(rocket::Config::figment().merge(("api_keys.header", "x-ops-key")));
    let client = Client::tracked(rocket).unwrap();

    let response = client.get("/whoami").api_key(&ci).dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.into_string().unwrap(), "ci");
}

#[test]
fn without_a_store_the_default_header_is_used() {
    use rocket::local::blocking::Client;

    let ci = TestKey::new("ci");
    let client = Client::tracked(rocket::build()).unwrap();
    let request = client.get("/").api_key(&ci);
    assert_eq!(
        request.headers().get_one("x-api-key"),
        Some(ci.expose_secret())
    );
}

#[test]
fn a_test_key_is_an_ordinary_generated_key_kept_as_its_digest() {
    use rocket_api_key::keygen::{checksum, Checksum, KeyDigest};

    let ci = TestKey::new("ci").scopes(["read:orders", "admin"]);
    let secret = ci.expose_secret();
    assert!(secret.starts_with("rak_"));
    assert_eq!(secret.len(), 4 + 49);
    assert_eq!(checksum(secret), Checksum::Valid);
    // Keys are unique, not derived from the name.
    assert_ne!(TestKey::new("ci").expose_secret(), secret);

    let entry = ci.entry();
    assert_eq!(
        entry,
        format!(
            "{};scopes=read:orders,admin",
            KeyDigest::of(secret.as_bytes()).to_entry()
        )
    );
    assert!(!entry.contains(secret));
    let keys = keys().test_key(&ci).build().unwrap();
    assert!(!format!("{keys:?}").contains(secret));
    assert_eq!(
        keys.verify(secret, None).unwrap().scopes(),
        ["read:orders", "admin"]
    );
}

#[test]
fn debug_never_shows_the_key() {
    let ci = TestKey::new("ci")
        .scopes(["read:orders"])
        .rate("5/s".parse().unwrap());
    let debug = format!("{ci:?}");
    let secret = ci.expose_secret();
    assert!(!debug.contains(&secret[4..]), "{debug}");
    assert!(!debug.contains(&secret[4..20]), "{debug}");
    // Nor its digest, which the entry holds.
    assert!(!debug.contains(&ci.entry()[7..71]), "{debug}");
    assert!(debug.contains(r#"name: "ci""#), "{debug}");
    assert!(debug.contains("read:orders"), "{debug}");
}

#[test]
#[should_panic(expected = "is not a scope")]
fn a_scope_that_would_change_the_entry_is_refused() {
    let _ = TestKey::new("ci").scopes(["read;ips=10.0.0.0/8"]);
}
