//! No key in Rocket's own log lines, at any of Rocket's log levels: the README's first program
//! (`#[launch]`, Rocket's logger, no `tracing` subscriber) with its `log_filter::init()` line
//! prints every line Rocket's logger prints, as Rocket prints it, but those that can carry a key;
//! without the line, the fairing warns. The same with a `tracing` subscriber and
//! `CredentialFilter`. Each application runs in a process of its own (a logger is global to a
//! process), on real TCP, and is sent the requests Rocket prints before any fairing sees them.

#[path = "support/process.rs"]
mod process;

use std::net::IpAddr;

use process::{raw_request, Example};
use rocket::{get, routes, Build, Rocket};
use rocket_api_key::keygen::GeneratedKey;
use rocket_api_key::{require_api_key, ApiKey, ApiKeyStore};

/// The variable that tells this test binary, run again by the tests, to be the application,
/// logging the way its value names (see [`Logging`]).
const APP_VAR: &str = "ROCKET_API_KEY_TEST_LOGGING";

/// The start of the fairing's warning that nothing filters Rocket's lines.
const UNFILTERED_WARNING: &str = "Rocket's log lines can print API keys";

/// How the application logs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Logging {
    /// Rocket's logger, with `rocket_api_key::log_filter::init()` first: the README's program.
    Filtered,
    /// Rocket's logger and nothing else.
    Unfiltered,
    /// A `tracing` subscriber that shows everything, with `CredentialFilter`.
    Tracing,
}

impl Logging {
    const ALL: [Logging; 3] = [Logging::Filtered, Logging::Unfiltered, Logging::Tracing];

    fn name(self) -> &'static str {
        match self {
            Logging::Filtered => "filtered",
            Logging::Unfiltered => "unfiltered",
            Logging::Tracing => "tracing",
        }
    }
}

#[require_api_key(scope = "read:orders")]
#[get("/orders")]
fn list_orders() -> &'static str {
    "[]"
}

#[require_api_key]
#[get("/whoami")]
fn whoami(key: ApiKey) -> String {
    key.name().to_owned()
}

/// A route that reads the client's address with Rocket's `IpAddr` guard, as many do: Rocket
/// prints a malformed `X-Real-IP` as it reads it.
#[get("/ip")]
fn ip(client: IpAddr) -> String {
    client.to_string()
}

/// The README's first program, with the `/ip` route.
fn rocket() -> Rocket<Build> {
    rocket::build()
        .attach(ApiKeyStore::fairing())
        .mount("/", routes![list_orders, whoami, ip])
}

/// The application, when a test below runs this binary again as a process of its own; nothing
/// otherwise.
#[test]
#[ignore = "the application the other tests run in a process of its own"]
fn application() {
    let Ok(name) = std::env::var(APP_VAR) else {
        return;
    };
    let Some(logging) = Logging::ALL.into_iter().find(|l| l.name() == name) else {
        return;
    };
    match logging {
        Logging::Filtered => rocket_api_key::log_filter::init(),
        Logging::Unfiltered => {}
        Logging::Tracing => {
            use rocket_api_key::log_filter::CredentialFilter;
            use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};

            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .finish()
                .with(CredentialFilter::default())
                .init();
        }
    }
    let _ = rocket::execute(rocket().launch());
}

/// What one run printed, and the keys it was sent.
struct Run {
    output: String,
    port: u16,
    secrets: Vec<String>,
}

/// Runs the application logging with `logging`, at Rocket's `level`, sends it every request
/// whose key Rocket could print, and stops it.
fn run(logging: Logging, level: &str) -> Run {
    let reader = GeneratedKey::new().unwrap();
    let reader = reader.expose_secret().to_owned();
    let entry = format!("{reader};scopes=read:orders");
    let program = std::env::current_exe().expect("this test's binary");
    let app = Example::start_program(
        &program,
        &["application", "--exact", "--ignored", "--nocapture"],
        &[
            (APP_VAR, logging.name()),
            ("ROCKET_LOG_LEVEL", level),
            ("API_KEY_READER", &entry),
        ],
    );
    let to = app.addr();
    let send = |head: &str| raw_request(to, None, &format!("{head}\r\nHost: localhost\r\n\r\n"));
    let secret = |what: &str| format!("secret-{what}-0123456789abcdef");
    let mut secrets = vec![reader.clone()];

    // A method Rocket does not know: `Dispatching salvaged request to catcher: GET /orders?…`.
    let unknown_method = secret("unknown-method");
    let status = send(&format!("FROB /orders?api_key={unknown_method} HTTP/1.1"));
    assert_eq!(status, 400);
    secrets.push(unknown_method);
    // A target that is not an origin URI: `Error: invalid origin URI: …`.
    let authority = secret("authority");
    assert_eq!(send(&format!("CONNECT {authority}:443 HTTP/1.1")), 400);
    secrets.push(authority);
    // A client address header that is not an address: `'X-Real-IP' header is malformed: …`.
    let real_ip = secret("x-real-ip");
    assert_eq!(
        send(&format!("GET /ip HTTP/1.1\r\nX-Real-IP: {real_ip}")),
        200
    );
    secrets.push(real_ip);
    // A key in the query string, which the fairing redacts before Rocket logs the request.
    let query = secret("query");
    assert_eq!(send(&format!("GET /orders?api_key={query} HTTP/1.1")), 401);
    assert_eq!(send(&format!("GET /nope?token={query} HTTP/1.1")), 404);
    secrets.push(query);
    // A valid key in its header, which Rocket prints at `debug` with every other header.
    assert_eq!(
        send(&format!("GET /orders HTTP/1.1\r\nx-api-key: {reader}")),
        200
    );
    assert_eq!(
        send(&format!("GET /whoami HTTP/1.1\r\nx-api-key: {reader}")),
        200
    );

    Run {
        port: app.port,
        output: app.stop_when_quiet(),
        secrets,
    }
}

impl Run {
    fn assert_no_key(&self, what: &str) {
        for secret in &self.secrets {
            assert!(
                !self.output.contains(secret.as_str()),
                "{what}: a key in the output:\n{}",
                self.output
            );
        }
    }

    fn contains(&self, text: &str) -> bool {
        self.output.contains(text)
    }

    /// The lines, sorted, with what differs from run to run made the same (the port, Rocket's
    /// `ident`), and without those that hold a key, the fairing's warning, and the salvaged
    /// request lines (which the filter drops whether or not they hold one).
    fn comparable(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .output
            .lines()
            .filter(|line| !self.secrets.iter().any(|s| line.contains(s.as_str())))
            .filter(|line| !line.contains(UNFILTERED_WARNING))
            .filter(|line| !line.contains(">> Dispatching salvaged request to catcher: "))
            .map(|line| {
                let line = line.replace(&self.port.to_string(), "<port>");
                match line.find("rak-test-") {
                    Some(at) => format!("{}<ident>", &line[..at]),
                    None => line,
                }
            })
            .collect();
        // Rocket lists fairings and Shield's headers in no fixed order.
        lines.sort();
        lines
    }
}

#[test]
fn with_the_line_rockets_logger_prints_no_key_at_any_level() {
    for level in ["off", "critical", "normal", "debug"] {
        let run = run(Logging::Filtered, level);
        let what = format!("Rocket's logger at {level}, filtered");
        run.assert_no_key(&what);
        assert!(!run.contains(UNFILTERED_WARNING), "{what}:\n{}", run.output);
        let launched = run.contains("Rocket has launched from");
        match level {
            "off" => assert!(!launched, "{what}:\n{}", run.output),
            "critical" => assert!(
                launched && !run.contains("Configured for") && !run.contains("Response succeeded"),
                "{what}:\n{}",
                run.output
            ),
            "normal" => assert!(
                launched
                    && run.contains("Configured for debug.")
                    && run.contains("GET /orders?api_key=REDACTED:")
                    && run.contains("Warning: Bad incoming HTTP request.")
                    && !run.contains("-- configuration trace information --"),
                "{what}:\n{}",
                run.output
            ),
            _ => assert!(
                launched
                    && run.contains("-- configuration trace information --")
                    && run.contains("authorized request")
                    && !run.contains("received request"),
                "{what}:\n{}",
                run.output
            ),
        }
    }
}

/// Every other line of Rocket's logger, as it prints it; and without the line, the fairing
/// says so, once.
#[test]
fn with_the_line_every_other_line_is_rockets_without_it_the_fairing_warns() {
    for level in ["critical", "normal"] {
        let filtered = run(Logging::Filtered, level);
        let unfiltered = run(Logging::Unfiltered, level);
        assert_eq!(
            filtered.comparable(),
            unfiltered.comparable(),
            "at {level}, filtered:\n{}\nunfiltered:\n{}",
            filtered.output,
            unfiltered.output
        );
        // Rocket's logger alone prints keys: what the filter is for.
        assert!(
            unfiltered
                .secrets
                .iter()
                .any(|s| unfiltered.contains(s.as_str())),
            "{}",
            unfiltered.output
        );
        assert_eq!(
            unfiltered.output.matches(UNFILTERED_WARNING).count(),
            1,
            "at {level}:\n{}",
            unfiltered.output
        );
    }
}

#[test]
fn a_tracing_subscriber_with_credential_filter_prints_no_key() {
    // Rocket's `log_level` does not apply to a `tracing` subscriber, which shows everything here.
    let run = run(Logging::Tracing, "debug");
    run.assert_no_key("tracing with CredentialFilter");
    assert!(
        run.contains("Rocket has launched from")
            && run.contains("GET /orders?api_key=REDACTED:")
            && run.contains("authorized request")
            && !run.contains(UNFILTERED_WARNING),
        "{}",
        run.output
    );
}
