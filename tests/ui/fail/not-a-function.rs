use rocket_api_key::require_api_key;

#[require_api_key]
struct Orders;

#[require_api_key]
impl Orders {}

#[require_api_key]
mod orders {}

#[require_api_key]
const LIMIT: usize = 10;

fn main() {
    let _ = (Orders, LIMIT);
}
