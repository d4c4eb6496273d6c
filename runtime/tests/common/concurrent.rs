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

/// Runs `test` on a runtime of four worker threads, so that requests spawned as tasks run in
/// parallel on every core (Rocket's `async_test` has a single worker, on which requests that
/// never wait could not interleave), and gives up after two minutes rather than hang.
pub fn parallel<F: std::future::Future<Output = ()> + Send>(test: F) {
    rocket::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            rocket::tokio::time::timeout(std::time::Duration::from_secs(120), test)
                .await
                .expect("the test finished within two minutes")
        });
}

/// `n` distinct wrong keys.
pub fn guesses(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("guess-{i:04}-0123456789abcdef"))
        .collect()
}

/// Floods of 50, 300 and 1000 wrong keys at once, each from its own address, against a limit of
/// 5 failures per hour: exactly 5 of each are answered 401 and the rest 429, and the address
/// then gets 429 with the valid key `valid` too. `backend` names the run in the output.
pub async fn exactly_the_limit_of_guesses(c: &Arc<Client>, valid: &str, backend: &str) {
    let mut results = Vec::new();
    for (n, attacker) in [
        (50, "203.0.113.50:1"),
        (300, "203.0.113.51:1"),
        (1000, "203.0.113.52:1"),
    ] {
        let counts = flood(c, guesses(n), attacker).await;
        eprintln!("{backend}, {n} concurrent wrong keys: {counts:?}");
        let after = flood(c, vec![valid.to_owned()], attacker).await;
        results.push((n, counts, after));
    }
    // Every size is tried before any is judged, so that a failure reports them all.
    for (n, counts, after) in results {
        assert_eq!(counts, BTreeMap::from([(401, 5), (429, n - 5)]), "n = {n}");
        assert_eq!(
            after,
            BTreeMap::from([(429, 1)]),
            "n = {n}: blocked, valid key or not"
        );
    }
}

/// Valid keys (`valid`) sent at once with or without guesses, against a limit of 5 failures
/// per hour, are never counted as failures.
pub async fn valid_keys_are_no_failures(c: &Arc<Client>, valid: &str, backend: &str) {
    // Five valid keys at once, then five wrong ones: the wrong ones are all answered 401.
    let client = "198.51.100.1:1";
    let ok = flood(c, vec![valid.to_owned(); 5], client).await;
    assert_eq!(ok, BTreeMap::from([(200, 5)]));
    let wrong = flood(c, guesses(5), client).await;
    assert_eq!(wrong, BTreeMap::from([(401, 5)]));
    let after = flood(c, vec![valid.to_owned()], client).await;
    assert_eq!(after, BTreeMap::from([(429, 1)]));

    // Many more valid requests at once than the limit: none is refused, because none is a
    // failure (a limit that held back an attempt for every request in flight would refuse a
    // busy client that never failed).
    let busy = "198.51.100.2:1";
    let ok = flood(c, vec![valid.to_owned(); 200], busy).await;
    assert_eq!(ok, BTreeMap::from([(200, 200)]));
    let wrong = flood(c, guesses(5), busy).await;
    assert_eq!(wrong, BTreeMap::from([(401, 5)]));

    // Mixed: exactly five guesses are answered 401; a valid key is let through or refused with
    // the rest, never mistaken for a failure.
    let mixed_client = "198.51.100.3:1";
    let mut mixed = guesses(300);
    for i in 0..100 {
        mixed.insert(i * 3, valid.to_owned());
    }
    let counts = flood(c, mixed, mixed_client).await;
    eprintln!("{backend}, 300 wrong and 100 valid keys at once: {counts:?}");
    assert_eq!(counts.get(&401), Some(&5), "{counts:?}");
    let others = counts.get(&200).unwrap_or(&0) + counts.get(&429).unwrap_or(&0);
    assert_eq!(others, 395, "{counts:?}");
    let after = flood(c, vec![valid.to_owned()], mixed_client).await;
    assert_eq!(after, BTreeMap::from([(429, 1)]));
}
