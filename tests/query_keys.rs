//! Keys sent where they do not belong (the query string, a request Rocket cannot parse, headers
//! Rocket prints at `debug`) never reach the example's output, at any log level, including
//! Rocket's own lines. The example runs as its users run it: its own process, real TCP.

#[path = "support/process.rs"]
mod process;

use process::{raw_request, Example};
use rocket_api_key::keygen::GeneratedKey;

/// The names whose values are redacted by default, and the configured header's.
const NAMES: [&str; 7] = [
    "api_key",
    "apikey",
    "api-key",
    "key",
    "token",
    "access_token",
    "x-api-key",
];

#[test]
fn no_key_reaches_the_output_at_any_level() {
    let reader = GeneratedKey::new().unwrap();
    let reader = reader.expose_secret().to_owned();
    let plain = "plain-reader-key-0123456789abcdef";
    for level in [
        None,
        Some("error"),
        Some("warn"),
        Some("info"),
        Some("debug"),
        Some("trace"),
    ] {
        let entry_generated = format!("{reader};scopes=read:orders");
        let entry_plain = format!("{plain};scopes=read:orders");
        let mut env = vec![
            ("API_KEY_READER", entry_generated.as_str()),
            ("API_KEY_PLAIN", entry_plain.as_str()),
        ];
        if let Some(level) = level {
            env.push(("RUST_LOG", level));
        }
        let example = Example::start(&env);
        let to = example.addr();
        let get = |target: &str, headers: &str| {
            raw_request(
                to,
                None,
                &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n"),
            )
        };
        // Every sensitive name, on a protected route (refused: a key in the query never
        // authenticates), on no route at all (404), and with a valid header key on a route whose
        // path parameter fails (422).
        let mut secrets = vec![reader.clone(), plain.to_owned()];
        for name in NAMES {
            let secret = format!("secret-in-{name}-0123456789abcdef");
            assert_eq!(
                get(&format!("/secure-data?{name}={secret}"), ""),
                401,
                "{name}"
            );
            assert_eq!(
                get(&format!("/nope?page=1&{name}={secret}"), ""),
                404,
                "{name}"
            );
            let header = format!("x-api-key: {plain}\r\n");
            assert_eq!(
                get(&format!("/orders/abc?{name}={secret}"), &header),
                422,
                "{name}"
            );
            secrets.push(secret);
        }
        // Real keys, in the query under any name and in the headers Rocket prints at debug.
        assert_eq!(get(&format!("/secure-data?api_key={reader}"), ""), 401);
        assert_eq!(get(&format!("/nope?q={reader}"), ""), 404);
        assert_eq!(get(&format!("/nope?Api%5FKey={plain}"), ""), 404);
        assert_eq!(
            get("/secure-data", &format!("x-api-key: {reader}\r\n")),
            200
        );
        assert_eq!(get("/secure-data", &format!("x-api-key: {plain}\r\n")), 200);
        assert_eq!(
            get(
                "/secure-data",
                &format!("Authorization: Bearer {plain}\r\n")
            ),
            401
        );
        assert_eq!(get("/secure-data", &format!("X-Real-IP: {plain}\r\n")), 401);
        // A method Rocket does not know: it logs the request before any fairing runs.
        let unknown_method = raw_request(
            to,
            None,
            &format!("FROB /secure-data?api_key={plain} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        );
        assert!(unknown_method >= 400, "{unknown_method}");

        let output = example.stop();
        for secret in &secrets {
            assert!(
                !output.contains(secret.as_str()),
                "RUST_LOG={level:?}: a key in the output:\n{output}"
            );
        }
        assert!(!output.contains("received request"), "{output}");
        // The subscriber holds `CredentialFilter`: the fairing has nothing to warn about.
        assert!(
            !output.contains("Rocket's log lines can print API keys"),
            "{output}"
        );
        // The lines are there, redacted, where the level shows them.
        match level {
            None | Some("error") => assert!(
                output.contains("No matching routes for GET /nope?page=1&api_key=REDACTED"),
                "RUST_LOG={level:?}:\n{output}"
            ),
            Some("info" | "debug" | "trace") => {
                assert!(
                    output.contains("GET /secure-data?api_key=REDACTED"),
                    "RUST_LOG={level:?}:\n{output}"
                );
                assert!(output.contains("query_key_redacted=true"), "{output}");
            }
            _ => {}
        }
        if matches!(level, Some("debug" | "trace")) {
            assert!(
                output.contains("stays at info"),
                "the cap is announced:\n{output}"
            );
        }
        if level.is_none() {
            assert!(output.contains("query_key_redacted=true"), "{output}");
        }
    }
}
