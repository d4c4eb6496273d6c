#![deny(warnings)]

use rocket::serde::json::Json;
use rocket::{get, post};
use rocket_api_key::require_api_key;

#[require_api_key(scope = "read:orders")]
#[get("/orders", rank = 2)]
fn ranked() {}

#[require_api_key(scope = "write:orders")]
#[post("/orders", format = "json", data = "<body>", rank = 1)]
fn formatted(body: Json<Vec<u32>>) -> Json<usize> {
    Json(body.len())
}

fn main() {
    let _ = rocket::routes![ranked, formatted];
}
