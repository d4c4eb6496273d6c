// An application that forbids unsafe code can use the attribute: what it expands to (the
// launch audit's registration included) is accepted under `forbid(unsafe_code)`.
#![forbid(unsafe_code)]
#![deny(warnings)]

use rocket::get;
use rocket_api_key::require_api_key;

#[require_api_key(scope = "read:orders")]
#[get("/orders")]
fn orders() -> &'static str {
    "[]"
}

fn main() {
    // A handler declared inside a function is registered too.
    #[require_api_key]
    #[get("/inner")]
    fn inner() {}

    let _ = rocket::routes![orders, inner];
}
