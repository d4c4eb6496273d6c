use rocket::get;
use rocket_api_key::require_api_key;

#[require_api_key(scope = all())]
#[get("/a")]
fn all_of_nothing() {}

#[require_api_key(scope = any())]
#[get("/b")]
fn any_of_nothing() {}

fn main() {
    let _ = rocket::routes![all_of_nothing, any_of_nothing];
}
