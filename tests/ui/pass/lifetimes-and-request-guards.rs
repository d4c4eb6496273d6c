#![deny(warnings)]

use rocket::http::{CookieJar, Method};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{get, State};
use rocket_api_key::require_api_key;

struct UserAgent<'r>(&'r str);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for UserAgent<'r> {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(UserAgent(
            request.headers().get_one("user-agent").unwrap_or(""),
        ))
    }
}

struct Greeting(String);

#[require_api_key(scope = "read:orders")]
#[get("/echo/<name>")]
fn echo<'r>(
    name: &'r str,
    agent: UserAgent<'r>,
    cookies: &CookieJar<'_>,
    method: Method,
) -> String {
    format!("{name} {} {} {method}", agent.0, cookies.iter().count())
}

#[require_api_key]
#[get("/greeting")]
fn greeting<'a>(greeting: &'a State<Greeting>) -> &'a str {
    &greeting.0
}

fn main() {
    let _ = rocket::build()
        .manage(Greeting("hello".to_owned()))
        .mount("/", rocket::routes![echo, greeting]);
}
