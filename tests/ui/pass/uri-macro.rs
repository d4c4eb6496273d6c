#![deny(warnings)]

use rocket::{get, uri};
use rocket_api_key::require_api_key;

#[require_api_key(scope = "read:orders")]
#[get("/shops/<shop>/orders/<id>?<verbose>")]
fn order(shop: &str, id: u64, verbose: Option<bool>) -> String {
    format!("{shop} {id} {verbose:?}")
}

#[require_api_key]
#[get("/")]
fn index() {}

fn main() {
    let _ = rocket::routes![order, index];
    // Rocket leaves request guards out of `uri!`: the handler's own arguments suffice.
    assert_eq!(
        uri!(order("acme", 7, Some(true))).to_string(),
        "/shops/acme/orders/7?verbose=true"
    );
    assert_eq!(
        uri!(order(shop = "acme", id = 7, verbose = _)).to_string(),
        "/shops/acme/orders/7"
    );
    assert_eq!(uri!(index()).to_string(), "/");
}
