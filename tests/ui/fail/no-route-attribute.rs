use rocket_api_key::require_api_key;

#[require_api_key(scope = "read:orders")]
fn list_orders() {}

fn main() {
    list_orders();
}
