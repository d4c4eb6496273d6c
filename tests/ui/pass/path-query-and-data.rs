#![deny(warnings)]

use std::path::PathBuf;

use rocket::serde::json::Json;
use rocket::{post, FromForm};
use rocket_api_key::require_api_key;
use serde::Deserialize;

#[derive(Deserialize)]
struct Order {
    item: String,
}

#[derive(FromForm)]
struct Paging {
    page: Option<u32>,
}

#[require_api_key(scope = "write:orders")]
#[post("/shops/<shop>/orders?<dry_run>&<paging..>", data = "<order>")]
fn create_order(shop: &str, dry_run: bool, paging: Paging, order: Json<Order>) -> String {
    format!("{shop} {dry_run} {:?} {}", paging.page, order.item)
}

#[require_api_key]
#[post("/files/<path..>", data = "<body>")]
fn upload(path: PathBuf, body: String) -> String {
    format!("{} {body}", path.display())
}

fn main() {
    let _ = rocket::routes![create_order, upload];
}
