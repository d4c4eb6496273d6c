use rocket::get;
use rocket_api_key::require_api_key;

#[require_api_key(scope = "orders:read:every-order-of-every-customer-in-every-region-since-2001")]
#[get("/orders")]
fn list_orders() {}

fn main() {
    let _ = rocket::routes![list_orders];
}
