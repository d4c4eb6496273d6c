//! The client's address behind reverse proxies, through Rocket's local client: what a trusted
//! proxy reports is believed only when it is one unambiguous address, and a client can never pick
//! the address its key is checked against or its failures are counted under.
//! (`tests/proxy.rs` at the root runs the same rules behind a real nginx.)

mod common;

use std::net::SocketAddr;

use rocket::figment::providers::{Format, Toml};
use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::local::blocking::Client;
use rocket_api_key_runtime::{
    config::ClientAddress, config::RateSpec, ApiKeyStore, ApiKeyStoreBuilder,
};

use common::*;

/// Allowed from the proxy's own address and from 10/8: the proxy's address must never stand in
/// for a client's.
const PROXIED: &str = "proxied-key-0123456789abcdef";
const GUESS: &str = "guess-key-0123456789abcdef";

fn builder() -> ApiKeyStoreBuilder {
    keys().key("proxied", format!("{PROXIED};ips=127.0.0.1,10.0.0.0/8"))
}

/// A client behind the proxy 127.0.0.1, with Rocket's `ip_header` as given (`None`: default).
fn behind_proxy(ip_header: Option<&str>, keys: ApiKeyStoreBuilder) -> Client {
    let mut figment = Figment::from(rocket::Config::debug_default());
    if let Some(header) = ip_header {
        figment = figment.merge(("ip_header", header));
    }
    let keys = keys.trusted_proxy("127.0.0.1".parse::<std::net::IpAddr>().unwrap());
    Client::tracked(
        rocket::custom(figment)
            .attach(keys.fairing())
            .mount("/", rocket::routes![any]),
    )
    .unwrap()
}

fn send(c: &Client, peer: &str, headers: &[(&str, &str)]) -> Status {
    let mut req = c.get("/any").remote(peer.parse::<SocketAddr>().unwrap());
    for (name, value) in headers {
        req.add_header(Header::new(name.to_string(), value.to_string()));
    }
    req.dispatch().status()
}

#[test]
fn real_ip_missing_repeated_or_a_list_is_unknown() {
    let c = behind_proxy(None, builder());
    let proxy = "127.0.0.1:4000";
    let ok = send(
        &c,
        proxy,
        &[("x-api-key", PROXIED), ("X-Real-IP", "10.0.0.1")],
    );
    assert_eq!(ok, Status::Ok, "one address from the proxy is believed");
    // No header from the proxy: not "the proxy itself", whose address the key allows.
    assert_eq!(
        send(&c, proxy, &[("x-api-key", PROXIED)]),
        Status::Forbidden
    );
    for ambiguous in [
        vec![("X-Real-IP", "10.0.0.1, 10.0.0.2")],
        vec![("X-Real-IP", "10.0.0.1"), ("X-Real-IP", "10.0.0.1")],
        vec![("X-Real-IP", "10.0.0.1"), ("X-Real-IP", "192.0.2.1")],
        vec![("X-Real-IP", "")],
        vec![("X-Real-IP", "not-an-address")],
        vec![("X-Real-IP", "10.0.0.0/8")],
    ] {
        let mut headers = vec![("x-api-key", PROXIED)];
        headers.extend(ambiguous.iter().copied());
        assert_eq!(
            send(&c, proxy, &headers),
            Status::Forbidden,
            "{ambiguous:?}"
        );
    }
    // Keys without an allowlist do not care.
    assert_eq!(send(&c, proxy, &key(READER)), Status::Ok);
    // A client that is not the proxy is its socket address, whatever it sends.
    let forged = [("x-api-key", PROXIED), ("X-Real-IP", "10.0.0.1")];
    assert_eq!(send(&c, "192.0.2.7:1", &forged), Status::Forbidden);
    assert_eq!(
        send(
            &c,
            "10.0.0.9:1",
            &[("x-api-key", PROXIED), ("X-Real-IP", "192.0.2.1")]
        ),
        Status::Ok
    );
}

#[test]
fn forwarded_for_is_read_from_the_right() {
    let c = behind_proxy(Some("X-Forwarded-For"), builder());
    let proxy = "127.0.0.1:4000";
    let with = |xff: &[&str]| {
        let mut headers = vec![("x-api-key", PROXIED)];
        headers.extend(xff.iter().map(|v| ("X-Forwarded-For", *v)));
        send(&c, proxy, &headers)
    };
    assert_eq!(with(&["10.0.0.1"]), Status::Ok);
    // What the client wrote is on the left; the proxy appended the real peer on the right.
    assert_eq!(with(&["10.0.0.1, 192.0.2.1"]), Status::Forbidden);
    assert_eq!(with(&["192.0.2.1, 10.0.0.1"]), Status::Ok);
    assert_eq!(with(&["10.0.0.1", "192.0.2.1"]), Status::Forbidden);
    // Our own proxy in the chain is skipped, as are addresses with ports.
    assert_eq!(with(&["192.0.2.1, 10.0.0.1:5000, 127.0.0.1"]), Status::Ok);
    // Unknown: nothing, garbage at the right, only proxies.
    assert_eq!(with(&[]), Status::Forbidden);
    assert_eq!(with(&["10.0.0.1, unknown"]), Status::Forbidden);
    assert_eq!(with(&["127.0.0.1"]), Status::Forbidden);
    // With X-Forwarded-For configured, a client's own X-Real-IP means nothing.
    assert_eq!(
        send(
            &c,
            proxy,
            &[("x-api-key", PROXIED), ("X-Real-IP", "10.0.0.1")]
        ),
        Status::Forbidden
    );
}

#[test]
fn no_ip_header_means_no_reported_address() {
    let c = behind_proxy(Some("false"), builder());
    let headers = [("x-api-key", PROXIED), ("X-Real-IP", "10.0.0.1")];
    assert_eq!(send(&c, "127.0.0.1:4000", &headers), Status::Forbidden);
}

#[test]
fn unknown_addresses_are_counted_against_the_proxy() {
    let limited = builder().failure_limit("2/m".parse::<RateSpec>().unwrap(), ClientAddress::Proxy);
    let c = behind_proxy(None, limited);
    let proxy = "127.0.0.1:4000";
    // Two guesses with a different ambiguous claim each: one allowance, the proxy's.
    for claim in ["10.0.0.1, 10.0.0.2", "10.0.0.3, 10.0.0.4"] {
        let guess = [("x-api-key", GUESS), ("X-Real-IP", claim)];
        assert_eq!(send(&c, proxy, &guess), Status::Unauthorized);
    }
    assert_eq!(send(&c, proxy, &key(READER)), Status::TooManyRequests);
    // A client the proxy does report is counted on its own.
    let reported = [("x-api-key", READER), ("X-Real-IP", "10.0.0.1")];
    assert_eq!(send(&c, proxy, &reported), Status::Ok);
}

#[test]
fn proxies_are_written_as_addresses_or_networks() {
    for proxies in [
        r#"["127.0.0.1"]"#,
        r#""127.0.0.1""#,
        r#"["127.0.0.1/32", "::1"]"#,
        r#"["10.0.0.0/8", "127.0.0.0/8"]"#,
    ] {
        let toml = format!("[default.api_keys]\ntrusted_proxies = {proxies}\n");
        let figment =
            Figment::from(rocket::Config::debug_default()).merge(Toml::string(&toml).nested());
        let loaded = builder()
            .load(&figment)
            .unwrap_or_else(|e| panic!("{proxies}: {e}"));
        assert!(!loaded.config().trusted_proxies.is_empty(), "{proxies}");
        let c = Client::tracked(
            rocket::custom(figment)
                .attach(builder().fairing())
                .mount("/", rocket::routes![any]),
        )
        .unwrap();
        let via = [("x-api-key", PROXIED), ("X-Real-IP", "10.0.0.1")];
        assert_eq!(send(&c, "127.0.0.1:1", &via), Status::Ok, "{proxies}");
    }
    let figment = Figment::from(rocket::Config::debug_default())
        .merge(Toml::string("[default.api_keys]\ntrusted_proxies = [\"127.0.0.x\"]").nested());
    let error = ApiKeyStore::builder()
        .load(&figment)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(r#""127.0.0.x" is not an IP address or a CIDR network"#),
        "{error}"
    );
}

#[test]
fn proxies_in_the_environment_too() {
    // As `ROCKET_API_KEYS` would be read, under a name of this test's own.
    std::env::set_var(
        "RAKPROXYTEST_API_KEYS",
        r#"{trusted_proxies=["127.0.0.1"]}"#,
    );
    let figment = Figment::from(rocket::Config::debug_default())
        .merge(rocket::figment::providers::Env::prefixed("RAKPROXYTEST_").global());
    let loaded = builder().load(&figment).unwrap();
    assert_eq!(
        loaded.config().trusted_proxies,
        ["127.0.0.1/32".parse::<ipnet::IpNet>().unwrap()]
    );
}
