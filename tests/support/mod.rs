//! A Rocket instance on an ephemeral loopback port, for tests over real HTTP.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rocket::fairing::AdHoc;
use rocket::{Build, Rocket, Shutdown};
use rocket_api_key::ApiKeyStore;

/// A running server; shut down and joined when dropped.
pub struct Server {
    pub base: String,
    /// The server's key store, for assertions on what it holds.
    pub keys: ApiKeyStore,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(rocket: Rocket<Build>) -> Server {
        let config = rocket::Config {
            address: Ipv4Addr::LOCALHOST.into(),
            port: 0,
            log_level: rocket::config::LogLevel::Off,
            ..rocket::Config::debug_default()
        };
        let (tx, rx) = mpsc::channel();
        let rocket = rocket
            .configure(config)
            .attach(AdHoc::on_liftoff("test port", move |r| {
                let keys = r
                    .state::<ApiKeyStore>()
                    .cloned()
                    .expect("the API keys fairing is attached");
                let _ = tx.send((r.config().port, keys, r.shutdown()));
                Box::pin(async {})
            }));
        let thread = std::thread::spawn(move || {
            if let Err(e) = rocket::execute(rocket.launch()) {
                panic!("the server failed to launch: {e}");
            }
        });
        let (port, keys, shutdown) = rx.recv().expect("the server reached liftoff");
        Server {
            base: format!("http://127.0.0.1:{port}"),
            keys,
            shutdown,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A real HTTP client that returns 4xx/5xx answers instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET `url` with an optional `x-api-key`; the status and body.
pub fn get(agent: &ureq::Agent, url: &str, key: Option<&str>) -> (u16, String) {
    let mut req = agent.get(url);
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    let mut response = req.call().expect("a response");
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}
