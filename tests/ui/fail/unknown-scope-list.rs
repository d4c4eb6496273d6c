use rocket::get;
use rocket_api_key::require_api_key;

#[require_api_key(scope = one_of("read:orders", "admin"))]
#[get("/a")]
fn one_of() {}

#[require_api_key(scope = alll("read:orders", "admin"))]
#[get("/b")]
fn typo() {}

fn main() {
    let _ = rocket::routes![one_of, typo];
}
