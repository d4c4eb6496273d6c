use rocket::get;
use rocket_api_key::require_api_key;

#[require_api_key(scope = "read orders")]
#[get("/orders")]
fn list_orders() {}

#[require_api_key(scope = any("orders:*", "admin"))]
#[get("/orders/<id>")]
fn order(id: u64) -> String {
    id.to_string()
}

fn main() {
    let _ = rocket::routes![list_orders, order];
}
