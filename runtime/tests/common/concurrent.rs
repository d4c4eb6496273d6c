//! Many requests at once, for the tests that race guesses against a limit. Shared by the
//! runtime's tests and the Redis tests of the root package (`#[path]`), so both send the same
//! flood.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rocket::http::Header;
use rocket::local::asynchronous::Client;

/// Sends every key at once to `/any` from `peer`, one task per request, and counts the answers
/// by status.
pub async fn flood(c: &Arc<Client>, keys: Vec<String>, peer: &str) -> BTreeMap<u16, usize> {
    let peer: SocketAddr = peer.parse().unwrap();
    let tasks: Vec<_> = keys
        .into_iter()
        .map(|key| {
            let c = c.clone();
            rocket::tokio::spawn(async move {
                c.get("/any")
                    .header(Header::new("x-api-key", key))
                    .remote(peer)
                    .dispatch()
                    .await
                    .status()
                    .code
            })
        })
        .collect();
    let mut counts = BTreeMap::new();
    for task in tasks {
        *counts.entry(task.await.unwrap()).or_insert(0) += 1;
    }
    counts
}

/// `n` distinct wrong keys.
pub fn guesses(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("guess-{i:04}-0123456789abcdef"))
        .collect()
}
