use rocket::get;
use rocket_api_key::require_api_key;

#[require_api_key(scope = 42)]
#[get("/a")]
fn number() {}

#[require_api_key(scope = read)]
#[get("/b")]
fn identifier() {}

#[require_api_key(scope = read:orders)]
#[get("/c")]
fn unquoted() {}

#[require_api_key(scope = all("read:orders", write))]
#[get("/d")]
fn in_list() {}

fn main() {
    let _ = rocket::routes![number, identifier, unquoted, in_list];
}
