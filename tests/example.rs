//! The orders example, launched on an ephemeral port and driven over real TCP by a real HTTP
//! client.

#[path = "../examples/orders/app.rs"]
#[allow(dead_code)]
mod app;

mod support;

use rocket_api_key::ApiKeyStore;
use serde_json::{json, Value};
use support::Server;

const READER: &str = "reader-0123456789abcdef0123456789abcdef";
const CLERK: &str = "clerk-0123456789abcdef0123456789abcdef";
const ADMIN: &str = "admin-0123456789abcdef0123456789abcdef";

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

#[test]
fn the_orders_example_over_http() {
    let keys = ApiKeyStore::builder()
        .from_env(false)
        .key("reader", format!("{READER};scopes=read:orders"))
        .key("clerk", format!("{CLERK};scopes=read:orders,write:orders"))
        .key("admin", format!("{ADMIN};scopes=admin"));
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
        c.get("/secure-data", Some(READER)),
        (200, json!({"data": "This is secured data"}))
    );

    // Scopes.
    assert_eq!(c.get("/orders", Some(READER)), (200, json!([])));
    assert_eq!(c.get("/orders", Some(ADMIN)).0, 403);
    let (status, body) = c.post("/orders", READER, r#"{"item":"widget","quantity":3}"#);
    assert_eq!(status, 403);
    assert_eq!(body["required_scopes"], json!(["write:orders"]));

    // Create, then read back.
    let created = json!({"id": 1, "item": "widget", "quantity": 3});
    assert_eq!(
        c.post("/orders", CLERK, r#"{"item":"widget","quantity":3}"#),
        (201, created.clone())
    );
    assert_eq!(c.get("/orders/1", Some(READER)), (200, created.clone()));
    assert_eq!(c.get("/orders", Some(CLERK)), (200, json!([created])));
    assert_eq!(
        c.get("/orders/2", Some(READER)),
        (404, json!({"error": "no order 2"}))
    );

    // Invalid bodies get JSON errors, but only after authentication.
    for bad in [
        r#"{"item":"","quantity":1}"#,
        r#"{"item":"x","quantity":0}"#,
        r#"{"item":"x","quantity":-2}"#,
        r#"{"item":"x"}"#,
    ] {
        assert_eq!(c.post("/orders", CLERK, bad).0, 422, "{bad}");
        assert_eq!(
            c.post("/orders", "wrong-key-0123456789abcdef", bad),
            (401, unauthorized.clone())
        );
    }
    assert_eq!(c.post("/orders", CLERK, "{not json").0, 422);

    // Usage figures: names and counts, never key material.
    let (status, usage) = c.get("/admin/usage", Some(ADMIN));
    assert_eq!(status, 200);
    let text = usage.to_string();
    for key in [READER, CLERK, ADMIN] {
        assert!(!text.contains(key), "{text}");
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
