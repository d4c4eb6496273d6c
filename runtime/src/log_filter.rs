//! A `tracing-subscriber` layer that keeps Rocket's credential-printing log lines out of your
//! logs.
//!
//! Rocket logs some requests before any fairing can see them, and so before this crate can
//! redact a key sent in the query string:
//!
//! - at `debug`, every request with all its headers (`received request: Request { … "x-api-key":
//!   "<key>" … }`), so every valid key reaches the log;
//! - at `warn`, a request it cannot parse, with its whole URI (`Dispatching salvaged request to
//!   catcher: …`, `Error: invalid origin URI: …`);
//! - at `warn`, the raw value of a malformed client-address header.
//!
//! [`CredentialFilter`] drops exactly those events, and caps Rocket's `rocket::server` lines at
//! `info` (its only `debug` lines print requests). Everything else passes untouched.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Drops Rocket's log events that can carry an API key (see the [module](self) documentation).
///
/// Add it to the subscriber you build; it passes every other event on:
///
/// ```
/// use rocket_api_key_runtime::log_filter::CredentialFilter;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = tracing_subscriber::fmt()
///     .with_max_level(tracing::Level::DEBUG)
///     .finish()
///     .with(CredentialFilter::default());
/// tracing::subscriber::set_global_default(subscriber).unwrap();
/// ```
///
/// With Rocket's own logger (no `tracing` subscriber of yours), keep its level at `normal` or
/// `critical`: at `debug` it prints every request's headers, keys included.
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialFilter {
    _private: (),
}

/// Messages of Rocket's that print a request (or part of one) no fairing has seen yet.
const UNREDACTED_PREFIXES: [&str; 5] = [
    "received request",
    "Dispatching salvaged request",
    "Error: invalid origin URI",
    "Hyper/Rocket URI validity discord",
    "Hyper believes the URI",
];

/// `'X-Real-IP' header is malformed: <value>`, from `Request::real_ip`.
const MALFORMED_HEADER: &str = "' header is malformed: ";

impl CredentialFilter {
    /// Whether an event of `target` at `level`, saying `message`, may be logged.
    fn allows(target: &str, level: &Level, message: &str) -> bool {
        if !is_rockets(target) {
            return true;
        }
        // DEBUG and TRACE are more verbose than INFO.
        if target.starts_with("rocket::server") && *level > Level::INFO {
            return false;
        }
        !(UNREDACTED_PREFIXES.iter().any(|p| message.starts_with(p))
            || message.contains(MALFORMED_HEADER))
    }
}

impl<S: Subscriber> Layer<S> for CredentialFilter {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        let target = metadata.target();
        // Rocket logs through the `log` crate: bridged events have the target `log` and carry
        // the real one in a field.
        if target != "log" && !is_rockets(target) {
            return true;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let target = if target == "log" {
            fields.log_target.as_str()
        } else {
            target
        };
        Self::allows(target, metadata.level(), &fields.message)
    }
}

fn is_rockets(target: &str) -> bool {
    target == "rocket" || target.starts_with("rocket::")
}

/// The two fields the filter reads, each cut to a bounded length: the decision needs only the
/// start of a message.
#[derive(Default)]
struct Fields {
    message: Bounded,
    log_target: Bounded,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push(value),
            "log.target" => self.log_target.push(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let into = match field.name() {
            "message" => &mut self.message,
            "log.target" => &mut self.log_target,
            _ => return,
        };
        // A full buffer ends formatting with an error; what was kept is what counts.
        let _ = write!(into, "{value:?}");
    }
}

/// A string that keeps its first [`Bounded::CAPACITY`] bytes and refuses the rest.
#[derive(Default)]
struct Bounded(String);

impl Bounded {
    /// Long enough for the longest prefix and for `'<header name>' header is malformed: `.
    const CAPACITY: usize = 160;

    fn push(&mut self, text: &str) {
        let _ = self.write_str(text);
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Bounded {
    type Target = str;

    fn deref(&self) -> &str {
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
        let allows = CredentialFilter::allows;
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
        // Only Rocket's events are looked at.
        assert!(allows("my_app", &Level::DEBUG, "received request"));
        assert!(allows("rocket_api_key", &Level::WARN, "request rejected"));
    }

    #[test]
    fn bounded_keeps_the_start() {
        let mut b = Bounded::default();
        assert!(write!(b, "{}", "é".repeat(200)).is_err());
        assert!(b.len() <= Bounded::CAPACITY && b.starts_with("éé"));
    }
}
