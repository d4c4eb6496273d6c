#![deny(warnings)]

// Handlers of the same name in different modules, and hidden items that must not clash with the
// ones Rocket generates.
mod orders {
    use rocket::get;
    use rocket_api_key::require_api_key;

    #[require_api_key(scope = "read:orders")]
    #[get("/orders")]
    pub fn list() {}
}

mod invoices {
    use rocket::get;
    use rocket_api_key::require_api_key;

    #[require_api_key(scope = "read:invoices")]
    #[get("/invoices")]
    pub fn list() {}

    #[require_api_key(scope = "read:invoices")]
    #[get("/invoices/<id>")]
    pub fn r#type(id: u64) -> String {
        id.to_string()
    }
}

fn main() {
    let _ = rocket::routes![orders::list, invoices::list, invoices::r#type];
}
