//! The tracing output of every path, captured by a global subscriber (in its own binary, so
//! no other test's events interleave and no callsite interest is cached before it is set).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use rocket::http::Header;
use rocket::local::blocking::Client;
use rocket::routes;
use rocket_api_key_runtime::{KeyDigest, LogLevel};

use common::*;

/// Collects formatted tracing output of the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs(f: impl FnOnce()) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    f();
    let bytes = captured.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn logs_name_reasons_but_never_keys() {
    let secrets = [
        READER,
        WRITER,
        ADMIN,
        EXPIRED,
        OFFICE,
        "no-such-key-0123456789",
    ];
    let logs = capture_logs(|| {
        let c = client(
            keys()
                .accept_bearer(true)
                .accepted_log_level(LogLevel::Info),
        );
        let expiring = keys()
            .key(
                "soon",
                "soon-key-0123456789abcdef;expires=2999-01-01T00:00:00Z",
            )
            .expiry_warning(std::time::Duration::from_secs(1000 * 365 * 86_400));
        drop(Client::tracked(app(expiring)).unwrap());
        get_with(&c, "/read", &key(READER));
        get_with(&c, "/both", &key(READER));
        get_with(&c, "/any", &key(EXPIRED));
        get_with(&c, "/any", &key("no-such-key-0123456789"));
        get_with(
            &c,
            "/any",
            &[
                ("x-api-key", WRITER),
                ("Authorization", &format!("Bearer {ADMIN}")),
            ],
        );
        get_with(&c, "/any", &key(&format!("{READER} x")));
        get_with(&c, "/any", &[]);
        from(&c, "/any", "192.168.0.1:1", &key(OFFICE));
        assert!(
            ignition_error(app(keys().key("broken", format!("{READER}x;scopes=a b")))).is_some()
        );
        let _ = Client::tracked(rocket::build().mount("/", routes![wrapped])).map(|c| {
            c.get("/wrapped")
                .header(Header::new("x-api-key", READER))
                .dispatch();
        });
    });
    if std::env::var_os("SHOW_LOGS").is_some() {
        eprintln!("{logs}");
    }
    for secret in secrets {
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
    for reason in [
        "missing",
        "malformed",
        "duplicate",
        "unknown",
        "expired",
        "scope",
        "ip",
        "no_store",
    ] {
        assert!(
            logs.contains(&format!("reason=\"{reason}\"")),
            "no `{reason}` event in:\n{logs}"
        );
    }
    let reader_fp = KeyDigest::of(READER.as_bytes()).fingerprint().to_string();
    assert!(logs.contains(&format!("fingerprint={reader_fp}")), "{logs}");
    assert!(logs.contains("key=\"reader\""), "{logs}");
    assert!(
        logs.contains("API key has expired key=\"expired\""),
        "{logs}"
    );
    assert!(
        logs.contains("API key expires soon; rotate it key=\"soon\""),
        "{logs}"
    );
    assert!(logs.contains("path=\"/both\""), "{logs}");
    assert!(logs.contains("client_ip=192.168.0.1"), "{logs}");
    assert!(
        logs.contains("INFO rocket_api_key: authorized request key=\"reader\""),
        "{logs}"
    );
    assert!(
        logs.contains("the key is shorter") || logs.contains("invalid scope"),
        "{logs}"
    );
}
