use rocket::get;
use rocket_api_key::require_api_key;

#[require_api_key(scope)]
#[get("/orders")]
fn list_orders() {}

fn main() {
    let _ = rocket::routes![list_orders];
}
