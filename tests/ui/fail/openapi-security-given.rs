// The attribute writes the operation's `security` into `#[utoipa::path]`: one written there as
// well would leave utoipa to keep either, silently.
use rocket::get;
use rocket_api_key::require_api_key;

#[require_api_key(scope = "read:orders")]
#[utoipa::path(security(("api_key" = ["read:orders"])), responses((status = 200)))]
#[get("/orders")]
fn list_orders() {}

fn main() {
    let _ = rocket::routes![list_orders];
}
