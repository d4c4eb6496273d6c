//! Every outcome of the guards, through Rocket's local client.

mod common;

use rocket::figment::Figment;
use rocket::http::{ContentType, Header, Status};
use rocket::local::blocking::{Client, LocalResponse};
use rocket::request::Request;
use rocket::{catch, catchers, routes};
use rocket_api_key_runtime::{
    config::ConfigError, keygen::KeyDigest, load::LoadError, ApiKeyStore, Reason, Rejection,
};
use serde_json::{json, Value};

use common::*;

#[track_caller]
fn assert_unauthorized(response: LocalResponse<'_>) {
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    assert_eq!(
        response
            .headers()
            .get("WWW-Authenticate")
            .collect::<Vec<_>>(),
        [r#"ApiKey header="x-api-key""#]
    );
    assert_eq!(
        response.into_string().unwrap(),
        r#"{"error":"Unauthorized access"}"#
    );
}

#[track_caller]
fn assert_json(response: LocalResponse<'_>, status: Status, body: Value) {
    assert_eq!(response.status(), status);
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    let actual: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    assert_eq!(actual, body);
}

#[test]
fn valid_keys_plain_and_hashed() {
    let c = client(keys());
    let r = get_with(&c, "/any", &key(READER));
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.into_string().unwrap(), "reader");
    assert_eq!(
        get_with(&c, "/any", &key(WRITER)).into_string().unwrap(),
        "writer"
    );
    // Header names are case-insensitive.
    assert_eq!(
        get_with(&c, "/any", &[("X-API-Key", READER)]).status(),
        Status::Ok
    );
}

#[test]
fn missing_empty_unknown_malformed_keys_are_401() {
    let c = client(keys());
    assert_unauthorized(get_with(&c, "/any", &[]));
    assert_unauthorized(get_with(&c, "/any", &key("")));
    assert_unauthorized(get_with(&c, "/any", &key("no-such-key-0123456789")));
    assert_unauthorized(get_with(&c, "/any", &key(&format!("{READER}x"))));
    assert_unauthorized(get_with(&c, "/any", &key(&READER[1..])));
    assert_unauthorized(get_with(&c, "/any", &key("reader key with spaces")));
    assert_unauthorized(get_with(&c, "/any", &key("clé-non-ascii-0123456789")));
    // Huge values are refused before hashing, and answered like any other bad key.
    assert_unauthorized(get_with(&c, "/any", &key(&"k".repeat(257))));
    assert_unauthorized(get_with(&c, "/any", &key(&"k".repeat(64 * 1024))));
    // The stored digest is not a key.
    let digest = KeyDigest::of(WRITER.as_bytes()).to_entry();
    assert_unauthorized(get_with(&c, "/any", &key(&digest)));
    assert_unauthorized(get_with(&c, "/any", &key(&digest[7..])));
    // The right key under another header, or in the query string, is not a key.
    assert_unauthorized(get_with(&c, "/any", &[("x-api-token", READER)]));
    assert_unauthorized(get_with(
        &c,
        &format!("/any?x-api-key={READER}&api_key={READER}"),
        &[],
    ));
}

#[test]
fn duplicated_keys_are_401() {
    let c = client(keys());
    assert_unauthorized(get_with(
        &c,
        "/any",
        &[("x-api-key", READER), ("x-api-key", READER)],
    ));
    assert_unauthorized(get_with(
        &c,
        "/any",
        &[("x-api-key", READER), ("X-Api-Key", WRITER)],
    ));
}

#[test]
fn expiry() {
    let c = client(keys());
    assert_unauthorized(get_with(&c, "/any", &key(EXPIRED)));
    assert_eq!(get_with(&c, "/any", &key(LATER)).status(), Status::Ok);
}

#[test]
fn scopes_all_and_any() {
    let c = client(keys());
    assert_eq!(get_with(&c, "/read", &key(READER)).status(), Status::Ok);
    assert_eq!(get_with(&c, "/both", &key(WRITER)).status(), Status::Ok);
    assert_eq!(get_with(&c, "/either", &key(ADMIN)).status(), Status::Ok);
    assert_eq!(get_with(&c, "/either", &key(WRITER)).status(), Status::Ok);
    let forbidden_all = json!({
        "error": "Insufficient scope",
        "required_scopes": ["read:orders", "write:orders"],
        "match": "all"
    });
    assert_json(
        get_with(&c, "/both", &key(READER)),
        Status::Forbidden,
        forbidden_all,
    );
    let forbidden_any = json!({"error": "Insufficient scope", "required_scopes": ["admin", "write:orders"], "match": "any"});
    assert_json(
        get_with(&c, "/either", &key(READER)),
        Status::Forbidden,
        forbidden_any,
    );
    // A bad key on a scoped route is still a 401, not a 403.
    assert_unauthorized(get_with(&c, "/both", &key("no-such-key-0123456789")));
}

#[test]
fn ip_allowlist() {
    let c = client(keys());
    assert_eq!(from(&c, "/any", "10.1.2.3:4000", &key(OFFICE)), Status::Ok);
    assert_eq!(
        from(&c, "/any", "[2001:db8::7]:4000", &key(OFFICE)),
        Status::Ok
    );
    // IPv4-mapped IPv6 peers (dual-stack sockets) match IPv4 networks.
    assert_eq!(
        from(&c, "/any", "[::ffff:10.9.9.9]:4000", &key(OFFICE)),
        Status::Ok
    );
    assert_json(
        c.get("/any")
            .remote("192.168.1.1:4000".parse().unwrap())
            .header(Header::new("x-api-key", OFFICE))
            .dispatch(),
        Status::Forbidden,
        json!({"error": "This key may not be used from this address"}),
    );
    // No known address: refused. A spoofed X-Real-IP from an untrusted peer: ignored.
    assert_eq!(
        get_with(&c, "/any", &key(OFFICE)).status(),
        Status::Forbidden
    );
    let spoofed = [("x-api-key", OFFICE), ("X-Real-IP", "10.0.0.1")];
    assert_eq!(
        from(&c, "/any", "192.168.1.1:4000", &spoofed),
        Status::Forbidden
    );
    // Keys without an allowlist work from anywhere.
    assert_eq!(
        from(&c, "/any", "192.168.1.1:4000", &key(READER)),
        Status::Ok
    );
}

#[test]
fn trusted_proxy_header() {
    let c = client(keys().trusted_proxy("127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
    let via_proxy = [("x-api-key", OFFICE), ("X-Real-IP", "10.0.0.1")];
    assert_eq!(from(&c, "/any", "127.0.0.1:4000", &via_proxy), Status::Ok);
    let outside = [("x-api-key", OFFICE), ("X-Real-IP", "192.168.0.1")];
    assert_eq!(
        from(&c, "/any", "127.0.0.1:4000", &outside),
        Status::Forbidden
    );
    // The same header from a peer that is not the proxy is not believed.
    assert_eq!(
        from(&c, "/any", "192.168.0.9:4000", &via_proxy),
        Status::Forbidden
    );
}

#[test]
fn bearer_off_by_default() {
    let c = client(keys());
    assert_unauthorized(get_with(
        &c,
        "/any",
        &[("Authorization", &format!("Bearer {READER}"))],
    ));
}

#[test]
fn bearer_on() {
    let c = client(keys().accept_bearer(true));
    let bearer = format!("Bearer {READER}");
    assert_eq!(
        get_with(&c, "/any", &[("Authorization", &bearer)]).status(),
        Status::Ok
    );
    assert_eq!(
        get_with(
            &c,
            "/any",
            &[("Authorization", &format!("bearer  {READER} "))]
        )
        .status(),
        Status::Ok
    );
    // The same key in both places is one key; two different keys are refused.
    assert_eq!(
        get_with(
            &c,
            "/any",
            &[("Authorization", &bearer), ("x-api-key", READER)]
        )
        .status(),
        Status::Ok
    );
    let r = get_with(
        &c,
        "/any",
        &[("Authorization", &bearer), ("x-api-key", WRITER)],
    );
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(
        r.headers().get("WWW-Authenticate").collect::<Vec<_>>(),
        [r#"ApiKey header="x-api-key""#, "Bearer"]
    );
    for value in ["Bearer", "Bearer ", "Bearer not-a-key-0123456789"] {
        assert_eq!(
            get_with(&c, "/any", &[("Authorization", value)]).status(),
            Status::Unauthorized,
            "{value}"
        );
    }
    // Another scheme is not ours: the x-api-key header still decides.
    assert_eq!(
        get_with(
            &c,
            "/any",
            &[
                ("Authorization", "Basic dXNlcjpwYXNz"),
                ("x-api-key", READER)
            ]
        )
        .status(),
        Status::Ok
    );
}

#[test]
fn identity_guard_alone_and_after_scoped_guard() {
    let c = client(keys());
    assert_eq!(
        get_with(&c, "/whoami", &key(WRITER)).into_string().unwrap(),
        "writer read:orders,write:orders"
    );
    assert_unauthorized(get_with(&c, "/whoami", &[]));
    assert_eq!(
        get_with(&c, "/scoped-whoami", &key(READER))
            .into_string()
            .unwrap(),
        "reader"
    );
    // Two guards, one request: counted once.
    let report = c.get("/usage").dispatch().into_string().unwrap();
    let report: Value = serde_json::from_str(&report).unwrap();
    let reader = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "reader")
        .unwrap();
    assert_eq!(reader["accepted"], 1);
}

#[test]
fn usage_figures() {
    let c = client(keys());
    get_with(&c, "/read", &key(READER));
    get_with(&c, "/read", &key(READER));
    get_with(&c, "/both", &key(READER));
    get_with(&c, "/any", &key(EXPIRED));
    get_with(&c, "/any", &key("no-such-key-0123456789"));
    get_with(&c, "/any", &[]);
    let keys = c.rocket().state::<ApiKeyStore>().unwrap().usage();
    let reader = keys.key("reader").unwrap();
    assert_eq!(reader.accepted, 2);
    assert_eq!(reader.rejected.get("scope"), Some(&1));
    assert!(reader.last_used.is_some());
    assert_eq!(
        keys.key("expired").unwrap().rejected.get("expired"),
        Some(&1)
    );
    assert_eq!(keys.key("admin").unwrap().accepted, 0);
    assert!(keys.key("admin").unwrap().last_used.is_none());
    assert_eq!(keys.unattributed.get("unknown"), Some(&1));
    assert_eq!(keys.unattributed.get("missing"), Some(&1));
    assert_eq!(keys.unattributed.values().sum::<u64>(), 2);
}

#[test]
fn empty_store_fails_closed() {
    let c = client(ApiKeyStore::builder().from_env(false));
    assert_unauthorized(get_with(&c, "/any", &key(READER)));
    assert_unauthorized(get_with(&c, "/any", &[]));
}

#[test]
fn configuration_errors_stop_ignition() {
    let bad = keys().key("broken", "short;scopes=read orders");
    assert!(ignition_error(app(bad)).unwrap().contains("FailedFairings"));
    let dup = keys().key("again", READER);
    assert!(ignition_error(app(dup)).unwrap().contains("FailedFairings"));
    let errors = ApiKeyStore::builder()
        .from_env(false)
        .key("a", "short")
        .key("b", format!("{READER};scopes=x y"))
        .key("c", format!("{READER};ips=10.0.0.0/8"))
        .build()
        .unwrap_err();
    let message = errors.to_string();
    assert_eq!(errors.0.len(), 2, "{message}");
    assert!(
        message.contains("key `a` given in code: the key is shorter than 16 characters"),
        "{message}"
    );
    assert!(
        message.contains("key `b` given in code: invalid scope \"x y\""),
        "{message}"
    );
    assert!(!message.contains(READER));
}

#[test]
fn every_bad_setting_is_reported_together() {
    let errors = keys().load(&three_mistakes()).unwrap_err();
    assert!(
        matches!(
            errors.0[..],
            [
                LoadError::Config(ConfigError::BadHeader(_)),
                LoadError::Config(ConfigError::ReloadInterval),
                LoadError::Config(ConfigError::FailureLimitAddress),
            ]
        ),
        "{errors:?}"
    );
    assert_eq!(
        errors.to_string(),
        "`api_keys.header` = \"bad header\" is not an HTTP header name\n\
         `api_keys.reload_interval` must be at least 1s, or 0 to turn polling off\n\
         `api_keys.failure_limit` needs `api_keys.failure_limit_address`: \"peer\" when clients \
         connect directly, \"proxy\" behind the proxies in `trusted_proxies`"
    );
    let rocket = rocket::custom(three_mistakes()).attach(keys().fairing());
    assert!(ignition_error(rocket).unwrap().contains("FailedFairings"));

    // A table that cannot be read at all is one error of its own.
    let unknown = Figment::from(rocket::Config::debug_default()).merge(("api_keys.hedaer", "x"));
    let errors = keys().load(&unknown).unwrap_err();
    assert!(
        matches!(errors.0[..], [LoadError::Settings(_)]),
        "{errors:?}"
    );
    assert!(
        errors
            .to_string()
            .starts_with("invalid `api_keys` configuration: "),
        "{errors}"
    );
}

#[test]
fn rocket_configuration_overrides_the_builder() {
    let figment = Figment::from(rocket::Config::debug_default())
        .merge(("api_keys.header", "x-orders-key"))
        .merge(("api_keys.accept_bearer", true));
    let rocket = rocket::custom(figment)
        .attach(keys().fairing())
        .mount("/", routes![any]);
    let c = Client::tracked(rocket).unwrap();
    assert_eq!(
        get_with(&c, "/any", &[("x-orders-key", READER)]).status(),
        Status::Ok
    );
    assert_eq!(
        get_with(
            &c,
            "/any",
            &[("Authorization", &format!("Bearer {READER}"))]
        )
        .status(),
        Status::Ok
    );
    let r = get_with(&c, "/any", &key(READER));
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(
        r.headers().get_one("WWW-Authenticate"),
        Some(r#"ApiKey header="x-orders-key""#)
    );

    let bad =
        Figment::from(rocket::Config::debug_default()).merge(("api_keys.header", "bad header"));
    assert!(ignition_error(rocket::custom(bad).attach(keys().fairing())).is_some());
    let unknown = Figment::from(rocket::Config::debug_default()).merge(("api_keys.hedaer", "x"));
    assert!(ignition_error(rocket::custom(unknown).attach(keys().fairing())).is_some());
}

#[test]
fn guard_without_store_aborts_launch() {
    let rocket = rocket::build().mount("/", routes![any]);
    let error = ignition_error(rocket).expect("the sentinel must stop launch");
    assert!(error.contains("SentinelAborts"), "{error}");
}

#[test]
fn guard_without_store_answers_500() {
    let c = Client::tracked(rocket::build().mount("/", routes![wrapped])).unwrap();
    let r = c
        .get("/wrapped")
        .header(Header::new("x-api-key", READER))
        .dispatch();
    assert_eq!(r.status(), Status::InternalServerError);
    let r = c
        .get("/wrapped")
        .header(Header::new("x-api-key", READER))
        .header(rocket::http::Accept::JSON)
        .dispatch();
    assert_eq!(r.status(), Status::InternalServerError);
    assert_eq!(r.content_type(), Some(ContentType::JSON));
}

#[catch(401)]
fn own_401(req: &Request<'_>) -> String {
    let reason = Rejection::of(req).map_or("none", |r| r.reason().as_str());
    format!("custom: {reason}")
}

#[test]
fn applications_can_keep_their_catchers() {
    let rocket = app(keys().register_catchers(false)).register("/", catchers![own_401]);
    let c = Client::tracked(rocket).unwrap();
    assert_eq!(
        get_with(&c, "/any", &key("no-such-key-0123456789"))
            .into_string()
            .unwrap(),
        "custom: unknown"
    );
    assert_eq!(
        get_with(&c, "/any", &[]).into_string().unwrap(),
        "custom: missing"
    );
}

#[test]
fn verify_outside_rocket() {
    let keys = keys().build().unwrap();
    assert_eq!(keys.verify(READER, None).unwrap().name(), "reader");
    assert_eq!(keys.verify(EXPIRED, None).unwrap_err(), Reason::Expired);
    assert_eq!(keys.verify("", None).unwrap_err(), Reason::Malformed);
    assert_eq!(
        keys.verify(OFFICE, Some("10.0.0.1".parse().unwrap()))
            .unwrap()
            .name(),
        "office"
    );
    assert_eq!(keys.verify(OFFICE, None).unwrap_err(), Reason::Ip);
    assert_eq!(keys.usage().key("reader").unwrap().accepted, 1);
}

#[test]
fn generated_keys_with_a_bad_checksum_are_malformed_before_lookup() {
    let generated = rocket_api_key_runtime::keygen::GeneratedKey::new().unwrap();
    let c = client(keys().key("generated", generated.entry()));
    let secret = generated.expose_secret();
    assert_eq!(
        get_with(&c, "/any", &key(secret)).into_string().unwrap(),
        "generated"
    );
    let mut typo = secret.to_owned();
    let last = typo.pop().unwrap();
    typo.push(if last == 'a' { 'b' } else { 'a' });
    assert_unauthorized(get_with(&c, "/any", &key(&typo)));
    let usage = c.rocket().state::<ApiKeyStore>().unwrap().usage();
    assert_eq!(usage.unattributed.get("malformed"), Some(&1));
    assert_eq!(usage.unattributed.get("unknown"), None);
}

#[rocket::get("/boom")]
fn boom(key: rocket_api_key_runtime::Authorized) -> &'static str {
    panic!("handler failed for {key:?}")
}

#[test]
fn a_panicking_handler_exposes_no_key_material() {
    let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = messages.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info.to_string();
        if text.contains("handler failed for") {
            sink.lock().unwrap().push(text);
        }
    }));
    let c = Client::tracked(app(keys()).mount("/", routes![boom])).unwrap();
    let response = get_with(&c, "/boom", &key(READER));
    assert_eq!(response.status(), Status::InternalServerError);
    let body = response.into_string().unwrap_or_default();
    std::panic::set_hook(previous);

    assert!(!body.contains(READER));
    let messages = messages.lock().unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let digest = KeyDigest::of(READER.as_bytes()).to_entry();
    assert!(messages[0].contains("name: \"reader\""), "{}", messages[0]);
    assert!(
        !messages[0].contains(READER) && !messages[0].contains(&digest[7..]),
        "{}",
        messages[0]
    );
}

#[catch(default)]
fn api_default(status: rocket::http::Status, _req: &Request<'_>) -> String {
    format!("api catcher: {}", status.code)
}

#[catch(429)]
fn own_429() -> &'static str {
    "slow down (another limiter)"
}

#[catch(503)]
fn own_503() -> &'static str {
    "maintenance"
}

#[rocket::get("/busy")]
fn busy() -> rocket::http::Status {
    rocket::http::Status::TooManyRequests
}

#[test]
fn refusals_keep_their_answer_whatever_catcher_the_application_mounts() {
    // A default catcher under a longer base path wins over ours at `/` in Rocket's choice; the
    // answer is still the documented one, challenge and scopes included.
    let rocket = app(keys().failure_limit(
        "1/m".parse().unwrap(),
        rocket_api_key_runtime::config::ClientAddress::Peer,
    ))
    .mount("/api", routes![any, read])
    .register("/api", catchers![api_default]);
    let c = Client::tracked(rocket).unwrap();
    assert_unauthorized(get_with(&c, "/api/any", &[]));
    assert_json(
        get_with(&c, "/api/read", &key(ADMIN)),
        Status::Forbidden,
        json!({"error": "Insufficient scope", "required_scopes": ["read:orders"], "match": "all"}),
    );
    // An error that is not a refusal of ours keeps the application's answer.
    assert_eq!(
        get_with(&c, "/api/nowhere", &[]).into_string().unwrap(),
        "api catcher: 404"
    );
    // The failure limit's 429, under /api, from an address that guessed.
    let guess = c
        .get("/api/any")
        .remote("192.0.2.1:1".parse().unwrap())
        .header(Header::new("x-api-key", "guess-0123456789abcdef"));
    assert_eq!(guess.dispatch().status(), Status::Unauthorized);
    let blocked = c
        .get("/api/any")
        .remote("192.0.2.1:1".parse().unwrap())
        .header(Header::new("x-api-key", READER))
        .dispatch();
    assert_eq!(blocked.status(), Status::TooManyRequests);
    assert!(blocked.headers().get_one("Retry-After").is_some());
    assert_eq!(
        blocked.into_string().unwrap(),
        r#"{"error":"Too many failed attempts"}"#
    );
}

#[test]
fn applications_keep_their_own_429_and_503_catchers() {
    // Registered at `/` beside ours: no collision at launch, and the application's 429s keep
    // the application's answer while ours keep ours.
    let rocket = app(keys().key("limited", format!("{LIMITED};rate=1/m")))
        .mount("/", routes![busy])
        .register("/", catchers![own_429, own_503]);
    let c = Client::tracked(rocket).expect("no catcher collision");
    assert_eq!(
        get_with(&c, "/busy", &[]).into_string().unwrap(),
        "slow down (another limiter)"
    );
    assert_eq!(get_with(&c, "/any", &key(LIMITED)).status(), Status::Ok);
    let limited = get_with(&c, "/any", &key(LIMITED));
    assert_eq!(limited.status(), Status::TooManyRequests);
    assert!(limited.headers().get_one("Retry-After").is_some());
    assert_eq!(
        limited.into_string().unwrap(),
        r#"{"error":"Too many requests"}"#
    );
}

#[test]
fn with_register_catchers_off_the_application_answers() {
    let rocket = app(keys().register_catchers(false))
        .mount("/api", routes![any])
        .register("/api", catchers![api_default]);
    let c = Client::tracked(rocket).unwrap();
    let answer = get_with(&c, "/api/any", &[]);
    assert_eq!(answer.status(), Status::Unauthorized);
    assert!(answer.headers().get_one("WWW-Authenticate").is_none());
    assert_eq!(answer.into_string().unwrap(), "api catcher: 401");
}

const LIMITED: &str = "limited-key-0123456789abcdef";
