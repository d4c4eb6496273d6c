//! `#[require_api_key]` end to end: real Rocket applications, driven through the local client and
//! once over HTTP, checking who gets in, who does not, and what runs before the key is checked.

use std::sync::atomic::{AtomicUsize, Ordering};

use rocket::data::{self, Data, FromData, ToByteUnit};
use rocket::fairing::AdHoc;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::request::{self, FromRequest, Request};
use rocket::serde::json::Json;
use rocket::{get, post, routes, Build, Config, Rocket};
use rocket_api_key::{require_api_key, ApiKey, ApiKeyStore};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const READER: &str = "reader-secret-0123456789abcdef";
const WRITER: &str = "writer-secret-0123456789abcdef";
const ADMIN: &str = "admin-secret-0123456789abcdef";
const UNKNOWN: &str = "unknown-secret-0123456789abcdef";
const UNAUTHORIZED: &str = r#"{"error":"Unauthorized access"}"#;

// --- The application under test ----------------------------------------------------------------

#[require_api_key]
#[get("/any-key")]
fn any_key() -> &'static str {
    "any key"
}

#[require_api_key(scope = "read:orders")]
#[get("/orders")]
fn list_orders() -> &'static str {
    "orders"
}

// A second annotated handler in the same module, on the same path.
#[require_api_key(scope = "write:orders")]
#[post("/orders", data = "<order>")]
fn create_order(order: Json<Order>) -> Json<Order> {
    order
}

#[require_api_key(scope = all("read:orders", "write:orders"))]
#[get("/all")]
fn all_scopes() -> &'static str {
    "all"
}

#[require_api_key(scope = any("write:orders", "admin"))]
#[get("/any")]
async fn any_scope() -> &'static str {
    "any"
}

#[require_api_key(scope = "read:orders")]
#[get("/whoami")]
fn whoami(key: ApiKey) -> String {
    key.name().to_owned()
}

#[require_api_key(scope = "write:orders")]
#[post("/shops/<shop>/orders?<dry_run>", data = "<order>")]
fn create_shop_order(shop: &str, dry_run: bool, order: Json<Order>) -> Json<Value> {
    Json(json!({ "shop": shop, "dry_run": dry_run, "item": order.item }))
}

#[require_api_key(scope = "write:orders")]
#[post("/recorded", data = "<body>")]
fn recorded(_guard: CountingGuard, body: CountingBody) -> String {
    body.0
}

// The longest scope (64 bytes, four `u128`s in the type the attribute builds), the longest list
// spelled as such a type (8), and a longer one, which gets a hidden type of its own.
#[require_api_key(scope = "longest-scope:0123456789abcdefghijklmnopqrstuvwxyz/ABCDEFGHIJKLM")]
#[get("/longest-scope")]
fn longest_scope() {}

#[require_api_key(scope = any("s1", "s2", "s3", "s4", "s5", "s6", "s7", "read:orders"))]
#[get("/eight-scopes")]
fn eight_scopes() {}

#[require_api_key(scope = any("s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "read:orders"))]
#[get("/nine-scopes")]
fn nine_scopes() {}

#[derive(Serialize, Deserialize)]
struct Order {
    item: String,
}

/// How often the handler's own guards ran.
#[derive(Default)]
struct Calls {
    request_guard: AtomicUsize,
    data_guard: AtomicUsize,
}

struct CountingGuard;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CountingGuard {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        count(req, |calls| &calls.request_guard);
        request::Outcome::Success(CountingGuard)
    }
}

/// Reads the body, counting how often it was asked to.
struct CountingBody(String);

#[rocket::async_trait]
impl<'r> FromData<'r> for CountingBody {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        count(req, |calls| &calls.data_guard);
        match data.open(1.kibibytes()).into_string().await {
            Ok(body) => data::Outcome::Success(CountingBody(body.into_inner())),
            Err(_) => data::Outcome::Error((Status::BadRequest, ())),
        }
    }
}

fn count(req: &Request<'_>, counter: impl Fn(&Calls) -> &AtomicUsize) {
    if let Some(calls) = req.rocket().state::<Calls>() {
        counter(calls).fetch_add(1, Ordering::SeqCst);
    }
}

fn app(rocket: Rocket<Build>) -> Rocket<Build> {
    let keys = ApiKeyStore::builder()
        .from_env(false)
        .key("reader", format!("{READER};scopes=read:orders"))
        .key(
            "writer",
            format!("{WRITER};scopes=read:orders,write:orders"),
        )
        .key("admin", format!("{ADMIN};scopes=admin"))
        .fairing();
    rocket.attach(keys).manage(Calls::default()).mount(
        "/",
        routes![
            any_key,
            list_orders,
            create_order,
            all_scopes,
            any_scope,
            whoami,
            create_shop_order,
            recorded,
            longest_scope,
            eight_scopes,
            nine_scopes,
        ],
    )
}

async fn client() -> Client {
    match Client::tracked(app(rocket::build())).await {
        Ok(client) => client,
        Err(error) => panic!("the test application failed to ignite: {error}"),
    }
}

async fn get_with<'c>(client: &'c Client, uri: &str, key: Option<&str>) -> LocalResponse<'c> {
    let mut request = client.get(uri.to_owned());
    if let Some(key) = key {
        request = request.header(Header::new("x-api-key", key.to_owned()));
    }
    request.dispatch().await
}

async fn post_with<'c>(
    client: &'c Client,
    uri: &str,
    key: Option<&str>,
    body: &str,
) -> LocalResponse<'c> {
    let mut request = client
        .post(uri.to_owned())
        .header(ContentType::JSON)
        .body(body);
    if let Some(key) = key {
        request = request.header(Header::new("x-api-key", key.to_owned()));
    }
    request.dispatch().await
}

/// Status and body, for one-line assertions.
async fn answer(response: LocalResponse<'_>) -> (Status, String) {
    let status = response.status();
    (status, response.into_string().await.unwrap_or_default())
}

fn json_body(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|error| panic!("not JSON ({error}): {body}"))
}

fn calls(client: &Client) -> (usize, usize) {
    let calls = client
        .rocket()
        .state::<Calls>()
        .expect("`Calls` is managed");
    (
        calls.request_guard.load(Ordering::SeqCst),
        calls.data_guard.load(Ordering::SeqCst),
    )
}

// --- Scope forms -------------------------------------------------------------------------------

#[rocket::async_test]
async fn bare_attribute_accepts_any_valid_key() {
    let client = client().await;

    assert_eq!(
        answer(get_with(&client, "/any-key", None).await).await,
        (Status::Unauthorized, UNAUTHORIZED.to_owned())
    );
    assert_eq!(
        answer(get_with(&client, "/any-key", Some(UNKNOWN)).await).await,
        (Status::Unauthorized, UNAUTHORIZED.to_owned())
    );
    for key in [READER, WRITER, ADMIN] {
        assert_eq!(
            answer(get_with(&client, "/any-key", Some(key)).await).await,
            (Status::Ok, "any key".to_owned())
        );
    }
}

#[rocket::async_test]
async fn single_scope_requires_that_scope() {
    let client = client().await;

    assert_eq!(
        answer(get_with(&client, "/orders", None).await).await,
        (Status::Unauthorized, UNAUTHORIZED.to_owned())
    );
    let (status, body) = answer(get_with(&client, "/orders", Some(ADMIN)).await).await;
    assert_eq!(status, Status::Forbidden);
    let body = json_body(&body);
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(body["required_scopes"], json!(["read:orders"]));
    for key in [READER, WRITER] {
        assert_eq!(
            answer(get_with(&client, "/orders", Some(key)).await).await,
            (Status::Ok, "orders".to_owned())
        );
    }
}

#[rocket::async_test]
async fn all_requires_every_scope() {
    let client = client().await;

    assert_eq!(
        answer(get_with(&client, "/all", None).await).await,
        (Status::Unauthorized, UNAUTHORIZED.to_owned())
    );
    for key in [READER, ADMIN] {
        let (status, body) = answer(get_with(&client, "/all", Some(key)).await).await;
        assert_eq!(status, Status::Forbidden);
        assert_eq!(
            json_body(&body)["required_scopes"],
            json!(["read:orders", "write:orders"])
        );
    }
    assert_eq!(
        answer(get_with(&client, "/all", Some(WRITER)).await).await,
        (Status::Ok, "all".to_owned())
    );
}

#[rocket::async_test]
async fn any_requires_one_of_the_scopes() {
    let client = client().await;

    assert_eq!(
        answer(get_with(&client, "/any", None).await).await,
        (Status::Unauthorized, UNAUTHORIZED.to_owned())
    );
    let (status, body) = answer(get_with(&client, "/any", Some(READER)).await).await;
    assert_eq!(status, Status::Forbidden);
    assert_eq!(
        json_body(&body)["required_scopes"],
        json!(["write:orders", "admin"])
    );
    for key in [WRITER, ADMIN] {
        assert_eq!(
            answer(get_with(&client, "/any", Some(key)).await).await,
            (Status::Ok, "any".to_owned())
        );
    }
}

// --- Order of guards ---------------------------------------------------------------------------

#[rocket::async_test]
async fn key_is_checked_before_the_handlers_own_guards() {
    let client = client().await;

    assert_eq!(
        post_with(&client, "/recorded", None, "hello")
            .await
            .status(),
        Status::Unauthorized
    );
    assert_eq!(
        post_with(&client, "/recorded", Some(UNKNOWN), "hello")
            .await
            .status(),
        Status::Unauthorized
    );
    assert_eq!(
        post_with(&client, "/recorded", Some(READER), "hello")
            .await
            .status(),
        Status::Forbidden
    );
    assert_eq!(
        calls(&client),
        (0, 0),
        "a rejected request ran the handler's guards"
    );

    assert_eq!(
        answer(post_with(&client, "/recorded", Some(WRITER), "hello").await).await,
        (Status::Ok, "hello".to_owned())
    );
    assert_eq!(calls(&client), (1, 1));
}

#[rocket::async_test]
async fn key_is_checked_before_the_body_is_parsed() {
    let client = client().await;
    let malformed = r#"{"item": "#;

    // Without a key, a body that would fail to parse is never looked at.
    assert_eq!(
        answer(post_with(&client, "/orders", None, malformed).await).await,
        (Status::Unauthorized, UNAUTHORIZED.to_owned())
    );
    assert_eq!(
        post_with(&client, "/orders", Some(READER), malformed)
            .await
            .status(),
        Status::Forbidden
    );

    // With a good key, the body is parsed and its error is the answer.
    let status = post_with(&client, "/orders", Some(WRITER), malformed)
        .await
        .status();
    assert!(matches!(status.code, 400 | 422), "{status}");
    let (status, body) =
        answer(post_with(&client, "/orders", Some(WRITER), r#"{"item":"tea"}"#).await).await;
    assert_eq!(
        (status, json_body(&body)),
        (Status::Ok, json!({ "item": "tea" }))
    );
}

// --- Handler shapes ----------------------------------------------------------------------------

#[rocket::async_test]
async fn handlers_in_one_module_keep_their_own_scopes() {
    let client = client().await;

    // `GET /orders` needs read, `POST /orders` needs write: the reader gets only the first.
    assert_eq!(
        get_with(&client, "/orders", Some(READER)).await.status(),
        Status::Ok
    );
    let (status, body) =
        answer(post_with(&client, "/orders", Some(READER), r#"{"item":"tea"}"#).await).await;
    assert_eq!(status, Status::Forbidden);
    assert_eq!(json_body(&body)["required_scopes"], json!(["write:orders"]));
}

#[rocket::async_test]
async fn long_scopes_and_lists_keep_every_scope_in_order() {
    let client = client().await;

    let (status, body) = answer(get_with(&client, "/longest-scope", Some(ADMIN)).await).await;
    assert_eq!(status, Status::Forbidden);
    assert_eq!(
        json_body(&body)["required_scopes"],
        json!(["longest-scope:0123456789abcdefghijklmnopqrstuvwxyz/ABCDEFGHIJKLM"])
    );
    for (uri, listed) in [
        (
            "/eight-scopes",
            json!(["s1", "s2", "s3", "s4", "s5", "s6", "s7", "read:orders"]),
        ),
        (
            "/nine-scopes",
            json!([
                "s1",
                "s2",
                "s3",
                "s4",
                "s5",
                "s6",
                "s7",
                "s8",
                "read:orders"
            ]),
        ),
    ] {
        let (status, body) = answer(get_with(&client, uri, Some(ADMIN)).await).await;
        assert_eq!(status, Status::Forbidden, "{uri}");
        assert_eq!(json_body(&body)["required_scopes"], listed, "{uri}");
        assert_eq!(json_body(&body)["match"], "any", "{uri}");
        assert_eq!(
            get_with(&client, uri, Some(READER)).await.status(),
            Status::Ok,
            "{uri}"
        );
    }
}

#[rocket::async_test]
async fn handler_can_ask_which_key_was_used() {
    let client = client().await;

    for (key, name) in [(READER, "reader"), (WRITER, "writer")] {
        assert_eq!(
            answer(get_with(&client, "/whoami", Some(key)).await).await,
            (Status::Ok, name.to_owned())
        );
    }
    assert_eq!(
        get_with(&client, "/whoami", Some(ADMIN)).await.status(),
        Status::Forbidden
    );
}

#[rocket::async_test]
async fn path_query_and_data_reach_the_handler() {
    let client = client().await;
    let uri = "/shops/acme/orders?dry_run=true";

    assert_eq!(
        answer(post_with(&client, uri, None, r#"{"item":"tea"}"#).await).await,
        (Status::Unauthorized, UNAUTHORIZED.to_owned())
    );
    let (status, body) =
        answer(post_with(&client, uri, Some(WRITER), r#"{"item":"tea"}"#).await).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(
        json_body(&body),
        json!({ "shop": "acme", "dry_run": true, "item": "tea" })
    );
}

// --- Over HTTP ---------------------------------------------------------------------------------

#[rocket::async_test]
async fn over_http() {
    let config = Config {
        port: 0,
        log_level: rocket::config::LogLevel::Off,
        ..Config::debug_default()
    };
    let (port_tx, port_rx) = rocket::tokio::sync::oneshot::channel();
    let port_tx = std::sync::Mutex::new(Some(port_tx));
    let rocket =
        app(rocket::custom(config)).attach(AdHoc::on_liftoff("Report port", move |rocket| {
            Box::pin(async move {
                // At liftoff, `port` is the one the OS bound for `port: 0`.
                if let Some(tx) = port_tx.lock().ok().and_then(|mut tx| tx.take()) {
                    let _ = tx.send(rocket.config().port);
                }
            })
        }));
    let rocket = rocket.ignite().await.expect("the test application ignites");
    let shutdown = rocket.shutdown();
    let server = rocket::tokio::spawn(rocket.launch());
    let port = port_rx.await.expect("the server lifts off");

    let answers = rocket::tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let get = |path: &str, key: Option<&str>| {
            let mut request = agent.get(format!("{base}{path}"));
            if let Some(key) = key {
                request = request.header("x-api-key", key);
            }
            let mut response = request.call().expect("the server answers");
            let status = response.status().as_u16();
            (
                status,
                response.body_mut().read_to_string().expect("a text body"),
            )
        };
        let created = agent
            .post(format!("{base}/shops/acme/orders?dry_run=false"))
            .header("x-api-key", WRITER)
            .send_json(json!({ "item": "tea" }))
            .expect("the server answers")
            .body_mut()
            .read_json::<Value>()
            .expect("a JSON body");
        (
            get("/orders", None),
            get("/orders", Some(ADMIN)),
            get("/whoami", Some(READER)),
            created,
        )
    })
    .await
    .expect("the HTTP client does not panic");

    shutdown.notify();
    server
        .await
        .expect("the server task completes")
        .expect("the server shuts down cleanly");

    let (missing, forbidden, whoami, created) = answers;
    assert_eq!(missing, (401, UNAUTHORIZED.to_owned()));
    assert_eq!(forbidden.0, 403);
    assert_eq!(
        json_body(&forbidden.1)["required_scopes"],
        json!(["read:orders"])
    );
    assert_eq!(whoami, (200, "reader".to_owned()));
    assert_eq!(
        created,
        json!({ "shop": "acme", "dry_run": false, "item": "tea" })
    );
}
