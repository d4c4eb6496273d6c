#![deny(warnings)]

// As if `Cargo.toml` said `keys = { package = "rocket-api-key", … }`.
extern crate rocket_api_key as keys;

use keys::require_api_key;
use rocket::get;

#[require_api_key(scope = "read:orders", crate = "keys")]
#[get("/a")]
fn scoped() {}

#[require_api_key(crate = "::keys")]
#[get("/b")]
fn any_key() {}

fn main() {
    let _ = rocket::routes![scoped, any_key];
}
