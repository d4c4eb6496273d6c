//! OpenAPI security from the attribute (feature `utoipa`): each form of `scope` gives the
//! operation's requirement, the modifier declares the scheme for the configured header, and a
//! `#[utoipa::path]` written above the attribute still ends with the requirement.

use rocket::local::blocking::Client;
use rocket::{get, post};
use rocket_api_key::openapi::{ApiKeySecurity, API_KEY_SECURITY, SECURITY_SCHEME};
use rocket_api_key::{require_api_key, ApiKeyStore};
use serde_json::{json, Value};
use utoipa::{Modify, OpenApi};

#[require_api_key]
#[utoipa::path(responses((status = 200, description = "Who is calling")))]
#[get("/whoami")]
fn whoami() -> &'static str {
    "you"
}

#[require_api_key(scope = "read:orders")]
#[utoipa::path(responses((status = 200, description = "Every order")))]
#[get("/orders")]
fn list_orders() -> &'static str {
    "[]"
}

#[require_api_key(scope = all("read:orders", "read:invoices"))]
#[utoipa::path(responses((status = 200, description = "An order with its invoice")))]
#[get("/orders/<id>")]
fn order(id: u32) -> String {
    id.to_string()
}

#[require_api_key(scope = any("write:orders", "admin"))]
#[utoipa::path(responses((status = 201, description = "Created")),)]
#[post("/orders")]
fn create_order() -> &'static str {
    "created"
}

// The wrong order: utoipa expands first, and the attribute cannot write into it.
#[utoipa::path(responses((status = 200, description = "Usage")))]
#[require_api_key(scope = "admin")]
#[get("/admin/usage")]
fn usage() -> &'static str {
    "{}"
}

/// Not protected: no requirement may appear.
#[utoipa::path(responses((status = 200, description = "Alive")))]
#[get("/health")]
fn health() -> &'static str {
    "ok"
}

/// Two handlers named `export`, both written with `#[utoipa::path]` above, so that the modifier
/// is what gives a requirement: the admin one is protected…
mod admin {
    use super::*;

    #[utoipa::path(responses((status = 200, description = "Every order")))]
    #[require_api_key(scope = "admin")]
    #[get("/export")]
    pub fn export() -> &'static str {
        "[]"
    }

    /// Under a context path, which the modifier cannot know: found by its last segments and its
    /// operation id, being the only operation that could be it.
    #[utoipa::path(
        context_path = "/api",
        responses((status = 200, description = "Every invoice"))
    )]
    #[require_api_key(scope = "admin")]
    #[get("/invoices/<year>")]
    pub fn invoices(year: u16) -> String {
        year.to_string()
    }
}

/// …and this one, whose path ends like the admin one's, is not.
mod reports {
    use super::*;

    #[utoipa::path(responses((status = 200, description = "This month's report")))]
    #[get("/reports/export")]
    pub fn export() -> &'static str {
        "{}"
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(whoami, list_orders, order, create_order, usage, health),
    modifiers(&API_KEY_SECURITY)
)]
struct ApiDoc;

#[derive(OpenApi)]
#[openapi(
    paths(admin::export, admin::invoices, reports::export, health),
    modifiers(&API_KEY_SECURITY)
)]
struct Exports;

#[derive(OpenApi)]
#[openapi(paths(list_orders, usage))]
struct Unmodified;

fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap()
}

#[test]
fn each_scope_form_gives_its_requirement() {
    let doc = document();
    let security = |path: &str, method: &str| doc["paths"][path][method]["security"].clone();
    assert_eq!(security("/whoami", "get"), json!([{ "api_key": [] }]));
    assert_eq!(
        security("/orders", "get"),
        json!([{ "api_key": ["read:orders"] }])
    );
    assert_eq!(
        security("/orders/{id}", "get"),
        json!([{ "api_key": ["read:orders", "read:invoices"] }])
    );
    assert_eq!(
        security("/orders", "post"),
        json!([{ "api_key": ["write:orders"] }, { "api_key": ["admin"] }])
    );
    assert_eq!(security("/health", "get"), Value::Null);
}

#[test]
fn the_attribute_writes_the_requirement_itself_and_the_modifier_fills_the_wrong_order() {
    let unmodified = serde_json::to_value(Unmodified::openapi()).unwrap();
    assert_eq!(
        unmodified["paths"]["/orders"]["get"]["security"],
        json!([{ "api_key": ["read:orders"] }])
    );
    // Written above the attribute, utoipa saw no requirement…
    assert_eq!(
        unmodified["paths"]["/admin/usage"]["get"]["security"],
        Value::Null
    );
    // …and the modifier adds the one the attribute declared.
    assert_eq!(
        document()["paths"]["/admin/usage"]["get"]["security"],
        json!([{ "api_key": ["admin"] }])
    );
}

/// The modifier gives an operation a handler's requirement by the whole path, segment by
/// segment: `/reports/export` is not `/export`.
#[test]
fn an_operation_whose_path_ends_like_a_protected_one_gets_no_requirement() {
    let doc = serde_json::to_value(Exports::openapi()).unwrap();
    let security = |path: &str| doc["paths"][path]["get"]["security"].clone();
    assert_eq!(security("/export"), json!([{ "api_key": ["admin"] }]));
    assert_eq!(security("/reports/export"), Value::Null);
    assert_eq!(
        security("/api/invoices/{year}"),
        json!([{ "api_key": ["admin"] }])
    );
    assert_eq!(security("/health"), Value::Null);
    assert_eq!(doc["paths"].as_object().map(|paths| paths.len()), Some(4));

    // As served, mounted where the document puts them.
    let fairing = ApiKeyStore::builder().from_env(false).fairing();
    let rocket = rocket::build()
        .attach(fairing)
        .mount("/", rocket::routes![admin::export, reports::export, health])
        .mount("/api", rocket::routes![admin::invoices]);
    let client = Client::tracked(rocket).unwrap();
    for (path, status) in [
        ("/export", 401),
        ("/api/invoices/2027", 401),
        ("/reports/export", 200),
        ("/health", 200),
    ] {
        assert_eq!(client.get(path).dispatch().status().code, status, "{path}");
    }
}

#[test]
fn the_scheme_is_an_api_key_in_the_configured_header() {
    let doc = document();
    assert_eq!(
        doc["components"]["securitySchemes"][SECURITY_SCHEME],
        json!({ "type": "apiKey", "in": "header", "name": "x-api-key" })
    );

    let mut custom = Unmodified::openapi();
    ApiKeySecurity::header("x-token").modify(&mut custom);
    let custom = serde_json::to_value(custom).unwrap();
    assert_eq!(
        custom["components"]["securitySchemes"]["api_key"]["name"],
        "x-token"
    );

    // From a running store: the header Rocket's configuration set.
    let fairing = ApiKeyStore::builder()
        .from_env(false)
        .header("x-service-key")
        .fairing();
    let client = Client::tracked(rocket::build().attach(fairing)).unwrap();
    let mut doc = Unmodified::openapi();
    ApiKeySecurity::of(client.rocket().state::<ApiKeyStore>().unwrap()).modify(&mut doc);
    let doc = serde_json::to_value(doc).unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["name"],
        "x-service-key"
    );
}

#[test]
fn the_documented_routes_are_the_protected_ones() {
    let fairing = ApiKeyStore::builder().from_env(false).fairing();
    let rocket = rocket::build().attach(fairing).mount(
        "/",
        rocket::routes![whoami, list_orders, order, create_order, usage, health],
    );
    let client = Client::tracked(rocket).unwrap();
    assert_eq!(client.get("/health").dispatch().status().code, 200);
    for (method, path) in [
        ("get", "/whoami"),
        ("get", "/orders"),
        ("get", "/orders/1"),
        ("post", "/orders"),
        ("get", "/admin/usage"),
    ] {
        let request = match method {
            "post" => client.post(path),
            _ => client.get(path),
        };
        assert_eq!(request.dispatch().status().code, 401, "{method} {path}");
    }
}
