use rocket::get;
use rocket_api_key::require_api_key;

#[require_api_key(crate = "rocket api key")]
#[get("/a")]
fn spaced() {}

#[require_api_key(crate = rocket_api_key)]
#[get("/b")]
fn unquoted() {}

fn main() {
    let _ = rocket::routes![spaced, unquoted];
}
