//! Keys, routes and helpers shared by the runtime's integration tests.
#![allow(dead_code)]

mod captured;
#[allow(unused_imports)] // Not every test binary reads the logs.
pub use captured::Captured;

use std::net::SocketAddr;

use rocket::http::{Header, Status};
use rocket::local::blocking::{Client, LocalResponse};
use rocket::request::{self, FromRequest, Request};
use rocket::{get, routes, State};
use rocket_api_key_runtime::{
    keygen::KeyDigest, scope::RequiredScopes, scope::ScopeRequirement, ApiKey, ApiKeyStore,
    ApiKeyStoreBuilder, Authorized, Rejection,
};

pub const READER: &str = "reader-key-0123456789abcdef";
pub const WRITER: &str = "writer-key-0123456789abcdef";
pub const ADMIN: &str = "admin-key-0123456789abcdef";
pub const EXPIRED: &str = "expired-key-0123456789abcdef";
pub const LATER: &str = "later-key-0123456789abcdef";
pub const OFFICE: &str = "office-key-0123456789abcdef";

pub struct ReadOrders;
impl RequiredScopes for ReadOrders {
    const REQUIREMENT: ScopeRequirement = ScopeRequirement::AllOf(&["read:orders"]);
}
pub struct ReadWrite;
impl RequiredScopes for ReadWrite {
    const REQUIREMENT: ScopeRequirement = ScopeRequirement::AllOf(&["read:orders", "write:orders"]);
}
pub struct AdminOrWriter;
impl RequiredScopes for AdminOrWriter {
    const REQUIREMENT: ScopeRequirement = ScopeRequirement::AnyOf(&["admin", "write:orders"]);
}

#[get("/any")]
pub fn any(key: Authorized) -> String {
    key.name().to_owned()
}
#[get("/read")]
pub fn read(key: Authorized<ReadOrders>) -> String {
    key.name().to_owned()
}
#[get("/both")]
pub fn both(_key: Authorized<ReadWrite>) -> &'static str {
    "ok"
}
#[get("/either")]
pub fn either(_key: Authorized<AdminOrWriter>) -> &'static str {
    "ok"
}
#[get("/whoami")]
pub fn whoami(key: ApiKey) -> String {
    format!("{} {}", key.name(), key.scopes().join(","))
}
#[get("/scoped-whoami")]
pub fn scoped_whoami(_guard: Authorized<ReadOrders>, key: ApiKey) -> String {
    key.name().to_owned()
}
#[get("/usage")]
pub fn usage(keys: &State<ApiKeyStore>) -> String {
    serde_json::to_string(&keys.usage()).unwrap()
}

pub fn keys() -> ApiKeyStoreBuilder {
    ApiKeyStore::builder()
        .from_env(false)
        .key("reader", format!("{READER};scopes=read:orders"))
        .key(
            "writer",
            format!(
                "{};scopes=read:orders,write:orders",
                KeyDigest::of(WRITER.as_bytes()).to_entry()
            ),
        )
        .key("admin", format!("{ADMIN};scopes=admin"))
        .key("expired", format!("{EXPIRED};expires=2000-01-01T00:00:00Z"))
        .key("later", format!("{LATER};expires=2999-01-01T00:00:00Z"))
        .key("office", format!("{OFFICE};ips=10.0.0.0/8,2001:db8::/32"))
}

pub fn app(builder: ApiKeyStoreBuilder) -> rocket::Rocket<rocket::Build> {
    rocket::build().attach(builder.fairing()).mount(
        "/",
        routes![any, read, both, either, whoami, scoped_whoami, usage],
    )
}

pub fn client(builder: ApiKeyStoreBuilder) -> Client {
    Client::tracked(app(builder)).expect("valid rocket")
}

/// Three independent mistakes in the `api_keys` table, as an operator might make them at once.
pub fn three_mistakes() -> rocket::figment::Figment {
    rocket::figment::Figment::from(rocket::Config::debug_default())
        .merge(("api_keys.header", "bad header"))
        .merge(("api_keys.reload_interval", "500ms"))
        .merge(("api_keys.failure_limit", "30/m"))
}

/// Whether ignition fails, and why (inspecting the error keeps Rocket from panicking on drop).
pub fn ignition_error(rocket: rocket::Rocket<rocket::Build>) -> Option<String> {
    Client::tracked(rocket)
        .err()
        .map(|e| format!("{:?}", e.kind()))
}

pub fn get_with<'c>(client: &'c Client, path: &str, headers: &[(&str, &str)]) -> LocalResponse<'c> {
    let mut req = client.get(path.to_owned());
    for (name, value) in headers {
        req.add_header(Header::new(name.to_string(), value.to_string()));
    }
    req.dispatch()
}

pub fn key(value: &str) -> [(&'static str, &str); 1] {
    [("x-api-key", value)]
}

pub fn from(c: &Client, path: &str, addr: &str, headers: &[(&str, &str)]) -> Status {
    let mut req = c
        .get(path.to_owned())
        .remote(addr.parse::<SocketAddr>().unwrap());
    for (name, value) in headers {
        req.add_header(Header::new(name.to_string(), value.to_string()));
    }
    req.dispatch().status()
}

/// An application guard that wraps ours: no sentinel sees it, so the runtime check must hold.
pub struct Wrapped(pub ApiKey);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Wrapped {
    type Error = Rejection;
    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Rejection> {
        req.guard::<ApiKey>().await.map(Wrapped)
    }
}

#[get("/wrapped")]
pub fn wrapped(key: Wrapped) -> String {
    key.0.name().to_owned()
}
