// Written below `#[get]`, the attribute would expand after Rocket generated the route.
use rocket::get;
use rocket_api_key::require_api_key;

#[get("/orders")]
#[require_api_key]
fn list_orders() {}

fn main() {
    let _ = rocket::routes![list_orders];
}
