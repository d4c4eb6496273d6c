//! Text a client controls, read where it could let a key out or a caller in: the query string
//! the fairing redacts, and the `X-Forwarded-For` list behind a trusted proxy. Never panics; a
//! sensitive value never survives redaction; the parameters keep their number and order; the
//! client address read is never a trusted proxy, and is an address the client list contained.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocket_api_key_runtime::__private::fuzz::{forwarded_for, redact, REDACTED};

const NAMES: [&str; 2] = ["api_key", "token"];

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let names: Vec<String> = NAMES.map(String::from).to_vec();
    let out = redact(input, "x-api-key", &names).unwrap_or_else(|| input.to_owned());
    let before: Vec<&str> = input.split('&').collect();
    let after: Vec<&str> = out.split('&').collect();
    assert_eq!(before.len(), after.len(), "{input:?} -> {out:?}");
    for (b, a) in before.iter().zip(&after) {
        if b != a {
            let kept = b.split_once('=').map_or("", |(name, _)| name);
            assert!(
                *a == REDACTED || *a == format!("{kept}={REDACTED}"),
                "{b:?} -> {a:?}"
            );
        }
        for name in NAMES {
            if let Some(value) = a.strip_prefix(&format!("{name}=")) {
                assert!(
                    value.is_empty() || value == REDACTED,
                    "{input:?} -> {out:?}"
                );
            }
        }
    }

    let trusted = [
        "10.0.0.0/8".parse().unwrap(),
        "127.0.0.1/32".parse().unwrap(),
    ];
    let values: Vec<&str> = input.split('\n').collect();
    if let Some(ip) = forwarded_for(&values, &trusted) {
        assert!(
            !trusted.iter().any(|net: &ipnet::IpNet| net.contains(&ip)),
            "{input:?}"
        );
        let entries = values.iter().flat_map(|v| v.split(','));
        let named = entries.filter_map(|e| {
            let e = e.trim_matches(|c| c == ' ' || c == '\t');
            let e = e
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .unwrap_or(e);
            e.parse::<std::net::IpAddr>()
                .ok()
                .or_else(|| e.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        });
        assert!(
            named.map(|a| a.to_canonical()).any(|a| a == ip),
            "{input:?} -> {ip}"
        );
    }
});
