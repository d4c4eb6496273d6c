#![deny(warnings)]

use rocket::get;
use rocket_api_key::require_api_key;

#[require_api_key(scope = "read:orders")]
#[get("/sync")]
fn sync_handler() -> &'static str {
    "sync"
}

#[require_api_key(scope = "read:orders")]
#[get("/async")]
async fn async_handler() -> &'static str {
    rocket::tokio::task::yield_now().await;
    "async"
}

fn main() {
    let _ = rocket::routes![sync_handler, async_handler];
}
