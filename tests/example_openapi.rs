//! The example's `GET /openapi.json`: open without a key, a structurally valid OpenAPI 3
//! document, and each operation's `security` is exactly what its route's `#[require_api_key]`
//! requires (the routes and requirements read back from the launch audit, not restated here).

#[allow(dead_code)]
#[path = "../examples/orders/app.rs"]
mod app;

use rocket::http::Status;
use rocket::local::blocking::Client;
use rocket_api_key::audit::Audit;
use rocket_api_key::scope::ScopeRequirement;
use rocket_api_key::ApiKeyStore;
use serde_json::{json, Value};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn client(header: &str) -> Client {
    let keys = ApiKeyStore::builder().from_env(false).header(header);
    Client::tracked(app::rocket(keys)).expect("the example's rocket")
}

fn document(client: &Client) -> Value {
    let response = client.get("/openapi.json").dispatch();
    assert_eq!(response.status(), Status::Ok, "served without a key");
    serde_json::from_str(&response.into_string().unwrap()).expect("JSON")
}

/// The `security` the attribute's requirement stands for.
fn expected(requirement: ScopeRequirement) -> Value {
    match requirement {
        ScopeRequirement::AnyKey => json!([{ "api_key": [] }]),
        ScopeRequirement::AllOf(scopes) => json!([{ "api_key": scopes }]),
        ScopeRequirement::AnyOf(scopes) => {
            Value::Array(scopes.iter().map(|s| json!({ "api_key": [s] })).collect())
        }
    }
}

/// `/orders/<id>` as OpenAPI writes it.
fn openapi_path(path: &str) -> String {
    path.replace('<', "{").replace('>', "}")
}

#[test]
fn the_document_is_openapi_3_with_a_scheme_and_responses_everywhere() {
    let doc = document(&client("x-api-key"));
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    for (path, item) in paths {
        assert!(path.starts_with('/'), "{path}");
        let operations: Vec<&str> = METHODS
            .into_iter()
            .filter(|m| item.get(*m).is_some())
            .collect();
        assert!(!operations.is_empty(), "{path} has no operation");
        for method in operations {
            let responses = item[method]["responses"].as_object();
            assert!(
                responses.is_some_and(|r| !r.is_empty()),
                "{method} {path}: no responses"
            );
            // Every requirement names a declared scheme.
            for requirement in item[method]["security"].as_array().into_iter().flatten() {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(
                        doc["components"]["securitySchemes"].get(scheme).is_some(),
                        "{scheme}"
                    );
                }
            }
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"],
        json!({ "type": "apiKey", "in": "header", "name": "x-api-key" })
    );
}

#[test]
fn each_operation_requires_what_its_route_requires() {
    let client = client("x-api-key");
    let doc = document(&client);
    let audit = Audit::of(client.rocket().state::<ApiKeyStore>().unwrap());
    assert!(audit.routes.len() >= 5, "{:?}", audit.routes);
    let mut protected = Vec::new();
    for route in &audit.routes {
        let path = openapi_path(&route.path);
        let method = route.method.to_lowercase();
        let operation = &doc["paths"][&path][&method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        assert_eq!(
            operation["security"],
            expected(route.requirement),
            "{method} {path}"
        );
        protected.push((path, method));
    }
    // And nothing else claims a key: `/health` is open.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let security = &item[method]["security"];
            if !security.is_null() {
                assert!(
                    protected.contains(&(path.clone(), method.to_owned())),
                    "{method} {path} requires a key the routes do not"
                );
            }
        }
    }
    assert!(doc["paths"]["/health"]["get"]["security"].is_null());
}

#[test]
fn the_scheme_names_the_header_the_store_reads() {
    let doc = document(&client("x-orders-key"));
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["name"],
        "x-orders-key"
    );
}
