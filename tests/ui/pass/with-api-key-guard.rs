#![deny(warnings)]

use rocket::get;
use rocket_api_key::{require_api_key, ApiKey};

#[require_api_key(scope = "read:orders")]
#[get("/whoami")]
fn whoami(key: ApiKey) -> String {
    format!("{} {:?}", key.name(), key.scopes())
}

fn main() {
    let _ = rocket::routes![whoami];
}
