#![deny(warnings)]

pub mod api {
    use rocket::get;
    use rocket_api_key::require_api_key;

    #[require_api_key(scope = "read:orders")]
    #[get("/public")]
    pub fn public() {}

    #[require_api_key(scope = "read:orders")]
    #[get("/crate")]
    pub(crate) fn in_crate() {}

    #[require_api_key(scope = "read:orders")]
    #[get("/super")]
    pub(super) fn in_parent() {}

    pub fn routes() -> Vec<rocket::Route> {
        rocket::routes![public, in_crate, in_parent, private]
    }

    #[require_api_key(scope = "read:orders")]
    #[get("/private")]
    fn private() {}
}

fn main() {
    let _ = rocket::routes![api::public, api::in_crate, api::in_parent];
    let _ = api::routes();
}
