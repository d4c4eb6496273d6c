//! The orders API: everything but `main`, so the end-to-end test can launch the same app.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use rocket::http::Status;
use rocket::response::status::{Created, Custom};
use rocket::serde::json::{self, json, Json, Value};
use rocket::serde::{Deserialize, Serialize};
use rocket::{catch, catchers, get, post, routes, Build, Request, Rocket, State};
use rocket_api_key::openapi::{ApiKeySecurity, API_KEY_SECURITY};
use rocket_api_key::{
    require_api_key, usage::UsageReport, ApiKey, ApiKeyStore, ApiKeyStoreBuilder,
};

/// Every scope the example's routes use (the demo key gets them all).
pub const SCOPES: &[&str] = &["read:orders", "write:orders", "admin"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(crate = "rocket::serde")]
pub struct Order {
    pub id: u64,
    pub item: String,
    pub quantity: u32,
}

#[derive(Debug, Deserialize)]
#[serde(crate = "rocket::serde", deny_unknown_fields)]
pub struct NewOrder {
    item: String,
    quantity: u32,
}

#[derive(Default)]
pub struct Orders(Mutex<BTreeMap<u64, Order>>);

type JsonError = Custom<Json<Value>>;

fn error(status: Status, message: impl Into<String>) -> JsonError {
    Custom(status, Json(json!({ "error": message.into() })))
}

#[utoipa::path(responses((status = 200, description = "The service is up")))]
#[get("/health")]
fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The Flask recipe's route, with its exact answers.
#[require_api_key]
#[utoipa::path(responses((status = 200, description = "The Flask recipe's secured data")))]
#[get("/secure-data")]
fn secure_data() -> Json<Value> {
    Json(json!({ "data": "This is secured data" }))
}

#[require_api_key(scope = "read:orders")]
#[utoipa::path(responses((status = 200, description = "Every order")))]
#[get("/orders")]
fn list_orders(orders: &State<Orders>) -> Json<Vec<Order>> {
    let orders = orders.0.lock().unwrap_or_else(|e| e.into_inner());
    Json(orders.values().cloned().collect())
}

#[require_api_key(scope = "read:orders")]
#[utoipa::path(responses(
    (status = 200, description = "The order"),
    (status = 404, description = "No such order")
))]
#[get("/orders/<id>")]
fn get_order(id: u64, orders: &State<Orders>) -> Result<Json<Order>, JsonError> {
    let orders = orders.0.lock().unwrap_or_else(|e| e.into_inner());
    match orders.get(&id) {
        Some(order) => Ok(Json(order.clone())),
        None => Err(error(Status::NotFound, format!("no order {id}"))),
    }
}

#[require_api_key(scope = "write:orders")]
#[utoipa::path(responses(
    (status = 201, description = "The order, created"),
    (status = 422, description = "Not a valid order")
))]
#[post("/orders", format = "json", data = "<order>")]
fn create_order(
    key: ApiKey,
    order: Result<Json<NewOrder>, json::Error<'_>>,
    orders: &State<Orders>,
) -> Result<Created<Json<Order>>, JsonError> {
    let NewOrder { item, quantity } = match order {
        Ok(Json(order)) => order,
        Err(json::Error::Io(_)) => {
            return Err(error(Status::BadRequest, "the body could not be read"))
        }
        Err(json::Error::Parse(_, e)) => {
            return Err(error(
                Status::UnprocessableEntity,
                format!("invalid order: {e}"),
            ))
        }
    };
    let item = item.trim();
    if item.is_empty() {
        return Err(error(
            Status::UnprocessableEntity,
            "invalid order: `item` must not be empty",
        ));
    }
    if quantity == 0 {
        return Err(error(
            Status::UnprocessableEntity,
            "invalid order: `quantity` must be positive",
        ));
    }
    let mut orders = orders.0.lock().unwrap_or_else(|e| e.into_inner());
    let id = orders.last_key_value().map_or(1, |(id, _)| id + 1);
    let order = Order {
        id,
        item: item.to_owned(),
        quantity,
    };
    orders.insert(id, order.clone());
    rocket::info!("order {id} created with key {}", key.name());
    Ok(Created::new(format!("/orders/{id}")).body(Json(order)))
}

#[require_api_key(scope = "admin")]
#[utoipa::path(responses((status = 200, description = "Per-key usage figures")))]
#[get("/admin/usage")]
fn usage(keys: &State<ApiKeyStore>) -> Json<UsageReport> {
    Json(keys.usage())
}

/// The API's OpenAPI document. Each operation's `security` comes from its `#[require_api_key]`;
/// the modifier declares the `api_key` scheme.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(health, secure_data, list_orders, get_order, create_order, usage, metrics),
    modifiers(&API_KEY_SECURITY)
)]
pub struct ApiDoc;

/// The OpenAPI document, open to all like `/health`, naming the header the running store reads
/// (Rocket's configuration may have changed it).
#[get("/openapi.json")]
fn openapi(keys: &State<ApiKeyStore>) -> Json<utoipa::openapi::OpenApi> {
    let mut doc = <ApiDoc as utoipa::OpenApi>::openapi();
    utoipa::Modify::modify(&ApiKeySecurity::of(keys), &mut doc);
    Json(doc)
}

/// The counters and gauges of the API-key layer (and of anything else that records through
/// `metrics`), in Prometheus' text format.
#[require_api_key(scope = "admin")]
#[utoipa::path(responses((status = 200, description = "Prometheus text format")))]
#[get("/metrics")]
fn metrics(prometheus: &State<PrometheusHandle>) -> String {
    prometheus.render()
}

/// The process's Prometheus recorder, installed at the first call: a process has one global
/// recorder. Installed before the application ignites, so every series goes to it.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
}

/// JSON for every other error status (404, 400, 415, 422, 500, …). 401 and 403 are answered
/// by the API-key layer's own catchers.
#[catch(default)]
fn json_default(status: Status, _req: &Request<'_>) -> Json<Value> {
    Json(json!({ "error": status.reason_lossy() }))
}

/// The application, with its keys configured by `keys`.
pub fn rocket(keys: ApiKeyStoreBuilder) -> Rocket<Build> {
    rocket::build()
        .attach(keys.fairing())
        .manage(Orders::default())
        .manage(prometheus())
        .mount(
            "/",
            routes![
                health,
                secure_data,
                list_orders,
                get_order,
                create_order,
                usage,
                openapi,
                metrics
            ],
        )
        .register("/", catchers![json_default])
}
