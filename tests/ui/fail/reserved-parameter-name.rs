use rocket::get;
use rocket_api_key::require_api_key;

#[require_api_key]
#[get("/orders/<__require_api_key>")]
fn order(__require_api_key: u64) -> String {
    __require_api_key.to_string()
}

fn main() {
    let _ = rocket::routes![order];
}
