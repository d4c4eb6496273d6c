//! The tracing output of every path, captured by a global subscriber (in its own binary, so no
//! callsite interest is cached before it is set). The tests of this binary share the capture:
//! each looks for its own lines, and every one checks that no line holds a key.

mod common;

use rocket::http::Header;
use rocket::local::blocking::Client;
use rocket::routes;
use rocket_api_key_runtime::{config::LogLevel, keygen::KeyDigest};

use common::*;

/// The capture, for steps that wait for an event logged by a background task.
static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();

fn capture_logs(f: impl FnOnce()) -> String {
    let captured = CAPTURED.get_or_init(Captured::install);
    f();
    captured.text()
}

/// Every secret these tests present or configure. None may appear in any line, nor the full
/// digest of any.
const SECRETS: [&str; 7] = [
    READER,
    WRITER,
    ADMIN,
    EXPIRED,
    OFFICE,
    "no-such-key-0123456789",
    SECRET,
];

/// What holds for every line logged by any test of this binary: no secret, no full digest, no
/// line that the subscriber did not start, no terminal escape.
fn assert_clean(logs: &str) {
    if std::env::var_os("SHOW_LOGS").is_some() {
        eprintln!("{logs}");
    }
    for secret in SECRETS {
        assert!(
            !logs.contains(secret),
            "a key leaked into the logs:\n{logs}"
        );
        let digest = KeyDigest::of(secret.as_bytes()).to_entry();
        assert!(
            !logs.contains(&digest[7..]),
            "a full digest leaked into the logs:\n{logs}"
        );
    }
    for line in logs.lines() {
        assert!(
            line.starts_with("20"),
            "a line not made by the subscriber: {line:?}"
        );
    }
    assert!(!logs.contains('\u{1b}'), "a terminal escape in the logs");
}

#[test]
fn each_rejection_names_its_reason_and_never_the_key() {
    let logs = capture_logs(|| {
        let c = client(keys().accept_bearer(true));
        get_with(&c, "/read", &key(READER));
        get_with(&c, "/both", &key(READER));
        get_with(&c, "/any", &key(EXPIRED));
        get_with(&c, "/any", &key("no-such-key-0123456789"));
        let both = format!("Bearer {ADMIN}");
        get_with(
            &c,
            "/any",
            &[("x-api-key", WRITER), ("Authorization", &both)],
        );
        get_with(&c, "/any", &key(&format!("{READER} x")));
        get_with(&c, "/any", &[]);
        from(&c, "/any", "192.168.0.1:1", &key(OFFICE));
        let limited = client(
            keys()
                .key("limited", format!("{SECRET}-limited;rate=1/m"))
                .failure_limit(
                    "1/m".parse().unwrap(),
                    rocket_api_key_runtime::config::ClientAddress::Peer,
                ),
        );
        get_with(&limited, "/any", &key(&format!("{SECRET}-limited")));
        get_with(&limited, "/any", &key(&format!("{SECRET}-limited")));
        let guess = key("guess-0123456789abcdef");
        from(&limited, "/any", "192.0.2.7:1", &guess);
        from(&limited, "/any", "192.0.2.7:1", &key(READER));
    });
    assert_clean(&logs);
    for reason in [
        "missing",
        "malformed",
        "duplicate",
        "unknown",
        "expired",
        "scope",
        "ip",
        "rate_limited",
        "too_many_failures",
    ] {
        assert!(
            logs.contains(&format!("reason=\"{reason}\"")),
            "no `{reason}` event in:\n{logs}"
        );
    }
    let reader_fp = KeyDigest::of(READER.as_bytes()).fingerprint().to_string();
    assert!(logs.contains(&format!("fingerprint={reader_fp}")), "{logs}");
    assert!(logs.contains("key=\"reader\""), "{logs}");
    assert!(logs.contains("path=\"/both\""), "{logs}");
    assert!(logs.contains("client_ip=192.168.0.1"), "{logs}");
}

#[test]
fn accepted_requests_and_expiring_keys_are_named() {
    let logs = capture_logs(|| {
        let c = client(keys().accepted_log_level(LogLevel::Info));
        get_with(&c, "/read", &key(READER));
        let expiring = keys()
            .key(
                "soon",
                "soon-key-0123456789abcdef;expires=2999-01-01T00:00:00Z",
            )
            .expiry_warning(std::time::Duration::from_secs(1000 * 365 * 86_400));
        drop(Client::tracked(app(expiring)).unwrap());
    });
    assert_clean(&logs);
    assert!(
        logs.contains("INFO rocket_api_key: authorized request key=\"reader\""),
        "{logs}"
    );
    assert!(
        logs.contains("API key has expired key=\"expired\""),
        "{logs}"
    );
    assert!(
        logs.contains("API key expires soon; rotate it key=\"soon\""),
        "{logs}"
    );
}

#[test]
fn configuration_errors_never_repeat_the_key() {
    let mut error_strings = Vec::new();
    let logs = capture_logs(|| {
        assert!(
            ignition_error(app(keys().key("broken", format!("{READER}x;scopes=a b")))).is_some()
        );
        error_strings = configuration_errors();
    });
    assert_clean(&logs);
    assert!(error_strings.len() >= 10, "{error_strings:?}");
    for secret in SECRETS {
        for e in &error_strings {
            assert!(!e.contains(secret), "a key leaked into an error: {e}");
        }
    }
    assert!(
        logs.contains("the key is shorter") || logs.contains("invalid scope"),
        "{logs}"
    );
}

#[test]
fn a_failed_reload_is_logged_without_the_key() {
    let logs = capture_logs(reload_errors);
    assert_clean(&logs);
    assert!(
        logs.contains("API key reload failed; the running keys are unchanged"),
        "{logs}"
    );
}

#[test]
fn user_text_cannot_forge_a_line_or_an_escape() {
    let logs = capture_logs(|| {
        // Control characters in the path stay percent-encoded: no forged line, no escape.
        let files = Client::tracked(app(keys()).mount("/", routes![file])).unwrap();
        get_with(
            &files,
            "/files/x%0A2026-01-01T00:00:00Z%20WARN%20forged%1B[31m",
            &[],
        );
    });
    assert_clean(&logs);
    assert!(
        logs.contains("path=\"/files/x%0A2026-01-01T00:00:00Z%20WARN%20forged%1B[31m\""),
        "{logs}"
    );
}

#[test]
fn a_guard_without_a_store_logs_no_key() {
    let logs = capture_logs(|| {
        // An application guard wrapping ours hides it from the sentinel: it launches, and the
        // guard answers 500.
        let c = Client::tracked(rocket::build().mount("/", routes![wrapped])).unwrap();
        c.get("/wrapped")
            .header(Header::new("x-api-key", READER))
            .dispatch();
    });
    assert_clean(&logs);
    assert!(logs.contains("reason=\"no_store\""), "{logs}");
}

#[test]
fn every_bad_setting_is_logged_at_ignition() {
    let logs = capture_logs(|| {
        let rocket = rocket::custom(three_mistakes()).attach(keys().fairing());
        assert!(ignition_error(rocket).is_some());
    });
    for message in [
        r#"`api_keys.header` = "bad header" is not an HTTP header name"#,
        "`api_keys.reload_interval` must be at least 1s, or 0 to turn polling off",
        r#"`api_keys.failure_limit` needs `api_keys.failure_limit_address`: "peer" when clients connect directly, "proxy" behind the proxies in `trusted_proxies`"#,
    ] {
        let line = format!("ERROR rocket_api_key: API key configuration error error={message}\n");
        assert_eq!(
            logs.matches(&line).count(),
            1,
            "{line}\nnot once in:\n{logs}"
        );
    }
    assert!(
        logs.contains("API key configuration rejected; the application will not start errors=3"),
        "{logs}"
    );
}

#[rocket::get("/files/<name>")]
fn file(_key: rocket_api_key_runtime::Authorized, name: &str) -> String {
    name.to_owned()
}

const SECRET: &str = "leaky-secret-0123456789abcdef";

/// Every kind of configuration error, with the secret where an operator would have put it:
/// each stops ignition (logged) and is returned by `build` (collected here).
fn configuration_errors() -> Vec<String> {
    let entries = [
        format!("{SECRET}x;scopes=a b"),
        format!("{SECRET} y"),
        format!("{SECRET}\u{1b}[2J"),
        format!("sha256:{SECRET}"),
        format!("{SECRET};nope=1"),
        format!("{SECRET};{SECRET}"),
        format!("{SECRET};scopes=a;scopes=b"),
        format!("{SECRET};scopes=a,a"),
        format!("{SECRET};expires=never"),
        format!("{SECRET};ips=nowhere"),
        format!("{SECRET};ips="),
        format!("rak_{}", "0".repeat(49)),
        READER.to_owned(),
    ];
    let mut errors = Vec::new();
    for entry in entries {
        let builder = keys().key("broken", entry);
        errors.push(builder.clone().build().unwrap_err().to_string());
        assert!(ignition_error(app(builder)).is_some());
    }
    let dir = std::env::temp_dir().join(format!("rak-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys");
    std::fs::write(
        &file,
        format!("{SECRET}\nbad name={SECRET}\nok={SECRET};scopes=\u{1b}\n"),
    )
    .unwrap();
    let builder = keys().keys_file(&file);
    errors.push(builder.clone().build().unwrap_err().to_string());
    assert!(ignition_error(app(builder)).is_some());
    std::fs::remove_dir_all(dir).unwrap();
    errors
}

/// A running server whose keys file turns bad: the reload fails, logged without the secret.
fn reload_errors() {
    let dir = std::env::temp_dir().join(format!("rak-logs-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys");
    std::fs::write(&file, format!("good={SECRET}\n")).unwrap();
    let builder = keys()
        .keys_file(&file)
        .reload_interval(std::time::Duration::from_secs(1));
    rocket::execute(async {
        let client = rocket::local::asynchronous::Client::tracked(app(builder))
            .await
            .unwrap();
        std::fs::write(
            &file,
            format!("good={SECRET};scopes=no good\nother={SECRET}\n"),
        )
        .unwrap();
        // The watcher polls every second; allow a loaded machine up to 20 s to log the failure.
        let captured = CAPTURED.get().expect("capturing");
        for _ in 0..200 {
            if captured.text().contains("API key reload failed") {
                break;
            }
            rocket::tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            client
                .rocket()
                .state::<rocket_api_key_runtime::ApiKeyStore>()
                .unwrap()
                .len(),
            7
        );
    });
    std::fs::remove_dir_all(dir).unwrap();
}
