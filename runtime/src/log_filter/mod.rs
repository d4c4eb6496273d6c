//! Keeping Rocket's credential-printing log lines out of your logs, whatever logs them.
//!
//! Rocket logs some requests before any fairing can see them, and so before this crate can
//! redact a key sent in the query string:
//!
//! - at `warn`, so at Rocket's `critical` level (the release default) and `normal`: a request
//!   it cannot parse, with its whole URI (`Dispatching salvaged request to catcher: …` for a
//!   method it does not know, `Error: invalid origin URI: …`), and the raw value of a malformed
//!   client-address header (`'X-Real-IP' header is malformed: …`);
//! - at `debug`, every request with all its headers (`received request: Request { … "x-api-key":
//!   "<key>" … }`), so every valid key.
//!
//! Those lines are dropped, and everything else passes untouched, in either of the two ways an
//! application can log:
//!
//! - **Rocket's own logger** (no `tracing` subscriber: every `#[launch]` program of Rocket's
//!   guide): call [`init`] first, before `rocket::build()`. It installs Rocket's logger, which
//!   prints every other line as Rocket does, at the `log_level` Rocket is configured with.
//!   Rocket's logger cannot be filtered once it is installed, and `rocket::build()` installs it,
//!   so no fairing can do this for you: at liftoff, [`ApiKeyStore::fairing`] warns (once) when
//!   neither way is in place.
//! - **A `tracing` subscriber** of yours, with Rocket's lines bridged into it (what
//!   `tracing_subscriber`'s `init()` does): add [`CredentialFilter`] to it.
//!
//! [`ApiKeyStore::fairing`]: crate::ApiKeyStore::fairing

mod layer;
mod logger;

use std::fmt;

use tracing::Level;

pub use layer::CredentialFilter;
pub(crate) use logger::follow_log_level;
pub use logger::init;

/// Whether Rocket's credential-printing lines are kept out: by this crate's logger, or by a
/// [`CredentialFilter`] in the `tracing` subscriber of this thread (the global one, unless a
/// scoped one is set).
pub(crate) fn rockets_lines_filtered() -> bool {
    logger::installed() || tracing::dispatcher::get_default(|d| d.is::<CredentialFilter>())
}

/// Messages of Rocket's that print a request (or part of one) no fairing has seen yet.
const UNREDACTED_PREFIXES: [&str; 7] = [
    "received request",
    // At `debug`, every field of a form body, a key sent in one included.
    "url-encoded field",
    "multipart field",
    "Dispatching salvaged request",
    "Error: invalid origin URI",
    "Hyper/Rocket URI validity discord",
    "Hyper believes the URI",
];

/// `'X-Real-IP' header is malformed: <value>`, from `Request::real_ip`.
const MALFORMED_HEADER: &str = "' header is malformed: ";

/// Whether an event of `target` at `level`, saying `message`, may be logged: the one rule both
/// ways of logging apply.
fn allows(target: &str, level: &Level, message: &str) -> bool {
    // tokio-postgres prints every statement's parameters at DEBUG: the key table's digests.
    if is_tokio_postgres(target) {
        return *level <= Level::INFO;
    }
    if !(target == "rocket" || target.starts_with("rocket::")) {
        return true;
    }
    // DEBUG and TRACE are more verbose than INFO.
    if target.starts_with("rocket::server") && *level > Level::INFO {
        return false;
    }
    !(UNREDACTED_PREFIXES.iter().any(|p| message.starts_with(p))
        || message.contains(MALFORMED_HEADER))
}

/// Whether `target` is one of Rocket's or tokio-postgres': the only events [`allows`] looks
/// into.
fn is_filtered(target: &str) -> bool {
    target == "rocket" || target.starts_with("rocket::") || is_tokio_postgres(target)
}

fn is_tokio_postgres(target: &str) -> bool {
    target == "tokio_postgres" || target.starts_with("tokio_postgres::")
}

/// A string that keeps its first [`Bounded::CAPACITY`] bytes and refuses the rest: the decision
/// needs only the start of a message.
#[derive(Default)]
struct Bounded(String);

impl Bounded {
    /// Long enough for the longest prefix and for `'<header name>' header is malformed: `.
    const CAPACITY: usize = 160;

    /// The start of `value`'s `Display`.
    fn display(value: impl fmt::Display) -> Bounded {
        let mut bounded = Bounded::default();
        bounded.push_display(value);
        bounded
    }

    fn push(&mut self, text: &str) {
        let _ = fmt::Write::write_str(self, text);
    }

    fn push_display(&mut self, value: impl fmt::Display) {
        // A full buffer ends formatting with an error; what was kept is what counts.
        let _ = fmt::Write::write_fmt(self, format_args!("{value}"));
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = Self::CAPACITY.saturating_sub(self.0.len());
        if text.len() <= room {
            self.0.push_str(text);
            return Ok(());
        }
        let mut cut = room;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        self.0.push_str(&text[..cut]);
        Err(fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_what_prints_unredacted_requests_and_nothing_else() {
        assert!(!allows(
            "rocket::server",
            &Level::DEBUG,
            "received request: Request { … }"
        ));
        assert!(!allows("rocket::server", &Level::TRACE, "anything"));
        assert!(allows(
            "rocket::server",
            &Level::INFO,
            "GET /orders?api_key=REDACTED:"
        ));
        assert!(!allows(
            "rocket::server::_",
            &Level::WARN,
            "Dispatching salvaged request to catcher: FOO /x?api_key=k."
        ));
        assert!(!allows(
            "rocket::server::_",
            &Level::WARN,
            "Error: invalid origin URI: /x?k"
        ));
        assert!(!allows(
            "rocket::request::request::_",
            &Level::WARN,
            "'X-Real-IP' header is malformed: k"
        ));
        assert!(allows(
            "rocket::server::_",
            &Level::WARN,
            "Responding with registered 401 catcher."
        ));
        // Form bodies at `debug`, and tokio-postgres' statement parameters (digests).
        assert!(!allows(
            "rocket::form::parser::_",
            &Level::TRACE,
            "url-encoded field: (\"api_key\", \"k\")"
        ));
        assert!(!allows(
            "rocket::form::parser::_",
            &Level::TRACE,
            "multipart field: k"
        ));
        assert!(!allows(
            "tokio_postgres::query",
            &Level::DEBUG,
            "executing statement s0 with parameters: [\"\\\\x…\"]"
        ));
        assert!(allows(
            "tokio_postgres::connection",
            &Level::INFO,
            "NOTICE: …"
        ));
        // Only Rocket's events are looked at.
        assert!(allows("my_app", &Level::DEBUG, "received request"));
        assert!(allows("rocket_api_key", &Level::WARN, "request rejected"));
    }

    #[test]
    fn bounded_keeps_the_start() {
        let b = Bounded::display("é".repeat(200));
        assert!(b.as_str().len() <= Bounded::CAPACITY && b.as_str().starts_with("éé"));
    }
}
