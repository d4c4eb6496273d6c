#![deny(warnings)]

use rocket::{delete, get, head, options, patch, post, put, route};
use rocket_api_key::require_api_key;

#[require_api_key(scope = "a")]
#[get("/")]
fn on_get() {}

#[require_api_key(scope = "a")]
#[post("/")]
fn on_post() {}

#[require_api_key(scope = "a")]
#[put("/")]
fn on_put() {}

#[require_api_key(scope = "a")]
#[delete("/")]
fn on_delete() {}

#[require_api_key(scope = "a")]
#[patch("/")]
fn on_patch() {}

#[require_api_key(scope = "a")]
#[head("/")]
fn on_head() {}

#[require_api_key(scope = "a")]
#[options("/")]
fn on_options() {}

#[require_api_key(scope = "a")]
#[route(GET, uri = "/route")]
fn on_route() {}

#[require_api_key(scope = "a")]
#[rocket::get("/qualified")]
fn on_qualified() {}

#[require_api_key(scope = "a")]
#[::rocket::route(POST, uri = "/qualified")]
fn on_qualified_route() {}

fn main() {
    let _ = rocket::routes![
        on_get,
        on_post,
        on_put,
        on_delete,
        on_patch,
        on_head,
        on_options,
        on_route,
        on_qualified,
        on_qualified_route
    ];
}
