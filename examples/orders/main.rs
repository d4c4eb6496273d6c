//! A small orders API protected by `#[require_api_key]`.
//!
//! ```text
//! cargo run --example orders
//! ```
//!
//! With no key configured, it makes one demo key for this run and prints it. Configure your own
//! with `API_KEY_<NAME>=<key>[;scopes=…]` or `API_KEYS_FILE` (see the README).

mod app;

use std::process::ExitCode;

use rocket::fairing::AdHoc;
use rocket_api_key::log_filter::CredentialFilter;
use rocket_api_key::{keygen::GeneratedKey, ApiKeyStore};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Without `RUST_LOG`: launch information and this crate's events, without Rocket's own lines
/// for every request, as Rocket's logger does in a release build: its four INFO lines, and for a
/// refused request its two WARN lines, `Request guard … failed` (logged under the handler's
/// module followed by `::_`) and `Responding with registered … catcher` (under
/// `rocket::server::_`), which repeat what this crate's `request rejected` event says. Under a
/// flood of bad keys those two lines cost more than the whole check; this crate's own event is
/// bounded by `rejected_log_limit`. `RUST_LOG=info` shows everything but Rocket's `debug` lines.
const DEFAULT_LOG: &str = "info,rocket::server=warn,rocket::server::_=error,orders::app::_=error";

#[rocket::main]
async fn main() -> ExitCode {
    let from_env = EnvFilter::try_from_default_env().ok();
    let verbose = from_env
        .as_ref()
        .and_then(|filter| filter.max_level_hint())
        .is_some_and(|level| level > LevelFilter::INFO);
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(DEFAULT_LOG));
    // Rocket prints every request with its headers at `debug`, and a request it cannot parse at
    // `warn`, before any fairing runs: the filter keeps those lines out. `init()` brings Rocket's
    // lines into the subscriber, so Rocket's own logger is not used; an application that keeps
    // Rocket's logger calls `rocket_api_key::log_filter::init()` first instead.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .finish()
        .with(CredentialFilter::default())
        .init();
    if verbose {
        tracing::info!(
            "RUST_LOG asks for debug lines: Rocket's `rocket::server` stays at info, because its \
             debug lines print request headers, API keys included"
        );
    }

    match rocket().launch().await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            // The error lines, not a panic with a backtrace (what `#[launch]` does): a broken
            // key configuration has already been logged line by line by the fairing.
            let _ = e.pretty_print();
            ExitCode::FAILURE
        }
    }
}

fn rocket() -> rocket::Rocket<rocket::Build> {
    let mut keys = ApiKeyStore::builder();
    // Only an empty configuration (environment, keys file, Rocket.toml) gets a demo key; a
    // broken one is left for the fairing to report.
    let unconfigured = keys
        .load(&rocket::Config::figment())
        .is_ok_and(|keys| keys.is_empty());
    let demo_key =
        unconfigured.then(|| GeneratedKey::new().expect("the OS random generator works"));
    if let Some(key) = &demo_key {
        keys = keys.key(
            "demo",
            format!("{};scopes={}", key.entry(), app::SCOPES.join(",")),
        );
    }
    app::rocket(keys).attach(AdHoc::on_liftoff("Demo key", move |rocket| {
        Box::pin(async move {
            if let Some(key) = demo_key {
                let key = key.expose_secret();
                let config = rocket.config();
                let base = format!("http://{}:{}", config.address, config.port);
                println!(
                    "\nNo API key configured: this run uses a demo key with the scopes {}:\n\n    {key}\n\n\
                     Try:\n\n    curl -H 'x-api-key: {key}' {base}/orders\n",
                    app::SCOPES.join(", ")
                );
            }
        })
    }))
}
