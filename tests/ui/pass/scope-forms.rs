#![deny(warnings)]

use rocket::get;
use rocket_api_key::require_api_key;

#[require_api_key]
#[get("/any-key")]
fn any_key() {}

#[require_api_key(scope = "read:orders")]
#[get("/one")]
fn one_scope() {}

#[require_api_key(scope = all("read:orders", "write:orders"))]
#[get("/all")]
fn all_scopes() {}

#[require_api_key(scope = any("read:orders", "admin",))]
#[get("/any")]
fn any_scope() {}

#[require_api_key(scope = "A-Z_a-z.0-9:/-")]
#[get("/every-character")]
fn every_character() {}

fn main() {
    let _ = rocket::routes![any_key, one_scope, all_scopes, any_scope, every_character];
}
