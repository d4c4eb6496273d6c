use rocket::catch;
use rocket_api_key::require_api_key;

#[require_api_key]
#[catch(404)]
fn not_found() -> &'static str {
    "not found"
}

fn main() {
    let _ = rocket::catchers![not_found];
}
