//! The launch audit: at liftoff and after a reload, which keys reach which mounted routes, a
//! warning for a route no key passes and for a scope no route requires, with the typo's fix.

#[path = "../runtime/tests/common/captured.rs"]
mod captured;

use std::sync::OnceLock;
use std::time::Duration;

use captured::Captured;
use rocket::local::asynchronous::Client as AsyncClient;
use rocket::local::blocking::Client;
use rocket::{get, routes, Build, Rocket};
use rocket_api_key::audit::{Audit, RouteAudit};
use rocket_api_key::scope::{RequiredScopes, ScopeRequirement};
use rocket_api_key::{require_api_key, ApiKeyStore, Authorized};

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(Captured::install)
}

const KEY_A: &str = "0123456789abcdef0123456789abcdef";
const KEY_B: &str = "fedcba9876543210fedcba9876543210";
const KEY_C: &str = "00112233445566778899aabbccddeeff";

#[require_api_key(scope = "read:orders")]
#[get("/orders")]
fn orders() -> &'static str {
    "[]"
}

#[require_api_key]
#[get("/whoami")]
fn whoami() -> &'static str {
    "you"
}

#[require_api_key(scope = any("admin", "write:orders"))]
#[rocket::route(POST, uri = "/orders")]
fn create() -> &'static str {
    "created"
}

/// Same handler name as `orders` above, another path and requirement.
mod v2 {
    use super::*;

    #[require_api_key(scope = "read:orders:v2")]
    #[get("/orders/<id>")]
    pub fn orders(id: u32) -> String {
        id.to_string()
    }
}

/// Two handlers named `export`: the attribute protects this one…
mod admin {
    use super::*;

    #[require_api_key(scope = "admin")]
    #[get("/export")]
    pub fn export() -> &'static str {
        "every order"
    }
}

/// …and not this one, mounted beside it.
mod public {
    use super::*;

    #[get("/download")]
    pub fn export() -> &'static str {
        "the price list"
    }
}

struct ReadInvoices;

impl RequiredScopes for ReadInvoices {
    const REQUIREMENT: ScopeRequirement = ScopeRequirement::AllOf(&["read:invoices"]);
}

#[get("/invoices")]
fn invoices(_key: Authorized<ReadInvoices>) -> &'static str {
    "[]"
}

#[get("/health")]
fn health() -> &'static str {
    "ok"
}

fn rocket(keys: &[(&str, String)]) -> Rocket<Build> {
    let mut builder = ApiKeyStore::builder().from_env(false);
    for (name, entry) in keys {
        builder = builder.key(*name, entry.clone());
    }
    rocket::build()
        .attach(builder.fairing())
        .mount("/", routes![orders, whoami, create, invoices, health])
        .mount("/api", routes![orders, v2::orders])
}

fn audit(client: &Client) -> Audit {
    Audit::of(client.rocket().state::<ApiKeyStore>().expect("store"))
}

fn route<'a>(audit: &'a Audit, method: &str, path: &str) -> &'a RouteAudit {
    audit
        .routes
        .iter()
        .find(|r| r.method == method && r.path == path)
        .unwrap_or_else(|| panic!("{method} {path} not in {:#?}", audit.routes))
}

#[test]
fn a_typo_in_a_key_scope_is_named_with_the_scope_it_was_meant_to_be() {
    captured();
    let client = Client::tracked(rocket(&[
        ("reporting", format!("{KEY_A};scopes=read:order")),
        ("billing", format!("{KEY_B};scopes=admin,read:invoices")),
        (
            "old",
            format!("{KEY_C};scopes=read:orders;expires=2001-01-01T00:00:00Z"),
        ),
    ]))
    .expect("rocket");
    let audit = audit(&client);

    // Every route the attribute protects, each mount of it, and nothing else.
    let mut listed: Vec<String> = audit
        .routes
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.handler))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "GET /api/orders orders",
            "GET /api/orders/<id> orders",
            "GET /orders orders",
            "GET /whoami whoami",
            "POST /orders create",
        ]
    );
    let v2 = route(&audit, "GET", "/api/orders/<id>");
    assert_eq!(v2.requirement, ScopeRequirement::AllOf(&["read:orders:v2"]));
    assert!(v2.keys.is_empty());
    assert_eq!(
        route(&audit, "GET", "/whoami").keys,
        ["billing", "reporting"]
    );
    assert_eq!(route(&audit, "POST", "/orders").keys, ["billing"]);
    // The expired key has the scope, but passes nothing.
    assert!(route(&audit, "GET", "/orders").keys.is_empty());

    let mut unreachable: Vec<&str> = audit.unreachable().map(|r| r.path.as_str()).collect();
    unreachable.sort();
    assert_eq!(unreachable, ["/api/orders", "/api/orders/<id>", "/orders"]);

    // `read:invoices` is required by a hand-written guard; `read:orders` by the routes.
    let unused: Vec<(&str, Option<&str>)> = audit
        .unused_scopes
        .iter()
        .map(|u| (u.scope.as_str(), u.suggestion.as_deref()))
        .collect();
    assert_eq!(unused, [("read:order", Some("read:orders"))]);
    assert_eq!(audit.unused_scopes[0].keys, ["reporting"]);

    let logs = captured().text();
    let line = |needle: &str| {
        logs.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{logs}"))
            .to_owned()
    };
    // Other tests log their own audits in parallel: each line is found by what only this
    // test's configuration gives.
    let info = line("GET /whoami (any valid key): 2 keys");
    assert!(
        info.contains("INFO") && info.contains("API key audit"),
        "{info}"
    );
    assert!(info.contains("routes=5"), "{info}");
    assert!(
        info.contains("POST /orders (any(admin, write:orders)): 1 key"),
        "{info}"
    );
    let warn = line("route=GET /orders ");
    assert!(warn.contains("WARN") && warn.contains("no configured key can pass this route"));
    assert!(warn.contains("requirement=all(read:orders)"), "{warn}");
    let typo = line("keys=reporting");
    assert!(
        typo.contains("WARN") && typo.contains("did_you_mean=\"read:orders\""),
        "{typo}"
    );
    assert!(typo.contains("scope=read:order "), "{typo}");
    // No key, digest or fingerprint in any of them.
    for secret in [KEY_A, KEY_B, KEY_C] {
        assert!(!logs.contains(secret));
        assert!(
            !logs.contains(&rocket_api_key::keygen::KeyDigest::of(secret.as_bytes()).to_entry())
        );
    }
}

/// A route is matched to its declaration by name, method and whole unmounted path: an
/// unprotected handler that shares a protected one's name is not listed as protected.
#[test]
fn a_handler_named_like_a_protected_one_is_not_called_protected() {
    use rocket::http::Status;

    captured();
    let store = ApiKeyStore::builder()
        .from_env(false)
        .key("exporter", format!("{KEY_A};scopes=admin"));
    let client = Client::tracked(
        rocket::build()
            .attach(store.fairing())
            .mount("/admin", routes![admin::export])
            .mount("/public", routes![public::export]),
    )
    .expect("rocket");
    let audit = audit(&client);
    let listed: Vec<String> = audit
        .routes
        .iter()
        .map(|r| format!("{} {} {} {}", r.method, r.path, r.handler, r.requirement))
        .collect();
    assert_eq!(listed, ["GET /admin/export export all(admin)"]);
    assert_eq!(route(&audit, "GET", "/admin/export").keys, ["exporter"]);

    // As served: the one listed asks for a key, the other does not.
    assert_eq!(
        client.get("/admin/export").dispatch().status(),
        Status::Unauthorized
    );
    assert_eq!(
        client.get("/public/download").dispatch().status(),
        Status::Ok
    );
    let logs = captured().text();
    assert!(
        logs.contains("GET /admin/export (all(admin)): 1 key"),
        "{logs}"
    );
    assert!(!logs.contains("/public/download"), "{logs}");
}

#[test]
fn keys_that_reach_every_route_leave_no_warning() {
    captured();
    let client = Client::tracked(rocket(&[(
        "all",
        format!("{KEY_A};scopes=read:orders,read:orders:v2,admin,read:invoices"),
    )]))
    .expect("rocket");
    let audit = audit(&client);
    assert_eq!(audit.unreachable().count(), 0);
    assert!(audit.unused_scopes.is_empty(), "{:?}", audit.unused_scopes);
}

#[test]
fn without_the_fairing_launched_nothing_is_reported() {
    let store = ApiKeyStore::builder()
        .from_env(false)
        .key("k", format!("{KEY_A};scopes=anything"))
        .build()
        .expect("store");
    let audit = Audit::of(&store);
    assert!(audit.routes.is_empty() && audit.unused_scopes.is_empty());
}

#[rocket::async_test]
async fn a_reload_is_audited_again() {
    captured();
    let dir = std::env::temp_dir().join(format!("rak-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys");
    std::fs::write(&file, format!("first={KEY_A};scopes=read:order\n")).unwrap();
    let fairing = ApiKeyStore::builder()
        .from_env(false)
        .keys_file(&file)
        .reload_interval(Duration::from_secs(1))
        .fairing();
    let client = AsyncClient::tracked(rocket::build().attach(fairing).mount("/", routes![orders]))
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", captured().text()));
    let store = client.rocket().state::<ApiKeyStore>().unwrap();
    assert_eq!(Audit::of(store).unreachable().count(), 1);

    // The watcher polls every second.
    std::fs::write(&file, format!("fixed={KEY_A};scopes=read:orders\n")).unwrap();
    let mut fixed = false;
    for _ in 0..100 {
        rocket::tokio::time::sleep(Duration::from_millis(50)).await;
        if store.names() == ["fixed"] {
            fixed = true;
            break;
        }
    }
    assert!(fixed, "the keys file was not reloaded");
    let audit = Audit::of(store);
    assert_eq!(audit.unreachable().count(), 0);
    assert!(audit.unused_scopes.is_empty());
    let logs = captured().text();
    assert!(
        logs.contains("GET /orders (all(read:orders)): 1 key"),
        "the reload was not audited:\n{logs}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The registry's requirement (written out by the attribute from its scopes) is the one the
/// guard enforces (read from the scope type): a key with no scopes is refused by each route with
/// exactly the audited scopes and combinator.
#[test]
fn the_audited_requirement_is_the_enforced_one() {
    use rocket::http::{Header, Method, Status};
    use rocket_api_key::testing::TestKey;

    captured();
    let scopeless = TestKey::new("scopeless");
    let client = Client::tracked(rocket(&[("scopeless", scopeless.entry())])).expect("rocket");
    let audit = audit(&client);
    let mut checked = 0;
    for route in &audit.routes {
        if route.requirement == ScopeRequirement::AnyKey {
            continue;
        }
        let method: Method = route.method.parse().expect("a method");
        let path = route.path.replace("<id>", "1");
        let response = client
            .req(method, path.as_str())
            .header(Header::new(
                "x-api-key",
                scopeless.expose_secret().to_owned(),
            ))
            .dispatch();
        assert_eq!(response.status(), Status::Forbidden, "{method} {path}");
        let body: serde_json::Value =
            serde_json::from_str(&response.into_string().unwrap()).unwrap();
        assert_eq!(
            body["required_scopes"],
            serde_json::json!(route.requirement.scopes())
        );
        assert_eq!(
            body["match"],
            route.requirement.combinator(),
            "{method} {path}"
        );
        checked += 1;
    }
    assert_eq!(checked, 4, "{:?}", audit.routes);
}
