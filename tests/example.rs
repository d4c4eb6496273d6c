//! The orders example, launched on an ephemeral port and driven over real TCP by a real HTTP
//! client; then through Rocket's local client, as a user of `rocket_api_key::testing` would test
//! their own routes.

#[path = "../examples/orders/app.rs"]
#[allow(dead_code)]
mod app;

mod support;

use rocket_api_key::testing::{LocalRequestExt, TestKey};
use rocket_api_key::{ApiKeyStore, ApiKeyStoreBuilder};
use serde_json::{json, Value};
use support::Server;

struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn new(server: &Server) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build();
        Client {
            agent: config.into(),
            base: server.base.clone(),
        }
    }

    fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        read(req.call().expect("a response"))
    }

    fn post(&self, path: &str, key: &str, body: &str) -> (u16, Value) {
        let req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("x-api-key", key)
            .header("content-type", "application/json");
        read(req.send(body).expect("a response"))
    }
}

fn read(mut response: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "status {status}"
    );
    let body = response.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

/// The example's three kinds of caller, as test keys, and a store holding them.
fn example_keys() -> (TestKey, TestKey, TestKey, ApiKeyStoreBuilder) {
    let reader = TestKey::new("reader").scopes(["read:orders"]);
    let clerk = TestKey::new("clerk").scopes(["read:orders", "write:orders"]);
    let admin = TestKey::new("admin").scopes(["admin"]);
    let keys = ApiKeyStore::builder()
        .from_env(false)
        .test_key(&reader)
        .test_key(&clerk)
        .test_key(&admin);
    (reader, clerk, admin, keys)
}

#[test]
fn the_orders_example_over_http() {
    let (reader, clerk, admin, keys) = example_keys();
    let (reader_key, clerk_key, admin_key) = (
        reader.expose_secret(),
        clerk.expose_secret(),
        admin.expose_secret(),
    );
    let server = Server::start(app::rocket(keys));
    let c = Client::new(&server);
    let unauthorized = json!({"error": "Unauthorized access"});

    assert_eq!(c.get("/health", None), (200, json!({"status": "ok"})));

    // The Flask recipe's route and answers.
    assert_eq!(c.get("/secure-data", None), (401, unauthorized.clone()));
    assert_eq!(
        c.get("/secure-data", Some("wrong-key-0123456789abcdef")),
        (401, unauthorized.clone())
    );
    assert_eq!(
        c.get("/secure-data", Some(reader_key)),
        (200, json!({"data": "This is secured data"}))
    );

    // Scopes.
    assert_eq!(c.get("/orders", Some(reader_key)), (200, json!([])));
    assert_eq!(c.get("/orders", Some(admin_key)).0, 403);
    let (status, body) = c.post("/orders", reader_key, r#"{"item":"widget","quantity":3}"#);
    assert_eq!(status, 403);
    assert_eq!(body["required_scopes"], json!(["write:orders"]));

    // Create, then read back.
    let created = json!({"id": 1, "item": "widget", "quantity": 3});
    assert_eq!(
        c.post("/orders", clerk_key, r#"{"item":"widget","quantity":3}"#),
        (201, created.clone())
    );
    assert_eq!(c.get("/orders/1", Some(reader_key)), (200, created.clone()));
    assert_eq!(c.get("/orders", Some(clerk_key)), (200, json!([created])));
    assert_eq!(
        c.get("/orders/2", Some(reader_key)),
        (404, json!({"error": "no order 2"}))
    );

    // Invalid bodies get JSON errors, but only after authentication.
    for bad in [
        r#"{"item":"","quantity":1}"#,
        r#"{"item":"x","quantity":0}"#,
        r#"{"item":"x","quantity":-2}"#,
        r#"{"item":"x"}"#,
    ] {
        assert_eq!(c.post("/orders", clerk_key, bad).0, 422, "{bad}");
        assert_eq!(
            c.post("/orders", "wrong-key-0123456789abcdef", bad),
            (401, unauthorized.clone())
        );
    }
    assert_eq!(c.post("/orders", clerk_key, "{not json").0, 422);

    // Usage figures: names and counts, never key material.
    let (status, usage) = c.get("/admin/usage", Some(admin_key));
    assert_eq!(status, 200);
    let text = usage.to_string();
    for key in [&reader, &clerk, &admin] {
        assert!(!text.contains(key.expose_secret()), "{text}");
        assert!(!text.contains(&key.entry()[7..71]), "{text}");
    }
    let by_name = |name: &str| {
        usage["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("reader")["accepted"], 4);
    assert_eq!(by_name("reader")["rejected"], json!({"scope": 1}));
    assert_eq!(by_name("clerk")["accepted"], 7);
    assert_eq!(by_name("admin")["rejected"], json!({"scope": 1}));
    assert_eq!(usage["unattributed"], json!({"missing": 1, "unknown": 5}));
}

#[test]
fn the_orders_example_through_the_local_client() {
    use rocket::http::{ContentType, Status};
    use rocket::local::blocking::Client;

    let (reader, clerk, admin, keys) = example_keys();
    let client = Client::tracked(app::rocket(keys)).unwrap();
    let json = |response: rocket::local::blocking::LocalResponse<'_>| {
        let status = response.status();
        let body: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
        (status, body)
    };
    let order = r#"{"item":"widget","quantity":3}"#;

    assert_eq!(
        json(client.get("/orders").api_key(&reader).dispatch()),
        (Status::Ok, json!([]))
    );
    let (status, body) = json(
        client
            .post("/orders")
            .header(ContentType::JSON)
            .body(order)
            .api_key(&reader)
            .dispatch(),
    );
    assert_eq!(status, Status::Forbidden);
    assert_eq!(body["required_scopes"], json!(["write:orders"]));
    assert_eq!(
        json(
            client
                .post("/orders")
                .header(ContentType::JSON)
                .body(order)
                .api_key(&clerk)
                .dispatch()
        ),
        (
            Status::Created,
            json!({"id": 1, "item": "widget", "quantity": 3})
        )
    );
    assert_eq!(
        client
            .get("/admin/usage")
            .api_key(&reader)
            .dispatch()
            .status(),
        Status::Forbidden
    );
    let (status, usage) = json(client.get("/admin/usage").api_key(&admin).dispatch());
    assert_eq!(status, Status::Ok);
    assert!(!usage.to_string().contains(clerk.expose_secret()));
    assert_eq!(
        json(client.get("/orders").dispatch()),
        (
            Status::Unauthorized,
            json!({"error": "Unauthorized access"})
        )
    );
}
