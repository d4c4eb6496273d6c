// A method can never be a Rocket route, with or without a route attribute: Rocket itself
// rejects `self`, so the attribute says so first.
use rocket_api_key::require_api_key;

struct Orders;

impl Orders {
    #[require_api_key(scope = "read:orders")]
    fn list(&self) {}
}

fn main() {
    Orders.list();
}
